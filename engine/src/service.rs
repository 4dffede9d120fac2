//! The SIP service: takes one inbound message on a flow and says what to send back.
//! Sans-IO like the registrar under it: the transports own the sockets and the clock.

use crate::browser::BrowserMedia;
use crate::call::routing::Dialplan;
use crate::call::{CallControl, Caller, Outputs};
use crate::event::Record;
use crate::registrar::AuthRole;
use crate::registrar::{Observation, Registrar, Reply};
use crate::sip::{self, response::stateless_tag, Inbound, Rejected, Request, ResponseBuilder};
use crate::transport::Flow;
use crate::transport::Sender;
use dashmap::DashMap;
use metrics::counter;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Methods we act on; also the Allow header.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, UPDATE, INFO, REFER";
/// Extensions we support (none yet): a Require naming anything else gets 420.
pub const SUPPORTED: &[&str] = &[];
/// How long a UDP server transaction keeps its final response (Timer J, 64*T1).
pub const TIMER_J_MS: u64 = 32_000;

/// A message and where to send it: over a stream connection when it has one, else by
/// UDP to the address.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub bytes: Vec<u8>,
    pub to: SocketAddr,
    pub connection: Option<u64>,
}

/// Call control with what drives it: the lock (every transport thread and the clock
/// task share one state machine), how its messages leave, and where its events go.
pub struct CallPlane {
    pub control: Mutex<CallControl>,
    pub dialplan: Arc<dyn Dialplan>,
    pub sender: Arc<Sender>,
    pub journal: mpsc::UnboundedSender<Record>,
    /// WebRTC for browser legs; none: browsers' offers are refused as any foreign SDP.
    pub browser: Option<Arc<BrowserMedia>>,
}

impl CallPlane {
    /// Runs one step of call control and sends what it produced.
    pub fn step<R>(&self, f: impl FnOnce(&mut CallControl, &mut Outputs) -> R) -> R {
        let mut out = Outputs::default();
        let r = {
            let mut control = self.control.lock().unwrap_or_else(|e| e.into_inner());
            let r = f(&mut control, &mut out);
            // Records are queued under the lock, so the log keeps call control's order
            // even when two threads step one after the other (a caller's `entered` never
            // lands after the `offered` a tick made next).
            for e in out.events.drain(..) {
                let _ = self.journal.send(Record::Call(e));
            }
            for e in out.queue_events.drain(..) {
                let _ = self.journal.send(Record::Queue(e));
            }
            r
        };
        let mut lost: Vec<u64> = Vec::new();
        for mut m in out.messages {
            if let Some(browser) = &self.browser {
                browser.outbound(&mut m.bytes, m.connection);
            }
            let connection = m.connection;
            if !self.sender.send(m) {
                lost.extend(connection.filter(|c| !lost.contains(c)));
            }
        }
        // A message for a connection that is gone (closed, or named by a binding from
        // before a restart): its legs are lost, so forking moves on to the callee's other
        // devices or the caller hears why, instead of waiting for a reply that never comes.
        for connection in lost {
            self.connection_lost(connection, crate::clock::now_ms());
        }
        r
    }

    /// A connection closed: call legs on it are gone, and its browser media.
    pub fn connection_lost(&self, connection: u64, now_ms: u64) {
        self.step(|c, out| c.connection_closed(connection, now_ms, out));
        if let Some(browser) = &self.browser {
            browser.connection_closed(connection);
        }
    }
}

