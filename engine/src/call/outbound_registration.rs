//! kolokol registering itself with providers: one REGISTER client per trunk that asks for
//! it, answering the provider's digest challenge, refreshing at half the granted time and
//! retrying after failures.

use super::leg::{LocalAddresses, Retransmit, TIMEOUT_MS};
use super::message::{self, RequestWriter};
use crate::registrar::digest;
use crate::service::Outgoing;
use crate::sip;
use crate::transport::Transport;
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;

/// What we ask the provider for.
const EXPIRES_S: u64 = 300;
/// Wait after a failure before trying again.
const RETRY_MS: u64 = 30_000;

/// A trunk to register, as configuration gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationTarget {
    pub trunk_id: i64,
    pub address: SocketAddr,
    pub username: String,
    pub password: String,
}

/// Where a registration stands, for the API.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RegistrationStatus {
    /// `trying`, `registered` or `failed`.
    pub state: &'static str,
    /// Until when the provider keeps us registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// The provider's last final answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
}

#[derive(Debug)]
struct InFlight {
    branch: String,
    bytes: Vec<u8>,
    retransmit: Retransmit,
    deadline: u64,
    /// This one carried credentials: a second challenge means they are wrong.
    authenticated: bool,
}

#[derive(Debug)]
struct Registration {
    target: RegistrationTarget,
    call_id: String,
    tag: String,
    cseq: u32,
    in_flight: Option<InFlight>,
    next_at: u64,
    until: Option<u64>,
    last_status: Option<u16>,
}

#[derive(Debug, Default)]
pub struct OutboundRegistrations {
    by_trunk: HashMap<i64, Registration>,
}

impl OutboundRegistrations {
    /// The trunks to register now; registrations of trunks no longer listed are dropped
    /// (they simply expire at the provider).
    pub fn set(&mut self, targets: Vec<RegistrationTarget>, now: u64) {
        self.by_trunk
            .retain(|id, r| targets.iter().any(|t| t.trunk_id == *id && *t == r.target));
        for t in targets {
            self.by_trunk
                .entry(t.trunk_id)
                .or_insert_with(|| Registration {
                    target: t,
                    call_id: message::token(),
                    tag: message::token(),
                    cseq: 0,
                    in_flight: None,
                    next_at: now,
                    until: None,
                    last_status: None,
                });
        }
    }

    pub fn status(&self, trunk_id: i64, now: u64) -> Option<RegistrationStatus> {
        let r = self.by_trunk.get(&trunk_id)?;
        let registered = r.until.is_some_and(|u| u > now);
        Some(RegistrationStatus {
            state: match (registered, r.last_status) {
                (true, _) => "registered",
                (false, Some(s)) if s >= 300 => "failed",
                _ => "trying",
            },
            until_ms: r.until.filter(|_| registered),
            last_status: r.last_status,
        })
    }

    /// Sends what is due: new REGISTERs, retransmissions; gives up on silent providers.
    pub fn tick(&mut self, local: &LocalAddresses, now: u64, out: &mut Vec<Outgoing>) {
        for r in self.by_trunk.values_mut() {
            let Some(f) = &mut r.in_flight else {
                if now >= r.next_at {
                    out.push(r.register(local, None, now));
                }
                continue;
            };
            if now >= f.deadline {
                r.in_flight = None;
                r.last_status = Some(408);
                r.next_at = now + RETRY_MS;
            } else if f.retransmit.due(now) {
                out.push(send(&r.target, f.bytes.clone()));
            }
        }
    }

    /// A response to one of our REGISTERs. False when it is not ours.
    pub fn response(
        &mut self,
        status: u16,
        scan: &sip::Scan<'_>,
        local: &LocalAddresses,
        now: u64,
        out: &mut Vec<Outgoing>,
    ) -> bool {
        let call_id = scan.first("Call-ID").unwrap_or_default();
        let Some(r) = self.by_trunk.values_mut().find(|r| r.call_id == call_id) else {
            return false;
        };
        let ours = r
            .in_flight
            .as_ref()
            .is_some_and(|f| message::top_branch(scan) == Some(f.branch.as_str()));
        if !ours || status < 200 {
            return true;
        }
        let authenticated = r.in_flight.take().is_some_and(|f| f.authenticated);
        r.last_status = Some(status);
        match status {
            200..=299 => {
                let granted = granted_expires(scan).unwrap_or(EXPIRES_S).max(10);
                r.until = Some(now + granted * 1000);
                r.next_at = now + granted * 1000 / 2;
            }
            401 | 407 if !authenticated => {
                let header = if status == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                let uri = format!("sip:{}", r.target.address);
                let answer = scan.all(header).find_map(|c| {
                    digest::answer(
                        c,
                        "REGISTER",
                        &uri,
                        &r.target.username,
                        &r.target.password,
                        &message::token(),
                    )
                });
                match answer {
                    Some(a) => {
                        let name = if status == 401 {
                            "Authorization"
                        } else {
                            "Proxy-Authorization"
                        };
                        out.push(r.register(local, Some((name, a)), now));
                    }
                    None => r.next_at = now + RETRY_MS,
                }
            }
            _ => {
                r.until = None;
                r.next_at = now + RETRY_MS;
            }
        }
        true
    }
}

