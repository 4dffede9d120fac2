//! The attacks a security review played against kolokol, replayed against the built binary:
//! each test fails on the code before its fix.

mod common;

use common::*;
use kolokol_engine::registrar::digest;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// A SIP client on one TCP connection: whole messages in, framed by Content-Length.
struct SipTcp {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl SipTcp {
    fn connect(to: SocketAddr) -> SipTcp {
        let stream = TcpStream::connect(to).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        SipTcp {
            stream,
            buf: Vec::new(),
        }
    }

    fn local_port(&self) -> u16 {
        self.stream.local_addr().unwrap().port()
    }

    fn send(&mut self, message: &str) {
        self.stream.write_all(message.as_bytes()).unwrap();
    }

    /// The next whole message, waiting up to the read timeout.
    fn next(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + length {
                    let msg: Vec<u8> = self.buf.drain(..end + 4 + length).collect();
                    return Some(String::from_utf8_lossy(&msg).into_owned());
                }
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Whatever has arrived by now, without waiting.
    fn pending(&mut self) -> String {
        self.stream.set_nonblocking(true).unwrap();
        let mut chunk = [0u8; 8192];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        self.stream.set_nonblocking(false).unwrap();
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// Registers `ext` over this TCP connection with digest; panics unless it gets a 200.
fn register_over_tcp(phone: &mut SipTcp, server: &Server, ext: &str, password: &str) {
    let port = phone.local_port();
    let request = |cseq: u32, auth: Option<&str>| {
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bKreg{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{ext}@127.0.0.1>;tag=r{port}\r\nTo: <sip:{ext}@127.0.0.1>\r\nCall-ID: reg-{port}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{ext}@127.0.0.1:{port};transport=tcp>;expires=600\r\n{}Content-Length: 0\r\n\r\n",
            auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default()
        )
    };
    phone.send(&request(1, None));
    let challenge = phone.next().expect("a challenge");
    assert_eq!(status_of(&challenge), Some(401), "{challenge}");
    let www = md5_challenge(&challenge, "WWW-Authenticate");
    let auth = digest::answer(www, "REGISTER", "sip:127.0.0.1", ext, password, "c1").unwrap();
    phone.send(&request(2, Some(&auth)));
    let ok = phone.next().expect("an answer to the REGISTER");
    assert_eq!(status_of(&ok), Some(200), "{ok}\n{}", server.log());
}

/// `from` calls `to` over UDP with digest and an SDP offer; the first final status.
fn call_over_udp(server: &Server, from: &str, password: &str, to: &str) -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let sdp = format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", port + 2);
    let uri = format!("sip:{to}@127.0.0.1:{}", server.sip_port);
    let invite = |cseq: u32, auth: Option<&str>| {
        format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bKinv{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{from}@127.0.0.1>;tag=c{port}\r\nTo: <sip:{to}@127.0.0.1>\r\nCall-ID: call-{port}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{from}@127.0.0.1:{port}>\r\n{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            auth.map(|a| format!("Proxy-Authorization: {a}\r\n")).unwrap_or_default(),
            sdp.len()
        )
    };
    let final_of = |deadline: Instant| -> String {
        let mut buf = vec![0u8; 70_000];
        loop {
            assert!(Instant::now() < deadline, "no final response to the INVITE");
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if status_of(&text).is_some_and(|s| s >= 200) {
                    return text;
                }
            }
        }
    };
    sock.send_to(invite(1, None).as_bytes(), server.sip_addr())
        .unwrap();
    let challenge = final_of(Instant::now() + Duration::from_secs(5));
    assert_eq!(status_of(&challenge), Some(407), "{challenge}");
    let proxy = md5_challenge(&challenge, "Proxy-Authenticate");
    let auth = digest::answer(proxy, "INVITE", &uri, from, password, "c2").unwrap();
    sock.send_to(invite(2, Some(&auth)).as_bytes(), server.sip_addr())
        .unwrap();
    let answer = final_of(Instant::now() + Duration::from_secs(15));
    let status = status_of(&answer).unwrap();
    let to_header = header(&answer, "To").unwrap_or_default();
    let ack = format!(
        "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bKinv2\r\nMax-Forwards: 70\r\nFrom: <sip:{from}@127.0.0.1>;tag=c{port}\r\nTo: {to_header}\r\nCall-ID: call-{port}\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    let _ = sock.send_to(ack.as_bytes(), server.sip_addr());
    status
}

/// Restored TCP bindings name connections of the dead process. Before the fix the new
/// process numbered its connections from 1 again, so a call to 2001 went out on whichever
/// fresh, unauthenticated connection now carried the old number.
#[test]
fn a_tcp_binding_from_before_a_crash_reaches_no_stranger() {
    let mut server = Server::start(&[("2001", "secret-2001"), ("2002", "secret-2002")], &[]);
    let token = server.admin_token();
    let mut phone = SipTcp::connect(server.sip_addr());
    register_over_tcp(&mut phone, &server, "2001", "secret-2001");
    server.wait_binding_rows(1);
    server.restart(); // SIGKILL, then start on the same data
    drop(phone);
    server.wait_registrations(&token, Duration::from_secs(5), |v| {
        v.as_array().unwrap().len() == 1
    });
    // Strangers open connections without any credentials; each is served (an OPTIONS
    // answered), so the server has numbered them all.
    let mut strangers: Vec<SipTcp> = (0..4)
        .map(|i| {
            let mut s = SipTcp::connect(server.sip_addr());
            s.send(&options(server.sip_port, &format!("stranger{i}")));
            let reply = s.next().expect("OPTIONS answered");
            assert_eq!(status_of(&reply), Some(200), "{reply}");
            s
        })
        .collect();
    let status = call_over_udp(&server, "2002", "secret-2002", "2001");
    // The only device of 2001 is unreachable: the caller hears so at once.
    assert!(
        (400..700).contains(&status),
        "the call to an unreachable phone ended with {status}"
    );
    for s in strangers.iter_mut() {
        let got = s.pending();
        assert!(!got.contains("INVITE"), "a stranger got the call:\n{got}");
    }
}

/// A client that pipelines requests and never reads the answers. Before the fix every
/// answer was queued without bound: 437 MB of RSS in 8 s.
#[test]
fn a_client_that_never_reads_is_cut_off_with_bounded_memory() {
    let server = Server::start(&[], &[]);
    let before = server.rss_kib();
    let mut s = TcpStream::connect(server.sip_addr()).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let burst: String = (0..100)
        .map(|i| options(server.sip_port, &format!("flood{i}")))
        .collect();
    // 400,000 OPTIONS at most (~90 MB): the connection must be closed long before.
    let mut cut_off = false;
    for _ in 0..4_000 {
        match s.write_all(burst.as_bytes()) {
            Ok(()) => {}
            Err(e) => {
                assert!(
                    matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
                    "{e}"
                );
                cut_off = true;
                break;
            }
        }
    }
    assert!(cut_off, "the server kept a connection that never reads");
    let grown_mib = server.rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 64, "RSS grew by {grown_mib} MiB");
    assert_answers_options(&server);
}

/// A REGISTER for `ext` with a digest answer computed from a wrong password.
fn register_with_wrong_password(via: &str, ext: &str, cseq: u32, challenge: &str) -> String {
    let auth = digest::answer(
        challenge,
        "REGISTER",
        "sip:127.0.0.1",
        ext,
        "not-the-password",
        "c3",
    )
    .unwrap();
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{via};branch=z9hG4bKbad{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{ext}@127.0.0.1>;tag=b{cseq}\r\nTo: <sip:{ext}@127.0.0.1>\r\nCall-ID: bad-{ext}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{ext}@127.0.0.1:5999>\r\nAuthorization: {auth}\r\nContent-Length: 0\r\n\r\n"
    )
}

/// A fresh MD5 challenge for `ext` over this connection.
fn challenge_on(s: &mut SipTcp, ext: &str) -> String {
    s.send(&format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKch\r\nMax-Forwards: 70\r\nFrom: <sip:{ext}@127.0.0.1>;tag=ch\r\nTo: <sip:{ext}@127.0.0.1>\r\nCall-ID: ch-{ext}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{ext}@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n"
    ));
    let r = s.next().expect("a challenge");
    md5_challenge(&r, "WWW-Authenticate").to_string()
}

/// The MD5 challenge in a 401's or 407's `header`.
fn md5_challenge<'a>(reply: &'a str, header: &str) -> &'a str {
    reply
        .lines()
        .filter_map(|l| l.strip_prefix(header)?.strip_prefix(": "))
        .find(|l| l.contains("algorithm=MD5"))
        .expect("an MD5 challenge")
}