pub struct SipService {
    pub registrar: Registrar,
    /// Whether new calls are let in now (overload control).
    pub admission: crate::admission::Admission,
    /// Final responses of UDP server transactions that changed state, so that a
    /// retransmitted request is answered the same way instead of being processed twice.
    completed: DashMap<String, (Vec<u8>, u64)>,
    pub calls: Option<CallPlane>,
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
            admission: Default::default(),
            calls: None,
        }
    }

    /// Refuse new calls while datagrams wait longer than `limit_ms` (0: never).
    pub fn with_admission(mut self, limit_ms: u64) -> Self {
        self.admission = crate::admission::Admission::new(limit_ms);
        self
    }

    /// With call control: INVITEs place calls instead of getting 480.
    pub fn with_calls(mut self, plane: CallPlane) -> Self {
        self.calls = Some(plane);
        self
    }

    /// Handles one message; returns the response to send, if any.
    pub fn handle(&self, data: &[u8], flow: &Flow, now_ms: u64) -> Option<Outgoing> {
        if self.registrar.is_banned(flow, now_ms) {
            counter!("kolokol_sip_dropped_total", "reason" => "banned").increment(1);
            return None;
        }
        let translated = self
            .calls
            .as_ref()
            .and_then(|p| p.browser.as_ref())
            .and_then(|b| b.inbound(data, flow));
        let mut reply = self.handle_plain(translated.as_deref().unwrap_or(data), flow, now_ms);
        if let (Some(r), Some(browser)) = (
            reply.as_mut(),
            self.calls.as_ref().and_then(|p| p.browser.as_ref()),
        ) {
            browser.outbound(&mut r.bytes, r.connection);
        }
        reply
    }

    fn handle_plain(&self, data: &[u8], flow: &Flow, now_ms: u64) -> Option<Outgoing> {
        let req = match sip::decode(data) {
            Ok(Inbound::Request(req)) => req,
            Ok(Inbound::KeepAlive) => {
                return flow.transport.is_reliable().then(|| Outgoing {
                    bytes: b"\r\n".to_vec(),
                    to: flow.remote,
                    connection: flow.connection,
                })
            }
            Ok(Inbound::Response(status, scan)) => {
                counter!("kolokol_sip_responses_received_total", "class" => class_label(status))
                    .increment(1);
                match &self.calls {
                    Some(plane) => plane.step(|c, out| c.response(status, &scan, now_ms, out)),
                    // A response to nothing we sent is dropped (RFC 3261 §18.1.2).
                    None => counter!("kolokol_sip_dropped_total", "reason" => "stray-response")
                        .increment(1),
                }
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
                    connection: flow.connection,
                });
            }
        };
        counter!("kolokol_sip_requests_total", "method" => method_label(req.method)).increment(1);
        // Overloaded: a new call is refused before anything else is spent on it — not even
        // call control's lock, which the calls already taken need. (A retransmission of an
        // INVITE already answered is refused too; its UAC has the answer or will hear BYE.)
        let new_call = req.method == "INVITE"
            && req
                .header("To")
                .is_none_or(|t| crate::call::message::tag(t).is_none());
        if new_call && self.calls.is_some() && self.admission.overloaded() {
            counter!("kolokol_calls_refused_total", "reason" => "overload").increment(1);
            let reply = Reply::new(503, "Service Unavailable").with("Retry-After", "2".into());
            return Some(self.stateless(&req, flow, reply));
        }
        if let Some(plane) = &self.calls {
            let in_call = plane.step(|c, out| {
                if new_call {
                    c.retransmitted_invite(&req, out)
                } else {
                    c.request(&req, data, flow, now_ms, out)
                }
            });
            if in_call {
                return None;
            }
        }
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
                connection: flow.connection,
            });
        }
        let reply = self.route(&req, data, flow, now_ms)?;
        let stateful = reply.stateful;
        let out = self.stateless(&req, flow, reply);
        if let (true, Some(key)) = (stateful, key) {
            self.completed
                .insert(key, (out.bytes.clone(), now_ms + TIMER_J_MS));
        }
        Some(out)
    }

    /// The response to a request, built from the request alone.
    fn stateless(&self, req: &Request<'_>, flow: &Flow, reply: Reply) -> Outgoing {
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
        Outgoing {
            bytes: builder.finish(b"", None),
            to: reply_address(req.top_via(), flow),
            connection: flow.connection,
        }
    }

    /// Counts what the registrar saw, and closes a connection it gave up on (after the
    /// answer in hand has been queued on it).
    fn observe(&self, observations: &[Observation]) {
        for o in observations {
            match o {
                Observation::AuthFailure => counter!("kolokol_auth_failures_total").increment(1),
                Observation::Banned => counter!("kolokol_pike_bans_total").increment(1),
                Observation::ConnectionBanned(c) => {
                    counter!("kolokol_pike_connection_bans_total").increment(1);
                    if let Some(plane) = &self.calls {
                        plane.sender.connections.shut(*c);
                    }
                }
            }
        }
    }

    fn route(&self, req: &Request<'_>, data: &[u8], flow: &Flow, now_ms: u64) -> Option<Reply> {
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
                self.observe(&outcome.observations);
                outcome.reply?
            }
            "OPTIONS" => {
                let r = Reply::new(200, "OK").with("Accept", "application/sdp".into());
                return Some(with_allow(r));
            }
            "INVITE" => return self.invite(req, data, flow, now_ms),
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

    /// A new INVITE: checked as a UAS would (RFC 3261 §8.2.3), its caller identified (a
    /// trunk by source address, anyone else by digest: nobody reaches a trunk without
    /// credentials), then handed to call control. `None` when call control answers.
    fn invite(&self, req: &Request<'_>, data: &[u8], flow: &Flow, now_ms: u64) -> Option<Reply> {
        if let Err(r) = Self::check_invite(req) {
            return Some(r);
        }
        let Some(plane) = &self.calls else {
            return Some(Reply::new(480, "Temporarily Unavailable"));
        };
        if req
            .header("To")
            .and_then(crate::call::message::tag)
            .is_some()
        {
            // A re-INVITE for a dialog no call knows.
            return Some(Reply::new(481, "Call/Transaction Does Not Exist"));
        }
        // While draining for shutdown nothing new starts, whoever asks.
        if let Some(retry_after) =
            plane.step(|c, _| c.is_draining().then(|| c.config().retry_after_s))
        {
            return Some(
                Reply::new(503, "Service Unavailable").with("Retry-After", retry_after.to_string()),
            );
        }
        let caller = match plane.dialplan.trunk_from(flow) {
            Some(t) => Caller::Trunk(t),
            None => {
                let login = match self
                    .registrar
                    .authenticate(req, flow, AuthRole::Proxy, now_ms)
                {
                    Ok(u) => u,
                    Err(outcome) => {
                        self.observe(&outcome.observations);
                        return outcome.reply;
                    }
                };
                match plane.dialplan.user(&login) {
                    Some(u) => Caller::User(u),
                    None => return Some(Reply::new(403, "Forbidden")),
                }
            }
        };
        let refused = plane.step(|c, out| c.invite(req, data, flow, caller, now_ms, out).err());
        refused.map(|r| {
            let reply = Reply::new(r.status, crate::call::message::reason(r.status)).stateful();
            r.headers
                .into_iter()
                .fold(reply, |reply, (n, v)| reply.with(n, v))
        })
    }

    fn check_invite(req: &Request<'_>) -> Result<(), Reply> {
        if req.max_forwards == Some(0) {
            return Err(Reply::new(483, "Too Many Hops"));
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
                    return Err(Reply::new(415, "Unsupported Media Type")
                        .with("Accept", "application/sdp".into()));
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
                return Err(Reply::new(406, "Not Acceptable"));
            }
        }
        Ok(())
    }

    /// Expires completed transactions and registrar state. Call about once a second.
    pub fn sweep(&self, now_ms: u64) {
        self.completed.retain(|_, (_, until)| *until > now_ms);
        self.registrar.sweep(now_ms);
    }

    /// Call control's clock: call every few tens of milliseconds.
    pub fn tick(&self, now_ms: u64) {
        if let Some(plane) = &self.calls {
            plane.step(|c, out| c.tick(now_ms, out));
        }
    }

    /// A stream or WebSocket connection closed: bindings and call legs on it are gone.
    pub fn connection_closed(&self, connection: u64, now_ms: u64) {
        self.registrar.connection_closed(connection);
        if let Some(plane) = &self.calls {
            plane.connection_lost(connection, now_ms);
        }
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
