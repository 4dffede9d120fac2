//! Click-to-call: kolokol rings the user's own devices first (told by a header that it is
//! their click-to-call, so a softphone may answer by itself); when one answers, the user
//! hears ringback while the number is dialled through their trunk, and the call goes on as
//! an outbound call of theirs placed from that phone (same events, recording, limits).
//!
//! The call has no caller INVITE: its `caller` leg is an empty stand-in holding the
//! endpoint towards the user's devices, and the device that answered is the left party
//! (`Call::left`), as a transfer makes a branch one.

use super::leg::{Leg, Peer};
use super::message;
use super::queued::QueueInput;
use super::routing::Trunk;
use super::{
    is_phone_number, recording_path, remote_of, BranchState, Call, CallControl, Context, Outputs,
    Ring, Side, State, CODECS, TELEPHONE_EVENT_PT,
};
use crate::event::{CallDirection, EventKind, LegRole};
use crate::sip;
use kolokol_media::sdp::{self, Direction};
use std::sync::Arc;

/// Names the number in the INVITE that rings the user's own device for a click-to-call.
pub const CLICK_HEADER: &str = "X-Kolokol-Click-To-Call";

/// Click-to-call calls one user may have ringing (their devices or the number) at once.
pub const SETUPS_PER_USER: usize = 1;

/// Longest number dialled, in digits.
const MAX_DIGITS: usize = 32;

#[derive(Debug)]
pub(super) struct ClickToCall {
    /// The number dialled once the user answers.
    pub number: String,
    trunk: Trunk,
    /// The branch of the user's device that answered.
    pub device: Option<usize>,
    /// The number's trunk is to be rung (set when the device answers, done by the caller
    /// of the response handling, which owns the dialog index).
    dial: bool,
    /// The far end's first ringing was logged.
    rang: bool,
}

/// Why a click-to-call was not placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClickError {
    #[error("not a phone number")]
    Malformed,
    #[error("no route for this number: the user has no trunk for outbound calls")]
    NoRoute,
    /// A colleague's extension or a number of ours: reached from the phone, not dialled
    /// out (which is all click-to-call does).
    #[error("an internal number: call it from the phone")]
    Internal,
    #[error("no device of the user is registered")]
    NoDevice,
    #[error("too many calls being placed at once")]
    TooMany,
    #[error("not taking calls now")]
    Unavailable,
}

/// The number as the trunk gets it: digits with an optional leading `+`, the usual
/// separators (space, `-`, `.`, parentheses) dropped.
pub fn dialable(to: &str) -> Option<String> {
    let number: String = to
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = number.strip_prefix('+').unwrap_or(&number).len();
    (is_phone_number(&number) && digits <= MAX_DIGITS).then_some(number)
}

