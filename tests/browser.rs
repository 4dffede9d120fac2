//! Browser legs end to end without a browser binary: a SIP-over-WebSocket client whose
//! media is str0m (full ICE, DTLS-SRTP — the same stack a browser runs) against kolokol's
//! WebRTC gateway, with a provider call on plain RTP at the other end.

mod common;
use common::*;
use kolokol_engine::registrar::digest::{ha1, Algorithm, Credentials};
use serde_json::{json, Value};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

const DID: &str = "5550300";
const CONTACT: &str = "<sip:k3l2@df7jal23ls0d.invalid;transport=ws>";

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// A softphone: SIP over WebSocket, media by str0m.
struct Browser {
    ws: Ws,
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    mid: Option<Mid>,
    connected: bool,
    received: Vec<Vec<u8>>,
    sent: u64,
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

impl Browser {
    fn connect(server: &Server, user: &str, password: &str) -> Browser {
        let mut request = format!("ws://127.0.0.1:{}/sip", server.http_port)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
        let (ws, _) = tungstenite::connect(request).expect("websocket");
        if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
            tcp.set_read_timeout(Some(Duration::from_millis(5)))
                .unwrap();
        }
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let mut config = RtcConfig::new()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_pcmu(true, false)
            .enable_pcma(true, false);
        config.codec_config().add_config(
            126.into(),
            None,
            Codec::Tele,
            Frequency::EIGHT_KHZ,
            None,
            FormatParams::default(),
        );
        let mut rtc = config.build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut b = Browser {
            ws,
            rtc,
            socket,
            addr,
            mid: None,
            connected: false,
            received: Vec::new(),
            sent: 0,
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
        let nonce = challenge
            .lines()
            .find(|l| l.contains("algorithm=SHA-256"))
            .and_then(|l| l.split("nonce=\"").nth(1))
            .and_then(|n| n.split('"').next())
            .expect("a SHA-256 challenge")
            .to_string();
        let creds = Credentials {
            username: user,
            realm: "kolokol",
            nonce: &nonce,
            uri: "sip:127.0.0.1",
            response: "",
            algorithm: Algorithm::Sha256,
            qop: Some("auth"),
            nc: Some(1),
            cnonce: Some("abc"),
        };
        let response = creds.expected_response(
            &ha1(Algorithm::Sha256, user, "kolokol", password),
            "REGISTER",
        );
        self.send(register(2, Some(format!("Digest username=\"{user}\", realm=\"kolokol\", nonce=\"{nonce}\", uri=\"sip:127.0.0.1\", response=\"{response}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"abc\""))));
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
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(offer).unwrap())
            .unwrap()
            .to_sdp_string();
        let mut ok = String::from("SIP/2.0 200 OK\r\n");
        for line in invite.lines() {
            let name = line.split(':').next().unwrap_or_default();
            if ["Via", "From", "Call-ID", "CSeq", "Record-Route"]
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
            {
                ok.push_str(line);
                ok.push_str("\r\n");
            }
        }
        ok.push_str(&format!(
            "To: {};tag=br-answer\r\nContact: {CONTACT}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
            header(invite, "To").unwrap(),
            answer.len()
        ));
        self.send(ok);
    }

