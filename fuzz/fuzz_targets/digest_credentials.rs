//! `kolokol_engine::registrar::digest::Credentials::parse` on any Authorization or
//! Proxy-Authorization value a phone sends.
//!
//! Invariants: no panic; what parses has a response the verifier can compute for either
//! algorithm, and parsing is a pure function of the text.
#![no_main]

use kolokol_engine::registrar::digest::{self, Algorithm, Credentials};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|value: &str| {
    let Some(c) = Credentials::parse(value) else {
        return;
    };
    assert_eq!(Credentials::parse(value).as_ref(), Some(&c));
    for ha1 in [
        digest::ha1(Algorithm::Md5, c.username, c.realm, "pw"),
        digest::ha1(Algorithm::Sha256, c.username, c.realm, "pw"),
    ] {
        let expected = c.expected_response(&ha1, "REGISTER");
        let _ = digest::digest_eq(&expected, c.response);
        assert!(digest::digest_eq(&expected, &expected.to_ascii_uppercase()));
    }
    let _ = Algorithm::parse(c.algorithm.name());
});