impl CallControl {
    /// Places a click-to-call for user `login` to `to`; returns kolokol's call id.
    pub fn click_to_call(
        &mut self,
        login: &str,
        to: &str,
        now: u64,
        out: &mut Outputs,
    ) -> Result<String, ClickError> {
        if self.drain_deadline.is_some() {
            return Err(ClickError::Unavailable);
        }
        let number = dialable(to).ok_or(ClickError::Malformed)?;
        if self.ctx.dialplan.user(&number).is_some() || self.ctx.dialplan.number(&number).is_some()
        {
            return Err(ClickError::Internal);
        }
        let user = self.ctx.dialplan.user(login).ok_or(ClickError::NoDevice)?;
        let trunk = user
            .trunk
            .and_then(|id| self.ctx.dialplan.trunk(id))
            .ok_or(ClickError::NoRoute)?;
        let calls = &self.calls;
        let placed = self.placed.entry(user.login.clone()).or_default();
        placed.retain(|k| calls.get(k).is_some_and(|c| c.state != State::Ended));
        let setting_up = placed
            .iter()
            .filter(|k| calls[k].click.is_some() && calls[k].state == State::Ringing)
            .count();
        if placed.len() >= self.ctx.config.max_per_user || setting_up >= SETUPS_PER_USER {
            return Err(ClickError::TooMany);
        }
        let (targets, _) = self
            .user_targets(&user.login, now)
            .map_err(|_| ClickError::NoDevice)?;
        let device_endpoint = self
            .ctx
            .media
            .open_endpoint()
            .map_err(|_| ClickError::Unavailable)?;
        let far_endpoint = match self.ctx.media.open_endpoint() {
            Ok(e) => e,
            Err(_) => {
                self.ctx.media.close_endpoint(device_endpoint.id);
                return Err(ClickError::Unavailable);
            }
        };
        let key = self.next_key;
        self.next_key += 1;
        let id = message::token();
        let host = self.ctx.local.host();
        let own = user.extension.clone().unwrap_or(user.login.clone());
        let presented = trunk.caller_id.clone().unwrap_or(own.clone());
        let offer = |e: kolokol_media::relay::Endpoint| {
            let te = Some(TELEPHONE_EVENT_PT);
            sdp::offer(e.address, e.port, &CODECS, te, Direction::SendRecv)
        };
        // The stand-in for a caller INVITE: it matches no dialog and sends nothing.
        let mut caller = Leg::new(
            String::new(),
            String::new(),
            String::new(),
            targets[0].2,
            device_endpoint,
        );
        caller.ended = true;
        let record = user.record && self.ctx.config.record;
        let mut call = Call {
            id: id.clone(),
            seq: 0,
            state: State::Ringing,
            caller,
            invite: super::leg::ServerTx {
                request: Vec::new(),
                source: targets[0].2.addr,
                method: "INVITE".into(),
                cseq: 0,
                branch: String::new(),
            },
            last_response: None,
            final_sent: true,
            caller_answer: String::new(),
            from_uri: format!("<sip:{presented}@{host}>"),
            caller_name: own.clone(),
            late_offer: false,
            branches: Vec::new(),
            left: Side::Caller,
            winner: None,
            transfer: None,
            queue: None,
            callee_offer: offer(far_endpoint),
            callee_endpoint: far_endpoint,
            caller_user: Some(user.login.clone()),
            bridge: None,
            recording: record.then(|| recording_path(&self.ctx.config.recordings, now, &id)),
            ring_deadline: now + self.ctx.config.ring_timeout_s * 1000,
            ended_at: None,
            click: Some(ClickToCall {
                number: number.clone(),
                trunk: trunk.clone(),
                device: None,
                dial: false,
                rang: false,
            }),
        };
        call.emit(
            Some(LegRole::Caller),
            EventKind::Offered {
                direction: CallDirection::Outbound,
                from: own,
                to: number.clone(),
                user: Some(user.login.clone()),
                number: Some(number.clone()),
                trunk: Some(trunk.name.clone()),
            },
            now,
            out,
        );
        // The user's phone shows whom it is about to call.
        let ring = Ring {
            targets,
            from_uri: format!("\"{number}\" <sip:{number}@{host}>"),
            offer: offer(device_endpoint),
            endpoint: device_endpoint,
            max_forwards: 70,
            for_transfer: false,
            operator: None,
            credentials: None,
        };
        Self::ring(&self.ctx, &mut self.dialogs, key, &mut call, ring, now, out);
        self.placed.entry(user.login.clone()).or_default().push(key);
        out.pending.push(QueueInput::Direct {
            operator: user.login,
            call: id.clone(),
            active: true,
        });
        self.ids.insert(id.clone(), key);
        self.calls.insert(key, call);
        self.settle(now, out);
        Ok(id)
    }

    /// A provisional answer on a click-to-call: the user's own phone ringing says nothing;
    /// the far end's first ringing is logged, and its early media bridged.
    pub(super) fn click_progress(
        ctx: &Context,
        call: &mut Call,
        i: usize,
        status: u16,
        scan: &sip::Scan<'_>,
        now: u64,
        out: &mut Outputs,
    ) {
        let Some(click) = &mut call.click else {
            return;
        };
        if click.device.is_none_or(|d| d == i) || status == 100 || call.state != State::Ringing {
            return;
        }
        let first = !std::mem::replace(&mut click.rang, true);
        if let Some(desc) = message::sdp(scan).and_then(|s| sdp::parse(s).ok()) {
            if let Some(codec) = desc.codecs.first() {
                let leg = &call.branches[i].leg;
                ctx.media
                    .set_remote(leg.endpoint.id, remote_of(&desc, *codec, &leg.peer));
                Self::bridge(ctx, call, i, now, out);
            }
        }
        if first {
            let target = call.branches[i].target.clone();
            call.emit(
                Some(LegRole::Callee),
                EventKind::Ringing { target },
                now,
                out,
            );
        }
    }

