//! The contact-center reports through the real event log, on SQLite and on PostgreSQL:
//! scripted events go through the journal's writer (as call control's do), and the
//! Call-Center and KPI reports read them back with the exact figures of the definitions
//! (crm/src/reports/README.md).

mod common;

use common::pg::PgDatabase;
use kolokol_crm::reports::Params;
use kolokol_crm::{NewUser, Store};
use kolokol_engine::event::{
    CallDirection, EndCause, Event, EventBus, EventKind, LegRole, LocalBus, Record,
};
use kolokol_engine::queue::{CompletedBy, QueueEvent, QueueEventKind as K};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// ms of 2026-03-`d` `h`:`m`:`s`.`ms` in Moscow (UTC+3).
fn at(d: u32, h: u32, m: u32, s: u32, ms: u64) -> u64 {
    let utc = chrono::NaiveDate::from_ymd_opt(2026, 3, d)
        .unwrap()
        .and_hms_opt(h, m, s)
        .unwrap()
        .and_utc()
        .timestamp_millis() as u64;
    utc - 3 * 3_600_000 + ms
}

fn entered(call: &str) -> K {
    K::Entered {
        queue: "sales".into(),
        call: call.into(),
        position: 1,
        service_level_ms: 20_000,
        short_abandon_ms: 5_000,
    }
}

fn abandoned(call: &str, wait_ms: u64) -> K {
    K::Abandoned {
        queue: "sales".into(),
        call: call.into(),
        wait_ms,
        position: 1,
    }
}

fn call_event(call: &str, seq: u32, at_ms: u64, kind: EventKind) -> Record {
    Record::Call(Event {
        call_id: call.into(),
        seq,
        at_ms,
        leg: Some(LegRole::Caller),
        kind,
    })
}

fn interrupted() -> EventKind {
    EventKind::Ended {
        cause: EndCause::Interrupted,
        status: None,
        by: None,
    }
}

/// Ann's night: a queue call over midnight, two pause reasons, an outbound call, two
/// abandons either side of the short-abandon threshold, and a restart.
fn script() -> Vec<Record> {
    let q = |at_ms, kind| Record::Queue(QueueEvent::new(at_ms, kind));
    let ann = || "ann".to_string();
    vec![
        q(at(2, 22, 0, 0, 0), K::Login { operator: ann() }),
        q(at(2, 23, 0, 0, 0), entered("a")),
        q(
            at(2, 23, 0, 0, 0),
            K::Offered {
                queue: "sales".into(),
                call: "a".into(),
                operator: ann(),
            },
        ),
        q(
            at(2, 23, 0, 10, 0),
            K::Answered {
                queue: "sales".into(),
                call: "a".into(),
                operator: ann(),
                wait_ms: 10_000,
                within_service_level: true,
            },
        ),
        q(
            at(3, 0, 30, 10, 0),
            K::Completed {
                queue: "sales".into(),
                call: "a".into(),
                operator: ann(),
                by: CompletedBy::Caller,
                talk_ms: 5_400_000,
            },
        ),
        q(
            at(3, 1, 0, 0, 0),
            K::Paused {
                operator: ann(),
                reason: "Перерыв".into(),
                auto: false,
            },
        ),
        q(
            at(3, 1, 10, 0, 0),
            K::Paused {
                operator: ann(),
                reason: "Обед".into(),
                auto: false,
            },
        ),
        q(at(3, 1, 40, 0, 0), K::Resumed { operator: ann() }),
        call_event(
            "o1",
            1,
            at(3, 1, 45, 0, 0),
            EventKind::Offered {
                direction: CallDirection::Outbound,
                from: "2001".into(),
                to: "84951234567".into(),
                user: Some(ann()),
                number: Some("84951234567".into()),
                trunk: Some("provider".into()),
            },
        ),
        call_event(
            "o1",
            2,
            at(3, 1, 45, 5, 0),
            EventKind::Answered {
                by: "84951234567".into(),
            },
        ),
        call_event(
            "o1",
            3,
            at(3, 1, 47, 5, 0),
            EventKind::Ended {
                cause: EndCause::Completed,
                status: None,
                by: Some(LegRole::Caller),
            },
        ),
        q(at(3, 1, 50, 0, 0), entered("b")),
        q(at(3, 1, 50, 5, 0), abandoned("b", 5_000)),
        q(at(3, 1, 51, 0, 0), entered("c")),
        q(at(3, 1, 51, 5, 1), abandoned("c", 5_001)),
        // A restart at 01:55:02 closes d, which ann was talking on, and e, still waiting.
        q(at(3, 1, 52, 0, 0), entered("d")),
        q(
            at(3, 1, 52, 0, 0),
            K::Offered {
                queue: "sales".into(),
                call: "d".into(),
                operator: ann(),
            },
        ),
        q(
            at(3, 1, 52, 2, 0),
            K::Answered {
                queue: "sales".into(),
                call: "d".into(),
                operator: ann(),
                wait_ms: 2_000,
                within_service_level: true,
            },
        ),
        q(at(3, 1, 54, 0, 0), entered("e")),
        call_event("d", 1, at(3, 1, 55, 2, 0), interrupted()),
        call_event("e", 1, at(3, 1, 55, 2, 0), interrupted()),
        q(at(3, 2, 0, 0, 0), K::Logout { operator: ann() }),
    ]
    .into_iter()
    .chain(transfers())
    .collect()
}

