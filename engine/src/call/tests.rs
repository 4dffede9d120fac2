//! Call control with simulated time and a fake media plane: the races and failures of
//! RFC 3261 without sockets or sleeps.

use super::routing::{Dialplan, Number, Trunk, UserRoute};
use super::*;
use crate::registrar::location::Forget;
use crate::registrar::Binding;
use crate::sip::{decode, Inbound};
use kolokol_media::relay::{BridgeId, Endpoint, EndpointId, MediaError, Remote, Side as MediaSide};
use std::net::SocketAddr;
use std::sync::Mutex;

/// Media that hands out fake ports and logs what it was told.
#[derive(Default)]
struct FakeMedia {
    next: Mutex<u64>,
    log: Mutex<Vec<String>>,
}

impl FakeMedia {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl MediaControl for FakeMedia {
    fn open_endpoint(&self) -> Result<Endpoint, MediaError> {
        let mut n = self.next.lock().unwrap();
        *n += 1;
        Ok(Endpoint {
            id: EndpointId(*n),
            address: [127, 0, 0, 1].into(),
            port: 20000 + 2 * *n as u16,
        })
    }
    fn set_remote(&self, id: EndpointId, remote: Remote) {
        self.log.lock().unwrap().push(format!(
            "remote {} {} {:?}",
            id.0, remote.addr, remote.direction
        ));
    }
    fn bridge(
        &self,
        left: EndpointId,
        right: EndpointId,
        recording: Option<(String, PathBuf)>,
    ) -> Result<BridgeId, MediaError> {
        self.log.lock().unwrap().push(format!(
            "bridge {} {} {}",
            left.0,
            right.0,
            recording.is_some()
        ));
        Ok(BridgeId(left.0))
    }
    fn replace(
        &self,
        bridge: BridgeId,
        side: MediaSide,
        endpoint: EndpointId,
    ) -> Result<(), MediaError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("replace {} {side:?} {}", bridge.0, endpoint.0));
        Ok(())
    }
    fn close_bridge(&self, bridge: BridgeId) {
        self.log
            .lock()
            .unwrap()
            .push(format!("close bridge {}", bridge.0));
    }
    fn close_endpoint(&self, id: EndpointId) {
        self.log
            .lock()
            .unwrap()
            .push(format!("close endpoint {}", id.0));
    }
    fn play(&self, id: EndpointId, _: Arc<kolokol_media::Sound>) -> Result<(), MediaError> {
        self.log.lock().unwrap().push(format!("play {}", id.0));
        Ok(())
    }
    fn announce(
        &self,
        id: EndpointId,
        words: Arc<kolokol_media::Sound>,
        _: Arc<kolokol_media::Sound>,
    ) -> Result<(), MediaError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("announce {} {}ms", id.0, words.duration_ms()));
        Ok(())
    }
}

struct Plan;

fn user(login: &str, ext: &str) -> UserRoute {
    UserRoute {
        login: login.into(),
        name: login.into(),
        extension: Some(ext.into()),
        record: true,
        trunk: Some(1),
    }
}

impl Dialplan for Plan {
    fn trunk_from(&self, _: &Flow) -> Option<Trunk> {
        None
    }
    fn trunk(&self, id: i64) -> Option<Trunk> {
        (id == 1).then(|| Trunk {
            id: 1,
            name: "provider".into(),
            address: ([192, 0, 2, 50], 5060).into(),
            transport: Transport::Udp,
            inbound_ip: None,
            inbound_port: None,
            caller_id: Some("74950000000".into()),
            username: Some("acc".into()),
            password: Some("pw".into()),
        })
    }
    fn number(&self, number: &str) -> Option<Number> {
        (number == "500").then(|| Number {
            number: "500".into(),
            destination: Destination::Queue("support".into()),
            record: true,
        })
    }
    fn user(&self, key: &str) -> Option<UserRoute> {
        match key {
            "alice" | "1001" => Some(user("alice", "1001")),
            "bob" | "1002" => Some(user("bob", "1002")),
            "carol" | "1003" => Some(user("carol", "1003")),
            // Dave calls nobody outside.
            "dave" | "1004" => Some(UserRoute {
                trunk: None,
                ..user("dave", "1004")
            }),
            _ => None,
        }
    }
}

use crate::transport::Transport;

/// A device's address and, for stream transports, its connection.
type Device = (([u8; 4], u16), Option<u64>);

const ALICE: ([u8; 4], u16) = ([192, 0, 2, 10], 5061);
const BOB_DESK: ([u8; 4], u16) = ([192, 0, 2, 20], 5062);
const BOB_SOFT: ([u8; 4], u16) = ([192, 0, 2, 21], 5063);
/// Carol (1003), a transfer target, always has this one device registered.
const CAROL: ([u8; 4], u16) = ([192, 0, 2, 30], 5064);

fn flow_of(addr: ([u8; 4], u16), connection: Option<u64>) -> Flow {
    Flow {
        transport: if connection.is_some() {
            Transport::Tcp
        } else {
            Transport::Udp
        },
        remote: addr.into(),
        local: ([192, 0, 2, 1], 5060).into(),
        connection,
    }
}

struct Bench {
    control: CallControl,
    media: Arc<FakeMedia>,
    now: u64,
    alice: Flow,
}

fn binding(aor: &str, contact: &str, flow: Flow) -> Binding {
    Binding {
        aor: aor.into(),
        contact: contact.into(),
        q: None,
        expires_at_ms: 10_000_000,
        registered_at_ms: 0,
        call_id: "reg".into(),
        cseq: 1,
        flow,
        user_agent: None,
    }
}

/// Bob has the given devices registered.
fn bench(bob_devices: &[Device]) -> Bench {
    let location = Arc::new(Location::new(Arc::new(Forget)));
    location.restore(
        bob_devices.iter().enumerate().map(|(i, (addr, conn))| {
            let a = SocketAddr::from(*addr);
            binding(
                "1002",
                &format!("<sip:1002@{a};dev={i}>"),
                flow_of(*addr, *conn),
            )
        }),
        0,
    );
    location.restore(
        [binding(
            "1003",
            "<sip:1003@192.0.2.30:5064>",
            flow_of(CAROL, None),
        )],
        0,
    );
    let media = Arc::new(FakeMedia::default());
    let control = CallControl::new(Context {
        config: CallConfig {
            ring_timeout_s: 60,
            ..CallConfig::default()
        },
        local: LocalAddresses {
            udp: ([192, 0, 2, 1], 5060).into(),
            tcp: ([192, 0, 2, 1], 5060).into(),
            tls: ([192, 0, 2, 1], 5061).into(),
        },
        dialplan: Arc::new(Plan),
        location,
        media: media.clone(),
    });
    Bench {
        control,
        media,
        now: 1_000,
        alice: flow_of(ALICE, None),
    }
}

const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n";
const ANSWER: &str = "v=0\r\no=bob 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n";

fn invite(to: &str, cseq: u32) -> Vec<u8> {
    format!(
        "INVITE sip:{to}@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bKalice{cseq}\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:1001@192.0.2.1>;tag=a1\r\nTo: <sip:{to}@192.0.2.1>\r\nCall-ID: call-a@192.0.2.10\r\nCSeq: {cseq} INVITE\r\nContact: <sip:1001@192.0.2.10:5061>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{OFFER}",
        OFFER.len()
    )
    .into_bytes()
}

/// Alice's CANCEL of her first INVITE to 1002 (same branch, no body).
fn alice_cancel() -> String {
    let cancel = String::from_utf8(invite("1002", 1))
        .unwrap()
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    cancel.split("Content-Type").next().unwrap().to_string() + "Content-Length: 0\r\n\r\n"
}

fn scan_of(bytes: &[u8]) -> sip::Scan<'_> {
    sip::scan::scan(bytes).expect("well-formed")
}

fn text(o: &Outgoing) -> String {
    String::from_utf8_lossy(&o.bytes).into_owned()
}

