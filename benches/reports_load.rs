//! Contact-center reports at scale: a realistic month (QUEUES queues, OPERATORS operators
//! working shifts with pauses, queue calls offered, missed, answered, abandoned, wrapped
//! up) written through the journal's writer, then the Call-Center, KPI and calls reports
//! timed over the month.
//!
//!   cargo run --release -p kolokol-crm --example reports_load -- [EVENTS] [DATABASE_URL]
//!
//! EVENTS defaults to 10,000,000; DATABASE_URL to a fresh SQLite file under the system
//! temp folder (or `postgres://…/db`, an empty database). A database this tool filled
//! before is reused: only the timings run again.

use kolokol_crm::reports::Params;
use kolokol_crm::{NewUser, Store};
use kolokol_engine::event::{
    CallDirection, EndCause, Event, EventBus, EventKind, LegRole, LocalBus, Record,
};
use kolokol_engine::queue::{CompletedBy, QueueEvent, QueueEventKind as K};
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

const QUEUES: usize = 50;
const OPERATORS: usize = 500;
const DAYS: u32 = 30;
/// Events one queue call makes on average (entered, offers, answer or abandon, end,
/// wrap-up; the call's own offered, answered, ended), for sizing the month.
const EVENTS_PER_CALL: f64 = 8.8;
/// Events an operator makes a day: a shift with three pauses, two outbound calls.
const EVENTS_PER_OPERATOR_DAY: usize = 13;

