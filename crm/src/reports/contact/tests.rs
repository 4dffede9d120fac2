//! Golden tests: scripted event sequences → the exact figures, by the definitions in
//! README.md. Times are given in local Moscow time (UTC+3, no DST) unless a test says.

use super::*;
use chrono::TimeZone;
use kolokol_engine::queue::{CompletedBy, Overflow};

const SL: u64 = 20_000;
const SHORT: u64 = 5_000;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
}

/// ms since the epoch of 2026-03-`d` `h`:`m`:`s` in `zone`.
fn at_in(zone: Tz, d: u32, h: u32, m: u32, s: u32) -> u64 {
    zone.with_ymd_and_hms(2026, 3, d, h, m, s)
        .single()
        .unwrap()
        .timestamp_millis() as u64
}

fn at(d: u32, h: u32, m: u32, s: u32) -> u64 {
    at_in(chrono_tz::Europe::Moscow, d, h, m, s)
}

fn period(from: u32, to: u32) -> Period {
    Period::new(day(from), day(to), chrono_tz::Europe::Moscow, u64::MAX)
}

/// A script of facts, in time order.
#[derive(Default)]
struct Log(Vec<(u64, Fact)>);

impl Log {
    fn q(&mut self, at: u64, e: QueueEventKind) -> &mut Self {
        self.0.push((at, Fact::Queue(e)));
        self
    }
    fn enter(&mut self, at: u64, queue: &str, call: &str) -> &mut Self {
        self.q(
            at,
            QueueEventKind::Entered {
                queue: queue.into(),
                call: call.into(),
                position: 1,
                service_level_ms: SL,
                short_abandon_ms: SHORT,
            },
        )
    }
    fn offer(&mut self, at: u64, queue: &str, call: &str, op: &str) -> &mut Self {
        self.q(
            at,
            QueueEventKind::Offered {
                queue: queue.into(),
                call: call.into(),
                operator: op.into(),
            },
        )
    }
    fn no_answer(&mut self, at: u64, queue: &str, call: &str, op: &str) -> &mut Self {
        self.q(
            at,
            QueueEventKind::NoAnswer {
                queue: queue.into(),
                call: call.into(),
                operator: op.into(),
                ring_ms: 0,
            },
        )
    }
    fn answer(&mut self, at: u64, queue: &str, call: &str, op: &str, wait_ms: u64) -> &mut Self {
        self.q(
            at,
            QueueEventKind::Answered {
                queue: queue.into(),
                call: call.into(),
                operator: op.into(),
                wait_ms,
                within_service_level: wait_ms <= SL,
            },
        )
    }
    fn complete(&mut self, at: u64, queue: &str, call: &str, op: &str, talk_ms: u64) -> &mut Self {
        self.q(
            at,
            QueueEventKind::Completed {
                queue: queue.into(),
                call: call.into(),
                operator: op.into(),
                by: CompletedBy::Caller,
                talk_ms,
            },
        )
    }
    fn abandon(&mut self, at: u64, queue: &str, call: &str, wait_ms: u64) -> &mut Self {
        self.q(
            at,
            QueueEventKind::Abandoned {
                queue: queue.into(),
                call: call.into(),
                wait_ms,
                position: 1,
            },
        )
    }
    fn login(&mut self, at: u64, op: &str) -> &mut Self {
        self.q(
            at,
            QueueEventKind::Login {
                operator: op.into(),
            },
        )
    }
    fn logout(&mut self, at: u64, op: &str) -> &mut Self {
        self.q(
            at,
            QueueEventKind::Logout {
                operator: op.into(),
            },
        )
    }
    fn pause(&mut self, at: u64, op: &str, reason: &str) -> &mut Self {
        self.q(
            at,
            QueueEventKind::Paused {
                operator: op.into(),
                reason: reason.into(),
                auto: false,
            },
        )
    }
    fn resume(&mut self, at: u64, op: &str) -> &mut Self {
        self.q(
            at,
            QueueEventKind::Resumed {
                operator: op.into(),
            },
        )
    }
    fn transfer(&mut self, at: u64, call: &str, from: &str, to: &str, attended: bool) -> &mut Self {
        self.q(
            at,
            QueueEventKind::Transferred {
                queue: "sales".into(),
                call: call.into(),
                from: from.into(),
                to: to.into(),
                attended,
                talk_ms: 0,
            },
        )
    }
    fn hold(&mut self, at: u64, call: &str, op: &str, held: bool) -> &mut Self {
        let kind = QueueEventKind::hold("sales".into(), call.into(), op.into(), held);
        self.q(at, kind)
    }
    fn run(&self, p: Period, queues: Option<&[&str]>) -> Figures {
        replay(
            p,
            queues.map(|q| q.iter().map(|s| s.to_string()).collect()),
            self.0.clone(),
        )
    }
}

