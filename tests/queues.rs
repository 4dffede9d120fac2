//! Queues end to end: sipp operators (one answering, one paused, one who never picks up)
//! and sipp callers from a provider through a queue; the queue event log is checked from
//! outside, for every strategy, and operator states survive a restart.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const DID: &str = "5550200";
const OPERATORS: [(&str, &str); 3] = [
    ("2001", "op-one-1"),
    ("2002", "op-two-2"),
    ("2003", "op-three-3"),
];

struct Floor {
    server: Server,
    auth: String,
    provider_port: u16,
    /// Where the provider's trunk takes outbound calls.
    trunk_port: u16,
    ports: [u16; 3],
}

impl Floor {
    fn api(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (status, _, body) =
            self.server
                .http(method, path, &[("Authorization", &self.auth)], body);
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn ok(&self, method: &str, path: &str, body: &str) -> Value {
        let (status, v) = self.api(method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    fn events(&self) -> Vec<Value> {
        self.ok("GET", "/api/v1/queue-events?queue=sales&limit=10000", "")
            .as_array()
            .cloned()
            .unwrap()
    }

    fn operators(&self) -> HashMap<String, Value> {
        self.ok("GET", "/api/v1/operators", "")
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["id"].as_str().unwrap().to_string(), o.clone()))
            .collect()
    }

    /// `n` provider calls into the queue, each hanging up `stay_ms` after being answered
    /// by kolokol; returns once sipp is done and every call has ended.
    fn callers(&self, n: usize, rate: &str, stay_ms: u64, calls_before: usize) {
        self.callers_as("call_uac.xml", n, rate, stay_ms, calls_before)
    }

    /// [`Floor::callers`] running `scenario`.
    fn callers_as(&self, scenario: &str, n: usize, rate: &str, stay_ms: u64, calls_before: usize) {
        let port = self.provider_port.to_string();
        let media = free_port().to_string();
        let count = n.to_string();
        let stay = stay_ms.to_string();
        let (ok, out) = sipp(
            &self.server,
            scenario,
            &[
                "-s",
                DID,
                "-p",
                &port,
                "-mp",
                &media,
                "-m",
                &count,
                "-l",
                &count,
                "-r",
                rate,
                "-d",
                &stay,
                "-recv_timeout",
                "30s",
                "-timeout",
                "90s",
            ],
        );
        assert!(
            ok,
            "every caller is answered and hangs up: {out}\n{}",
            self.server.log()
        );
        wait_for("every call to end", Duration::from_secs(15), || {
            let calls = self.ok("GET", "/api/v1/calls?limit=1000", "");
            let calls = calls.as_array().unwrap();
            (calls.len() >= calls_before + n && calls.iter().all(|c| !c["ended_ms"].is_null()))
                .then_some(())
        });
        // The queue logs a caller's leaving when call control tells it the call ended:
        // that can be stored a batch after the call's end.
        wait_for(
            "every caller to leave the queue",
            Duration::from_secs(15),
            || {
                let events = self.events();
                let left: std::collections::HashSet<&Value> = events
                    .iter()
                    .filter(|e| {
                        matches!(
                            e["type"].as_str(),
                            Some("answered" | "abandoned" | "overflowed" | "timed_out")
                        )
                    })
                    .map(|e| &e["call"])
                    .collect();
                of(&events, "entered")
                    .iter()
                    .all(|e| left.contains(&e["call"]))
                    .then_some(())
            },
        );
    }
}

impl Floor {
    /// The office: the three operators' accounts, a provider trunk and the DID routed to
    /// queue "sales".
    fn new(strategy: &str) -> Floor {
        Floor::with_queue(&queue(strategy))
    }

    fn with_queue(queue: &str) -> Floor {
        Floor::with_queue_on(queue, &[])
    }

