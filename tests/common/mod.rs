//! Starts the real kolokol binary on free loopback ports with its own data folder, and
//! small clients (UDP, TCP, HTTP) to talk to it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub mod pg;

pub const BIN: &str = env!("CARGO_BIN_EXE_kolokol");
static SEQ: AtomicU32 = AtomicU32::new(0);

pub struct Server {
    /// The running server; `None` only while it is being set up.
    child: Option<Child>,
    pub dir: PathBuf,
    pub sip_port: u16,
    pub tls_port: u16,
    pub http_port: u16,
    pub https_port: u16,
    env: Vec<(String, String)>,
}

/// A port free on 127.0.0.1 for both UDP and TCP, from 61000 up: above the kernel's
/// ephemeral range (so no outgoing socket takes it meanwhile) and kolokol's media range, in
/// steps of 4 so a sipp media port and the ones above it (RTCP, video) never meet another
/// test's ports.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let base = 61000 + (std::process::id() % 8) as u16 * 500;
    loop {
        let n = NEXT.fetch_add(4, Ordering::Relaxed) % 4000;
        let port = 61000 + (base - 61000 + n) % 4400;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
}

impl Server {
    /// Starts a server with these users (login = "u"+extension, extension, SIP password)
    /// and extra KOLOKOL_* settings; returns once /healthz answers.
    pub fn start(users: &[(&str, &str)], settings: &[(&str, &str)]) -> Server {
        let dir = std::env::temp_dir().join(format!(
            "kolokol-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (sip_port, tls_port, http_port, https_port) =
            (free_port(), free_port(), free_port(), free_port());
        let mut env: Vec<(String, String)> = vec![
            (
                "KOLOKOL_DATA_DIR".into(),
                dir.join("data").display().to_string(),
            ),
            ("KOLOKOL_SIP__UDP".into(), format!("127.0.0.1:{sip_port}")),
            ("KOLOKOL_SIP__TCP".into(), format!("127.0.0.1:{sip_port}")),
            ("KOLOKOL_SIP__TLS".into(), format!("127.0.0.1:{tls_port}")),
            ("KOLOKOL_SIP__ADVERTISE".into(), "127.0.0.1".into()),
            // Parallel servers: each browser gateway on a port of its own.
            ("KOLOKOL_MEDIA__WEBRTC_PORT".into(), "0".into()),
            (
                "KOLOKOL_HTTP__LISTEN".into(),
                format!("127.0.0.1:{http_port}"),
            ),
            (
                "KOLOKOL_HTTP__TLS_LISTEN".into(),
                format!("127.0.0.1:{https_port}"),
            ),
        ];
        env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut server = Server {
            child: None,
            dir,
            sip_port,
            tls_port,
            http_port,
            https_port,
            env,
        };
        server.cli(&[
            "user",
            "add",
            "--login",
            "boss",
            "--name",
            "Boss",
            "--password",
            "boss-password",
            "--admin",
        ]);
        for (ext, pass) in users {
            let login = format!("u{ext}");
            server.cli(&[
                "user",
                "add",
                "--login",
                &login,
                "--name",
                &login,
                "--extension",
                ext,
                "--sip-password",
                pass,
            ]);
        }
        server.spawn();
        server
    }

    /// Runs a CLI command against this server's data folder and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(&self.dir)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kolokol {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        let child = Command::new(BIN)
            .current_dir(&self.dir)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let child = self.child.insert(child);
        if let Some(status) = wait_for("kolokol to become healthy", Duration::from_secs(30), || {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(Some(status));
            }
            (http(self.http_port, "GET", "/healthz", &[], "").map(|r| r.0) == Some(200))
                .then_some(None)
        }) {
            panic!("kolokol exited with {status}: {}", self.log());
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits (up to `timeout`) for a clean exit; returns whether it was one.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = wait_for("kolokol to stop", timeout, || child.try_wait().unwrap());
        status.success()
    }

    /// Starts the server again after [`Server::terminate`].
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Stops the server and starts it again on the same data and ports.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn sip_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.sip_port).into()
    }

    /// The running server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// The server's resident memory in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    pub fn try_http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Option<(u16, String, String)> {
        http(self.http_port, method, path, headers, body)
    }

    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        self.try_http(method, path, headers, body)
            .expect("HTTP request failed")
    }

    /// A bearer token of the admin user.
    pub fn admin_token(&self) -> String {
        self.cli(&["token", "create", "--user", "boss"])
            .trim()
            .to_string()
    }

    /// Waits until `n` bindings are in the database: they are written behind, so a test
    /// that kills the server waits for them first.
    pub fn wait_binding_rows(&self, n: usize) {
        let db = self.dir.join("data/kolokol.db");
        wait_for("the binding rows", Duration::from_secs(5), || {
            let out = Command::new("sqlite3")
                .arg(&db)
                .arg("SELECT COUNT(*) FROM bindings")
                .output()
                .expect("sqlite3 is installed by the README test command");
            (String::from_utf8_lossy(&out.stdout).trim() == n.to_string()).then_some(())
        });
    }

    /// Polls `GET /api/v1/registrations` until `pred` holds, or panics after `timeout`.
    pub fn wait_registrations(
        &self,
        token: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let auth = format!("Bearer {token}");
        wait_for("registrations to match", timeout, || {
            let (status, _, body) = self.http(
                "GET",
                "/api/v1/registrations",
                &[("Authorization", &auth)],
                "",
            );
            assert_eq!(status, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            pred(&v).then_some(v)
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Polls `probe` every 50 ms until it yields a value; panics naming `what` after `timeout`.
/// The one place tests wait on state they can only observe from outside (an HTTP answer,
/// a database row).
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, headers, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String, String)> {
    let (status, head, body) = http_raw(port, method, path, headers, body)?;
    Some((status, head, String::from_utf8_lossy(&body).into_owned()))
}

/// Like [`http`], with the body as bytes (recordings).
pub fn http_raw(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String, Vec<u8>)> {
    http_bytes(port, method, path, headers, body.as_bytes())
}

/// One request with any body (uploads); the answer's body as bytes.
pub fn http_bytes(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head, raw[end + 4..].to_vec()))
}

/// Sends one UDP datagram and waits up to `timeout` for one answer.
pub fn udp_exchange(to: SocketAddr, data: &[u8], timeout: Duration) -> Option<String> {
    udp_exchange_from(0, to, data, timeout)
}

/// Like [`udp_exchange`], sending from a chosen local port (0: any).
pub fn udp_exchange_from(
    port: u16,
    to: SocketAddr,
    data: &[u8],
    timeout: Duration,
) -> Option<String> {
    let sock = UdpSocket::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("UDP port {port} is taken: {e}"));
    sock.set_read_timeout(Some(timeout)).unwrap();
    sock.send_to(data, to).unwrap();
    let mut buf = vec![0u8; 70_000];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Sends bytes on a new TCP connection, half-closes it, and reads everything back.
pub fn tcp_exchange(to: SocketAddr, data: &[u8]) -> String {
    let mut s = TcpStream::connect(to).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(data);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw).into_owned()
}

