//! Browser legs at the SIP edge: SDP on WebSocket connections is WebRTC (ICE, DTLS-SRTP),
//! and is translated here, message by message, into the plain RTP that call control and
//! the relay speak — so call control never learns a leg is a browser.
//!
//! - A browser's offer (INVITE, re-INVITE) is answered by the WebRTC gateway; call control
//!   sees a plain offer from the gateway's alias socket, and its plain answer is swapped
//!   for the gateway's answer on the way out (its address tells the gateway where the
//!   relay endpoint is).
//! - Call control's offer to a browser (INVITE) becomes the gateway's WebRTC offer; the
//!   browser's answer comes back in as a plain answer from the alias socket.
//! - BYE, CANCEL, a failed INVITE or a closed connection ends the browser's media.

use crate::sip::scan::{header_is, scan};
use crate::transport::{Flow, Transport};
use kolokol_media::sdp::{self, AudioDescription};
use kolokol_media::webrtc::{Negotiated, PeerId, WebRtc};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

/// One browser dialog's media: (connection, Call-ID).
type DialogKey = (u64, String);

#[derive(Debug)]
struct BrowserDialog {
    peer: PeerId,
    /// The gateway's answer to the browser's last offer: what goes out in place of call
    /// control's plain answer (in a 183 and again in the 200).
    answer: Option<String>,
    /// Our offer awaiting the browser's answer.
    offered: Offered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offered {
    No,
    /// The INVITE that set the leg up.
    Initial,
    /// A re-INVITE (the other party holds or resumes).
    Again,
}

pub struct BrowserMedia {
    gateway: WebRtc,
    /// Where the relay endpoints listen (the media bind address, or loopback).
    relay_ip: IpAddr,
    connections: Mutex<HashSet<u64>>,
    dialogs: Mutex<HashMap<DialogKey, BrowserDialog>>,
}

/// A message's parts this module acts on.
struct Parsed {
    request: Option<String>,
    status: Option<u16>,
    cseq_method: String,
    call_id: String,
    sdp: Option<String>,
}

fn parse(data: &[u8]) -> Option<Parsed> {
    let s = scan(data).ok()?;
    let line = s.start_line;
    let (request, status) = if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
        (None, rest.get(..3)?.parse().ok())
    } else {
        (Some(line.split(' ').next()?.to_string()), None)
    };
    let cseq_method = s
        .first("CSeq")?
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let is_sdp = s
        .first("Content-Type")
        .is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("application/sdp"));
    let sdp = (is_sdp && !s.body.is_empty())
        .then(|| String::from_utf8(s.body.to_vec()).ok())
        .flatten();
    Some(Parsed {
        request,
        status,
        cseq_method,
        call_id: s.first("Call-ID")?.trim().to_string(),
        sdp,
    })
}

/// The message with its body replaced (and Content-Length to match).
fn with_body(data: &[u8], body: &str) -> Vec<u8> {
    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return data.to_vec();
    };
    let head = String::from_utf8_lossy(&data[..end]);
    let mut out = String::with_capacity(end + body.len() + 32);
    for line in head.split("\r\n") {
        let name = line.split(':').next().unwrap_or_default().trim();
        if !header_is(name, "Content-Length") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    out.push_str(body);
    out.into_bytes()
}

/// The plain SDP call control sees for a browser: RTP at the gateway's alias socket.
fn plain_sdp(n: &Negotiated) -> String {
    let desc = AudioDescription {
        address: n.alias.ip(),
        port: n.alias.port(),
        codecs: vec![(n.codec, n.codec.payload_type())],
        telephone_event: n.telephone_event,
        direction: n.direction,
        ptime: Some(20),
    };
    sdp::render(&desc, n.peer.0, 1)
}

fn is_webrtc(sdp: &str) -> bool {
    sdp.contains("a=fingerprint:")
}