/// Time in system is exactly ready + ringing + talk (in and out) + wrap-up + pause, and
/// pause is exactly the sum of its reasons, for every operator and day.
fn assert_identity(f: &Figures) {
    for (op, days) in &f.operator_days {
        for (d, o) in days.iter().enumerate() {
            assert_eq!(
                o.in_system_ms,
                o.ready_ms
                    + o.ringing_ms
                    + o.talk_ms
                    + o.outbound_talk_ms
                    + o.wrap_up_ms
                    + o.pause_ms,
                "{op} day {d}: {o:?}"
            );
            assert!(o.hold_ms <= o.talk_ms, "{op} day {d}: hold within talk");
            assert_eq!(
                o.pause_ms,
                o.pause_by_reason.values().sum::<u64>(),
                "{op} day {d}"
            );
        }
    }
}

#[test]
fn thresholds_are_inclusive_to_the_millisecond() {
    let mut log = Log::default();
    log.enter(at(2, 10, 0, 0), "sales", "a")
        .abandon(at(2, 10, 0, 5), "sales", "a", SHORT)
        .enter(at(2, 10, 1, 0), "sales", "b")
        .abandon(at(2, 10, 1, 5), "sales", "b", SHORT + 1)
        .enter(at(2, 10, 2, 0), "sales", "c")
        .answer(at(2, 10, 2, 20), "sales", "c", "ann", SL)
        .enter(at(2, 10, 3, 0), "sales", "d")
        .answer(at(2, 10, 3, 21), "sales", "d", "bob", SL + 1);
    let f = log.run(period(2, 2), None);
    let d = &f.queue_days[0];
    assert_eq!(
        (d.offered, d.answered, d.abandoned, d.short_abandoned),
        (4, 2, 2, 1)
    );
    assert_eq!(d.answered_within_service_level, 1);
    assert_eq!(d.service_level_of_answered(), Some(50.0));
    // Within ÷ (answered + abandoned after the short threshold) = 1 / 3.
    assert_eq!(d.service_level_of_offered(), Some(100.0 / 3.0));
    // (abandoned − short) ÷ (offered − short) = 1 / 3.
    assert_eq!(d.abandon_rate(), Some(100.0 / 3.0));
    assert_eq!(d.asa_ms(), Some(SL + 1 - 1 + 1)); // (20000 + 20001) / 2, rounded half up
    assert_eq!(d.longest_wait_ms, SL + 1);
    assert_eq!(
        d.average_wait_ms(),
        Some((SHORT + SHORT + 1 + SL + SL + 1 + 2) / 4)
    );
    assert_eq!(
        d.operators_answering,
        ["ann", "bob"].map(String::from).into()
    );
    // All four entered between 10:00 and 11:00.
    let ten = &f.hours[10];
    assert_eq!(
        (
            ten.offered,
            ten.answered,
            ten.abandoned,
            ten.short_abandoned
        ),
        (4, 2, 2, 1)
    );
    assert_eq!(ten.service_level(), Some(50.0));
    assert_eq!(f.hours.len(), 24);
    assert_identity(&f);
}

