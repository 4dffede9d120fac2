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
    let www = challenge
        .lines()
        .filter_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .find(|l| l.contains("algorithm=MD5"))
        .expect("an MD5 challenge");
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
    let proxy = challenge
        .lines()
        .filter_map(|l| l.strip_prefix("Proxy-Authenticate: "))
        .find(|l| l.contains("algorithm=MD5"))
        .expect("an MD5 challenge");
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
    let db = server.dir.join("data/kolokol.db");
    wait_for("the binding row", Duration::from_secs(5), || {
        let out = std::process::Command::new("sqlite3")
            .arg(&db)
            .arg("SELECT COUNT(*) FROM bindings")
            .output()
            .expect("sqlite3 is installed by the README test command");
        (String::from_utf8_lossy(&out.stdout).trim() == "1").then_some(())
    });
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