    /// [`Floor::with_queue`] with extra settings (another database).
    fn with_queue_on(queue: &str, settings: &[(&str, &str)]) -> Floor {
        let server = Server::start(&OPERATORS, settings);
        let auth = format!("Bearer {}", server.admin_token());
        let f = Floor {
            server,
            auth,
            provider_port: free_port(),
            trunk_port: free_port(),
            ports: [free_port(), free_port(), free_port()],
        };
        f.ok(
            "POST",
            "/api/v1/trunks",
            &json!({"name": "provider", "address": format!("127.0.0.1:{}", f.trunk_port),
                    "inbound_ip": "127.0.0.1", "inbound_port": f.provider_port})
            .to_string(),
        );
        let (status, v) = f.api("POST", "/api/v1/queues", queue);
        assert_eq!(status, 201, "{v}");
        f.ok(
            "POST",
            "/api/v1/numbers",
            &json!({"number": DID, "queue": "sales"}).to_string(),
        );
        f
    }
}

/// The floor with its operators registered and logged in: 2001 answers, 2002 is paused,
/// 2003 never answers.
fn floor(strategy: &str) -> (Floor, Vec<std::process::Child>) {
    let f = Floor::new(strategy);
    staff(&f);
    let phones = vec![
        phone(&f, f.ports[0], "call_uas.xml", &["-m", "1000"]),
        phone(&f, f.ports[2], "uas_ring.xml", &["-m", "1000"]),
    ];
    (f, phones)
}

/// A sipp phone at `port` running `scenario`.
fn phone(f: &Floor, port: u16, scenario: &str, args: &[&str]) -> std::process::Child {
    let p = port.to_string();
    let media = free_port().to_string();
    let mut all = vec![
        "-p",
        &p,
        "-mp",
        &media,
        "-recv_timeout",
        "120s",
        "-timeout",
        "120s",
    ];
    all.extend(args);
    sipp_spawn(&f.server, scenario, &all)
}

/// The three operators' phones register and they log in; 2002 pauses.
fn staff(f: &Floor) {
    std::fs::copy(
        "/usr/share/sip-tester/g711a.pcap",
        f.server.dir.join("g711a.pcap"),
    )
    .expect("sipp's sample pcap (package sip-tester)");
    for ((ext, password), port) in OPERATORS.iter().zip(f.ports) {
        let (ok, out) = sipp_as(
            &f.server,
            "register.xml",
            ext,
            password,
            &["-p", &port.to_string()],
        );
        assert!(ok, "{ext} registers: {out}");
        f.ok("POST", &format!("/api/v1/operators/u{ext}/login"), "");
    }
    f.ok(
        "POST",
        "/api/v1/operators/u2002/pause",
        &json!({"reason": "Перерыв"}).to_string(),
    );
}

fn queue(strategy: &str) -> String {
    json!({
        "name": "sales",
        "strategy": strategy,
        "members": [
            {"operator": "u2001", "penalty": 0},
            {"operator": "u2002", "penalty": 0},
            {"operator": "u2003", "penalty": 0}
        ],
        "ring_timeout_ms": 1000,
        "retry_delay_ms": 100,
        "wrap_up_ms": 400
    })
    .to_string()
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// What must hold whatever the strategy: the paused operator is never offered a call;
/// every caller enters once and leaves once, in order; the operator who never answers
/// only ever misses.
fn check_log(events: &[Value], callers: usize) {
    assert!(
        of(events, "offered")
            .iter()
            .all(|e| e["operator"] != "u2002"),
        "a paused operator was offered a call"
    );
    let mut by_call: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in events.iter().filter(|e| e["call"].is_string()) {
        by_call
            .entry(e["call"].as_str().unwrap())
            .or_default()
            .push(e["type"].as_str().unwrap());
    }
    assert_eq!(by_call.len(), callers, "{by_call:?}");
    for (call, kinds) in &by_call {
        assert_eq!(kinds[0], "entered", "{call}: {kinds:?}");
        let ends: Vec<usize> = kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| matches!(**k, "answered" | "abandoned" | "overflowed" | "timed_out"))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(ends.len(), 1, "{call} ends exactly once: {kinds:?}");
        let after: Vec<&&str> = kinds[ends[0] + 1..].iter().collect();
        assert!(
            after
                .iter()
                .all(|k| **k == "completed" || **k == "wrap_up_started"),
            "{call}: nothing happens in the queue after it left: {kinds:?}"
        );
    }
    assert!(
        of(events, "answered")
            .iter()
            .all(|e| e["operator"] == "u2001"),
        "only 2001 picks up"
    );
    for offer in of(events, "offered")
        .iter()
        .filter(|e| e["operator"] == "u2003")
    {
        assert!(
            events.iter().any(|e| e["type"] == "no_answer"
                && e["call"] == offer["call"]
                && e["operator"] == "u2003")
                || events.iter().any(|e| e["call"] == offer["call"]
                    && matches!(e["type"].as_str(), Some("answered" | "abandoned"))),
            "every offer to 2003 ends unanswered: {offer}"
        );
    }
}

#[test]
fn twenty_callers_through_a_queue_with_a_paused_and_a_silent_operator() {
    let (f, mut phones) = floor("round_robin");
    // The supervisor's live feed, and the silent operator's own.
    let mut supervisor = Live::connect(&f.server, &f.auth);
    let own = format!(
        "Bearer {}",
        f.server.cli(&["token", "create", "--user", "u2003"]).trim()
    );
    let mut silent = Live::connect(&f.server, &own);
    // 20 callers, 10 a second, each staying 3 s.
    f.callers(20, "10", 3_000, 0);
    let events = f.events();
    check_log(&events, 20);
    live_feeds_match_the_log(&events, &mut supervisor, &mut silent);
    let answered = of(&events, "answered");
    let abandoned = of(&events, "abandoned");
    assert_eq!(answered.len() + abandoned.len(), 20);
    assert!(!answered.is_empty(), "2001 takes calls");
    assert!(
        !abandoned.is_empty(),
        "one answering operator cannot take 20 calls in 3 s"
    );
    for a in &abandoned {
        let wait = a["wait_ms"].as_u64().unwrap();
        assert!(
            (2_500..4_500).contains(&wait),
            "abandoned after the caller's 3 s: {a}"
        );
        assert!(a["position"].as_u64().unwrap() >= 1);
    }
    // Round robin alternates between the two who can be rung.
    assert!(of(&events, "offered")
        .iter()
        .any(|e| e["operator"] == "u2003"));
    assert!(!of(&events, "no_answer").is_empty());
    // Wrap-up is respected: 2001 is offered nothing within 400 ms of finishing a call.
    for done in of(&events, "completed") {
        let t = done["at_ms"].as_u64().unwrap();
        assert!(
            of(&events, "offered")
                .iter()
                .all(|o| o["operator"] != "u2001"
                    || o["at_ms"].as_u64().unwrap() < t
                    || o["at_ms"].as_u64().unwrap() >= t + 400),
            "offered during wrap-up after {done}"
        );
    }
    let ops = f.operators();
    assert_eq!(ops["u2001"]["accepted"], answered.len());
    assert_eq!(ops["u2001"]["registered"], true);
    assert_eq!(ops["u2002"]["state"], "paused");
    assert!(ops["u2003"]["missed"].as_u64().unwrap() >= 1);
    reports_match_the_log(&f, &events);

    // A restart keeps who is logged in and who is paused, with the reason.
    let mut f = f;
    f.server.restart();
    let ops = f.operators();
    assert_eq!(ops["u2002"]["state"], "paused");
    assert_eq!(ops["u2002"]["reason"], "Перерыв");
    assert_eq!(ops["u2001"]["state"], "ready");
    assert_eq!(ops["u2003"]["state"], "ready");
    for p in &mut phones {
        let _ = p.kill();
        let _ = p.wait();
    }
}

/// Real phones through a queue: 2001 answers, holds the caller a second, takes them back
/// and transfers them blind to 2003 (logged in, in no queue), who talks until the
/// caller hangs up; 2002 stays paused; then 2001 calls out through the trunk. The
/// Call-Center, KPI and calls reports show exactly that, to the logged millisecond — on
/// SQLite and on PostgreSQL.
#[test]
fn a_held_and_transferred_call_and_an_outbound_call_show_in_the_reports() {
    hold_transfer_and_outbound(&[]);
    let db = common::pg::PgDatabase::create();
    hold_transfer_and_outbound(&[("KOLOKOL_DATABASE_URL", &db.url())]);
}

fn hold_transfer_and_outbound(settings: &[(&str, &str)]) {
    let f = Floor::with_queue_on(
        &json!({
            "name": "sales",
            "strategy": "linear",
            "members": [
                {"operator": "u2001", "penalty": 0},
                {"operator": "u2002", "penalty": 0}
            ],
            "ring_timeout_ms": 5000,
            "wrap_up_ms": 400
        })
        .to_string(),
        settings,
    );
    staff(&f);
    f.ok(
        "PUT",
        "/api/v1/users/u2001/calls",
        r#"{"record":false,"trunk_id":1}"#,
    );
    let transferor = phone(
        &f,
        f.ports[0],
        "uas_hold_refer.xml",
        &["-m", "1", "-d", "1000", "-key", "target", "2003"],
    );
    let target = phone(&f, f.ports[2], "call_uas.xml", &["-m", "1"]);
    // The caller takes the hold and its end, then hangs up 4 s later (after the transfer).
    f.callers_as("uac_held_hangs_up.xml", 1, "1", 4_000, 0);
    let (ok, out) = sipp_wait(transferor);
    assert!(
        ok,
        "2001 holds, resumes and transfers: {out}\n{}",
        f.server.log()
    );
    let (ok, out) = sipp_wait(target);
    assert!(ok, "2003 takes the caller until they hang up: {out}");
    let events = wait_for("the call's completion", Duration::from_secs(10), || {
        let events = f.events();
        (!of(&events, "completed").is_empty()).then_some(events)
    });
    let one = |kind: &str| -> &Value {
        let all = of(&events, kind);
        assert_eq!(all.len(), 1, "one {kind}: {events:?}");
        all[0]
    };
    let at = |e: &Value| e["at_ms"].as_u64().unwrap();
    let (answered, transferred, completed) =
        (one("answered"), one("transferred"), one("completed"));
    let hold = at(one("hold_ended")) - at(one("hold_started"));
    assert_eq!(answered["operator"], "u2001");
    assert_eq!(transferred["from"], "u2001");
    assert_eq!(transferred["to"], "u2003");
    assert_eq!(transferred["attended"], false);
    assert_eq!(completed["operator"], "u2003", "the one who talked last");
    assert!((800..3_000).contains(&hold), "a second on hold: {hold}");

    // 2001 calls out; the provider answers and 2001 hangs up after two seconds.
    let provider = phone(&f, f.trunk_port, "call_uas.xml", &["-m", "1"]);
    let media = free_port().to_string();
    let (ok, out) = sipp(
        &f.server,
        "call_uac_auth.xml",
        &[
            "-s",
            "84951234567",
            "-au",
            "2001",
            "-ap",
            "op-one-1",
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
    assert!(ok, "2001's outbound call: {out}\n{}", f.server.log());
    assert!(sipp_wait(provider).0, "the provider answers");
    let outbound = wait_for("the outbound call to end", Duration::from_secs(10), || {
        let calls = f.ok("GET", "/api/v1/calls?limit=100", "");
        calls
            .as_array()?
            .iter()
            .find(|c| c["direction"] == "outbound" && !c["ended_ms"].is_null())
            .cloned()
    });
    let outbound_talk =
        outbound["ended_ms"].as_u64().unwrap() - outbound["answered_ms"].as_u64().unwrap();

    let period = around_today();
    let cc = f.call_center(&period);
    let total = &cc["total"];
    for (figure, value) in [
        ("offered", json!(1)),
        ("answered", json!(1)),
        ("completed", json!(1)),
        ("transferred", json!(1)),
        ("held", json!(1)),
        ("hold_ms", json!(hold)),
        ("talk_ms", completed["talk_ms"].clone()),
        ("operators_answering", json!(["u2001", "u2003"])),
    ] {
        assert_eq!(total[figure], value, "{figure}: {cc}");
    }
    // The KPI, once the outbound call's end has reached the aggregates.
    let kpi = wait_for(
        "the outbound talk in the KPI",
        Duration::from_secs(10),
        || {
            let kpi = f.ok(
                "GET",
                &format!("/api/v1/reports/kpi?view=summary&period={period}"),
                "",
            );
            let col = kpi["columns"]
                .as_array()?
                .iter()
                .position(|c| c == "Совершено")?;
            kpi["rows"]
                .as_array()?
                .iter()
                .any(|r| r[col] == 1)
                .then_some(kpi)
        },
    );
    let kpi = Kpi(kpi);
    let col = |name: &str| kpi.col(name);
    let ms = |r: &Value, name: &str| kpi.ms(r, name);
    let (first, last) = (kpi.row("u2001"), kpi.row("u2003"));
    assert_eq!(ms(&first, "Разговор"), at(transferred) - at(answered));
    assert_eq!(ms(&first, "  из него удержание"), hold);
    assert_eq!(ms(&first, "Исходящие разговоры"), outbound_talk);
    assert_eq!(
        (
            &first[col("Отвечено")],
            &first[col("Переведено")],
            &first[col("Совершено")]
        ),
        (&json!(1), &json!(1), &json!(1))
    );
    assert_eq!(ms(&last, "Разговор"), at(completed) - at(transferred));
    assert_eq!(ms(&last, "  из него удержание"), 0);
    assert_eq!(
        (&last[col("Отвечено")], &last[col("Переведено")]),
        (&json!(1), &json!(0)),
        "2003 took the call by the transfer"
    );
    assert_eq!(
        ms(&first, "Разговор") + ms(&last, "Разговор"),
        completed["talk_ms"].as_u64().unwrap(),
        "the call's talk, split between the two who talked"
    );
    let paused = kpi.row("u2002");
    assert!(ms(&paused, "Пауза: Перерыв") > 0);
    assert_eq!(paused[col("Отвечено")], 0);

    // The detail: the queue call and the outbound call, each once.
    let calls = f.ok("GET", &format!("/api/v1/reports/calls?period={period}"), "");
    let rows = calls["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{calls}");
    let inbound = rows.iter().find(|r| r["direction"] == "inbound").unwrap();
    assert_eq!(inbound["id"], answered["call"]);
    assert_eq!(inbound["status"], "answered", "{inbound}");
    assert_eq!(inbound["queue"], "sales");
    let out_row = rows.iter().find(|r| r["direction"] == "outbound").unwrap();
    assert_eq!(out_row["id"], outbound["id"]);
    assert_eq!(out_row["operator"], "u2001", "{out_row}");
}

#[test]
fn every_strategy_keeps_the_rules() {
    let (f, mut phones) = floor("ring_all");
    let mut seen = 0;
    for strategy in [
        "ring_all",
        "longest_idle",
        "round_robin",
        "fewest_calls",
        "least_talk_time",
        "random",
        "linear",
        "weighted_random",
    ] {
        f.ok("PUT", "/api/v1/queues/sales", &queue(strategy));
        f.callers(3, "2", 1_500, seen);
        seen += 3;
        let events = f.events();
        check_log(&events, seen);
        assert!(
            of(&events, "answered").len() >= seen / 3,
            "{strategy}: 2001 answered at least one call per round"
        );
    }
    for p in &mut phones {
        let _ = p.kill();
        let _ = p.wait();
    }
}

#[test]
fn operator_commands_check_who_and_what() {
    let server = Server::start(&OPERATORS, &[]);
    let admin = format!("Bearer {}", server.admin_token());
    let call = |method: &str, path: &str, auth: &str, body: &str| {
        let (status, _, body) = server.http(method, path, &[("Authorization", auth)], body);
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
        )
    };
    let (status, v) = call(
        "POST",
        "/api/v1/operators/u2001/pause",
        &admin,
        &json!({"reason": "Обед"}).to_string(),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["field"], "reason");
    let (status, _) = call(
        "POST",
        "/api/v1/operators/u2001/pause",
        &admin,
        &json!({"reason": "Пауза"}).to_string(),
    );
    assert_eq!(status, 409, "not logged in");
    let (status, _) = call("POST", "/api/v1/operators/u2001/login", &admin, "");
    assert_eq!(status, 204);
    // Logged in without a registered phone: shown so, and offered nothing.
    wait_for("2001 to show unregistered", Duration::from_secs(5), || {
        let (_, v) = call("GET", "/api/v1/operators", &admin, "");
        v.as_array()?
            .iter()
            .any(|o| o["id"] == "u2001" && o["state"] == "ready" && o["registered"] == false)
            .then_some(())
    });
    let (status, _) = call("POST", "/api/v1/operators/nobody/login", &admin, "");
    assert_eq!(status, 404);
    assert_eq!(call("GET", "/api/v1/live", "Bearer nope", "").0, 401);
    // An operator changes their own state only.
    let own = format!(
        "Bearer {}",
        server.cli(&["token", "create", "--user", "u2002"]).trim()
    );
    assert_eq!(
        call("POST", "/api/v1/operators/u2001/logout", &own, "").0,
        403
    );
    assert_eq!(
        call("POST", "/api/v1/operators/u2002/login", &own, "").0,
        204
    );
    let (status, v) = call(
        "POST",
        "/api/v1/queues",
        &admin,
        &json!({"name": "x", "members": [{"operator": "ghost", "penalty": 0}]}).to_string(),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["field"], "members");
    let (status, v) = call(
        "POST",
        "/api/v1/queues",
        &admin,
        &json!({"name": "x", "strategy": "fastest"}).to_string(),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["field"], "strategy");
    let (status, v) = call(
        "POST",
        "/api/v1/queues",
        &admin,
        &json!({"name": "x", "weight": 0}).to_string(),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["field"], "weight");
    // A queue goes only when nothing routes to it any more.
    for name in ["routed", "spare"] {
        let q = json!({"name": name, "members": [{"operator": "u2001", "penalty": 0}]});
        assert_eq!(
            call("POST", "/api/v1/queues", &admin, &q.to_string()).0,
            201
        );
    }
    let number = json!({"number": DID, "queue": "routed"}).to_string();
    assert_eq!(call("POST", "/api/v1/numbers", &admin, &number).0, 201);
    assert_eq!(call("DELETE", "/api/v1/queues/spare", &own, "").0, 403);
    let (status, v) = call("DELETE", "/api/v1/queues/routed", &admin, "");
    assert_eq!(status, 409, "{v}");
    assert!(v["detail"].as_str().unwrap().contains(DID), "{v}");
    assert_eq!(call("DELETE", "/api/v1/queues/spare", &admin, "").0, 204);
    assert_eq!(call("DELETE", "/api/v1/queues/spare", &admin, "").0, 404);
    let (_, v) = call("GET", "/api/v1/queues", &admin, "");
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|q| q["name"].as_str())
        .collect();
    assert!(!names.contains(&"spare"), "{names:?}");
    let (status, v) = call("GET", "/api/v1/pause-reasons", &admin, "");
    assert_eq!(status, 200);
    assert_eq!(v, json!(["Перерыв", "Технический сбой", "Пауза"]));
}

/// A provider call made by hand: (SIP socket, RTP socket, the 200's To header).
fn raw_caller(f: &Floor) -> (std::net::UdpSocket, std::net::UdpSocket, String) {
    let sip = std::net::UdpSocket::bind(("127.0.0.1", f.provider_port)).unwrap();
    sip.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let rtp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    rtp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let sdp = format!(
        "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        rtp.local_addr().unwrap().port()
    );
    let invite = format!(
        "INVITE sip:{DID}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKwait1\r\nMax-Forwards: 70\r\nFrom: <sip:74951112233@127.0.0.1>;tag=w1\r\nTo: <sip:{DID}@127.0.0.1>\r\nCall-ID: waiting@test\r\nCSeq: 1 INVITE\r\nContact: <sip:74951112233@127.0.0.1:{p}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len(),
        p = f.provider_port
    );
    sip.send_to(invite.as_bytes(), f.server.sip_addr()).unwrap();
    let mut buf = [0u8; 4096];
    let ok = loop {
        let (n, _) = sip.recv_from(&mut buf).expect("an answer to the INVITE");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        match status_of(&text) {
            Some(200) => break text,
            Some(s) if s < 200 => continue,
            other => panic!("the queue answers the caller, got {other:?}: {text}"),
        }
    };
    let to = ok
        .lines()
        .find(|l| l.starts_with("To:"))
        .unwrap()
        .to_string();
    let ack = format!(
        "ACK sip:{DID}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKwait2\r\nMax-Forwards: 70\r\nFrom: <sip:74951112233@127.0.0.1>;tag=w1\r\n{to}\r\nCall-ID: waiting@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        p = f.provider_port
    );
    sip.send_to(ack.as_bytes(), f.server.sip_addr()).unwrap();
    (sip, rtp, to)
}

#[test]
fn a_waiting_caller_hears_music_and_leaving_is_abandoning() {
    let f = Floor::new("linear");
    let mut announcing: Value = serde_json::from_str(&queue("linear")).unwrap();
    announcing["announce_every_ms"] = json!(1500);
    announcing["announce_wait"] = json!(true);
    f.ok("PUT", "/api/v1/queues/sales", &announcing.to_string());
    // The prompts are generated (espeak-ng) once a queue announces.
    let prompts = f.server.dir.join("data/prompts/ru");
    wait_for("prompts to be generated", Duration::from_secs(60), || {
        let n = std::fs::read_dir(&prompts).ok()?.count();
        (n >= 24).then_some(())
    });
    // Nobody is logged in: the caller waits, hearing kolokol's music on hold.
    let (sip, rtp, to) = raw_caller(&f);
    let mut buf = [0u8; 2048];
    let mut heard = 0;
    for _ in 0..50 {
        let (n, _) = rtp.recv_from(&mut buf).expect("RTP while waiting");
        assert_eq!(n, 12 + 160, "20 ms of PCMU");
        assert_eq!(buf[1] & 0x7f, 0, "in the caller's codec");
        heard += buf[12..n]
            .iter()
            .filter(|b| **b != 0xff && **b != 0x7f)
            .count();
    }
    assert!(heard > 2_000, "not silence: {heard}");
    // At 1.5 s the position is announced: a new stream (another SSRC) starts.
    let music = buf[8..12].to_vec();
    wait_for("the announcement", Duration::from_secs(5), || {
        let (n, _) = rtp.recv_from(&mut buf).ok()?;
        (n == 172 && buf[8..12] != music[..]).then_some(())
    });
    let waiting = f.ok("GET", "/api/v1/queues", "");
    assert_eq!(waiting[0]["waiting"].as_array().unwrap().len(), 1);
    let bye = format!(
        "BYE sip:kolokol@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKwait3\r\nMax-Forwards: 70\r\nFrom: <sip:74951112233@127.0.0.1>;tag=w1\r\n{to}\r\nCall-ID: waiting@test\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        p = f.provider_port
    );
    sip.send_to(bye.as_bytes(), f.server.sip_addr()).unwrap();
    let (n, _) = sip.recv_from(&mut buf).unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&buf[..n])), Some(200));
    let events = wait_for("the abandon to be logged", Duration::from_secs(5), || {
        let e = f.events();
        e.iter().any(|e| e["type"] == "abandoned").then_some(e)
    });
    let abandoned = of(&events, "abandoned");
    assert!(
        abandoned[0]["wait_ms"].as_u64().unwrap() >= 900,
        "{abandoned:?}"
    );
    assert_eq!(abandoned[0]["position"], 1);
}