/// Failures on a TCP connection close that connection; its address (an office NAT, the
/// browsers behind a proxy) keeps its telephony. Before the fix the address was banned
/// for five minutes on every transport.
#[test]
fn failures_on_a_connection_close_it_without_banning_its_address() {
    let server = Server::start(
        &[("2001", "secret-2001")],
        &[
            ("KOLOKOL_REGISTRAR__PIKE__MAX_FAILURES", "3"),
            ("KOLOKOL_REGISTRAR__PIKE__WINDOW_MS", "60000"),
        ],
    );
    let mut bad = SipTcp::connect(server.sip_addr());
    let challenge = challenge_on(&mut bad, "2001");
    for cseq in 2..6 {
        bad.send(&register_with_wrong_password(
            "TCP 127.0.0.1:5999",
            "2001",
            cseq,
            &challenge,
        ));
        let r = bad.next().expect("an answer before the close");
        assert_eq!(status_of(&r), Some(403), "{r}");
    }
    assert_eq!(bad.next(), None, "the failing connection is closed");
    // The same address over UDP and over a new connection: still served.
    assert_answers_options(&server);
    let mut phone = SipTcp::connect(server.sip_addr());
    register_over_tcp(&mut phone, &server, "2001", "secret-2001");
    assert!(
        server
            .log()
            .contains("connection closed: src=127.0.0.1 after repeated auth failures"),
        "{}",
        server.log()
    );
}