/// Day 5: ann and bob hand calls to each other. t1: ann holds the caller 30 s while she
/// consults bob, then transfers (attended); bob holds it 20 s and ends it. t2: bob
/// transfers blind to ann, who ends it.
fn transfers() -> Vec<Record> {
    let q = |at_ms, kind| Record::Queue(QueueEvent::new(at_ms, kind));
    let s = |v: &str| v.to_string();
    let sales = || s("sales");
    let offer = |call: &str, op: &str| K::Offered {
        queue: sales(),
        call: s(call),
        operator: s(op),
    };
    let answer = |call: &str, op: &str, wait_ms| K::Answered {
        queue: sales(),
        call: s(call),
        operator: s(op),
        wait_ms,
        within_service_level: true,
    };
    let hold = |call: &str, op: &str, on: bool| K::hold(sales(), s(call), s(op), on);
    let transfer = |call: &str, from: &str, to: &str, attended, talk_ms| K::Transferred {
        queue: sales(),
        call: s(call),
        from: s(from),
        to: s(to),
        attended,
        talk_ms,
    };
    let complete = |call: &str, op: &str, talk_ms| K::Completed {
        queue: sales(),
        call: s(call),
        operator: s(op),
        by: CompletedBy::Caller,
        talk_ms,
    };
    vec![
        q(at(5, 9, 0, 0, 0), K::Login { operator: s("ann") }),
        q(at(5, 9, 0, 0, 0), K::Login { operator: s("bob") }),
        q(at(5, 10, 0, 0, 0), entered("t1")),
        q(at(5, 10, 0, 0, 0), offer("t1", "ann")),
        q(at(5, 10, 0, 5, 0), answer("t1", "ann", 5_000)),
        q(at(5, 10, 1, 0, 0), hold("t1", "ann", true)),
        q(at(5, 10, 1, 30, 0), hold("t1", "ann", false)),
        q(
            at(5, 10, 1, 30, 0),
            transfer("t1", "ann", "bob", true, 85_000),
        ),
        q(at(5, 10, 2, 0, 0), hold("t1", "bob", true)),
        q(at(5, 10, 2, 20, 0), hold("t1", "bob", false)),
        q(at(5, 10, 3, 0, 0), complete("t1", "bob", 175_000)),
        q(at(5, 10, 10, 0, 0), entered("t2")),
        q(at(5, 10, 10, 0, 0), offer("t2", "bob")),
        q(at(5, 10, 10, 3, 0), answer("t2", "bob", 3_000)),
        q(
            at(5, 10, 11, 3, 0),
            transfer("t2", "bob", "ann", false, 60_000),
        ),
        q(at(5, 10, 12, 3, 0), complete("t2", "ann", 120_000)),
        q(at(5, 11, 0, 0, 0), K::Logout { operator: s("ann") }),
        q(at(5, 11, 0, 0, 0), K::Logout { operator: s("bob") }),
    ]
}

