//! The browser softphone in Debian's Chromium, driven by Playwright (tests/softphone/):
//! an operator signs in with the web account, registers over WebSocket with JsSIP, and
//! talks to sipp through kolokol with audio both ways, recorded.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

const DID: &str = "5550400";
/// The tone Chromium's fake microphone plays.
const TONE_HZ: f64 = 1000.0;

static NPM: Mutex<bool> = Mutex::new(false);

fn driver_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/softphone")
}

/// playwright-core from npm, once per test run.
fn install_driver() {
    let mut done = NPM.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let status = Command::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--loglevel=error",
        ])
        .current_dir(driver_dir())
        .status()
        .expect("npm (Node.js) is needed for the browser tests");
    assert!(status.success(), "npm ci in tests/softphone failed");
    // The SIP.js client, bundled for the page.
    let status = Command::new("node")
        .args([
            "node_modules/esbuild/bin/esbuild",
            "sipjs.mjs",
            "--bundle",
            "--format=iife",
            "--outfile=dist/sipjs.js",
            "--log-level=warning",
        ])
        .current_dir(driver_dir())
        .status()
        .expect("node");
    assert!(
        status.success(),
        "bundling tests/softphone/sipjs.mjs failed"
    );
    *done = true;
}

/// Chromium under Playwright: one JSON command per line, one JSON answer per line.
struct Chromium {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Chromium {
    fn start(dir: &Path) -> Chromium {
        install_driver();
        assert!(
            Path::new("/usr/bin/chromium").exists(),
            "Chromium is missing: run the README test command, it installs Debian's chromium"
        );
        let wav = dir.join("microphone.wav");
        let made = Command::new("sox")
            .args(["-n", "-r", "48000", "-c", "1", "-b", "16"])
            .arg(&wav)
            .args(["synth", "60", "sine", &TONE_HZ.to_string(), "vol", "0.5"])
            .status()
            .expect("sox");
        assert!(made.success());
        let mut child = Command::new("node")
            .arg(driver_dir().join("drive.mjs"))
            .arg(&wav)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node");
        Chromium {
            input: child.stdin.take().unwrap(),
            output: BufReader::new(child.stdout.take().unwrap()),
            child,
        }
    }

    fn run(&mut self, command: Value) -> Value {
        writeln!(self.input, "{command}").unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the driver ended or said {line:?} to {command}"));
        assert_eq!(answer["ok"], true, "{command}: {}", answer["error"]);
        answer["value"].clone()
    }

    fn click(&mut self, selector: &str) {
        self.run(json!({"cmd": "click", "page": "op", "selector": selector}));
    }

    fn wait(&mut self, js: &str, timeout_ms: u64) {
        self.run(json!({"cmd": "wait", "page": "op", "js": js, "timeout_ms": timeout_ms}));
    }

    /// WebRTC's own counters in the page's client (`kolokol` or `sipjs`) show audio coming in.
    fn hears(&mut self, client: &str) {
        self.wait(
            &format!("window.{client}.inboundAudio().then(a => a && a.packetsReceived > 50 && a.totalAudioEnergy > 0)"),
            10000,
        );
    }

    /// A steady tone is what noise suppression removes: the processing switches of the
    /// personal settings (KAW 12.2) off, so the recording can be checked for the
    /// microphone's frequency.
    fn raw_microphone(&mut self) {
        self.click("#settings");
        for id in ["echoCancellation", "noiseSuppression", "autoGainControl"] {
            self.click(&format!("#{id}"));
        }
        self.click("#settings-window .dialog-head button");
        self.wait("!document.getElementById('settings-window')", 5000);
    }