/// Yesterday to tomorrow in the contact center's zone: the run may cross midnight.
/// (Europe/Moscow, the default zone, is UTC+3 all year.)
fn around_today() -> String {
    let today = (chrono::Utc::now() + chrono::Duration::hours(3)).date_naive();
    format!(
        "{}..{}",
        today.pred_opt().unwrap(),
        today.succ_opt().unwrap()
    )
}

impl Floor {
    /// The Call-Center report of queue "sales" over `period`.
    fn call_center(&self, period: &str) -> Value {
        self.ok(
            "GET",
            &format!("/api/v1/reports/call-center?queue=sales&period={period}"),
            "",
        )
    }
}

/// A KPI report as JSON: its cells by column name and operator.
struct Kpi(Value);

impl Kpi {
    fn col(&self, name: &str) -> usize {
        self.0["columns"]
            .as_array()
            .unwrap()
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("{name} in {}", self.0["columns"]))
    }

    fn row(&self, login: &str) -> Value {
        let login_col = self.col("Логин");
        self.0["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r[login_col] == login)
            .unwrap_or_else(|| panic!("{login} in {}", self.0))
            .clone()
    }

    /// A duration cell of `row`.
    fn ms(&self, row: &Value, name: &str) -> u64 {
        row[self.col(name)]["duration_ms"].as_u64().unwrap()
    }
}

