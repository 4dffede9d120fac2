//! ACD queues as a sans-IO core (SPEC §1.4–1.5): callers join and leave, operators log in,
//! pause and answer, the clock ticks; out come [`Action`]s for call control (ring this
//! operator, stop ringing, send the caller elsewhere) and [`QueueEvent`]s for the log.
//!
//! Invariants (property-tested): a waiting call rings at most one operator at a time except
//! under ring-all; only a ready operator is offered a call, and one at a time; every call
//! that joins leaves exactly once (answered, abandoned, overflowed, timed out); an operator's
//! state times add up to the time since they were created.

pub mod event;
pub mod operator;
pub mod strategy;
#[cfg(test)]
mod tests;

pub use event::{CompletedBy, QueueEvent, QueueEventKind};
pub use operator::{CallRef, Operator, OperatorState};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
pub use strategy::Strategy;
use strategy::{select, tier, Candidate};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub operator: String,
    /// 0 is the first tier; higher tiers ring only when nobody lower is ready.
    pub penalty: u32,
}

/// Where a caller goes when the queue gives up on them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "target", rename_all = "snake_case")]
pub enum Overflow {
    /// An announcement, then hang-up.
    Hangup,
    Queue(String),
    User(String),
}

/// When a queue counts as empty for its join and leave rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmptyRule {
    /// Never: callers join and wait whatever the operators do.
    Never,
    /// No member is logged in.
    NobodyLoggedIn,
    /// No member is logged in and unpaused.
    NobodyAvailable,
}

/// A queue as configured; fields left out of the JSON take [`QueueConfig::new`]'s values.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    pub name: String,
    pub strategy: Strategy,
    pub members: Vec<Member>,
    /// How long one offer rings.
    pub ring_timeout_ms: u64,
    /// Pause after an unanswered offer before the caller is offered again.
    pub retry_delay_ms: u64,
    /// Longest wait before overflow; none waits forever.
    pub max_wait_ms: Option<u64>,
    pub overflow: Overflow,
    /// Callers are refused (sent to overflow) when the queue is empty by this rule …
    pub join_empty: EmptyRule,
    /// … and waiting callers leave to overflow when it becomes so.
    pub leave_empty: EmptyRule,
    pub wrap_up_ms: u64,
    /// Answered within this wait counts towards the service level.
    pub service_level_ms: u64,
    /// A caller who hangs up within this wait is a short abandon: reported, but left out
    /// of the service level and the abandon rate (a wrong number, a change of mind).
    pub short_abandon_ms: u64,
    /// Pause an operator after this many offers missed in a row.
    pub auto_pause_after: Option<u32>,
    /// Queues sharing operators: the higher priority's callers are offered first.
    pub priority: i32,
    /// Between queues of equal priority, a caller's wait counts this many times over
    /// (at least 1): a weight-2 queue's caller who waited 10 s goes before a weight-1
    /// queue's caller who waited 15 s.
    pub weight: u32,
    /// Reach one more penalty tier per this much waiting; none: every tier at once.
    pub tier_step_ms: Option<u64>,
    /// Music on hold for waiting callers: a WAV, MP3, OGG or FLAC file (a path on the
    /// server); none plays kolokol's own.
    pub music: Option<String>,
    /// Tell each waiting caller their position this often (none: never).
    pub announce_every_ms: Option<u64>,
    /// Say the estimated wait after the position.
    pub announce_wait: bool,
    /// Announce only when the position improved since the last announcement.
    pub announce_only_improved: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig::new("", Strategy::LongestIdle, &[])
    }
}

impl QueueConfig {
    pub fn new(name: &str, strategy: Strategy, members: &[(&str, u32)]) -> Self {
        QueueConfig {
            name: name.to_string(),
            strategy,
            members: members
                .iter()
                .map(|(o, p)| Member {
                    operator: o.to_string(),
                    penalty: *p,
                })
                .collect(),
            ring_timeout_ms: 15_000,
            retry_delay_ms: 1_000,
            max_wait_ms: None,
            overflow: Overflow::Hangup,
            join_empty: EmptyRule::Never,
            leave_empty: EmptyRule::Never,
            wrap_up_ms: 0,
            service_level_ms: 20_000,
            short_abandon_ms: 5_000,
            auto_pause_after: None,
            priority: 0,
            weight: 1,
            tier_step_ms: None,
            music: None,
            announce_every_ms: None,
            announce_wait: false,
            announce_only_improved: false,
        }
    }
}