    fn eval(&mut self, js: &str) -> Value {
        self.run(json!({"cmd": "eval", "page": "op", "js": js}))
    }
}

impl Drop for Chromium {
    /// Asks the driver to close Chromium; kills it if it has not within 10 s.
    fn drop(&mut self) {
        let _ = writeln!(self.input, r#"{{"cmd":"quit"}}"#);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The office: an operator with a browser account, a provider trunk (calls in from
/// `provider_port`, out to `trunk_port`) and a DID to the operator.
struct Office {
    server: Server,
    auth: String,
    provider_port: u16,
    trunk_port: u16,
}

impl Office {
    fn new() -> Office {
        Office::with(&[])
    }

    fn with(settings: &[(&str, &str)]) -> Office {
        let server = Server::start(&[], settings);
        let auth = format!("Bearer {}", server.admin_token());
        let o = Office {
            server,
            auth,
            provider_port: free_port(),
            trunk_port: free_port(),
        };
        o.api(
            "POST",
            "/api/v1/users",
            json!({"login": "ivanova", "name": "Ирина Иванова",
            "extension": "2005", "sip_password": "browser-sip-1", "password": "ivanova-web-1"}),
        );
        o.api(
            "POST",
            "/api/v1/trunks",
            json!({"name": "provider",
            "address": format!("127.0.0.1:{}", o.trunk_port),
            "inbound_ip": "127.0.0.1", "inbound_port": o.provider_port}),
        );
        o.api(
            "POST",
            "/api/v1/numbers",
            json!({"number": DID, "user": "ivanova"}),
        );
        o.api(
            "PUT",
            "/api/v1/users/ivanova/calls",
            json!({"record": true, "trunk_id": 1}),
        );
        o
    }

    fn api(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, _, text) = self.server.http(
            method,
            path,
            &[("Authorization", &self.auth)],
            &body.to_string(),
        );
        assert!(status < 300, "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The softphone page signed in as the operator and registered.
    fn browser(&self) -> Chromium {
        let mut chromium = Chromium::start(&self.server.dir);
        chromium.run(json!({"cmd": "open", "page": "op",
            "url": format!("http://127.0.0.1:{}/", self.server.http_port),
            "login": "ivanova", "password": "ivanova-web-1"}));
        chromium
    }

    /// Queue "support"'s events once every one of `kinds` is stored (the journal writes
    /// them as they come).
    fn queue_events(&self, kinds: &[&str]) -> Value {
        wait_for("the queue's events", Duration::from_secs(5), || {
            let events = self.api("GET", "/api/v1/queue-events?queue=support", Value::Null);
            let stored = events.as_array()?;
            kinds
                .iter()
                .all(|k| stored.iter().any(|e| e["type"] == *k))
                .then_some(events)
        })
    }

    /// Queue "support" with the operator as its member, `number` routed to it, and the
    /// operator's day started from the page ("In work").
    fn support_queue(&self, number: &str, strategy: &str) -> Chromium {
        self.api(
            "POST",
            "/api/v1/queues",
            json!({"name": "support", "strategy": strategy, "ring_timeout_ms": 30000,
                   "members": [{"operator": "ivanova", "penalty": 0}]}),
        );
        self.api(
            "POST",
            "/api/v1/numbers",
            json!({"number": number, "queue": "support"}),
        );
        self.caller_pcap();
        let mut chrome = self.browser();
        chrome.click("#work");
        chrome.wait(
            "document.getElementById('operator-state').dataset.state === 'ready'",
            10000,
        );
        chrome
    }

    /// sipp's G.711 sample, which the caller scenarios play, in the server's directory.
    fn caller_pcap(&self) {
        std::fs::copy(
            "/usr/share/sip-tester/g711a.pcap",
            self.server.dir.join("g711a.pcap"),
        )
        .expect("sipp's sample pcap (package sip-tester)");
    }

    /// SIP.js instead of JsSIP, signed in as the operator and registered.
    fn sipjs(&self) -> Chromium {
        let mut chromium = Chromium::start(&self.server.dir);
        chromium.run(json!({"cmd": "open-sipjs", "page": "op",
            "url": format!("http://127.0.0.1:{}/healthz", self.server.http_port),
            "login": "ivanova", "password": "ivanova-web-1"}));
        chromium
    }

    /// The newest call's recording, once it is finished.
    fn recording(&self) -> Vec<i16> {
        let path = wait_for("the recording", Duration::from_secs(10), || {
            let calls = self.api("GET", "/api/v1/calls", Value::Null);
            calls[0]["recording"]
                .as_str()
                .map(|p| self.server.dir.join(p))
        });
        let mut wav = hound::WavReader::open(&path).expect("a readable WAV");
        wav.samples::<i16>().map(Result::unwrap).collect()
    }
}

/// Power of `hz` in one channel of 8 kHz stereo samples (Goertzel).
fn power_at(samples: &[i16], channel: usize, hz: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * hz / 8000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for frame in samples.chunks(2) {
        let s0 = f64::from(frame[channel]) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - k * s1 * s2
}

/// The operator's channel carries the microphone's tone, not just energy.
fn assert_tone(samples: &[i16], channel: usize) {
    let tone = power_at(samples, channel, TONE_HZ);
    for other in [600.0, 1400.0, 2000.0] {
        let off = power_at(samples, channel, other);
        assert!(
            tone > 20.0 * off,
            "channel {channel}: {TONE_HZ} Hz power {tone:e} is not well above {other} Hz {off:e}"
        );
    }
}

/// sipp calls `number` from the provider with its pcap for 4 s; the browser answers and
/// WebRTC's own counters say the caller is heard; the caller then hangs up.
/// sipp calls `number` from the provider, playing its pcap and hanging up `hold_ms` after
/// the answer; returns once the browser rings.
fn provider_calls(o: &Office, chrome: &mut Chromium, number: &str, hold_ms: u64) -> Child {
    let (port, hold) = (o.provider_port.to_string(), hold_ms.to_string());
    let args = [
        "-s",
        number,
        "-p",
        &port,
        "-m",
        "1",
        "-d",
        &hold,
        "-recv_timeout",
        "20s",
    ];
    let caller = sipp_spawn(&o.server, "call_uac.xml", &args);
    chrome.wait("window.kolokol.ringing()", 10000);
    caller
}

fn provider_call_answered_in_browser(o: &Office, chrome: &mut Chromium, number: &str) {
    let caller = provider_calls(o, chrome, number, 4000);
    chrome.click("#answer");
    chrome.wait("window.kolokol.inCall()", 10000);
    chrome.hears("kolokol");
    let (ok, out) = sipp_wait(caller);
    assert!(ok, "the caller's call completes: {out}");
}

#[test]
fn a_browser_operator_answers_a_provider_call_and_both_are_heard() {
    let o = Office::new();
    o.caller_pcap();
    let mut chrome = o.browser();
    chrome.raw_microphone();
    provider_call_answered_in_browser(&o, &mut chrome, DID);
    chrome.wait("!window.kolokol.inCall()", 10000);

    let samples = o.recording();
    // Right: the operator (callee) — the browser microphone's tone, through DTLS-SRTP.
    assert_tone(&samples, 1);
    // Left: the caller's pcap.
    assert!(
        samples.chunks(2).filter(|f| f[0] != 0).count() > 8000,
        "the caller's channel carries the pcap"
    );
}

/// A phone behind the trunk runs `scenario` (with -rtp_echo); the signed-in browser dials
/// it and the call connects.
fn call_from_browser(o: &Office, scenario: &str, extra: &[&str]) -> (Chromium, Child) {
    let trunk = o.trunk_port.to_string();
    let mut args = vec!["-p", &trunk, "-m", "1", "-rtp_echo", "-recv_timeout", "30s"];
    args.extend_from_slice(extra);
    let callee = sipp_spawn(&o.server, scenario, &args);
    let mut chrome = o.browser();
    chrome.run(json!({"cmd": "fill", "page": "op", "selector": "#number", "value": "74950001122"}));
    chrome.click("#call");
    chrome.wait("window.kolokol.inCall()", 10000);
    (chrome, callee)
}

#[test]
fn a_browser_operator_calls_out_hangs_up_and_leaving_the_page_unregisters() {
    let o = Office::new();
    let (mut chrome, callee) = call_from_browser(&o, "call_uas.xml", &[]);
    // sipp echoes the browser's own tone back: audio went out and came back.
    chrome.hears("kolokol");
    chrome.click("#hangup");
    let (ok, out) = sipp_wait(callee);
    assert!(ok, "the callee gets the browser's BYE: {out}");
    assert_eq!(chrome.eval("window.kolokol.inCall()"), false);
    let call = &o.api("GET", "/api/v1/calls", Value::Null)[0];
    assert_eq!(call["to"], "74950001122", "{call}");
    assert_eq!(call["user"], "ivanova", "{call}");

    // Leaving the page unregisters the browser at once.
    let token = o.server.admin_token();
    o.server
        .wait_registrations(&token, Duration::from_secs(5), |v| {
            v.as_array().unwrap().len() == 1
        });
    chrome.run(json!({"cmd": "close", "page": "op"}));
    o.server
        .wait_registrations(&token, Duration::from_secs(5), |v| {
            v.as_array().unwrap().is_empty()
        });
}

#[test]
fn a_queue_offers_its_call_to_the_operator_in_the_browser() {
    let o = Office::new();
    let mut chrome = o.support_queue("5550401", "longest_idle");
    provider_call_answered_in_browser(&o, &mut chrome, "5550401");
    let events = o.queue_events(&["entered", "offered", "answered", "completed"]);
    let answered = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "answered")
        .unwrap();
    assert_eq!(answered["operator"], "ivanova", "{answered}");
}

#[test]
fn the_browser_holds_and_resumes_and_the_far_phone_follows() {
    let o = Office::new();
    // The far phone checks kolokol's re-INVITEs: sendonly, then sendrecv.
    let (mut chrome, callee) = call_from_browser(&o, "uas_held.xml", &[]);
    chrome.click("#hold");
    chrome.wait(
        "document.getElementById('line').dataset.state === 'held'",
        10000,
    );
    chrome.click("#hold");
    chrome.wait(
        "document.getElementById('line').dataset.state === 'talking'",
        10000,
    );
    // Audio flows again after the resume: the echo comes back.
    let before = chrome.eval("window.kolokol.inboundAudio().then(a => a ? a.packetsReceived : 0)");
    chrome.wait(
        &format!("window.kolokol.inboundAudio().then(a => a && a.packetsReceived > {before} + 25)"),
        10000,
    );
    chrome.click("#hangup");
    let (ok, out) = sipp_wait(callee);
    assert!(ok, "the far phone saw hold, resume and the BYE: {out}");
}

#[test]
fn the_far_phone_holds_and_resumes_the_browser() {
    let o = Office::new();
    // The phone answers, holds (re-INVITE sendonly), resumes and hangs up, 1.5 s apart:
    // kolokol re-offers WebRTC to the browser each time.
    let (mut chrome, callee) = call_from_browser(&o, "uas_hold.xml", &["-d", "1500"]);
    chrome.wait(
        "document.getElementById('line').dataset.state === 'held'",
        10000,
    );
    chrome.wait(
        "document.getElementById('line').dataset.state === 'talking'",
        10000,
    );
    let (ok, out) = sipp_wait(callee);
    assert!(ok, "the phone's hold and resume were answered: {out}");
    chrome.wait("!window.kolokol.inCall()", 10000);
}

#[test]
fn closing_the_page_while_a_queue_call_rings_moves_the_call_on() {
    let o = Office::new();
    let mut chrome = o.support_queue("5550402", "linear");
    // The caller waits in the queue (answered with music) for 8 s, then hangs up.
    let caller = provider_calls(&o, &mut chrome, "5550402", 8000);
    chrome.run(json!({"cmd": "close", "page": "op"}));
    // The operator is unreachable at once: not left ringing, the offer counted as missed.
    let operator = wait_for("the operator to drop out", Duration::from_secs(5), || {
        let ops = o.api("GET", "/api/v1/operators", Value::Null);
        let me = ops
            .as_array()?
            .iter()
            .find(|op| op["id"] == "ivanova")?
            .clone();
        (me["registered"] == false && me["state"] != "ringing").then_some(me)
    });
    assert_eq!(operator["missed"], 1, "{operator}");
    let (ok, out) = sipp_wait(caller);
    assert!(
        ok,
        "the caller stays in the queue until they hang up: {out}"
    );
    let events = o.queue_events(&["offered", "abandoned"]);
    assert!(
        !events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "answered"),
        "{events}"
    );
}

/// A phone behind the trunk made of two sockets: answers kolokol's INVITE with PCMU and
/// telephone-event 101, and keeps what RTP arrives.
struct RawPhone {
    sip: std::net::UdpSocket,
    rtp: std::net::UdpSocket,
}

impl RawPhone {
    fn new(o: &Office) -> RawPhone {
        let sip = std::net::UdpSocket::bind(("127.0.0.1", o.trunk_port)).unwrap();
        sip.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let rtp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rtp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        RawPhone { sip, rtp }
    }

    fn recv(&self) -> (String, std::net::SocketAddr) {
        let mut buf = [0u8; 8192];
        let (n, from) = self.sip.recv_from(&mut buf).expect("SIP from kolokol");
        (String::from_utf8_lossy(&buf[..n]).into_owned(), from)
    }

    /// Waits for the INVITE and answers it.
    fn pick_up(&self) -> String {
        let (invite, from) = loop {
            let (m, from) = self.recv();
            if m.starts_with("INVITE ") {
                break (m, from);
            }
        };
        let sdp = format!(
            "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n",
            self.rtp.local_addr().unwrap().port()
        );
        let mut ok = String::from("SIP/2.0 200 OK\r\n");
        for line in invite.lines() {
            let name = line.split(':').next().unwrap_or_default();
            if ["Via", "From", "Call-ID", "CSeq"]
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
            {
                ok.push_str(line);
                ok.push_str("\r\n");
            }
            if name.eq_ignore_ascii_case("To") {
                ok.push_str(&format!("{line};tag=raw\r\n"));
            }
        }
        ok.push_str(&format!(
            "Contact: <sip:phone@127.0.0.1:{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            self.sip.local_addr().unwrap().port(),
            sdp.len()
        ));
        self.sip.send_to(ok.as_bytes(), from).unwrap();
        invite
    }

    /// Waits for the first audio packet: the media path through the gateway is up.
    fn hears_audio(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 2000];
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no audio reached the phone"
            );
            if let Ok((n, _)) = self.rtp.recv_from(&mut buf) {
                if n > 12 && buf[1] & 0x7F == 0 {
                    return;
                }
            }
        }
    }