fn start_line(o: &Outgoing) -> String {
    text(o).lines().next().unwrap_or_default().to_string()
}

/// The messages sent to `to` whose first line starts with `prefix`.
fn sent<'a>(out: &'a Outputs, to: ([u8; 4], u16), prefix: &str) -> Vec<&'a Outgoing> {
    let to = SocketAddr::from(to);
    out.messages
        .iter()
        .filter(|m| m.to == to && start_line(m).starts_with(prefix))
        .collect()
}

fn event_names(out: &Outputs) -> Vec<&'static str> {
    out.events.iter().map(|e| e.kind.name()).collect()
}

/// A response from the device to a request kolokol sent it.
fn reply(request: &Outgoing, status: u16, to_tag: &str, body: Option<&str>) -> Vec<u8> {
    let scan = scan_of(&request.bytes);
    let b = ResponseBuilder::new(&scan, status, reason(status), Some(to_tag), None)
        .header("Contact", "<sip:1002@192.0.2.20:5062>");
    match body {
        Some(s) => b.finish(s.as_bytes(), Some("application/sdp")),
        None => b.finish(b"", None),
    }
}

/// A request the device sends within the dialog kolokol's `invite` created.
fn from_device(
    invite: &Outgoing,
    method: &str,
    cseq: u32,
    to_tag: &str,
    body: Option<&str>,
) -> Vec<u8> {
    let scan = scan_of(&invite.bytes);
    let from = scan.first("From").unwrap();
    let to = scan.first("To").unwrap();
    let (ct, body) = match body {
        Some(b) => ("Content-Type: application/sdp\r\n", b),
        None => ("", ""),
    };
    format!(
        "{method} sip:kolokol@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bKdev{method}{cseq}\r\nMax-Forwards: 70\r\nFrom: {to};tag={to_tag}\r\nTo: {from}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:1002@192.0.2.20:5062>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        scan.first("Call-ID").unwrap(),
        body.len()
    )
    .into_bytes()
}

