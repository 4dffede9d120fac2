//! The SIP service: takes one inbound message on a flow and says what to send back.
//! Sans-IO like the registrar under it: the transports own the sockets and the clock.

use crate::registrar::{Observation, Registrar, Reply};
use crate::sip::{self, response::stateless_tag, Inbound, Rejected, Request, ResponseBuilder};
use crate::transport::Flow;
use dashmap::DashMap;
use metrics::counter;
use std::net::SocketAddr;

/// Methods we act on; also the Allow header.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER";
/// Extensions we support (none yet): a Require naming anything else gets 420.
pub const SUPPORTED: &[&str] = &[];
/// How long a UDP server transaction keeps its final response (Timer J, 64*T1).
pub const TIMER_J_MS: u64 = 32_000;

/// A response and where to send it (the address only matters on UDP).
#[derive(Debug)]
pub struct Outgoing {
    pub bytes: Vec<u8>,
    pub to: SocketAddr,
}

pub struct SipService {
    pub registrar: Registrar,
    /// Final responses of UDP server transactions that changed state, so that a
    /// retransmitted request is answered the same way instead of being processed twice.
    completed: DashMap<String, (Vec<u8>, u64)>,
}

fn method_label(method: &str) -> &'static str {
    match method {
        "REGISTER" => "REGISTER",
        "OPTIONS" => "OPTIONS",
        "INVITE" => "INVITE",
        "ACK" => "ACK",
        "BYE" => "BYE",
        "CANCEL" => "CANCEL",
        _ => "other",
    }
}

fn class_label(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "6xx",
    }
}

