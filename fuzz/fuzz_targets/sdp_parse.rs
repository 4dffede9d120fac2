//! `kolokol_media::sdp::parse` on any text (the body of an INVITE, re-INVITE or answer).
//!
//! Invariants: no panic; what parses renders to SDP that parses back to the same stream
//! (ptime defaults to 20 when rendered; a rejected stream with no codec renders format 0);
//! an answer to it renders and parses back too.
#![no_main]

use kolokol_media::sdp::{self, Codec};
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fuzz_target!(|text: &str| {
    let Ok(desc) = sdp::parse(text) else {
        return;
    };
    assert!(desc.port == 0 || !desc.codecs.is_empty());
    assert!(desc.codecs.iter().all(|(_, pt)| *pt < 128));
    if let Some(te) = desc.telephone_event {
        assert!(te < 128);
        assert!(desc.codecs.iter().all(|(_, pt)| *pt != te));
    }
    let rendered = sdp::render(&desc, u64::MAX, 0);
    let back = sdp::parse(&rendered).expect("rendered SDP parses");
    if !(desc.port == 0 && desc.codecs.is_empty()) {
        let mut expected = desc.clone();
        expected.ptime = Some(desc.ptime.unwrap_or(20));
        assert_eq!(back, expected, "round trip of\n{rendered}");
    }
    let local: IpAddr = "192.0.2.1".parse().unwrap();
    for supported in [&[Codec::Pcmu, Codec::Pcma][..], &[Codec::Pcma], &[]] {
        if let Ok(answer) = sdp::answer(&desc, local, 20_000, supported) {
            assert!(answer.codecs.len() <= 1);
            let text = sdp::render(&answer, 1, 1);
            let back = sdp::parse(&text).expect("rendered answer parses");
            assert_eq!(back.port, answer.port);
            assert_eq!(back.direction, answer.direction);
        }
    }
});
