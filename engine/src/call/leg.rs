//! One side of a call: a SIP dialog (RFC 3261 §12) and the transactions kolokol runs on it.

use super::message::{self, RequestWriter};
use crate::service::Outgoing;
use crate::transport::{Flow, Transport};
use kolokol_media::relay::Endpoint;
use std::net::SocketAddr;

pub const T1_MS: u64 = 500;
pub const T2_MS: u64 = 4_000;
/// 64*T1: how long a transaction waits for its final response or ACK.
pub const TIMEOUT_MS: u64 = 64 * T1_MS;

/// How a leg's device is reached: the flow its requests came on, so NAT and WebSocket
/// devices are reached back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
    pub connection: Option<u64>,
    /// A configured trunk.
    pub trunk: bool,
}

impl From<&Flow> for Peer {
    fn from(f: &Flow) -> Self {
        Peer {
            transport: f.transport,
            addr: f.remote,
            connection: f.connection,
            trunk: false,
        }
    }
}

impl Peer {
    /// Whether the media address in this peer's SDP is believed unproven: a trunk's, or on
    /// a WebSocket the WebRTC gateway's alias (SDP there is always rewritten by kolokol).
    pub fn vouches_for_media(&self) -> bool {
        self.trunk || matches!(self.transport, Transport::Ws | Transport::Wss)
    }

    pub fn send(&self, bytes: Vec<u8>) -> Outgoing {
        Outgoing {
            bytes,
            to: self.addr,
            connection: self.connection,
        }
    }
}

/// Where kolokol says it is, per transport, in Via and Contact.
#[derive(Debug, Clone)]
pub struct LocalAddresses {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub tls: SocketAddr,
}

impl LocalAddresses {
    pub fn via(&self, transport: Transport, branch: &str) -> String {
        match transport {
            Transport::Ws | Transport::Wss => format!(
                "SIP/2.0/{} kolokol.invalid;branch={branch}",
                transport.name().to_ascii_uppercase()
            ),
            t => format!(
                "SIP/2.0/{} {};branch={branch};rport",
                t.name().to_ascii_uppercase(),
                self.sent_by(t)
            ),
        }
    }

    pub fn contact(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("<sip:kolokol@{}>", self.udp),
            Transport::Ws | Transport::Wss => {
                format!(
                    "<sip:kolokol@kolokol.invalid;transport={}>",
                    transport.name()
                )
            }
            t => format!("<sip:kolokol@{};transport={}>", self.sent_by(t), t.name()),
        }
    }

    fn sent_by(&self, t: Transport) -> SocketAddr {
        match t {
            Transport::Tcp => self.tcp,
            Transport::Tls => self.tls,
            _ => self.udp,
        }
    }

    /// The host we put in URIs we make up (From/To of calls we place).
    pub fn host(&self) -> String {
        self.udp.ip().to_string()
    }
}

/// Retransmission schedule of a request or a final response over UDP.
#[derive(Debug, Clone)]
pub struct Retransmit {
    pub next_at: u64,
    pub interval: u64,
    /// Non-INVITE requests and 2xx retransmissions are capped at T2; INVITE's Timer A is not.
    pub capped: bool,
}

impl Retransmit {
    pub fn start(now: u64, capped: bool) -> Self {
        Retransmit {
            next_at: now + T1_MS,
            interval: T1_MS,
            capped,
        }
    }

    /// Whether to send again now; advances the schedule when it does.
    pub fn due(&mut self, now: u64) -> bool {
        if now < self.next_at {
            return false;
        }
        self.interval = if self.capped {
            (self.interval * 2).min(T2_MS)
        } else {
            self.interval * 2
        };
        self.next_at = now + self.interval;
        true
    }
}

/// What to do with the final response of a request kolokol sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The INVITE that rings a callee.
    Ring,
    /// A request relayed from the other leg; its answer goes back there.
    Relay,
    /// Ending the dialog or a ringing attempt; the answer only stops retransmissions.
    Hangup,
    /// Transfer progress for the transferor; the answer only stops retransmissions.
    Notify,
    /// kolokol's own re-INVITE (new media after a transfer); its answer sets the remote.
    Offer,
}