impl BrowserMedia {
    pub fn new(gateway: WebRtc, relay_ip: IpAddr) -> Self {
        let relay_ip = if relay_ip.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            relay_ip
        };
        BrowserMedia {
            gateway,
            relay_ip,
            connections: Mutex::new(HashSet::new()),
            dialogs: Mutex::new(HashMap::new()),
        }
    }

    fn dialogs(&self) -> std::sync::MutexGuard<'_, HashMap<DialogKey, BrowserDialog>> {
        self.dialogs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self, key: &DialogKey) {
        if let Some(d) = self.dialogs().remove(key) {
            self.gateway.close(d.peer);
        }
    }

    /// A message from a browser; returns it rewritten when its SDP was WebRTC. A WebRTC
    /// offer the gateway cannot take is passed on as it is, so call control refuses it.
    pub fn inbound(&self, data: &[u8], flow: &Flow) -> Option<Vec<u8>> {
        if !matches!(flow.transport, Transport::Ws | Transport::Wss) {
            return None;
        }
        let connection = flow.connection?;
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(connection);
        let m = parse(data)?;
        let key = (connection, m.call_id.clone());
        let ends = match (&m.request, m.status) {
            (Some(r), _) => r == "BYE" || r == "CANCEL",
            (None, Some(s)) => m.cseq_method == "INVITE" && s >= 300,
            _ => false,
        };
        if ends {
            self.close(&key);
            return None;
        }
        let offer = m.sdp.filter(|s| is_webrtc(s))?;
        let mut dialogs = self.dialogs();
        match (m.request.as_deref(), dialogs.get_mut(&key)) {
            (Some("INVITE"), existing) => {
                let negotiated = match existing {
                    Some(d) => self.gateway.renegotiate(d.peer, &offer),
                    None => self.gateway.answer(&offer, None),
                };
                let negotiated = negotiated
                    .inspect_err(|e| tracing::info!(error = %e, "browser offer refused"))
                    .ok()?;
                let body = plain_sdp(&negotiated);
                dialogs.insert(
                    key,
                    BrowserDialog {
                        peer: negotiated.peer,
                        answer: Some(negotiated.sdp),
                        offered: Offered::No,
                    },
                );
                Some(with_body(data, &body))
            }
            (None, Some(d)) if d.offered != Offered::No => {
                let accepted = match d.offered {
                    Offered::Initial => self.gateway.accept_answer(d.peer, &offer),
                    _ => self.gateway.accept_reanswer(d.peer, &offer),
                };
                d.offered = Offered::No;
                match accepted {
                    Ok(negotiated) => Some(with_body(data, &plain_sdp(&negotiated))),
                    Err(e) => {
                        tracing::info!(error = %e, "browser answer refused");
                        None
                    }
                }
            }
            _ => None,
        }
    }

    /// A message to a browser; rewritten when it carries call control's plain SDP.
    pub fn outbound(&self, bytes: &mut Vec<u8>, connection: Option<u64>) {
        let Some(connection) = connection else {
            return;
        };
        if !self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&connection)
        {
            return;
        }
        let Some(m) = parse(bytes) else {
            return;
        };
        let key = (connection, m.call_id.clone());
        if matches!(m.request.as_deref(), Some("BYE" | "CANCEL"))
            || (m.request.is_none() && m.cseq_method == "INVITE" && m.status >= Some(300))
        {
            self.close(&key);
            return;
        }
        let Some(plain) = m.sdp.filter(|s| !is_webrtc(s)) else {
            return;
        };
        let Ok(desc) = sdp::parse(&plain) else {
            return;
        };
        let relay = SocketAddr::new(self.relay_ip, desc.port);
        let mut dialogs = self.dialogs();
        match (m.request.as_deref(), dialogs.get_mut(&key)) {
            (None, Some(d)) => {
                if let Some(answer) = &d.answer {
                    self.gateway.set_relay(d.peer, relay);
                    *bytes = with_body(bytes, answer);
                }
            }
            (Some("INVITE"), None) => match self.gateway.offer(relay) {
                Ok((peer, offer)) => {
                    *bytes = with_body(bytes, &offer);
                    dialogs.insert(
                        key,
                        BrowserDialog {
                            peer,
                            answer: None,
                            offered: Offered::Initial,
                        },
                    );
                }
                Err(e) => tracing::warn!(error = %e, "no WebRTC offer for a browser"),
            },
            (Some("INVITE"), Some(d)) => match self.gateway.reoffer(d.peer, desc.direction) {
                Ok(offer) => {
                    *bytes = with_body(bytes, &offer);
                    d.offered = Offered::Again;
                }
                Err(e) => tracing::warn!(error = %e, "no WebRTC re-offer for a browser"),
            },
            _ => {}
        }
    }

    /// A browser's connection closed: all its media ends.
    pub fn connection_closed(&self, connection: u64) {
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&connection);
        let gone: Vec<DialogKey> = self
            .dialogs()
            .keys()
            .filter(|(c, _)| *c == connection)
            .cloned()
            .collect();
        for key in gone {
            self.close(&key);
        }
    }

    /// Browser dialogs with media now.
    pub fn dialogs_open(&self) -> usize {
        self.dialogs().len()
    }
}