    /// Drains str0m, then reads one datagram (or lets a little time pass).
    fn media(&mut self) {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Transmit(t) => {
                    self.socket.send_to(&t.contents, t.destination).unwrap();
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaAdded(m)) => self.mid = Some(m.mid),
                Output::Event(Event::RtpPacket(p)) => self.received.push(p.payload.to_vec()),
                Output::Event(_) => {}
                Output::Timeout(_) => break,
            }
        }
        let mut buf = [0u8; 2000];
        let input = match self.socket.recv_from(&mut buf) {
            Ok((n, source)) => Input::Receive(
                Instant::now(),
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: self.addr,
                    contents: buf[..n].try_into().unwrap(),
                },
            ),
            Err(_) => Input::Timeout(Instant::now()),
        };
        self.rtc.handle_input(input).unwrap();
    }

    /// One 20 ms PCMU frame of `byte`.
    fn speak(&mut self, byte: u8) {
        let Some(mid) = self.mid else {
            return;
        };
        self.sent += 1;
        let mut api = self.rtc.direct_api();
        if let Some(tx) = api.stream_tx_by_mid(mid, None) {
            tx.write_rtp(RtpWrite::new(
                0.into(),
                SeqNo::from(self.sent),
                self.sent as u32 * 160,
                Instant::now(),
                vec![byte; 160],
            ));
        }
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

#[test]
fn a_provider_call_reaches_a_browser_and_both_hear_each_other() {
    let server = Server::start(&[("2005", "browser-secret")], &[]);
    let auth = format!("Bearer {}", server.admin_token());
    let api = |method: &str, path: &str, body: Value| {
        let (status, _, text) =
            server.http(method, path, &[("Authorization", &auth)], &body.to_string());
        assert!(status < 300, "{method} {path}: {status} {text}");
    };
    let provider_port = free_port();
    api(
        "POST",
        "/api/v1/trunks",
        json!({"name": "provider", "address": format!("127.0.0.1:{}", free_port()),
               "inbound_ip": "127.0.0.1", "inbound_port": provider_port}),
    );
    api(
        "POST",
        "/api/v1/numbers",
        json!({"number": DID, "user": "u2005"}),
    );
    let mut browser = Browser::connect(&server, "2005", "browser-secret");
    let provider = Provider::new(provider_port);

    // The provider calls; kolokol offers WebRTC to the browser, which answers.
    let sdp = format!(
        "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        provider.rtp.local_addr().unwrap().port()
    );
    let p = provider_port;
    let invite = format!(
        "INVITE sip:{DID}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKpb1\r\nMax-Forwards: 70\r\nFrom: <sip:74951112233@127.0.0.1>;tag=pb\r\nTo: <sip:{DID}@127.0.0.1>\r\nCall-ID: provider-to-browser@test\r\nCSeq: 1 INVITE\r\nContact: <sip:74951112233@127.0.0.1:{p}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    provider
        .sip
        .send_to(invite.as_bytes(), server.sip_addr())
        .unwrap();
    let to_browser = loop {
        let m = browser.sip("INVITE to the browser");
        if m.starts_with("INVITE ") {
            break m;
        }
    };
    browser.answer(&to_browser);
    let ok = loop {
        let m = provider.recv();
        match status_of(&m) {
            Some(200) => break m,
            Some(s) if s < 200 => continue,
            other => panic!("the browser's answer reaches the provider, got {other:?}: {m}"),
        }
    };
    let theirs = body(&ok);
    assert!(
        theirs.contains("RTP/AVP") && !theirs.contains("fingerprint"),
        "the provider gets plain RTP: {theirs}"
    );
    let port: u16 = theirs
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let kolokol_rtp: SocketAddr = ([127, 0, 0, 1], port).into();
    let to = header(&ok, "To").unwrap().to_string();
    let ack = format!(
        "ACK sip:{DID}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKpb2\r\nMax-Forwards: 70\r\nFrom: <sip:74951112233@127.0.0.1>;tag=pb\r\nTo: {to}\r\nCall-ID: provider-to-browser@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    provider
        .sip
        .send_to(ack.as_bytes(), server.sip_addr())
        .unwrap();

    // Both talk: the browser's frames reach the provider as plain PCMU, and back.
    let mut heard_by_provider = 0;
    let mut seq: u16 = 0;
    let mut next_frame = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(15);
    while heard_by_provider < 25 || browser.received.len() < 25 {
        assert!(
            Instant::now() < deadline,
            "media did not flow both ways: provider heard {heard_by_provider}, browser {} (connected: {})",
            browser.received.len(),
            browser.connected
        );
        browser.media();
        if Instant::now() >= next_frame {
            next_frame += Duration::from_millis(20);
            if browser.connected {
                browser.speak(0x11);
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
            .received
            .iter()
            .all(|p| p.len() == 160 && p.iter().all(|b| *b == 0x22)),
        "the browser hears the provider's payload untouched"
    );

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
    let path = wait_for("the recording", Duration::from_secs(10), || {
        let (_, _, text) = server.http("GET", "/api/v1/calls", &[("Authorization", &auth)], "");
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
