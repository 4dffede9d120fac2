//! Criterion: decoding (framing + RFC 3261 checks) and answering a typical REGISTER and
//! INVITE, beside rsipstack's own parse + serialise of the same bytes.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use kolokol_engine::sip::{self, response::stateless_tag, Inbound, ResponseBuilder};

const REGISTER: &str = "REGISTER sip:192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5062;rport;branch=z9hG4bK776asdhds\r\nMax-Forwards: 70\r\nFrom: \"Ирина\" <sip:2001@192.0.2.1>;tag=a73kszlfl\r\nTo: <sip:2001@192.0.2.1>\r\nCall-ID: 1j9FpLxk3uxtm8tn@198.51.100.7\r\nCSeq: 2 REGISTER\r\nContact: <sip:2001@198.51.100.7:5062;transport=udp>;expires=3600\r\nAuthorization: Digest username=\"2001\", realm=\"kolokol\", nonce=\"AAABi9xQ3KgAAAAAAAAAAbL0z4vQJ9pQ6sQbJ3t7KQk\", uri=\"sip:192.0.2.1\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"0a4f113b\"\r\nUser-Agent: Yealink SIP-T46U 108.86.0.45\r\nAllow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, OPTIONS, INFO, MESSAGE\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n";

const INVITE: &str = "INVITE sip:2002@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5062;rport;branch=z9hG4bK74bf9\r\nMax-Forwards: 70\r\nFrom: \"Ирина\" <sip:2001@192.0.2.1>;tag=9fxced76sl\r\nTo: <sip:2002@192.0.2.1>\r\nCall-ID: 3848276298220188511@198.51.100.7\r\nCSeq: 1 INVITE\r\nContact: <sip:2001@198.51.100.7:5062>\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, UPDATE\r\nSupported: replaces, timer\r\nContent-Type: application/sdp\r\nContent-Length: 218\r\n\r\nv=0\r\no=2001 16264 18299 IN IP4 198.51.100.7\r\ns=SIP Call\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 11796 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n";

fn decode_and_answer(data: &[u8]) -> Vec<u8> {
    let Ok(Inbound::Request(req)) = sip::decode(data) else {
        panic!("bench message rejected")
    };
    let tag = stateless_tag(&req.scan);
    ResponseBuilder::new(
        &req.scan,
        200,
        "OK",
        Some(&tag),
        Some("198.51.100.7:5062".parse().unwrap()),
    )
    .header("Contact", "<sip:2001@198.51.100.7:5062>;expires=3600")
    .finish(b"", None)
}

fn bench(c: &mut Criterion) {
    assert!(INVITE.ends_with("a=sendrecv\r\n"));
    for (name, msg) in [
        ("register", REGISTER.as_bytes()),
        ("invite", INVITE.as_bytes()),
    ] {
        c.bench_function(&format!("kolokol decode+answer {name}"), |b| {
            b.iter(|| decode_and_answer(black_box(msg)))
        });
        c.bench_function(&format!("rsipstack parse+serialise {name}"), |b| {
            b.iter(|| {
                sip::codec::SipMessage::try_from(black_box(msg))
                    .unwrap()
                    .to_bytes()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
