//! Calls end to end: sipp phones and a sipp "provider" talk through the kolokol binary;
//! the recordings, the call rows and the event log are checked from outside.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const BOB_PASSWORD: &str = "bob-secret-1";
const CAROL_PASSWORD: &str = "carol-secret-1";
/// The DID the provider delivers to Bob.
const DID: &str = "5550100";
/// sipp's G.711 A-law sample: 236 packets, 7.05 s from first to last.
const PCAP_MS: u64 = 7050;

struct Office {
    server: Server,
    token: String,
    /// The source port of the provider's calls (the trunk is recognised by it).
    provider_port: u16,
    /// Where Bob's phone listens.
    bob_port: u16,
    /// Where the provider takes calls that leave through the trunk.
    trunk_port: u16,
}

impl Office {
    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    fn api(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let auth = self.auth();
        let (status, _, body) = self
            .server
            .http(method, path, &[("Authorization", &auth)], body);
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn calls(&self) -> Vec<Value> {
        let (status, v) = self.api("GET", "/api/v1/calls", "");
        assert_eq!(status, 200, "{v}");
        v.as_array().cloned().unwrap_or_default()
    }

    fn events(&self, call: &str) -> Vec<Value> {
        let (status, v) = self.api("GET", &format!("/api/v1/calls/{call}/events"), "");
        assert_eq!(status, 200, "{v}");
        v.as_array().cloned().unwrap_or_default()
    }

    /// Bob's phone registers from its port (then sipp exits and a callee scenario binds it).
    fn register_bob(&self) {
        let port = self.bob_port.to_string();
        let (ok, out) = sipp_as(
            &self.server,
            "register.xml",
            "1002",
            BOB_PASSWORD,
            &["-p", &port],
        );
        assert!(ok, "bob registers: {out}");
    }

    /// A callee scenario on Bob's port.
    fn bob(&self, scenario: &str, extra: &[&str]) -> std::process::Child {
        self.phone(self.bob_port, scenario, extra)
    }

    /// A phone's scenario (one call) on `port`, in the background.
    fn phone(&self, port: u16, scenario: &str, extra: &[&str]) -> std::process::Child {
        let port = port.to_string();
        let media = free_port().to_string();
        let mut args = vec![
            "-p",
            port.as_str(),
            "-mp",
            media.as_str(),
            "-m",
            "1",
            "-recv_timeout",
            "30s",
            "-timeout",
            "60s",
        ];
        args.extend_from_slice(extra);
        sipp_spawn(&self.server, scenario, &args)
    }

    /// A call from the provider to the DID.
    fn provider_call(&self, scenario: &str, extra: &[&str]) -> (bool, String) {
        let mut args = vec!["-s", DID];
        args.extend_from_slice(extra);
        sipp_wait(self.phone(self.provider_port, scenario, &args))
    }

    /// A call's events once its recording is closed, and the recording's samples
    /// (interleaved stereo).
    fn finished_recording(&self, call: &Value) -> (Vec<Value>, Vec<i16>) {
        let id = call["id"].as_str().unwrap().to_string();
        let events = wait_for("the recording to close", Duration::from_secs(10), || {
            let e = self.events(&id);
            e.iter()
                .any(|e| e["type"] == "recording_finished")
                .then_some(e)
        });
        let path = self.server.dir.join(call["recording"].as_str().unwrap());
        let mut wav = hound::WavReader::open(&path).unwrap();
        let samples = wav.samples::<i16>().map(Result::unwrap).collect();
        (events, samples)
    }

    /// The newest call, once it has ended.
    fn last_ended_call(&self, count: usize) -> Value {
        wait_for("the call to end", Duration::from_secs(10), || {
            let calls = self.calls();
            (calls.len() == count && !calls[0]["ended_ms"].is_null()).then(|| calls[0].clone())
        })
    }
}

fn office(settings: &[(&str, &str)]) -> Office {
    let server = Server::start(
        &[("1002", BOB_PASSWORD), ("1003", CAROL_PASSWORD)],
        settings,
    );
    let token = server.admin_token();
    let provider_port = free_port();
    let office = Office {
        server,
        token,
        provider_port,
        bob_port: free_port(),
        trunk_port: free_port(),
    };
    let (status, v) = office.api(
        "POST",
        "/api/v1/trunks",
        &format!(r#"{{"name":"provider","address":"127.0.0.1:{}","inbound_ip":"127.0.0.1","inbound_port":{provider_port}}}"#, office.trunk_port),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = office.api(
        "POST",
        "/api/v1/numbers",
        &format!(r#"{{"number":"{DID}","user":"u1002"}}"#),
    );
    assert_eq!(status, 201, "{v}");
    std::fs::copy(
        "/usr/share/sip-tester/g711a.pcap",
        office.server.dir.join("g711a.pcap"),
    )
    .expect("sipp's sample pcap (package sip-tester)");
    office
}

/// Root-mean-square of one channel of interleaved stereo samples between two seconds.
fn rms(samples: &[i16], channel: usize, from_s: f64, to_s: f64) -> f64 {
    let (a, b) = ((from_s * 8000.0) as usize, (to_s * 8000.0) as usize);
    let chunk: Vec<f64> = samples
        .chunks(2)
        .skip(a)
        .take(b - a)
        .map(|f| f64::from(f[channel]))
        .collect();
    (chunk.iter().map(|s| s * s).sum::<f64>() / chunk.len().max(1) as f64).sqrt()
}

#[test]
fn provider_call_to_a_registered_phone_relays_transcodes_and_records() {
    let o = office(&[]);
    o.register_bob();
    // Bob answers PCMU and echoes what he hears; the provider sends PCMA from the pcap.
    let bob = o.bob("call_uas.xml", &["-rtp_echo"]);
    let (ok, out) = o.provider_call("call_uac.xml", &["-d", &PCAP_MS.to_string()]);
    assert!(ok, "the call connects and ends: {out}\n{}", o.server.log());
    let (ok, out) = sipp_wait(bob);
    assert!(ok, "bob's phone: {out}");

    let call = o.last_ended_call(1);
    assert_eq!(call["direction"], "inbound");
    assert_eq!(call["number"], DID);
    assert_eq!(call["trunk"], "provider");
    assert_eq!(call["answered_by"], "u1002");
    assert_eq!(call["end_cause"], "completed");
    let id = call["id"].as_str().unwrap().to_string();
    let events = wait_for(
        "the recording to be closed",
        Duration::from_secs(10),
        || {
            let e = o.events(&id);
            e.iter()
                .any(|e| e["type"] == "recording_finished")
                .then_some(e)
        },
    );
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "offered",
            "ringing",
            "recording_started",
            "answered",
            "ended",
            "recording_finished"
        ]
    );
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=6).collect::<Vec<u64>>(),
        "no gaps in the sequence"
    );

    // The WAV: stereo 8 kHz 16-bit, as long as the audio, both channels carrying it.
    let path = o.server.dir.join(call["recording"].as_str().unwrap());
    assert!(path.to_string_lossy().contains("/recordings/"), "{path:?}");
    let mut wav = hound::WavReader::open(&path).expect("a readable WAV");
    let spec = wav.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
    let seconds = samples.len() as f64 / 2.0 / 8000.0;
    assert!(
        (seconds - PCAP_MS as f64 / 1000.0).abs() < 0.2,
        "recording lasts {seconds:.3} s, the audio {PCAP_MS} ms"
    );
    let (caller, callee) = (rms(&samples, 0, 1.0, 6.0), rms(&samples, 1, 1.0, 6.0));
    assert!(
        caller > 300.0,
        "the caller's channel carries the pcap's audio: rms {caller}"
    );
    assert!(
        callee > 300.0,
        "the callee's channel carries what Bob received and echoed: rms {callee}"
    );

    // The API serves it, whole and by range.
    let auth = o.auth();
    let (status, head, body) = http_raw(
        o.server.http_port,
        "GET",
        &format!("/api/v1/recordings/{id}"),
        &[("Authorization", &auth)],
        "",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: audio/wav"),
        "{head}"
    );
    assert_eq!(body, std::fs::read(&path).unwrap());
    let (status, head, body) = http_raw(
        o.server.http_port,
        "GET",
        &format!("/api/v1/recordings/{id}"),
        &[("Authorization", &auth), ("Range", "bytes=0-43")],
        "",
    )
    .unwrap();
    assert_eq!(status, 206);
    assert!(
        head.contains(&format!(
            "bytes 0-43/{}",
            std::fs::metadata(&path).unwrap().len()
        )),
        "{head}"
    );
    assert_eq!(&body[..4], b"RIFF");
    assert_eq!(body.len(), 44);
    // Nobody else may listen.
    let (status, _, _) = o
        .server
        .http("GET", &format!("/api/v1/recordings/{id}"), &[], "");
    assert_eq!(status, 401);
}