/// The status code of the first response in `text`.
pub fn status_of(text: &str) -> Option<u16> {
    text.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

pub fn options(port: u16, branch: &str) -> String {
    format!(
        "OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p{branch}\r\nTo: <sip:ping@127.0.0.1>\r\nCall-ID: {branch}@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The server still answers OPTIONS over UDP with 200.
pub fn assert_answers_options(server: &Server) {
    let reply = udp_exchange(
        server.sip_addr(),
        options(
            server.sip_port,
            &format!("alive{}", SEQ.fetch_add(1, Ordering::Relaxed)),
        )
        .as_bytes(),
        Duration::from_secs(5),
    );
    assert_eq!(
        reply.as_deref().and_then(status_of),
        Some(200),
        "server stopped answering OPTIONS: {}",
        server.log()
    );
}

/// sipp as a phone running in the background (a callee waiting for calls).
pub fn sipp_spawn(server: &Server, scenario: &str, args: &[&str]) -> Child {
    sipp_command(server, scenario, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp is not installed: run the README test command, it installs sip-tester")
}

/// Waits for a background sipp to end by itself; (success, its output).
pub fn sipp_wait(child: Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs sipp against the server; returns (success, stdout+stderr).
pub fn sipp(server: &Server, scenario: &str, args: &[&str]) -> (bool, String) {
    let out = sipp_command(server, scenario, args)
        .output()
        .expect("sipp is not installed: run the README test command, it installs sip-tester");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn sipp_command(server: &Server, scenario: &str, args: &[&str]) -> Command {
    let scenario_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    let mut cmd = Command::new("sipp");
    cmd.arg(format!("127.0.0.1:{}", server.sip_port))
        .args([
            "-sf",
            scenario_path.to_str().unwrap(),
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-timeout",
            "15s",
            "-timeout_error",
            "-recv_timeout",
            "5s",
        ])
        .args(if args.contains(&"-p") {
            vec![]
        } else {
            vec!["-p".to_string(), free_port().to_string()]
        })
        .args(args)
        .current_dir(&server.dir);
    cmd
}

/// sipp as one phone: digest user `user` with `password`, AoR `user`, one call and
/// `Expires: 600` unless `extra` says otherwise (`-m N`, `-key expires N`).
pub fn sipp_as(
    server: &Server,
    scenario: &str,
    user: &str,
    password: &str,
    extra: &[&str],
) -> (bool, String) {
    let mut args = vec!["-s", user, "-au", user, "-ap", password];
    if !extra.contains(&"expires") {
        args.extend(["-key", "expires", "600"]);
    }
    if !extra.contains(&"-m") {
        args.extend(["-m", "1"]);
    }
    args.extend_from_slice(extra);
    sipp(server, scenario, &args)
}

/// baresip as a desk phone: registers `(user, password)` with digest from `port`, answers
/// automatically and sends a 440 Hz sine; its output goes to ALSA's null device; runs the
/// given menu commands (`/dial …`). Returns once registered; killed when dropped. libre
/// 1.0 rejects a 401 in which any challenge is not MD5: run the server with
/// `KOLOKOL_REGISTRAR__DIGEST_ALGORITHMS=["MD5"]`.
pub struct Baresip(Child, PathBuf);

impl Baresip {
    pub fn start(
        server: &Server,
        token: &str,
        (user, password): (&str, &str),
        port: u16,
        commands: &[&str],
    ) -> Baresip {
        let dir = server.dir.join(format!("baresip-{}", free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{port}\naudio_player alsa,null\naudio_alert alsa,null\naudio_source ausine,440\nausrc_srate 48000\nausrc_channels 2\nrtp_ports 40000-40999\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule ausine.so\nmodule alsa.so\nmodule_tmp account.so\nmodule_app menu.so\n"
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{user}@127.0.0.1:{};transport=udp>;auth_pass={password};answermode=auto;regint=600;audio_codecs=PCMU,PCMA\n",
                server.sip_port
            ),
        )
        .unwrap();
        let mut cmd = Command::new("baresip");
        // SIP bound to the loopback keeps its SDP and RTP there too (127.0.0.1 only).
        cmd.arg("-4").arg("-f").arg(&dir).args(["-t", "60"]);
        for c in commands {
            cmd.args(["-e", c]);
        }
        let phone = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("out.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("baresip is not installed: run the README test command, it installs it");
        let phone = Baresip(phone, dir.join("out.log"));
        server.wait_registrations(token, Duration::from_secs(10), |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|r| r["aor"] == user))
        });
        phone
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /api/v1/live` read with a blocking WebSocket client.
pub struct Live {
    socket: tokio_tungstenite::tungstenite::WebSocket<
        tokio_tungstenite::tungstenite::stream::MaybeTlsStream<std::net::TcpStream>,
    >,
    pub received: Vec<serde_json::Value>,
}

impl Live {
    pub fn connect(server: &Server, auth: &str) -> Live {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("ws://127.0.0.1:{}/api/v1/live", server.http_port);
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Authorization", auth.parse().unwrap());
        let (socket, _) = tokio_tungstenite::tungstenite::connect(request).expect("live socket");
        if let tokio_tungstenite::tungstenite::stream::MaybeTlsStream::Plain(tcp) = socket.get_ref()
        {
            tcp.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
        }
        Live {
            socket,
            received: Vec::new(),
        }
    }

    /// Reads until `done` holds for what was received, or fails after `within`.
    pub fn until(
        &mut self,
        what: &str,
        within: Duration,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) {
        use tokio_tungstenite::tungstenite::Message;
        let deadline = std::time::Instant::now() + within;
        while !done(&self.received) {
            assert!(
                std::time::Instant::now() < deadline,
                "live feed: {what}; got {} messages",
                self.received.len()
            );
            match self.socket.read() {
                Ok(Message::Text(text)) => self.received.push(serde_json::from_str(&text).unwrap()),
                Ok(_) => {}
                Err(tokio_tungstenite::tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("live socket: {e}"),
            }
        }
    }
}

/// A SIP WebSocket (`/sip`, subprotocol `sip`) to the server, reads timing out after
/// `read_timeout`.
pub fn sip_websocket(
    server: &Server,
    read_timeout: Duration,
) -> tokio_tungstenite::tungstenite::WebSocket<
    tokio_tungstenite::tungstenite::stream::MaybeTlsStream<std::net::TcpStream>,
> {
    use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
    let mut request = format!("ws://127.0.0.1:{}/sip", server.http_port)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    let (ws, _) = tungstenite::connect(request).expect("websocket");
    if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        tcp.set_read_timeout(Some(read_timeout)).unwrap();
    }
    ws
}