/// A request Alice sends within her dialog with kolokol (its To tag from `ok`).
fn from_alice(ok: &Outgoing, method: &str, cseq: u32, body: Option<&str>) -> Vec<u8> {
    let scan = scan_of(&ok.bytes);
    let to = scan.first("To").unwrap();
    let (ct, body) = match body {
        Some(b) => ("Content-Type: application/sdp\r\n", b),
        None => ("", ""),
    };
    format!(
        "{method} sip:kolokol@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5061;branch=z9hG4bKa{method}{cseq}\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:1001@192.0.2.1>;tag=a1\r\nTo: {to}\r\nCall-ID: call-a@192.0.2.10\r\nCSeq: {cseq} {method}\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl Bench {
    fn request(&mut self, bytes: &[u8], flow: Flow) -> (bool, Outputs) {
        let mut out = Outputs::default();
        let Ok(Inbound::Request(req)) = decode(bytes) else {
            panic!(
                "test request does not decode: {}",
                String::from_utf8_lossy(bytes)
            );
        };
        let handled = self.control.request(&req, bytes, &flow, self.now, &mut out);
        (handled, out)
    }

    fn call(&mut self, to: &str) -> Outputs {
        let bytes = invite(to, 1);
        let Ok(Inbound::Request(req)) = decode(&bytes) else {
            panic!("invite does not decode");
        };
        let mut out = Outputs::default();
        let alice = self.alice;
        self.control
            .invite(
                &req,
                &bytes,
                &alice,
                Caller::User(user("alice", "1001")),
                self.now,
                &mut out,
            )
            .expect("call placed");
        out
    }

    fn response(&mut self, bytes: &[u8]) -> Outputs {
        let mut out = Outputs::default();
        let Ok(Inbound::Response(status, scan)) = decode(bytes) else {
            panic!("test response does not decode");
        };
        self.control.response(status, &scan, self.now, &mut out);
        out
    }

    fn advance(&mut self, ms: u64) -> Outputs {
        let mut out = Outputs::default();
        let end = self.now + ms;
        while self.now < end {
            self.now += 20;
            self.control.tick(self.now, &mut out);
        }
        out
    }
}

/// Places a call to Bob's one device and has it answered: (bench, INVITE to Bob, 200 to Alice).
fn answered_call() -> (Bench, Outgoing, Outgoing) {
    let mut b = bench(&[(BOB_DESK, None)]);
    let out = b.call("1002");
    let inv = sent(&out, BOB_DESK, "INVITE").remove(0).clone();
    let out = b.response(&reply(&inv, 200, "b1", Some(ANSWER)));
    let ok = sent(&out, ALICE, "SIP/2.0 200").remove(0).clone();
    let (_, out) = b.request(&from_alice(&ok, "ACK", 1, None), b.alice);
    assert!(out.messages.is_empty());
    (b, inv, ok)
}

#[test]
fn basic_call_rings_answers_and_ends_with_bye() {
    let mut b = bench(&[(BOB_DESK, None)]);
    let out = b.call("1002");
    assert_eq!(sent(&out, ALICE, "SIP/2.0 100").len(), 1);
    let inv = sent(&out, BOB_DESK, "INVITE");
    assert_eq!(inv.len(), 1);
    let inv = inv[0].clone();
    let t = text(&inv);
    assert!(t.contains("Max-Forwards: 69"), "{t}");
    assert!(
        t.starts_with("INVITE sip:1002@192.0.2.20:5062;dev=0 SIP/2.0"),
        "{t}"
    );
    assert!(
        t.contains("m=audio 20004 RTP/AVP 0 8 101"),
        "offer on the callee endpoint: {t}"
    );
    assert!(
        t.contains("From: \"Alice\" <sip:1001@192.0.2.1>;tag="),
        "{t}"
    );
    assert_eq!(event_names(&out), ["offered"]);

    let out = b.response(&reply(&inv, 180, "b1", None));
    assert_eq!(sent(&out, ALICE, "SIP/2.0 180").len(), 1);
    assert_eq!(event_names(&out), ["ringing"]);

    let out = b.response(&reply(&inv, 200, "b1", Some(ANSWER)));
    assert_eq!(sent(&out, BOB_DESK, "ACK").len(), 1);
    let ok = sent(&out, ALICE, "SIP/2.0 200")[0].clone();
    let okt = text(&ok);
    assert!(
        okt.contains("m=audio 20002 RTP/AVP 0 101"),
        "answer on the caller endpoint, PCMU kept: {okt}"
    );
    assert_eq!(event_names(&out), ["recording_started", "answered"]);
    assert!(
        b.media.log().iter().any(|l| l == "bridge 1 2 true"),
        "{:?}",
        b.media.log()
    );

    // The 2xx is retransmitted until Alice's ACK.
    let out = b.advance(600);
    assert_eq!(sent(&out, ALICE, "SIP/2.0 200").len(), 1);
    b.request(&from_alice(&ok, "ACK", 1, None), b.alice);
    let out = b.advance(5_000);
    assert!(sent(&out, ALICE, "SIP/2.0 200").is_empty());

    let (handled, out) = b.request(&from_alice(&ok, "BYE", 2, None), b.alice);
    assert!(handled);
    assert_eq!(sent(&out, ALICE, "SIP/2.0 200").len(), 1);
    let bye = sent(&out, BOB_DESK, "BYE");
    assert_eq!(bye.len(), 1);
    assert!(text(bye[0]).contains(";tag=b1"), "BYE inside Bob's dialog");
    assert_eq!(event_names(&out), ["ended"]);
    assert!(matches!(
        out.events[0].kind,
        EventKind::Ended {
            cause: EndCause::Completed,
            by: Some(LegRole::Caller),
            ..
        }
    ));
    assert!(b.media.log().iter().any(|l| l == "close bridge 1"));
    assert_eq!(b.control.active_calls(), 0);
    // Sequence numbers have no gaps.
    let _ = b.advance(40_000);
    assert!(b.control.calls.is_empty(), "forgotten after lingering");
}

#[test]
fn parallel_ringing_first_answer_wins_and_others_are_cancelled() {
    let mut b = bench(&[(BOB_DESK, None), (BOB_SOFT, None)]);
    let out = b.call("1002");
    let desk = sent(&out, BOB_DESK, "INVITE")[0].clone();
    let soft = sent(&out, BOB_SOFT, "INVITE")[0].clone();
    b.response(&reply(&desk, 180, "d1", None));
    b.response(&reply(&soft, 180, "s1", None));
    let out = b.response(&reply(&soft, 200, "s1", Some(ANSWER)));
    assert_eq!(sent(&out, ALICE, "SIP/2.0 200").len(), 1);
    let cancel = sent(&out, BOB_DESK, "CANCEL");
    assert_eq!(cancel.len(), 1, "the desk phone stops ringing");
    let ct = text(cancel[0]);
    let desk_branch = message::top_branch(&scan_of(&desk.bytes))
        .unwrap()
        .to_string();
    assert!(
        ct.contains(&desk_branch),
        "CANCEL matches the INVITE's transaction"
    );
    // The desk answers 487; kolokol acknowledges it in the same transaction.
    let out = b.response(&reply(&desk, 487, "d1", None));
    let ack = sent(&out, BOB_DESK, "ACK");
    assert_eq!(ack.len(), 1);
    assert!(text(ack[0]).contains(&desk_branch));
    assert_eq!(b.control.active_calls(), 1);
}

#[test]
fn a_user_places_only_so_many_calls_at_once() {
    let mut b = bench(&[(BOB_DESK, None)]);
    let limit = b.control.config().max_per_user;
    let place = |b: &mut Bench, n: usize| {
        let bytes = String::from_utf8(invite("1002", 1))
            .unwrap()
            .replace("call-a@", &format!("call-{n}@"))
            .replace("branch=z9hG4bKalice1", &format!("branch=z9hG4bKn{n}"))
            .into_bytes();
        let Ok(Inbound::Request(req)) = decode(&bytes) else {
            panic!("invite does not decode");
        };
        let alice = b.alice;
        let mut out = Outputs::default();
        b.control
            .invite(
                &req,
                &bytes,
                &alice,
                Caller::User(user("alice", "1001")),
                b.now,
                &mut out,
            )
            .err()
            .map(|r| r.status)
    };
    for n in 0..limit {
        assert_eq!(place(&mut b, n), None, "call {n} is placed");
    }
    assert_eq!(place(&mut b, limit), Some(403));
    assert_eq!(b.control.active_calls(), limit);
}

#[test]
fn a_cancel_from_another_transaction_cancels_nothing() {
    let mut b = bench(&[(BOB_DESK, None)]);
    let out = b.call("1002");
    let inv = sent(&out, BOB_DESK, "INVITE")[0].clone();
    b.response(&reply(&inv, 180, "b1", None));
    // Same Call-ID and CSeq, but not the INVITE's branch: someone who saw the Call-ID.
    let cancel = alice_cancel().replace("branch=z9hG4bKalice1", "branch=z9hG4bKforged");
    let (handled, out) = b.request(cancel.as_bytes(), b.alice);
    assert!(handled);
    assert_eq!(sent(&out, ALICE, "SIP/2.0 481").len(), 1);
    assert!(sent(&out, BOB_DESK, "CANCEL").is_empty());
    assert_eq!(b.control.active_calls(), 1, "the call still rings");
}

#[test]
fn an_ack_without_our_tag_acknowledges_nothing() {
    let mut b = bench(&[(BOB_DESK, None)]);
    let out = b.call("1002");
    let inv = sent(&out, BOB_DESK, "INVITE")[0].clone();
    let out = b.response(&reply(&inv, 200, "b1", Some(ANSWER)));
    let ok = sent(&out, ALICE, "SIP/2.0 200")[0].clone();
    let forged = String::from_utf8(from_alice(&ok, "ACK", 1, None))
        .unwrap()
        .replace(";tag=", ";tag=x");
    b.request(forged.as_bytes(), b.alice);
    b.now += 600;
    let mut out = Outputs::default();
    b.control.tick(b.now, &mut out);
    assert_eq!(
        sent(&out, ALICE, "SIP/2.0 200").len(),
        1,
        "the 200 is still retransmitted: the forged ACK did not count"
    );
}

#[test]
fn cancel_racing_200_hangs_up_the_late_answer() {
    let mut b = bench(&[(BOB_DESK, None)]);
    let out = b.call("1002");
    let inv = sent(&out, BOB_DESK, "INVITE")[0].clone();
    b.response(&reply(&inv, 180, "b1", None));
    // Alice gives up.
    let cancel = alice_cancel();
    let (handled, out) = b.request(cancel.as_bytes(), b.alice);
    assert!(handled);
    assert_eq!(
        sent(&out, ALICE, "SIP/2.0 200").len(),
        1,
        "200 to the CANCEL"
    );
    assert_eq!(
        sent(&out, ALICE, "SIP/2.0 487").len(),
        1,
        "487 to the INVITE"
    );
    let bob_cancel = sent(&out, BOB_DESK, "CANCEL");
    assert_eq!(bob_cancel.len(), 1);
    let bob_cancel = bob_cancel[0].clone();
    assert!(matches!(
        out.events.last().unwrap().kind,
        EventKind::Ended {
            cause: EndCause::Abandoned,
            ..
        }
    ));
    // The 200 to the CANCEL shares the INVITE's branch but is not the INVITE's answer.
    let out = b.response(&reply(&bob_cancel, 200, "b1", None));
    assert!(out.messages.is_empty(), "{:?}", out.messages);
    // Bob's 200 crossed the CANCEL: ACK it and hang up at once.
    let out = b.response(&reply(&inv, 200, "b1", Some(ANSWER)));
    assert_eq!(sent(&out, BOB_DESK, "ACK").len(), 1);
    assert_eq!(sent(&out, BOB_DESK, "BYE").len(), 1);
    assert!(
        sent(&out, ALICE, "SIP/2.0 200").is_empty(),
        "Alice never gets a 200"
    );
}

#[test]
fn retransmitted_invite_gets_the_last_response_and_no_second_call() {
    let mut b = bench(&[(BOB_DESK, None)]);
    let out = b.call("1002");
    let inv = sent(&out, BOB_DESK, "INVITE")[0].clone();
    b.response(&reply(&inv, 180, "b1", None));
    let again = invite("1002", 1);
    let Ok(Inbound::Request(req)) = decode(&again) else {
        panic!()
    };
    let mut out = Outputs::default();
    assert!(b.control.retransmitted_invite(&req, &mut out));
    assert_eq!(sent(&out, ALICE, "SIP/2.0 180").len(), 1);
    assert!(out.events.is_empty());
    assert_eq!(b.control.active_calls(), 1);
}

#[test]
fn lost_ack_ends_the_call_after_timer_h() {
    let mut b = bench(&[(BOB_DESK, None)]);
    let out = b.call("1002");
    let inv = sent(&out, BOB_DESK, "INVITE")[0].clone();
    b.response(&reply(&inv, 200, "b1", Some(ANSWER)));
    // No ACK from Alice: 200 retransmitted with backoff, then both legs hung up.
    let out = b.advance(31_000);
    let resent = sent(&out, ALICE, "SIP/2.0 200").len();
    assert!(
        (7..=11).contains(&resent),
        "T1 doubling capped at T2: {resent}"
    );
    assert!(out.events.is_empty());
    let out = b.advance(2_000);
    // BYE both ways (retransmitted over UDP until answered).
    assert!(!sent(&out, BOB_DESK, "BYE").is_empty());
    assert!(!sent(&out, ALICE, "BYE").is_empty());
    assert!(matches!(
        out.events.last().unwrap().kind,
        EventKind::Ended {
            cause: EndCause::LegLost,
            ..
        }
    ));
}

#[test]
fn bye_from_caller_during_ringing_cancels_the_callee() {
    let mut b = bench(&[(BOB_DESK, None)]);
    let out = b.call("1002");
    let inv = sent(&out, BOB_DESK, "INVITE")[0].clone();
    let out = b.response(&reply(&inv, 180, "b1", None));
    let ringing = sent(&out, ALICE, "SIP/2.0 180")[0].clone();
    let (_, out) = b.request(&from_alice(&ringing, "BYE", 2, None), b.alice);
    assert_eq!(sent(&out, ALICE, "SIP/2.0 200").len(), 1);
    assert_eq!(sent(&out, ALICE, "SIP/2.0 487").len(), 1);
    assert_eq!(sent(&out, BOB_DESK, "CANCEL").len(), 1);
}

#[test]
fn busy_and_no_answer_map_to_the_caller() {
    let mut b = bench(&[(BOB_DESK, None)]);
    let out = b.call("1002");
    let inv = sent(&out, BOB_DESK, "INVITE")[0].clone();
    let out = b.response(&reply(&inv, 486, "b1", None));
    assert_eq!(sent(&out, ALICE, "SIP/2.0 486").len(), 1);
    assert!(matches!(
        out.events.last().unwrap().kind,
        EventKind::Ended {
            cause: EndCause::Busy,
            status: Some(486),
            ..
        }
    ));

    let mut b = bench(&[(BOB_DESK, None)]);
    let out = b.call("1002");
    let inv = sent(&out, BOB_DESK, "INVITE")[0].clone();
    b.response(&reply(&inv, 180, "b1", None));
    let out = b.advance(60_100);
    assert_eq!(sent(&out, ALICE, "SIP/2.0 480").len(), 1);
    assert_eq!(sent(&out, BOB_DESK, "CANCEL").len(), 1);
    assert!(matches!(
        out.events.last().unwrap().kind,
        EventKind::Ended {
            cause: EndCause::NoAnswer,
            ..
        }
    ));

    // A device that never answers at all: Timer B, then 408 → the caller hears 408.
    let mut b = bench(&[(BOB_DESK, None)]);
    b.call("1002");
    let out = b.advance(32_100);
    assert_eq!(sent(&out, ALICE, "SIP/2.0 408").len(), 1);
}

#[test]
fn hold_is_relayed_and_glare_gets_491() {
    let (mut b, inv, ok) = answered_call();
    let hold = OFFER.replace("a=sendrecv", "a=sendonly");
    let (_, out) = b.request(&from_alice(&ok, "INVITE", 2, Some(&hold)), b.alice);
    let reinvite = sent(&out, BOB_DESK, "INVITE");
    assert_eq!(reinvite.len(), 1);
    let rt = text(reinvite[0]);
    assert!(
        rt.contains("a=sendonly") && rt.contains("m=audio 20004"),
        "{rt}"
    );
    let reinvite = reinvite[0].clone();
    // Bob's own re-INVITE crosses ours: glare.
    let (_, out) = b.request(
        &from_device(&inv, "INVITE", 5, "b1", Some(ANSWER)),
        flow_of(BOB_DESK, None),
    );
    assert_eq!(sent(&out, BOB_DESK, "SIP/2.0 491").len(), 1);
    // Bob accepts the hold; Alice gets 200 with recvonly, a held event.
    let out = b.response(&reply(
        &reinvite,
        200,
        "b1",
        Some(&ANSWER.replace("a=sendrecv", "a=recvonly")),
    ));
    assert_eq!(sent(&out, BOB_DESK, "ACK").len(), 1);
    let ok2 = sent(&out, ALICE, "SIP/2.0 200");
    assert_eq!(ok2.len(), 1);
    assert!(text(ok2[0]).contains("a=recvonly"));
    assert_eq!(event_names(&out), ["held"]);
    // Resume.
    b.request(&from_alice(&ok, "ACK", 2, None), b.alice);
    let (_, out) = b.request(&from_alice(&ok, "INVITE", 3, Some(OFFER)), b.alice);
    let reinvite = sent(&out, BOB_DESK, "INVITE")[0].clone();
    let out = b.response(&reply(&reinvite, 200, "b1", Some(ANSWER)));
    assert_eq!(event_names(&out), ["resumed"]);
}

#[test]
fn a_trying_to_a_relayed_reinvite_keeps_it_open_for_the_final_answer() {
    let (mut b, _, ok) = answered_call();
    let hold = OFFER.replace("a=sendrecv", "a=sendonly");
    let (_, out) = b.request(&from_alice(&ok, "INVITE", 2, Some(&hold)), b.alice);
    let reinvite = sent(&out, BOB_DESK, "INVITE")[0].clone();
    // Browsers (JsSIP) answer every re-INVITE with 100 first.
    b.response(&reply(&reinvite, 100, "b1", None));
    let out = b.response(&reply(
        &reinvite,
        200,
        "b1",
        Some(&ANSWER.replace("a=sendrecv", "a=recvonly")),
    ));
    let final_answer = sent(&out, ALICE, "SIP/2.0 200");
    assert_eq!(final_answer.len(), 1, "the hold's 200 reaches the holder");
    assert!(text(final_answer[0]).contains("a=recvonly"));
    assert_eq!(event_names(&out), ["held"]);
}

#[test]
fn info_is_relayed_and_answered_with_the_far_status() {
    let (mut b, inv, _) = answered_call();
    let dtmf = from_device(&inv, "INFO", 7, "b1", None);
    let dtmf = String::from_utf8(dtmf)
        .unwrap()
        .replace("Content-Length: 0\r\n\r\n", "Content-Type: application/dtmf-relay\r\nContent-Length: 24\r\n\r\nSignal=5\r\nDuration=160\r\n");
    let (_, out) = b.request(dtmf.as_bytes(), flow_of(BOB_DESK, None));
    let info = sent(&out, ALICE, "INFO");
    assert_eq!(info.len(), 1);
    assert!(text(info[0]).contains("Signal=5"));
    let info = info[0].clone();
    let out = b.response(&reply(&info, 200, "a1", None));
    assert_eq!(sent(&out, BOB_DESK, "SIP/2.0 200").len(), 1);
}

#[test]
fn a_dead_transport_ends_the_call_towards_the_other_side() {
    let mut b = bench(&[(BOB_DESK, Some(42))]);
    let out = b.call("1002");
    let inv = sent(&out, BOB_DESK, "INVITE")[0].clone();
    assert_eq!(
        inv.connection,
        Some(42),
        "reached over its registration's connection"
    );
    let out = b.response(&reply(&inv, 200, "b1", Some(ANSWER)));
    let ok = sent(&out, ALICE, "SIP/2.0 200")[0].clone();
    b.request(&from_alice(&ok, "ACK", 1, None), b.alice);
    let mut out = Outputs::default();
    b.control.connection_closed(42, b.now, &mut out);
    assert_eq!(sent(&out, ALICE, "BYE").len(), 1);
    assert!(matches!(
        out.events.last().unwrap().kind,
        EventKind::Ended {
            cause: EndCause::LegLost,
            by: Some(LegRole::Callee),
            ..
        }
    ));
}

#[test]
fn unknown_destination_and_draining_are_refused_without_a_call() {
    let mut b = bench(&[]);
    let bytes = invite("1002", 1);
    let Ok(Inbound::Request(req)) = decode(&bytes) else {
        panic!()
    };
    let mut out = Outputs::default();
    let alice = b.alice;
    let r = b
        .control
        .invite(
            &req,
            &bytes,
            &alice,
            Caller::User(user("alice", "1001")),
            b.now,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(r.status, 480, "Bob has no device registered");
    let bytes = invite("nobody", 1);
    let Ok(Inbound::Request(req)) = decode(&bytes) else {
        panic!()
    };
    let r = b
        .control
        .invite(
            &req,
            &bytes,
            &alice,
            Caller::User(user("alice", "1001")),
            b.now,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(r.status, 404, "not an extension and not a phone number");
    b.control.drain(b.now + 1000);
    let r = b
        .control
        .invite(
            &req,
            &bytes,
            &alice,
            Caller::User(user("alice", "1001")),
            b.now,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(r.status, 503);
    assert!(r.headers.iter().any(|(n, _)| *n == "Retry-After"));
    assert!(out.messages.is_empty() && out.events.is_empty());
    assert!(
        b.media.log().is_empty(),
        "no media opened for refused calls"
    );
}

#[test]
fn external_numbers_leave_through_the_users_trunk_with_its_caller_id() {
    let mut b = bench(&[]);
    let out = b.call("84951234567");
    let inv = sent(&out, ([192, 0, 2, 50], 5060), "INVITE");
    assert_eq!(inv.len(), 1);
    let t = text(inv[0]);
    assert!(
        t.starts_with("INVITE sip:84951234567@192.0.2.50:5060 SIP/2.0"),
        "{t}"
    );
    assert!(
        t.contains("<sip:74950000000@192.0.2.1>"),
        "trunk caller-ID: {t}"
    );
    // The provider asks for credentials: the INVITE goes again, once, with them.
    let first = inv[0].clone();
    let challenge = String::from_utf8(reply(&first, 407, "p1", None))
        .unwrap()
        .replacen(
        "Content-Length:",
        "Proxy-Authenticate: Digest realm=\"prov\", nonce=\"n1\", qop=\"auth\"\r\nContent-Length:",
        1,
    );
    let out = b.response(challenge.as_bytes());
    assert_eq!(sent(&out, ([192, 0, 2, 50], 5060), "ACK").len(), 1);
    let again = sent(&out, ([192, 0, 2, 50], 5060), "INVITE");
    assert_eq!(again.len(), 1);
    let again = again[0].clone();
    let t = text(&again);
    let auth = t
        .lines()
        .find_map(|l| l.strip_prefix("Proxy-Authorization: "))
        .expect("credentials");
    let c = crate::registrar::digest::Credentials::parse(auth).unwrap();
    let ha1 = crate::registrar::digest::ha1(
        crate::registrar::digest::Algorithm::Md5,
        "acc",
        "prov",
        "pw",
    );
    assert_eq!(c.response, c.expected_response(&ha1, "INVITE"));
    assert!(t.contains("m=audio"), "the same offer again");
    assert!(
        sent(&out, ALICE, "SIP/2.0 4").is_empty(),
        "the caller is not told"
    );
    // Refused again: the caller hears 403 (the provider's challenge is not theirs).
    let challenge = String::from_utf8(reply(&again, 407, "p2", None)).unwrap();
    let out = b.response(challenge.as_bytes());
    assert_eq!(sent(&out, ALICE, "SIP/2.0 403").len(), 1);
}

/// A request with one more header (before Content-Length).
fn with_header(request: Vec<u8>, header: &str) -> Vec<u8> {
    String::from_utf8(request)
        .unwrap()
        .replacen(
            "Content-Length:",
            &format!("{header}\r\nContent-Length:"),
            1,
        )
        .into_bytes()
}

fn sipfrag(notify: &Outgoing) -> String {
    text(notify)
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn blind_transfer_swaps_the_target_in_and_takes_the_transferee_off_hold() {
    let (mut b, inv, ok) = answered_call();
    let bob = flow_of(BOB_DESK, None);
    // Bob puts Alice on hold first, as phones do before transferring.
    let hold = ANSWER.replace("a=sendrecv", "a=sendonly");
    let (_, out) = b.request(&from_device(&inv, "INVITE", 5, "b1", Some(&hold)), bob);
    let to_alice = sent(&out, ALICE, "INVITE")[0].clone();
    let out = b.response(&reply(
        &to_alice,
        200,
        "a1",
        Some(&OFFER.replace("a=sendrecv", "a=recvonly")),
    ));
    assert_eq!(event_names(&out), ["held"]);
    b.request(&from_device(&inv, "ACK", 5, "b1", None), bob);

    let refer = with_header(
        from_device(&inv, "REFER", 6, "b1", None),
        "Refer-To: <sip:1003@192.0.2.1>",
    );
    let (handled, out) = b.request(&refer, bob);
    assert!(handled);
    assert_eq!(sent(&out, BOB_DESK, "SIP/2.0 202").len(), 1);
    let notify = sent(&out, BOB_DESK, "NOTIFY");
    assert_eq!(notify.len(), 1);
    assert!(text(notify[0]).contains("Event: refer;id=6"));
    assert!(text(notify[0]).contains("Subscription-State: active"));
    assert_eq!(sipfrag(notify[0]), "SIP/2.0 100 Trying\r\n");
    let out_notify = b.response(&reply(notify[0], 200, "b1", None));
    assert!(out_notify.messages.is_empty());
    let to_carol = sent(&out, CAROL, "INVITE");
    assert_eq!(to_carol.len(), 1);
    let carol_inv = to_carol[0].clone();
    assert!(
        text(&carol_inv).contains("From: \"Alice\" <sip:1001@"),
        "the target sees the transferee: {}",
        text(&carol_inv)
    );
    assert!(event_names(&out).is_empty(), "nothing happened yet");

    b.response(&reply(&carol_inv, 180, "c1", None));
    let out = b.response(&reply(&carol_inv, 200, "c1", Some(ANSWER)));
    assert_eq!(sent(&out, CAROL, "ACK").len(), 1);
    let notify = sent(&out, BOB_DESK, "NOTIFY");
    assert_eq!(notify.len(), 1);
    assert_eq!(sipfrag(notify[0]), "SIP/2.0 200 OK\r\n");
    assert!(text(notify[0]).contains("Subscription-State: terminated"));
    let bye_bob = sent(&out, BOB_DESK, "BYE");
    assert_eq!(bye_bob.len(), 1, "the transferor's dialog ends");
    // Alice was held by Bob: kolokol offers her two-way media again.
    let resume = sent(&out, ALICE, "INVITE");
    assert_eq!(resume.len(), 1);
    assert!(text(resume[0]).contains("a=sendrecv"));
    assert!(matches!(
        &out.events[..],
        [Event { kind: EventKind::Transferred { to, attended: false }, leg: Some(LegRole::Callee), .. }] if to == "carol"
    ));
    assert!(
        b.media
            .log()
            .iter()
            .any(|l| l.starts_with("replace 1 Right")),
        "{:?}",
        b.media.log()
    );
    let resume = resume[0].clone();
    let out = b.response(&reply(&resume, 200, "a1", Some(OFFER)));
    assert_eq!(sent(&out, ALICE, "ACK").len(), 1);
    let bye_bob = bye_bob[0].clone();
    b.response(&reply(&bye_bob, 200, "b1", None));

    // Alice and Carol talk; Alice hangs up: Carol gets the BYE.
    let (_, out) = b.request(&from_alice(&ok, "BYE", 3, None), b.alice);
    assert_eq!(sent(&out, CAROL, "BYE").len(), 1);
    assert!(sent(&out, BOB_DESK, "BYE").is_empty());
    assert!(matches!(
        out.events.last().unwrap().kind,
        EventKind::Ended {
            cause: EndCause::Completed,
            by: Some(LegRole::Caller),
            ..
        }
    ));
}

#[test]
fn a_failed_blind_transfer_is_reported_and_the_call_goes_on() {
    let (mut b, inv, ok) = answered_call();
    let bob = flow_of(BOB_DESK, None);
    let refer = with_header(
        from_device(&inv, "REFER", 6, "b1", None),
        "Refer-To: <sip:1003@192.0.2.1>",
    );
    let (_, out) = b.request(&refer, bob);
    let carol_inv = sent(&out, CAROL, "INVITE")[0].clone();
    // A second REFER while the first is ringing.
    let again = with_header(
        from_device(&inv, "REFER", 7, "b1", None),
        "Refer-To: <sip:1003@192.0.2.1>",
    );
    let (_, out) = b.request(&again, bob);
    assert_eq!(sent(&out, BOB_DESK, "SIP/2.0 491").len(), 1);
    let out = b.response(&reply(&carol_inv, 486, "c1", None));
    assert_eq!(sent(&out, CAROL, "ACK").len(), 1);
    let notify = sent(&out, BOB_DESK, "NOTIFY");
    assert_eq!(sipfrag(notify[0]), "SIP/2.0 486 Busy Here\r\n");
    assert!(sent(&out, BOB_DESK, "BYE").is_empty());
    assert!(out.events.is_empty());
    // Nobody by that name: refused at once.
    let unknown = with_header(
        from_device(&inv, "REFER", 8, "b1", None),
        "Refer-To: <sip:7777@192.0.2.1>",
    );
    let (_, out) = b.request(&unknown, bob);
    assert_eq!(sent(&out, BOB_DESK, "SIP/2.0 404").len(), 1);
    // The call is still Alice and Bob's.
    let (_, out) = b.request(&from_alice(&ok, "BYE", 3, None), b.alice);
    assert_eq!(sent(&out, BOB_DESK, "BYE").len(), 1);
}

#[test]
fn a_transferor_that_hangs_up_at_once_leaves_the_transferee_with_the_target() {
    let (mut b, inv, ok) = answered_call();
    let bob = flow_of(BOB_DESK, None);
    let refer = with_header(
        from_device(&inv, "REFER", 6, "b1", None),
        "Refer-To: <sip:1003@192.0.2.1>",
    );
    let (_, out) = b.request(&refer, bob);
    let carol_inv = sent(&out, CAROL, "INVITE")[0].clone();
    let (_, out) = b.request(&from_device(&inv, "BYE", 7, "b1", None), bob);
    assert_eq!(sent(&out, BOB_DESK, "SIP/2.0 200").len(), 1);
    assert!(sent(&out, ALICE, "BYE").is_empty(), "Alice stays");
    assert!(out.events.is_empty());
    let out = b.response(&reply(&carol_inv, 200, "c1", Some(ANSWER)));
    assert!(sent(&out, BOB_DESK, "NOTIFY").is_empty());
    assert!(sent(&out, BOB_DESK, "BYE").is_empty());
    assert_eq!(event_names(&out), ["transferred"]);
    let (_, out) = b.request(&from_alice(&ok, "BYE", 3, None), b.alice);
    assert_eq!(sent(&out, CAROL, "BYE").len(), 1);

    // Had Carol not answered, Alice's call would have ended.
    let (mut b, inv, _) = answered_call();
    let refer = with_header(
        from_device(&inv, "REFER", 6, "b1", None),
        "Refer-To: <sip:1003@192.0.2.1>",
    );
    let (_, out) = b.request(&refer, bob);
    let carol_inv = sent(&out, CAROL, "INVITE")[0].clone();
    b.request(&from_device(&inv, "BYE", 7, "b1", None), bob);
    let out = b.response(&reply(&carol_inv, 480, "c1", None));
    assert_eq!(sent(&out, ALICE, "BYE").len(), 1);
    assert!(matches!(
        out.events.last().unwrap().kind,
        EventKind::Ended {
            cause: EndCause::Failed,
            ..
        }
    ));
}

#[test]
fn attended_transfer_joins_the_consulted_party_and_ends_the_consultation() {
    let (mut b, inv, ok) = answered_call();
    let bob = flow_of(BOB_DESK, None);
    // Bob consults Carol on a second call.
    let offer = ANSWER.replace("o=bob 1 1", "o=bob 2 2");
    let consult = format!(
        "INVITE sip:1003@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bKbob1\r\nMax-Forwards: 70\r\nFrom: <sip:1002@192.0.2.1>;tag=b2\r\nTo: <sip:1003@192.0.2.1>\r\nCall-ID: call-b@192.0.2.20\r\nCSeq: 1 INVITE\r\nContact: <sip:1002@192.0.2.20:5062>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        offer.len()
    );
    let Ok(Inbound::Request(req)) = decode(consult.as_bytes()) else {
        panic!()
    };
    let mut out = Outputs::default();
    b.control
        .invite(
            &req,
            consult.as_bytes(),
            &bob,
            Caller::User(user("bob", "1002")),
            b.now,
            &mut out,
        )
        .expect("consultation placed");
    let carol_inv = sent(&out, CAROL, "INVITE")[0].clone();
    let out = b.response(&reply(&carol_inv, 200, "c1", Some(ANSWER)));
    let ok_bob = sent(&out, BOB_DESK, "SIP/2.0 200")[0].clone();
    let kolokol_tag = message::tag(scan_of(&ok_bob.bytes).first("To").unwrap())
        .unwrap()
        .to_string();
    let consult_id = out.events[0].call_id.clone();
    let transfer_id = b
        .control
        .calls
        .values()
        .find(|c| c.id != consult_id)
        .unwrap()
        .id
        .clone();

    let refer = with_header(
        from_device(&inv, "REFER", 6, "b1", None),
        &format!("Refer-To: <sip:1003@192.0.2.1?Replaces=call-b%40192.0.2.20%3Bto-tag%3D{kolokol_tag}%3Bfrom-tag%3Db2>"),
    );
    let (_, out) = b.request(&refer, bob);
    assert_eq!(sent(&out, BOB_DESK, "SIP/2.0 202").len(), 1);
    let notify = sent(&out, BOB_DESK, "NOTIFY");
    assert_eq!(sipfrag(notify[0]), "SIP/2.0 200 OK\r\n");
    assert_eq!(
        sent(&out, BOB_DESK, "BYE").len(),
        2,
        "both of Bob's dialogs end"
    );
    let reinvite = sent(&out, CAROL, "INVITE");
    assert_eq!(reinvite.len(), 1, "Carol's media moves to the new endpoint");
    assert!(text(reinvite[0]).contains("a=sendrecv"));
    let ended: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.call_id == consult_id)
        .collect();
    assert!(matches!(
        ended[..],
        [Event {
            kind: EventKind::Ended {
                cause: EndCause::Transferred,
                ..
            },
            ..
        }]
    ));
    let transferred: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.call_id == transfer_id)
        .collect();
    assert!(matches!(
        &transferred[..],
        [Event { kind: EventKind::Transferred { to, attended: true }, .. }] if to == "carol"
    ));
    let reinvite = reinvite[0].clone();
    let out = b.response(&reply(&reinvite, 200, "c1", Some(ANSWER)));
    assert_eq!(sent(&out, CAROL, "ACK").len(), 1);
    assert!(b
        .media
        .log()
        .iter()
        .any(|l| l.starts_with("replace 1 Right")));

    // Carol hangs up on her (moved) dialog: Alice gets the BYE.
    let (_, out) = b.request(
        &from_device(&carol_inv, "BYE", 9, "c1", None),
        flow_of(CAROL, None),
    );
    assert_eq!(sent(&out, CAROL, "SIP/2.0 200").len(), 1);
    assert_eq!(sent(&out, ALICE, "BYE").len(), 1);
    assert!(out.events.iter().all(|e| e.call_id == transfer_id));
    let _ = ok;
}

/// Alice calls the support queue (500), where Bob is the one operator, logged in.
fn queue_call(ring_timeout_ms: u64) -> (Bench, Outputs) {
    let mut b = bench(&[(BOB_DESK, None)]);
    let mut q = crate::queue::QueueConfig::new(
        "support",
        crate::queue::Strategy::LongestIdle,
        &[("bob", 0)],
    );
    q.ring_timeout_ms = ring_timeout_ms;
    q.announce_every_ms = Some(3_000);
    b.control.set_queues(vec![q], b.now);
    let now = b.now;
    let mut out = Outputs::default();
    b.control
        .with_acd(now, &mut out, |acd, o| acd.login("bob", now, o))
        .unwrap();
    let out = b.call("500");
    (b, out)
}

fn queue_kinds(out: &Outputs) -> Vec<&'static str> {
    out.queue_events.iter().map(|e| e.kind.name()).collect()
}

#[test]
fn a_queue_call_is_answered_at_once_then_bridged_to_the_operator() {
    let (mut b, out) = queue_call(15_000);
    let ok = sent(&out, ALICE, "SIP/2.0 200");
    assert_eq!(ok.len(), 1, "the caller is answered and waits");
    let ok = ok[0].clone();
    assert_eq!(queue_kinds(&out), ["entered", "offered"]);
    let inv = sent(&out, BOB_DESK, "INVITE")[0].clone();
    assert!(b.media.log().iter().all(|l| !l.starts_with("bridge")));
    assert!(
        b.media.log().contains(&"play 1".to_string()),
        "the waiting caller hears music: {:?}",
        b.media.log()
    );
    b.request(&from_alice(&ok, "ACK", 1, None), b.alice);

    let out = b.response(&reply(&inv, 200, "b1", Some(ANSWER)));
    assert_eq!(sent(&out, BOB_DESK, "ACK").len(), 1);
    assert_eq!(queue_kinds(&out), ["answered"]);
    assert_eq!(event_names(&out), ["recording_started", "answered"]);
    assert!(out
        .events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Answered { by } if by == "bob")));
    assert!(b.media.log().iter().any(|l| l.starts_with("bridge")));
    assert!(matches!(
        b.control.acd().operator("bob").unwrap().state,
        crate::queue::OperatorState::Talking { .. }
    ));

    let (_, out) = b.request(&from_alice(&ok, "BYE", 2, None), b.alice);
    assert_eq!(sent(&out, BOB_DESK, "BYE").len(), 1);
    assert_eq!(queue_kinds(&out), ["completed"]);
    assert_eq!(
        b.control.acd().operator("bob").unwrap().state,
        crate::queue::OperatorState::Ready
    );
}