#[test]
fn no_calls_means_empty_figures_not_zero_percent() {
    let f = Log::default().run(period(2, 2), None);
    let d = &f.queue_days[0];
    assert_eq!(d.offered, 0);
    assert_eq!(d.service_level_of_answered(), None);
    assert_eq!(d.service_level_of_offered(), None);
    assert_eq!(d.abandon_rate(), None);
    assert_eq!(d.asa_ms(), None);
    assert!(f.operator_days.is_empty());
}

#[test]
fn an_operator_day_adds_up_and_a_session_over_midnight_is_split() {
    let mut log = Log::default();
    log.login(at(2, 22, 0, 0), "ann")
        .enter(at(2, 23, 0, 0), "sales", "a")
        .offer(at(2, 23, 0, 0), "sales", "a", "ann")
        .answer(at(2, 23, 0, 10), "sales", "a", "ann", 10_000)
        // Talk over midnight: 23:00:10 → 00:30:10.
        .complete(at(3, 0, 30, 10), "sales", "a", "ann", 5_400_000)
        .pause(at(3, 1, 0, 0), "ann", "Перерыв")
        // The reason changes without a resume.
        .pause(at(3, 1, 10, 0), "ann", "Обед")
        .resume(at(3, 1, 40, 0), "ann")
        .logout(at(3, 2, 0, 0), "ann");
    let f = log.run(period(2, 3), None);
    assert_identity(&f);
    let ann = &f.operator_days["ann"];
    // Day 2: 22:00 → 24:00 = 2 h: ready 1 h, ringing 10 s, talk 59:50.
    assert_eq!(ann[0].in_system_ms, 7_200_000);
    assert_eq!(ann[0].ringing_ms, 10_000);
    assert_eq!(ann[0].talk_ms, 3_590_000);
    assert_eq!(ann[0].answered, 1);
    // Day 3: 00:00 → 02:00: talk 30:10, ready, pause 10 min + 30 min.
    assert_eq!(ann[1].in_system_ms, 7_200_000);
    assert_eq!(ann[1].talk_ms, 1_810_000);
    assert_eq!(ann[1].pause_by_reason["Перерыв"], 600_000);
    assert_eq!(ann[1].pause_by_reason["Обед"], 1_800_000);
    // The call counts on the day it entered, all of its talk with it.
    assert_eq!(f.queue_days[0].completed, 1);
    assert_eq!(f.queue_days[0].talk_ms, 5_400_000);
    assert_eq!(f.queue_days[1].offered, 0);
    // Both days saw ann logged in; only day 2 saw her answer.
    assert!(f.queue_days[1].operators_logged_in.contains("ann"));
    assert!(f.queue_days[1].operators_answering.is_empty());
    let total = f.operator_total("ann");
    assert_eq!(total.in_system_ms, 14_400_000);
    assert_eq!(
        total.occupancy(),
        Some(5_400_000.0 * 100.0 / (14_400_000.0 - 2_400_000.0))
    );
}

#[test]
fn a_pause_from_before_the_period_counts_from_its_first_instant() {
    let mut log = Log::default();
    log.login(at(1, 9, 0, 0), "ann")
        .pause(at(1, 23, 0, 0), "ann", "Перерыв")
        .resume(at(2, 0, 15, 0), "ann")
        .logout(at(2, 1, 0, 0), "ann");
    let f = log.run(period(2, 2), None);
    assert_identity(&f);
    let ann = &f.operator_days["ann"][0];
    assert_eq!(ann.pause_ms, 900_000);
    assert_eq!(ann.ready_ms, 2_700_000);
    assert_eq!(ann.in_system_ms, 3_600_000);
}

#[test]
fn an_operator_still_logged_in_counts_up_to_now() {
    let mut log = Log::default();
    log.login(at(2, 9, 0, 0), "ann");
    let now = at(2, 9, 30, 0);
    let f = log.run(
        Period::new(day(2), day(2), chrono_tz::Europe::Moscow, now),
        None,
    );
    assert_eq!(f.operator_days["ann"][0].in_system_ms, 1_800_000);
}

