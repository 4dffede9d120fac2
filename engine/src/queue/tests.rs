//! The queue core with simulated time: scenarios from the contact floor, and property tests
//! of the invariants over random sequences of callers, operators and the clock.

use super::*;
use proptest::prelude::{
    any, prop_assert, prop_assert_eq, prop_oneof, proptest, ProptestConfig, TestCaseError,
};
use proptest::strategy::Strategy as _;

fn kinds(out: &AcdOutputs) -> Vec<&'static str> {
    out.events.iter().map(|e| e.kind.name()).collect()
}

fn offers(out: &AcdOutputs) -> Vec<(String, String)> {
    out.actions
        .iter()
        .filter_map(|a| match a {
            Action::Offer { call, operator, .. } => Some((call.clone(), operator.clone())),
            _ => None,
        })
        .collect()
}

fn cancels(out: &AcdOutputs) -> Vec<(String, String)> {
    out.actions
        .iter()
        .filter_map(|a| match a {
            Action::Cancel { call, operator } => Some((call.clone(), operator.clone())),
            _ => None,
        })
        .collect()
}

fn pair(call: &str, op: &str) -> (String, String) {
    (call.to_string(), op.to_string())
}

/// A queue with operators a, b, c logged in at t=0.
fn floor(config: QueueConfig) -> Acd {
    let mut acd = Acd::new(1);
    acd.set_queue(config, 0);
    let mut out = AcdOutputs::default();
    for op in ["a", "b", "c"] {
        acd.login(op, 0, &mut out).unwrap();
    }
    acd
}

fn linear() -> QueueConfig {
    let mut q = QueueConfig::new("sales", Strategy::Linear, &[("a", 0), ("b", 0), ("c", 0)]);
    q.ring_timeout_ms = 10_000;
    q.retry_delay_ms = 1_000;
    q
}

#[test]
fn no_answer_moves_on_to_the_next_operator_and_auto_pauses_after_n() {
    let mut q = linear();
    q.auto_pause_after = Some(2);
    let mut acd = floor(q);
    let mut out = AcdOutputs::default();
    acd.join("sales", "c1", 1_000, &mut out).unwrap();
    assert_eq!(offers(&out), [pair("c1", "a")]);
    assert_eq!(kinds(&out), ["entered", "offered"]);

    let mut out = AcdOutputs::default();
    acd.tick(11_000, &mut out);
    assert_eq!(cancels(&out), [pair("c1", "a")]);
    assert_eq!(kinds(&out), ["no_answer"]);
    assert!(offers(&out).is_empty(), "the retry delay first");
    let mut out = AcdOutputs::default();
    acd.tick(12_000, &mut out);
    assert_eq!(
        offers(&out),
        [pair("c1", "b")],
        "the next operator, not a again"
    );
    assert!(acd.answered("c1", "b", 13_000, &mut out));
    assert_eq!(acd.operator("a").unwrap().missed, 1);

    // a misses a second call in a row: paused automatically, with the reason.
    let mut out = AcdOutputs::default();
    acd.join("sales", "c2", 20_000, &mut out).unwrap();
    assert_eq!(offers(&out), [pair("c2", "a")]);
    let mut out = AcdOutputs::default();
    acd.declined("c2", "a", 21_000, &mut out);
    assert_eq!(
        acd.operator("a").unwrap().state,
        OperatorState::Paused {
            reason: AUTO_PAUSE_REASON.into()
        }
    );
    assert!(out.events.iter().any(|e| matches!(
        &e.kind,
        QueueEventKind::Paused { operator, auto: true, .. } if operator == "a"
    )));
    let mut out = AcdOutputs::default();
    acd.tick(22_000, &mut out);
    assert_eq!(offers(&out), [pair("c2", "c")], "b talks, a is paused");
}

#[test]
fn a_caller_hanging_up_while_an_operator_rings_is_abandoned_with_its_wait() {
    let mut acd = floor(linear());
    let mut out = AcdOutputs::default();
    acd.join("sales", "c1", 1_000, &mut out).unwrap();
    acd.join("sales", "c2", 2_000, &mut out).unwrap();
    assert_eq!(offers(&out), [pair("c1", "a"), pair("c2", "b")]);
    let mut out = AcdOutputs::default();
    acd.caller_left("c1", 6_000, &mut out);
    assert_eq!(cancels(&out), [pair("c1", "a")]);
    assert!(matches!(
        &out.events[0].kind,
        QueueEventKind::Abandoned {
            wait_ms: 5_000,
            position: 1,
            ..
        }
    ));
    let a = acd.operator("a").unwrap();
    assert_eq!(a.missed, 0, "not the operator's miss");
    assert_eq!(a.state, OperatorState::Ready);
    // An offer for a caller who left is refused.
    assert!(!acd.answered("c1", "a", 6_100, &mut out));
}

