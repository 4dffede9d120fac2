//! Building responses straight from the request's raw header values (RFC 3261 §8.2.6):
//! Via, From, Call-ID and CSeq are copied byte for byte, To gains our tag.

use super::{grammar, Scan};
use std::fmt::Write as _;
use std::net::SocketAddr;

pub const SERVER: &str = concat!("kolokol/", env!("CARGO_PKG_VERSION"));

pub struct ResponseBuilder {
    buf: String,
}

/// A To-tag that is the same for every retransmission of a request, without state.
pub fn stateless_tag(scan: &Scan<'_>) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for part in [scan.first("Call-ID"), scan.first("From")] {
        for b in part.unwrap_or_default().bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016x}")
}

fn has_tag(to: &str) -> bool {
    grammar::params(grammar::split_name_addr(to).1).any(|(n, _)| n.eq_ignore_ascii_case("tag"))
}

/// The top Via as the response must carry it: `received` and `rport` filled in (RFC 3581).
fn fix_top_via(via: &str, source: SocketAddr) -> String {
    let (head, params) = via.split_at(via.find(';').unwrap_or(via.len()));
    let host = head
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .trim_start_matches('[');
    let host = host.rsplit_once([']', ':']).map_or(host, |(h, _)| h);
    let mut out = head.trim_end().to_string();
    let mut add_received = host != source.ip().to_string();
    for (name, value) in grammar::params(params) {
        if name.eq_ignore_ascii_case("received") {
            continue;
        }
        if name.eq_ignore_ascii_case("rport") {
            let _ = write!(out, ";rport={}", source.port());
            add_received = true;
            continue;
        }
        out.push(';');
        out.push_str(name);
        if let Some(v) = value {
            out.push('=');
            out.push_str(v);
        }
    }
    if add_received {
        let _ = write!(out, ";received={}", source.ip());
    }
    out
}

impl ResponseBuilder {
    /// Starts a response to the request in `scan`. `source` is where the request came
    /// from (for `received`/`rport`); `to_tag` is added unless To already has one.
    pub fn new(
        scan: &Scan<'_>,
        status: u16,
        reason: &str,
        to_tag: Option<&str>,
        source: Option<SocketAddr>,
    ) -> Self {
        let mut buf = String::with_capacity(512);
        let _ = write!(buf, "SIP/2.0 {status} {reason}\r\n");
        let mut first = true;
        for via in scan.all("Via").flat_map(grammar::split_list) {
            match (first, source) {
                (true, Some(src)) => {
                    let _ = write!(buf, "Via: {}\r\n", fix_top_via(via, src));
                }
                _ => {
                    let _ = write!(buf, "Via: {via}\r\n");
                }
            }
            first = false;
        }
        if let Some(from) = scan.first("From") {
            let _ = write!(buf, "From: {from}\r\n");
        }
        if let Some(to) = scan.first("To") {
            match to_tag {
                Some(tag) if status > 100 && !has_tag(to) => {
                    let _ = write!(buf, "To: {to};tag={tag}\r\n");
                }
                _ => {
                    let _ = write!(buf, "To: {to}\r\n");
                }
            }
        }
        for name in ["Call-ID", "CSeq"] {
            if let Some(v) = scan.first(name) {
                let _ = write!(buf, "{name}: {v}\r\n");
            }
        }
        ResponseBuilder { buf }
    }

    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        let _ = write!(self.buf, "{name}: {value}\r\n");
        self
    }

    /// Ends the header section and appends the body.
    pub fn finish(self, body: &[u8], content_type: Option<&str>) -> Vec<u8> {
        finish_message(self.buf, "Server", body, content_type)
    }
}

/// Ends a message's header section (`agent`: Server or User-Agent, Content-Type,
/// Content-Length) and appends the body.
pub fn finish_message(
    mut buf: String,
    agent: &str,
    body: &[u8],
    content_type: Option<&str>,
) -> Vec<u8> {
    let _ = write!(buf, "{agent}: {SERVER}\r\n");
    if let Some(ct) = content_type {
        let _ = write!(buf, "Content-Type: {ct}\r\n");
    }
    let _ = write!(buf, "Content-Length: {}\r\n\r\n", body.len());
    let mut bytes = buf.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_gets_received_and_rport() {
        let src: SocketAddr = "203.0.113.9:40000".parse().unwrap();
        assert_eq!(
            fix_top_via("SIP/2.0/UDP 10.0.0.2:5060;rport;branch=z9hG4bKx", src),
            "SIP/2.0/UDP 10.0.0.2:5060;rport=40000;branch=z9hG4bKx;received=203.0.113.9"
        );
        let same: SocketAddr = "10.0.0.2:5060".parse().unwrap();
        assert_eq!(
            fix_top_via("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKx", same),
            "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKx"
        );
    }

    #[test]
    fn copies_the_dialog_headers_and_tags_to() {
        let req = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP g;branch=z9hG4bK2\r\nFrom: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 2 OPTIONS\r\n\r\n";
        let scan = crate::sip::scan::scan(req).unwrap();
        let out = ResponseBuilder::new(&scan, 200, "OK", Some("t9"), None).finish(b"", None);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP g;branch=z9hG4bK2\r\n"));
        assert!(text.contains("To: <sip:a@b>;tag=t9\r\n"));
        assert!(text.contains("CSeq: 2 OPTIONS\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }
}
