//! Calls through ACD queues: call control's side of the [`Acd`] core. The caller is answered
//! and waits; the core's offers ring an operator's devices as branches; the first device to
//! answer is bridged to the caller. What happens to calls is fed back to the core, and its
//! decisions are carried out, until both agree ([`CallControl::settle`]).

use super::{remote_of, BranchState, Call, CallControl, Context, Outputs, Ring, State};
use crate::event::{EndCause, EventKind, LegRole};
use crate::queue::{Acd, AcdError, AcdOutputs, Action, CompletedBy, Overflow, QueueConfig};
use kolokol_media::prompts::Prompts;
use kolokol_media::sdp::{self, AudioDescription};
use kolokol_media::Sound;
use std::path::Path;
use std::sync::Arc;

/// What the queue core must hear about a call.
#[derive(Debug)]
pub(super) enum QueueInput {
    /// An operator's device answered an offer with this SDP.
    Answered {
        call: String,
        operator: String,
        branch: usize,
        answer: AudioDescription,
    },
    /// Every device of the operator failed or refused.
    Declined { call: String, operator: String },
    /// The caller hung up while waiting.
    CallerLeft { call: String },
    /// An answered queue call ended.
    Ended { call: String, by: CompletedBy },
    /// The operator of an answered queue call handed it to the user `to`.
    Transferred {
        call: String,
        to: String,
        attended: bool,
    },
    /// A party of an answered queue call put it on hold, or took it off.
    Hold { call: String, held: bool },
    /// A user's call that did not come from a queue began or ended (busy operators get no
    /// queue calls).
    Direct {
        operator: String,
        call: String,
        active: bool,
    },
}

impl CallControl {
    /// The queue core, for reading (operator states, waiting callers).
    pub fn acd(&self) -> &Acd {
        &self.acd
    }

    /// Runs an operator command or configuration change on the queue core and carries out
    /// what it decides (offers, cancels, overflows).
    pub fn with_acd<R>(
        &mut self,
        now: u64,
        out: &mut Outputs,
        f: impl FnOnce(&mut Acd, &mut AcdOutputs) -> R,
    ) -> R {
        let mut decided = AcdOutputs::default();
        let r = f(&mut self.acd, &mut decided);
        self.apply(decided, now, out);
        self.settle(now, out);
        r
    }

    /// Replaces the queues' configuration (on start and after API changes); their music is
    /// decoded here, once.
    pub fn set_queues(&mut self, queues: Vec<QueueConfig>, now: u64) {
        for q in queues {
            let music = q.music.as_ref().and_then(|path| {
                Sound::load(Path::new(path))
                    .inspect_err(|e| tracing::warn!(queue = %q.name, error = %e, "music on hold not loaded; playing the default"))
                    .ok()
            });
            let music = music.map_or_else(|| self.hold_music.clone(), Arc::new);
            self.music.insert(q.name.clone(), music);
            self.acd.set_queue(q, now);
        }
    }

    /// Takes a queue out of service once nobody waits in it.
    pub fn remove_queue(&mut self, name: &str) -> Result<(), AcdError> {
        self.acd.remove_queue(name)?;
        self.music.remove(name);
        Ok(())
    }

    /// The prompts announcements are made of (loaded or generated outside call control).
    pub fn set_prompts(&mut self, prompts: Prompts) {
        self.prompts = Arc::new(prompts);
    }

    /// "Your position is N (estimated wait M minutes)", then the music again.
    fn announce(&self, id: &str, position: usize, wait_ms: Option<u64>) {
        let Some(call) = self.ids.get(id).and_then(|k| self.calls.get(k)) else {
            return;
        };
        let Some(queue) = &call.queue else {
            return;
        };
        let mut parts = vec![self.prompts.position(position)];
        if let Some(ms) = wait_ms {
            parts.push(self.prompts.wait_minutes(ms.div_ceil(60_000) as usize));
        }
        parts.push(self.prompts.stay());
        let words = Sound::concat(&parts.iter().collect::<Vec<_>>());
        let music = self.music.get(queue).unwrap_or(&self.hold_music).clone();
        if let Err(e) = self
            .ctx
            .media
            .announce(call.caller.endpoint.id, Arc::new(words), music)
        {
            tracing::warn!(call = %call.id, error = %e, "announcement not played");
        }
    }

    /// The waiting caller hears the queue's music.
    fn play_music(&self, call: &Call, queue: &str) {
        let music = self.music.get(queue).unwrap_or(&self.hold_music).clone();
        if let Err(e) = self.ctx.media.play(call.caller.endpoint.id, music) {
            tracing::warn!(call = %call.id, error = %e, "music on hold not played");
        }
    }