/// Today's Call-Center and KPI reports count exactly what the queue log holds.
fn reports_match_the_log(f: &Floor, events: &[Value]) {
    let period = around_today();
    let cc = f.call_center(&period);
    let total = &cc["total"];
    let n = |kind: &str| of(events, kind).len() as u64;
    assert_eq!(total["offered"], n("entered"), "{cc}");
    assert_eq!(total["answered"], n("answered"), "{cc}");
    assert_eq!(total["abandoned"], n("abandoned"), "{cc}");
    assert_eq!(total["completed"], n("completed"), "{cc}");
    let talk: u64 = of(events, "completed")
        .iter()
        .map(|e| e["talk_ms"].as_u64().unwrap())
        .sum();
    assert_eq!(total["talk_ms"], talk, "{cc}");
    let longest = of(events, "answered")
        .iter()
        .chain(of(events, "abandoned").iter())
        .map(|e| e["wait_ms"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(total["longest_wait_ms"], longest);
    assert_eq!(total["operators_answering"], json!(["u2001"]));
    // The print page: the table and its three charts (saved to look at).
    let (status, _, page) = f.server.http(
        "GET",
        &format!("/api/v1/reports/call-center?queue=sales&period={period}&format=html"),
        &[("Authorization", &f.auth)],
        "",
    );
    assert_eq!(status, 200);
    assert_eq!(page.matches("<svg").count(), 3, "{page}");
    assert!(page.contains("<td>Поступило</td>"), "{page}");
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("call-center.html"),
        &page,
    );
    // The detail: every call once across pages, with the log's waits.
    let mut calls = Vec::new();
    let mut after = String::new();
    loop {
        let page = f.ok(
            "GET",
            &format!("/api/v1/reports/calls?queue=sales&period={period}&limit=7{after}"),
            "",
        );
        calls.extend(page["rows"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(calls.len() as u64, n("entered"));
    let ids: std::collections::HashSet<&str> =
        calls.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), calls.len(), "no call twice across pages");
    for a in of(events, "answered") {
        let row = calls.iter().find(|c| c["id"] == a["call"]).unwrap();
        assert_eq!(row["status"], "answered", "{row}");
        assert_eq!(row["answered_wait_ms"], a["wait_ms"], "{row}");
        assert_eq!(row["operator"], "u2001", "{row}");
        assert_eq!(row["queue"], "sales");
        assert_eq!(row["direction"], "inbound");
    }
    for a in of(events, "abandoned") {
        let row = calls.iter().find(|c| c["id"] == a["call"]).unwrap();
        assert_eq!(row["status"], "abandoned", "{row}");
        assert_eq!(row["wait_ms"], a["wait_ms"], "{row}");
        assert_eq!(row["answered_wait_ms"], Value::Null);
    }
    // The live figures of today say the same, once the last event has reached them.
    let sales = wait_for(
        "live figures to match the log",
        Duration::from_secs(5),
        || {
            let stats = f.ok("GET", "/api/v1/queues/stats", "");
            let sales = stats["queues"]
                .as_array()?
                .iter()
                .find(|q| q["queue"] == "sales")?
                .clone();
            (sales["completed"] == total["completed"]).then_some(sales)
        },
    );
    for figure in [
        "offered",
        "answered",
        "abandoned",
        "short_abandoned",
        "answered_within_service_level",
        "talk_ms",
        "longest_wait_ms",
        "asa_ms",
        "service_level_of_offered",
    ] {
        assert_eq!(
            sales[figure], total[figure],
            "live {figure}: {sales} vs {cc}"
        );
    }
    assert_eq!(sales["waiting"], json!([]));
    let kpi = Kpi(f.ok(
        "GET",
        &format!("/api/v1/reports/kpi?view=summary&period={period}"),
        "",
    ));
    let (col, row) = (|name: &str| kpi.col(name), |login: &str| kpi.row(login));
    let by = |kind: &str, login: &str| {
        of(events, kind)
            .iter()
            .filter(|e| e["operator"] == login)
            .count() as u64
    };
    for login in ["u2001", "u2002", "u2003"] {
        let r = row(login);
        assert_eq!(r[col("Отвечено")], by("answered", login), "{login}: {r:?}");
        assert_eq!(
            r[col("Пропущено")],
            by("no_answer", login),
            "{login}: {r:?}"
        );
        assert!(kpi.ms(&r, "Время в системе") > 0);
    }
    assert!(kpi.ms(&row("u2002"), "Пауза: Перерыв") > 0);
    assert_eq!(
        row("u2001")[col("Разговор")]["duration_ms"],
        talk,
        "2001's talk is the talk of the calls 2001 answered"
    );
}

/// The supervisor sees every stored queue event as it happened, and the call events; the
/// silent operator sees only their own offers and what happened to those calls.
fn live_feeds_match_the_log(log: &[Value], supervisor: &mut Live, silent: &mut Live) {
    let queue_events = |received: &[Value]| -> Vec<Value> {
        received
            .iter()
            .filter(|r| r["type"] == "queue")
            .map(|r| r["event"].clone())
            .collect()
    };
    // The log adds its row id to what was published.
    let published: Vec<Value> = log
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.as_object_mut().unwrap().remove("id");
            e
        })
        .collect();
    supervisor.until("every stored queue event", Duration::from_secs(10), |r| {
        let seen = queue_events(r);
        published.iter().all(|e| seen.contains(e))
    });
    let answered: Vec<&Value> = of(log, "answered");
    supervisor.until(
        "call events of the answered calls",
        Duration::from_secs(10),
        |r| {
            answered.iter().all(|a| {
                r.iter().any(|c| {
                    c["type"] == "call"
                        && c["event"]["type"] == "ended"
                        && c["event"]["call_id"] == a["call"]
                })
            })
        },
    );

    let offers_to_silent = of(log, "offered")
        .into_iter()
        .filter(|o| o["operator"] == "u2003")
        .count();
    silent.until("the offers to 2003", Duration::from_secs(10), |r| {
        queue_events(r)
            .iter()
            .filter(|e| e["type"] == "offered")
            .count()
            >= offers_to_silent
    });
    let mut mine = std::collections::HashSet::new();
    for e in queue_events(&silent.received) {
        if e["operator"] == "u2003" {
            mine.insert(e["call"].clone());
        }
        assert!(
            e["operator"] == "u2003" || mine.contains(&e["call"]),
            "2003 sees another operator's event: {e}"
        );
    }
    assert!(offers_to_silent > 0 && !mine.is_empty());
}