#[test]
fn busy_cancel_no_answer_and_hangup_by_the_callee() {
    let o = office(&[("KOLOKOL_CALLS__RING_TIMEOUT_S", "2")]);
    o.register_bob();

    let bob = o.bob("uas_busy.xml", &[]);
    let (ok, out) = o.provider_call("uac_busy.xml", &[]);
    assert!(ok, "the caller hears 486: {out}");
    assert!(sipp_wait(bob).0);
    assert_eq!(o.last_ended_call(1)["end_cause"], "busy");

    let bob = o.bob("uas_ring.xml", &[]);
    let (ok, out) = o.provider_call("uac_cancel.xml", &[]);
    assert!(ok, "CANCEL before answer: 200 then 487: {out}");
    let (ok, out) = sipp_wait(bob);
    assert!(ok, "bob's phone is cancelled too: {out}");
    assert_eq!(o.last_ended_call(2)["end_cause"], "abandoned");

    let bob = o.bob("uas_ring.xml", &[]);
    let (ok, out) = o.provider_call("uac_noanswer.xml", &[]);
    assert!(ok, "nobody answers: 480 after the ring timeout: {out}");
    let (ok, out) = sipp_wait(bob);
    assert!(ok, "bob's phone stops ringing: {out}");
    let call = o.last_ended_call(3);
    assert_eq!(call["end_cause"], "no_answer");
    assert_eq!(call["end_status"], 480);

    let bob = o.bob("call_uas_hangup.xml", &["-d", "1000"]);
    let (ok, out) = o.provider_call("call_uac_wait_bye.xml", &[]);
    assert!(ok, "the caller gets Bob's BYE: {out}");
    let (ok, out) = sipp_wait(bob);
    assert!(ok, "bob hangs up: {out}");
    let call = o.last_ended_call(4);
    assert_eq!(call["end_cause"], "completed");
    let id = call["id"].as_str().unwrap();
    let ended = o
        .events(id)
        .into_iter()
        .find(|e| e["type"] == "ended")
        .unwrap();
    assert_eq!(ended["by"], "callee");
}