    /// Answers the caller and puts the call into `queue`.
    pub(super) fn enqueue(&mut self, key: u64, queue: &str, now: u64, out: &mut Outputs) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.queue = Some(queue.to_string());
        call.state = State::Queued;
        Self::answer_caller(&self.ctx, call, now, out);
        let id = call.id.clone();
        self.play_music(&self.calls[&key], queue);
        let mut decided = AcdOutputs::default();
        if let Err(e) = self.acd.join(queue, &id, now, &mut decided) {
            let to = match e {
                AcdError::Refused(to) => to,
                _ => Overflow::Hangup,
            };
            decided.actions.push(Action::Overflow { call: id, to });
        }
        self.apply(decided, now, out);
    }

    /// Feeds pending call changes to the queue core and carries out its decisions, until
    /// nothing is left.
    pub(super) fn settle(&mut self, now: u64, out: &mut Outputs) {
        while !out.pending.is_empty() {
            for input in std::mem::take(&mut out.pending) {
                let mut decided = AcdOutputs::default();
                match input {
                    QueueInput::Answered {
                        call,
                        operator,
                        branch,
                        answer,
                    } => {
                        // A user a queue overflowed to is no queue offer: the first answer wins.
                        let won = !self.in_queue(&call)
                            || self.acd.answered(&call, &operator, now, &mut decided);
                        self.connect(&call, branch, won, &answer, now, out);
                    }
                    QueueInput::Declined { call, operator } if self.in_queue(&call) => {
                        self.acd.declined(&call, &operator, now, &mut decided)
                    }
                    QueueInput::Declined { call, .. } => {
                        // The user a queue overflowed to did not take it: nobody is left.
                        if let Some(c) = self.ids.get(&call).and_then(|k| self.calls.get_mut(k)) {
                            Self::hang_up(&self.ctx, c, EndCause::NoAnswer, now, out);
                        }
                    }
                    QueueInput::CallerLeft { call } => {
                        self.acd.caller_left(&call, now, &mut decided)
                    }
                    QueueInput::Ended { call, by } => {
                        self.acd.call_ended(&call, by, now, &mut decided)
                    }
                    QueueInput::Transferred { call, to, attended } => {
                        self.acd
                            .transferred(&call, &to, attended, now, &mut decided)
                    }
                    QueueInput::Hold { call, held } => {
                        self.acd.hold(&call, held, now, &mut decided)
                    }
                    QueueInput::Direct {
                        operator,
                        call,
                        active,
                    } => self
                        .acd
                        .direct_call(&operator, &call, active, now, &mut decided),
                }
                self.apply(decided, now, out);
            }
        }
    }

    /// Carries out the queue core's decisions.
    pub(super) fn apply(&mut self, decided: AcdOutputs, now: u64, out: &mut Outputs) {
        out.queue_events.extend(decided.events);
        for action in decided.actions {
            match action {
                Action::Offer { call, operator, .. } => {
                    self.ring_operator(&call, operator, now, out)
                }
                Action::Cancel { call, operator } => {
                    let Some(call) = self.ids.get(&call).and_then(|k| self.calls.get_mut(k)) else {
                        continue;
                    };
                    for i in 0..call.branches.len() {
                        if call.branches[i].operator.as_deref() == Some(operator.as_str()) {
                            Self::cancel_branch(&self.ctx, call, i, now, out);
                        }
                    }
                }
                Action::Overflow { call, to } => self.overflow(&call, to, now, out),
                Action::Announce {
                    call,
                    position,
                    wait_ms,
                } => self.announce(&call, position, wait_ms),
            }
        }
    }

    /// Rings every device of the operator with the waiting caller.
    fn ring_operator(&mut self, id: &str, operator: String, now: u64, out: &mut Outputs) {
        let key = self.ids.get(id).copied();
        let queued = key
            .and_then(|k| self.calls.get(&k))
            .is_some_and(|c| c.state == State::Queued);
        let targets = match self.user_targets(&operator, now) {
            Ok((targets, _)) if queued => targets,
            _ => {
                // Nothing registered (or the caller is gone): the operator cannot take it.
                out.pending.push(QueueInput::Declined {
                    call: id.to_string(),
                    operator,
                });
                return;
            }
        };
        self.ring_waiting(key.expect("queued"), targets, operator, now, out);
    }

    /// Rings a person's devices for a caller kolokol has answered.
    fn ring_waiting(
        &mut self,
        key: u64,
        targets: Vec<super::RingTarget>,
        person: String,
        now: u64,
        out: &mut Outputs,
    ) {
        let call = self.calls.get_mut(&key).expect("known");
        let ring = Ring {
            targets,
            from_uri: call.from_uri.clone(),
            offer: call.callee_offer.clone(),
            endpoint: call.callee_endpoint,
            max_forwards: 70,
            for_transfer: false,
            operator: Some(person),
            credentials: None,
        };
        Self::ring(&self.ctx, &mut self.dialogs, key, call, ring, now, out);
    }

    fn overflow(&mut self, id: &str, to: Overflow, now: u64, out: &mut Outputs) {
        let Some(key) = self.ids.get(id).copied() else {
            return;
        };
        if let Overflow::User(login) = &to {
            if let Ok((targets, _)) = self.user_targets(login, now) {
                let call = self.calls.get_mut(&key).expect("known");
                call.queue = None;
                call.ring_deadline = now + self.ctx.config.ring_timeout_s * 1000;
                self.ring_waiting(key, targets, login.clone(), now, out);
                return;
            }
        }
        if let Overflow::Queue(next) = &to {
            let mut decided = AcdOutputs::default();
            if self.acd.join(next, id, now, &mut decided).is_ok() {
                if let Some(call) = self.calls.get_mut(&key) {
                    call.queue = Some(next.clone());
                }
                self.play_music(&self.calls[&key], next);
                self.apply(decided, now, out);
                return;
            }
        }
        // A goodbye announcement comes with the prompts; until then the caller is hung up.
        if let Some(call) = self.calls.get_mut(&key) {
            Self::hang_up(&self.ctx, call, EndCause::NoAnswer, now, out);
        }
    }

    fn in_queue(&self, id: &str) -> bool {
        self.ids
            .get(id)
            .and_then(|k| self.calls.get(k))
            .is_some_and(|c| c.queue.is_some())
    }

    /// The queue core's verdict on an operator's answer: bridged to the caller, or (the
    /// offer was no longer valid) hung up.
    fn connect(
        &mut self,
        id: &str,
        i: usize,
        won: bool,
        answer: &AudioDescription,
        now: u64,
        out: &mut Outputs,
    ) {
        let Some(call) = self.ids.get(id).and_then(|k| self.calls.get_mut(k)) else {
            return;
        };
        if !won || call.state != State::Queued {
            call.branches[i].state = BranchState::Done;
            Self::send_bye(&self.ctx, &mut call.branches[i].leg, now, out);
            return;
        }
        let leg = &call.branches[i].leg;
        self.ctx.media.set_remote(
            call.callee_endpoint.id,
            remote_of(answer, answer.codecs[0], &leg.peer),
        );
        call.branches[i].state = BranchState::Answered;
        call.winner = Some(i);
        call.state = State::Answered;
        for j in 0..call.branches.len() {
            if j != i {
                Self::cancel_branch(&self.ctx, call, j, now, out);
            }
        }
        Self::bridge(&self.ctx, call, i, now, out);
        let by = call.branches[i].operator.clone().unwrap_or_default();
        if call.queue.is_none() {
            out.pending.push(QueueInput::Direct {
                operator: by.clone(),
                call: call.id.clone(),
                active: true,
            });
        }
        call.emit(Some(LegRole::Callee), EventKind::Answered { by }, now, out);
    }

    /// A device of an offered operator answered (2xx, already acknowledged).
    pub(super) fn operator_answered(
        ctx: &Context,
        call: &mut Call,
        i: usize,
        operator: String,
        scan: &crate::sip::Scan<'_>,
        now: u64,
        out: &mut Outputs,
    ) {
        let answer = super::message::sdp(scan)
            .and_then(|s| sdp::parse(s).ok())
            .filter(|a| !a.codecs.is_empty());
        match answer {
            Some(answer) if call.state == State::Queued => out.pending.push(QueueInput::Answered {
                call: call.id.clone(),
                operator,
                branch: i,
                answer,
            }),
            _ => {
                Self::send_bye(ctx, &mut call.branches[i].leg, now, out);
                if call.branches[i].state != BranchState::Done {
                    Self::branch_failed(ctx, call, i, 488, now, out);
                }
            }
        }
    }

    /// A device of an offered operator failed; when it was their last one ringing (and
    /// kolokol did not cancel it itself), the operator missed the offer.
    pub(super) fn operator_missed(
        call: &Call,
        operator: String,
        was: BranchState,
        out: &mut Outputs,
    ) {
        let cancelled = matches!(was, BranchState::Cancelling { .. });
        let ringing = call.branches.iter().any(|b| {
            b.operator.as_deref() == Some(operator.as_str()) && b.state != BranchState::Done
        });
        if !cancelled && !ringing && call.state == State::Queued {
            out.pending.push(QueueInput::Declined {
                call: call.id.clone(),
                operator,
            });
        }
    }

    /// The call ends: the queue core hears how, and the users in it are free again.
    pub(super) fn left_queue_core(call: &Call, by: Option<LegRole>, out: &mut Outputs) {
        let id = call.id.clone();
        match (&call.queue, call.state) {
            (Some(_), State::Queued) => out
                .pending
                .push(QueueInput::CallerLeft { call: id.clone() }),
            (Some(_), State::Answered) => out.pending.push(QueueInput::Ended {
                call: id.clone(),
                by: match by {
                    Some(LegRole::Caller) => CompletedBy::Caller,
                    Some(LegRole::Callee) => CompletedBy::Operator,
                    None => CompletedBy::System,
                },
            }),
            _ => {}
        }
        let callee = call
            .winner
            .filter(|_| call.queue.is_none())
            .map(|w| call.branches[w].target.clone());
        for user in call.caller_user.iter().cloned().chain(callee) {
            out.pending.push(QueueInput::Direct {
                operator: user,
                call: id.clone(),
                active: false,
            });
        }
    }
}
