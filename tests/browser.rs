//! Browser legs end to end without a browser binary: a SIP-over-WebSocket client whose
//! media is str0m (full ICE, DTLS-SRTP — the same stack a browser runs) against kolokol's
//! WebRTC gateway, with a provider call on plain RTP at the other end.

mod common;
use common::*;
use kolokol_engine::registrar::digest::{ha1, Algorithm, Credentials};
use kolokol_media::webrtc::BrowserPeer;
use serde_json::{json, Value};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, Message};

const DID: &str = "5550300";
const CONTACT: &str = "<sip:k3l2@df7jal23ls0d.invalid;transport=ws>";

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// A softphone: SIP over WebSocket, media by str0m.
struct Browser {
    ws: Ws,
    media: BrowserPeer,
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A response's start line and the headers it copies from the request (RFC 3261 §8.2.6);
/// To is copied too unless the caller adds it with a tag.
fn reply_head(request: &str, status: &str, copy_to: bool) -> String {
    let mut head = format!("SIP/2.0 {status}\r\n");
    let copied: &[&str] = if copy_to {
        &["Via", "From", "To", "Call-ID", "CSeq", "Record-Route"]
    } else {
        &["Via", "From", "Call-ID", "CSeq", "Record-Route"]
    };
    for line in request.lines() {
        let name = line.split(':').next().unwrap_or_default();
        if copied.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            head.push_str(line);
            head.push_str("\r\n");
        }
    }
    head
}

fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// A SHA-256 digest answer to the challenge in `challenge` (401 or 407).
fn digest(challenge: &str, user: &str, password: &str, method: &str, uri: &str) -> String {
    let nonce = challenge
        .lines()
        .find(|l| l.contains("algorithm=SHA-256"))
        .and_then(|l| l.split("nonce=\"").nth(1))
        .and_then(|n| n.split('"').next())
        .unwrap_or_else(|| panic!("a SHA-256 challenge: {challenge}"))
        .to_string();
    let creds = Credentials {
        username: user,
        realm: "kolokol",
        nonce: &nonce,
        uri,
        response: "",
        algorithm: Algorithm::Sha256,
        qop: Some("auth"),
        nc: Some(1),
        cnonce: Some("abc"),
    };
    let response =
        creds.expected_response(&ha1(Algorithm::Sha256, user, "kolokol", password), method);
    format!("Digest username=\"{user}\", realm=\"kolokol\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"abc\"")
}

impl Browser {
    fn connect(server: &Server, user: &str, password: &str) -> Browser {
        let ws = sip_websocket(server, Duration::from_millis(5));
        let mut b = Browser {
            ws,
            media: BrowserPeer::new().unwrap(),
        };
        b.register(user, password);
        b
    }

    fn send(&mut self, text: String) {
        self.ws.send(Message::Text(text.into())).unwrap();
    }

    /// The next SIP message, if one arrives within the socket's short timeout.
    fn poll_sip(&mut self) -> Option<String> {
        match self.ws.read() {
            Ok(Message::Text(t)) => Some(t.to_string()),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("websocket: {e}"),
        }
    }

    /// The next SIP message for which `wanted` holds (others are skipped).
    fn sip_until(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            let m = self.sip(what);
            if wanted(&m) {
                return m;
            }
        }
    }

    fn sip(&mut self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no {what} within 10 s");
            if let Some(m) = self.poll_sip() {
                return m;
            }
        }
    }

    fn register(&mut self, user: &str, password: &str) {
        let register = |cseq: u32, auth: Option<String>| {
            format!(
                "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKbr{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=br1\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: br-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: {CONTACT};expires=600\r\n{}Content-Length: 0\r\n\r\n",
                auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default()
            )
        };
        self.send(register(1, None));
        let challenge = self.sip("401");
        let auth = digest(&challenge, user, password, "REGISTER", "sip:127.0.0.1");
        self.send(register(2, Some(auth)));
        let ok = self.sip("200 to REGISTER");
        assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    }

    /// Answers an INVITE from kolokol with str0m's answer to its WebRTC offer.
    fn answer(&mut self, invite: &str) {
        let offer = body(invite);
        assert!(
            offer.contains("a=fingerprint:") && offer.contains("UDP/TLS/RTP/SAVPF"),
            "a browser gets a WebRTC offer: {offer}"
        );
        let answer = self.media.answer(offer).unwrap();
        let mut ok = reply_head(invite, "200 OK", false);
        ok.push_str(&format!(
            "To: {};tag=br-answer\r\nContact: {CONTACT}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
            header(invite, "To").unwrap(),
            answer.len()
        ));
        self.send(ok);
    }
}

