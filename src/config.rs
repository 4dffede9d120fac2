//! Configuration: config/default.toml's keys, a file, then KOLOKOL_* environment variables.

use anyhow::{Context, Result};
use kolokol_engine::call::CallConfig;
use kolokol_engine::registrar::pike::PikeConfig;
use kolokol_engine::registrar::RegistrarConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub recordings_dir: PathBuf,
    pub log: String,
    pub sip: SipConfig,
    pub registrar: RegistrarConfig,
    pub calls: CallConfig,
    pub media: MediaConfig,
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub shutdown: ShutdownConfig,
    pub crm: CrmConfig,
    pub smtp: kolokol_crm::mail::SmtpSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CrmConfig {
    /// Where phone numbers written without a country code are (ISO 3166, e.g. "RU").
    pub default_country: String,
    /// The largest file a card takes, in MiB.
    pub max_file_mb: u64,
    /// Where report and filter periods' days begin and end (IANA, e.g. "Europe/Moscow").
    pub time_zone: String,
}

impl Default for CrmConfig {
    fn default() -> Self {
        CrmConfig {
            default_country: "RU".into(),
            max_file_mb: 25,
            time_zone: "Europe/Moscow".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MediaConfig {
    /// Where RTP sockets bind.
    pub bind: String,
    /// The address put in SDP; empty means the SIP advertise address.
    pub advertise: String,
    pub port_min: u16,
    pub port_max: u16,
    /// The first UDP port of browsers' WebRTC media (ICE-lite): one gateway thread per
    /// core, thread `i` on `webrtc_port + i`, announced at `advertise`; 0 picks free ports.
    pub webrtc_port: u16,
    /// STUN/TURN servers for browsers behind restrictive NAT (`[[media.ice_servers]]` with
    /// `urls`, `username`, `credential`); kolokol itself is ICE-lite and needs none.
    pub ice_servers: Vec<kolokol_web::IceServer>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            bind: "0.0.0.0".into(),
            advertise: String::new(),
            port_min: 20000,
            port_max: 39999,
            webrtc_port: 40000,
            ice_servers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ShutdownConfig {
    /// On SIGTERM, running calls may go on this long before they are ended.
    pub drain_s: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { drain_s: 30 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SipConfig {
    pub udp: String,
    pub tcp: String,
    pub tls: String,
    pub max_message_size: usize,
    /// The IP phones and trunks reach kolokol at (Via, Contact, SDP); empty: detected.
    pub advertise: String,
    /// WebSocket clients (browsers) are pinged this often, and dropped — unregistered,
    /// their calls ended — after three silent periods.
    pub ws_keepalive_s: u64,
    /// Messages waiting for one connection's writer; a peer that lets more pile up is not
    /// reading and is disconnected.
    pub send_queue: usize,
    /// TCP/TLS connections open at once, in all and from one address.
    pub max_connections: usize,
    pub max_connections_per_source: usize,
    /// From accept to a connection's first whole SIP message (TLS handshake included).
    pub first_message_timeout_s: u64,
    /// Silence that closes a connection no registration uses.
    pub idle_timeout_s: u64,
    /// New calls get 503 while SIP datagrams wait longer than this (smoothed); 0: never.
    pub overload_wait_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    pub listen: String,
    pub tls_listen: String,
    /// Origins besides our own whose pages may open /sip and /api/v1/live.
    pub allowed_origins: Vec<String>,
    /// Reverse proxies (IP addresses) whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<String>,
    /// A client must send a request's headers within this time (slowloris).
    pub header_read_timeout_s: u64,
    /// Password checks at once; more logins get 503.
    pub password_checks: usize,
    /// Addresses that read /metrics without credentials.
    pub metrics_from: Vec<String>,
    pub login_per_source: PikeConfig,
    pub login_per_account: PikeConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TlsConfig {
    pub cert: String,
    pub key: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: "data".into(),
            database_url: String::new(),
            crm: CrmConfig::default(),
            smtp: kolokol_crm::mail::SmtpSettings {
                port: 25,
                security: "none".into(),
                ..Default::default()
            },
            recordings_dir: "recordings".into(),
            log: "info".into(),
            sip: SipConfig::default(),
            registrar: RegistrarConfig::default(),
            calls: CallConfig::default(),
            media: MediaConfig::default(),
            http: HttpConfig::default(),
            tls: TlsConfig::default(),
            shutdown: ShutdownConfig::default(),
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            udp: "0.0.0.0:5060".into(),
            tcp: "0.0.0.0:5060".into(),
            tls: "0.0.0.0:5061".into(),
            max_message_size: 65535,
            advertise: String::new(),
            ws_keepalive_s: 15,
            send_queue: 256,
            max_connections: 8192,
            max_connections_per_source: 64,
            first_message_timeout_s: 10,
            idle_timeout_s: 120,
            overload_wait_ms: 20,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "0.0.0.0:8080".into(),
            tls_listen: "0.0.0.0:8443".into(),
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            header_read_timeout_s: 10,
            password_checks: 8,
            metrics_from: vec!["127.0.0.1".into(), "::1".into()],
            login_per_source: PikeConfig {
                max_failures: 10,
                window_ms: 300_000,
                ban_ms: 900_000,
            },
            login_per_account: PikeConfig {
                max_failures: 10,
                window_ms: 900_000,
                ban_ms: 300_000,
            },
        }
    }
}

/// Sets `path` (like ["registrar", "pike", "ban_ms"]) in a TOML table.
fn set(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut t = table;
    for p in parents {
        t = t
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .expect("config section is a table");
    }
    t.insert(last.clone(), value);
}

impl Config {
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let mut table = match file {
            Some(f) => std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))?
                .parse::<toml::Table>()
                .with_context(|| format!("parsing {}", f.display()))?,
            None => toml::Table::new(),
        };
        for (key, raw) in std::env::vars() {
            let Some(rest) = key.strip_prefix("KOLOKOL_") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            // A value that reads as TOML (numbers, booleans, arrays) keeps its type.
            let value = format!("v = {raw}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(raw));
            set(&mut table, &path, value);
        }
        toml::Value::Table(table)
            .try_into()
            .context("invalid configuration")
    }

    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("kolokol.db").display())
        } else {
            self.database_url.clone()
        }
    }
}
