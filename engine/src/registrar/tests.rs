//! The registrar with simulated time: no sockets, no sleeps.

use super::digest::{ha1, Algorithm, Credentials};
use super::location::{Forget, Location};
use super::*;
use crate::service::SipService;
use crate::sip;
use crate::transport::{Flow, Transport};
use std::sync::Mutex;

struct Accounts;
impl Directory for Accounts {
    fn account(&self, username: &str) -> Option<SipAccount> {
        (username == "2001").then(|| SipAccount {
            user_id: 1,
            username: "2001".into(),
            ha1_md5: ha1(Algorithm::Md5, "2001", "kolokol", "right-password"),
            ha1_sha256: ha1(Algorithm::Sha256, "2001", "kolokol", "right-password"),
            websocket_only: false,
        })
    }
}

/// Collects persisted changes.
#[derive(Default)]
struct Recorder(Mutex<Vec<LocationChange>>);
impl BindingSink for Recorder {
    fn changed(&self, change: LocationChange) {
        self.0.lock().unwrap().push(change);
    }
}

fn config() -> RegistrarConfig {
    RegistrarConfig {
        pike: PikeConfig {
            max_failures: 3,
            window_ms: 2_000,
            ban_ms: 60_000,
        },
        ..RegistrarConfig::default()
    }
}

fn service_with(sink: Arc<dyn BindingSink>) -> SipService {
    let location = Arc::new(Location::new(sink));
    SipService::new(Registrar::new(
        config(),
        [3; 32],
        Arc::new(Accounts),
        location,
    ))
}

fn service() -> SipService {
    service_with(Arc::new(Forget))
}

fn flow(port: u16) -> Flow {
    Flow {
        transport: Transport::Udp,
        remote: ([198, 51, 100, 7], port).into(),
        local: ([192, 0, 2, 1], 5060).into(),
        connection: None,
    }
}

struct Phone {
    user: &'static str,
    password: &'static str,
    call_id: String,
    cseq: u32,
    port: u16,
    sent: u32,
}

impl Phone {
    fn new(user: &'static str, password: &'static str, port: u16) -> Self {
        Phone {
            user,
            password,
            call_id: format!("reg-{port}"),
            cseq: 0,
            port,
            sent: 0,
        }
    }