/// The reports right sees every operator; an operator without it reads their own KPI
/// rows only, and no Call-Center report. Bad parameters are refused, named.
#[test]
fn contact_center_reports_follow_the_reports_right() {
    let server = Server::start(&OPERATORS, &[]);
    let admin = format!("Bearer {}", server.admin_token());
    let own = format!(
        "Bearer {}",
        server.cli(&["token", "create", "--user", "u2002"]).trim()
    );
    let call = |path: &str, auth: &str| {
        let (status, _, body) = server.http("GET", path, &[("Authorization", auth)], "");
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
        )
    };
    // Two operators log in (the admin does it for them): both have time in system.
    for op in ["u2001", "u2002"] {
        let (status, _, body) = server.http(
            "POST",
            &format!("/api/v1/operators/{op}/login"),
            &[("Authorization", &admin)],
            "",
        );
        assert!((200..300).contains(&status), "{status} {body}");
    }
    let logins = |v: &Value| -> Vec<String> {
        let login = v["columns"]
            .as_array()
            .unwrap()
            .iter()
            .position(|c| c == "Логин")
            .unwrap();
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r[login].as_str().map(str::to_string))
            .collect()
    };
    // The logins are journaled a moment after the API answers.
    let all = wait_for(
        "both logins in the KPI report",
        Duration::from_secs(5),
        || {
            let (status, all) = call("/api/v1/reports/kpi", &admin);
            assert_eq!(status, 200, "{all}");
            (logins(&all) == ["u2001", "u2002"]).then_some(all)
        },
    );
    assert_eq!(logins(&all), ["u2001", "u2002"]);
    let (status, mine) = call("/api/v1/reports/kpi?view=by_day", &own);
    assert_eq!(status, 200, "{mine}");
    assert_eq!(logins(&mine), ["u2002"]);
    assert_eq!(call("/api/v1/reports/kpi?operator=u2001", &own).0, 403);
    assert_eq!(call("/api/v1/reports/call-center", &own).0, 403);
    let (status, cc) = call("/api/v1/reports/call-center", &admin);
    assert_eq!(status, 200, "{cc}");
    assert_eq!(
        cc["total"]["operators_logged_in"],
        json!(["u2001", "u2002"])
    );
    assert_eq!(cc["total"]["service_level_of_answered"], Value::Null);
    for (path, field) in [
        ("/api/v1/reports/kpi?view=weekly", "view"),
        (
            "/api/v1/reports/kpi?period=2026-02-10..2026-02-01",
            "period",
        ),
        ("/api/v1/reports/call-center?queue=nowhere", "queue"),
        (
            "/api/v1/reports/call-center?period=2020-01-01..2026-01-01",
            "period",
        ),
    ] {
        let (status, v) = call(path, &admin);
        assert_eq!(status, 422, "{path}: {v}");
        assert_eq!(v["field"], field, "{path}: {v}");
    }
    let (status, _, sheet) = server.http(
        "GET",
        "/api/v1/reports/call-center?format=csv",
        &[("Authorization", &admin)],
        "",
    );
    assert_eq!(status, 200);
    assert!(sheet.contains("Поступило,0,0"), "{sheet}");
}