/// What call control is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ring the operator's devices with a waiting call.
    Offer {
        call: CallRef,
        queue: String,
        operator: String,
    },
    /// Stop ringing an operator (timed out, someone else answered, the caller left).
    Cancel { call: CallRef, operator: String },
    /// Take the caller out of the queue to another destination.
    Overflow { call: CallRef, to: Overflow },
    /// Tell a waiting caller where they stand (and, if asked, how long they may wait).
    Announce {
        call: CallRef,
        position: usize,
        wait_ms: Option<u64>,
    },
}

#[derive(Debug, Default)]
pub struct AcdOutputs {
    pub actions: Vec<Action>,
    pub events: Vec<QueueEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdError {
    UnknownQueue,
    UnknownOperator,
    /// Already in the queue.
    AlreadyQueued,
    /// The queue is empty by its join rule: send the caller here instead.
    Refused(Overflow),
    /// Not possible in the operator's state (pause while offline, …).
    State(&'static str),
}

/// A caller waiting in a queue.
#[derive(Debug, Clone)]
struct Waiting {
    queue: String,
    joined_ms: u64,
    /// Join order across all queues.
    order: u64,
    /// Operators ringing now, and until when.
    offers: Vec<String>,
    ring_until_ms: u64,
    /// No offer before this (retry delay).
    next_offer_ms: u64,
    /// Operators who missed this caller in the current round; skipped until all have.
    missed_by: Vec<String>,
    next_announce_ms: u64,
    /// The position last announced.
    announced: Option<usize>,
}

struct Queue {
    config: QueueConfig,
    /// Round-robin memory: the member offered last.
    last_offered: Option<usize>,
    /// Moving average of answered calls' talk time, for wait estimates.
    avg_talk_ms: u64,
}

/// An answered queue call in conversation.
struct Talk {
    queue: String,
    /// Who talks now (after a transfer, its target).
    operator: String,
    answered_ms: u64,
    /// When `operator` took the call (the answer, or the transfer to them).
    since_ms: u64,
    held: bool,
}

/// The talk time assumed before a queue has answered calls.
const FIRST_TALK_ESTIMATE_MS: u64 = 120_000;

pub struct Acd {
    queues: BTreeMap<String, Queue>,
    operators: HashMap<String, Operator>,
    waiting: HashMap<CallRef, Waiting>,
    /// Answered queue calls, for the transfer, hold and completion events.
    answered: HashMap<CallRef, Talk>,
    next_order: u64,
    rng: StdRng,
}

impl Acd {
    pub fn new(seed: u64) -> Self {
        Acd {
            queues: BTreeMap::new(),
            operators: HashMap::new(),
            waiting: HashMap::new(),
            answered: HashMap::new(),
            next_order: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Adds or replaces a queue; its members become known operators.
    pub fn set_queue(&mut self, config: QueueConfig, now: u64) {
        for m in &config.members {
            self.operators
                .entry(m.operator.clone())
                .or_insert_with(|| Operator::new(&m.operator, now));
        }
        let old = self.queues.get(&config.name);
        let last_offered = old.and_then(|q| q.last_offered);
        let avg_talk_ms = old.map_or(FIRST_TALK_ESTIMATE_MS, |q| q.avg_talk_ms);
        self.queues.insert(
            config.name.clone(),
            Queue {
                config,
                last_offered,
                avg_talk_ms,
            },
        );
    }

    /// Removes a queue nobody waits in; its members stay known operators.
    pub fn remove_queue(&mut self, name: &str) -> Result<(), AcdError> {
        if !self.queues.contains_key(name) {
            return Err(AcdError::UnknownQueue);
        }
        if self.waiting.values().any(|w| w.queue == name) {
            return Err(AcdError::State("callers are waiting in this queue"));
        }
        self.queues.remove(name);
        Ok(())
    }

    /// Puts an operator back in the state the log last had for them (after a restart),
    /// without new events.
    pub fn restore(&mut self, id: &str, state: OperatorState, now: u64) {
        self.add_operator(id, now);
        if let Some(op) = self.operators.get_mut(id) {
            op.enter(state, now);
        }
    }

    /// Whether any device of the operator is registered (checked by call control); an
    /// operator without one is not offered calls and does not count as available.
    pub fn set_registered(&mut self, id: &str, registered: bool, now: u64, out: &mut AcdOutputs) {
        let Some(op) = self.operators.get_mut(id) else {
            return;
        };
        if op.registered != registered {
            op.registered = registered;
            if registered {
                self.dispatch(now, out);
            }
        }
    }

    pub fn add_operator(&mut self, id: &str, now: u64) {
        self.operators
            .entry(id.to_string())
            .or_insert_with(|| Operator::new(id, now));
    }

    pub fn operator(&self, id: &str) -> Option<&Operator> {
        self.operators.get(id)
    }

    pub fn operators(&self) -> impl Iterator<Item = &Operator> {
        self.operators.values()
    }

    /// Callers waiting in a queue, in order.
    pub fn waiting(&self, queue: &str) -> Vec<CallRef> {
        self.waiting_since(queue)
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    /// The callers waiting in `queue` with when each entered (ms), longest first.
    pub fn waiting_since(&self, queue: &str) -> Vec<(CallRef, u64)> {
        let mut w: Vec<(&CallRef, &Waiting)> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.queue == queue)
            .collect();
        w.sort_by_key(|(_, w)| w.order);
        w.into_iter()
            .map(|(c, w)| (c.clone(), w.joined_ms))
            .collect()
    }

    /// Callers waiting in the queues an operator belongs to ("в очереди").
    pub fn waiting_for(&self, operator: &str) -> usize {
        self.waiting
            .values()
            .filter(|w| {
                self.queues[&w.queue]
                    .config
                    .members
                    .iter()
                    .any(|m| m.operator == operator)
            })
            .count()
    }

    fn position(&self, call: &str) -> usize {
        let Some(w) = self.waiting.get(call) else {
            return 0;
        };
        1 + self
            .waiting
            .values()
            .filter(|o| o.queue == w.queue && o.order < w.order)
            .count()
    }

    fn is_empty(&self, queue: &QueueConfig, rule: EmptyRule) -> bool {
        let members = || {
            queue
                .members
                .iter()
                .filter_map(|m| self.operators.get(&m.operator))
        };
        match rule {
            EmptyRule::Never => false,
            EmptyRule::NobodyLoggedIn => !members().any(Operator::is_logged_in),
            EmptyRule::NobodyAvailable => !members().any(|o| {
                o.is_logged_in() && o.registered && !matches!(o.state, OperatorState::Paused { .. })
            }),
        }
    }

    /// A caller enters a queue.
    pub fn join(
        &mut self,
        queue: &str,
        call: &str,
        now: u64,
        out: &mut AcdOutputs,
    ) -> Result<(), AcdError> {
        let q = self.queues.get(queue).ok_or(AcdError::UnknownQueue)?;
        if self.waiting.contains_key(call) || self.answered.contains_key(call) {
            return Err(AcdError::AlreadyQueued);
        }
        if self.is_empty(&q.config, q.config.join_empty) {
            return Err(AcdError::Refused(q.config.overflow.clone()));
        }
        self.next_order += 1;
        self.waiting.insert(
            call.to_string(),
            Waiting {
                queue: queue.to_string(),
                joined_ms: now,
                order: self.next_order,
                offers: Vec::new(),
                ring_until_ms: 0,
                next_offer_ms: now,
                missed_by: Vec::new(),
                next_announce_ms: now + q.config.announce_every_ms.unwrap_or(0),
                announced: None,
            },
        );
        let position = self.position(call);
        out.events.push(QueueEvent::new(
            now,
            QueueEventKind::Entered {
                queue: queue.to_string(),
                call: call.to_string(),
                position,
                service_level_ms: q.config.service_level_ms,
                short_abandon_ms: q.config.short_abandon_ms,
            },
        ));
        self.dispatch(now, out);
        Ok(())
    }

    /// An operator's device answered an offer. False when the offer is no longer valid
    /// (the caller left, someone else answered): call control hangs that leg up.
    pub fn answered(&mut self, call: &str, operator: &str, now: u64, out: &mut AcdOutputs) -> bool {
        let valid = self
            .waiting
            .get(call)
            .is_some_and(|w| w.offers.iter().any(|o| o == operator));
        if !valid {
            return false;
        }
        let w = self.waiting.remove(call).expect("checked");
        for other in w.offers.iter().filter(|o| *o != operator) {
            out.actions.push(Action::Cancel {
                call: call.to_string(),
                operator: other.clone(),
            });
            self.set_state(other, OperatorState::Ready, now);
        }
        let op = self
            .operators
            .get_mut(operator)
            .expect("offered operators exist");
        op.accepted += 1;
        op.missed_in_row = 0;
        self.set_state(
            operator,
            OperatorState::Talking {
                call: call.to_string(),
            },
            now,
        );
        let wait_ms = now - w.joined_ms;
        let service_level_ms = self.queues[&w.queue].config.service_level_ms;
        out.events.push(QueueEvent::new(
            now,
            QueueEventKind::Answered {
                queue: w.queue.clone(),
                call: call.to_string(),
                operator: operator.to_string(),
                wait_ms,
                within_service_level: wait_ms <= service_level_ms,
            },
        ));
        self.answered.insert(
            call.to_string(),
            Talk {
                queue: w.queue,
                operator: operator.to_string(),
                answered_ms: now,
                since_ms: now,
                held: false,
            },
        );
        self.dispatch(now, out);
        true
    }

    /// An operator's devices refused the offer (busy, declined, unreachable).
    pub fn declined(&mut self, call: &str, operator: &str, now: u64, out: &mut AcdOutputs) {
        self.missed(call, operator, now, out);
        self.dispatch(now, out);
    }

    fn missed(&mut self, call: &str, operator: &str, now: u64, out: &mut AcdOutputs) {
        let Some(w) = self.waiting.get_mut(call) else {
            return;
        };
        let Some(i) = w.offers.iter().position(|o| o == operator) else {
            return;
        };
        w.offers.remove(i);
        w.missed_by.push(operator.to_string());
        let queue = w.queue.clone();
        if w.offers.is_empty() {
            // At least a millisecond: an operator who cannot be rung at all must not be
            // offered the same caller again within the same instant.
            w.next_offer_ms = now + self.queues[&queue].config.retry_delay_ms.max(1);
        }
        let ring_ms = self
            .operators
            .get(operator)
            .map_or(0, |o| now.saturating_sub(o.since_ms));
        out.events.push(QueueEvent::new(
            now,
            QueueEventKind::NoAnswer {
                queue: queue.clone(),
                call: call.to_string(),
                operator: operator.to_string(),
                ring_ms,
            },
        ));
        let auto_pause = self.queues[&queue].config.auto_pause_after;
        let op = self
            .operators
            .get_mut(operator)
            .expect("offered operators exist");
        op.missed += 1;
        op.missed_in_row += 1;
        if auto_pause.is_some_and(|n| op.missed_in_row >= n) {
            op.missed_in_row = 0;
            self.pause_now(operator, AUTO_PAUSE_REASON.to_string(), true, now, out);
        } else {
            self.set_state(operator, OperatorState::Ready, now);
        }
    }

    /// The caller hung up (or was taken away) while waiting: abandoned.
    pub fn caller_left(&mut self, call: &str, now: u64, out: &mut AcdOutputs) {
        if !self.waiting.contains_key(call) {
            return;
        }
        let position = self.position(call);
        let w = self.waiting.remove(call).expect("checked");
        self.cancel_offers(call, &w, now, out);
        out.events.push(QueueEvent::new(
            now,
            QueueEventKind::Abandoned {
                queue: w.queue,
                call: call.to_string(),
                wait_ms: now - w.joined_ms,
                position,
            },
        ));
        self.dispatch(now, out);
    }

    fn cancel_offers(&mut self, call: &str, w: &Waiting, now: u64, out: &mut AcdOutputs) {
        for o in &w.offers {
            out.actions.push(Action::Cancel {
                call: call.to_string(),
                operator: o.clone(),
            });
            self.set_state(o, OperatorState::Ready, now);
        }
    }

    /// An answered queue call ended: the operator goes to wrap-up (or ready, or the pause
    /// they asked for meanwhile).
    pub fn call_ended(&mut self, call: &str, by: CompletedBy, now: u64, out: &mut AcdOutputs) {
        let Some(talk) = self.answered.remove(call) else {
            return;
        };
        if let Some(q) = self.queues.get_mut(&talk.queue) {
            q.avg_talk_ms = (q.avg_talk_ms * 4 + (now - talk.answered_ms)) / 5;
        }
        if talk.held {
            let kind = QueueEventKind::hold(
                talk.queue.clone(),
                call.to_string(),
                talk.operator.clone(),
                false,
            );
            out.events.push(QueueEvent::new(now, kind));
        }
        out.events.push(QueueEvent::new(
            now,
            QueueEventKind::Completed {
                queue: talk.queue.clone(),
                call: call.to_string(),
                operator: talk.operator.clone(),
                by,
                talk_ms: now - talk.answered_ms,
            },
        ));
        self.talk_over(&talk.operator, &talk.queue, call, now, out);
        self.dispatch(now, out);
    }

    /// `operator` stopped talking on the queue call `call`: wrap-up if the queue has it,
    /// else ready (or the pause asked for meanwhile). Nothing if they had moved on.
    fn talk_over(
        &mut self,
        operator: &str,
        queue: &str,
        call: &str,
        now: u64,
        out: &mut AcdOutputs,
    ) {
        let still_talking = self
            .operators
            .get(operator)
            .is_some_and(|o| matches!(&o.state, OperatorState::Talking { call: c } if c == call));
        if !still_talking {
            return;
        }
        let wrap_up_ms = self.queues.get(queue).map_or(0, |q| q.config.wrap_up_ms);
        if wrap_up_ms > 0 {
            self.set_state(
                operator,
                OperatorState::WrapUp {
                    until_ms: now + wrap_up_ms,
                },
                now,
            );
            out.events.push(QueueEvent::new(
                now,
                QueueEventKind::WrapUpStarted {
                    operator: operator.to_string(),
                    call: call.to_string(),
                },
            ));
        } else {
            self.after_work(operator, now, out);
        }
    }

    /// The operator talking on the answered queue call `call` handed it to the user `to`
    /// (blind or attended): the operator's talk ends (wrap-up follows as after a hang-up);
    /// `to`, if an operator who is free or on the consultation call, talks from now on.
    pub fn transferred(
        &mut self,
        call: &str,
        to: &str,
        attended: bool,
        now: u64,
        out: &mut AcdOutputs,
    ) {
        let Some(talk) = self.answered.get_mut(call) else {
            return;
        };
        if talk.operator == to {
            return;
        }
        let from = std::mem::replace(&mut talk.operator, to.to_string());
        let talk_ms = now - std::mem::replace(&mut talk.since_ms, now);
        let (queue, held) = (talk.queue.clone(), std::mem::take(&mut talk.held));
        if held {
            // The transferor's hold ends with their leg; the target is taken off hold.
            let kind = QueueEventKind::hold(queue.clone(), call.to_string(), from.clone(), false);
            out.events.push(QueueEvent::new(now, kind));
        }
        out.events.push(QueueEvent::new(
            now,
            QueueEventKind::Transferred {
                queue: queue.clone(),
                call: call.to_string(),
                from: from.clone(),
                to: to.to_string(),
                attended,
                talk_ms,
            },
        ));
        let free = self.operators.get(to).is_some_and(|o| match &o.state {
            OperatorState::Ready => true,
            // The consultation call of an attended transfer (not another queue call).
            OperatorState::Talking { call: c } => !self.answered.contains_key(c),
            _ => false,
        });
        if free {
            self.set_state(
                to,
                OperatorState::Talking {
                    call: call.to_string(),
                },
                now,
            );
        }
        self.talk_over(&from, &queue, call, now, out);
        self.dispatch(now, out);
    }

    /// A party of the answered queue call `call` put it on hold (`held`) or took it off.
    pub fn hold(&mut self, call: &str, held: bool, now: u64, out: &mut AcdOutputs) {
        let Some(talk) = self.answered.get_mut(call) else {
            return;
        };
        if talk.held == held {
            return;
        }
        talk.held = held;
        let kind = QueueEventKind::hold(
            talk.queue.clone(),
            call.to_string(),
            talk.operator.clone(),
            held,
        );
        out.events.push(QueueEvent::new(now, kind));
    }

    /// A call not from a queue (direct, outbound) reached or left an operator: busy
    /// operators are never offered queue calls.
    pub fn direct_call(
        &mut self,
        operator: &str,
        call: &str,
        active: bool,
        now: u64,
        out: &mut AcdOutputs,
    ) {
        let Some(op) = self.operators.get(operator) else {
            return;
        };
        match (&op.state, active) {
            (OperatorState::Ready, true) => self.set_state(
                operator,
                OperatorState::Talking {
                    call: call.to_string(),
                },
                now,
            ),
            (OperatorState::Talking { call: c }, false) if c == call => {
                self.after_work(operator, now, out);
                self.dispatch(now, out);
            }
            _ => {}
        }
    }

    /// Ready, or the pause asked for while busy.
    fn after_work(&mut self, operator: &str, now: u64, out: &mut AcdOutputs) {
        let Some(op) = self.operators.get_mut(operator) else {
            return;
        };
        match op.pending_pause.take() {
            Some(reason) => self.pause_now(operator, reason, false, now, out),
            None => self.set_state(operator, OperatorState::Ready, now),
        }
    }

    fn state_of(&self, operator: &str) -> Result<OperatorState, AcdError> {
        self.operators
            .get(operator)
            .map(|o| o.state.clone())
            .ok_or(AcdError::UnknownOperator)
    }

    pub fn login(
        &mut self,
        operator: &str,
        now: u64,
        out: &mut AcdOutputs,
    ) -> Result<(), AcdError> {
        if self.state_of(operator)? != OperatorState::Offline {
            return Ok(());
        }
        out.events.push(QueueEvent::new(
            now,
            QueueEventKind::Login {
                operator: operator.to_string(),
            },
        ));
        self.set_state(operator, OperatorState::Ready, now);
        self.dispatch(now, out);
        Ok(())
    }

    /// The work day ends. Not during a call; an offer ringing is withdrawn.
    pub fn logout(
        &mut self,
        operator: &str,
        now: u64,
        out: &mut AcdOutputs,
    ) -> Result<(), AcdError> {
        match self.state_of(operator)? {
            OperatorState::Offline => return Ok(()),
            OperatorState::Talking { .. } => return Err(AcdError::State("in a call")),
            state => self.interrupt(operator, state, now, out),
        }
        self.operators
            .get_mut(operator)
            .expect("checked")
            .pending_pause = None;
        self.set_state(operator, OperatorState::Offline, now);
        out.events.push(QueueEvent::new(
            now,
            QueueEventKind::Logout {
                operator: operator.to_string(),
            },
        ));
        self.leave_empty(now, out);
        self.dispatch(now, out);
        Ok(())
    }

    /// Pause with a reason. While talking or in wrap-up, the pause starts when that ends;
    /// an offer ringing is withdrawn (not counted as missed).
    pub fn pause(
        &mut self,
        operator: &str,
        reason: &str,
        now: u64,
        out: &mut AcdOutputs,
    ) -> Result<(), AcdError> {
        match self.state_of(operator)? {
            OperatorState::Offline => return Err(AcdError::State("not logged in")),
            OperatorState::Talking { .. } => {
                self.operators
                    .get_mut(operator)
                    .expect("known")
                    .pending_pause = Some(reason.to_string());
                return Ok(());
            }
            state => self.interrupt(operator, state, now, out),
        }
        self.pause_now(operator, reason.to_string(), false, now, out);
        self.leave_empty(now, out);
        self.dispatch(now, out);
        Ok(())
    }

    fn pause_now(
        &mut self,
        operator: &str,
        reason: String,
        auto: bool,
        now: u64,
        out: &mut AcdOutputs,
    ) {
        out.events.push(QueueEvent::new(
            now,
            QueueEventKind::Paused {
                operator: operator.to_string(),
                reason: reason.clone(),
                auto,
            },
        ));
        self.set_state(operator, OperatorState::Paused { reason }, now);
    }

    /// Back to work ("В работу") from a pause or wrap-up.
    pub fn resume(
        &mut self,
        operator: &str,
        now: u64,
        out: &mut AcdOutputs,
    ) -> Result<(), AcdError> {
        let state = self.state_of(operator)?;
        self.operators
            .get_mut(operator)
            .expect("known")
            .pending_pause = None;
        match state {
            OperatorState::Paused { .. } => out.events.push(QueueEvent::new(
                now,
                QueueEventKind::Resumed {
                    operator: operator.to_string(),
                },
            )),
            state @ OperatorState::WrapUp { .. } => self.interrupt(operator, state, now, out),
            OperatorState::Ready => return Ok(()),
            _ => return Err(AcdError::State("not paused")),
        }
        self.set_state(operator, OperatorState::Ready, now);
        self.dispatch(now, out);
        Ok(())
    }

    /// Ends what the operator was doing for a pause or logout: a wrap-up ends, an offer
    /// ringing is taken back (not their miss).
    fn interrupt(&mut self, operator: &str, state: OperatorState, now: u64, out: &mut AcdOutputs) {
        match state {
            OperatorState::Ringing { call } => self.withdraw(&call, operator, now, out),
            OperatorState::WrapUp { .. } => out.events.push(QueueEvent::new(
                now,
                QueueEventKind::WrapUpEnded {
                    operator: operator.to_string(),
                },
            )),
            _ => {}
        }
    }

    fn withdraw(&mut self, call: &str, operator: &str, now: u64, out: &mut AcdOutputs) {
        if let Some(w) = self.waiting.get_mut(call) {
            w.offers.retain(|o| o != operator);
            if w.offers.is_empty() {
                w.next_offer_ms = now;
            }
        }
        out.actions.push(Action::Cancel {
            call: call.to_string(),
            operator: operator.to_string(),
        });
    }

    /// The clock: ring timeouts, wrap-ups ending, callers waiting too long.
    pub fn tick(&mut self, now: u64, out: &mut AcdOutputs) {
        let timed_out: Vec<(CallRef, String)> = self
            .waiting
            .iter()
            .filter(|(_, w)| !w.offers.is_empty() && now >= w.ring_until_ms)
            .flat_map(|(c, w)| w.offers.iter().map(move |o| (c.clone(), o.clone())))
            .collect();
        for (call, operator) in timed_out {
            out.actions.push(Action::Cancel {
                call: call.clone(),
                operator: operator.clone(),
            });
            self.missed(&call, &operator, now, out);
        }
        let done: Vec<String> = self
            .operators
            .values()
            .filter(|o| matches!(o.state, OperatorState::WrapUp { until_ms } if now >= until_ms))
            .map(|o| o.id.clone())
            .collect();
        for op in done {
            out.events.push(QueueEvent::new(
                now,
                QueueEventKind::WrapUpEnded {
                    operator: op.clone(),
                },
            ));
            self.after_work(&op, now, out);
        }
        let expired: Vec<CallRef> = self
            .waiting
            .iter()
            .filter(|(_, w)| {
                self.queues[&w.queue]
                    .config
                    .max_wait_ms
                    .is_some_and(|m| now >= w.joined_ms + m)
            })
            .map(|(c, _)| c.clone())
            .collect();
        for call in expired {
            self.overflow(&call, now, out);
        }
        self.leave_empty(now, out);
        self.announce(now, out);
        self.dispatch(now, out);
    }

    /// Position (and wait) announcements that are due.
    fn announce(&mut self, now: u64, out: &mut AcdOutputs) {
        let mut due: Vec<(u64, CallRef)> = self
            .waiting
            .iter()
            .filter(|(_, w)| {
                self.queues[&w.queue].config.announce_every_ms.is_some()
                    && now >= w.next_announce_ms
            })
            .map(|(c, w)| (w.order, c.clone()))
            .collect();
        due.sort();
        for (_, call) in due {
            let position = self.position(&call);
            let w = &self.waiting[&call];
            let q = &self.queues[&w.queue];
            let config = &q.config;
            let available = config
                .members
                .iter()
                .filter_map(|m| self.operators.get(&m.operator))
                .filter(|o| {
                    o.is_logged_in()
                        && o.registered
                        && !matches!(o.state, OperatorState::Paused { .. })
                })
                .count()
                .max(1);
            let wait_ms = config
                .announce_wait
                .then(|| position.div_ceil(available) as u64 * q.avg_talk_ms);
            let improved_only = config.announce_only_improved;
            let every = config.announce_every_ms.unwrap_or(u64::MAX / 2);
            let w = self.waiting.get_mut(&call).expect("due");
            w.next_announce_ms = now + every;
            if improved_only && w.announced.is_some_and(|a| position >= a) {
                continue;
            }
            w.announced = Some(position);
            out.actions.push(Action::Announce {
                call,
                position,
                wait_ms,
            });
        }
    }

    /// Callers of queues that became empty by their leave rule go to overflow.
    fn leave_empty(&mut self, now: u64, out: &mut AcdOutputs) {
        let leaving: Vec<CallRef> = self
            .waiting
            .iter()
            .filter(|(_, w)| {
                let q = &self.queues[&w.queue].config;
                self.is_empty(q, q.leave_empty)
            })
            .map(|(c, _)| c.clone())
            .collect();
        for call in leaving {
            self.overflow(&call, now, out);
        }
    }

    fn overflow(&mut self, call: &str, now: u64, out: &mut AcdOutputs) {
        let Some(w) = self.waiting.remove(call) else {
            return;
        };
        self.cancel_offers(call, &w, now, out);
        let to = self.queues[&w.queue].config.overflow.clone();
        let wait_ms = now - w.joined_ms;
        let kind = match &to {
            Overflow::Hangup => QueueEventKind::TimedOut {
                queue: w.queue.clone(),
                call: call.to_string(),
                wait_ms,
            },
            _ => QueueEventKind::Overflowed {
                queue: w.queue.clone(),
                call: call.to_string(),
                wait_ms,
                to: to.clone(),
            },
        };
        out.events.push(QueueEvent::new(now, kind));
        out.actions.push(Action::Overflow {
            call: call.to_string(),
            to,
        });
    }

    /// Offers waiting callers to ready operators: higher-priority queues first, then the
    /// longest waiting, their wait multiplied by their queue's weight.
    fn dispatch(&mut self, now: u64, out: &mut AcdOutputs) {
        let mut due: Vec<(i32, std::cmp::Reverse<u64>, u64, CallRef)> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.offers.is_empty() && now >= w.next_offer_ms)
            .map(|(c, w)| {
                let config = &self.queues[&w.queue].config;
                let weighted = (now - w.joined_ms).saturating_mul(config.weight.max(1) as u64);
                (
                    -config.priority,
                    std::cmp::Reverse(weighted),
                    w.order,
                    c.clone(),
                )
            })
            .collect();
        due.sort();
        for (_, _, _, call) in due {
            let w = &self.waiting[&call];
            let queue = &self.queues[&w.queue];
            let config = &queue.config;
            let candidates = |skip: &[String]| -> Vec<Candidate> {
                config
                    .members
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| {
                        let o = self.operators.get(&m.operator)?;
                        (o.is_ready() && o.registered && !skip.contains(&m.operator)).then_some(
                            Candidate {
                                member: i,
                                penalty: m.penalty,
                                idle_since: o.idle_since_ms,
                                calls_today: o.accepted,
                                talk_ms_today: o.talk_ms,
                            },
                        )
                    })
                    .collect()
            };
            let mut ready = candidates(&w.missed_by);
            let new_round = ready.is_empty() && !w.missed_by.is_empty();
            if new_round {
                // Everyone ready has missed this caller: start a new round.
                ready = candidates(&[]);
            }
            if config.strategy.uses_tiers() {
                // The queue's tiers matter only when waiting unlocks them one by one.
                let penalties: Vec<u32> = match config.tier_step_ms {
                    Some(_) => config.members.iter().map(|m| m.penalty).collect(),
                    None => Vec::new(),
                };
                ready = tier(ready, &penalties, now - w.joined_ms, config.tier_step_ms);
            }
            let picked = select(config.strategy, &ready, queue.last_offered, &mut self.rng);
            if picked.is_empty() {
                continue;
            }
            let operators: Vec<String> = picked
                .iter()
                .map(|i| config.members[*i].operator.clone())
                .collect();
            let (queue_name, ring_ms) = (config.name.clone(), config.ring_timeout_ms);
            if let Some(q) = self.queues.get_mut(&queue_name) {
                q.last_offered = picked.last().copied();
            }
            let w = self.waiting.get_mut(&call).expect("due");
            if new_round {
                w.missed_by.clear();
            }
            w.offers = operators.clone();
            w.ring_until_ms = now + ring_ms;
            for operator in operators {
                self.set_state(
                    &operator,
                    OperatorState::Ringing { call: call.clone() },
                    now,
                );
                out.events.push(QueueEvent::new(
                    now,
                    QueueEventKind::Offered {
                        queue: queue_name.clone(),
                        call: call.clone(),
                        operator: operator.clone(),
                    },
                ));
                out.actions.push(Action::Offer {
                    call: call.clone(),
                    queue: queue_name.clone(),
                    operator,
                });
            }
        }
    }

    fn set_state(&mut self, operator: &str, state: OperatorState, now: u64) {
        if let Some(op) = self.operators.get_mut(operator) {
            op.enter(state, now);
        }
    }
}

/// The reason given to an operator paused for missing offers.
pub const AUTO_PAUSE_REASON: &str = "Пропущенные вызовы";
