//! SIP over TLS (5061) and HTTPS (8443) with the self-signed certificate made on first start,
//! driven by the openssl client.

mod common;
use common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// Sends `data` over TLS with `openssl s_client` and returns the first message that comes
/// back (up to the end of its header section), waiting at most 10 s.
fn tls_exchange(port: u16, data: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is needed for the TLS tests");
    child.stdin.as_mut().unwrap().write_all(data).unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).map(|n| n == 1).unwrap_or(false) {
            got.push(byte[0]);
            if got.ends_with(b"\r\n\r\n") {
                break;
            }
        }
        let _ = tx.send(got);
    });
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn sip_over_tls_and_https_use_the_generated_certificate() {
    let server = Server::start(&[], &[]);
    assert!(server.dir.join("data/tls/cert.pem").exists());
    let reply = tls_exchange(
        server.tls_port,
        options(server.sip_port, "tls1")
            .replace("SIP/2.0/UDP", "SIP/2.0/TLS")
            .as_bytes(),
    );
    assert_eq!(status_of(&reply), Some(200), "{reply}");
    assert!(
        reply.contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER"),
        "{reply}"
    );
    let https = tls_exchange(
        server.https_port,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert!(https.starts_with("HTTP/1.1 200"), "{https}");
}

/// The session cookie is Secure when it was set over HTTPS; the TLS key and the database
/// are readable by kolokol's user alone.
#[test]
fn https_sessions_are_secure_and_secrets_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(&[], &[]);
    let body = r#"{"login":"boss","password":"boss-password"}"#;
    let request = format!(
        "POST /api/v1/session HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let https = tls_exchange(server.https_port, request.as_bytes());
    assert!(https.starts_with("HTTP/1.1 200"), "{https}");
    let cookie = https
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    let (_, head, _) = server.http(
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        body,
    );
    assert!(
        !head.contains("Secure"),
        "plain HTTP cannot keep a Secure cookie: {head}"
    );
    for file in ["data/tls/key.pem", "data/kolokol.db"] {
        let mode = std::fs::metadata(server.dir.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{file} is open to others: {mode:o}");
    }
}