/// One address may hold only so many connections, and one that says nothing is closed.
#[test]
fn connections_per_source_are_capped_and_silent_ones_closed() {
    let server = Server::start(
        &[],
        &[
            ("KOLOKOL_SIP__MAX_CONNECTIONS_PER_SOURCE", "3"),
            ("KOLOKOL_SIP__FIRST_MESSAGE_TIMEOUT_S", "1"),
        ],
    );
    let mut held: Vec<SipTcp> = (0..3)
        .map(|i| {
            let mut s = SipTcp::connect(server.sip_addr());
            s.send(&options(server.sip_port, &format!("held{i}")));
            assert_eq!(s.next().as_deref().and_then(status_of), Some(200));
            s
        })
        .collect();
    let mut fourth = SipTcp::connect(server.sip_addr());
    fourth.send(&options(server.sip_port, "fourth"));
    assert_eq!(fourth.next(), None, "a fourth connection is refused");
    // A connection that never sends a whole message is closed after the first-message
    // timeout (it was admitted: one of the three is closed to make room).
    drop(held.pop());
    let silent = Instant::now();
    let mut s = SipTcp::connect(server.sip_addr());
    s.send("OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP"); // and nothing more
    assert_eq!(s.next(), None);
    assert!(silent.elapsed() < Duration::from_secs(4));
    assert!(held.iter_mut().all(|h| h.pending().is_empty()));
}

