//! The running binary on the wire: RFC 4475 over UDP and TCP, hostile input, SIP over
//! WebSocket, the REST API, and registrations that survive a restart.

mod common;
use common::*;
use futures_util::{SinkExt, StreamExt};
use kolokol_engine::registrar::digest::{ha1, Algorithm, Credentials};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

include!("../engine/tests/support/rfc4475_table.rs");

fn torture(name: &str) -> Vec<u8> {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/rfc4475");
    std::fs::read(dir.join(format!("{name}.dat"))).unwrap()
}

fn via_port(data: &[u8]) -> u16 {
    let Ok(scan) = kolokol_engine::sip::scan::scan_lenient(data) else {
        return 5060;
    };
    let via = scan
        .first("Via")
        .map(|v| kolokol_engine::sip::grammar::split_list(v)[0].to_string())
        .unwrap_or_default();
    let head = via.split(';').next().unwrap_or_default();
    head.split_whitespace()
        .last()
        .and_then(|h| h.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(5060)
}

fn to_has_tag(data: &[u8]) -> bool {
    kolokol_engine::sip::scan::scan_lenient(data)
        .ok()
        .and_then(|s| {
            s.first("To")
                .map(|t| kolokol_engine::call::message::tag(t).is_some())
        })
        .unwrap_or(false)
}

#[test]
fn rfc4475_over_udp_and_tcp() {
    let server = Server::start(&[], &[]);
    let mut wrong = Vec::new();
    for (name, expected) in RFC4475 {
        let data = torture(name);
        // The table is for a bare UAS (480: nobody to call). With call control a valid
        // INVITE meets the caller check instead: a digest challenge, or 481 when it names
        // a dialog (To tag) that does not exist.
        let expected = &expected.map(|s| match s {
            480 if to_has_tag(&data) => 481,
            480 => 407,
            s => s,
        });
        // Without rport a response goes to the source IP and the Via's port (RFC 3261
        // §18.2.2), so send from that port.
        let from = via_port(&data);
        let udp = udp_exchange_from(
            from,
            server.sip_addr(),
            &data,
            Duration::from_millis(if expected.is_some() { 3000 } else { 300 }),
        );
        let got = udp.as_deref().and_then(status_of);
        if got != *expected {
            wrong.push(format!("udp {name}: expected {expected:?} got {got:?}"));
        }
        // On a stream a message without Content-Length loses its framing: 400 and close.
        let has_length = String::from_utf8_lossy(&data).lines().any(|l| {
            let n = l
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            n == "content-length" || n == "l"
        });
        let tcp_expected = match expected {
            Some(_) if !has_length => Some(400),
            e => *e,
        };
        let got = status_of(&tcp_exchange(server.sip_addr(), &data));
        if got != tcp_expected {
            wrong.push(format!("tcp {name}: expected {tcp_expected:?} got {got:?}"));
        }
        assert_answers_options(&server);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn hostile_input_gets_an_answer_or_a_drop_never_a_crash() {
    // A UDP datagram carries at most 65,507 bytes, so a lower limit shows the UDP check.
    let mut server = Server::start(&[], &[("KOLOKOL_SIP__MAX_MESSAGE_SIZE", "60000")]);
    let addr = server.sip_addr();
    // Garbage bytes.
    let garbage: Vec<u8> = (0..2000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert_eq!(
        udp_exchange(addr, &garbage, Duration::from_millis(300)),
        None
    );
    assert_eq!(tcp_exchange(addr, &garbage), "");
    // A truncated message: headers cut in the middle.
    let options = options(server.sip_port, "trunc");
    assert_eq!(
        udp_exchange(addr, &options.as_bytes()[..60], Duration::from_millis(300)),
        None
    );
    // A body shorter than Content-Length on UDP: 400.
    let short = options.replace("Content-Length: 0", "Content-Length: 500");
    assert_eq!(
        udp_exchange(addr, short.as_bytes(), Duration::from_secs(3))
            .as_deref()
            .and_then(status_of),
        Some(400)
    );
    // 100 KB over TCP: 513 and the connection closes.
    let big = options.replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Content-Length: 102400\r\n\r\n{}", "x".repeat(102_400)),
    );
    assert_eq!(status_of(&tcp_exchange(addr, big.as_bytes())), Some(513));
    // Near the UDP limit but over max_message_size: dropped.
    let udp_big = options.replace(
        "Content-Length: 0\r\n\r\n",
        &format!("X-Pad: {}\r\nContent-Length: 0\r\n\r\n", "y".repeat(62_000)),
    );
    assert_eq!(
        udp_exchange(addr, udp_big.as_bytes(), Duration::from_millis(300)),
        None
    );
    // Binary noise with a SIP-looking start.
    let mut noisy = b"INVITE sip:a@b SIP/2.0\r\n".to_vec();
    noisy.extend_from_slice(&[0xff, 0xfe, 0x00, 0x0a, 0x0d, 0x0a, 0x0d, 0x0a]);
    assert_eq!(udp_exchange(addr, &noisy, Duration::from_millis(300)), None);
    assert!(server.alive());
    assert_answers_options(&server);
}

/// Registers over SIP WebSocket with SHA-256 digest; returns the 200.
async fn ws_register(
    port: u16,
    user: &str,
    password: &str,
) -> (
    String,
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) {
    let mut request = format!("ws://127.0.0.1:{port}/sip")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket connect");
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "sip"
    );
    let register = |cseq: u32, auth: Option<String>| {
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=ws1\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: ws-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:k3l2@df7jal23ls0d.invalid;transport=ws>;expires=600\r\n{}Content-Length: 0\r\n\r\n",
            auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default()
        )
    };
    ws.send(Message::Text(register(1, None).into()))
        .await
        .unwrap();
    let challenge = next_text(&mut ws).await;
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let www = challenge
        .lines()
        .find(|l| l.contains("algorithm=SHA-256"))
        .expect("SHA-256 challenge");
    let nonce = www
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let creds = Credentials {
        username: user,
        realm: "kolokol",
        nonce,
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
    let auth = format!("Digest username=\"{user}\", realm=\"kolokol\", nonce=\"{nonce}\", uri=\"sip:127.0.0.1\", response=\"{response}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"abc\"");
    ws.send(Message::Text(register(2, Some(auth)).into()))
        .await
        .unwrap();
    (next_text(&mut ws).await, ws)
}

async fn next_text<
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
>(
    ws: &mut S,
) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no SIP message within 5 s")
        {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("websocket ended: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_registration_lives_as_long_as_its_connection() {
    let server = tokio::task::spawn_blocking(|| Server::start(&[("2005", "browser-secret")], &[]))
        .await
        .unwrap();
    let token = server.admin_token();
    let (ok, ws) = ws_register(server.http_port, "2005", "browser-secret").await;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(
        ok.contains("Contact: <sip:k3l2@df7jal23ls0d.invalid;transport=ws>;expires=600"),
        "{ok}"
    );
    let server = std::sync::Arc::new(server);
    let s = server.clone();
    let t = token.clone();
    let regs = tokio::task::spawn_blocking(move || {
        s.wait_registrations(&t, Duration::from_secs(5), |v| {
            v.as_array().unwrap().len() == 1
        })
    })
    .await
    .unwrap();
    assert_eq!(regs[0]["transport"], "ws");
    drop(ws);
    let s = server.clone();
    tokio::task::spawn_blocking(move || {
        s.wait_registrations(&token, Duration::from_secs(5), |v| {
            v.as_array().unwrap().is_empty()
        })
    })
    .await
    .unwrap();
}

#[test]
fn api_users_sessions_and_problems() {
    let server = Server::start(&[], &[]);
    // No credentials: 401 problem.
    let (status, head, _) = server.http("GET", "/api/v1/users", &[], "");
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    // Log in as a browser would; the session cookie works for the next call.
    let (status, head, _) = server.http(
        "POST",
        "/api/v1/session",
        &[],
        r#"{"login":"boss","password":"boss-password"}"#,
    );
    assert_eq!(status, 200);
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let (status, _, body_list) = server.http("GET", "/api/v1/users", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200, "{body_list}");
    assert!(body_list.contains("\"login\":\"boss\""));
    // A bad password for the session is refused.
    let (status, _, _) = server.http(
        "POST",
        "/api/v1/session",
        &[],
        r#"{"login":"boss","password":"nope-nope"}"#,
    );
    assert_eq!(status, 401);
    // Create a user with a bearer token; faults name their field.
    let auth = format!("Bearer {}", server.admin_token());
    let h = [("Authorization", auth.as_str())];
    let (status, _, body) = server.http("POST", "/api/v1/users", &h, r#"{"login":"ivanova","name":"Ирина Иванова","extension":"20x1","sip_password":"secret-pass"}"#);
    assert_eq!(status, 422, "{body}");
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["field"], "extension");
    let (status, _, body) = server.http("POST", "/api/v1/users", &h, r#"{"name":"x"}"#);
    assert_eq!(status, 422);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["field"],
        "login"
    );
    let (status, _, body) = server.http("POST", "/api/v1/users", &h, r#"{"login":"ivanova","name":"Ирина Иванова","extension":"2001","sip_password":"secret-pass"}"#);
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["extension"], "2001");
    assert!(created["password"].as_str().is_some_and(|p| p.len() >= 8));
    let (status, _, body) = server.http(
        "POST",
        "/api/v1/users",
        &h,
        r#"{"login":"other","name":"Other","extension":"2001","sip_password":"secret-pass"}"#,
    );
    assert_eq!(status, 409);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["field"],
        "extension"
    );
    // The new user registers at once (the directory is refreshed without a restart).
    let (ok, out) = sipp_as(
        &server,
        "register.xml",
        "2001",
        "secret-pass",
        &["-t", "u1", "-key", "expires", "600", "-m", "1"],
    );
    assert!(ok, "{out}");
    let (_, _, metrics) = server.http("GET", "/metrics", &[], "");
    assert!(metrics.contains("kolokol_registrations 1"), "{metrics}");
    assert!(
        metrics.contains("kolokol_sip_requests_total{method=\"REGISTER\"} 2"),
        "{metrics}"
    );
    let (status, _, _) = server.http("GET", "/readyz", &[], "");
    assert_eq!(status, 200);
}

#[test]
fn registrations_survive_a_restart() {
    let mut server = Server::start(&[("2001", "secret-2001")], &[]);
    let token = server.admin_token();
    let (ok, out) = sipp_as(
        &server,
        "register.xml",
        "2001",
        "secret-2001",
        &["-t", "u1", "-key", "expires", "600", "-m", "1"],
    );
    assert!(ok, "{out}");
    server.wait_registrations(&token, Duration::from_secs(5), |v| {
        v.as_array().unwrap().len() == 1
    });
    // Written behind: wait until the row is in the database before killing the server.
    server.wait_binding_rows(1);
    server.restart();
    let regs = server.wait_registrations(&token, Duration::from_secs(5), |v| {
        v.as_array().unwrap().len() == 1
    });
    assert_eq!(regs[0]["aor"], "2001");
    assert!(server.log().contains("restored=1"), "{}", server.log());
}

/// A WebSocket client that stops answering (its network is gone) is dropped after three
/// silent ping periods: its registration goes, as if it had closed the socket.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_websocket_client_is_dropped_by_the_keepalive() {
    let server = tokio::task::spawn_blocking(|| {
        Server::start(
            &[("2006", "browser-secret")],
            &[("KOLOKOL_SIP__WS_KEEPALIVE_S", "1")],
        )
    })
    .await
    .unwrap();
    let token = server.admin_token();
    // Registered, then never read again: pings go unanswered.
    let (ok, _silent) = ws_register(server.http_port, "2006", "browser-secret").await;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let server = std::sync::Arc::new(server);
    let started = std::time::Instant::now();
    let s = server.clone();
    tokio::task::spawn_blocking(move || {
        s.wait_registrations(&token, Duration::from_secs(10), |v| {
            v.as_array().unwrap().is_empty()
        })
    })
    .await
    .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "dropped only after silent periods, not at once"
    );
}