#[test]
fn an_operator_pausing_while_ringing_passes_the_call_on_at_once() {
    let mut acd = floor(linear());
    let mut out = AcdOutputs::default();
    acd.join("sales", "c1", 1_000, &mut out).unwrap();
    let mut out = AcdOutputs::default();
    acd.pause("a", "Перерыв", 2_000, &mut out).unwrap();
    assert_eq!(cancels(&out), [pair("c1", "a")]);
    assert_eq!(offers(&out), [pair("c1", "b")]);
    assert_eq!(acd.operator("a").unwrap().missed, 0);
    let mut out = AcdOutputs::default();
    acd.resume("a", 3_000, &mut out).unwrap();
    assert_eq!(kinds(&out), ["resumed"]);
}

#[test]
fn shared_operators_serve_the_higher_priority_queue_first() {
    let mut acd = Acd::new(1);
    let mut low = QueueConfig::new("support", Strategy::Linear, &[("a", 0)]);
    low.priority = 1;
    let mut high = QueueConfig::new("vip", Strategy::Linear, &[("a", 0)]);
    high.priority = 5;
    acd.set_queue(low, 0);
    acd.set_queue(high, 0);
    let mut out = AcdOutputs::default();
    acd.join("support", "early", 1_000, &mut out).unwrap();
    acd.join("vip", "late", 2_000, &mut out).unwrap();
    assert!(offers(&out).is_empty(), "nobody logged in yet");
    assert_eq!(acd.waiting_for("a"), 2);
    let mut out = AcdOutputs::default();
    acd.login("a", 3_000, &mut out).unwrap();
    assert_eq!(offers(&out), [pair("late", "a")]);
}

#[test]
fn equal_priorities_weigh_each_queues_wait() {
    let serve = |weight: u32| {
        let mut acd = Acd::new(1);
        let support = QueueConfig::new("support", Strategy::Linear, &[("a", 0)]);
        let mut vip = QueueConfig::new("vip", Strategy::Linear, &[("a", 0)]);
        vip.weight = weight;
        acd.set_queue(support, 0);
        acd.set_queue(vip, 0);
        let mut out = AcdOutputs::default();
        acd.join("support", "early", 0, &mut out).unwrap();
        acd.join("vip", "late", 5_000, &mut out).unwrap();
        let mut out = AcdOutputs::default();
        acd.login("a", 15_000, &mut out).unwrap();
        offers(&out)
    };
    // Waits 15 s and 10 s: equal weights keep arrival order, weight 2 makes 10 s count 20 s.
    assert_eq!(serve(1), [pair("early", "a")]);
    assert_eq!(serve(2), [pair("late", "a")]);
}

#[test]
fn a_queue_is_removed_only_when_nobody_waits_in_it() {
    let mut acd = floor(linear());
    let mut out = AcdOutputs::default();
    acd.pause("a", "Перерыв", 0, &mut out).unwrap();
    acd.pause("b", "Перерыв", 0, &mut out).unwrap();
    acd.pause("c", "Перерыв", 0, &mut out).unwrap();
    acd.join("sales", "c1", 1_000, &mut out).unwrap();
    assert!(matches!(acd.remove_queue("sales"), Err(AcdError::State(_))));
    acd.caller_left("c1", 2_000, &mut out);
    assert_eq!(acd.remove_queue("sales"), Ok(()));
    assert!(acd.operator("a").is_some(), "members stay operators");
    assert!(matches!(
        acd.join("sales", "c2", 3_000, &mut out),
        Err(AcdError::UnknownQueue)
    ));
    assert_eq!(acd.remove_queue("sales"), Err(AcdError::UnknownQueue));
}