#[test]
fn ringing_ends_when_the_caller_abandons_or_another_operator_answers() {
    let mut log = Log::default();
    log.login(at(2, 9, 0, 0), "ann")
        .login(at(2, 9, 0, 0), "bob")
        .enter(at(2, 10, 0, 0), "sales", "a")
        .offer(at(2, 10, 0, 0), "sales", "a", "ann")
        .offer(at(2, 10, 0, 0), "sales", "a", "bob")
        .answer(at(2, 10, 0, 4), "sales", "a", "bob", 4_000)
        .complete(at(2, 10, 1, 4), "sales", "a", "bob", 60_000)
        .enter(at(2, 11, 0, 0), "sales", "b")
        .offer(at(2, 11, 0, 1), "sales", "b", "ann")
        // Abandoned while ann's phone rang: not her miss, the caller's abandon.
        .abandon(at(2, 11, 0, 7), "sales", "b", 7_000)
        .logout(at(2, 12, 0, 0), "ann")
        .logout(at(2, 12, 0, 0), "bob");
    let f = log.run(period(2, 2), None);
    assert_identity(&f);
    let (ann, bob) = (&f.operator_days["ann"][0], &f.operator_days["bob"][0]);
    assert_eq!(ann.ringing_ms, 4_000 + 6_000);
    assert_eq!((ann.answered, ann.missed), (0, 0));
    assert_eq!(
        (bob.ringing_ms, bob.talk_ms, bob.answered),
        (4_000, 60_000, 1)
    );
    let d = &f.queue_days[0];
    assert_eq!(
        (d.offered, d.answered, d.abandoned, d.short_abandoned),
        (2, 1, 1, 0)
    );
}

#[test]
fn a_missed_offer_then_another_operator_answers() {
    let mut log = Log::default();
    log.login(at(2, 9, 0, 0), "ann")
        .login(at(2, 9, 0, 0), "bob")
        .enter(at(2, 10, 0, 0), "sales", "a")
        .offer(at(2, 10, 0, 0), "sales", "a", "ann")
        .no_answer(at(2, 10, 0, 15), "sales", "a", "ann")
        .offer(at(2, 10, 0, 16), "sales", "a", "bob")
        .answer(at(2, 10, 0, 18), "sales", "a", "bob", 18_000);
    let f = log.run(
        Period::new(day(2), day(2), chrono_tz::Europe::Moscow, at(2, 10, 1, 18)),
        None,
    );
    assert_identity(&f);
    assert_eq!(f.operator_days["ann"][0].missed, 1);
    assert_eq!(f.operator_days["ann"][0].ringing_ms, 15_000);
    // Still talking "now": talk counts up to now, the call has no talk figure yet.
    assert_eq!(f.operator_days["bob"][0].talk_ms, 60_000);
    assert_eq!(f.queue_days[0].completed, 0);
    assert_eq!(f.queue_days[0].answered_within_service_level, 1);
}

#[test]
fn an_overflow_counts_in_both_queues_and_the_filter_picks_one() {
    let mut log = Log::default();
    log.enter(at(2, 10, 0, 0), "sales", "a")
        .q(
            at(2, 10, 1, 0),
            QueueEventKind::Overflowed {
                queue: "sales".into(),
                call: "a".into(),
                wait_ms: 60_000,
                to: Overflow::Queue("support".into()),
            },
        )
        .enter(at(2, 10, 1, 0), "support", "a")
        .answer(at(2, 10, 1, 30), "support", "a", "ann", 30_000);
    let both = log.run(period(2, 2), None);
    let d = &both.queue_days[0];
    assert_eq!((d.offered, d.overflowed, d.answered), (2, 1, 1));
    let sales = log.run(period(2, 2), Some(&["sales"]));
    let d = &sales.queue_days[0];
    assert_eq!((d.offered, d.overflowed, d.answered), (1, 1, 0));
    let support = log.run(period(2, 2), Some(&["support"]));
    let d = &support.queue_days[0];
    assert_eq!(
        (d.offered, d.overflowed, d.answered, d.longest_wait_ms),
        (1, 0, 1, 30_000)
    );
}

