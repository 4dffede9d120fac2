//! Transfer done by kolokol itself (RFC 3515 REFER, RFC 3891 Replaces), so the call stays
//! anchored and recorded: the transferor's leg is swapped out of the media bridge for the
//! target's, and the transferor follows the progress in NOTIFY sipfrag bodies.
//!
//! - Blind: `Refer-To: <sip:1003@…>` rings the target's devices; the first to answer takes
//!   the transferor's place. The transferor may hang up right after the 202.
//! - Attended: `Refer-To: <sip:1003@…?Replaces=…>` names the transferor's other call; the
//!   party there moves into this call (with fresh media) and the other call ends.

use super::leg::{Purpose, ServerTx};
use super::message::{self, reason};
use super::queued::QueueInput;
use super::{
    best_status, remote_of, respond, role, Branch, BranchState, Call, CallControl, Context,
    Outputs, Ring, Side, State, CODECS, TELEPHONE_EVENT_PT,
};
use crate::event::{EndCause, EventKind};
use crate::sip::{self, Request};
use kolokol_media::relay::Endpoint;
use kolokol_media::sdp::{self, Direction};
use percent_encoding::percent_decode_str;

/// A blind transfer waiting for its target to answer.
#[derive(Debug)]
pub(super) struct Transfer {
    /// The party that asked, whose place the target takes.
    pub transferor: Side,
    /// The REFER's CSeq: the `id` of the subscription its NOTIFYs belong to.
    pub refer_cseq: u32,
    /// Where the target's devices send media (shared by them, as for a first ring).
    pub endpoint: Endpoint,
    /// Ring no longer than this.
    pub deadline: u64,
    /// The transferor hung up after asking (usual for a blind transfer): no NOTIFYs, and
    /// if the target never answers the transferee's call ends.
    pub transferor_gone: bool,
}

/// The dialog a `Replaces` names (RFC 3891 §6.1).
#[derive(Debug, PartialEq, Eq)]
struct Replaces {
    call_id: String,
    to_tag: String,
    from_tag: String,
}

/// A Refer-To value: the target URI without headers, and its Replaces if any.
fn parse_refer_to(value: &str) -> (&str, Option<Replaces>) {
    let uri = message::uri(value);
    let Some((target, headers)) = uri.split_once('?') else {
        return (uri, None);
    };
    let replaces = headers
        .split('&')
        .filter_map(|h| h.split_once('='))
        .find(|(n, _)| n.eq_ignore_ascii_case("Replaces"))
        .and_then(|(_, v)| {
            let v = percent_decode_str(v).decode_utf8().ok()?;
            let (call_id, params) = v.split_once(';').unwrap_or((&v, ""));
            let mut r = Replaces {
                call_id: call_id.trim().to_string(),
                to_tag: String::new(),
                from_tag: String::new(),
            };
            for (n, val) in sip::grammar::params(&format!(";{params}")) {
                match (n.to_ascii_lowercase().as_str(), val) {
                    ("to-tag", Some(t)) => r.to_tag = t.to_string(),
                    ("from-tag", Some(t)) => r.from_tag = t.to_string(),
                    _ => {}
                }
            }
            Some(r)
        });
    (target, replaces)
}

impl CallControl {
    /// REFER from a party of an answered call.
    pub(super) fn refer(
        &mut self,
        key: u64,
        side: Side,
        req: &Request<'_>,
        tx: &ServerTx,
        now: u64,
        out: &mut Outputs,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let refuse = |call: &mut Call, status: u16, out: &mut Outputs| {
            let leg = call.leg(side);
            let r = respond(tx, status, &leg.local_tag, None, None, &[]);
            out.messages.push(leg.peer.send(r));
        };
        if call.state != State::Answered || call.other(side).is_none() {
            return refuse(call, 403, out);
        }
        if call.transfer.is_some() {
            return refuse(call, 491, out);
        }
        let Some(refer_to) = req.header("Refer-To").or_else(|| req.header("r")) else {
            return refuse(call, 400, out);
        };
        match parse_refer_to(refer_to) {
            (_, Some(replaces)) => self.attended(key, side, req.cseq, tx, &replaces, now, out),
            (target, None) => {
                let dialled = message::uri_user(target).unwrap_or_default().to_string();
                self.blind(key, side, req.cseq, tx, &dialled, now, out)
            }
        }
    }