    /// RFC 4733 events received (event code of each packet), waiting until `until` holds.
    fn events_until(&self, until: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut events = Vec::new();
        let mut types = std::collections::BTreeMap::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 2000];
        while !until(&events) {
            assert!(
                std::time::Instant::now() < deadline,
                "DTMF events so far: {events:?}; packets by payload type: {types:?}"
            );
            if let Ok((n, _)) = self.rtp.recv_from(&mut buf) {
                *types.entry(buf[1] & 0x7F).or_insert(0) += 1;
                if n >= 16 && buf[1] & 0x7F == 101 {
                    events.push(buf[12]);
                }
            }
        }
        events
    }
}

#[test]
fn dtmf_from_the_dialpad_reaches_the_far_phone_as_rfc_4733() {
    let o = Office::new();
    let phone = RawPhone::new(&o);
    let mut chrome = o.browser();
    chrome.run(json!({"cmd": "fill", "page": "op", "selector": "#number", "value": "74950001122"}));
    chrome.click("#call");
    phone.pick_up();
    chrome.wait("window.kolokol.inCall()", 10000);
    phone.hears_audio();
    // Keys 1..9 are the dialpad's first nine buttons: press 5, then 9.
    chrome.click("#dialpad button:nth-child(5)");
    let events = phone.events_until(|e| e.contains(&5));
    chrome.click("#dialpad button:nth-child(9)");
    let later = phone.events_until(|e| e.contains(&9));
    assert!(
        events.iter().chain(&later).all(|e| *e == 5 || *e == 9),
        "only the pressed keys: {events:?} {later:?}"
    );
    chrome.click("#hangup");
    while !phone.recv().0.starts_with("BYE ") {}
}