/// The card of the partner whose phone is `digits`, once there is exactly one.
fn card_by_phone(o: &Office, digits: &str) -> Value {
    wait_for(
        "one card with the caller's phone",
        Duration::from_secs(10),
        || {
            let (status, v) = o.api(
                "GET",
                &format!("/api/v1/partners?filter.phone={digits}"),
                "",
            );
            assert_eq!(status, 200, "{v}");
            let rows = v["rows"].as_array().unwrap();
            assert!(rows.len() <= 1, "duplicate cards: {v}");
            rows.first().cloned()
        },
    )
}

/// A partner's call history once it holds `count` calls.
fn partner_calls(o: &Office, partner: &Value, count: usize) -> Value {
    wait_for("the partner's calls", Duration::from_secs(10), || {
        let (status, v) = o.api(
            "GET",
            &format!("/api/v1/partners/{}/calls", partner["id"]),
            "",
        );
        assert_eq!(status, 200, "{v}");
        let n = v["calls"].as_array().unwrap().len();
        assert!(n <= count, "more calls than made: {v}");
        (n == count).then_some(v)
    })
}

#[test]
fn calls_create_and_fill_partner_cards_exactly_once() {
    let mut o = office(&[]);
    let (status, v) = o.api(
        "POST",
        "/api/v1/fields",
        r#"{"name":"Телефон","latin":"phone","kind":"phone","in_table":true}"#,
    );
    assert_eq!(status, 201, "{v}");
    o.register_bob();

    // An unknown caller Bob cannot take: a card with the number, and a missed call.
    let bob = o.bob("uas_busy.xml", &[]);
    let (ok, out) = o.provider_call("uac_busy.xml", &[]);
    assert!(ok, "{out}");
    assert!(sipp_wait(bob).0);
    let card = card_by_phone(&o, "74951112233");
    assert_eq!(card["values"]["phone"], "+74951112233");
    let (_, history) = o.api(
        "GET",
        &format!("/api/v1/partners/{}/history", card["id"]),
        "",
    );
    assert_eq!(
        history.as_array().unwrap().last().unwrap()["action"],
        "created"
    );

    // The same caller again, answered: the same card.
    let bob = o.bob("call_uas_hangup.xml", &["-d", "1000"]);
    let (ok, out) = o.provider_call("call_uac_wait_bye.xml", &[]);
    assert!(ok, "{out}");
    assert!(sipp_wait(bob).0);
    let answered = o.last_ended_call(2);
    let v = partner_calls(&o, &card, 2);
    assert_eq!(
        (v["made"].as_i64(), v["missed"].as_i64()),
        (Some(0), Some(1)),
        "{v}"
    );
    let talk = &v["calls"][0];
    assert_eq!(talk["id"], answered["id"]);
    assert_eq!(talk["direction"], "inbound");
    assert_eq!(talk["operator"], "u1002");
    assert_eq!(talk["number"], "+74951112233");
    assert!(talk["talk_ms"].as_i64().unwrap() >= 500, "{talk}");
    let (status, _, wav) = o.server.http(
        "GET",
        talk["recording"].as_str().unwrap(),
        &[("Authorization", &format!("Bearer {}", o.token))],
        "",
    );
    assert_eq!(status, 200);
    assert!(wav.len() > 44);
    assert_eq!(v["calls"][1]["answered"], false);
    // From a call to its card (what the operator opens while it rings).
    let (status, from_call) = o.api(
        "GET",
        &format!("/api/v1/calls/{}/partner", answered["id"].as_str().unwrap()),
        "",
    );
    assert_eq!(
        (status, &from_call["id"]),
        (200, &card["id"]),
        "{from_call}"
    );
    assert_eq!(from_call["values"]["phone"], "+74951112233");
    let (status, _) = o.api("GET", "/api/v1/calls/no-such-call/partner", "");
    assert_eq!(status, 404);

    // Replaying the log: with the answered call's link gone, a restart links it again, to
    // the same card, once.
    let db = o.server.dir.join("data/kolokol.db");
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(format!(
            "DELETE FROM partner_calls WHERE call_id = '{}'",
            answered["id"].as_str().unwrap()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    o.server.restart();
    let v = partner_calls(&o, &card, 2);
    assert_eq!(v["calls"][0]["id"], answered["id"]);
    assert_eq!(card_by_phone(&o, "74951112233")["id"], card["id"]);

    // Merged into another card, the calls go with it.
    let (status, other) = o.api(
        "POST",
        "/api/v1/partners",
        r#"{"values":{"phone":"+74950000001"}}"#,
    );
    assert_eq!(status, 201, "{other}");
    let (status, v) = o.api(
        "POST",
        "/api/v1/partners/merge",
        &format!(
            r#"{{"survivor":{},"merged":[{}],"values":{{"phone":"+74951112233"}}}}"#,
            other["id"], card["id"]
        ),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(partner_calls(&o, &other, 2)["missed"], 1);
}

#[test]
fn an_unauthenticated_invite_never_reaches_a_trunk() {
    let o = office(&[]);
    let (status, v) = o.api(
        "PUT",
        "/api/v1/users/u1002/calls",
        r#"{"record":true,"trunk_id":1}"#,
    );
    assert_eq!(status, 200, "{v}");
    let invite = |from_port: u16, auth: &str| {
        format!(
            "INVITE sip:84951234567@127.0.0.1:{p} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{from_port};rport;branch=z9hG4bKfraud{from_port}\r\nMax-Forwards: 70\r\nFrom: <sip:1002@127.0.0.1>;tag=f{from_port}\r\nTo: <sip:84951234567@127.0.0.1>\r\nCall-ID: fraud{from_port}@x\r\nCSeq: 1 INVITE\r\n{auth}Content-Type: application/sdp\r\nContent-Length: 0\r\n\r\n",
            p = o.server.sip_port
        )
    };
    let port = free_port();
    let reply = udp_exchange_from(
        port,
        o.server.sip_addr(),
        invite(port, "").as_bytes(),
        Duration::from_secs(5),
    )
    .expect("an answer");
    assert_eq!(status_of(&reply), Some(407), "{reply}");
    assert!(reply.contains("Proxy-Authenticate: Digest"), "{reply}");
    // Made-up credentials are refused.
    let port = free_port();
    let forged = "Proxy-Authorization: Digest username=\"1002\", realm=\"kolokol\", nonce=\"bogus\", uri=\"sip:84951234567@127.0.0.1\", response=\"00000000000000000000000000000000\"\r\n";
    let reply = udp_exchange_from(
        port,
        o.server.sip_addr(),
        invite(port, forged).as_bytes(),
        Duration::from_secs(5),
    )
    .expect("an answer");
    assert_eq!(status_of(&reply), Some(403), "{reply}");
    assert!(o.calls().is_empty(), "no call was placed");
}

#[test]
fn kill_9_during_50_calls_loses_no_event_and_no_recording() {
    const CALLS: usize = 50;
    let mut o = office(&[]);
    o.register_bob();
    let port = o.bob_port.to_string();
    let media = free_port().to_string();
    let n = CALLS.to_string();
    let bob = sipp_spawn(
        &o.server,
        "call_uas.xml",
        &[
            "-p",
            &port,
            "-mp",
            &media,
            "-m",
            &n,
            "-rtp_echo",
            "-recv_timeout",
            "120s",
            "-timeout",
            "120s",
        ],
    );
    let pport = o.provider_port.to_string();
    let pmedia = free_port().to_string();
    let provider = sipp_spawn(
        &o.server,
        "call_uac.xml",
        &[
            "-s",
            DID,
            "-p",
            &pport,
            "-mp",
            &pmedia,
            "-m",
            &n,
            "-l",
            &n,
            "-r",
            "25",
            "-d",
            "60000",
            "-recv_timeout",
            "120s",
            "-timeout",
            "120s",
        ],
    );
    let calls = wait_for("50 answered calls", Duration::from_secs(30), || {
        let calls = o.calls();
        (calls.len() == CALLS && calls.iter().all(|c| !c["answered_ms"].is_null())).then_some(calls)
    });
    // Each recording has been flushed at least once (a WAV header and some audio on disk).
    let paths: Vec<std::path::PathBuf> = calls
        .iter()
        .map(|c| {
            o.server
                .dir
                .join(c["recording"].as_str().expect("recorded"))
        })
        .collect();
    // Each recording has at least a second of audio on disk (flushed once a second).
    let sizes: Vec<u64> = wait_for("recordings on disk", Duration::from_secs(10), || {
        let sizes: Vec<u64> = paths
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .collect();
        sizes.iter().all(|s| *s >= 44 + 32_000).then_some(sizes)
    });
    o.server.restart(); // SIGKILL, then start again on the same data
    for mut child in [bob, provider] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let after = o.calls();
    assert_eq!(after.len(), CALLS);
    for c in &after {
        assert_eq!(c["end_cause"], "interrupted", "{c}");
        let id = c["id"].as_str().unwrap();
        let kinds: Vec<String> = o
            .events(id)
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect();
        for k in [
            "offered",
            "ringing",
            "recording_started",
            "answered",
            "ended",
        ] {
            assert!(kinds.iter().any(|x| x == k), "{id} lost {k}: {kinds:?}");
        }
    }
    for (p, size) in paths.iter().zip(sizes) {
        let out = Command::new("sox").arg("--i").arg(p).output().expect("sox");
        let info = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{p:?} unreadable: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(info.contains("Channels       : 2"), "{info}");
        let wav = hound::WavReader::open(p).expect("repaired WAV opens");
        // Nothing that was on disk before the crash is lost (4 bytes a stereo frame).
        assert!(
            44 + 4 * u64::from(wav.duration()) + 4 > size,
            "{p:?} keeps its audio: {} frames, {size} bytes before the crash",
            wav.duration()
        );
    }
}

#[test]
fn two_users_talk_through_kolokol_over_udp_and_tcp() {
    let o = office(&[]);
    o.server.cli(&[
        "user",
        "add",
        "--login",
        "alice",
        "--name",
        "Alice",
        "--extension",
        "1001",
        "--sip-password",
        "alice-secret",
    ]);
    // The CLI wrote to the database; a restart makes the running server read the new user.
    let mut o = o;
    o.server.restart();
    o.register_bob();
    for (n, transport) in [(1, "u1"), (2, "t1")] {
        let bob = o.bob("call_uas.xml", &["-rtp_echo"]);
        let media = free_port().to_string();
        let (ok, out) = sipp(
            &o.server,
            "call_uac_auth.xml",
            &[
                "-s",
                "1002",
                "-au",
                "1001",
                "-ap",
                "alice-secret",
                "-t",
                transport,
                "-mp",
                &media,
                "-m",
                "1",
                "-d",
                "2000",
                "-recv_timeout",
                "30s",
            ],
        );
        assert!(
            ok,
            "alice calls bob over {transport}: {out}\n{}",
            o.server.log()
        );
        assert!(sipp_wait(bob).0);
        let call = o.last_ended_call(n);
        assert_eq!(call["direction"], "internal");
        assert_eq!(call["user"], "alice");
        assert_eq!(call["answered_by"], "u1002");
        assert_eq!(call["end_cause"], "completed");
        let (_, samples) = o.finished_recording(&call);
        assert!(
            rms(&samples, 0, 0.5, 1.5) > 300.0,
            "alice is heard over {transport}"
        );
        assert!(
            rms(&samples, 1, 0.5, 1.5) > 300.0,
            "bob is heard over {transport}"
        );
    }
}

#[test]
fn sigterm_drains_refuses_new_calls_then_ends_running_ones_cleanly() {
    let o = office(&[("KOLOKOL_SHUTDOWN__DRAIN_S", "2")]);
    o.register_bob();
    let bob = o.bob("call_uas.xml", &["-rtp_echo"]);
    let port = o.provider_port.to_string();
    let media = free_port().to_string();
    let caller = sipp_spawn(
        &o.server,
        "call_uac_wait_bye.xml",
        &[
            "-s",
            DID,
            "-p",
            &port,
            "-mp",
            &media,
            "-m",
            "1",
            "-recv_timeout",
            "30s",
            "-timeout",
            "60s",
        ],
    );
    wait_for("the call to be answered", Duration::from_secs(10), || {
        o.calls()
            .first()
            .filter(|c| !c["answered_ms"].is_null())
            .cloned()
    });
    let sip = o.server.sip_addr();
    let sip_port = o.server.sip_port;
    // Stop in the background; meanwhile a new call is refused with 503 and Retry-After.
    let log_dir = o.server.dir.clone();
    let stopper = std::thread::spawn(move || {
        let mut server = o;
        let clean = server.server.terminate(Duration::from_secs(20));
        (server, clean)
    });
    let refused = wait_for("a 503 while draining", Duration::from_secs(5), || {
        let from = free_port();
        let invite = format!(
            "INVITE sip:{DID}@127.0.0.1:{sip_port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{from};rport;branch=z9hG4bKlate{from}\r\nMax-Forwards: 70\r\nFrom: <sip:7495@127.0.0.1>;tag=l{from}\r\nTo: <sip:{DID}@127.0.0.1>\r\nCall-ID: late{from}@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let reply = udp_exchange_from(from, sip, invite.as_bytes(), Duration::from_millis(500))?;
        (status_of(&reply) == Some(503)).then_some(reply)
    });
    assert!(refused.contains("Retry-After: "), "{refused}");
    let (caller_ok, out) = sipp_wait(caller);
    assert!(
        caller_ok,
        "the running call is ended with BYE at the deadline: {out}"
    );
    assert!(sipp_wait(bob).0, "bob gets BYE too");
    let (mut o, clean) = stopper.join().unwrap();
    assert!(
        clean,
        "exit status 0: {}",
        std::fs::read_to_string(log_dir.join("server.log")).unwrap_or_default()
    );
    o.server.start_again();
    let call = o.calls().remove(0);
    assert_eq!(call["end_cause"], "shutdown");
    let kinds: Vec<String> = o
        .events(call["id"].as_str().unwrap())
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("recording_finished"),
        "{kinds:?}"
    );
}

#[test]
fn blind_transfer_moves_the_caller_to_a_third_phone_in_the_same_recording() {
    let o = office(&[]);
    o.register_bob();
    // Carol's phone (1003) registers, then answers and echoes what it hears.
    let carol_port = free_port();
    let (ok, out) = sipp_as(
        &o.server,
        "register.xml",
        "1003",
        CAROL_PASSWORD,
        &["-p", &carol_port.to_string()],
    );
    assert!(ok, "carol registers: {out}");
    let carol = o.phone(carol_port, "call_uas.xml", &["-rtp_echo"]);
    // Bob answers silently and transfers the caller to 1003 after a second.
    let bob = o.bob("uas_refer.xml", &["-d", "1000", "-key", "target", "1003"]);
    let (ok, out) = o.provider_call("call_uac.xml", &["-d", "8000"]);
    assert!(
        ok,
        "the caller's call goes on to the end: {out}\n{}",
        o.server.log()
    );
    let (ok, out) = sipp_wait(bob);
    assert!(ok, "bob: 202, NOTIFY 100 and 200, then BYE: {out}");
    let (ok, out) = sipp_wait(carol);
    assert!(ok, "carol answers and gets the caller's BYE: {out}");

    let call = o.last_ended_call(1);
    assert_eq!(call["answered_by"], "u1002");
    assert_eq!(call["end_cause"], "completed");
    let (events, samples) = o.finished_recording(&call);
    let transferred: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "transferred")
        .collect();
    assert_eq!(transferred.len(), 1, "{events:?}");
    assert_eq!(transferred[0]["to"], "u1003");
    assert_eq!(transferred[0]["attended"], false);
    assert_eq!(transferred[0]["leg"], "callee");
    // One recording: the caller throughout on the left; on the right Bob's silence, then
    // Carol echoing the caller.
    assert!(rms(&samples, 0, 0.2, 6.5) > 300.0, "the caller is heard");
    assert!(rms(&samples, 1, 0.1, 0.8) < 30.0, "bob said nothing");
    assert!(
        rms(&samples, 1, 2.5, 6.5) > 300.0,
        "carol is heard in the same recording after the transfer"
    );
}

/// Both channels of a finished call's recording carry sound between `from` and `to`.
fn assert_two_way_audio(o: &Office, call: &Value, from: f64, to: f64) {
    let (_, samples) = o.finished_recording(call);
    assert!(rms(&samples, 0, from, to) > 300.0, "the caller is heard");
    assert!(rms(&samples, 1, from, to) > 300.0, "the callee is heard");
}

#[test]
fn baresip_desk_phone_answers_hears_dtmf_and_calls_out_through_the_trunk() {
    // baresip 1.0 (libre) rejects a 401 outright when any challenge in it is not MD5.
    let o = office(&[("KOLOKOL_REGISTRAR__DIGEST_ALGORITHMS", r#"["MD5"]"#)]);
    let (status, v) = o.api(
        "PUT",
        "/api/v1/users/u1002/calls",
        r#"{"record":true,"trunk_id":1}"#,
    );
    assert_eq!(status, 200, "{v}");
    let phone = Baresip::start(&o.server, &o.token, ("1002", BOB_PASSWORD), o.bob_port, &[]);
    let (ok, out) = o.provider_call("call_uac.xml", &["-d", "3000"]);
    assert!(
        ok,
        "baresip answers the provider's call: {out}\n{}",
        o.server.log()
    );
    let call = o.last_ended_call(1);
    assert_eq!(call["answered_by"], "u1002");
    assert_eq!(call["end_cause"], "completed");
    assert_two_way_audio(&o, &call, 0.5, 2.5);

    // The caller presses 9 (RFC 4733): the phone hears the key.
    std::fs::copy(
        "/usr/share/sip-tester/dtmf_2833_9.pcap",
        o.server.dir.join("dtmf_2833_9.pcap"),
    )
    .unwrap();
    let (ok, out) = o.provider_call("call_uac_dtmf.xml", &["-d", "1500"]);
    assert!(ok, "{out}");
    wait_for("the phone to hear the key", Duration::from_secs(5), || {
        phone.log().contains("received event: '9'").then_some(())
    });
    drop(phone);

    // Bob dials an outside number: it leaves through the trunk to the provider, whose
    // phone echoes the tone and hangs up after two seconds.
    let provider = o.phone(
        o.trunk_port,
        "call_uas_hangup.xml",
        &["-rtp_echo", "-d", "2000"],
    );
    let _phone = Baresip::start(
        &o.server,
        &o.token,
        ("1002", BOB_PASSWORD),
        o.bob_port,
        &["/dial 74950001122"],
    );
    let (ok, out) = sipp_wait(provider);
    assert!(ok, "the provider gets the call: {out}\n{}", o.server.log());
    let call = o.last_ended_call(3);
    assert_eq!(call["direction"], "outbound");
    assert_eq!(call["user"], "u1002");
    assert_eq!(call["to"], "74950001122");
    assert_eq!(call["end_cause"], "completed");
    assert_two_way_audio(&o, &call, 0.5, 1.8);
}

#[test]
fn kolokol_registers_with_a_provider_that_asks_for_digest() {
    let o = office(&[]);
    let port = free_port();
    let provider = o.phone(port, "provider_register.xml", &[]);
    let (status, v) = o.api(
        "POST",
        "/api/v1/trunks",
        &format!(r#"{{"name":"registrar","address":"127.0.0.1:{port}","username":"kolokol-acc","password":"prov-secret","register":true}}"#),
    );
    assert_eq!(status, 201, "{v}");
    let (ok, out) = sipp_wait(provider);
    assert!(ok, "challenged, then answered correctly: {out}");
    let trunk = wait_for(
        "the registration to be granted",
        Duration::from_secs(10),
        || {
            let (_, v) = o.api("GET", "/api/v1/trunks", "");
            v.as_array()?
                .iter()
                .find(|t| t["name"] == "registrar" && t["registration"]["state"] == "registered")
                .cloned()
        },
    );
    assert_eq!(trunk["registration"]["last_status"], 200);
    assert_eq!(trunk["password"], "********");
    // Registering needs the credentials.
    let (status, v) = o.api(
        "POST",
        "/api/v1/trunks",
        &format!(r#"{{"name":"half","address":"127.0.0.1:{port}","register":true}}"#),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["field"], "register");
}

#[test]
fn hold_and_resume_are_relayed_between_real_phones() {
    let o = office(&[]);
    o.register_bob();
    let bob = o.bob("uas_hold.xml", &["-d", "500"]);
    let (ok, out) = o.provider_call("uac_held.xml", &[]);
    assert!(
        ok,
        "the caller is held, resumed and hung up on: {out}\n{}",
        o.server.log()
    );
    let (ok, out) = sipp_wait(bob);
    assert!(ok, "bob holds, resumes and hangs up: {out}");
    let call = o.last_ended_call(1);
    assert_eq!(call["end_cause"], "completed");
    let kinds: Vec<String> = o
        .events(call["id"].as_str().unwrap())
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["type"].as_str().unwrap(),
                e["leg"].as_str().unwrap_or("-")
            )
        })
        .collect();
    let held = kinds.iter().position(|k| k == "held:callee");
    let resumed = kinds.iter().position(|k| k == "resumed:callee");
    assert!(
        matches!((held, resumed), (Some(h), Some(r)) if h < r),
        "{kinds:?}"
    );
}

/// Click-to-call: Bob's own phone rings first (told it is his click-to-call), and once he
/// answers, the number is dialled through his trunk; both legs are bridged and the call is
/// Bob's outbound call, recorded and on the number's card.
#[test]
fn click_to_call_rings_the_users_phone_then_the_number_through_the_trunk() {
    let o = office(&[("KOLOKOL_CALLS__RING_TIMEOUT_S", "3")]);
    let (status, v) = o.api(
        "POST",
        "/api/v1/fields",
        r#"{"name":"Телефон","latin":"phone","kind":"phone","in_table":true}"#,
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = o.api(
        "PUT",
        "/api/v1/users/u1002/calls",
        r#"{"record":true,"trunk_id":1}"#,
    );
    assert_eq!(status, 200, "{v}");
    let token = |login: &str| {
        let t = o.server.cli(&["token", "create", "--user", login]);
        format!("Bearer {}", t.trim())
    };
    let (bob, carol) = (token("u1002"), token("u1003"));
    let click = |auth: &str, body: &str| {
        let (status, _, body) =
            o.server
                .http("POST", "/api/v1/calls", &[("Authorization", auth)], body);
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
        )
    };
    let refused = |auth: &str, body: &str, status: u16, field: Option<&str>| {
        let (got, v) = click(auth, body);
        assert_eq!(got, status, "{body}: {v}");
        assert_eq!(v["field"].as_str(), field, "{body}: {v}");
    };
    // Nothing is rung for these.
    refused(&bob, r#"{"to":"84951234567"}"#, 409, None);
    refused(&bob, r#"{"to":"call me"}"#, 422, Some("to"));
    refused(&bob, r#"{"number":"84951234567"}"#, 422, Some("number"));
    refused(&bob, "{}", 422, Some("to"));
    refused(&carol, r#"{"to":"84951234567"}"#, 422, Some("to"));
    refused(&bob, r#"{"to":"1003"}"#, 422, Some("to"));
    let (status, _, _) = o.server.http("POST", "/api/v1/calls", &[], r#"{"to":"1"}"#);
    assert_eq!(status, 401);
    o.register_bob();

    // Bob does not pick up: one at a time while it rings; no answer after the bound.
    let rung = o.bob("uas_ring_call_id.xml", &[]);
    let (status, v) = click(&bob, r#"{"to":"84951234567"}"#);
    assert_eq!(status, 202, "{v}");
    let unanswered = v["call_id"].as_str().unwrap().to_string();
    refused(&bob, r#"{"to":"84951234568"}"#, 429, None);
    let (ok, out) = sipp_wait(rung);
    assert!(
        ok,
        "bob's phone rang with the call id until cancelled: {out}"
    );
    let ids = std::fs::read_to_string(o.server.dir.join("offered_call_ids")).unwrap();
    assert_eq!(ids.trim(), unanswered);
    let call = o.last_ended_call(1);
    assert_eq!(
        (&call["id"], &call["end_cause"], &call["direction"]),
        (&json(&unanswered), &json("no_answer"), &json("outbound")),
        "{call}"
    );

    // Bob answers; the far end takes the call, plays the pcap and hangs up.
    let far = o.phone(
        o.trunk_port,
        "uas_plays_hangs_up.xml",
        &["-d", &PCAP_MS.to_string()],
    );
    let phone = o.bob("uas_click_to_call.xml", &["-rtp_echo"]);
    let (status, v) = click(&bob, r#"{"to":"+7 (495) 123-45-67"}"#);
    assert_eq!(status, 202, "{v}");
    let id = v["call_id"].as_str().unwrap().to_string();
    let (ok, out) = sipp_wait(far);
    assert!(
        ok,
        "the far end answers, plays, hangs up: {out}\n{}",
        o.server.log()
    );
    let (ok, out) = sipp_wait(phone);
    assert!(ok, "bob's phone took the click-to-call: {out}");
    let line = std::fs::read_to_string(o.server.dir.join("click_invites")).unwrap();
    assert_eq!(
        line.trim(),
        format!("{id} +74951234567"),
        "Bob's INVITE names the call and the number"
    );
    let far_line = std::fs::read_to_string(o.server.dir.join("far_end_invites")).unwrap();
    assert_eq!(
        far_line.trim(),
        format!("INVITE sip:+74951234567@127.0.0.1:{}", o.trunk_port)
    );

    let call = o.last_ended_call(2);
    assert_eq!(call["id"], id.as_str());
    for (column, value) in [
        ("direction", json("outbound")),
        ("user", json("u1002")),
        ("trunk", json("provider")),
        ("answered_by", json("+74951234567")),
        ("end_cause", json("completed")),
    ] {
        assert_eq!(call[column], value, "{column}: {call}");
    }
    let (events, samples) = o.finished_recording(&call);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "offered",
            "ringing",
            "recording_started",
            "answered",
            "ended",
            "recording_finished"
        ]
    );
    assert_eq!(events[0]["user"], "u1002");
    assert_eq!(events[4]["by"], "callee", "the far end hung up");
    // Media both ways: the far end's pcap on its channel, Bob's echo of it on his.
    let (own, far) = (rms(&samples, 0, 1.0, 6.0), rms(&samples, 1, 1.0, 6.0));
    assert!(
        far > 300.0,
        "the far end's channel carries the pcap: rms {far}"
    );
    assert!(
        own > 300.0,
        "Bob's channel carries what he heard and echoed: rms {own}"
    );
    // The number's card has the call, made by Bob; Bob sees it among his calls.
    let card = card_by_phone(&o, "74951234567");
    let v = partner_calls(&o, &card, 2);
    assert_eq!(v["made"], 2, "{v}");
    let (status, _, mine) = o
        .server
        .http("GET", "/api/v1/calls", &[("Authorization", &bob)], "");
    assert_eq!(status, 200);
    assert!(mine.contains(&id), "{mine}");
}

fn json(s: &str) -> Value {
    Value::String(s.to_string())
}