    /// A 2xx (acknowledged) on a click-to-call: the user's device, then the far end.
    pub(super) fn click_answered(
        ctx: &Context,
        call: &mut Call,
        i: usize,
        scan: &sip::Scan<'_>,
        now: u64,
        out: &mut Outputs,
    ) {
        let device = call.click.as_ref().and_then(|c| c.device);
        let open = call.state == State::Ringing
            && call.winner.is_none()
            && !matches!(call.branches[i].state, BranchState::Cancelling { .. });
        if !open {
            // Answered too late (another device won, the call ended, CANCEL crossed it).
            call.branches[i].state = BranchState::Done;
            Self::send_bye(ctx, &mut call.branches[i].leg, now, out);
            return;
        }
        let answer = message::sdp(scan)
            .and_then(|s| sdp::parse(s).ok())
            .filter(|a| !a.codecs.is_empty());
        let Some(answer) = answer else {
            Self::send_bye(ctx, &mut call.branches[i].leg, now, out);
            Self::branch_failed(ctx, call, i, 488, now, out);
            return;
        };
        let leg = &call.branches[i].leg;
        ctx.media.set_remote(
            leg.endpoint.id,
            remote_of(&answer, answer.codecs[0], &leg.peer),
        );
        call.branches[i].state = BranchState::Answered;
        if device.is_none() {
            // The user picked up: the other devices stop, the number is dialled.
            for j in 0..call.branches.len() {
                if j != i {
                    Self::cancel_branch(ctx, call, j, now, out);
                }
            }
            call.left = Side::Branch(i);
            call.ring_deadline = now + ctx.config.ring_timeout_s * 1000;
            if let Some(c) = call.click.as_mut() {
                c.device = Some(i);
                c.dial = true;
            }
            let ringback = Arc::new(kolokol_media::Sound::ringback());
            if let Err(e) = ctx.media.play(call.caller.endpoint.id, ringback) {
                tracing::warn!(call = %call.id, error = %e, "ringback not played");
            }
            return;
        }
        // The far end answered: bridged, as any outbound call.
        call.winner = Some(i);
        call.state = State::Answered;
        Self::bridge(ctx, call, i, now, out);
        let by = call.branches[i].target.clone();
        out.pending.push(QueueInput::Direct {
            operator: by.clone(),
            call: call.id.clone(),
            active: true,
        });
        call.emit(Some(LegRole::Callee), EventKind::Answered { by }, now, out);
    }

    /// The INVITE to the number, once the user's device has answered (taken once).
    pub(super) fn click_dial(call: &mut Call) -> Option<Ring> {
        let click = call.click.as_mut().filter(|c| c.dial)?;
        click.dial = false;
        let t = &click.trunk;
        let uri = format!("sip:{}@{}", click.number, t.address);
        let peer = Peer {
            transport: t.transport,
            addr: t.address,
            connection: None,
            trunk: true,
        };
        Some(Ring {
            targets: vec![(click.number.clone(), uri.clone(), peer, uri)],
            from_uri: call.from_uri.clone(),
            offer: call.callee_offer.clone(),
            endpoint: call.callee_endpoint,
            max_forwards: 70,
            for_transfer: false,
            operator: None,
            credentials: t.username.clone().zip(t.password.clone()),
        })
    }

    /// The user's device that answered left before the far end did: the call is over.
    /// True when `i` was that device.
    pub(super) fn click_device_left(
        ctx: &Context,
        call: &mut Call,
        i: usize,
        status: u16,
        now: u64,
        out: &mut Outputs,
    ) -> bool {
        if call.click_device() != Some(i) || call.state != State::Ringing {
            return false;
        }
        let cause = if status == 503 {
            crate::event::EndCause::LegLost
        } else {
            crate::event::EndCause::Abandoned
        };
        Self::finish(ctx, call, cause, None, Some(LegRole::Caller), now, out);
        true
    }

    /// Ends a click-to-call that never reached the far end: the user's device, if it
    /// answered, hears BYE (there is no caller INVITE to answer).
    pub(super) fn click_hang_up_device(
        ctx: &Context,
        call: &mut Call,
        now: u64,
        out: &mut Outputs,
    ) {
        if let Some(d) = call.click_device() {
            Self::send_bye(ctx, &mut call.branches[d].leg, now, out);
        }
    }
}

impl Call {
    /// The branch of the user's device that answered a click-to-call.
    pub(super) fn click_device(&self) -> Option<usize> {
        self.click.as_ref().and_then(|c| c.device)
    }

    /// Who a party is in the call's events: the user's device of a click-to-call placed
    /// it (the caller), though kolokol rang it.
    pub(super) fn role_of(&self, side: Side) -> LegRole {
        match side {
            Side::Branch(i) if self.click_device() == Some(i) => LegRole::Caller,
            s => super::role(s),
        }
    }
}