    fn request(&mut self, contact: &str, expires: Option<u32>, auth: Option<String>) -> Vec<u8> {
        self.cseq += 1;
        self.sent += 1;
        let mut m = format!(
            "REGISTER sip:192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:{};rport;branch=z9hG4bK{}{}\r\nMax-Forwards: 70\r\nFrom: <sip:{u}@192.0.2.1>;tag=f{}\r\nTo: <sip:{u}@192.0.2.1>\r\nCall-ID: {}\r\nCSeq: {} REGISTER\r\nContact: {contact}\r\n",
            self.port, self.call_id, self.sent, self.port, self.call_id, self.cseq, u = self.user
        );
        if let Some(e) = expires {
            m.push_str(&format!("Expires: {e}\r\n"));
        }
        if let Some(a) = auth {
            m.push_str(&format!("Authorization: {a}\r\n"));
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m.into_bytes()
    }

    fn authorization(&self, challenge: &str, alg: Algorithm, nc: u32) -> String {
        let nonce = header_param(challenge, "nonce");
        let creds = Credentials {
            username: self.user,
            realm: "kolokol",
            nonce: &nonce,
            uri: "sip:192.0.2.1",
            response: "",
            algorithm: alg,
            qop: Some("auth"),
            nc: Some(nc),
            cnonce: Some("c0ffee"),
        };
        let response =
            creds.expected_response(&ha1(alg, self.user, "kolokol", self.password), "REGISTER");
        format!(
            "Digest username=\"{}\", realm=\"kolokol\", nonce=\"{nonce}\", uri=\"sip:192.0.2.1\", response=\"{response}\", algorithm={}, qop=auth, nc={nc:08x}, cnonce=\"c0ffee\"",
            self.user,
            alg.name()
        )
    }

    /// Challenge then answer it; returns the final response.
    fn register(
        &mut self,
        svc: &SipService,
        contact: &str,
        expires: Option<u32>,
        alg: Algorithm,
        now: u64,
    ) -> String {
        let first = self.request(contact, expires, None);
        let challenge = send(svc, &first, self.port, now);
        assert!(challenge.starts_with("SIP/2.0 401 "), "{challenge}");
        let www = challenge_for(&challenge, alg);
        let second = self.request(contact, expires, Some(self.authorization(&www, alg, 1)));
        send(svc, &second, self.port, now)
    }
}

fn send(svc: &SipService, msg: &[u8], port: u16, now: u64) -> String {
    svc.handle(msg, &flow(port), now)
        .map(|o| String::from_utf8(o.bytes).unwrap())
        .unwrap_or_default()
}

fn challenge_for(response: &str, alg: Algorithm) -> String {
    response
        .lines()
        .filter_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .find(|l| l.contains(&format!("algorithm={}", alg.name())))
        .unwrap_or_else(|| panic!("no {alg:?} challenge in {response}"))
        .to_string()
}

fn header_param(header: &str, name: &str) -> String {
    let start = header.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    header[start..].split('"').next().unwrap().to_string()
}

fn status(response: &str) -> u16 {
    response[8..11].parse().unwrap()
}

fn without_volatile(response: &str) -> String {
    response
        .lines()
        .filter(|l| {
            !l.starts_with("Via:")
                && !l.starts_with("Call-ID:")
                && !l.starts_with("To:")
                && !l.starts_with("From:")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const T0: u64 = 1_700_000_000_000;

#[test]
fn md5_and_sha256_registrations_bind_the_contact() {
    let svc = service();
    for (alg, port) in [(Algorithm::Md5, 40001), (Algorithm::Sha256, 40002)] {
        let mut phone = Phone::new("2001", "right-password", port);
        let ok = phone.register(
            &svc,
            &format!("<sip:2001@198.51.100.7:{port}>"),
            Some(600),
            alg,
            T0,
        );
        assert_eq!(status(&ok), 200, "{ok}");
        assert!(
            ok.contains(&format!(
                "Contact: <sip:2001@198.51.100.7:{port}>;expires=600"
            )),
            "{ok}"
        );
        assert!(
            ok.contains(&format!(";rport={port};")) && ok.contains(";received=198.51.100.7"),
            "{ok}"
        );
    }
    let bound = svc.registrar.location.lookup("2001", T0);
    assert_eq!(bound.len(), 2);
    assert_eq!(bound[0].flow.remote.port(), 40001);
}

#[test]
fn wrong_password_and_unknown_user_are_indistinguishable() {
    let svc = service();
    let mut wrong = Phone::new("2001", "guess", 40010);
    let mut unknown = Phone::new("7777", "guess", 40011);
    let a = wrong.register(
        &svc,
        "<sip:2001@198.51.100.7:40010>",
        Some(600),
        Algorithm::Md5,
        T0,
    );
    let b = unknown.register(
        &svc,
        "<sip:7777@198.51.100.7:40011>",
        Some(600),
        Algorithm::Md5,
        T0,
    );
    assert_eq!(status(&a), 403);
    assert_eq!(without_volatile(&a), without_volatile(&b));
    assert!(svc.registrar.location.all(T0).is_empty());
}

#[test]
fn stale_nonce_is_rechallenged_with_stale_true() {
    let svc = service();
    let mut phone = Phone::new("2001", "right-password", 40020);
    let first = phone.request("<sip:2001@198.51.100.7:40020>", Some(600), None);
    let www = challenge_for(&send(&svc, &first, 40020, T0), Algorithm::Md5);
    let later = T0 + 301_000;
    let second = phone.request(
        "<sip:2001@198.51.100.7:40020>",
        Some(600),
        Some(phone.authorization(&www, Algorithm::Md5, 1)),
    );
    let r = send(&svc, &second, 40020, later);
    assert_eq!(status(&r), 401, "{r}");
    assert!(r.contains("stale=true"), "{r}");
}

#[test]
fn a_replayed_nonce_count_is_refused_but_a_retransmission_is_answered_the_same() {
    let svc = service();
    let mut phone = Phone::new("2001", "right-password", 40030);
    let first = phone.request("<sip:2001@198.51.100.7:40030>", Some(600), None);
    let www = challenge_for(&send(&svc, &first, 40030, T0), Algorithm::Md5);
    let auth = phone.authorization(&www, Algorithm::Md5, 1);
    let second = phone.request(
        "<sip:2001@198.51.100.7:40030>",
        Some(600),
        Some(auth.clone()),
    );
    let ok = send(&svc, &second, 40030, T0);
    assert_eq!(status(&ok), 200);
    // The same datagram again (a UDP retransmission) gets the same 200...
    assert_eq!(send(&svc, &second, 40030, T0 + 500), ok);
    // ...a new request replaying the same nonce and count does not.
    let replay = phone.request("<sip:2001@198.51.100.7:40030>", Some(600), Some(auth));
    assert_eq!(status(&send(&svc, &replay, 40030, T0 + 600)), 403);
    // The next count on the same nonce is fine.
    let next = phone.request(
        "<sip:2001@198.51.100.7:40030>",
        Some(600),
        Some(phone.authorization(&www, Algorithm::Md5, 2)),
    );
    assert_eq!(status(&send(&svc, &next, 40030, T0 + 700)), 200);
}

/// Digest credentials computed for `uri`, with or without qop.
fn credentials_for(www: &str, uri: &str, qop: bool, nc: u32) -> String {
    let nonce = header_param(www, "nonce");
    let creds = Credentials {
        username: "2001",
        realm: "kolokol",
        nonce: &nonce,
        uri,
        response: "",
        algorithm: Algorithm::Md5,
        qop: qop.then_some("auth"),
        nc: qop.then_some(nc),
        cnonce: qop.then_some("c0ffee"),
    };
    let response = creds.expected_response(
        &ha1(Algorithm::Md5, "2001", "kolokol", "right-password"),
        "REGISTER",
    );
    let mut h = format!("Digest username=\"2001\", realm=\"kolokol\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5");
    if qop {
        h.push_str(&format!(", qop=auth, nc={nc:08x}, cnonce=\"c0ffee\""));
    } else {
        // Not covered by the response: an attacker may write any count here.
        h.push_str(&format!(", nc={nc:08x}"));
    }
    h
}

#[test]
fn credentials_for_another_uri_are_refused() {
    let svc = service();
    let mut phone = Phone::new("2001", "right-password", 40031);
    let first = phone.request("<sip:2001@198.51.100.7:40031>", Some(600), None);
    let www = challenge_for(&send(&svc, &first, 40031, T0), Algorithm::Md5);
    let elsewhere = credentials_for(&www, "sip:84951234567@192.0.2.1", true, 1);
    let second = phone.request("<sip:2001@198.51.100.7:40031>", Some(600), Some(elsewhere));
    let r = send(&svc, &second, 40031, T0);
    assert_eq!(status(&r), 403, "{r}");
    assert!(svc.registrar.location.lookup("2001", T0).is_empty());
    // The host alone (as sipp signs) names this server's target; another host does not.
    assert!(digest_uri_matches(
        "sip:192.0.2.1:5060",
        "sip:84951234567@192.0.2.1:5060"
    ));
    assert!(!digest_uri_matches(
        "sip:192.0.2.9",
        "sip:84951234567@192.0.2.1"
    ));
    assert!(!digest_uri_matches(
        "sip:1002@192.0.2.1",
        "sip:84951234567@192.0.2.1"
    ));
}

#[test]
fn a_response_without_qop_serves_once_whatever_nc_says() {
    let svc = service();
    let mut phone = Phone::new("2001", "right-password", 40032);
    let first = phone.request("<sip:2001@198.51.100.7:40032>", Some(600), None);
    let www = challenge_for(&send(&svc, &first, 40032, T0), Algorithm::Md5);
    let once = credentials_for(&www, "sip:192.0.2.1", false, 1);
    let second = phone.request("<sip:2001@198.51.100.7:40032>", Some(600), Some(once));
    assert_eq!(status(&send(&svc, &second, 40032, T0)), 200);
    // The sniffed header with a raised count: refused, the response does not cover nc.
    let replay = credentials_for(&www, "sip:192.0.2.1", false, 2);
    let third = phone.request("<sip:2001@198.51.100.7:40032>", Some(600), Some(replay));
    assert_eq!(status(&send(&svc, &third, 40032, T0 + 100)), 403);
}

#[test]
fn restored_websocket_bindings_are_dropped_and_deleted() {
    let sink = Arc::new(Recorder::default());
    let location = Location::new(sink.clone());
    let binding = |aor: &str, transport| Binding {
        aor: aor.into(),
        contact: format!("<sip:{aor}@h.invalid>"),
        q: None,
        expires_at_ms: T0 + 60_000,
        registered_at_ms: T0,
        call_id: aor.into(),
        cseq: 1,
        flow: Flow {
            transport,
            remote: ([198, 51, 100, 7], 5060).into(),
            local: ([192, 0, 2, 1], 5060).into(),
            connection: Some(7),
        },
        user_agent: None,
    };
    location.restore(
        [
            binding("2001", Transport::Tcp),
            binding("2002", Transport::Wss),
        ],
        T0,
    );
    assert_eq!(location.lookup("2001", T0).len(), 1);
    assert!(location.lookup("2002", T0).is_empty());
    assert_eq!(
        *sink.0.lock().unwrap(),
        vec![LocationChange::Remove {
            aor: "2002".into(),
            contact: "<sip:2002@h.invalid>".into()
        }]
    );
}

#[test]
fn too_brief_expiry_gets_423_with_min_expires() {
    let svc = service();
    let mut phone = Phone::new("2001", "right-password", 40040);
    let r = phone.register(
        &svc,
        "<sip:2001@198.51.100.7:40040>",
        Some(10),
        Algorithm::Md5,
        T0,
    );
    assert_eq!(status(&r), 423, "{r}");
    assert!(r.contains("Min-Expires: 60"), "{r}");
}

#[test]
fn several_contacts_with_q_expire_and_unregister() {
    let sink = Arc::new(Recorder::default());
    let svc = service_with(sink.clone());
    let mut desk = Phone::new("2001", "right-password", 40050);
    let mut browser = Phone::new("2001", "right-password", 40051);
    let r = desk.register(
        &svc,
        "<sip:2001@198.51.100.7:40050>;q=0.5",
        Some(120),
        Algorithm::Md5,
        T0,
    );
    assert_eq!(status(&r), 200);
    let r = browser.register(
        &svc,
        "<sip:2001@198.51.100.7:40051>;q=1.0",
        Some(3600),
        Algorithm::Sha256,
        T0,
    );
    assert_eq!(status(&r), 200);
    assert_eq!(r.matches("Contact: ").count(), 2, "{r}");
    let both = svc.registrar.location.lookup("2001", T0 + 1);
    assert_eq!(
        both[0].contact, "sip:2001@198.51.100.7:40051",
        "highest q first"
    );
    // The desk phone's binding lapses after 120 s.
    assert_eq!(svc.registrar.sweep(T0 + 121_000), 1);
    assert_eq!(svc.registrar.location.lookup("2001", T0 + 121_000).len(), 1);
    // Un-REGISTER of the one contact left.
    let r = browser.register(
        &svc,
        "<sip:2001@198.51.100.7:40051>",
        Some(0),
        Algorithm::Md5,
        T0 + 130_000,
    );
    assert_eq!(status(&r), 200);
    assert!(!r.contains("Contact:"), "{r}");
    assert!(svc.registrar.location.all(T0 + 130_000).is_empty());
    let changes = sink.0.lock().unwrap();
    assert_eq!(
        changes
            .iter()
            .filter(|c| matches!(c, LocationChange::Upsert(_)))
            .count(),
        2
    );
    assert_eq!(
        changes
            .iter()
            .filter(|c| matches!(c, LocationChange::Remove { .. }))
            .count(),
        2
    );
}

#[test]
fn wildcard_unregister_removes_all_and_needs_expires_zero() {
    let svc = service();
    let mut a = Phone::new("2001", "right-password", 40060);
    let mut b = Phone::new("2001", "right-password", 40061);
    assert_eq!(
        status(&a.register(
            &svc,
            "<sip:2001@198.51.100.7:40060>",
            Some(600),
            Algorithm::Md5,
            T0
        )),
        200
    );
    assert_eq!(
        status(&b.register(
            &svc,
            "<sip:2001@198.51.100.7:40061>",
            Some(600),
            Algorithm::Md5,
            T0
        )),
        200
    );
    assert_eq!(
        status(&a.register(&svc, "*", Some(30), Algorithm::Md5, T0)),
        400
    );
    assert_eq!(
        status(&a.register(&svc, "*", Some(0), Algorithm::Md5, T0)),
        200
    );
    assert!(svc.registrar.location.all(T0).is_empty());
}

#[test]
fn repeated_failures_ban_the_source_and_the_ban_lifts() {
    let svc = service();
    let mut thief = Phone::new("2001", "guess", 40070);
    for i in 0..3 {
        assert_eq!(
            status(&thief.register(
                &svc,
                "<sip:2001@198.51.100.7:40070>",
                Some(600),
                Algorithm::Md5,
                T0 + i
            )),
            403
        );
    }
    assert_eq!(
        status(&thief.register(
            &svc,
            "<sip:2001@198.51.100.7:40070>",
            Some(600),
            Algorithm::Md5,
            T0 + 10
        )),
        403
    );
    // Banned: even an OPTIONS from that address is dropped.
    let probe = b"OPTIONS sip:192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:40070;branch=z9hG4bKp\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:192.0.2.1>\r\nCall-ID: p\r\nCSeq: 1 OPTIONS\r\n\r\n";
    assert_eq!(send(&svc, probe, 40070, T0 + 20), "");
    assert_eq!(status(&send(&svc, probe, 40070, T0 + 10 + 60_000)), 200);
}

#[test]
fn reordered_cseq_changes_nothing() {
    let svc = service();
    let mut phone = Phone::new("2001", "right-password", 40080);
    assert_eq!(
        status(&phone.register(
            &svc,
            "<sip:2001@198.51.100.7:40080>",
            Some(600),
            Algorithm::Md5,
            T0
        )),
        200
    );
    phone.cseq = 0; // a delayed older request from the same Call-ID
    let r = phone.register(
        &svc,
        "<sip:2001@198.51.100.7:40080>",
        Some(0),
        Algorithm::Md5,
        T0 + 1,
    );
    assert_eq!(status(&r), 500, "{r}");
    assert_eq!(svc.registrar.location.all(T0 + 1).len(), 1);
}

#[test]
fn date_header_is_rfc1123() {
    assert_eq!(httpdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(httpdate(1_795_445_012_000), "Mon, 23 Nov 2026 14:43:32 GMT");
    assert!(sip::grammar::check_date(&httpdate(T0)).is_ok());
}
