//! `kolokol_media::rtp::validate` and the header accessors on any datagram.
//!
//! Invariants: no panic; a valid packet's payload range lies within it, after the fixed
//! header; the accessors and setters the relay uses after validation stay in bounds and
//! setters change only what they name.
#![no_main]

use kolokol_media::rtp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(range) = rtp::validate(data) else {
        return;
    };
    assert!(range.start >= rtp::HEADER_LEN);
    assert!(range.start <= range.end && range.end <= data.len());
    let (pt, marker, seq, ts, ssrc) = (
        rtp::payload_type(data),
        rtp::marker(data),
        rtp::sequence(data),
        rtp::timestamp(data),
        rtp::ssrc(data),
    );
    let mut copy = data.to_vec();
    rtp::set_payload_type(&mut copy, pt.wrapping_add(1));
    assert_eq!(rtp::marker(&copy), marker);
    rtp::set_marker(&mut copy, !marker);
    assert_eq!(rtp::payload_type(&copy), pt.wrapping_add(1) & 0x7F);
    rtp::set_sequence(&mut copy, seq.wrapping_add(1));
    rtp::set_timestamp(&mut copy, ts.wrapping_add(160));
    rtp::set_ssrc(&mut copy, !ssrc);
    assert_eq!(rtp::validate(&copy), Ok(range.clone()));
    assert_eq!(&copy[range.clone()], &data[range]);
    assert_eq!(rtp::sequence(&copy), seq.wrapping_add(1));
    assert_eq!(rtp::timestamp(&copy), ts.wrapping_add(160));
    assert_eq!(rtp::ssrc(&copy), !ssrc);
});