/// A client transaction (RFC 3261 §17.1) kolokol started on this leg.
#[derive(Debug, Clone)]
pub struct ClientTx {
    pub branch: String,
    pub method: &'static str,
    pub cseq: u32,
    pub bytes: Vec<u8>,
    pub purpose: Purpose,
    pub retransmit: Option<Retransmit>,
    /// Timer B/F: give up without a final response.
    pub deadline: u64,
    pub provisional: bool,
}

/// A request from this leg kolokol has not answered finally yet (kept as bytes, re-read
/// when the answer is written).
#[derive(Debug, Clone)]
pub struct ServerTx {
    pub request: Vec<u8>,
    pub source: SocketAddr,
    pub method: String,
    pub cseq: u32,
    pub branch: String,
}

/// A final response to an INVITE waiting for its ACK, retransmitted over UDP.
#[derive(Debug, Clone)]
pub struct AwaitingAck {
    pub bytes: Vec<u8>,
    pub cseq: u32,
    pub retransmit: Option<Retransmit>,
    /// Timer H.
    pub deadline: u64,
    pub success: bool,
}

#[derive(Debug)]
pub struct Leg {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// Our and their From/To values without tags.
    pub local_uri: String,
    pub remote_uri: String,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    pub remote_target: String,
    pub route_set: Vec<String>,
    pub peer: Peer,
    /// The media endpoint this leg's device sends to.
    pub endpoint: Endpoint,
    pub sdp_session: u64,
    pub sdp_version: u64,
    pub transactions: Vec<ClientTx>,
    /// A request from this leg relayed to the other, waiting for the other's answer.
    pub relayed: Option<ServerTx>,
    pub awaiting_ack: Option<AwaitingAck>,
    /// ACK we sent for a 2xx, resent when the 2xx is retransmitted.
    pub ack: Option<Vec<u8>>,
    /// The media direction the device last asked for (hold detection).
    pub held: bool,
    /// BYE sent or received: nothing more is sent on this dialog.
    pub ended: bool,
}

impl Leg {
    pub fn new(
        call_id: String,
        local_uri: String,
        remote_uri: String,
        peer: Peer,
        endpoint: Endpoint,
    ) -> Self {
        Leg {
            call_id,
            local_tag: message::token(),
            remote_tag: None,
            local_uri,
            remote_uri,
            local_cseq: rand::random::<u16>() as u32 + 1,
            remote_cseq: 0,
            remote_target: String::new(),
            route_set: Vec::new(),
            peer,
            endpoint,
            sdp_session: rand::random::<u32>() as u64,
            sdp_version: 0,
            transactions: Vec::new(),
            relayed: None,
            awaiting_ack: None,
            ack: None,
            held: false,
            ended: false,
        }
    }

    fn tagged(uri: &str, tag: Option<&str>) -> String {
        match tag {
            Some(t) => format!("{uri};tag={t}"),
            None => uri.to_string(),
        }
    }

    /// Starts an in-dialog (or initial) request: Via, Max-Forwards, Route, From, To,
    /// Call-ID, CSeq. The caller adds the rest.
    pub fn request(
        &self,
        method: &str,
        cseq: u32,
        branch: &str,
        local: &LocalAddresses,
        max_forwards: u8,
    ) -> RequestWriter {
        let uri = self.target_uri();
        RequestWriter::new(method, uri)
            .header("Via", local.via(self.peer.transport, branch))
            .header("Max-Forwards", max_forwards)
            .headers("Route", &self.route_set)
            .header("From", Self::tagged(&self.local_uri, Some(&self.local_tag)))
            .header(
                "To",
                Self::tagged(&self.remote_uri, self.remote_tag.as_deref()),
            )
            .header("Call-ID", &self.call_id)
            .header("CSeq", format!("{cseq} {method}"))
    }

    /// Where requests in this dialog go: the remote target, else the remote URI.
    pub fn target_uri(&self) -> &str {
        if self.remote_target.is_empty() {
            message::uri(&self.remote_uri)
        } else {
            &self.remote_target
        }
    }