#[test]
fn outbound_talk_counts_connected_calls_only() {
    let mut log = Log::default();
    log.login(at(2, 9, 0, 0), "ann");
    let out = |log: &mut Log, at: u64, fact: Fact| {
        log.0.push((at, fact));
    };
    let (op, call) = ("ann".to_string(), "o1".to_string());
    out(
        &mut log,
        at(2, 10, 0, 0),
        Fact::OutboundPlaced {
            operator: op.clone(),
            call: call.clone(),
        },
    );
    out(
        &mut log,
        at(2, 10, 0, 30),
        Fact::OutboundEnded {
            operator: op.clone(),
            call: call.clone(),
        },
    );
    let call = "o2".to_string();
    out(
        &mut log,
        at(2, 11, 0, 0),
        Fact::OutboundPlaced {
            operator: op.clone(),
            call: call.clone(),
        },
    );
    out(
        &mut log,
        at(2, 11, 0, 5),
        Fact::OutboundConnected {
            operator: op.clone(),
            call: call.clone(),
        },
    );
    out(
        &mut log,
        at(2, 11, 2, 5),
        Fact::OutboundEnded {
            operator: op.clone(),
            call,
        },
    );
    log.logout(at(2, 12, 0, 0), "ann");
    let f = log.run(period(2, 2), None);
    assert_identity(&f);
    let ann = &f.operator_days["ann"][0];
    assert_eq!((ann.made, ann.outbound_talk_ms), (2, 120_000));
}

#[test]
fn days_follow_the_zones_summer_time() {
    // Berlin moves to summer time on 2026-03-29: that day has 23 hours.
    let zone = chrono_tz::Europe::Berlin;
    let mut log = Log::default();
    log.login(at_in(zone, 28, 23, 0, 0), "ann")
        .logout(at_in(zone, 30, 1, 0, 0), "ann");
    let f = log.run(Period::new(day(28), day(30), zone, u64::MAX), None);
    let ann = &f.operator_days["ann"];
    assert_eq!(f.hours.len(), 24 + 23 + 24);
    assert_identity(&f);
    assert_eq!(ann[0].in_system_ms, 3_600_000);
    assert_eq!(ann[1].in_system_ms, 23 * 3_600_000);
    assert_eq!(ann[2].in_system_ms, 3_600_000);
}

/// Random streams: the report's totals equal sums recomputed naively from the events, and
/// the identity holds for every operator and day.
#[test]
fn random_streams_add_up() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let mut log = Log::default();
        let mut t = at(2, 0, 0, 0) + rng.gen_range(0..3_600_000);
        let ops = ["ann", "bob", "cid"];
        let mut logged = [false; 3];
        let (mut offered, mut answered, mut abandoned, mut talk) = (0, 0, 0, 0);
        let (mut hold, mut transferred) = (0, 0);
        for n in 0..rng.gen_range(1..60) {
            t += rng.gen_range(1..7_200_000);
            let i = rng.gen_range(0..3);
            let op = ops[i];
            match rng.gen_range(0..6) {
                0 => {
                    if logged[i] {
                        log.logout(t, op);
                    } else {
                        log.login(t, op);
                    }
                    logged[i] = !logged[i];
                }
                1 => {
                    log.pause(t, op, ["Перерыв", "Обед"][rng.gen_range(0..2)]);
                }
                2 => {
                    log.resume(t, op);
                }
                _ => {
                    let call = format!("c{n}");
                    let wait = rng.gen_range(0..60_000);
                    log.enter(t, "sales", &call).offer(t, "sales", &call, op);
                    if rng.gen_bool(0.7) {
                        let (start, len) = (t + wait, rng.gen_range(4..600_000));
                        log.answer(start, "sales", &call, op, wait);
                        if rng.gen_bool(0.3) {
                            log.hold(start + len / 4, &call, op, true).hold(
                                start + len / 2,
                                &call,
                                op,
                                false,
                            );
                            hold += len / 2 - len / 4;
                        }
                        let mut last = op;
                        if rng.gen_bool(0.3) {
                            last = ops[(i + rng.gen_range(1..3)) % 3];
                            log.transfer(start + len * 3 / 4, &call, op, last, false);
                            transferred += 1;
                        }
                        log.complete(start + len, "sales", &call, last, len);
                        answered += 1;
                        talk += len;
                    } else {
                        log.abandon(t + wait, "sales", &call, wait);
                        abandoned += 1;
                    }
                    offered += 1;
                    t += wait + 600_000;
                }
            }
        }
        log.0.sort_by_key(|(at, _)| *at);
        let f = log.run(
            Period::new(day(2), day(9), chrono_tz::Europe::Moscow, u64::MAX),
            None,
        );
        assert_identity(&f);
        let total = f.queue_total();
        assert_eq!(
            (
                total.offered,
                total.answered,
                total.abandoned,
                total.talk_ms
            ),
            (offered, answered, abandoned, talk)
        );
        assert_eq!((total.hold_ms, total.transferred), (hold, transferred));
        let by_operators: u64 = f
            .operator_days
            .keys()
            .map(|o| f.operator_total(o).transferred)
            .sum();
        assert_eq!(by_operators, transferred);
    }
}