/// The provider's side of a call: SIP and RTP sockets.
struct Provider {
    sip: UdpSocket,
    rtp: UdpSocket,
}

impl Provider {
    fn new(port: u16) -> Provider {
        let sip = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        sip.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        rtp.set_nonblocking(true).unwrap();
        Provider { sip, rtp }
    }

    fn recv(&self) -> String {
        let mut buf = [0u8; 8192];
        let (n, _) = self.sip.recv_from(&mut buf).expect("SIP from kolokol");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// Both talk: the browser's frames reach the provider as plain PCMU, and back, untouched.
fn talk(browser: &mut Browser, provider: &Provider, kolokol_rtp: SocketAddr) {
    let mut heard_by_provider = 0;
    let mut seq: u16 = 0;
    let mut next_frame = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(15);
    while heard_by_provider < 25 || browser.media.received.len() < 25 {
        assert!(
            Instant::now() < deadline,
            "media did not flow both ways: provider heard {heard_by_provider}, browser {} (connected: {})",
            browser.media.received.len(),
            browser.media.connected
        );
        browser.media.step().unwrap();
        if Instant::now() >= next_frame {
            next_frame += Duration::from_millis(20);
            if browser.media.connected {
                browser.media.send(0, &[0x11; 160]);
            }
            seq += 1;
            let mut packet = vec![0x80, 0, (seq >> 8) as u8, seq as u8];
            packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            packet.extend_from_slice(&[0, 0, 0, 9]);
            packet.extend_from_slice(&[0x22; 160]);
            provider.rtp.send_to(&packet, kolokol_rtp).unwrap();
        }
        let mut buf = [0u8; 2000];
        while let Ok((n, _)) = provider.rtp.recv_from(&mut buf) {
            if n == 172 && buf[1] & 0x7F == 0 && buf[12..n].iter().all(|b| *b == 0x11) {
                heard_by_provider += 1;
            }
        }
    }
    assert!(
        browser
            .media
            .received
            .iter()
            .all(|(_, p)| p.len() == 160 && p.iter().all(|b| *b == 0x22)),
        "the browser hears the provider's payload untouched"
    );
}

/// kolokol's plain-RTP port in an SDP body.
fn audio_port(sdp: &str) -> SocketAddr {
    assert!(
        sdp.contains("RTP/AVP") && !sdp.contains("fingerprint"),
        "the provider gets plain RTP: {sdp}"
    );
    let port: u16 = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    ([127, 0, 0, 1], port).into()
}

/// A provider's plain SDP for its RTP socket.
fn provider_sdp(provider: &Provider) -> String {
    format!(
        "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        provider.rtp.local_addr().unwrap().port()
    )
}

/// A server with user 2005 (the browser), a provider trunk and a DID to 2005: (server,
/// admin authorization, the provider's source port, the trunk's port).
fn office() -> (Server, String, u16, u16) {
    let server = Server::start(&[("2005", "browser-secret")], &[]);
    let auth = format!("Bearer {}", server.admin_token());
    let (provider_port, trunk_port) = (free_port(), free_port());
    let api = |method: &str, path: &str, body: Value| {
        let (status, _, text) =
            server.http(method, path, &[("Authorization", &auth)], &body.to_string());
        assert!(status < 300, "{method} {path}: {status} {text}");
    };
    api(
        "POST",
        "/api/v1/trunks",
        json!({"name": "provider", "address": format!("127.0.0.1:{trunk_port}"),
               "inbound_ip": "127.0.0.1", "inbound_port": provider_port}),
    );
    api(
        "POST",
        "/api/v1/numbers",
        json!({"number": DID, "user": "u2005"}),
    );
    api(
        "PUT",
        "/api/v1/users/u2005/calls",
        json!({"record": true, "trunk_id": 1}),
    );
    (server, auth, provider_port, trunk_port)
}

/// The first recorded call's WAV carries both voices.
fn assert_recorded_both_ways(server: &Server, auth: &str) {
    let path = wait_for("the recording", Duration::from_secs(10), || {
        let (_, _, text) = server.http("GET", "/api/v1/calls", &[("Authorization", auth)], "");
        let calls: Value = serde_json::from_str(&text).ok()?;
        calls[0]["recording"].as_str().map(|p| server.dir.join(p))
    });
    let mut wav = hound::WavReader::open(&path).expect("a readable WAV");
    let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
    for channel in 0..2 {
        assert!(
            samples.chunks(2).filter(|f| f[channel] != 0).count() > 8_000 / 5,
            "channel {channel} carries the voice"
        );
    }
}

#[test]
fn a_provider_call_reaches_a_browser_and_both_hear_each_other() {
    let (server, auth, provider_port, _) = office();
    let mut browser = Browser::connect(&server, "2005", "browser-secret");
    let provider = Provider::new(provider_port);

    // The provider calls; kolokol offers WebRTC to the browser, which answers.
    let sdp = provider_sdp(&provider);
    let p = provider_port;
    let invite = format!(
        "INVITE sip:{DID}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKpb1\r\nMax-Forwards: 70\r\nFrom: <sip:74951112233@127.0.0.1>;tag=pb\r\nTo: <sip:{DID}@127.0.0.1>\r\nCall-ID: provider-to-browser@test\r\nCSeq: 1 INVITE\r\nContact: <sip:74951112233@127.0.0.1:{p}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    provider
        .sip
        .send_to(invite.as_bytes(), server.sip_addr())
        .unwrap();
    let to_browser = browser.sip_until("INVITE to the browser", |m| m.starts_with("INVITE "));
    browser.answer(&to_browser);
    let ok = loop {
        let m = provider.recv();
        match status_of(&m) {
            Some(200) => break m,
            Some(s) if s < 200 => continue,
            other => panic!("the browser's answer reaches the provider, got {other:?}: {m}"),
        }
    };
    let kolokol_rtp = audio_port(body(&ok));
    let to = header(&ok, "To").unwrap().to_string();
    let ack = format!(
        "ACK sip:{DID}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKpb2\r\nMax-Forwards: 70\r\nFrom: <sip:74951112233@127.0.0.1>;tag=pb\r\nTo: {to}\r\nCall-ID: provider-to-browser@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    provider
        .sip
        .send_to(ack.as_bytes(), server.sip_addr())
        .unwrap();

    talk(&mut browser, &provider, kolokol_rtp);

    // The browser hangs up; the provider gets the BYE.
    let bye = format!(
        "BYE {} SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKbrbye\r\nMax-Forwards: 70\r\nFrom: {};tag=br-answer\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        header(&to_browser, "Contact")
            .unwrap()
            .trim_matches(|c| c == '<' || c == '>'),
        header(&to_browser, "To").unwrap(),
        header(&to_browser, "From").unwrap(),
        header(&to_browser, "Call-ID").unwrap(),
    );
    browser.send(bye);
    let provider_bye = provider.recv();
    assert!(provider_bye.starts_with("BYE "), "{provider_bye}");

    // The call is recorded with both voices.
    let (_, _, text) = server.http("GET", "/api/v1/calls", &[("Authorization", &auth)], "");
    let calls: Value = serde_json::from_str(&text).unwrap();
    let call = &calls[0];
    assert_eq!(
        (call["to"].as_str(), call["answered_by"].as_str()),
        (Some(DID), Some("u2005")),
        "{call}"
    );
    assert_recorded_both_ways(&server, &auth);
}

#[test]
fn a_browser_calls_out_through_the_trunk_and_the_provider_hangs_up() {
    let (server, auth, _, trunk_port) = office();
    let mut browser = Browser::connect(&server, "2005", "browser-secret");
    let provider = Provider::new(trunk_port);
    let (offer, pending) = browser.media.offer().unwrap();
    let uri = "sip:74950001122@127.0.0.1";
    let invite = |cseq: u32, auth: String| {
        format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKbo{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:2005@127.0.0.1>;tag=bo\r\nTo: <{uri}>\r\nCall-ID: browser-out@test\r\nCSeq: {cseq} INVITE\r\nContact: {CONTACT}\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
            offer.len()
        )
    };
    browser.send(invite(1, String::new()));
    let challenge = browser.sip_until("407", |m| status_of(m) != Some(100));
    assert_eq!(status_of(&challenge), Some(407), "{challenge}");
    browser.send(format!(
        "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKbo1\r\nMax-Forwards: 70\r\nFrom: <sip:2005@127.0.0.1>;tag=bo\r\nTo: {}\r\nCall-ID: browser-out@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        header(&challenge, "To").unwrap()
    ));
    let auth_header = format!(
        "Proxy-Authorization: {}\r\n",
        digest(&challenge, "2005", "browser-secret", "INVITE", uri)
    );
    browser.send(invite(2, auth_header));

    // The provider gets plain RTP SDP and answers.
    let to_provider = loop {
        let m = provider.recv();
        if m.starts_with("INVITE ") {
            break m;
        }
    };
    let kolokol_rtp = audio_port(body(&to_provider));
    let sdp = provider_sdp(&provider);
    let mut ok = reply_head(&to_provider, "200 OK", false);
    let provider_to = format!("{};tag=prov", header(&to_provider, "To").unwrap());
    ok.push_str(&format!(
        "To: {provider_to}\r\nContact: <sip:74950001122@127.0.0.1:{trunk_port}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    ));
    provider
        .sip
        .send_to(ok.as_bytes(), server.sip_addr())
        .unwrap();

    // The browser gets kolokol's WebRTC answer, takes it and ACKs.
    let answered = loop {
        let m = browser.sip("200 to the browser's INVITE");
        match status_of(&m) {
            Some(200) => break m,
            Some(s) if s < 200 => continue,
            other => panic!("the call is answered, got {other:?}: {m}"),
        }
    };
    let answer = body(&answered);
    assert!(answer.contains("a=ice-lite"), "{answer}");
    browser.media.take_answer(pending, answer).unwrap();
    browser.send(format!(
        "ACK {} SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKbo3\r\nMax-Forwards: 70\r\nFrom: <sip:2005@127.0.0.1>;tag=bo\r\nTo: {}\r\nCall-ID: browser-out@test\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n",
        header(&answered, "Contact").unwrap().trim_matches(|c| c == '<' || c == '>'),
        header(&answered, "To").unwrap()
    ));
    talk(&mut browser, &provider, kolokol_rtp);

    // The provider hangs up; the browser hears the BYE.
    let bye = format!(
        "BYE {} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{trunk_port};branch=z9hG4bKprbye\r\nMax-Forwards: 70\r\nFrom: {provider_to}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        header(&to_provider, "Contact").unwrap().trim_matches(|c| c == '<' || c == '>'),
        header(&to_provider, "From").unwrap(),
        header(&to_provider, "Call-ID").unwrap(),
    );
    provider
        .sip
        .send_to(bye.as_bytes(), server.sip_addr())
        .unwrap();
    let browser_bye = browser.sip_until("BYE at the browser", |m| m.starts_with("BYE "));
    assert_eq!(header(&browser_bye, "Call-ID"), Some("browser-out@test"));
    browser.send(reply_head(&browser_bye, "200 OK", true) + "Content-Length: 0\r\n\r\n");
    assert_recorded_both_ways(&server, &auth);
}
