//! HTTP Digest for SIP (RFC 3261 §22, RFC 7616, RFC 8760): challenges, nonces, verification.
//!
//! A nonce carries its own issue time and an id, sealed with an HMAC keyed by the server
//! secret, so any node holding the secret can check it without shared state. The id picks a
//! slot in a fixed ring that remembers the highest nonce-count seen: a replayed count is
//! refused, and a nonce whose slot has been reused by a newer one is simply "stale" — the
//! phone re-authenticates with a fresh nonce. Memory stays constant at any request rate.
//!
//! We verify against stored HA1 values (never passwords) and read the `uri` parameter as
//! the client wrote it: rsipstack's `DigestGenerator` wants the plaintext password,
//! re-serialises the URI and keeps `nc` in a `u8`, so it cannot serve a registrar.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Lowercase hex digest of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data)),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data)),
        }
    }
}

/// HA1 = H(username ":" realm ":" password), as stored for each user and realm.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hex(format!("{username}:{realm}:{password}").as_bytes())
}

/// A Digest header value (challenge or credentials): its parameters and algorithm.
struct DigestParams<'a> {
    params: Vec<(&'a str, &'a str)>,
    algorithm: Algorithm,
}

impl<'a> DigestParams<'a> {
    /// `None` for other schemes and unknown algorithms.
    fn parse(value: &'a str) -> Option<Self> {
        let tok = rsipstack::sip::typed::tokenizers::AuthTokenizer::parse(value).ok()?;
        if !tok.scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut d = DigestParams {
            params: tok.params.iter().map(|(k, v)| (*k, *v)).collect(),
            algorithm: Algorithm::Md5,
        };
        if let Some(a) = d.get("algorithm") {
            d.algorithm = Algorithm::parse(a)?;
        }
        Some(d)
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// The parameters of an `Authorization: Digest ...` header that verification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub username: &'a str,
    pub realm: &'a str,
    pub nonce: &'a str,
    pub uri: &'a str,
    pub response: &'a str,
    pub algorithm: Algorithm,
    pub qop: Option<&'a str>,
    pub nc: Option<u32>,
    pub cnonce: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    /// Reads a Digest header value. `None` for other schemes, unknown algorithms, or
    /// missing required parameters.
    pub fn parse(value: &'a str) -> Option<Self> {
        let digest = DigestParams::parse(value)?;
        let get = |name: &str| digest.get(name);
        let algorithm = digest.algorithm;
        let nc = match get("nc") {
            Some(nc) if nc.len() == 8 => Some(u32::from_str_radix(nc, 16).ok()?),
            Some(_) => return None,
            None => None,
        };
        Some(Credentials {
            username: get("username")?,
            realm: get("realm")?,
            nonce: get("nonce")?,
            uri: get("uri")?,
            response: get("response")?,
            algorithm,
            qop: get("qop"),
            nc,
            cnonce: get("cnonce"),
        })
    }

    /// The response a client knowing `ha1` would send (RFC 7616 §3.4.1, qop=auth or none).
    pub fn expected_response(&self, ha1: &str, method: &str) -> String {
        let alg = self.algorithm;
        let ha2 = alg.hex(format!("{method}:{}", self.uri).as_bytes());
        match (self.qop, self.nc, self.cnonce) {
            (Some(qop), Some(nc), Some(cnonce)) => {
                alg.hex(format!("{ha1}:{}:{nc:08x}:{cnonce}:{qop}:{ha2}", self.nonce).as_bytes())
            }
            _ => alg.hex(format!("{ha1}:{}:{ha2}", self.nonce).as_bytes()),
        }
    }
}

/// The `Authorization` value a client sends in answer to a `WWW-Authenticate` or
/// `Proxy-Authenticate` challenge (kolokol registering with, or calling through, a
/// provider). `None` when the challenge is not a Digest one kolokol can answer.
pub fn answer(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
) -> Option<String> {
    answer_with(challenge, method, uri, username, cnonce, |alg, realm| {
        ha1(alg, username, realm, password)
    })
}

/// [`answer`] for a client that holds the HA1 rather than the password (a softphone
/// key); `ha1` must be of the challenge's algorithm.
pub fn answer_with_ha1(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    ha1: &str,
    cnonce: &str,
) -> Option<String> {
    answer_with(challenge, method, uri, username, cnonce, |_, _| {
        ha1.to_string()
    })
}

fn answer_with(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    cnonce: &str,
    ha1_of: impl Fn(Algorithm, &str) -> String,
) -> Option<String> {
    let digest = DigestParams::parse(challenge)?;
    let get = |name: &str| digest.get(name);
    let algorithm = digest.algorithm;
    let realm = get("realm")?;
    let nonce = get("nonce")?;
    let qop = get("qop").and_then(|q| q.split(',').map(str::trim).find(|q| *q == "auth"));
    let credentials = Credentials {
        username,
        realm,
        nonce,
        uri,
        response: "",
        algorithm,
        qop,
        nc: qop.map(|_| 1),
        cnonce: qop.map(|_| cnonce),
    };
    let response = credentials.expected_response(&ha1_of(algorithm, realm), method);
    let mut value = format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
        algorithm.name()
    );
    if let Some(opaque) = get("opaque") {
        value.push_str(&format!(", opaque=\"{opaque}\""));
    }
    if qop.is_some() {
        value.push_str(&format!(", qop=auth, nc=00000001, cnonce=\"{cnonce}\""));
    }
    Some(value)
}

