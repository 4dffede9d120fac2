//! `kolokol_media::rtcp::parse` on any datagram (compound RTCP from a peer).
//!
//! Invariants: no panic; what parses, written back with `write_report`, parses to the
//! same sender info and report block.
#![no_main]

use kolokol_media::rtcp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = rtcp::parse(data) else {
        return;
    };
    let mut buf = [0u8; 512];
    let cname = String::from_utf8_lossy(&data[..data.len().min(300)]);
    let n = rtcp::write_report(
        &mut buf,
        report.sender_ssrc,
        report.sender,
        report.block,
        &cname,
    );
    assert_eq!(n % 4, 0);
    let back = rtcp::parse(&buf[..n]).expect("a written report parses");
    assert_eq!(back, report);
});