#[test]
fn logging_out_during_wrap_up_ends_it_and_the_day() {
    let mut q = linear();
    q.wrap_up_ms = 30_000;
    let mut acd = floor(q);
    let mut out = AcdOutputs::default();
    acd.join("sales", "c1", 1_000, &mut out).unwrap();
    acd.answered("c1", "a", 2_000, &mut out);
    let mut out = AcdOutputs::default();
    acd.call_ended("c1", CompletedBy::Caller, 62_000, &mut out);
    assert_eq!(kinds(&out), ["completed", "wrap_up_started"]);
    assert!(matches!(
        &out.events[0].kind,
        QueueEventKind::Completed {
            talk_ms: 60_000,
            by: CompletedBy::Caller,
            ..
        }
    ));
    // Wrap-up is respected: a new caller goes to b.
    let mut out = AcdOutputs::default();
    acd.join("sales", "c2", 63_000, &mut out).unwrap();
    assert_eq!(offers(&out), [pair("c2", "b")]);
    let mut out = AcdOutputs::default();
    acd.logout("a", 70_000, &mut out).unwrap();
    assert_eq!(kinds(&out), ["wrap_up_ended", "logout"]);
    let a = acd.operator("a").unwrap();
    assert_eq!(a.state, OperatorState::Offline);
    let t = a.times_at(70_000);
    assert_eq!(
        (t.ringing_ms, t.talking_ms, t.wrap_up_ms),
        (1_000, 60_000, 8_000)
    );
    assert_eq!(a.talk_ms, 60_000);
}

#[test]
fn a_transfer_frees_the_transferor_and_the_completion_names_the_target() {
    let mut q = linear();
    q.wrap_up_ms = 10_000;
    let mut acd = floor(q);
    let mut out = AcdOutputs::default();
    acd.join("sales", "c1", 1_000, &mut out).unwrap();
    assert!(acd.answered("c1", "a", 2_000, &mut out));
    // b is on the consultation call a made to them (a direct call).
    acd.direct_call("b", "consult", true, 20_000, &mut out);
    let mut out = AcdOutputs::default();
    acd.hold("c1", true, 15_000, &mut out);
    acd.hold("c1", true, 16_000, &mut out);
    assert_eq!(kinds(&out), ["hold_started"]);
    let mut out = AcdOutputs::default();
    acd.transferred("c1", "b", true, 32_000, &mut out);
    assert_eq!(
        kinds(&out),
        ["hold_ended", "transferred", "wrap_up_started"]
    );
    assert_eq!(
        out.events[1].kind,
        QueueEventKind::Transferred {
            queue: "sales".into(),
            call: "c1".into(),
            from: "a".into(),
            to: "b".into(),
            attended: true,
            talk_ms: 30_000,
        }
    );
    assert!(matches!(
        acd.operator("a").unwrap().state,
        OperatorState::WrapUp { .. }
    ));
    assert_eq!(
        acd.operator("b").unwrap().state,
        OperatorState::Talking { call: "c1".into() }
    );
    // The consultation call's end does not free b: they talk on the queue call.
    acd.direct_call("b", "consult", false, 32_000, &mut out);
    assert!(matches!(
        acd.operator("b").unwrap().state,
        OperatorState::Talking { .. }
    ));
    let mut out = AcdOutputs::default();
    acd.call_ended("c1", CompletedBy::Caller, 62_000, &mut out);
    assert_eq!(kinds(&out), ["completed", "wrap_up_started"]);
    assert!(matches!(
        &out.events[0].kind,
        QueueEventKind::Completed { operator, talk_ms: 60_000, .. } if operator == "b"
    ));
    // A transfer to someone who is not an operator: the call goes on, a is free.
    let mut acd = floor(linear());
    acd.join("sales", "c2", 0, &mut out).unwrap();
    acd.answered("c2", "a", 1_000, &mut out);
    let mut out = AcdOutputs::default();
    acd.transferred("c2", "+74950000000", false, 5_000, &mut out);
    assert_eq!(kinds(&out), ["transferred"]);
    assert_eq!(acd.operator("a").unwrap().state, OperatorState::Ready);
}

#[test]
fn ring_all_rings_everyone_and_the_first_answer_cancels_the_rest() {
    let mut acd = floor(QueueConfig::new(
        "sales",
        Strategy::RingAll,
        &[("a", 0), ("b", 0), ("c", 1)],
    ));
    let mut out = AcdOutputs::default();
    acd.join("sales", "c1", 1_000, &mut out).unwrap();
    assert_eq!(
        offers(&out),
        [pair("c1", "a"), pair("c1", "b")],
        "tier 0 only"
    );
    let mut out = AcdOutputs::default();
    assert!(acd.answered("c1", "b", 2_000, &mut out));
    assert_eq!(cancels(&out), [pair("c1", "a")]);
    assert!(!acd.answered("c1", "a", 2_001, &mut out));
}

