//! The raw scanner of engine/src/sip/scan.rs (`scan`, `scan_lenient`) on any bytes, as a
//! stream delivers them (several messages back to back).
//!
//! Invariants: no panic; what a message occupies is within the input and re-scans the
//! same on its own; the lenient scan of a framable message sees the same header section;
//! messages framed one after another never go backwards.
#![no_main]

use kolokol_engine::sip::scan::{self, Scan};
use libfuzzer_sys::fuzz_target;

fn same_head(a: &Scan<'_>, b: &Scan<'_>) {
    assert_eq!(a.start_line, b.start_line);
    assert_eq!(a.headers.len(), b.headers.len());
    for (x, y) in a.headers.iter().zip(&b.headers) {
        assert_eq!((x.name, &x.value), (y.name, &y.value));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    for _ in 0..8 {
        let Ok(s) = scan::scan(rest) else {
            let _ = scan::scan_lenient(rest);
            break;
        };
        assert!(s.consumed > 0 && s.consumed <= rest.len());
        assert!(s.body.len() <= s.consumed);
        if let Some(n) = s.content_length {
            assert_eq!(s.body.len(), n);
        }
        let own = &rest[..s.consumed];
        let again = scan::scan(own).expect("a framed message scans on its own");
        same_head(&s, &again);
        assert_eq!(again.body, s.body);
        assert_eq!(again.consumed, own.len());
        let lenient = scan::scan_lenient(rest).expect("lenient scans what strict does");
        same_head(&s, &lenient);
        for h in &s.headers {
            assert!(!h.name.contains(':'));
            assert_eq!(s.first(h.name).is_some(), s.count(h.name) > 0);
            assert!(s.all(h.name).count() >= 1);
        }
        rest = &rest[s.consumed..];
        if rest.is_empty() {
            break;
        }
    }
});