#[test]
fn a_restart_closes_what_it_interrupted_at_the_interrupted_event() {
    let mut log = Log::default();
    log.login(at(2, 9, 0, 0), "ann")
        .login(at(2, 9, 0, 0), "bob")
        .enter(at(2, 10, 0, 0), "sales", "a")
        .offer(at(2, 10, 0, 0), "sales", "a", "ann")
        .answer(at(2, 10, 0, 5), "sales", "a", "ann", 5_000)
        .enter(at(2, 10, 1, 0), "sales", "b")
        .offer(at(2, 10, 1, 0), "sales", "b", "bob");
    // kolokol stopped at 10:02 and came back at 10:10: both calls end then.
    log.0
        .push((at(2, 10, 10, 0), Fact::Interrupted { call: "a".into() }));
    log.0
        .push((at(2, 10, 10, 0), Fact::Interrupted { call: "b".into() }));
    log.logout(at(2, 11, 0, 0), "ann")
        .logout(at(2, 11, 0, 0), "bob");
    let f = log.run(period(2, 2), None);
    assert_identity(&f);
    let (ann, bob) = (&f.operator_days["ann"][0], &f.operator_days["bob"][0]);
    assert_eq!(ann.talk_ms, 595_000, "talk ends at the interrupted event");
    assert_eq!(bob.ringing_ms, 540_000);
    assert_eq!(bob.missed, 0);
    let d = &f.queue_days[0];
    assert_eq!(
        (
            d.offered,
            d.answered,
            d.interrupted,
            d.abandoned,
            d.completed
        ),
        (2, 1, 1, 0, 0)
    );
}

/// A blind transfer: ann talks 60 s, hands the call to bob, who talks 120 s more. The
/// queue counts one call of 180 s talk; each operator their own part; both took it.
#[test]
fn a_blind_transfer_counts_once_for_the_queue_and_once_per_operator() {
    let mut log = Log::default();
    log.login(at(2, 9, 0, 0), "ann")
        .login(at(2, 9, 0, 0), "bob")
        .enter(at(2, 10, 0, 0), "sales", "a")
        .offer(at(2, 10, 0, 0), "sales", "a", "ann")
        .answer(at(2, 10, 0, 10), "sales", "a", "ann", 10_000)
        .transfer(at(2, 10, 1, 10), "a", "ann", "bob", false)
        .complete(at(2, 10, 3, 10), "sales", "a", "bob", 180_000)
        .logout(at(2, 11, 0, 0), "ann")
        .logout(at(2, 11, 0, 0), "bob");
    let f = log.run(period(2, 2), None);
    assert_identity(&f);
    let (ann, bob) = (&f.operator_days["ann"][0], &f.operator_days["bob"][0]);
    assert_eq!((ann.talk_ms, ann.answered, ann.transferred), (60_000, 1, 1));
    assert_eq!(
        (bob.talk_ms, bob.answered, bob.transferred),
        (120_000, 1, 0)
    );
    assert_eq!((ann.aht_ms(), bob.aht_ms()), (Some(60_000), Some(120_000)));
    assert_eq!(OperatorFigures::default().aht_ms(), None, "no calls: empty");
    let d = &f.queue_days[0];
    assert_eq!(
        (d.offered, d.answered, d.completed, d.transferred, d.talk_ms),
        (1, 1, 1, 1, 180_000)
    );
    assert_eq!(d.operators_answering.len(), 2);
}