/// 2026-03-`d` `h`:`m` in Moscow, ms.
fn at(d: u32, h: u32, m: u32) -> u64 {
    chrono::NaiveDate::from_ymd_opt(2026, 3, d)
        .unwrap()
        .and_hms_opt(h, m, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis() as u64
        - 3 * 3_600_000
}

/// A call's own event (the call detail report's rows come from these).
fn call_event(call: &str, seq: u32, at_ms: u64, kind: EventKind) -> (u64, Record) {
    (
        at_ms,
        Record::Call(Event {
            call_id: call.into(),
            seq,
            at_ms,
            leg: Some(LegRole::Caller),
            kind,
        }),
    )
}

fn ended(call: &str, seq: u32, at_ms: u64) -> (u64, Record) {
    call_event(
        call,
        seq,
        at_ms,
        EventKind::Ended {
            cause: EndCause::Completed,
            status: None,
            by: Some(LegRole::Caller),
        },
    )
}

/// One day's events, in time order.
fn day(d: u32, calls: usize, rng: &mut impl Rng) -> Vec<(u64, Record)> {
    let queue_events = day_in_queues(d, calls, rng);
    let mut ev: Vec<(u64, Record)> = Vec::with_capacity(queue_events.len() + calls * 3);
    for (t, kind) in queue_events {
        if let K::Entered { call, .. } = &kind {
            ev.push(call_event(
                call,
                1,
                t,
                EventKind::Offered {
                    direction: CallDirection::Inbound,
                    from: format!("8916{:07}", rng.gen_range(0..10_000_000)),
                    to: "84950000000".into(),
                    user: None,
                    number: None,
                    trunk: Some("provider".into()),
                },
            ));
        }
        match &kind {
            K::Answered { call, operator, .. } => ev.push(call_event(
                call,
                2,
                t,
                EventKind::Answered {
                    by: operator.clone(),
                },
            )),
            K::Completed { call, .. } => ev.push(ended(call, 3, t)),
            K::Abandoned { call, .. } => ev.push(ended(call, 2, t)),
            _ => {}
        }
        ev.push((t, Record::Queue(QueueEvent::new(t, kind))));
    }
    // Two outbound calls per operator, most of them connected.
    for i in 0..OPERATORS {
        for n in 0..2 {
            let call = format!("{d}-o{i}-{n}");
            let t = at(d, 11 + 3 * n, 0) + rng.gen_range(0..3_600_000);
            ev.push(call_event(
                &call,
                1,
                t,
                EventKind::Offered {
                    direction: CallDirection::Outbound,
                    from: format!("2{i:03}"),
                    to: format!("8495{:07}", rng.gen_range(0..10_000_000)),
                    user: Some(format!("op{i:03}")),
                    number: None,
                    trunk: Some("provider".into()),
                },
            ));
            let mut end = t + rng.gen_range(5_000..30_000);
            let mut seq = 2;
            if rng.gen_bool(0.7) {
                ev.push(call_event(
                    &call,
                    seq,
                    end,
                    EventKind::Answered {
                        by: "provider".into(),
                    },
                ));
                seq += 1;
                end += rng.gen_range(20_000..300_000);
            }
            ev.push(ended(&call, seq, end));
        }
    }
    ev.sort_by_key(|(t, _)| *t);
    // Two operators' calls can end at one instant with the same event (a wrap-up's end):
    // the journal stores that once, as it would a duplicate, so it is generated once.
    let mut seen = std::collections::HashSet::new();
    ev.retain(|(_, r)| seen.insert(serde_json::to_string(r).unwrap()));
    ev
}

/// One day's queue and operator events, in time order.
fn day_in_queues(d: u32, calls: usize, rng: &mut impl Rng) -> Vec<(u64, K)> {
    let mut ev: Vec<(u64, K)> = Vec::with_capacity(calls * 7 + OPERATORS * 8);
    let op = |i: usize| format!("op{i:03}");
    // Shifts of 8 hours from 08:00–10:00 with three pauses.
    for i in 0..OPERATORS {
        let start = at(d, 8, 0) + rng.gen_range(0..7_200_000);
        let end = start + 8 * 3_600_000;
        ev.push((start, K::Login { operator: op(i) }));
        for p in 0..3u64 {
            let t = start + (p + 1) * 7_200_000 + rng.gen_range(0..600_000);
            ev.push((
                t,
                K::Paused {
                    operator: op(i),
                    reason: ["Перерыв", "Обед", "Пауза"][p as usize].into(),
                    auto: false,
                },
            ));
            ev.push((
                t + rng.gen_range(300_000..1_200_000),
                K::Resumed { operator: op(i) },
            ));
        }
        ev.push((end, K::Logout { operator: op(i) }));
    }
    let first = at(d, 10, 0);
    let span = 8 * 3_600_000;
    for c in 0..calls {
        let t = first + (c as u64 * span) / calls as u64;
        let queue = format!("q{:02}", rng.gen_range(0..QUEUES));
        let call = format!("{d}-{c}");
        let e = |q: &str, call: &str| K::Entered {
            queue: q.into(),
            call: call.into(),
            position: 1,
            service_level_ms: 20_000,
            short_abandon_ms: 5_000,
        };
        ev.push((t, e(&queue, &call)));
        let mut o = rng.gen_range(0..OPERATORS);
        let mut now = t;
        if rng.gen_bool(0.15) {
            // The first operator lets it ring out.
            ev.push((
                now,
                K::Offered {
                    queue: queue.clone(),
                    call: call.clone(),
                    operator: op(o),
                },
            ));
            now += 15_000;
            ev.push((
                now,
                K::NoAnswer {
                    queue: queue.clone(),
                    call: call.clone(),
                    operator: op(o),
                    ring_ms: 15_000,
                },
            ));
            o = (o + 1) % OPERATORS;
        }
        let wait = now - t + rng.gen_range(1_000..40_000);
        if rng.gen_bool(0.1) {
            ev.push((
                t + wait,
                K::Abandoned {
                    queue: queue.clone(),
                    call: call.clone(),
                    wait_ms: wait,
                    position: 1,
                },
            ));
            continue;
        }
        ev.push((
            t + wait - 3_000,
            K::Offered {
                queue: queue.clone(),
                call: call.clone(),
                operator: op(o),
            },
        ));
        ev.push((
            t + wait,
            K::Answered {
                queue: queue.clone(),
                call: call.clone(),
                operator: op(o),
                wait_ms: wait,
                within_service_level: wait <= 20_000,
            },
        ));
        let talk = rng.gen_range(30_000..400_000);
        let end = t + wait + talk;
        ev.push((
            end,
            K::Completed {
                queue,
                call: call.clone(),
                operator: op(o),
                by: CompletedBy::Caller,
                talk_ms: talk,
            },
        ));
        ev.push((
            end,
            K::WrapUpStarted {
                operator: op(o),
                call,
            },
        ));
        ev.push((end + 10_000, K::WrapUpEnded { operator: op(o) }));
    }
    ev.sort_by_key(|(t, _)| *t);
    ev
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args
        .next()
        .map(|n| n.parse().expect("EVENTS"))
        .unwrap_or(10_000_000);
    let url = args.next().unwrap_or_else(|| {
        let path = std::env::temp_dir().join(format!("kolokol-reports-{events}.db"));
        format!("sqlite://{}", path.display())
    });
    let store = Store::open(&url).await.expect("the database");
    let stored: i64 = store.queue_event_count().await.expect("counting events");
    let published_count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let admin: NewUser = serde_json::from_value(
        serde_json::json!({"login": "bench", "name": "Bench", "admin": true}),
    )
    .unwrap();
    let viewer = match store.create_user(&admin, "kolokol").await {
        Ok((user, _)) => store.viewer(user).await.unwrap(),
        Err(_) => {
            let user = store.user_named("login", "bench").await.unwrap();
            store.viewer(user).await.unwrap()
        }
    };
    if stored == 0 {
        let calls_per_day = ((events as f64
            - (OPERATORS * EVENTS_PER_OPERATOR_DAY * DAYS as usize) as f64)
            / EVENTS_PER_CALL
            / DAYS as f64) as usize;
        let bus = Arc::new(LocalBus::new(1 << 16));
        let mut published = bus.subscribe();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let writer = tokio::spawn(kolokol_crm::journal::run(
            store.dedicated().await.unwrap(),
            rx,
            bus.clone() as Arc<dyn EventBus>,
            stopped,
        ));
        let counted = published_count.clone();
        let counter = tokio::spawn(async move {
            use std::sync::atomic::Ordering::Relaxed;
            loop {
                match published.recv().await {
                    Ok(_) => counted.fetch_add(1, Relaxed),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => {
                        counted.fetch_add(k, Relaxed)
                    }
                    Err(_) => return,
                };
            }
        });
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let started = Instant::now();
        let mut sent = 0usize;
        for d in 1..=DAYS {
            for (_, record) in day(d, calls_per_day, &mut rng) {
                tx.send(record).unwrap();
                sent += 1;
            }
            // Keep the channel bounded: wait for the writer to catch up each day.
            while published_count.load(std::sync::atomic::Ordering::Relaxed) < sent as u64 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            eprintln!(
                "day {d}: {sent} events, {:.0} events/s",
                sent as f64 / started.elapsed().as_secs_f64()
            );
        }
        drop(tx);
        let _ = stop.send(());
        writer.await.unwrap();
        drop(bus);
        counter.abort();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "journal: {sent} events in {secs:.1} s = {:.0} events/s",
            sent as f64 / secs
        );
    } else {
        println!("reusing {stored} stored events");
    }
    let now = at(31, 12, 0);
    let month = |extra: &[(&str, &str)], known: &'static [&'static str]| {
        let mut pairs = vec![("period".to_string(), "2026-03-01..2026-03-30".to_string())];
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Params::new(pairs, known).unwrap()
    };
    // With REPLAY=1, what the aggregates save: the month read from the raw log and
    // replayed, as the reports did before them.
    let period = store.report_period(&month(&[], &["period"]), now).unwrap();
    if std::env::var("REPLAY").is_ok_and(|v| v == "1") {
        replay_the_log(&store, period.clone()).await;
    }
    // Where a report's time goes: reading the cells, then the figures from them.
    let (from, to) = (period.from_ms() as i64, period.end_ms() as i64);
    let t = Instant::now();
    let cells = store.read_cells(from, to, None).await.unwrap();
    time(
        &format!(
            "reading the month's cells ({} queue, {} operator, {} operator-queue)",
            cells.cells.queues.len(),
            cells.cells.operators.len(),
            cells.cells.operator_queues.len()
        ),
        t,
    );
    let t = Instant::now();
    store
        .figures_from_cells(period.clone(), None)
        .await
        .unwrap();
    time("the month's figures from the cells", t);
    for _ in 0..2 {
        let t = Instant::now();
        let (cc, _) = store
            .call_center_report(&viewer, &month(&[], &["period"]), now)
            .await
            .unwrap();
        time(
            &format!("call-center, month ({} offered)", cc.total.counts.offered),
            t,
        );
        let t = Instant::now();
        let kpi = store
            .kpi_report(
                &viewer,
                &month(&[("view", "summary")], &["period", "view"]),
                now,
            )
            .await
            .unwrap();
        time(&format!("kpi summary, month ({} rows)", kpi.rows.len()), t);
        let t = Instant::now();
        let kpi = store
            .kpi_report(
                &viewer,
                &month(&[("view", "by_day")], &["period", "view"]),
                now,
            )
            .await
            .unwrap();
        time(&format!("kpi by day, month ({} rows)", kpi.rows.len()), t);
        for filter in [vec![], vec![("operator", "op007")], vec![("number", "916")]] {
            let t = Instant::now();
            let page = store
                .calls_report(
                    &viewer,
                    &month(&filter, &["period", "operator", "number"]),
                    now,
                    Some(50),
                )
                .await
                .unwrap();
            time(
                &format!(
                    "calls, a page of the month {filter:?} ({} rows)",
                    page.rows.len()
                ),
                t,
            );
        }
    }
    // `kolokol reports rebuild`: the aggregates again from the raw log, the same figures.
    let (before, _) = store
        .call_center_report(&viewer, &month(&[], &["period"]), now)
        .await
        .unwrap();
    let t = Instant::now();
    let first = store.first_event_day().await.unwrap().unwrap_or(0);
    let read = store.rebuild_reports(first).await.unwrap();
    time(&format!("rebuilding the aggregates ({read} facts)"), t);
    let (after, _) = store
        .call_center_report(&viewer, &month(&[], &["period"]), now)
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&before.total).unwrap(),
        serde_json::to_value(&after.total).unwrap(),
        "a rebuild gives the figures the journal kept"
    );
}

/// Prints how long `what` took since `started`.
fn time(what: &str, started: Instant) {
    println!("{what}: {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
}

async fn replay_the_log(store: &Store, period: kolokol_crm::reports::contact::Period) {
    let t = Instant::now();
    let facts = store
        .facts_between(&period, period.until_ms + 86_400_000)
        .await
        .unwrap();
    time(&format!("reading the month's facts ({})", facts.len()), t);
    let t = Instant::now();
    let figures = kolokol_crm::reports::contact::replay(period, None, facts);
    time(
        &format!("replaying them ({} operators)", figures.operator_days.len()),
        t,
    );
}