#[test]
fn an_unanswered_offer_is_cancelled_and_an_abandoning_caller_is_counted() {
    let (mut b, out) = queue_call(5_000);
    let ok = sent(&out, ALICE, "SIP/2.0 200")[0].clone();
    b.request(&from_alice(&ok, "ACK", 1, None), b.alice);
    let inv = sent(&out, BOB_DESK, "INVITE")[0].clone();
    b.response(&reply(&inv, 180, "b1", None));
    let out = b.advance(5_100);
    assert_eq!(sent(&out, BOB_DESK, "CANCEL").len(), 1, "the ring timeout");
    assert!(
        b.media
            .log()
            .iter()
            .any(|l| l.starts_with("announce 1 ") && !l.ends_with(" 0ms")),
        "the waiting caller is told their position: {:?}",
        b.media.log()
    );
    assert!(queue_kinds(&out).starts_with(&["no_answer"]));
    let cancel = sent(&out, BOB_DESK, "CANCEL")[0].clone();
    b.response(&reply(&cancel, 200, "b1", None));
    let out = b.response(&reply(&inv, 487, "b1", None));
    assert!(
        queue_kinds(&out).is_empty(),
        "kolokol's own CANCEL is no second miss"
    );
    // Bob is offered the caller again after the retry delay; Alice gives up meanwhile.
    let out = b.advance(1_100);
    let again = sent(&out, BOB_DESK, "INVITE");
    assert_eq!(again.len(), 1);
    let again = again[0].clone();
    b.response(&reply(&again, 180, "b2", None));
    let (_, out) = b.request(&from_alice(&ok, "BYE", 2, None), b.alice);
    assert_eq!(sent(&out, BOB_DESK, "CANCEL").len(), 1);
    assert_eq!(queue_kinds(&out), ["abandoned"]);
    assert!(matches!(
        out.events.last().unwrap().kind,
        EventKind::Ended {
            cause: EndCause::Abandoned,
            ..
        }
    ));
}