#[test]
fn max_wait_overflows_and_an_empty_queue_refuses_or_sheds_callers() {
    let mut q = linear();
    q.members.truncate(1);
    q.max_wait_ms = Some(60_000);
    q.overflow = Overflow::Queue("backup".into());
    q.join_empty = EmptyRule::NobodyLoggedIn;
    q.leave_empty = EmptyRule::NobodyAvailable;
    let mut acd = Acd::new(1);
    acd.set_queue(q, 0);
    let mut out = AcdOutputs::default();
    assert_eq!(
        acd.join("sales", "c0", 0, &mut out),
        Err(AcdError::Refused(Overflow::Queue("backup".into())))
    );
    acd.login("a", 0, &mut out).unwrap();
    acd.pause("a", "Пауза", 0, &mut out).unwrap();
    acd.join("sales", "c1", 1_000, &mut out).unwrap();
    let mut out = AcdOutputs::default();
    acd.tick(1_020, &mut out);
    assert_eq!(kinds(&out), ["overflowed"], "all paused: the caller leaves");
    acd.resume("a", 2_000, &mut out).unwrap();
    acd.direct_call("a", "d1", true, 2_000, &mut out);
    let mut out = AcdOutputs::default();
    acd.join("sales", "c2", 3_000, &mut out).unwrap();
    assert!(offers(&out).is_empty(), "a is busy on a direct call");
    let mut out = AcdOutputs::default();
    acd.tick(63_000, &mut out);
    assert_eq!(
        out.actions,
        [Action::Overflow {
            call: "c2".into(),
            to: Overflow::Queue("backup".into())
        }]
    );
    assert!(matches!(
        &out.events[0].kind,
        QueueEventKind::Overflowed {
            wait_ms: 60_000,
            ..
        }
    ));
}

#[test]
fn a_pause_asked_for_during_a_call_starts_when_it_ends() {
    let mut acd = floor(linear());
    let mut out = AcdOutputs::default();
    acd.join("sales", "c1", 1_000, &mut out).unwrap();
    acd.answered("c1", "a", 2_000, &mut out);
    acd.pause("a", "Перерыв", 3_000, &mut out).unwrap();
    assert!(matches!(
        acd.operator("a").unwrap().state,
        OperatorState::Talking { .. }
    ));
    let mut out = AcdOutputs::default();
    acd.call_ended("c1", CompletedBy::Operator, 9_000, &mut out);
    assert_eq!(kinds(&out), ["completed", "paused"]);
}

fn announcements(out: &AcdOutputs) -> Vec<(String, usize, Option<u64>)> {
    out.actions
        .iter()
        .filter_map(|a| match a {
            Action::Announce {
                call,
                position,
                wait_ms,
            } => Some((call.clone(), *position, *wait_ms)),
            _ => None,
        })
        .collect()
}

#[test]
fn waiting_callers_hear_their_position_and_only_improvements_if_so_set() {
    let mut q = linear();
    q.members.truncate(1);
    q.announce_every_ms = Some(30_000);
    q.announce_wait = true;
    q.announce_only_improved = true;
    let mut acd = Acd::new(1);
    acd.set_queue(q, 0);
    let mut out = AcdOutputs::default();
    acd.login("a", 0, &mut out).unwrap();
    acd.direct_call("a", "d1", true, 0, &mut out);
    acd.join("sales", "c1", 0, &mut out).unwrap();
    acd.join("sales", "c2", 1_000, &mut out).unwrap();
    let mut out = AcdOutputs::default();
    acd.tick(30_000, &mut out);
    // One available operator, two minutes assumed per call.
    assert_eq!(announcements(&out), [("c1".into(), 1, Some(120_000))]);
    let mut out = AcdOutputs::default();
    acd.tick(31_000, &mut out);
    assert_eq!(announcements(&out), [("c2".into(), 2, Some(240_000))]);
    let mut out = AcdOutputs::default();
    acd.tick(60_000, &mut out);
    assert!(
        announcements(&out).is_empty(),
        "still first: nothing new to say"
    );
    acd.caller_left("c1", 60_500, &mut out);
    let mut out = AcdOutputs::default();
    acd.tick(61_000, &mut out);
    assert_eq!(announcements(&out), [("c2".into(), 1, Some(120_000))]);
}