async fn check(url: &str) {
    let store = Store::open(url).await.unwrap();
    let boss: NewUser =
        serde_json::from_value(json!({"login": "boss", "name": "Boss", "admin": true})).unwrap();
    let (boss, _) = store.create_user(&boss, "kolokol").await.unwrap();
    let ann: NewUser = serde_json::from_value(
        json!({"login": "ann", "name": "Анна", "extension": "2001", "sip_password": "secret-2001"}),
    )
    .unwrap();
    store.create_user(&ann, "kolokol").await.unwrap();
    let viewer = store.viewer(boss).await.unwrap();
    // Some events come late and some twice: the figures are those of the script.
    journal_with_late_and_twice(&store, script(), 5, 6).await;
    let now = at(10, 0, 0, 0, 0);
    let params = |pairs: &[(&str, &str)], known: &'static [&'static str]| {
        let pairs = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Params::new(pairs, known).unwrap()
    };

    let (cc, _) = store
        .call_center_report(
            &viewer,
            &params(&[("period", "2026-03-02..2026-03-03")], &["period"]),
            now,
        )
        .await
        .unwrap();
    let cc = serde_json::to_value(&cc).unwrap();
    let total = &cc["total"];
    assert_eq!(cc["per_day"][0]["offered"], 1, "{cc}");
    assert_eq!(cc["per_day"][1]["offered"], 4, "{cc}");
    for (figure, value) in [
        ("offered", json!(5)),
        ("answered", json!(2)),
        ("abandoned", json!(2)),
        ("short_abandoned", json!(1)),
        ("interrupted", json!(1)),
        ("completed", json!(1)),
        ("answered_within_service_level", json!(2)),
        ("service_level_of_answered", json!(100.0)),
        ("service_level_of_offered", json!(200.0 / 3.0)),
        ("abandon_rate", json!(25.0)),
        ("asa_ms", json!(6_000)),
        ("longest_wait_ms", json!(10_000)),
        ("talk_ms", json!(5_400_000)),
        ("operators_answering", json!(["ann"])),
        ("operators_logged_in", json!(["ann"])),
    ] {
        assert_eq!(total[figure], value, "{figure} on {url}: {cc}");
    }

    let kpi = store
        .kpi_report(
            &viewer,
            &params(
                &[("period", "2026-03-02..2026-03-03"), ("view", "by_day")],
                &["period", "view"],
            ),
            now,
        )
        .await
        .unwrap();
    let col = |name: &str| {
        kpi.columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("{name} in {:?}", kpi.columns))
    };
    let ms = |row: &[Value], name: &str| row[col(name)]["duration_ms"].as_u64().unwrap();
    assert_eq!(kpi.rows.len(), 2, "{:?}", kpi.rows);
    let (d2, d3) = (&kpi.rows[0], &kpi.rows[1]);
    assert_eq!(d2[col("Дата")], "2026-03-02");
    assert_eq!(d2[col("Оператор")], "Анна");
    assert_eq!(d2[col("Добавочный")], "2001");
    assert_eq!(ms(d2, "Время в системе"), 7_200_000);
    assert_eq!(ms(d2, "Вызов звонит"), 10_000);
    assert_eq!(ms(d2, "Разговор"), 3_590_000);
    assert_eq!(ms(d2, "Готов (ожидание)"), 3_600_000);
    assert_eq!(d2[col("Отвечено")], 1);
    assert_eq!(ms(d3, "Время в системе"), 7_200_000);
    assert_eq!(
        ms(d3, "Разговор"),
        1_810_000 + 180_000,
        "d's talk ends at the restart"
    );
    assert_eq!(ms(d3, "Вызов звонит"), 2_000);
    assert_eq!(ms(d3, "Исходящие разговоры"), 120_000);
    assert_eq!(ms(d3, "Пауза: Перерыв"), 600_000);
    assert_eq!(ms(d3, "Пауза: Обед"), 1_800_000);
    assert_eq!(ms(d3, "Пауза"), 2_400_000);
    assert_eq!(ms(d3, "Готов (ожидание)"), 2_870_000 - 2_000 - 180_000);
    assert_eq!(d3[col("Совершено")], 1);
    // Occupancy of day 3: (talk + outbound + wrap-up) ÷ (in system − pause).
    let occupancy = (1_990_000.0 + 120_000.0) * 100.0 / (7_200_000.0 - 2_400_000.0);
    assert_eq!(
        d3[col("Занятость, %")],
        json!((occupancy * 10.0_f64).round() / 10.0)
    );

    // Day 5's transfers: each call once for the queue, its talk whole; each operator
    // their part of it, hold included, and every call they took.
    let day5 = || params(&[("period", "2026-03-05")], &["period"]);
    let (cc, _) = store
        .call_center_report(&viewer, &day5(), now)
        .await
        .unwrap();
    let cc = serde_json::to_value(&cc).unwrap();
    for (figure, value) in [
        ("offered", json!(2)),
        ("answered", json!(2)),
        ("completed", json!(2)),
        ("transferred", json!(2)),
        ("held", json!(1)),
        ("hold_ms", json!(50_000)),
        ("average_hold_ms", json!(50_000)),
        ("talk_ms", json!(295_000)),
        ("operators_answering", json!(["ann", "bob"])),
    ] {
        assert_eq!(cc["total"][figure], value, "{figure} on {url}: {cc}");
    }
    let kpi = store
        .kpi_report(
            &viewer,
            &params(
                &[("period", "2026-03-05"), ("view", "summary")],
                &["period", "view"],
            ),
            now,
        )
        .await
        .unwrap();
    let col = |name: &str| kpi.columns.iter().position(|c| c == name).unwrap();
    let ms = |row: &[Value], name: &str| row[col(name)]["duration_ms"].as_u64().unwrap();
    let row = |login: &str| {
        kpi.rows
            .iter()
            .find(|r| r[col("Логин")] == login)
            .unwrap_or_else(|| panic!("{login} in {:?}", kpi.rows))
    };
    for (login, talk, hold, ringing) in [
        ("ann", 85_000 + 60_000, 30_000, 5_000),
        ("bob", 90_000 + 60_000, 20_000, 3_000),
    ] {
        let r = row(login);
        assert_eq!(ms(r, "Разговор"), talk, "{login} on {url}");
        assert_eq!(ms(r, "  из него удержание"), hold, "{login} on {url}");
        assert_eq!(r[col("Отвечено")], 2, "{login}: answered and received");
        assert_eq!(r[col("Переведено")], 1, "{login}");
        // No wrap-up: AHT is talk ÷ calls taken.
        assert_eq!(ms(r, "Среднее время обработки (AHT)"), talk / 2, "{login}");
        assert_eq!(
            ms(r, "Готов (ожидание)"),
            7_200_000 - talk - ringing,
            "{login} on {url}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_from_the_journal_on_sqlite_and_postgresql() {
    let dir = std::env::temp_dir().join(format!("kolokol-reports-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    check(&format!("sqlite://{}", dir.join("crm.db").display())).await;
    let db = tokio::task::spawn_blocking(PgDatabase::create)
        .await
        .unwrap();
    check(&db.url()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A random three days of a contact center: two queues, four operators logging in and
/// out, pausing, missing and answering offers, wrap-up, overflow, abandons while waiting
/// and while ringing, outbound calls connected or not, and calls a restart cut off.
fn random_days(seed: u64) -> Vec<Record> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut log: Vec<(u64, Record)> = Vec::new();
    let q = |at_ms: u64, kind| (at_ms, Record::Queue(QueueEvent::new(at_ms, kind)));
    let ops = ["ann", "bob", "cid", "dan"];
    let (start, end) = (at(2, 20, 0, 0, 0), at(5, 4, 0, 0, 0));
    for op in ops {
        let operator = || op.to_string();
        let mut t = start + rng.gen_range(0..3_600_000);
        while t < end {
            log.push(q(
                t,
                K::Login {
                    operator: operator(),
                },
            ));
            let shift_end = t + rng.gen_range(3_600_000..14 * 3_600_000);
            while t < shift_end {
                t += rng.gen_range(60_000..3_600_000);
                if t >= end {
                    break;
                }
                let kind = match rng.gen_range(0..4) {
                    0 => K::Paused {
                        operator: operator(),
                        reason: ["Перерыв", "Обед"][rng.gen_range(0..2)].into(),
                        auto: false,
                    },
                    1 => K::Resumed {
                        operator: operator(),
                    },
                    2 => K::WrapUpStarted {
                        operator: operator(),
                        call: "x".into(),
                    },
                    _ => K::WrapUpEnded {
                        operator: operator(),
                    },
                };
                log.push(q(t, kind));
            }
            // The last shift may still be going on when the reports are read.
            if t < end - 3_600_000 {
                log.push(q(
                    t,
                    K::Logout {
                        operator: operator(),
                    },
                ));
            }
            t += rng.gen_range(600_000..10 * 3_600_000);
        }
    }
    for n in 0..120 {
        let call = format!("q{n}");
        let queue = ["sales", "support"][rng.gen_range(0..2)].to_string();
        let mut t = rng.gen_range(start..end);
        log.push(q(
            t,
            K::Entered {
                queue: queue.clone(),
                call: call.clone(),
                position: 1,
                service_level_ms: 20_000,
                short_abandon_ms: 5_000,
            },
        ));
        let entered = t;
        let op = ops[rng.gen_range(0..4)].to_string();
        t += rng.gen_range(0..30_000);
        log.push(q(
            t,
            K::Offered {
                queue: queue.clone(),
                call: call.clone(),
                operator: op.clone(),
            },
        ));
        let ring = rng.gen_range(1..40_000);
        t += ring;
        let wait = t - entered;
        match rng.gen_range(0..7) {
            0 => log.push(q(
                t,
                K::Abandoned {
                    queue,
                    call,
                    wait_ms: wait,
                    position: 1,
                },
            )),
            1 => log.push(q(
                t,
                K::Overflowed {
                    queue,
                    call,
                    wait_ms: wait,
                    to: kolokol_engine::queue::Overflow::Hangup,
                },
            )),
            2 => log.push(q(
                t,
                K::TimedOut {
                    queue,
                    call,
                    wait_ms: wait,
                },
            )),
            3 => {
                log.push(q(
                    t,
                    K::NoAnswer {
                        queue: queue.clone(),
                        call: call.clone(),
                        operator: op.clone(),
                        ring_ms: ring,
                    },
                ));
                log.push(q(
                    t + 1_000,
                    K::Abandoned {
                        queue,
                        call,
                        wait_ms: wait + 1_000,
                        position: 1,
                    },
                ));
            }
            k => {
                log.push(q(
                    t,
                    K::Answered {
                        queue: queue.clone(),
                        call: call.clone(),
                        operator: op.clone(),
                        wait_ms: wait,
                        within_service_level: wait <= 20_000,
                    },
                ));
                let talk = rng.gen_range(1_000..1_800_000);
                let mut last = op.clone();
                if k == 5 {
                    // On hold for the second quarter of the conversation.
                    for (at_ms, on) in [(t + talk / 4, true), (t + talk / 2, false)] {
                        let kind = K::hold(queue.clone(), call.clone(), op.clone(), on);
                        log.push(q(at_ms, kind));
                    }
                }
                if k == 6 {
                    // Handed on halfway through to another operator.
                    let others: Vec<&str> = ops.iter().copied().filter(|o| *o != op).collect();
                    last = others[rng.gen_range(0..others.len())].to_string();
                    log.push(q(
                        t + talk / 2,
                        K::Transferred {
                            queue: queue.clone(),
                            call: call.clone(),
                            from: op.clone(),
                            to: last.clone(),
                            attended: rng.gen_bool(0.5),
                            talk_ms: talk / 2,
                        },
                    ));
                }
                if k == 4 {
                    // kolokol restarted during the conversation.
                    log.push((t + talk, call_event(&call, 1, t + talk, interrupted())));
                } else {
                    log.push(q(
                        t + talk,
                        K::Completed {
                            queue,
                            call,
                            operator: last,
                            by: CompletedBy::Caller,
                            talk_ms: talk,
                        },
                    ));
                }
            }
        }
    }
    for n in 0..30 {
        let call = format!("o{n}");
        let op = ops[rng.gen_range(0..4)].to_string();
        let t = rng.gen_range(start..end);
        log.push((
            t,
            call_event(
                &call,
                1,
                t,
                EventKind::Offered {
                    direction: CallDirection::Outbound,
                    from: "2001".into(),
                    to: "84951234567".into(),
                    user: Some(op),
                    number: Some("84951234567".into()),
                    trunk: None,
                },
            ),
        ));
        let mut t2 = t + rng.gen_range(1_000..20_000);
        let mut seq = 2;
        if rng.gen_bool(0.7) {
            log.push((
                t2,
                call_event(
                    &call,
                    seq,
                    t2,
                    EventKind::Answered {
                        by: "84951234567".into(),
                    },
                ),
            ));
            seq += 1;
            t2 += rng.gen_range(1_000..900_000);
        }
        log.push((
            t2,
            call_event(
                &call,
                seq,
                t2,
                EventKind::Ended {
                    cause: EndCause::Completed,
                    status: None,
                    by: Some(LegRole::Caller),
                },
            ),
        ));
    }
    log.sort_by_key(|(at, _)| *at);
    log.into_iter().map(|(_, r)| r).collect()
}

/// Delivers `records` to the journal in small batches, some events late (after later
/// ones were stored) and some twice, waiting for each batch to be stored.
async fn journal_with_late_and_twice(
    store: &Store,
    records: Vec<Record>,
    seed: u64,
    max_batch: usize,
) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut batches: Vec<Vec<Record>> = Vec::new();
    let mut rest = records.as_slice();
    while !rest.is_empty() {
        let n = rng.gen_range(1..=max_batch).min(rest.len());
        batches.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    let mut late = 0;
    for i in 1..batches.len() - 1 {
        if rng.gen_bool(0.15) && batches[i].len() > 1 {
            let r = batches[i].remove(0);
            batches[i + 1].push(r);
            late += 1;
        }
        if rng.gen_bool(0.15) {
            let r = batches[i - 1][0].clone();
            batches[i].push(r);
        }
    }
    assert!(late > 0, "the stream has late events");
    let bus = Arc::new(LocalBus::new(1024));
    let mut published = bus.subscribe();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (_stop, stopped) = tokio::sync::oneshot::channel();
    tokio::spawn(kolokol_crm::journal::run(
        store.dedicated().await.unwrap(),
        rx,
        bus.clone() as Arc<dyn EventBus>,
        stopped,
    ));
    let mut seen = std::collections::HashSet::new();
    for batch in batches {
        let fresh = batch
            .iter()
            .filter(|r| seen.insert(serde_json::to_string(r).unwrap()))
            .count();
        for r in batch {
            tx.send(r).unwrap();
        }
        for _ in 0..fresh {
            tokio::time::timeout(Duration::from_secs(30), published.recv())
                .await
                .expect("the journal stores and publishes every new event")
                .unwrap();
        }
    }
}

/// The periods compared: each day, all three, the last one up to now, one queue.
async fn assert_cells_match_the_log(store: &Store, url: &str, now: u64, label: &str) {
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    let zone = store.time_zone;
    let sales: std::collections::BTreeSet<String> = ["sales".to_string()].into();
    let periods = [
        (day(2), day(2), None),
        (day(3), day(3), None),
        (day(4), day(4), None),
        (day(5), day(5), None),
        (day(2), day(5), None),
        (day(2), day(5), Some(sales.clone())),
        (day(3), day(4), Some(sales)),
    ];
    for (from, to, queues) in periods {
        let period = kolokol_crm::reports::contact::Period::new(from, to, zone, now);
        let cells = store
            .figures_from_cells(period.clone(), queues.clone())
            .await
            .unwrap();
        let log = store
            .figures_by_replay(period, queues.clone())
            .await
            .unwrap();
        assert!(
            cells == log,
            "{label} on {url}, {from}..{to} {queues:?}:\ncells {cells:#?}\nlog {log:#?}"
        );
    }
}

async fn check_aggregates(url: &str, seed: u64) {
    let store = Store::open(url).await.unwrap();
    let records = random_days(seed);
    journal_with_late_and_twice(&store, records, seed, 40).await;
    // Now: an hour after the last event, with shifts still going on.
    let now = at(5, 5, 0, 0, 0);
    assert_cells_match_the_log(&store, url, now, "incremental").await;
    let first = store.first_event_day().await.unwrap().unwrap();
    assert_eq!(first, at(2, 0, 0, 0, 0), "the log begins on 2026-03-02");
    assert!(store.rebuild_reports(first).await.unwrap() > 0);
    assert_cells_match_the_log(&store, url, now, "rebuilt from the start").await;
    store.rebuild_reports(at(4, 0, 0, 0, 0)).await.unwrap();
    assert_cells_match_the_log(&store, url, now, "rebuilt from day 4").await;
}

/// The aggregates a report reads equal a replay of the raw log, for random event streams
/// delivered with late and repeated events; and a rebuild from any day gives them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_agree_with_the_log_on_sqlite_and_postgresql() {
    let dir = std::env::temp_dir().join(format!("kolokol-cells-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for seed in 1..=3 {
        check_aggregates(
            &format!("sqlite://{}", dir.join(format!("crm-{seed}.db")).display()),
            seed,
        )
        .await;
    }
    let db = tokio::task::spawn_blocking(PgDatabase::create)
        .await
        .unwrap();
    check_aggregates(&db.url(), 4).await;
    let _ = std::fs::remove_dir_all(&dir);
}