/// An attended transfer: ann holds the caller while consulting bob, then hands over. Her
/// hold counts within her talk; the call's hold within its talk; bob talks from the
/// transfer on.
#[test]
fn an_attended_transfer_with_hold_splits_talk_and_counts_the_hold() {
    let mut log = Log::default();
    log.login(at(2, 9, 0, 0), "ann")
        .login(at(2, 9, 0, 0), "bob")
        .enter(at(2, 10, 0, 0), "sales", "a")
        .offer(at(2, 10, 0, 0), "sales", "a", "ann")
        .answer(at(2, 10, 0, 5), "sales", "a", "ann", 5_000)
        .hold(at(2, 10, 1, 0), "a", "ann", true)
        .hold(at(2, 10, 1, 30), "a", "ann", false)
        .transfer(at(2, 10, 1, 30), "a", "ann", "bob", true)
        .hold(at(2, 10, 2, 0), "a", "bob", true)
        .hold(at(2, 10, 2, 20), "a", "bob", false)
        .complete(at(2, 10, 3, 0), "sales", "a", "bob", 175_000)
        .logout(at(2, 11, 0, 0), "ann")
        .logout(at(2, 11, 0, 0), "bob");
    let f = log.run(period(2, 2), None);
    assert_identity(&f);
    let (ann, bob) = (&f.operator_days["ann"][0], &f.operator_days["bob"][0]);
    assert_eq!(
        (ann.talk_ms, ann.hold_ms, ann.transferred),
        (85_000, 30_000, 1)
    );
    assert_eq!(
        (bob.talk_ms, bob.hold_ms, bob.answered),
        (90_000, 20_000, 1)
    );
    let d = &f.queue_days[0];
    assert_eq!((d.held, d.hold_ms, d.talk_ms), (1, 50_000, 175_000));
    assert_eq!(d.average_hold_ms(), Some(50_000));
}

/// An operator serving two queues: the KPI filtered by one queue counts only its calls;
/// unfiltered, both; their time is theirs whatever the filter.
#[test]
fn an_operator_in_two_queues_is_counted_per_queue_filter() {
    let mut log = Log::default();
    log.login(at(2, 9, 0, 0), "ann")
        .enter(at(2, 10, 0, 0), "sales", "a")
        .offer(at(2, 10, 0, 0), "sales", "a", "ann")
        .answer(at(2, 10, 0, 5), "sales", "a", "ann", 5_000)
        .complete(at(2, 10, 1, 5), "sales", "a", "ann", 60_000)
        .enter(at(2, 10, 5, 0), "support", "b")
        .offer(at(2, 10, 5, 0), "support", "b", "ann")
        .no_answer(at(2, 10, 5, 15), "support", "b", "ann")
        .offer(at(2, 10, 5, 20), "support", "b", "ann")
        .answer(at(2, 10, 5, 25), "support", "b", "ann", 25_000)
        .complete(at(2, 10, 7, 25), "support", "b", "ann", 120_000)
        .logout(at(2, 11, 0, 0), "ann");
    let all = log.run(period(2, 2), None);
    let support = log.run(period(2, 2), Some(&["support"]));
    assert_identity(&all);
    let (a, s) = (
        &all.operator_days["ann"][0],
        &support.operator_days["ann"][0],
    );
    assert_eq!((a.answered, a.missed), (2, 1));
    assert_eq!((s.answered, s.missed), (1, 1));
    assert_eq!((a.talk_ms, a.in_system_ms), (s.talk_ms, s.in_system_ms));
    assert_eq!(a.talk_ms, 180_000);
    assert_eq!(all.queue_total().offered, 2);
    assert_eq!(support.queue_total().offered, 1);
}