/// A login that keeps failing is refused before its password is checked, per source and
/// per login, and every failure is logged for fail2ban. Before the fix guessing was
/// unlimited.
#[test]
fn failed_web_logins_are_throttled_and_logged() {
    let server = Server::start(
        &[],
        &[
            ("KOLOKOL_HTTP__LOGIN_PER_ACCOUNT__MAX_FAILURES", "3"),
            ("KOLOKOL_HTTP__LOGIN_PER_SOURCE__MAX_FAILURES", "5"),
        ],
    );
    let login = |who: &str, password: &str| {
        server.http(
            "POST",
            "/api/v1/session",
            &[("Content-Type", "application/json")],
            &format!(r#"{{"login":"{who}","password":"{password}"}}"#),
        )
    };
    for _ in 0..4 {
        assert_eq!(login("boss", "guess").0, 401);
    }
    // The login is locked now, even with its right password.
    let (status, head, body) = login("boss", "boss-password");
    assert_eq!(status, 429, "{body}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    assert!(body.contains("too many failed logins"), "{body}");
    // The source has two failures left before it is refused for any login.
    assert_eq!(login("nobody", "guess").0, 401);
    assert_eq!(login("nobody", "guess").0, 401);
    assert_eq!(login("someone", "guess").0, 429);
    assert!(
        server
            .log()
            .contains("auth failure: src=127.0.0.1 user=\"boss\" realm=\"web\" cause=credentials"),
        "{}",
        server.log()
    );
}

/// A client that never finishes its request headers is disconnected (slowloris).
#[test]
fn http_headers_must_arrive_in_time() {
    let server = Server::start(&[], &[("KOLOKOL_HTTP__HEADER_READ_TIMEOUT_S", "1")]);
    let mut s = TcpStream::connect(("127.0.0.1", server.http_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = s.read_to_end(&mut rest).is_ok();
    assert!(closed, "the connection was still open after 5 s");
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// Other sites' pages may not open kolokol's WebSockets (and so cannot make their
/// visitors' browsers fail digests in bulk, or ride the session cookie to the live feed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_refuse_foreign_origins() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = tokio::task::spawn_blocking(|| Server::start(&[], &[]))
        .await
        .unwrap();
    let port = server.http_port;
    let open = |path: &'static str, origin: Option<String>| async move {
        let mut request = format!("ws://127.0.0.1:{port}{path}")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
        if let Some(o) = origin {
            request.headers_mut().insert("Origin", o.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((_, response)) => response.status().as_u16(),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(open("/sip", Some("https://evil.example".into())).await, 403);
    assert_eq!(
        open("/sip", Some(format!("http://127.0.0.1:{port}"))).await,
        101
    );
    assert_eq!(
        open("/sip", None).await,
        101,
        "non-browser clients send no Origin"
    );
    assert_eq!(
        open("/api/v1/live", Some("https://evil.example".into())).await,
        403
    );
}

/// A provider is known by its address and its transport: a TCP connection from the
/// provider's address (a shared host, a NAT) is not the provider and must authenticate.
/// Before the fix any transport from the trunk's IP called in as the trunk.
#[test]
fn trunk_calls_are_recognised_only_over_the_trunks_transport() {
    let server = Server::start(&[("2001", "secret-2001")], &[]);
    let auth = format!("Bearer {}", server.admin_token());
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (status, _, body) = server.http(
        "POST",
        "/api/v1/trunks",
        &headers,
        r#"{"name":"provider","address":"127.0.0.1:5999","inbound_ip":"127.0.0.1"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = server.http(
        "POST",
        "/api/v1/numbers",
        &headers,
        r#"{"number":"74951234567","user":"u2001"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let mut s = SipTcp::connect(server.sip_addr());
    let port = s.local_port();
    s.send(&format!(
        "INVITE sip:74951234567@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bKtrunk1\r\nMax-Forwards: 70\r\nFrom: <sip:84950000000@127.0.0.1>;tag=t1\r\nTo: <sip:74951234567@127.0.0.1>\r\nCall-ID: trunk-over-tcp\r\nCSeq: 1 INVITE\r\nContact: <sip:84950000000@127.0.0.1:{port};transport=tcp>\r\nContent-Length: 0\r\n\r\n"
    ));
    let answer = loop {
        let m = s.next().expect("an answer to the INVITE");
        if status_of(&m).is_some_and(|c| c >= 200) {
            break m;
        }
    };
    assert_eq!(status_of(&answer), Some(407), "{answer}");
}

/// A new password ends every session and token the user had: whoever learnt the old one
/// (or stole a cookie) keeps nothing.
#[test]
fn a_new_password_revokes_sessions_and_tokens() {
    let server = Server::start(&[("2001", "secret-2001")], &[]);
    let admin = format!("Bearer {}", server.admin_token());
    let theirs = format!(
        "Bearer {}",
        server.cli(&["token", "create", "--user", "u2001"]).trim()
    );
    let me = |auth: &str| {
        server
            .http("GET", "/api/v1/me/counters", &[("Authorization", auth)], "")
            .0
    };
    assert_eq!(me(&theirs), 200);
    let id = user_id(&server, &admin, "u2001");
    let (status, _, body) = server.http(
        "PATCH",
        &format!("/api/v1/users/{id}"),
        &[
            ("Authorization", &admin),
            ("Content-Type", "application/json"),
        ],
        r#"{"password":"a-brand-new-password"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(me(&theirs), 401);
    assert_eq!(me(&admin), 200, "other users' tokens stay");
}

/// The id of the user with this login, as an administrator (`admin`) reads it.
fn user_id(server: &Server, admin: &str, login: &str) -> serde_json::Value {
    let (_, _, users) = server.http("GET", "/api/v1/users", &[("Authorization", admin)], "");
    let users: serde_json::Value = serde_json::from_str(&users).unwrap();
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == login)
        .unwrap()["id"]
        .clone()
}

/// Devices' addresses are not for every logged-in user, nor for anyone who can reach the
/// port: /registrations shows a user only their own, /metrics needs an allowed address or
/// an administrator.
#[test]
fn registrations_and_metrics_are_not_public() {
    let server = Server::start(
        &[("2001", "secret-2001"), ("2002", "secret-2002")],
        &[("KOLOKOL_HTTP__METRICS_FROM", "[]")],
    );
    let admin = format!("Bearer {}", server.admin_token());
    let u2002 = format!(
        "Bearer {}",
        server.cli(&["token", "create", "--user", "u2002"]).trim()
    );
    let mut phone = SipTcp::connect(server.sip_addr());
    register_over_tcp(&mut phone, &server, "2001", "secret-2001");
    let count = |auth: &str| {
        let (status, _, body) = server.http(
            "GET",
            "/api/v1/registrations",
            &[("Authorization", auth)],
            "",
        );
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(&admin), 1);
    assert_eq!(count(&u2002), 0, "2002 does not see 2001's phone");
    assert_eq!(server.http("GET", "/metrics", &[], "").0, 401);
    assert_eq!(
        server
            .http("GET", "/metrics", &[("Authorization", &u2002)], "")
            .0,
        403
    );
    let (status, _, body) = server.http("GET", "/metrics", &[("Authorization", &admin)], "");
    assert_eq!(status, 200);
    assert!(body.contains("kolokol_registrations 1"), "{body}");
}

/// A user is dialled by login or extension: a new login that is someone's extension (or
/// the reverse) would take their calls, so it is refused.
#[test]
fn logins_and_extensions_do_not_collide() {
    let server = Server::start(&[("2001", "secret-2001")], &[]);
    let admin = format!("Bearer {}", server.admin_token());
    let create = |body: &str| {
        server.http(
            "POST",
            "/api/v1/users",
            &[
                ("Authorization", &admin),
                ("Content-Type", "application/json"),
            ],
            body,
        )
    };
    let (status, _, body) = create(r#"{"login":"2001","name":"Impostor"}"#);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains(r#""field":"login""#), "{body}");
    let (status, _, body) = create(r#"{"login":"3005","name":"Digits"}"#);
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = create(
        r#"{"login":"petrov","name":"Petrov","extension":"3005","sip_password":"petrov-secret"}"#,
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains(r#""field":"extension""#), "{body}");
    let (status, _, body) = create(
        r#"{"login":"petrov","name":"Petrov","extension":"2002","sip_password":"petrov-secret"}"#,
    );
    assert_eq!(status, 201, "{body}");
}

/// Overload control: while datagrams queue up in front of kolokol, a new call is refused
/// at the door with 503 and Retry-After (before authentication: an unauthenticated INVITE
/// would otherwise get 407); once the backlog is gone the door opens again.
#[test]
fn a_backlog_refuses_new_calls_at_the_door_and_recovers() {
    let server = Server::start(&[], &[("KOLOKOL_SIP__OVERLOAD_WAIT_MS", "1")]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let invite = |n: u32| {
        format!(
            "INVITE sip:2001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bKover{n}\r\nMax-Forwards: 70\r\nFrom: <sip:spike@127.0.0.1>;tag=o{n}\r\nTo: <sip:2001@127.0.0.1>\r\nCall-ID: over-{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:spike@127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // The answer to INVITE `n`, skipping the OPTIONS answers.
    let answer_to = |n: u32| -> u16 {
        let mut buf = vec![0u8; 70_000];
        let call_id = format!("Call-ID: over-{n}\r\n");
        loop {
            let (len, _) = sock.recv_from(&mut buf).expect("an answer to the INVITE");
            let text = String::from_utf8_lossy(&buf[..len]);
            if text.contains(&call_id) && status_of(&text).is_some_and(|s| s >= 200) {
                if status_of(&text) == Some(503) {
                    assert!(text.contains("Retry-After: "), "{text}");
                }
                return status_of(&text).unwrap();
            }
        }
    };
    // A spike: requests at once, faster than they are read, the INVITE behind 100 of
    // them (few enough for a kernel default buffer, should kolokol not get a larger one).
    let burst: Vec<String> = (0..140)
        .map(|i| options(server.sip_port, &format!("spike{i}")))
        .collect();
    // (from another socket, whose answers nobody reads)
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, o) in burst.iter().enumerate() {
        let _ = flood.send_to(o.as_bytes(), server.sip_addr());
        // The INVITE, retransmitted as a phone would, in case a full buffer drops it.
        if i >= 100 && i % 10 == 0 {
            sock.send_to(invite(1).as_bytes(), server.sip_addr())
                .unwrap();
        }
    }
    assert_eq!(answer_to(1), 503, "refused while the backlog lasts");
    // Requests one at a time: nothing waits, the door opens.
    wait_for("the door to open", Duration::from_secs(10), || {
        for i in 0..40 {
            let o = options(server.sip_port, &format!("calm{i}"));
            udp_exchange(server.sip_addr(), o.as_bytes(), Duration::from_secs(1));
        }
        sock.send_to(invite(2).as_bytes(), server.sip_addr())
            .unwrap();
        (answer_to(2) == 407).then_some(())
    });
}

/// An administrator cannot demote or deactivate themselves (a fuzzer once locked its own
/// account out), and changing one's own password keeps the token that did it.
#[test]
fn an_administrator_cannot_lock_themselves_out() {
    let server = Server::start(&[], &[]);
    let admin = format!("Bearer {}", server.admin_token());
    let other = format!("Bearer {}", server.admin_token());
    let id = user_id(&server, &admin, "boss");
    let patch = |body: &str| {
        server.http(
            "PATCH",
            &format!("/api/v1/users/{id}"),
            &[
                ("Authorization", &admin),
                ("Content-Type", "application/json"),
            ],
            body,
        )
    };
    for (body, field) in [
        (r#"{"admin":false}"#, "admin"),
        (r#"{"active":false}"#, "active"),
    ] {
        let (status, _, text) = patch(body);
        assert_eq!(status, 422, "{text}");
        assert!(text.contains(&format!(r#""field":"{field}""#)), "{text}");
    }
    let (status, _, text) = patch(r#"{"password":"another-boss-password"}"#);
    assert_eq!(status, 200, "{text}");
    let me = |auth: &str| {
        server
            .http("GET", "/api/v1/users", &[("Authorization", auth)], "")
            .0
    };
    assert_eq!(me(&admin), 200, "the token that changed the password stays");
    assert_eq!(me(&other), 401, "every other token of the user is gone");
}

/// A REGISTER for `ext` answered with a softphone key (digest username and MD5 HA1) over
/// one connection, framed by `send` and `next`: the final status.
fn register_with_key(
    transport: &str,
    send: &mut dyn FnMut(&str),
    next: &mut dyn FnMut() -> Option<String>,
    ext: &str,
    username: &str,
    ha1: &str,
) -> u16 {
    let request = |cseq: u32, auth: Option<&str>| {
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} key.invalid;branch=z9hG4bKkey{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{ext}@127.0.0.1>;tag=k{cseq}\r\nTo: <sip:{ext}@127.0.0.1>\r\nCall-ID: key-{transport}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{ext}@key.invalid;transport={}>;expires=600\r\n{}Content-Length: 0\r\n\r\n",
            transport.to_ascii_lowercase(),
            auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default()
        )
    };
    send(&request(1, None));
    let challenge = next().expect("a challenge");
    assert_eq!(status_of(&challenge), Some(401), "{challenge}");
    let www = md5_challenge(&challenge, "WWW-Authenticate");
    let auth =
        digest::answer_with_ha1(www, "REGISTER", "sip:127.0.0.1", username, ha1, "k1").unwrap();
    send(&request(2, Some(&auth)));
    let answer = next().expect("an answer to the REGISTER");
    status_of(&answer).unwrap()
}

/// The softphone gets a key of its own web session, not the account's HA1: the key
/// registers the user's extension over WebSocket only, and ends with the session. Before
/// the fix /me/softphone handed every web session, for good, the HA1 a desk phone
/// registers with over any transport.
#[test]
fn the_softphone_key_belongs_to_the_session_and_to_websockets() {
    use tokio_tungstenite::tungstenite;
    let server = Server::start(&[("2001", "secret-2001")], &[]);
    let admin = format!("Bearer {}", server.admin_token());
    let id = user_id(&server, &admin, "u2001");
    let json = [("Content-Type", "application/json")];
    let patch = [json[0], ("Authorization", &admin)];
    let body = r#"{"password":"web-password-2001"}"#;
    assert_eq!(
        server
            .http("PATCH", &format!("/api/v1/users/{id}"), &patch, body)
            .0,
        200
    );
    let (status, head, body) = server.http(
        "POST",
        "/api/v1/session",
        &json,
        r#"{"login":"u2001","password":"web-password-2001"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let softphone = || {
        let (status, _, body) =
            server.http("GET", "/api/v1/me/softphone", &[("Cookie", &cookie)], "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let me = softphone();
    let username = me["sip_username"].as_str().unwrap().to_string();
    let key = me["ha1"].as_str().unwrap().to_string();
    assert!(username.starts_with("2001~"), "{me}");
    assert_ne!(
        key,
        digest::ha1(digest::Algorithm::Md5, "2001", "kolokol", "secret-2001"),
        "the account's own HA1 is not handed out"
    );
    assert_eq!(softphone()["sip_username"], username, "one key per session");

    // Over TCP the key is refused; the account's password still works there.
    let phone = std::cell::RefCell::new(SipTcp::connect(server.sip_addr()));
    let status = register_with_key(
        "TCP",
        &mut |m| phone.borrow_mut().send(m),
        &mut || phone.borrow_mut().next(),
        "2001",
        &username,
        &key,
    );
    assert_eq!(status, 403, "a softphone key over TCP");

    // Over WebSocket it registers the extension.
    let ws_register = |username: &str, key: &str| {
        let ws = sip_websocket(&server, Duration::from_secs(5));
        let ws = std::cell::RefCell::new(ws);
        register_with_key(
            "WS",
            &mut |m| {
                ws.borrow_mut()
                    .send(tungstenite::Message::Text(m.into()))
                    .unwrap()
            },
            &mut || loop {
                match ws.borrow_mut().read() {
                    Ok(tungstenite::Message::Text(t)) => return Some(t.to_string()),
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            },
            "2001",
            username,
            key,
        )
    };
    assert_eq!(
        ws_register(&username, &key),
        200,
        "a softphone key registers its extension over WebSocket: {}",
        server.log()
    );

    // The session ends: its key with it, even over WebSocket.
    let (status, _, _) = server.http("POST", "/api/v1/session/logout", &[("Cookie", &cookie)], "");
    assert_eq!(status, 204);
    assert_eq!(
        ws_register(&username, &key),
        403,
        "the key of an ended session"
    );
}
