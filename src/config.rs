//! Configuration: config/default.toml's keys, a file, then KOLOKOL_* environment variables.

use anyhow::{Context, Result};
use kolokol_engine::call::CallConfig;
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    pub listen: String,
    pub tls_listen: String,
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
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "0.0.0.0:8080".into(),
            tls_listen: "0.0.0.0:8443".into(),
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