    /// Rings the target's devices; the transferor keeps talking until one answers.
    #[allow(clippy::too_many_arguments)]
    fn blind(
        &mut self,
        key: u64,
        side: Side,
        refer_cseq: u32,
        tx: &ServerTx,
        dialled: &str,
        now: u64,
        out: &mut Outputs,
    ) {
        let ready = match self.user_targets(dialled, now) {
            Ok((targets, _)) => self
                .ctx
                .media
                .open_endpoint()
                .map(|e| (targets, e))
                .map_err(|_| 503),
            Err(_) if self.ctx.dialplan.user(dialled).is_none() => Err(404),
            Err(r) => Err(r.status),
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let leg = call.leg(side);
        let (targets, endpoint) = match ready {
            Ok(ready) => ready,
            Err(status) => {
                let r = respond(tx, status, &leg.local_tag, None, None, &[]);
                out.messages.push(leg.peer.send(r));
                return;
            }
        };
        let contact = self.ctx.local.contact(leg.peer.transport);
        let accepted = respond(tx, 202, &leg.local_tag, Some(&contact), None, &[]);
        out.messages.push(leg.peer.send(accepted));
        Self::notify(&self.ctx, call, side, refer_cseq, 100, now, out);
        call.transfer = Some(Transfer {
            transferor: side,
            refer_cseq,
            endpoint,
            deadline: now + self.ctx.config.ring_timeout_s * 1000,
            transferor_gone: false,
        });
        // The target sees who is being transferred to them.
        let transferee = call.other(side).expect("a party");
        let from_uri = match transferee {
            Side::Caller => call.from_uri.clone(),
            Side::Branch(_) => {
                format!("<sip:{}@{}>", call.label(transferee), self.ctx.local.host())
            }
        };
        let offer = sdp::offer(
            endpoint.address,
            endpoint.port,
            &CODECS,
            Some(TELEPHONE_EVENT_PT),
            Direction::SendRecv,
        );
        let ring = Ring {
            targets,
            from_uri,
            offer,
            endpoint,
            max_forwards: 70,
            for_transfer: true,
            operator: None,
            credentials: None,
        };
        Self::ring(&self.ctx, &mut self.dialogs, key, call, ring, now, out);
    }

    /// Joins the party of the transferor's other call (named by Replaces) into this call in
    /// the transferor's place; the other call ends.
    #[allow(clippy::too_many_arguments)]
    fn attended(
        &mut self,
        key: u64,
        side: Side,
        refer_cseq: u32,
        tx: &ServerTx,
        replaces: &Replaces,
        now: u64,
        out: &mut Outputs,
    ) {
        let found = self
            .dialogs
            .get(&replaces.call_id)
            .copied()
            .filter(|(k, _)| *k != key)
            .and_then(|(k, s)| {
                let other = self.calls.get(&k)?;
                let leg = other.leg_ref(s);
                let tags = [leg.local_tag.as_str(), leg.remote_tag.as_deref()?];
                let named = [replaces.to_tag.as_str(), replaces.from_tag.as_str()];
                let matches = tags == named || tags == [named[1], named[0]];
                let party = other.other(s)?;
                (matches && other.state == State::Answered).then_some((k, s, party))
            });
        let endpoint = match found {
            Some(_) => self.ctx.media.open_endpoint().map_err(|_| 503),
            None => Err(481),
        };
        let (Some((key2, side2, party)), Ok(endpoint)) = (found, endpoint) else {
            let status = endpoint.err().unwrap_or(481);
            let call = self.calls.get_mut(&key).expect("present");
            let leg = call.leg(side);
            let r = respond(tx, status, &leg.local_tag, None, None, &[]);
            out.messages.push(leg.peer.send(r));
            return;
        };
        // The party leaves the other call, which ends for the transferor. The queue core
        // hears of the transfer first: the party is then on this call, not the other.
        let mut consult = self.calls.remove(&key2).expect("found above");
        let label = consult.label(party);
        let person = match party {
            Side::Caller => consult.caller_user.clone(),
            Side::Branch(_) => None,
        };
        Self::queue_transfer(
            &self.calls[&key],
            side,
            person.as_deref().unwrap_or(&label),
            true,
            out,
        );
        let mut moved = consult.leg(party).detach();
        moved.endpoint = endpoint;
        Self::send_bye(&self.ctx, consult.leg(side2), now, out);
        Self::finish(
            &self.ctx,
            &mut consult,
            EndCause::Transferred,
            None,
            Some(role(side2)),
            now,
            out,
        );
        self.calls.insert(key2, consult);

        let call = self.calls.get_mut(&key).expect("present");
        let leg = call.leg(side);
        let contact = self.ctx.local.contact(leg.peer.transport);
        let accepted = respond(tx, 202, &leg.local_tag, Some(&contact), None, &[]);
        out.messages.push(leg.peer.send(accepted));
        Self::notify(&self.ctx, call, side, refer_cseq, 200, now, out);
        let joined = Side::Branch(call.branches.len());
        self.dialogs.insert(moved.call_id.clone(), (key, joined));
        call.branches.push(Branch {
            leg: moved,
            target: label.clone(),
            state: BranchState::Answered,
            invite_branch: String::new(),
            invite_cseq: 0,
            status: None,
            for_transfer: true,
            operator: None,
            credentials: None,
        });
        // Its media now comes to the new endpoint.
        Self::offer(&self.ctx, call, joined, now, out);
        Self::join(&self.ctx, call, side, joined, endpoint, now, out);
        call.emit(
            Some(role(side)),
            EventKind::Transferred {
                to: label,
                attended: true,
            },
            now,
            out,
        );
    }

    /// A blind transfer's target answered: it takes the transferor's place.
    pub(super) fn transfer_answered(
        ctx: &Context,
        call: &mut Call,
        i: usize,
        scan: &sip::Scan<'_>,
        now: u64,
        out: &mut Outputs,
    ) {
        let answer = message::sdp(scan)
            .and_then(|s| sdp::parse(s).ok())
            .filter(|a| !a.codecs.is_empty());
        let wanted = call.state == State::Answered
            && call.transfer.is_some()
            && !matches!(call.branches[i].state, BranchState::Cancelling { .. });
        let Some(answer) = answer.filter(|_| wanted) else {
            // Too late (another device answered, the call ended) or unusable.
            Self::send_bye(ctx, &mut call.branches[i].leg, now, out);
            if call.branches[i].state != BranchState::Done {
                Self::branch_failed(ctx, call, i, 488, now, out);
            }
            return;
        };
        let t = call.transfer.take().expect("checked");
        Self::queue_transfer(call, t.transferor, &call.branches[i].target, false, out);
        let leg = &call.branches[i].leg;
        ctx.media.set_remote(
            t.endpoint.id,
            remote_of(&answer, answer.codecs[0], &leg.peer),
        );
        call.branches[i].state = BranchState::Answered;
        for j in 0..call.branches.len() {
            if j != i && call.branches[j].for_transfer {
                Self::cancel_branch(ctx, call, j, now, out);
            }
        }
        if !t.transferor_gone {
            Self::notify(ctx, call, t.transferor, t.refer_cseq, 200, now, out);
        }
        Self::join(
            ctx,
            call,
            t.transferor,
            Side::Branch(i),
            t.endpoint,
            now,
            out,
        );
        let to = call.branches[i].target.clone();
        call.emit(
            Some(role(t.transferor)),
            EventKind::Transferred {
                to,
                attended: false,
            },
            now,
            out,
        );
    }

    /// The queue core hears that the operator of a queue call transferred it to `to`
    /// (a transfer by the caller leaves the operator as they are).
    fn queue_transfer(call: &Call, transferor: Side, to: &str, attended: bool, out: &mut Outputs) {
        let by_operator = matches!(transferor, Side::Branch(k) if call.winner == Some(k));
        if call.queue.is_some() && by_operator {
            out.pending.push(QueueInput::Transferred {
                call: call.id.clone(),
                to: to.to_string(),
                attended,
            });
        }
    }

    /// Puts `joined` in the transferor's place: in the bridge (the recording goes on), as
    /// a party, and the transferor's dialog ends. A transferee the transferor held is taken
    /// off hold.
    fn join(
        ctx: &Context,
        call: &mut Call,
        transferor: Side,
        joined: Side,
        endpoint: Endpoint,
        now: u64,
        out: &mut Outputs,
    ) {
        if let Some(b) = call.bridge {
            if let Err(e) = ctx
                .media
                .replace(b, call.media_side(transferor), endpoint.id)
            {
                tracing::warn!(call = %call.id, error = %e, "moving media to the transfer target failed");
            }
        }
        let held = call.leg(transferor).held;
        match (transferor == call.left, joined) {
            (true, _) => call.left = joined,
            (false, Side::Branch(k)) => call.winner = Some(k),
            (false, Side::Caller) => {}
        }
        Self::send_bye(ctx, call.leg(transferor), now, out);
        if held {
            if let Some(transferee) = call.other(joined) {
                Self::offer(ctx, call, transferee, now, out);
            }
        }
    }

    /// A re-INVITE of kolokol's own: two-way media on the leg's endpoint.
    fn offer(ctx: &Context, call: &mut Call, side: Side, now: u64, out: &mut Outputs) {
        let leg = call.leg(side);
        let desc = sdp::offer(
            leg.endpoint.address,
            leg.endpoint.port,
            &CODECS,
            Some(TELEPHONE_EVENT_PT),
            Direction::SendRecv,
        );
        let version = leg.next_sdp_version();
        let body = sdp::render(&desc, leg.sdp_session, version);
        let (branch, cseq, w) = leg.next_request("INVITE", &ctx.local);
        let bytes = w
            .header("Contact", ctx.local.contact(leg.peer.transport))
            .finish(body.as_bytes(), Some("application/sdp"));
        out.messages
            .push(leg.start("INVITE", cseq, branch, bytes, Purpose::Offer, now));
    }

    /// The answer to kolokol's own re-INVITE: acknowledged, and the media follows it.
    pub(super) fn offer_response(
        ctx: &Context,
        call: &mut Call,
        side: Side,
        status: u16,
        scan: &sip::Scan<'_>,
        tx: &super::leg::ClientTx,
        out: &mut Outputs,
    ) {
        let leg = call.leg(side);
        Self::ack(ctx, leg, status, scan, tx.cseq, &tx.branch, out);
        if !(200..300).contains(&status) {
            return;
        }
        if let Some(answer) = message::sdp(scan).and_then(|s| sdp::parse(s).ok()) {
            if let Some(codec) = answer.codecs.first() {
                ctx.media
                    .set_remote(leg.endpoint.id, remote_of(&answer, *codec, &leg.peer));
            }
        }
    }

    /// Every device of a blind transfer's target failed: the transferor hears why and
    /// keeps the call; if it already left, the transferee's call ends.
    pub(super) fn maybe_transfer_failed(
        ctx: &Context,
        call: &mut Call,
        now: u64,
        out: &mut Outputs,
    ) {
        let rung = || call.branches.iter().filter(|b| b.for_transfer);
        if call.transfer.is_none() || rung().any(|b| b.state != BranchState::Done) {
            return;
        }
        let statuses: Vec<u16> = rung().filter_map(|b| b.status).collect();
        Self::transfer_failed(ctx, call, best_status(&statuses), now, out);
    }

    pub(super) fn transfer_failed(
        ctx: &Context,
        call: &mut Call,
        status: u16,
        now: u64,
        out: &mut Outputs,
    ) {
        let Some(t) = call.transfer.take() else {
            return;
        };
        for j in 0..call.branches.len() {
            if call.branches[j].for_transfer {
                Self::cancel_branch(ctx, call, j, now, out);
            }
        }
        ctx.media.close_endpoint(t.endpoint.id);
        if t.transferor_gone {
            Self::hang_up(ctx, call, EndCause::Failed, now, out);
        } else {
            Self::notify(ctx, call, t.transferor, t.refer_cseq, status, now, out);
        }
    }

    /// The transferor hung up (or its connection closed) while its blind transfer rings:
    /// the call goes on. True when that is the case.
    pub(super) fn transferor_left(call: &mut Call, side: Side) -> bool {
        match &mut call.transfer {
            Some(t) if t.transferor == side => {
                t.transferor_gone = true;
                true
            }
            _ => false,
        }
    }

    /// Transfer progress for the transferor (RFC 3515 §2.4.5): the target's status as a
    /// sipfrag; a final status ends the implicit subscription.
    fn notify(
        ctx: &Context,
        call: &mut Call,
        to: Side,
        refer_cseq: u32,
        status: u16,
        now: u64,
        out: &mut Outputs,
    ) {
        let leg = call.leg(to);
        if leg.ended {
            return;
        }
        let state = if status >= 200 {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        let body = format!("SIP/2.0 {status} {}\r\n", reason(status));
        let (branch, cseq, w) = leg.next_request("NOTIFY", &ctx.local);
        let bytes = w
            .header("Event", format!("refer;id={refer_cseq}"))
            .header("Subscription-State", state)
            .header("Contact", ctx.local.contact(leg.peer.transport))
            .finish(body.as_bytes(), Some("message/sipfrag;version=2.0"));
        out.messages
            .push(leg.start("NOTIFY", cseq, branch, bytes, Purpose::Notify, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refer_to_with_and_without_replaces() {
        assert_eq!(
            parse_refer_to("<sip:1003@192.0.2.1>"),
            ("sip:1003@192.0.2.1", None)
        );
        let (target, r) = parse_refer_to(
            "<sip:1003@192.0.2.1?Replaces=abc%40host%3Bto-tag%3Dt1%3Bfrom-tag%3Df1&Require=replaces>",
        );
        assert_eq!(target, "sip:1003@192.0.2.1");
        assert_eq!(
            r,
            Some(Replaces {
                call_id: "abc@host".into(),
                to_tag: "t1".into(),
                from_tag: "f1".into()
            })
        );
    }
}