#[test]
fn a_queue_overflows_to_a_user_who_answers_or_declines() {
    for carol_answers in [true, false] {
        let mut b = bench(&[(BOB_DESK, None)]);
        let mut q = crate::queue::QueueConfig::new(
            "support",
            crate::queue::Strategy::Linear,
            &[("bob", 0)],
        );
        q.max_wait_ms = Some(2_000);
        q.overflow = crate::queue::Overflow::User("carol".into());
        b.control.set_queues(vec![q], b.now);
        // Bob is not logged in: the caller waits, then goes to Carol.
        let out = b.call("500");
        let ok = sent(&out, ALICE, "SIP/2.0 200")[0].clone();
        b.request(&from_alice(&ok, "ACK", 1, None), b.alice);
        assert!(sent(&out, BOB_DESK, "INVITE").is_empty());
        let out = b.advance(2_100);
        assert_eq!(queue_kinds(&out), ["overflowed"]);
        let to_carol = sent(&out, CAROL, "INVITE");
        assert_eq!(to_carol.len(), 1);
        let to_carol = to_carol[0].clone();
        if carol_answers {
            let out = b.response(&reply(&to_carol, 200, "c1", Some(ANSWER)));
            assert_eq!(sent(&out, CAROL, "ACK").len(), 1);
            assert!(out
                .events
                .iter()
                .any(|e| matches!(&e.kind, EventKind::Answered { by } if by == "carol")));
            let (_, out) = b.request(&from_alice(&ok, "BYE", 2, None), b.alice);
            assert_eq!(sent(&out, CAROL, "BYE").len(), 1);
            assert!(out.queue_events.is_empty(), "no longer a queue call");
        } else {
            let out = b.response(&reply(&to_carol, 486, "c1", None));
            assert_eq!(sent(&out, ALICE, "BYE").len(), 1, "nobody left to try");
            assert!(matches!(
                out.events.last().unwrap().kind,
                EventKind::Ended {
                    cause: EndCause::NoAnswer,
                    ..
                }
            ));
        }
    }
}

