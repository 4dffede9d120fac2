//! A REGISTER load client for distinct users, which sipp 3.6 cannot drive (it will not
//! expand [field0] inside [authentication]). Each transaction: REGISTER -> 401 -> REGISTER
//! with MD5 digest -> 200, for users <first>..<first+users>, password "pw-<ext>".
//!
//! cargo run --release --example register_load -- --server 127.0.0.1:5060 --users 1000 \
//!     --first 30000 --window 200 --seconds 10 [--pid PID] [--count N]
//! With --pid, kolokol's CPU per registration is read from /proc/PID/schedstat.

use md5::{Digest, Md5};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

struct Args {
    server: SocketAddr,
    users: u32,
    first: u32,
    window: usize,
    seconds: u64,
    count: u64,
    pid: Option<u32>,
}

fn args() -> Args {
    let mut a = Args {
        server: "127.0.0.1:5060".parse().unwrap(),
        users: 1000,
        first: 30000,
        window: 200,
        seconds: 10,
        count: u64::MAX,
        pid: None,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for pair in v.chunks(2) {
        let val = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--server" => a.server = val.parse().expect("--server host:port"),
            "--users" => a.users = val.parse().unwrap(),
            "--first" => a.first = val.parse().unwrap(),
            "--window" => a.window = val.parse().unwrap(),
            "--seconds" => a.seconds = val.parse().unwrap(),
            "--count" => a.count = val.parse().unwrap(),
            "--pid" => a.pid = Some(val.parse().unwrap()),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn schedstat_ns(pid: u32) -> u64 {
    // Sum over threads: /proc/PID/task/*/schedstat, first field = ns on CPU.
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

struct Tx {
    ext: u32,
    sent_at: Instant,
    tries: u8,
    message: Vec<u8>,
}

fn register(
    local: SocketAddr,
    server: SocketAddr,
    ext: u32,
    call_id: &str,
    cseq: u32,
    auth: Option<&str>,
) -> Vec<u8> {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "REGISTER sip:{server} SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch=z9hG4bK{call_id}{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{ext}@{server}>;tag={call_id}\r\nTo: <sip:{ext}@{server}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{ext}@{local};line={ext}>\r\nExpires: 3600\r\n{auth}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
}

fn main() {
    let a = args();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = sock.local_addr().unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut pending: HashMap<String, Tx> = HashMap::new();
    let (mut started, mut done, mut failed, mut next_user) = (0u64, 0u64, 0u64, 0u32);
    let mut seen_users = std::collections::HashSet::new();
    let cpu0 = a.pid.map(schedstat_ns);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(a.seconds);
    let mut buf = vec![0u8; 65536];
    loop {
        let now = Instant::now();
        let finishing = now >= deadline || started >= a.count;
        if finishing && pending.is_empty() {
            break;
        }
        while !finishing && pending.len() < a.window && started < a.count {
            let ext = a.first + next_user % a.users;
            next_user += 1;
            let call_id = format!("L{}x{started}", std::process::id());
            let message = register(local, a.server, ext, &call_id, 1, None);
            sock.send_to(&message, a.server).unwrap();
            pending.insert(
                call_id,
                Tx {
                    ext,
                    sent_at: now,
                    tries: 0,
                    message,
                },
            );
            started += 1;
        }
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                let msg = String::from_utf8_lossy(&buf[..n]);
                let Some(call_id) = header(&msg, "Call-ID:") else {
                    continue;
                };
                let Some(tx) = pending.get_mut(call_id) else {
                    continue;
                };
                let status = &msg[8..11];
                match status {
                    "401" => {
                        let www = msg
                            .lines()
                            .find(|l| {
                                l.starts_with("WWW-Authenticate:") && l.contains("algorithm=MD5")
                            })
                            .unwrap_or_default();
                        let nonce = www
                            .split("nonce=\"")
                            .nth(1)
                            .and_then(|s| s.split('"').next())
                            .unwrap_or_default();
                        let uri = format!("sip:{}", a.server);
                        let ha1 = hex(Md5::digest(format!("{}:kolokol:pw-{}", tx.ext, tx.ext)));
                        let ha2 = hex(Md5::digest(format!("REGISTER:{uri}")));
                        let resp = hex(Md5::digest(format!(
                            "{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"
                        )));
                        let auth = format!("Digest username=\"{}\", realm=\"kolokol\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\"", tx.ext);
                        tx.message = register(local, a.server, tx.ext, call_id, 2, Some(&auth));
                        tx.sent_at = Instant::now();
                        tx.tries = 0;
                        sock.send_to(&tx.message, a.server).unwrap();
                    }
                    "200" => {
                        seen_users.insert(tx.ext);
                        pending.remove(call_id);
                        done += 1;
                    }
                    _ => {
                        eprintln!("unexpected {}", msg.lines().next().unwrap_or_default());
                        pending.remove(call_id);
                        failed += 1;
                    }
                }
            }
            Err(_) => {
                // Retransmit (T1 = 500 ms, like a phone), give up after 4 tries.
                let now = Instant::now();
                let mut lost = Vec::new();
                for (id, tx) in pending.iter_mut() {
                    if now.duration_since(tx.sent_at) > Duration::from_millis(500) {
                        if tx.tries >= 4 {
                            lost.push(id.clone());
                        } else {
                            tx.tries += 1;
                            tx.sent_at = now;
                            sock.send_to(&tx.message, a.server).unwrap();
                        }
                    }
                }
                for id in lost {
                    pending.remove(&id);
                    failed += 1;
                }
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!("registrations: {done} ok, {failed} failed, {} distinct users, {:.1} s, {:.0} REGISTER transactions/s", seen_users.len(), secs, done as f64 / secs);
    if let (Some(pid), Some(c0)) = (a.pid, cpu0) {
        let cpu = schedstat_ns(pid) - c0;
        println!(
            "kolokol CPU: {:.2} s, {:.1} us per registration",
            cpu as f64 / 1e9,
            cpu as f64 / 1e3 / done.max(1) as f64
        );
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
