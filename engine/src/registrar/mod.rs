//! The registrar (RFC 3261 §10.3) as a sans-IO core: `register(request, flow, now)` returns
//! the reply; time is passed in, nothing here touches a socket or a database.

pub mod digest;
pub mod location;
pub mod pike;

use crate::sip::{grammar, Request};
use crate::transport::{Flow, Transport};
use digest::{Algorithm, Credentials, NonceCheck, Nonces};
pub use location::{Binding, BindingSink, Location, LocationChange};
use pike::{Pike, PikeConfig, Verdict};
use std::borrow::Cow;
use std::sync::Arc;

/// What the registrar needs to know about a SIP account.
#[derive(Debug, Clone)]
pub struct SipAccount {
    pub user_id: i64,
    /// The account's own username (its extension): what the AOR must name, whichever
    /// username the credentials gave.
    pub username: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    /// A browser softphone's per-session credential: accepted over WebSocket only.
    pub websocket_only: bool,
}

impl SipAccount {
    fn ha1(&self, alg: Algorithm) -> &str {
        match alg {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

/// Who may register. Answers from memory: it is asked on every REGISTER.
pub trait Directory: Send + Sync {
    /// The active account with this SIP username, if any.
    fn account(&self, username: &str) -> Option<SipAccount>;
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
pub struct RegistrarConfig {
    pub realm: String,
    /// Challenge algorithms in order of preference (RFC 8760 §2.4).
    pub digest_algorithms: Vec<String>,
    pub nonce_lifetime_s: u64,
    pub default_expires: u32,
    pub min_expires: u32,
    pub max_expires: u32,
    pub max_contacts: usize,
    pub pike: PikeConfig,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            realm: "kolokol".into(),
            digest_algorithms: vec!["MD5".into(), "SHA-256".into()],
            nonce_lifetime_s: 300,
            default_expires: 3600,
            min_expires: 60,
            max_expires: 7200,
            max_contacts: 10,
            pike: PikeConfig::default(),
        }
    }
}

/// A reply for the SIP service to turn into a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub reason: Cow<'static, str>,
    pub headers: Vec<(&'static str, String)>,
    /// The request changed state (an authenticated REGISTER): a retransmission must get
    /// this same reply instead of being processed again.
    pub stateful: bool,
}

impl Reply {
    pub fn new(status: u16, reason: &'static str) -> Self {
        Reply {
            status,
            reason: Cow::Borrowed(reason),
            headers: Vec::new(),
            stateful: false,
        }
    }

    pub fn with(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn stateful(mut self) -> Self {
        self.stateful = true;
        self
    }
}

/// Counters the registrar reports; the service turns them into metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    AuthFailure,
    Banned,
    /// This stream or WebSocket connection failed too often: close it.
    ConnectionBanned(u64),
}

pub struct Registrar {
    config: RegistrarConfig,
    algorithms: Vec<Algorithm>,
    nonces: Nonces,
    pike: Pike,
    /// Failures per stream or WebSocket connection: too many close that connection, not
    /// the whole source, so one bad client behind an office NAT (or a page in someone's
    /// browser) does not cut every phone there off.
    connection_pike: Pike<u64>,
    directory: Arc<dyn Directory>,
    pub location: Arc<Location>,
}

/// Who asks for credentials: the registrar (401/Authorization) or the call router
/// acting as a proxy would (407/Proxy-Authorization).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRole {
    Registrar,
    Proxy,
}

impl AuthRole {
    fn challenge_header(self) -> &'static str {
        match self {
            AuthRole::Registrar => "WWW-Authenticate",
            AuthRole::Proxy => "Proxy-Authenticate",
        }
    }

    fn credentials_header(self) -> &'static str {
        match self {
            AuthRole::Registrar => "Authorization",
            AuthRole::Proxy => "Proxy-Authorization",
        }
    }
}

/// The outcome of one REGISTER.
#[derive(Debug)]
pub struct Outcome {
    /// `None`: drop silently (a banned source).
    pub reply: Option<Reply>,
    pub observations: Vec<Observation>,
}