/// The card pops while the phone rings: the INVITE to the operator names kolokol's call
/// id, and with it the operator (and nobody else without rights) opens the caller's card,
/// made for the unknown number, before answering.
#[test]
fn an_operator_rung_by_a_queue_opens_the_callers_card_while_it_rings() {
    card_while_ringing(&[]);
    let db = common::pg::PgDatabase::create();
    card_while_ringing(&[("KOLOKOL_DATABASE_URL", &db.url())]);
}

fn card_while_ringing(settings: &[(&str, &str)]) {
    let f = Floor::with_queue_on(
        &json!({
            "name": "sales",
            "strategy": "linear",
            "members": [{"operator": "u2001", "penalty": 0}],
            "ring_timeout_ms": 30000,
            "wrap_up_ms": 400
        })
        .to_string(),
        settings,
    );
    f.ok(
        "POST",
        "/api/v1/fields",
        r#"{"name":"Телефон","latin":"phone","kind":"phone","in_table":true}"#,
    );
    f.ok(
        "POST",
        "/api/v1/groups",
        &json!({"name": "floor", "members": ["u2001", "u2003"], "access": {"phone": "edit"}})
            .to_string(),
    );
    staff(&f);
    let token = |login: &str| {
        let t = f.server.cli(&["token", "create", "--user", login]);
        format!("Bearer {}", t.trim())
    };
    let (operator, colleague) = (token("u2001"), token("u2003"));
    let rung = phone(&f, f.ports[0], "uas_ring_call_id.xml", &["-m", "1"]);
    // The caller waits in the queue for 8 s, then hangs up: 2001 rings all that time.
    let (port, media) = (f.provider_port.to_string(), free_port().to_string());
    let caller = sipp_spawn(
        &f.server,
        "call_uac.xml",
        &[
            "-s", DID, "-p", &port, "-mp", &media, "-m", "1", "-d", "8000",
        ],
    );
    let ids = f.server.dir.join("offered_call_ids");
    let id = wait_for("2001's phone to ring", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&ids).ok()?;
        text.lines().next().map(str::to_string)
    });
    // The id in the INVITE is the call's, as the queue log and the call's events name it.
    let offered = wait_for("the offer in the log", Duration::from_secs(5), || {
        of(&f.events(), "offered").first().map(|e| (*e).clone())
    });
    assert_eq!(
        (offered["call"].as_str(), &offered["operator"]),
        (Some(id.as_str()), &json!("u2001"))
    );
    let events = f.ok("GET", &format!("/api/v1/calls/{id}/events"), "");
    assert_eq!(events[0]["call_id"], id.as_str(), "{events}");
    assert_eq!(events[0]["type"], "offered");

    // Still ringing: the operator gets the card made for the unknown number.
    let card = |auth: &str| {
        let (status, _, body) = f.server.http(
            "GET",
            &format!("/api/v1/calls/{id}/partner"),
            &[("Authorization", auth)],
            "",
        );
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
        )
    };
    let (status, own) = card(&operator);
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["values"]["phone"], "+74951112233", "{own}");
    let state = &f.operators()["u2001"]["state"];
    assert_eq!(state, "ringing", "the card came while the phone rang");
    let (status, theirs) = card(&colleague);
    assert_eq!(
        status, 403,
        "a colleague the call was never offered to: {theirs}"
    );
    assert_eq!(
        card(&f.auth).1["id"],
        own["id"],
        "the administrator sees the same card"
    );

    let (ok, out) = sipp_wait(caller);
    assert!(ok, "the caller waits and hangs up: {out}");
    let (ok, out) = sipp_wait(rung);
    assert!(
        ok,
        "2001's phone rang with the call id and was cancelled: {out}"
    );
    // Once it is over, the operator it was offered to still may open it (the History).
    assert_eq!(card(&operator).0, 200);
    assert_eq!(card(&colleague).0, 403);
}