#[test]
fn a_late_offer_is_answered_with_our_offer_and_the_ack_carries_the_answer() {
    let mut b = bench(&[(BOB_DESK, None)]);
    let bytes = String::from_utf8(invite("1002", 1))
        .unwrap()
        .split("Content-Type:")
        .next()
        .unwrap()
        .to_string()
        + "Content-Length: 0\r\n\r\n";
    let Ok(Inbound::Request(req)) = decode(bytes.as_bytes()) else {
        panic!("late-offer INVITE does not decode")
    };
    let mut out = Outputs::default();
    let alice = b.alice;
    b.control
        .invite(
            &req,
            bytes.as_bytes(),
            &alice,
            Caller::User(user("alice", "1001")),
            b.now,
            &mut out,
        )
        .expect("a late offer is taken");
    let inv = sent(&out, BOB_DESK, "INVITE")[0].clone();
    assert!(text(&inv).contains("m=audio"), "bob still gets an offer");
    let out = b.response(&reply(&inv, 200, "b1", Some(ANSWER)));
    let ok = sent(&out, ALICE, "SIP/2.0 200")[0].clone();
    let offer = text(&ok);
    assert!(
        offer.contains("a=rtpmap:0 PCMU/8000")
            && offer.contains("a=rtpmap:8 PCMA/8000")
            && offer.contains("telephone-event"),
        "the 200 offers everything kolokol speaks: {offer}"
    );
    assert!(
        !b.media.log().iter().any(|l| l.starts_with("remote 1 ")),
        "nothing known of the caller's media yet"
    );
    let ack = from_alice(&ok, "ACK", 1, Some(OFFER));
    b.request(&ack, b.alice);
    assert!(
        b.media
            .log()
            .contains(&"remote 1 192.0.2.10:4000 SendRecv".to_string()),
        "{:?}",
        b.media.log()
    );
}