/// Whether a digest's `uri` names the request's target (RFC 3261 §22.4, RFC 2617
/// §3.2.2.5): the Request-URI itself, or — as sipp signs — only its host and port when the
/// `uri` has no user part to differ in. A `uri` with a user must be the Request-URI.
fn digest_uri_matches(uri: &str, request_uri: &str) -> bool {
    if uri.eq_ignore_ascii_case(request_uri) {
        return true;
    }
    let host_only = grammar::sip_uri_rest(uri).is_some_and(|rest| !rest.contains('@'));
    host_only
        && grammar::sip_uri_host_port(uri)
            .zip(grammar::sip_uri_host_port(request_uri))
            .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
}

impl Registrar {
    pub fn new(
        config: RegistrarConfig,
        secret: [u8; 32],
        directory: Arc<dyn Directory>,
        location: Arc<Location>,
    ) -> Self {
        let mut algorithms: Vec<Algorithm> = config
            .digest_algorithms
            .iter()
            .filter_map(|a| Algorithm::parse(a))
            .collect();
        if algorithms.is_empty() {
            algorithms.push(Algorithm::Md5);
        }
        Registrar {
            nonces: Nonces::new(secret, config.nonce_lifetime_s * 1000),
            pike: Pike::new(config.pike),
            connection_pike: Pike::new(config.pike),
            algorithms,
            config,
            directory,
            location,
        }
    }

    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    pub fn is_banned(&self, flow: &Flow, now_ms: u64) -> bool {
        self.pike.is_banned(&flow.remote.ip(), now_ms)
    }

    /// A connection closed: its failures are forgotten with it.
    pub fn connection_closed(&self, connection: u64) {
        self.connection_pike.forget(&connection);
    }

    pub fn banned_count(&self, now_ms: u64) -> usize {
        self.pike.banned_count(now_ms)
    }

    /// Periodic housekeeping: expired bindings and forgotten sources.
    pub fn sweep(&self, now_ms: u64) -> usize {
        self.pike.sweep(now_ms);
        self.connection_pike.sweep(now_ms);
        self.location.sweep(now_ms)
    }