#[test]
fn a_browser_and_a_baresip_desk_phone_hear_each_other() {
    // libre 1.0 (baresip) takes only MD5 challenges.
    let o = Office::with(&[("KOLOKOL_REGISTRAR__DIGEST_ALGORITHMS", r#"["MD5"]"#)]);
    o.api(
        "POST",
        "/api/v1/users",
        json!({"login": "petrov", "name": "Пётр Петров",
        "extension": "1003", "sip_password": "desk-phone-1", "password": "petrov-web-1"}),
    );
    let token = o.server.admin_token();
    let desk = Baresip::start(
        &o.server,
        &token,
        ("1003", "desk-phone-1"),
        free_port(),
        &[],
    );
    let mut chrome = o.browser();
    chrome.raw_microphone();
    chrome.run(json!({"cmd": "fill", "page": "op", "selector": "#number", "value": "1003"}));
    chrome.click("#call");
    chrome.wait("window.kolokol.inCall()", 10000);
    // baresip's 440 Hz reaches the browser…
    chrome.wait(
        "window.kolokol.inboundAudio().then(a => a && a.packetsReceived > 100 && a.totalAudioEnergy > 0.01)",
        10000,
    );
    chrome.click("#hangup");
    chrome.wait("!window.kolokol.inCall()", 10000);
    // …and the recording has both: the browser's 1 kHz (caller, left), baresip's 440 Hz.
    let samples = o.recording();
    assert_tone(&samples, 0);
    assert!(
        power_at(&samples, 1, 440.0) > 20.0 * power_at(&samples, 1, 1000.0),
        "the desk phone's channel carries its 440 Hz: {}",
        desk.log()
    );
}

#[test]
fn sip_js_as_a_second_client_answers_calls_out_and_hangs_up() {
    let o = Office::new();
    o.caller_pcap();
    let mut sipjs = o.sipjs();
    // A provider call: SIP.js answers and hears the caller.
    let port = o.provider_port.to_string();
    let args = [
        "-s",
        DID,
        "-p",
        &port,
        "-m",
        "1",
        "-d",
        "3000",
        "-recv_timeout",
        "20s",
    ];
    let caller = sipp_spawn(&o.server, "call_uac.xml", &args);
    sipjs.wait("window.sipjs.ringing()", 10000);
    sipjs.eval("window.sipjs.answer()");
    sipjs.wait("window.sipjs.inCall()", 10000);
    sipjs.hears("sipjs");
    let (ok, out) = sipp_wait(caller);
    assert!(ok, "the caller's call completes: {out}");
    sipjs.wait("!window.sipjs.inCall()", 10000);
    // A call out through the trunk to an echoing sipp phone; SIP.js hangs up.
    let trunk = o.trunk_port.to_string();
    let args = ["-p", &trunk, "-m", "1", "-rtp_echo", "-recv_timeout", "30s"];
    let callee = sipp_spawn(&o.server, "call_uas.xml", &args);
    sipjs.eval("window.sipjs.call('74950001122')");
    sipjs.wait("window.sipjs.inCall()", 10000);
    sipjs.hears("sipjs");
    sipjs.eval("window.sipjs.hangup()");
    let (ok, out) = sipp_wait(callee);
    assert!(ok, "the callee gets SIP.js's BYE: {out}");
}

/// Where the browser tests leave their screenshots (README: "Screens").
fn screenshot(chrome: &mut Chromium, name: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    chrome.run(json!({"cmd": "screenshot", "page": "op", "path": path}));
}

/// No serious accessibility violations and nothing in the console so far.
fn clean(chrome: &mut Chromium) {
    let violations = chrome.run(json!({"cmd": "axe", "page": "op"}));
    assert_eq!(violations, json!([]), "axe-core found serious violations");
    let complaints = chrome.run(json!({"cmd": "complaints", "page": "op"}));
    assert_eq!(complaints, json!([]), "the console had errors or warnings");
}

/// The operator's working day in the workspace (KAW 12): in work with the timer running,
/// a queue call from an unknown number opens the card just made for it while the phone
/// still rings, answered with audio; the History window finds the call with its
/// recording; a pause with a reason; the same workspace in English. Screenshots of each.
#[test]
fn the_workspace_pops_the_callers_card_while_the_queue_call_rings() {
    let o = Office::new();
    // A card form: the caller's number lands in its phone field.
    for (name, latin, kind, side) in [
        ("Имя", "name", "text", "left"),
        ("Телефон", "phone", "phone", "left"),
        ("Комментарий", "comment", "large_text", "right"),
    ] {
        o.api(
            "POST",
            "/api/v1/fields",
            json!({"name": name, "latin": latin, "kind": kind, "side": side, "in_table": true}),
        );
    }
    o.api(
        "POST",
        "/api/v1/groups",
        json!({"name": "Операторы", "members": ["ivanova"],
               "access": {"name": "edit", "phone": "edit", "comment": "edit"}}),
    );
    o.api(
        "POST",
        "/api/v1/partners",
        json!({"values": {"name": "ООО Ромашка", "phone": "+74950001122"}}),
    );
    let mut chrome = o.support_queue("5550403", "linear");
    // The state's timer runs.
    let clock = "document.querySelector('#operator-state .clock').textContent";
    let first = chrome.eval(clock);
    chrome.wait(&format!("{clock} !== {first}"), 5000);
    screenshot(&mut chrome, "workspace-ru");

    let caller = provider_calls(&o, &mut chrome, "5550403", 4000);
    // While it rings: the card tab of this very call is open, made for the new number.
    chrome.wait(
        "window.kolokol.ringing() && document.querySelector('article.card')?.dataset.call === window.kolokol.callId()",
        10000,
    );
    let call_id = chrome.eval("window.kolokol.callId()");
    let partner = chrome.eval("Number(document.querySelector('article.card').dataset.partner)");
    let card = o.api(
        "GET",
        &format!("/api/v1/calls/{}/partner", call_id.as_str().unwrap()),
        Value::Null,
    );
    assert_eq!(card["id"], partner, "the card shown is the call's card");
    screenshot(&mut chrome, "card-while-ringing-ru");
    chrome.click("#answer");
    chrome.wait("window.kolokol.inCall()", 10000);
    chrome.hears("kolokol");
    let (ok, out) = sipp_wait(caller);
    assert!(ok, "the caller's call completes: {out}");
    chrome.wait("!window.kolokol.inCall()", 10000);

    // History finds the call, with its recording to play.
    let call_id = call_id.as_str().unwrap();
    wait_for("the call's recording", Duration::from_secs(10), || {
        let page = o.api("GET", "/api/v1/reports/calls", Value::Null);
        let rows = page["rows"].as_array()?.clone();
        rows.iter()
            .any(|r| r["id"] == call_id && r["recording"].is_string())
            .then_some(())
    });
    // The card's own call history follows the call to its recording.
    chrome.wait("document.querySelector('article.card .calls audio')", 10000);
    chrome.click("#history");
    chrome.click("#history-get");
    chrome.wait(
        &format!("document.querySelector('.history-row[data-call=\"{call_id}\"] audio')"),
        10000,
    );
    screenshot(&mut chrome, "history-ru");
    chrome.run(json!({"cmd": "press", "page": "op", "key": "Escape"}));

    // A pause with its reason.
    chrome.click("#pause");
    chrome.click("input[name=reason][value='Перерыв']");
    chrome.click("#pause-confirm");
    chrome.wait(
        "document.getElementById('operator-state').dataset.state === 'paused' && document.getElementById('operator-state').textContent.includes('Перерыв')",
        10000,
    );
    screenshot(&mut chrome, "paused-ru");
    clean(&mut chrome);

    // English, kept in the user's settings.
    chrome.click("#settings");
    chrome.run(
        json!({"cmd": "select", "page": "op", "selector": "select[name=language]", "value": "en"}),
    );
    chrome.wait(
        "document.getElementById('work')?.textContent.trim() === 'Go to work'",
        5000,
    );
    chrome.run(json!({"cmd": "press", "page": "op", "key": "Escape"}));
    screenshot(&mut chrome, "workspace-en");
    clean(&mut chrome);
}

/// The sign-in screen speaks the browser's language before anyone signs in.
#[test]
fn the_sign_in_screen_speaks_the_browsers_language() {
    let o = Office::new();
    let mut chrome = Chromium::start(&o.server.dir);
    for (locale, title, name) in [
        ("en-US", "Sign in to kolokol", "login-en"),
        ("ru-RU", "Вход в kolokol", "login-ru"),
    ] {
        chrome.run(
            json!({"cmd": "goto", "page": "op", "locale": locale, "ready": "form#login",
            "url": format!("http://127.0.0.1:{}/", o.server.http_port)}),
        );
        assert_eq!(
            chrome.eval("document.querySelector('form#login h1').textContent"),
            title
        );
        screenshot(&mut chrome, name);
        clean(&mut chrome);
        chrome.run(json!({"cmd": "close", "page": "op"}));
    }
}