#[test]
fn invites_to_devices_name_the_call_and_invites_to_trunks_do_not() {
    let mut b = bench(&[(BOB_DESK, None), (BOB_SOFT, None)]);
    let out = b.call("1002");
    let id = out.events[0].call_id.clone();
    for device in [BOB_DESK, BOB_SOFT] {
        let t = text(sent(&out, device, "INVITE")[0]);
        assert!(
            t.contains(&format!("\r\nX-Kolokol-Call-Id: {id}\r\n")),
            "{t}"
        );
    }

    let (b, out) = queue_call(15_000);
    let id = out.events[0].call_id.clone();
    let t = text(sent(&out, BOB_DESK, "INVITE")[0]);
    assert!(
        t.contains(&format!("\r\nX-Kolokol-Call-Id: {id}\r\n")),
        "{t}"
    );
    drop(b);

    let mut b = bench(&[]);
    let out = b.call("84951234567");
    let t = text(sent(&out, ([192, 0, 2, 50], 5060), "INVITE")[0]);
    assert!(
        !t.contains("X-Kolokol"),
        "nothing of ours to a provider: {t}"
    );
}

const TRUNK: ([u8; 4], u16) = ([192, 0, 2, 50], 5060);

impl Bench {
    fn click(&mut self, login: &str, to: &str) -> (Result<String, ClickError>, Outputs) {
        let mut out = Outputs::default();
        let r = self.control.click_to_call(login, to, self.now, &mut out);
        (r, out)
    }
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

#[test]
fn click_to_call_rings_the_users_phone_then_dials_the_number_through_their_trunk() {
    let mut b = bench(&[(BOB_DESK, None), (BOB_SOFT, None)]);
    let (id, out) = b.click("bob", "+7 (495) 123-45-67");
    let id = id.expect("placed");
    assert!(
        matches!(&out.events[0].kind, EventKind::Offered { direction: CallDirection::Outbound, to, user: Some(u), trunk: Some(t), .. }
            if to == "+74951234567" && u == "bob" && t == "provider"),
        "{:?}",
        out.events
    );
    assert_eq!(out.events[0].call_id, id);
    assert!(sent(&out, TRUNK, "INVITE").is_empty(), "the user first");
    let desk = sent(&out, BOB_DESK, "INVITE")[0].clone();
    let soft = sent(&out, BOB_SOFT, "INVITE")[0].clone();
    for device in [BOB_DESK, BOB_SOFT] {
        let t = text(sent(&out, device, "INVITE")[0]);
        assert_eq!(header(&t, "X-Kolokol-Call-Id"), Some(id.as_str()), "{t}");
        assert_eq!(header(&t, "X-Kolokol-Click-To-Call"), Some("+74951234567"));
        assert!(
            t.contains("From: \"+74951234567\" <sip:+74951234567@"),
            "{t}"
        );
    }
    // One at a time while it is being set up.
    assert_eq!(b.click("bob", "84950000001").0, Err(ClickError::TooMany));

    let out = b.response(&reply(&desk, 200, "b1", Some(ANSWER)));
    assert_eq!(sent(&out, BOB_DESK, "ACK").len(), 1);
    assert!(b.media.log().contains(&"play 1".to_string()), "ringback");
    let far = sent(&out, TRUNK, "INVITE");
    assert_eq!(far.len(), 1, "the number, once the user answered");
    let far = far[0].clone();
    let t = text(&far);
    assert!(
        t.starts_with("INVITE sip:+74951234567@192.0.2.50:5060 SIP/2.0"),
        "{t}"
    );
    assert!(
        t.contains("<sip:74950000000@192.0.2.1>"),
        "the trunk's caller-ID: {t}"
    );
    assert!(!t.contains("X-Kolokol"), "{t}");
    // The softphone that did not answer stops ringing.
    let out = b.response(&reply(&soft, 180, "s1", None));
    assert_eq!(sent(&out, BOB_SOFT, "CANCEL").len(), 1);

    let out = b.response(&reply(&far, 180, "p1", None));
    assert_eq!(event_names(&out), ["ringing"]);
    let out = b.response(&reply(&far, 200, "p1", Some(ANSWER)));
    assert_eq!(sent(&out, TRUNK, "ACK").len(), 1);
    assert_eq!(event_names(&out), ["recording_started", "answered"]);
    assert!(
        b.media.log().iter().any(|l| l == "bridge 1 2 true"),
        "{:?}",
        b.media.log()
    );
    // Free again for the next one while this one talks.
    assert!(b.click("bob", "84950000001").0.is_ok());

    let (_, out) = b.request(
        &from_device(&desk, "BYE", 2, "b1", None),
        flow_of(BOB_DESK, None),
    );
    assert_eq!(sent(&out, TRUNK, "BYE").len(), 1);
    assert!(matches!(
        out.events.last().unwrap().kind,
        EventKind::Ended {
            cause: EndCause::Completed,
            by: Some(LegRole::Caller),
            ..
        }
    ));
}

#[test]
fn click_to_call_refusals_and_failures_end_with_the_usual_causes() {
    let mut b = bench(&[(BOB_DESK, None)]);
    for bad in ["", "abc", "+", "12#3", &"1".repeat(33)] {
        assert_eq!(b.click("bob", bad).0, Err(ClickError::Malformed), "{bad:?}");
    }
    assert_eq!(b.click("dave", "84951234567").0, Err(ClickError::NoRoute));
    // An extension or a queue's number is never dialled out.
    assert_eq!(b.click("bob", "1003").0, Err(ClickError::Internal));
    assert_eq!(b.click("bob", "500").0, Err(ClickError::Internal));
    assert_eq!(b.click("alice", "84951234567").0, Err(ClickError::NoDevice));
    assert!(b.control.calls.is_empty(), "nothing placed");

    // The user's phone is busy: nothing dialled.
    let (_, out) = b.click("bob", "84951234567");
    let desk = sent(&out, BOB_DESK, "INVITE")[0].clone();
    let out = b.response(&reply(&desk, 486, "b1", None));
    assert!(sent(&out, TRUNK, "INVITE").is_empty());
    assert!(matches!(
        out.events.last().unwrap().kind,
        EventKind::Ended {
            cause: EndCause::Busy,
            by: Some(LegRole::Caller),
            ..
        }
    ));

    // The number is busy: the user's phone hears BYE.
    let (_, out) = b.click("bob", "84951234567");
    let desk = sent(&out, BOB_DESK, "INVITE")[0].clone();
    let out = b.response(&reply(&desk, 200, "b2", Some(ANSWER)));
    let far = sent(&out, TRUNK, "INVITE")[0].clone();
    let out = b.response(&reply(&far, 486, "p1", None));
    assert_eq!(sent(&out, BOB_DESK, "BYE").len(), 1);
    assert!(matches!(
        out.events.last().unwrap().kind,
        EventKind::Ended {
            cause: EndCause::Busy,
            by: Some(LegRole::Callee),
            ..
        }
    ));

    // Nobody picks up the user's phone: no answer after the ring timeout.
    let (_, out) = b.click("bob", "84951234567");
    assert_eq!(sent(&out, BOB_DESK, "INVITE").len(), 1);
    let out = b.advance(61_000);
    assert!(out.events.iter().any(|e| matches!(
        e.kind,
        EventKind::Ended {
            cause: EndCause::NoAnswer,
            ..
        }
    )));
    assert!(sent(&out, TRUNK, "INVITE").is_empty());

    // The user hangs up while the number rings: it is cancelled.
    let (_, out) = b.click("bob", "84951234567");
    let desk = sent(&out, BOB_DESK, "INVITE")[0].clone();
    let out = b.response(&reply(&desk, 200, "b3", Some(ANSWER)));
    let far = sent(&out, TRUNK, "INVITE")[0].clone();
    b.response(&reply(&far, 180, "p2", None));
    let (_, out) = b.request(
        &from_device(&desk, "BYE", 2, "b3", None),
        flow_of(BOB_DESK, None),
    );
    assert_eq!(sent(&out, TRUNK, "CANCEL").len(), 1);
    assert!(matches!(
        out.events.last().unwrap().kind,
        EventKind::Ended {
            cause: EndCause::Abandoned,
            by: Some(LegRole::Caller),
            ..
        }
    ));
}
