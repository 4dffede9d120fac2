//! What stands between the open web and the API: which pages may open our WebSockets,
//! who the client is behind a trusted reverse proxy, and how many password guesses a
//! source or a login gets.

use axum::http::HeaderMap;
use kolokol_engine::registrar::pike::{Pike, PikeConfig, Verdict};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Settings of the web edge (`[http]` in the configuration).
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Origins (`https://crm.example.com`) besides the server's own whose pages may open
    /// `/sip` and `/api/v1/live`.
    pub allowed_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Failed logins tolerated per source address, and per login.
    pub login_per_source: PikeConfig,
    pub login_per_account: PikeConfig,
    /// Password checks (argon2, ~20 ms of a core each) running or waiting at once; more
    /// get 503 rather than queueing without end.
    pub password_checks: usize,
    /// Addresses that may read /metrics without logging in (a Prometheus server).
    pub metrics_from: Vec<IpAddr>,
}

pub struct Guard {
    config: GuardConfig,
    sources: Pike<IpAddr>,
    accounts: Pike<String>,
    checks: Arc<Semaphore>,
}

/// Where a request says it comes from.
pub enum Origin<'a> {
    /// No Origin header: not a browser (or a same-origin GET).
    None,
    /// A page of the host the request asked for.
    Own,
    Foreign(&'a str),
}

/// The request's Origin against the Host it asked for.
pub fn origin(headers: &HeaderMap) -> Origin<'_> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    match (header("origin"), header("host")) {
        (None, _) => Origin::None,
        (Some(o), Some(host)) if o.split_once("://").map(|(_, rest)| rest) == Some(host) => {
            Origin::Own
        }
        (Some(o), _) => Origin::Foreign(o),
    }
}

/// Why a login is not even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures; try again after this many seconds.
    Throttled { retry_after_s: u64 },
    /// Too many password checks at once.
    Busy,
}

impl Guard {
    pub fn new(config: GuardConfig) -> Self {
        Guard {
            sources: Pike::new(config.login_per_source),
            accounts: Pike::new(config.login_per_account),
            checks: Arc::new(Semaphore::new(config.password_checks.max(1))),
            config,
        }
    }

    /// The client's address: the connection's peer, or — when that peer is a trusted
    /// proxy — the last address in `X-Forwarded-For` that is not one of ours.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.ip();
        if !self.config.trusted_proxies.contains(&peer) {
            return peer;
        }
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .rev()
            .find(|a| !self.config.trusted_proxies.contains(a))
            .unwrap_or(peer)
    }

    /// Whether a browser page may open a WebSocket here: no Origin (not a browser), our
    /// own origin (the Host it asked), or one allowed by configuration. Without this any
    /// web page could use its visitors' browsers against us (and their office's address
    /// would be banned for the failures).
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        match origin(headers) {
            Origin::None | Origin::Own => true,
            Origin::Foreign(origin) => self
                .config
                .allowed_origins
                .iter()
                .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin)),
        }
    }

    /// Whether `ip` may read /metrics without credentials.
    pub fn may_scrape(&self, ip: IpAddr) -> bool {
        self.config.metrics_from.contains(&ip)
    }

    /// Whether a login from `ip` may be checked now.
    pub fn may_try(&self, ip: IpAddr, login: &str, now_ms: u64) -> Result<(), Refusal> {
        let until = self
            .sources
            .banned_until(&ip, now_ms)
            .into_iter()
            .chain(self.accounts.banned_until(&login.to_lowercase(), now_ms))
            .max();
        match until {
            Some(until) => Err(Refusal::Throttled {
                retry_after_s: (until - now_ms).div_ceil(1000),
            }),
            None => Ok(()),
        }
    }

    /// A slot to check a password in, or none when too many checks are under way.
    pub fn password_check(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
        self.checks
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Busy)
    }

    /// A wrong password: counted against the source and the login, logged like SIP's
    /// failures so one fail2ban filter serves both.
    pub fn failed(&self, ip: IpAddr, login: &str, now_ms: u64) {
        tracing::warn!(
            target: "kolokol::auth",
            "auth failure: src={ip} user=\"{}\" realm=\"web\" cause=credentials",
            login.escape_debug()
        );
        if self.sources.record_failure(ip, now_ms) == Verdict::Banned {
            tracing::warn!(
                target: "kolokol::auth",
                "source banned: src={ip} for {}s",
                self.config.login_per_source.ban_ms / 1000
            );
        }
        if self.accounts.record_failure(login.to_lowercase(), now_ms) == Verdict::Banned {
            tracing::warn!(
                target: "kolokol::auth",
                "login throttled: user=\"{}\" for {}s",
                login.escape_debug(),
                self.config.login_per_account.ban_ms / 1000
            );
        }
    }

    /// Forgets what no longer matters (call about once a second).
    pub fn sweep(&self, now_ms: u64) {
        self.sources.sweep(now_ms);
        self.accounts.sweep(now_ms);
    }
}