    /// One challenge per algorithm, preferred first — except on WebSocket, where JsSIP and
    /// SIP.js keep only the *last* WWW-/Proxy-Authenticate header and know only MD5, so
    /// the order is reversed there (a client that reads the first still gets the strongest).
    fn challenge(&self, role: AuthRole, flow: &Flow, now_ms: u64, stale: bool) -> Reply {
        let nonce = self.nonces.issue(now_ms);
        let mut reply = match role {
            AuthRole::Registrar => Reply::new(401, "Unauthorized"),
            AuthRole::Proxy => Reply::new(407, "Proxy Authentication Required"),
        };
        let browser = matches!(flow.transport, Transport::Ws | Transport::Wss);
        let mut algorithms: Vec<&Algorithm> = self.algorithms.iter().collect();
        if browser {
            algorithms.reverse();
        }
        for alg in algorithms {
            let stale = if stale { ", stale=true" } else { "" };
            reply = reply.with(
                role.challenge_header(),
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
                    self.config.realm,
                    alg.name()
                ),
            );
        }
        reply
    }

    /// One answer for every authentication failure, whatever its cause, so that nothing
    /// tells a known user from an unknown one.
    fn failure(&self, flow: &Flow, username: &str, cause: &str, now_ms: u64) -> Outcome {
        // One stable line per failure, for fail2ban and the like.
        tracing::warn!(
            target: "kolokol::auth",
            "auth failure: src={} user=\"{}\" realm=\"{}\" cause={cause}",
            flow.remote.ip(),
            username.escape_debug(),
            self.config.realm
        );
        let mut observations = vec![Observation::AuthFailure];
        // On a stream the failing connection pays first; its source is banned only when
        // its connections keep being closed.
        let source_failed = match flow.connection {
            Some(c) if self.connection_pike.record_failure(c, now_ms) == Verdict::Banned => {
                tracing::warn!(
                    target: "kolokol::auth",
                    "connection closed: src={} after repeated auth failures",
                    flow.remote.ip()
                );
                observations.push(Observation::ConnectionBanned(c));
                true
            }
            Some(_) => false,
            None => true,
        };
        if source_failed && self.pike.record_failure(flow.remote.ip(), now_ms) == Verdict::Banned {
            tracing::warn!(
                target: "kolokol::auth",
                "source banned: src={} for {}s",
                flow.remote.ip(),
                self.config.pike.ban_ms / 1000
            );
            observations.push(Observation::Banned);
        }
        Outcome {
            reply: Some(Reply::new(403, "Forbidden").stateful()),
            observations,
        }
    }

    fn done(reply: Reply) -> Outcome {
        Outcome {
            reply: Some(reply),
            observations: Vec::new(),
        }
    }

    /// Checks the request's digest credentials for our realm: the username on success,
    /// else the challenge or refusal to send. Used for REGISTER (401) and for INVITEs
    /// from users (407), so calls get the same brute-force protection as registrations.
    pub fn authenticate(
        &self,
        req: &Request<'_>,
        flow: &Flow,
        role: AuthRole,
        now_ms: u64,
    ) -> Result<String, Outcome> {
        // Our realm's credentials; others (for a proxy further on) are not ours to read.
        let header = req
            .scan
            .all(role.credentials_header())
            .filter_map(Credentials::parse)
            .find(|c| c.realm == self.config.realm);
        // Other schemes (RFC 4475 regaut01) or another realm's credentials: challenge.
        let Some(creds) = header else {
            return Err(Self::done(self.challenge(role, flow, now_ms, false)));
        };
        if !self.algorithms.contains(&creds.algorithm) {
            return Err(Self::done(self.challenge(role, flow, now_ms, false)));
        }
        // With qop=auth the response covers nc and cnonce, and nc must rise. Without qop
        // nothing covers nc, so such a nonce serves exactly once (as if nc were at its end).
        let nc = match (creds.qop, creds.nc, creds.cnonce) {
            (None, _, _) => u32::MAX,
            (Some(q), Some(nc), Some(_)) if q.eq_ignore_ascii_case("auth") => nc,
            (Some(q), _, _) if q.eq_ignore_ascii_case("auth") => {
                return Err(Self::done(
                    Reply::new(400, "Digest qop=auth Needs nc And cnonce").stateful(),
                ));
            }
            (Some(_), _, _) => return Err(Self::done(self.challenge(role, flow, now_ms, false))),
        };
        let account = self.directory.account(creds.username);
        let ha1 = match &account {
            Some(a) => Cow::Borrowed(a.ha1(creds.algorithm)),
            None => Cow::Owned(self.nonces.decoy_ha1(
                creds.algorithm,
                creds.username,
                &self.config.realm,
            )),
        };
        let expected = creds.expected_response(&ha1, req.method);
        let account = match account {
            Some(a) if digest::digest_eq(&expected, creds.response) => a,
            _ => return Err(self.failure(flow, creds.username, "credentials", now_ms)),
        };
        if account.websocket_only && !matches!(flow.transport, Transport::Ws | Transport::Wss) {
            return Err(self.failure(flow, creds.username, "websocket-only", now_ms));
        }
        // The response covers `uri`, not the Request-URI: unless they name the same target,
        // credentials seen on one INVITE would place a call to any number.
        if !digest_uri_matches(creds.uri, req.uri) {
            return Err(self.failure(flow, creds.username, "uri-mismatch", now_ms));
        }
        match self.nonces.check(creds.nonce, nc, now_ms) {
            NonceCheck::Fresh => Ok(account.username),
            NonceCheck::Stale => Err(Self::done(self.challenge(role, flow, now_ms, true))),
            NonceCheck::Replayed => {
                Err(self.failure(flow, creds.username, "replayed-nonce-count", now_ms))
            }
            NonceCheck::Forged => Err(self.failure(flow, creds.username, "forged-nonce", now_ms)),
        }
    }

    pub fn register(&self, req: &Request<'_>, flow: &Flow, now_ms: u64) -> Outcome {
        if self.pike.is_banned(&flow.remote.ip(), now_ms) {
            return Outcome {
                reply: None,
                observations: Vec::new(),
            };
        }
        let to_uri = req.to_uri();
        if grammar::sip_uri_rest(to_uri).is_none() {
            return Self::done(Reply::new(416, "Unsupported URI Scheme In To"));
        }
        let Some(aor) = Request::uri_user(to_uri) else {
            return Self::done(Reply::new(404, "Not Found"));
        };
        let username = match self.authenticate(req, flow, AuthRole::Registrar, now_ms) {
            Ok(u) => u,
            Err(outcome) => return outcome,
        };
        let creds_username = username.as_str();
        if creds_username != aor {
            return self.failure(flow, creds_username, "aor-mismatch", now_ms);
        }
        Self::done(self.update_bindings(req, aor, flow, now_ms))
    }

    fn update_bindings(&self, req: &Request<'_>, aor: &str, flow: &Flow, now_ms: u64) -> Reply {
        let contacts: Vec<&str> = req
            .scan
            .all("Contact")
            .flat_map(grammar::split_list)
            .collect();
        let header_expires = req.header("Expires").and_then(grammar::parse_delta_seconds);
        let wildcard = contacts.contains(&"*");
        if wildcard && (contacts.len() != 1 || header_expires != Some(0)) {
            return Reply::new(400, "Invalid Wildcard Contact").stateful();
        }
        let mut requested = Vec::with_capacity(contacts.len());
        for c in contacts.iter().filter(|c| **c != "*") {
            let (uri, params) = grammar::split_name_addr(c);
            let mut expires = header_expires;
            let mut q = None;
            for (name, value) in grammar::params(params) {
                if name.eq_ignore_ascii_case("expires") {
                    expires = value.and_then(grammar::parse_delta_seconds).or(expires);
                } else if name.eq_ignore_ascii_case("q") {
                    q = value
                        .and_then(|v| v.parse::<f32>().ok())
                        .filter(|q| (0.0..=1.0).contains(q));
                }
            }
            let expires = expires.unwrap_or(self.config.default_expires);
            if expires != 0 && expires < self.config.min_expires {
                return Reply::new(423, "Interval Too Brief")
                    .with("Min-Expires", self.config.min_expires.to_string())
                    .stateful();
            }
            requested.push((uri, q, expires.min(self.config.max_expires)));
        }
        let call_id = req.call_id();
        let cseq = req.cseq;
        let user_agent = req.header("User-Agent").map(str::to_string);
        let result = self.location.update(aor, now_ms, |current| {
            // RFC 3261 §10.3 step 7: an older or repeated CSeq from the same Call-ID
            // must not change anything.
            let reordered = current.iter().any(|b| {
                b.call_id == call_id
                    && b.cseq >= cseq
                    && (wildcard || requested.iter().any(|r| r.0 == b.contact))
            });
            if reordered {
                return Err(Reply::new(500, "Out Of Order CSeq").with("Retry-After", "1".into()));
            }
            if wildcard {
                return Ok(Vec::new());
            }
            let mut next: Vec<Binding> = current
                .iter()
                .filter(|b| !requested.iter().any(|r| r.0 == b.contact))
                .cloned()
                .collect();
            for (uri, q, expires) in &requested {
                if *expires == 0 {
                    continue;
                }
                next.push(Binding {
                    aor: aor.to_string(),
                    contact: uri.to_string(),
                    q: *q,
                    expires_at_ms: now_ms + u64::from(*expires) * 1000,
                    registered_at_ms: now_ms,
                    call_id: call_id.to_string(),
                    cseq,
                    flow: *flow,
                    user_agent: user_agent.clone(),
                });
            }
            if next.len() > self.config.max_contacts {
                return Err(Reply::new(403, "Too Many Contacts"));
            }
            Ok(next)
        });
        let bindings = match result {
            Ok(b) => b,
            Err(reply) => return reply.stateful(),
        };
        let mut reply = Reply::new(200, "OK").stateful();
        for b in &bindings {
            let left = b.expires_at_ms.saturating_sub(now_ms).div_ceil(1000);
            let q = b.q.map(|q| format!(";q={q}")).unwrap_or_default();
            reply = reply.with("Contact", format!("<{}>;expires={left}{q}", b.contact));
        }
        reply.with("Date", httpdate(now_ms))
    }
}

/// RFC 1123 date for the Date header (phones without NTP set their clock from it).
fn httpdate(now_ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = now_ms / 1000;
    let days = secs / 86_400;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {d:02} {} {year} {h:02}:{m:02}:{s:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

#[cfg(test)]
mod tests;