// ---- properties ----

#[derive(Debug, Clone)]
enum Op {
    Join(usize),
    Answer(usize, usize),
    Decline(usize, usize),
    Leave(usize),
    End(usize),
    Login(usize),
    Logout(usize),
    Pause(usize),
    Resume(usize),
    Direct(usize, bool),
    Transfer(usize, usize, bool),
    Hold(usize, bool),
    Register(usize, bool),
    Advance(u64),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize).prop_map(Op::Join),
        3 => (0..8usize, 0..4usize).prop_map(|(c, o)| Op::Answer(c, o)),
        1 => (0..8usize, 0..4usize).prop_map(|(c, o)| Op::Decline(c, o)),
        1 => (0..8usize).prop_map(Op::Leave),
        2 => (0..8usize).prop_map(Op::End),
        2 => (0..5usize).prop_map(Op::Login),
        1 => (0..5usize).prop_map(Op::Logout),
        1 => (0..5usize).prop_map(Op::Pause),
        1 => (0..5usize).prop_map(Op::Resume),
        1 => (0..5usize, any::<bool>()).prop_map(|(o, a)| Op::Direct(o, a)),
        1 => (0..5usize, any::<bool>()).prop_map(|(o, r)| Op::Register(o, r)),
        1 => (0..8usize, 0..5usize, any::<bool>()).prop_map(|(c, o, a)| Op::Transfer(c, o, a)),
        1 => (0..8usize, any::<bool>()).prop_map(|(c, h)| Op::Hold(c, h)),
        3 => (0..20_000u64).prop_map(Op::Advance),
    ]
}

const OPS: [&str; 5] = ["o0", "o1", "o2", "o3", "o4"];

/// Three queues over five operators sharing some, with different strategies.
fn random_floor(strategies: [Strategy; 3]) -> Acd {
    let mut acd = Acd::new(7);
    let members: [&[(&str, u32)]; 3] = [
        &[("o0", 0), ("o1", 0), ("o2", 1)],
        &[("o1", 0), ("o2", 0), ("o3", 2), ("o4", 2)],
        &[("o0", 1), ("o4", 0)],
    ];
    for (i, (s, m)) in strategies.iter().zip(members).enumerate() {
        let mut q = QueueConfig::new(&format!("q{i}"), *s, m);
        q.ring_timeout_ms = 8_000;
        q.retry_delay_ms = 500 * i as u64;
        q.max_wait_ms = (i == 1).then_some(45_000);
        q.wrap_up_ms = 3_000 * i as u64;
        q.auto_pause_after = (i == 2).then_some(2);
        q.priority = i as i32;
        q.tier_step_ms = (i == 1).then_some(5_000);
        q.leave_empty = if i == 2 {
            EmptyRule::NobodyAvailable
        } else {
            EmptyRule::Never
        };
        acd.set_queue(q, 0);
    }
    acd
}

fn check_invariants(acd: &Acd, now: u64) -> Result<(), TestCaseError> {
    for (call, w) in &acd.waiting {
        let strategy = acd.queues[&w.queue].config.strategy;
        prop_assert!(
            w.offers.len() <= 1 || strategy == Strategy::RingAll,
            "{call} rings {:?} under {strategy:?}",
            w.offers
        );
        for o in &w.offers {
            prop_assert_eq!(
                &acd.operators[o].state,
                &OperatorState::Ringing { call: call.clone() },
                "{} is offered {} but is not ringing for it",
                o,
                call
            );
        }
    }
    for op in acd.operators.values() {
        if let OperatorState::Ringing { call } = &op.state {
            prop_assert!(
                acd.waiting
                    .get(call)
                    .is_some_and(|w| w.offers.contains(&op.id)),
                "{} rings for {} which does not ring it",
                op.id,
                call
            );
        }
        if let OperatorState::Talking { call } = &op.state {
            if let Some(talk) = acd.answered.get(call) {
                prop_assert_eq!(
                    &talk.operator,
                    &op.id,
                    "{} talks on {} which another operator has",
                    op.id,
                    call
                );
            }
        }
        let t = op.times_at(now);
        prop_assert_eq!(
            t.offline_ms + t.logged_in_ms(),
            now,
            "{}'s time adds up",
            op.id
        );
    }
    Ok(())
}

