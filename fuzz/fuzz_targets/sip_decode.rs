//! `kolokol_engine::sip::decode` on any bytes, as a datagram or WebSocket frame arrives.
//!
//! Invariants: decode never panics; a request that decodes re-scans the same from the
//! bytes it occupies; every 400 it asks for builds a response that itself decodes as that
//! response (what the transports send back must be a well-formed SIP message).
#![no_main]

use kolokol_engine::sip::{self, response, scan, Inbound, Rejected, Request, ResponseBuilder};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

fn same_scan(a: &scan::Scan<'_>, b: &scan::Scan<'_>) {
    assert_eq!(a.start_line, b.start_line);
    assert_eq!(a.headers.len(), b.headers.len());
    for (x, y) in a.headers.iter().zip(&b.headers) {
        assert_eq!(x.name, y.name);
        assert_eq!(x.value, y.value);
    }
    assert_eq!(a.body, b.body);
    assert_eq!(a.content_length, b.content_length);
}

/// A response built the way the service builds one must decode as that response.
fn check_response(scan: &scan::Scan<'_>, status: u16, reason: &str) {
    let source: SocketAddr = "[2001:db8::7]:5062".parse().unwrap();
    let tag = response::stateless_tag(scan);
    let bytes = ResponseBuilder::new(scan, status, reason, Some(&tag), Some(source))
        .header("Warning", "399 kolokol \"fuzz\"")
        .finish(b"v=0\r\n", Some("application/sdp"));
    match sip::decode(&bytes) {
        Ok(Inbound::Response(code, back)) => {
            assert_eq!(code, status);
            assert_eq!(back.body, b"v=0\r\n");
            assert_eq!(back.consumed, bytes.len());
            assert_eq!(back.first("Call-ID"), scan.first("Call-ID"));
        }
        other => panic!(
            "response to {:?} does not decode: {other:?}\n{}",
            scan.start_line,
            String::from_utf8_lossy(&bytes)
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    match sip::decode(data) {
        Ok(Inbound::Request(req)) => {
            let prefix = &data[..req.scan.consumed];
            let again = scan::scan(prefix).expect("a decoded request re-scans");
            same_scan(&req.scan, &again);
            assert_eq!(again.consumed, prefix.len());
            match sip::decode(prefix) {
                Ok(Inbound::Request(r)) => {
                    assert_eq!((r.method, r.uri, r.cseq), (req.method, req.uri, req.cseq));
                    assert_eq!(r.max_forwards, req.max_forwards);
                }
                other => panic!("decoded request decodes differently: {other:?}"),
            }
            // What the service reads off a request.
            let _ = (
                req.call_id(),
                req.top_via(),
                req.to_uri(),
                req.header("Contact"),
            );
            let _ = Request::uri_user(req.uri);
            let _ = Request::uri_user(req.to_uri());
            assert!(sip::grammar::is_token(req.method));
            check_response(&req.scan, 200, "OK");
        }
        Ok(Inbound::Response(code, s)) => {
            assert!((100..700).contains(&code));
            assert!(s.consumed <= data.len());
        }
        Ok(Inbound::KeepAlive) => assert!(data.iter().all(|b| b.is_ascii_whitespace())),
        Err(Rejected::Respond {
            status,
            reason,
            scan,
        }) => {
            assert!(status == 400 || status == 505, "status {status}");
            if scan.first("Via").is_some() && !scan.start_line.starts_with("SIP/") {
                check_response(&scan, status, reason);
            }
        }
        Err(Rejected::Drop(_)) => {}
    }
});
