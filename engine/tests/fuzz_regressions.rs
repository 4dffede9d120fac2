//! Inputs that broke the SIP engine's parsers of untrusted messages, kept so they stay
//! fixed (the fuzz targets are in `fuzz/`: `sip_decode`, `sip_scan`, `sip_grammar`,
//! `sip_service`, `digest_credentials`, `digest_answer`; `fuzz/run.sh` runs them).

use kolokol_engine::sip::{self, scan};
use std::time::{Duration, Instant};

/// One header folded over and over, found reading the scanner for `sip_scan` (whose
/// inputs are too short to show it): in a datagram of 64 KiB with 16,000 continuation
/// lines each fold copied the value folded so far, some 500 MB in all, tens of
/// milliseconds of a core per datagram. Folding now appends in place.
/// Checked on 1 MiB (scan takes any length; a stream's limit is configurable): in a debug
/// build that took 35 s quadratic, well under a second linear.
#[test]
fn a_header_folded_thousands_of_times_scans_in_linear_time() {
    let head = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nSubject: x\r\n";
    let folds = ((1 << 20) - head.len()) / 4;
    let message = format!("{head}{}\r\n", " a\r\n".repeat(folds));
    let started = Instant::now();
    let s = scan::scan(message.as_bytes()).expect("scans");
    let took = started.elapsed();
    let subject = s.first("Subject").unwrap();
    assert_eq!(subject.len(), 1 + 2 * folds);
    assert!(subject.starts_with("x a a") && subject.ends_with(" a"));
    assert!(matches!(
        sip::decode(message.as_bytes()),
        Err(sip::Rejected::Respond { status: 400, .. })
    ));
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// Folding keeps what it did: continuation lines joined with one space, the value
/// trimmed, an empty continuation adding nothing.
#[test]
fn folded_values_are_joined_and_trimmed() {
    let m = b"OPTIONS sip:a@b SIP/2.0\r\nSubject: one\r\n \t two \r\n\t\r\n  three\r\nTo:\r\n x\r\nl: 0\r\n\r\n";
    let s = scan::scan(m).unwrap();
    assert_eq!(s.first("Subject"), Some("one two three"));
    assert_eq!(s.first("To"), Some("x"));
}