fn run(strategies: [Strategy; 3], ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut acd = random_floor(strategies);
    let mut now = 0;
    let mut joined: Vec<String> = Vec::new();
    let mut ends: HashMap<String, u32> = HashMap::new();
    let mut out = AcdOutputs::default();
    let mut answered: Vec<String> = Vec::new();
    let waiting = |acd: &Acd| {
        let mut w: Vec<(String, Vec<String>)> = acd
            .waiting
            .iter()
            .map(|(c, w)| (c.clone(), w.offers.clone()))
            .collect();
        w.sort();
        w
    };
    for op in ops {
        let mut step = AcdOutputs::default();
        match op {
            Op::Join(q) => {
                let call = format!("c{}", joined.len());
                if acd.join(&format!("q{q}"), &call, now, &mut step).is_ok() {
                    joined.push(call);
                }
            }
            Op::Answer(c, o) | Op::Decline(c, o) => {
                let w = waiting(&acd);
                if let Some((call, offers)) = w.get(c % w.len().max(1)) {
                    if let Some(operator) = offers.get(o % offers.len().max(1)) {
                        if matches!(op, Op::Answer(..)) {
                            prop_assert!(acd.answered(call, operator, now, &mut step));
                            answered.push(call.clone());
                        } else {
                            acd.declined(call, operator, now, &mut step);
                        }
                    }
                }
            }
            Op::Leave(c) => {
                let w = waiting(&acd);
                if let Some((call, _)) = w.get(c % w.len().max(1)) {
                    acd.caller_left(call, now, &mut step);
                }
            }
            Op::End(c) => {
                if !answered.is_empty() {
                    let call = answered.remove(c % answered.len());
                    acd.call_ended(&call, CompletedBy::Caller, now, &mut step);
                }
            }
            Op::Login(o) => acd.login(OPS[o], now, &mut step).unwrap(),
            Op::Logout(o) => {
                let _ = acd.logout(OPS[o], now, &mut step);
            }
            Op::Pause(o) => {
                let _ = acd.pause(OPS[o], "Перерыв", now, &mut step);
            }
            Op::Resume(o) => {
                let _ = acd.resume(OPS[o], now, &mut step);
            }
            Op::Direct(o, active) => {
                acd.direct_call(OPS[o], &format!("d{o}"), active, now, &mut step)
            }
            Op::Register(o, registered) => acd.set_registered(OPS[o], registered, now, &mut step),
            Op::Transfer(c, o, attended) => {
                if !answered.is_empty() {
                    let call = &answered[c % answered.len()];
                    acd.transferred(call, OPS[o], attended, now, &mut step);
                }
            }
            Op::Hold(c, held) => {
                if !answered.is_empty() {
                    acd.hold(&answered[c % answered.len()], held, now, &mut step);
                }
            }
            Op::Advance(ms) => {
                // The service ticks every 20 ms; coarser steps here, same logic.
                let end = now + ms;
                while now < end {
                    now = (now + 250).min(end);
                    acd.tick(now, &mut step);
                }
            }
        }
        for a in &step.actions {
            if let Action::Offer { operator, .. } = a {
                prop_assert!(
                    acd.operators[operator].registered,
                    "{} was offered a call with no device registered",
                    operator
                );
            }
        }
        for e in &step.events {
            if e.kind.is_terminal() {
                *ends.entry(e.kind.call().unwrap().to_string()).or_default() += 1;
            }
        }
        out.events.extend(step.events);
        check_invariants(&acd, now)?;
        for (call, n) in &ends {
            prop_assert!(*n <= 1, "{call} ended {n} times");
        }
    }
    // Everyone still waiting hangs up: then every call that joined ended exactly once.
    for (call, _) in waiting(&acd) {
        acd.caller_left(&call, now, &mut out);
    }
    let mut ends: HashMap<String, u32> = HashMap::new();
    for e in out.events.iter().filter(|e| e.kind.is_terminal()) {
        *ends.entry(e.kind.call().unwrap().to_string()).or_default() += 1;
    }
    for call in &joined {
        prop_assert_eq!(ends.get(call).copied(), Some(1), "{} ends once", call);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn invariants_hold_under_any_sequence(
        s in proptest::array::uniform3(proptest::sample::select(Strategy::ALL.to_vec())),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        run(s, ops)?;
    }
}