/// What a nonce check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Fresh,
    /// Sealed by us but too old, or its slot was reused: re-challenge with stale=true.
    Stale,
    /// Not ours, or tampered with.
    Forged,
    /// A nonce-count that was already used.
    Replayed,
}

const RING_BITS: u32 = 20;
const NC_BITS: u32 = 24;
const NONCE_BYTES: usize = 8 + 8 + 16;

/// Issues and checks nonces.
pub struct Nonces {
    secret: [u8; 32],
    lifetime_ms: u64,
    next_id: AtomicU64,
    /// Per slot: (id << NC_BITS) | highest nonce-count seen.
    ring: Box<[AtomicU64]>,
}

impl Nonces {
    pub fn new(secret: [u8; 32], lifetime_ms: u64) -> Self {
        let ring = (0..1usize << RING_BITS)
            .map(|_| AtomicU64::new(u64::MAX))
            .collect();
        Nonces {
            secret,
            lifetime_ms,
            next_id: AtomicU64::new(rand::random::<u32>() as u64),
            ring,
        }
    }

    fn mac(&self, payload: &[u8]) -> [u8; 16] {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length");
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    fn slot(&self, id: u64) -> &AtomicU64 {
        &self.ring[(id & ((1 << RING_BITS) - 1)) as usize]
    }

    fn tag(id: u64) -> u64 {
        (id & ((1 << (64 - NC_BITS)) - 1)) << NC_BITS
    }

    pub fn issue(&self, now_ms: u64) -> String {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.slot(id).store(Self::tag(id), Ordering::Relaxed);
        let mut raw = [0u8; NONCE_BYTES];
        raw[..8].copy_from_slice(&now_ms.to_be_bytes());
        raw[8..16].copy_from_slice(&id.to_be_bytes());
        let mac = self.mac(&raw[..16]);
        raw[16..].copy_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a nonce and, when it is fresh, consumes `nc` (1 for clients without qop).
    pub fn check(&self, nonce: &str, nc: u32, now_ms: u64) -> NonceCheck {
        let mut raw = [0u8; NONCE_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(nonce.as_bytes(), &mut raw) {
            Ok(NONCE_BYTES) => {}
            _ => return NonceCheck::Forged,
        }
        let expected = self.mac(&raw[..16]);
        // Constant-time compare: the MAC must not leak through timing.
        let diff = expected
            .iter()
            .zip(&raw[16..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return NonceCheck::Forged;
        }
        let issued = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        let id = u64::from_be_bytes(raw[8..16].try_into().expect("8 bytes"));
        if now_ms.saturating_sub(issued) > self.lifetime_ms || issued > now_ms + 5_000 {
            return NonceCheck::Stale;
        }
        let slot = self.slot(id);
        let tag = Self::tag(id);
        let nc = u64::from(nc.min((1 << NC_BITS) - 1));
        let mut current = slot.load(Ordering::Acquire);
        loop {
            if current & !((1 << NC_BITS) - 1) != tag || current == u64::MAX {
                return NonceCheck::Stale;
            }
            if nc <= current & ((1 << NC_BITS) - 1) {
                return NonceCheck::Replayed;
            }
            match slot.compare_exchange_weak(current, tag | nc, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return NonceCheck::Fresh,
                Err(seen) => current = seen,
            }
        }
    }

    /// A stand-in HA1 for usernames that do not exist, so that an unknown user costs the
    /// same work and fails the same way as a wrong password.
    pub fn decoy_ha1(&self, alg: Algorithm, username: &str, realm: &str) -> String {
        let mac = self.mac(format!("decoy:{username}:{realm}").as_bytes());
        alg.hex(&mac)
    }
}

/// Compares two hex digests without an early exit.
pub fn digest_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| {
            acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
        }) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonces() -> Nonces {
        Nonces::new([7; 32], 300_000)
    }

    #[test]
    fn rfc_2617_md5_example() {
        // RFC 2617 §3.5 (HTTP example, same arithmetic as SIP).
        let ha1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let c = Credentials {
            username: "Mufasa",
            realm: "testrealm@host.com",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            uri: "/dir/index.html",
            response: "6629fae49393a05397450978507c4ef1",
            algorithm: Algorithm::Md5,
            qop: Some("auth"),
            nc: Some(1),
            cnonce: Some("0a4f113b"),
        };
        assert_eq!(c.expected_response(&ha1, "GET"), c.response);
    }

    #[test]
    fn rfc_7616_sha256_example() {
        let ha1 = ha1(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        let c = Credentials {
            username: "Mufasa",
            realm: "http-auth@example.org",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            uri: "/dir/index.html",
            response: "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            algorithm: Algorithm::Sha256,
            qop: Some("auth"),
            nc: Some(1),
            cnonce: Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"),
        };
        assert_eq!(c.expected_response(&ha1, "GET"), c.response);
    }

    #[test]
    fn parses_a_phone_header() {
        let v = r#"Digest username="2001",realm="kolokol",nonce="abc",uri="sip:127.0.0.1",response="00",algorithm=SHA-256,qop=auth,nc=0000010a,cnonce="x""#;
        let c = Credentials::parse(v).unwrap();
        assert_eq!(
            (c.username, c.nc, c.algorithm),
            ("2001", Some(0x10a), Algorithm::Sha256)
        );
        assert!(Credentials::parse("Basic Zm9vOmJhcg==").is_none());
        assert!(Credentials::parse(
            r#"Digest username="a",realm="r",nonce="n",uri="u",response="0",algorithm=SHA-512-256"#
        )
        .is_none());
    }

    #[test]
    fn nonce_lifecycle_with_simulated_time() {
        let n = nonces();
        let nonce = n.issue(1_000);
        assert_eq!(n.check(&nonce, 1, 2_000), NonceCheck::Fresh);
        assert_eq!(n.check(&nonce, 1, 2_000), NonceCheck::Replayed);
        assert_eq!(n.check(&nonce, 2, 3_000), NonceCheck::Fresh);
        assert_eq!(n.check(&nonce, 3, 1_000 + 300_001), NonceCheck::Stale);
    }

    #[test]
    fn tampered_and_foreign_nonces_are_forged() {
        let n = nonces();
        let nonce = n.issue(1_000);
        let mut bytes = nonce.into_bytes();
        bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            n.check(std::str::from_utf8(&bytes).unwrap(), 1, 1_000),
            NonceCheck::Forged
        );
        let other = Nonces::new([9; 32], 300_000).issue(1_000);
        assert_eq!(n.check(&other, 1, 1_000), NonceCheck::Forged);
        assert_eq!(n.check("short", 1, 1_000), NonceCheck::Forged);
    }

    #[test]
    fn a_reused_slot_makes_the_old_nonce_stale() {
        let n = nonces();
        let old = n.issue(0);
        for _ in 0..(1u64 << RING_BITS) {
            n.issue(0);
        }
        assert_eq!(n.check(&old, 1, 10), NonceCheck::Stale);
    }

    #[test]
    fn answers_a_providers_challenge_the_way_verification_expects() {
        let challenge = r#"Digest realm="provider", nonce="abc123", qop="auth,auth-int", opaque="xyz", algorithm=MD5"#;
        let value = answer(
            challenge,
            "REGISTER",
            "sip:203.0.113.5",
            "acc",
            "pw",
            "c0ffee",
        )
        .unwrap();
        let c = Credentials::parse(&value).unwrap();
        assert_eq!(
            (c.username, c.realm, c.nonce, c.qop, c.nc),
            ("acc", "provider", "abc123", Some("auth"), Some(1))
        );
        assert!(value.contains(r#"opaque="xyz""#));
        let expected =
            c.expected_response(&ha1(Algorithm::Md5, "acc", "provider", "pw"), "REGISTER");
        assert_eq!(c.response, expected);
        // RFC 2617 without qop.
        let value = answer(
            r#"Digest realm="r", nonce="n""#,
            "INVITE",
            "sip:1@h",
            "u",
            "p",
            "x",
        )
        .unwrap();
        assert!(!value.contains("qop"));
        assert!(answer(r#"Basic realm="r""#, "INVITE", "sip:1@h", "u", "p", "x").is_none());
    }
}