    /// Sends a final response to an INVITE from this leg and keeps it, retransmitted over
    /// UDP, until the ACK (Timer H). `success`: a lost ACK kills the dialog.
    pub fn send_final(&mut self, bytes: Vec<u8>, cseq: u32, success: bool, now: u64) -> Outgoing {
        self.awaiting_ack = Some(AwaitingAck {
            bytes: bytes.clone(),
            cseq,
            retransmit: (!self.peer.transport.is_reliable()).then(|| Retransmit::start(now, true)),
            deadline: now + TIMEOUT_MS,
            success,
        });
        self.peer.send(bytes)
    }

    /// Sends a new client transaction on this leg.
    pub fn start(
        &mut self,
        method: &'static str,
        cseq: u32,
        branch: String,
        bytes: Vec<u8>,
        purpose: Purpose,
        now: u64,
    ) -> Outgoing {
        let retransmit = (!self.peer.transport.is_reliable())
            .then(|| Retransmit::start(now, method != "INVITE"));
        self.transactions.push(ClientTx {
            branch,
            method,
            cseq,
            bytes: bytes.clone(),
            purpose,
            retransmit,
            deadline: now + TIMEOUT_MS,
            provisional: false,
        });
        self.peer.send(bytes)
    }

    /// A new in-dialog request with the next CSeq: (branch, cseq, writer).
    pub fn next_request(
        &mut self,
        method: &str,
        local: &LocalAddresses,
    ) -> (String, u32, RequestWriter) {
        self.local_cseq += 1;
        let branch = message::branch();
        let w = self.request(method, self.local_cseq, &branch, local, 70);
        (branch, self.local_cseq, w)
    }

    /// Takes the dialog out of this call (an attended transfer moves it to another),
    /// leaving an empty leg that matches nothing.
    pub fn detach(&mut self) -> Leg {
        let empty = Leg::new(
            String::new(),
            String::new(),
            String::new(),
            self.peer,
            self.endpoint,
        );
        std::mem::replace(self, empty)
    }

    pub fn next_sdp_version(&mut self) -> u64 {
        self.sdp_version += 1;
        self.sdp_version
    }

    /// Retransmissions due and transactions that timed out (their index and method).
    pub fn timers(&mut self, now: u64, out: &mut Vec<Outgoing>) -> Vec<ClientTx> {
        let peer = self.peer;
        for tx in &mut self.transactions {
            if let Some(r) = tx.retransmit.as_mut() {
                if r.due(now) {
                    out.push(peer.send(tx.bytes.clone()));
                }
            }
        }
        if let Some(a) = self.awaiting_ack.as_mut() {
            if let Some(r) = a.retransmit.as_mut() {
                if r.due(now) {
                    out.push(peer.send(a.bytes.clone()));
                }
            }
        }
        let (expired, kept): (Vec<ClientTx>, Vec<ClientTx>) =
            std::mem::take(&mut self.transactions)
                .into_iter()
                .partition(|t| now >= t.deadline);
        self.transactions = kept;
        expired
    }

    /// The earliest moment a timer of this leg needs attention.
    pub fn next_deadline(&self) -> Option<u64> {
        let txs = self
            .transactions
            .iter()
            .flat_map(|t| [Some(t.deadline), t.retransmit.as_ref().map(|r| r.next_at)]);
        let ack = self
            .awaiting_ack
            .iter()
            .flat_map(|a| [Some(a.deadline), a.retransmit.as_ref().map(|r| r.next_at)]);
        txs.chain(ack).flatten().min()
    }

    /// The transaction a response belongs to: branch and CSeq method (RFC 3261 §17.1.3;
    /// a CANCEL shares its INVITE's branch).
    pub fn take_transaction(&mut self, branch: &str, method: &str) -> Option<ClientTx> {
        let i = self
            .transactions
            .iter()
            .position(|t| t.branch == branch && t.method == method)?;
        Some(self.transactions.remove(i))
    }

    pub fn transaction_mut(&mut self, branch: &str, method: &str) -> Option<&mut ClientTx> {
        self.transactions
            .iter_mut()
            .find(|t| t.branch == branch && t.method == method)
    }
}
