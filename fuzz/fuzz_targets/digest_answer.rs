//! `kolokol_engine::registrar::digest::answer`: the Authorization kolokol sends to a
//! provider's challenge, the challenge (WWW-/Proxy-Authenticate) being whatever the
//! provider sent.
//!
//! Invariants: no panic; when the challenge's realm and nonce are plain (no quote or
//! backslash to escape), the answer parses back as credentials naming them, whose
//! response is the one the provider will compute.
#![no_main]

use arbitrary::Arbitrary;
use kolokol_engine::registrar::digest::{self, Credentials};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    challenge: &'a str,
    method: &'a str,
    cnonce: &'a str,
    password: &'a str,
}

fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~:/@+=".contains(c))
}

fuzz_target!(|input: Input<'_>| {
    let (method, uri, username) = ("REGISTER", "sip:203.0.113.5", "acc");
    let method = if plain(input.method) {
        input.method
    } else {
        method
    };
    let cnonce = if plain(input.cnonce) {
        input.cnonce
    } else {
        "c0ffee"
    };
    let Some(value) = digest::answer(
        input.challenge,
        method,
        uri,
        username,
        input.password,
        cnonce,
    ) else {
        return;
    };
    // The challenge's realm and nonce, read by the same parser (given what credentials
    // need besides).
    let as_credentials =
        input
            .challenge
            .replacen("Digest", "Digest username=x, uri=y, response=z,", 1);
    let Some(c) = Credentials::parse(&as_credentials) else {
        return;
    };
    if !(plain(c.realm) && plain(c.nonce)) {
        return;
    }
    let back = Credentials::parse(&value)
        .unwrap_or_else(|| panic!("answer {value:?} to {:?} does not parse", input.challenge));
    assert_eq!((back.username, back.uri), (username, uri));
    assert_eq!((back.realm, back.nonce), (c.realm, c.nonce));
    let ha1 = digest::ha1(back.algorithm, username, back.realm, input.password);
    assert_eq!(back.response, back.expected_response(&ha1, method));
});