/// Where a response to this request goes on UDP (RFC 3261 §18.2.2 with RFC 3581).
fn reply_address(req_via: &str, flow: &Flow) -> SocketAddr {
    if flow.transport.is_reliable() {
        return flow.remote;
    }
    let (head, params) = req_via.split_at(req_via.find(';').unwrap_or(req_via.len()));
    if sip::grammar::params(params).any(|(n, _)| n.eq_ignore_ascii_case("rport")) {
        return flow.remote;
    }
    let sent_by = head.split_whitespace().last().unwrap_or_default();
    let port = sent_by
        .rsplit_once(':')
        .filter(|(h, _)| !h.ends_with(':') && !sent_by.ends_with(']'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(5060);
    SocketAddr::new(flow.remote.ip(), port)
}

fn transaction_key(req: &Request<'_>) -> String {
    let via = req.top_via();
    let branch = sip::grammar::params(&via[via.find(';').unwrap_or(via.len())..])
        .find(|(n, _)| n.eq_ignore_ascii_case("branch"))
        .and_then(|(_, v)| v)
        .unwrap_or_default();
    format!("{branch}|{}|{}|{}", req.method, req.call_id(), req.cseq)
}

impl SipService {
    pub fn new(registrar: Registrar) -> Self {
        SipService {
            registrar,
            completed: DashMap::new(),
        }
    }

    /// Handles one message; returns the response to send, if any.
    pub fn handle(&self, data: &[u8], flow: &Flow, now_ms: u64) -> Option<Outgoing> {
        if self.registrar.is_banned(flow, now_ms) {
            counter!("kolokol_sip_dropped_total", "reason" => "banned").increment(1);
            return None;
        }
        let req = match sip::decode(data) {
            Ok(Inbound::Request(req)) => req,
            Ok(Inbound::KeepAlive) => {
                return flow.transport.is_reliable().then(|| Outgoing {
                    bytes: b"\r\n".to_vec(),
                    to: flow.remote,
                })
            }
            Ok(Inbound::Response(..)) => {
                // No client transactions exist yet; a stray response is dropped (RFC 3261 §18.1.2).
                counter!("kolokol_sip_dropped_total", "reason" => "stray-response").increment(1);
                return None;
            }
            Err(Rejected::Drop(why)) => {
                tracing::debug!(src = %flow.remote, why, "dropped unanswerable message");
                counter!("kolokol_sip_dropped_total", "reason" => "malformed").increment(1);
                return None;
            }
            Err(Rejected::Respond {
                status,
                reason,
                scan,
            }) => {
                tracing::debug!(src = %flow.remote, status, reason, "rejected malformed request");
                counter!("kolokol_sip_requests_total", "method" => "malformed").increment(1);
                counter!("kolokol_sip_responses_total", "class" => class_label(status))
                    .increment(1);
                let via = scan
                    .first("Via")
                    .map(|v| sip::grammar::split_list(v)[0].to_string())
                    .unwrap_or_default();
                let bytes = ResponseBuilder::new(
                    &scan,
                    status,
                    reason,
                    Some(&stateless_tag(&scan)),
                    Some(flow.remote),
                )
                .finish(b"", None);
                return Some(Outgoing {
                    bytes,
                    to: reply_address(&via, flow),
                });
            }
        };
        counter!("kolokol_sip_requests_total", "method" => method_label(req.method)).increment(1);
        if req.method == "ACK" {
            return None;
        }
        let to = reply_address(req.top_via(), flow);
        let key = (!flow.transport.is_reliable()).then(|| transaction_key(&req));
        if let Some(cached) = key.as_ref().and_then(|k| self.completed.get(k)) {
            counter!("kolokol_sip_retransmissions_total").increment(1);
            return Some(Outgoing {
                bytes: cached.0.clone(),
                to,
            });
        }
        let reply = self.route(&req, flow, now_ms)?;
        counter!("kolokol_sip_responses_total", "class" => class_label(reply.status)).increment(1);
        let mut builder = ResponseBuilder::new(
            &req.scan,
            reply.status,
            &reply.reason,
            Some(&stateless_tag(&req.scan)),
            Some(flow.remote),
        );
        for (name, value) in &reply.headers {
            builder = builder.header(name, value);
        }
        let bytes = builder.finish(b"", None);
        if let (true, Some(key)) = (reply.stateful, key) {
            self.completed
                .insert(key, (bytes.clone(), now_ms + TIMER_J_MS));
        }
        Some(Outgoing { bytes, to })
    }

    fn route(&self, req: &Request<'_>, flow: &Flow, now_ms: u64) -> Option<Reply> {
        if !uri_scheme_supported(req.uri) {
            return Some(Reply::new(416, "Unsupported URI Scheme"));
        }
        let unsupported: Vec<&str> = req
            .scan
            .all("Require")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|o| !o.is_empty() && !SUPPORTED.contains(o))
            .collect();
        if !unsupported.is_empty() && req.method != "CANCEL" {
            return Some(
                Reply::new(420, "Bad Extension").with("Unsupported", unsupported.join(", ")),
            );
        }
        let mut r = match req.method {
            "REGISTER" => {
                let outcome = self.registrar.register(req, flow, now_ms);
                for o in outcome.observations {
                    match o {
                        Observation::AuthFailure => {
                            counter!("kolokol_auth_failures_total").increment(1)
                        }
                        Observation::Banned => counter!("kolokol_pike_bans_total").increment(1),
                    }
                }
                outcome.reply?
            }
            "OPTIONS" => {
                let r = Reply::new(200, "OK").with("Accept", "application/sdp".into());
                return Some(with_allow(r));
            }
            "INVITE" => return Some(self.invite(req)),
            "BYE" | "CANCEL" => Reply::new(481, "Call/Transaction Does Not Exist"),
            m if sip::KNOWN_METHODS.contains(&m) => {
                with_allow(Reply::new(405, "Method Not Allowed"))
            }
            _ => with_allow(Reply::new(501, "Not Implemented")),
        };
        if req.max_forwards == Some(0) && r.status == 481 {
            r = Reply::new(483, "Too Many Hops");
        }
        Some(r)
    }

    /// INVITE as a UAS checks it before any routing (RFC 3261 §8.2.3); call control
    /// arrives with the calls issue, until then no callee is reachable.
    fn invite(&self, req: &Request<'_>) -> Reply {
        if req.max_forwards == Some(0) {
            return Reply::new(483, "Too Many Hops");
        }
        let body_type = req.header("Content-Type").map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        if !req.scan.body.is_empty() {
            if let Some(t) = body_type.as_deref() {
                if t != "application/sdp" && !t.starts_with("multipart/") {
                    return Reply::new(415, "Unsupported Media Type")
                        .with("Accept", "application/sdp".into());
                }
            }
        }
        if let Some(accept) = req.header("Accept") {
            let ok = accept
                .split(',')
                .map(|a| a.split(';').next().unwrap_or("").trim())
                .any(|a| {
                    a.eq_ignore_ascii_case("application/sdp")
                        || a == "*/*"
                        || a.eq_ignore_ascii_case("application/*")
                });
            if !ok {
                return Reply::new(406, "Not Acceptable");
            }
        }
        Reply::new(480, "Temporarily Unavailable")
    }

    /// Expires completed transactions and registrar state. Call about once a second.
    pub fn sweep(&self, now_ms: u64) {
        self.completed.retain(|_, (_, until)| *until > now_ms);
        self.registrar.sweep(now_ms);
    }
}

fn with_allow(r: Reply) -> Reply {
    r.with("Allow", ALLOW.into())
}

fn uri_scheme_supported(uri: &str) -> bool {
    let scheme = uri.split(':').next().unwrap_or_default();
    ["sip", "sips", "tel"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
}