impl Registration {
    fn register(
        &mut self,
        local: &LocalAddresses,
        credentials: Option<(&'static str, String)>,
        now: u64,
    ) -> Outgoing {
        self.cseq += 1;
        let branch = message::branch();
        let host = self.target.address;
        let aor = format!("<sip:{}@{host}>", self.target.username);
        let mut w = RequestWriter::new("REGISTER", &format!("sip:{host}"))
            .header("Via", local.via(Transport::Udp, &branch))
            .header("Max-Forwards", 70)
            .header("From", format!("{aor};tag={}", self.tag))
            .header("To", &aor)
            .header("Call-ID", &self.call_id)
            .header("CSeq", format!("{} REGISTER", self.cseq))
            .header(
                "Contact",
                format!("<sip:{}@{}>", self.target.username, local.udp),
            )
            .header("Expires", EXPIRES_S);
        let authenticated = credentials.is_some();
        if let Some((name, value)) = credentials {
            w = w.header(name, value);
        }
        let bytes = w.finish(b"", None);
        self.in_flight = Some(InFlight {
            branch,
            bytes: bytes.clone(),
            retransmit: Retransmit::start(now, true),
            deadline: now + TIMEOUT_MS,
            authenticated,
        });
        send(&self.target, bytes)
    }
}

fn send(target: &RegistrationTarget, bytes: Vec<u8>) -> Outgoing {
    Outgoing {
        bytes,
        to: target.address,
        connection: None,
    }
}

/// The time the provider granted: our Contact's `expires`, else the Expires header.
fn granted_expires(scan: &sip::Scan<'_>) -> Option<u64> {
    let from_contact = scan.all("Contact").find_map(|c| {
        sip::grammar::params(sip::grammar::split_name_addr(c).1)
            .find(|(n, _)| n.eq_ignore_ascii_case("expires"))
            .and_then(|(_, v)| v?.parse().ok())
    });
    from_contact.or_else(|| scan.first("Expires")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalAddresses {
        LocalAddresses {
            udp: ([192, 0, 2, 1], 5060).into(),
            tcp: ([192, 0, 2, 1], 5060).into(),
            tls: ([192, 0, 2, 1], 5061).into(),
        }
    }

    fn reply(request: &[u8], status: u16, extra: &str) -> Vec<u8> {
        let scan = sip::scan::scan(request).unwrap();
        let mut b = sip::ResponseBuilder::new(&scan, status, "X", Some("prov"), None);
        for line in extra.split("\r\n").filter(|l| !l.is_empty()) {
            let (n, v) = line.split_once(": ").unwrap();
            b = b.header(n, v);
        }
        b.finish(b"", None)
    }

    fn feed(regs: &mut OutboundRegistrations, bytes: &[u8], now: u64) -> Vec<Outgoing> {
        let Ok(sip::Inbound::Response(status, scan)) = sip::decode(bytes) else {
            panic!("a response")
        };
        let mut out = Vec::new();
        assert!(regs.response(status, &scan, &local(), now, &mut out));
        out
    }

    #[test]
    fn registers_with_digest_refreshes_and_retries() {
        let mut regs = OutboundRegistrations::default();
        regs.set(
            vec![RegistrationTarget {
                trunk_id: 1,
                address: ([203, 0, 113, 5], 5060).into(),
                username: "acc".into(),
                password: "pw".into(),
            }],
            0,
        );
        let mut out = Vec::new();
        regs.tick(&local(), 0, &mut out);
        assert_eq!(out.len(), 1);
        let first = String::from_utf8(out[0].bytes.clone()).unwrap();
        assert!(first.starts_with("REGISTER sip:203.0.113.5:5060 SIP/2.0"));
        assert_eq!(regs.status(1, 0).unwrap().state, "trying");
        // Lost: retransmitted after T1.
        let mut again = Vec::new();
        regs.tick(&local(), 500, &mut again);
        assert_eq!(again.len(), 1);

        let challenge = reply(
            &out[0].bytes,
            401,
            "WWW-Authenticate: Digest realm=\"prov\", nonce=\"n1\", qop=\"auth\"\r\n",
        );
        let authed = feed(&mut regs, &challenge, 600);
        assert_eq!(authed.len(), 1);
        let text = String::from_utf8(authed[0].bytes.clone()).unwrap();
        assert!(text.contains("CSeq: 2 REGISTER"), "{text}");
        let auth = text
            .lines()
            .find_map(|l| l.strip_prefix("Authorization: "))
            .unwrap();
        let c = digest::Credentials::parse(auth).unwrap();
        let ha1 = digest::ha1(digest::Algorithm::Md5, "acc", "prov", "pw");
        assert_eq!(c.response, c.expected_response(&ha1, "REGISTER"));

        let ok = reply(
            &authed[0].bytes,
            200,
            "Contact: <sip:acc@192.0.2.1:5060>;expires=120\r\n",
        );
        assert!(feed(&mut regs, &ok, 700).is_empty());
        let s = regs.status(1, 700).unwrap();
        assert_eq!((s.state, s.until_ms), ("registered", Some(120_700)));
        // Refreshed at half the granted time.
        let mut refresh = Vec::new();
        regs.tick(&local(), 60_699, &mut refresh);
        assert!(refresh.is_empty());
        regs.tick(&local(), 60_700, &mut refresh);
        assert_eq!(refresh.len(), 1);

        // Wrong credentials: a second challenge is a failure, retried later.
        let challenge = reply(
            &refresh[0].bytes,
            401,
            "WWW-Authenticate: Digest realm=\"prov\", nonce=\"n2\"\r\n",
        );
        let authed = feed(&mut regs, &challenge, 60_800);
        let refused = reply(
            &authed[0].bytes,
            401,
            "WWW-Authenticate: Digest realm=\"prov\", nonce=\"n3\"\r\n",
        );
        assert!(feed(&mut regs, &refused, 60_900).is_empty());
        assert_eq!(regs.status(1, 121_000).unwrap().state, "failed");
        let mut retry = Vec::new();
        regs.tick(&local(), 60_900 + RETRY_MS, &mut retry);
        assert_eq!(retry.len(), 1);
    }
}
