//! B2BUA call control as a sans-IO core: requests, responses and the clock go in,
//! messages to send and [`Event`]s come out. Each call is an inbound [`leg::Leg`] (the
//! caller) and one outbound leg per device rung; the first to answer is bridged to the
//! caller through the media plane, which anchors and records the audio.

mod click;
pub mod leg;
pub mod media;
pub mod message;
pub mod outbound_registration;
mod queued;
pub mod routing;
mod table;
#[cfg(test)]
mod tests;
mod transfer;

use crate::event::{CallDirection, EndCause, Event, EventKind, LegRole};
use crate::queue::{Acd, QueueEvent};
use crate::registrar::{self, Location};
use crate::service::Outgoing;
use crate::sip::{self, Request, ResponseBuilder};
use crate::transport::Flow;
pub use click::{dialable, ClickError, CLICK_HEADER};
pub use kolokol_media::prompts::{Language, Prompts};
use kolokol_media::recorder::RecordingInfo;
use kolokol_media::relay::{BridgeId, Endpoint, Remote, Side as MediaSide};
use kolokol_media::sdp::{self, AudioDescription, Codec, Direction};
use leg::{Leg, LocalAddresses, Peer, Purpose, ServerTx, TIMEOUT_MS};
pub use media::MediaControl;
use message::reason;
use queued::QueueInput;
use routing::{Destination, Dialplan, Trunk, UserRoute};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// One device or trunk to ring: (whom, request URI, how to reach it, To value).
type RingTarget = (String, String, Peer, String);

/// INVITEs to send for one call: the targets, who they see calling, the offer on the
/// endpoint they share.
struct Ring {
    targets: Vec<RingTarget>,
    from_uri: String,
    offer: AudioDescription,
    endpoint: Endpoint,
    max_forwards: u8,
    for_transfer: bool,
    /// A queue's offer to this operator.
    operator: Option<String>,
    /// The trunk's credentials, for a provider that challenges the INVITE.
    credentials: Option<(String, String)>,
}

/// Codecs kolokol speaks on plain legs; it transcodes between them.
const CODECS: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];
/// The RFC 4733 payload type we offer.
const TELEPHONE_EVENT_PT: u8 = 101;
/// How long an ended call is kept to absorb retransmissions (Timer J).
const LINGER_MS: u64 = TIMEOUT_MS;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
pub struct CallConfig {
    /// Ring this long before giving the caller 480 (no answer).
    pub ring_timeout_s: u64,
    /// Root of `YYYY/MM/DD/<call-id>.wav` (the top-level `recordings_dir`).
    #[serde(skip)]
    pub recordings: PathBuf,
    /// Record calls unless a number or user says otherwise.
    pub record: bool,
    /// Retry-After on the 503 given while draining.
    pub retry_after_s: u32,
    /// The language of spoken prompts: `ru` or `en`.
    pub language: String,
    /// Calls one user may have placed and not yet ended; more get 403. A stolen password
    /// (or a runaway script) cannot fill the trunks and the media ports.
    pub max_per_user: usize,
}

impl Default for CallConfig {
    fn default() -> Self {
        CallConfig {
            ring_timeout_s: 60,
            recordings: "recordings".into(),
            record: true,
            retry_after_s: 30,
            language: "ru".into(),
            max_per_user: 8,
        }
    }
}

/// What one step of call control produced.
#[derive(Debug, Default)]
pub struct Outputs {
    pub messages: Vec<Outgoing>,
    pub events: Vec<Event>,
    pub queue_events: Vec<QueueEvent>,
    /// What the queue core must hear, settled before the step returns.
    pending: Vec<QueueInput>,
}

/// Who placed a call, as the service established it.
#[derive(Debug, Clone)]
pub enum Caller {
    /// An authenticated user.
    User(UserRoute),
    /// A provider's trunk, recognised by source address.
    Trunk(Trunk),
}

/// A final answer given without creating a call.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
}

impl Refusal {
    fn new(status: u16) -> Self {
        Refusal {
            status,
            headers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ringing,
    /// Answered by kolokol, waiting in a queue for an operator.
    Queued,
    Answered,
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BranchState {
    Calling,
    Proceeding,
    Answered,
    /// CANCEL wanted; sent once the branch has answered provisionally (RFC 3261 §9.1).
    Cancelling {
        sent: bool,
    },
    Done,
}

#[derive(Debug)]
struct Branch {
    leg: Leg,
    /// The address-of-record or number rung.
    target: String,
    state: BranchState,
    /// The INVITE's transaction branch and CSeq (for CANCEL and the non-2xx ACK).
    invite_branch: String,
    invite_cseq: u32,
    status: Option<u16>,
    /// Rung (or joined) to take a transferor's place, not as the call's first answer.
    for_transfer: bool,
    /// The operator a queue offered the call to (all their devices ring).
    operator: Option<String>,
    /// Credentials for a challenging provider; taken when used (one answer per INVITE).
    credentials: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    Caller,
    Branch(usize),
}

#[derive(Debug)]
struct Call {
    id: String,
    seq: u32,
    state: State,
    caller: Leg,
    /// The caller's INVITE, answered by us.
    invite: ServerTx,
    /// The last response sent to it, resent on a retransmitted INVITE.
    last_response: Option<Vec<u8>>,
    final_sent: bool,
    /// The SDP answer the caller gets (same text in 183 and 200).
    caller_answer: String,
    /// The caller's identity as the devices rung see it (From), and its user part.
    from_uri: String,
    caller_name: String,
    /// The caller's INVITE had no SDP: `caller_answer` is our offer, answered in the ACK.
    late_offer: bool,
    branches: Vec<Branch>,
    /// The party on the left (the recording's left channel): the caller, until a
    /// transfer puts someone in their place.
    left: Side,
    /// The party on the right: the branch that answered, or one that took its place.
    winner: Option<usize>,
    transfer: Option<transfer::Transfer>,
    /// The queue the call went through, if any.
    queue: Option<String>,
    /// What devices rung for this call are offered, on the endpoint they share.
    callee_offer: AudioDescription,
    callee_endpoint: Endpoint,
    /// The user who placed the call (they are busy while it lasts).
    caller_user: Option<String>,
    bridge: Option<BridgeId>,
    recording: Option<PathBuf>,
    ring_deadline: u64,
    ended_at: Option<u64>,
    /// Placed by the user from the API: their device first, then the number.
    click: Option<click::ClickToCall>,
}

impl Call {
    fn emit(&mut self, leg: Option<LegRole>, kind: EventKind, now: u64, out: &mut Outputs) {
        self.seq += 1;
        out.events.push(Event {
            call_id: self.id.clone(),
            seq: self.seq,
            at_ms: now,
            leg,
            kind,
        });
    }

    fn leg(&mut self, side: Side) -> &mut Leg {
        match side {
            Side::Caller => &mut self.caller,
            Side::Branch(i) => &mut self.branches[i].leg,
        }
    }

    fn leg_ref(&self, side: Side) -> &Leg {
        match side {
            Side::Caller => &self.caller,
            Side::Branch(i) => &self.branches[i].leg,
        }
    }

    /// The party talking with `side`, when `side` is one of the two parties of an
    /// answered call.
    fn other(&self, side: Side) -> Option<Side> {
        let right = Side::Branch(self.winner?);
        if side == self.left {
            Some(right)
        } else if side == right {
            Some(self.left)
        } else {
            None
        }
    }

    /// Where a party sits in the media bridge.
    fn media_side(&self, side: Side) -> MediaSide {
        if side == self.left {
            MediaSide::Left
        } else {
            MediaSide::Right
        }
    }

    /// Who a party is: the user or number rung, or the caller's user part.
    fn label(&self, side: Side) -> String {
        match side {
            Side::Caller => self.caller_name.clone(),
            Side::Branch(i) => self.branches[i].target.clone(),
        }
    }

    /// Answered by kolokol and out of its queue: ringing the user the queue overflowed to.
    fn overflowed_to_user(&self) -> bool {
        self.state == State::Queued && self.queue.is_none()
    }

    fn sides(&self) -> impl Iterator<Item = Side> {
        std::iter::once(Side::Caller).chain((0..self.branches.len()).map(Side::Branch))
    }

    fn next_deadline(&self) -> u64 {
        let legs = std::iter::once(&self.caller).chain(self.branches.iter().map(|b| &b.leg));
        let mut d = legs
            .filter_map(Leg::next_deadline)
            .min()
            .unwrap_or(u64::MAX);
        if self.state == State::Ringing || self.overflowed_to_user() {
            d = d.min(self.ring_deadline);
        }
        if let Some(t) = &self.transfer {
            d = d.min(t.deadline);
        }
        if let Some(e) = self.ended_at {
            d = d.min(e + LINGER_MS);
        }
        d
    }
}

/// The services call control works with.
pub struct Context {
    pub config: CallConfig,
    pub local: LocalAddresses,
    pub dialplan: Arc<dyn Dialplan>,
    pub location: Arc<Location>,
    pub media: Arc<dyn MediaControl>,
}

pub struct CallControl {
    ctx: Context,
    calls: table::CallTable,
    /// Call-ID of every leg to its call.
    dialogs: HashMap<String, (u64, Side)>,
    /// kolokol's call id to its call.
    ids: HashMap<String, u64>,
    acd: Acd,
    /// Each queue's music on hold, decoded; and kolokol's own.
    music: HashMap<String, Arc<kolokol_media::Sound>>,
    hold_music: Arc<kolokol_media::Sound>,
    prompts: Arc<kolokol_media::prompts::Prompts>,
    /// kolokol's own registrations with providers.
    registrations: outbound_registration::OutboundRegistrations,
    /// When to look again which operators have a device registered.
    next_presence_ms: u64,
    next_key: u64,
    /// Set while draining: the moment remaining calls are ended.
    drain_deadline: Option<u64>,
    /// The calls each user placed (ended ones pruned when the user places the next), for
    /// `max_per_user` without a scan of every call.
    placed: HashMap<String, Vec<u64>>,
}

/// The response to a stored request, re-read from its bytes.
fn respond(
    tx: &ServerTx,
    status: u16,
    to_tag: &str,
    contact: Option<&str>,
    sdp: Option<&str>,
    extra: &[(&str, String)],
) -> Vec<u8> {
    let Ok(scan) = sip::scan::scan(&tx.request) else {
        return Vec::new();
    };
    let mut b = ResponseBuilder::new(&scan, status, reason(status), Some(to_tag), Some(tx.source));
    if let Some(c) = contact {
        b = b.header("Contact", c);
    }
    for (n, v) in extra {
        b = b.header(n, v);
    }
    if (200..300).contains(&status) || status == 405 {
        b = b.header("Allow", crate::service::ALLOW);
    }
    match sdp {
        Some(s) => b.finish(s.as_bytes(), Some("application/sdp")),
        None => b.finish(b"", None),
    }
}

fn server_tx(req: &Request<'_>, data: &[u8], flow: &Flow) -> ServerTx {
    ServerTx {
        request: data[..req.scan.consumed.min(data.len())].to_vec(),
        source: flow.remote,
        method: req.method.to_string(),
        cseq: req.cseq,
        branch: message::top_branch(&req.scan)
            .unwrap_or_default()
            .to_string(),
    }
}

/// The media remote a description from `peer` announces.
fn remote_of(desc: &AudioDescription, codec: (Codec, u8), peer: &Peer) -> Remote {
    Remote {
        addr: (desc.address, desc.port).into(),
        signalling_ip: Some(peer.addr.ip()),
        vouched: peer.vouches_for_media(),
        codec: codec.0,
        payload_type: codec.1,
        telephone_event: desc.telephone_event,
        direction: desc.direction,
    }
}

fn role(side: Side) -> LegRole {
    match side {
        Side::Caller => LegRole::Caller,
        Side::Branch(_) => LegRole::Callee,
    }
}

fn cause_for(status: u16) -> EndCause {
    match status {
        486 | 600 => EndCause::Busy,
        603 => EndCause::Declined,
        408 | 480 => EndCause::NoAnswer,
        404 | 604 => EndCause::Unavailable,
        _ => EndCause::Failed,
    }
}

/// Of the branches' final answers, the one the caller gets (RFC 3261 §16.7 step 6, simply:
/// a global failure, then busy, then the most common meaningful answer).
fn best_status(statuses: &[u16]) -> u16 {
    if let Some(s) = statuses.iter().find(|s| **s >= 600) {
        return *s;
    }
    if statuses.contains(&486) {
        return 486;
    }
    statuses
        .iter()
        .copied()
        .find(|s| *s != 408 && *s != 503 && *s != 487)
        .or_else(|| statuses.first().copied())
        .map(|s| match s {
            503 => 480,
            // The provider refused our credentials: nothing the caller can answer.
            401 | 407 => 403,
            s => s,
        })
        .unwrap_or(480)
}

impl CallControl {
    pub fn new(ctx: Context) -> Self {
        CallControl {
            ctx,
            calls: table::CallTable::default(),
            dialogs: HashMap::new(),
            ids: HashMap::new(),
            acd: Acd::new(rand::random()),
            music: HashMap::new(),
            hold_music: Arc::new(kolokol_media::Sound::hold_music()),
            prompts: Arc::default(),
            registrations: Default::default(),
            next_presence_ms: 0,
            next_key: 1,
            drain_deadline: None,
            placed: HashMap::new(),
        }
    }

    /// The trunks to register with their providers (on start and after API changes).
    pub fn set_registrations(
        &mut self,
        targets: Vec<outbound_registration::RegistrationTarget>,
        now: u64,
    ) {
        self.registrations.set(targets, now);
    }

    pub fn registration_status(
        &self,
        trunk_id: i64,
        now: u64,
    ) -> Option<outbound_registration::RegistrationStatus> {
        self.registrations.status(trunk_id, now)
    }

    pub fn config(&self) -> &CallConfig {
        &self.ctx.config
    }

    pub fn active_calls(&self) -> usize {
        self.calls
            .iter()
            .filter(|(_, c)| c.state != State::Ended)
            .count()
    }

    /// Whether call `id` is ringing a device of user `login` now (or they took it): what
    /// the journal may not have stored yet when their softphone asks for the card.
    pub fn rings_user(&self, id: &str, login: &str) -> bool {
        let Some(call) = self.ids.get(id).and_then(|k| self.calls.get(k)) else {
            return false;
        };
        call.state != State::Ended
            && call
                .branches
                .iter()
                .any(|b| !b.leg.peer.trunk && b.target == login && b.state != BranchState::Done)
    }

    pub fn is_draining(&self) -> bool {
        self.drain_deadline.is_some()
    }

    /// Stop taking calls; those running are ended at `deadline`.
    pub fn drain(&mut self, deadline: u64) {
        self.drain_deadline = Some(deadline);
    }

    /// A retransmission of an INVITE we are already handling: the last response again.
    pub fn retransmitted_invite(&self, req: &Request<'_>, out: &mut Outputs) -> bool {
        let Some((key, Side::Caller)) = self.dialogs.get(req.call_id()) else {
            return false;
        };
        let Some(call) = self.calls.get(key) else {
            return false;
        };
        if call.invite.cseq != req.cseq
            || message::top_branch(&req.scan) != Some(call.invite.branch.as_str())
        {
            return false;
        }
        if let Some(last) = &call.last_response {
            out.messages.push(call.caller.peer.send(last.clone()));
        }
        true
    }

    /// A new call: an INVITE without a To tag from an identified caller.
    pub fn invite(
        &mut self,
        req: &Request<'_>,
        data: &[u8],
        flow: &Flow,
        caller: Caller,
        now: u64,
        out: &mut Outputs,
    ) -> Result<(), Refusal> {
        if self.drain_deadline.is_some() {
            return Err(Refusal {
                status: 503,
                headers: vec![("Retry-After", self.ctx.config.retry_after_s.to_string())],
            });
        }
        if let Caller::User(u) = &caller {
            let calls = &self.calls;
            let placed = self.placed.entry(u.login.clone()).or_default();
            placed.retain(|k| calls.get(k).is_some_and(|c| c.state != State::Ended));
            if placed.len() >= self.ctx.config.max_per_user {
                return Err(Refusal::new(403));
            }
        }
        let dialled = message::uri_user(req.uri)
            .or_else(|| message::uri_user(req.to_uri()))
            .unwrap_or_default()
            .to_string();
        let from_value = req.header("From").unwrap_or_default();
        let from_user = message::uri_user(message::uri(from_value))
            .unwrap_or_default()
            .to_string();
        // Where the call goes, and who it is for.
        let (direction, destination, trunk_out, number, record) = match &caller {
            Caller::Trunk(_) => {
                let Some(n) = self.ctx.dialplan.number(&dialled) else {
                    return Err(Refusal::new(404));
                };
                (
                    CallDirection::Inbound,
                    n.destination.clone(),
                    None,
                    Some(n.number),
                    n.record,
                )
            }
            Caller::User(u) => match self.ctx.dialplan.user(&dialled) {
                Some(callee) => (
                    CallDirection::Internal,
                    Destination::User(callee.login),
                    None,
                    None,
                    u.record,
                ),
                None => {
                    let trunk = u.trunk.and_then(|id| self.ctx.dialplan.trunk(id));
                    let internal = self.ctx.dialplan.number(&dialled);
                    match trunk {
                        // An internal number (a queue's) before anything leaves the office.
                        _ if internal.is_some() => {
                            let n = internal.expect("checked");
                            (
                                CallDirection::Internal,
                                n.destination,
                                None,
                                Some(n.number),
                                u.record && n.record,
                            )
                        }
                        Some(t) if is_phone_number(&dialled) => (
                            CallDirection::Outbound,
                            Destination::User(String::new()),
                            Some(t),
                            Some(dialled.clone()),
                            u.record,
                        ),
                        _ => return Err(Refusal::new(404)),
                    }
                }
            },
        };
        // No SDP is a late offer: kolokol offers in its answer and the caller answers in the
        // ACK (RFC 3261 §13.2.1).
        let offer = match message::sdp(&req.scan).map(sdp::parse) {
            Some(Ok(offer)) => Some(offer),
            Some(Err(_)) => return Err(Refusal::new(488)),
            None => None,
        };
        // Who to ring.
        let (targets, callee_user, record): (Vec<RingTarget>, Option<String>, bool) =
            match (&destination, &trunk_out) {
                (_, Some(t)) => {
                    let uri = format!("sip:{dialled}@{}", t.address);
                    let peer = Peer {
                        transport: t.transport,
                        addr: t.address,
                        connection: None,
                        trunk: true,
                    };
                    (
                        vec![(dialled.clone(), uri.clone(), peer, uri)],
                        None,
                        record,
                    )
                }
                (Destination::User(login), None) => {
                    let (targets, callee_record) = self.user_targets(login, now)?;
                    (targets, Some(login.clone()), record && callee_record)
                }
                (Destination::Queue(_), None) => (Vec::new(), None, record),
            };
        let record = record && self.ctx.config.record;
        // Media: one endpoint towards the caller, one shared by every branch.
        let caller_endpoint = self
            .ctx
            .media
            .open_endpoint()
            .map_err(|_| Refusal::new(503))?;
        let callee_endpoint = match self.ctx.media.open_endpoint() {
            Ok(e) => e,
            Err(_) => {
                self.ctx.media.close_endpoint(caller_endpoint.id);
                return Err(Refusal::new(503));
            }
        };
        let (address, port) = (caller_endpoint.address, caller_endpoint.port);
        let answer = match &offer {
            Some(offer) => sdp::answer(offer, address, port, &CODECS).ok(),
            None => Some(sdp::offer(
                address,
                port,
                &CODECS,
                Some(TELEPHONE_EVENT_PT),
                Direction::SendRecv,
            )),
        };
        let Some(answer) = answer else {
            self.ctx.media.close_endpoint(caller_endpoint.id);
            self.ctx.media.close_endpoint(callee_endpoint.id);
            return Err(Refusal::new(488));
        };
        let chosen = answer.codecs[0];
        let peer = Peer {
            trunk: matches!(caller, Caller::Trunk(_)),
            ..Peer::from(flow)
        };
        if let Some(offer) = &offer {
            self.ctx
                .media
                .set_remote(caller_endpoint.id, remote_of(offer, chosen, &peer));
        }
        let key = self.next_key;
        self.next_key += 1;
        let id = message::token();
        let to_value = req.header("To").unwrap_or_default().to_string();
        let mut caller_leg = Leg::new(
            req.call_id().to_string(),
            to_value,
            strip_tag(from_value),
            peer,
            caller_endpoint,
        );
        caller_leg.remote_tag = message::tag(from_value).map(str::to_string);
        caller_leg.remote_cseq = req.cseq;
        caller_leg.remote_target = req
            .header("Contact")
            .map(|c| message::uri(c).to_string())
            .unwrap_or_default();
        caller_leg.route_set = message::record_route(&req.scan, false);
        let caller_answer = sdp::render(
            &answer,
            caller_leg.sdp_session,
            caller_leg.next_sdp_version(),
        );
        let mut codecs = vec![chosen.0];
        codecs.extend(CODECS.iter().filter(|c| **c != chosen.0));
        let callee_desc = sdp::offer(
            callee_endpoint.address,
            callee_endpoint.port,
            &codecs,
            answer.telephone_event.map(|_| TELEPHONE_EVENT_PT),
            Direction::SendRecv,
        );
        let max_forwards = req.max_forwards.unwrap_or(70).saturating_sub(1);
        let display = message::display_name(from_value).map(str::to_string);
        let presented = match (&caller, &trunk_out) {
            (Caller::User(u), Some(t)) => t
                .caller_id
                .clone()
                .unwrap_or_else(|| u.extension.clone().unwrap_or(u.login.clone())),
            (Caller::User(u), None) => u.extension.clone().unwrap_or(u.login.clone()),
            (Caller::Trunk(_), _) => from_user.clone(),
        };
        let from_uri = match display {
            Some(d) => format!("\"{d}\" <sip:{presented}@{}>", self.ctx.local.host()),
            None => format!("<sip:{presented}@{}>", self.ctx.local.host()),
        };
        let mut call = Call {
            id: id.clone(),
            seq: 0,
            state: State::Ringing,
            caller: caller_leg,
            invite: server_tx(req, data, flow),
            last_response: None,
            final_sent: false,
            caller_answer,
            from_uri: from_uri.clone(),
            caller_name: from_user.clone(),
            late_offer: offer.is_none(),
            branches: Vec::new(),
            left: Side::Caller,
            winner: None,
            transfer: None,
            queue: None,
            callee_offer: callee_desc.clone(),
            callee_endpoint,
            caller_user: match &caller {
                Caller::User(u) => Some(u.login.clone()),
                Caller::Trunk(_) => None,
            },
            bridge: None,
            recording: record.then(|| recording_path(&self.ctx.config.recordings, now, &id)),
            ring_deadline: now + self.ctx.config.ring_timeout_s * 1000,
            ended_at: None,
            click: None,
        };
        let (user, trunk_name) = match &caller {
            Caller::User(u) => (
                Some(u.login.clone()),
                trunk_out.as_ref().map(|t| t.name.clone()),
            ),
            Caller::Trunk(t) => (callee_user.clone(), Some(t.name.clone())),
        };
        call.emit(
            Some(LegRole::Caller),
            EventKind::Offered {
                direction,
                from: from_user,
                to: dialled,
                user,
                number,
                trunk: trunk_name,
            },
            now,
            out,
        );
        // 100 Trying stops the caller's INVITE retransmissions.
        let trying = respond(&call.invite, 100, &call.caller.local_tag, None, None, &[]);
        out.messages.push(call.caller.peer.send(trying.clone()));
        call.last_response = Some(trying);
        let ring = Ring {
            targets,
            from_uri,
            offer: callee_desc,
            endpoint: callee_endpoint,
            max_forwards,
            for_transfer: false,
            operator: None,
            credentials: trunk_out
                .as_ref()
                .and_then(|t| Some((t.username.clone()?, t.password.clone()?))),
        };
        Self::ring(&self.ctx, &mut self.dialogs, key, &mut call, ring, now, out);
        self.dialogs
            .insert(call.caller.call_id.clone(), (key, Side::Caller));
        if let Some(user) = &call.caller_user {
            self.placed.entry(user.clone()).or_default().push(key);
            out.pending.push(QueueInput::Direct {
                operator: user.clone(),
                call: id.clone(),
                active: true,
            });
        }
        self.ids.insert(id, key);
        self.calls.insert(key, call);
        if let Destination::Queue(queue) = destination {
            self.enqueue(key, &queue, now, out);
        }
        self.settle(now, out);
        Ok(())
    }

    /// The devices of a user (by login or extension): one target per registered contact,
    /// and whether the user's calls are recorded. 480 when nothing is registered.
    fn user_targets(&self, login: &str, now: u64) -> Result<(Vec<RingTarget>, bool), Refusal> {
        let callee = self.ctx.dialplan.user(login);
        let login = callee.as_ref().map_or(login, |c| c.login.as_str());
        // Devices register with the extension as their address-of-record.
        let aor = callee
            .as_ref()
            .and_then(|c| c.extension.as_deref())
            .unwrap_or(login);
        let bindings = self.ctx.location.lookup(aor, now);
        if bindings.is_empty() {
            return Err(Refusal::new(480));
        }
        let to = format!("<sip:{aor}@{}>", self.ctx.local.host());
        let targets = bindings
            .into_iter()
            .map(|b| {
                let uri = message::uri(&b.contact).to_string();
                (login.to_string(), uri, Peer::from(&b.flow), to.clone())
            })
            .collect();
        Ok((targets, callee.is_none_or(|c| c.record)))
    }

    /// Sends an INVITE to every target, each its own branch and dialog of `call`.
    fn ring(
        ctx: &Context,
        dialogs: &mut HashMap<String, (u64, Side)>,
        key: u64,
        call: &mut Call,
        ring: Ring,
        now: u64,
        out: &mut Outputs,
    ) {
        for (target, uri, peer, to) in ring.targets {
            let call_id = message::token();
            let mut leg = Leg::new(
                call_id.clone(),
                ring.from_uri.clone(),
                to,
                peer,
                ring.endpoint,
            );
            leg.remote_target = uri;
            let version = leg.next_sdp_version();
            let body = sdp::render(&ring.offer, leg.sdp_session, version);
            let branch = message::branch();
            let cseq = leg.local_cseq;
            let headers = device_headers(call, &leg.peer);
            let bytes =
                initial_invite(ctx, &leg, cseq, &branch, ring.max_forwards, &body, &headers);
            out.messages
                .push(leg.start("INVITE", cseq, branch.clone(), bytes, Purpose::Ring, now));
            dialogs.insert(call_id, (key, Side::Branch(call.branches.len())));
            call.branches.push(Branch {
                leg,
                target,
                state: BranchState::Calling,
                invite_branch: branch,
                invite_cseq: cseq,
                status: None,
                for_transfer: ring.for_transfer,
                operator: ring.operator.clone(),
                credentials: ring.credentials.clone(),
            });
        }
    }

    /// A request that may belong to a call (ACK, CANCEL, or anything with a To tag).
    /// False when no call knows it; the service then answers it itself.
    pub fn request(
        &mut self,
        req: &Request<'_>,
        data: &[u8],
        flow: &Flow,
        now: u64,
        out: &mut Outputs,
    ) -> bool {
        let handled = self.dialog_request(req, data, flow, now, out);
        self.settle(now, out);
        handled
    }

    fn dialog_request(
        &mut self,
        req: &Request<'_>,
        data: &[u8],
        flow: &Flow,
        now: u64,
        out: &mut Outputs,
    ) -> bool {
        let Some(&(key, side)) = self.dialogs.get(req.call_id()) else {
            return false;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        let tx = server_tx(req, data, flow);
        match req.method {
            "ACK" => {
                let leg = call.leg(side);
                // An ACK acknowledges our answer, which carried our tag: one without it
                // is not this dialog's (knowing the Call-ID must not let anyone hand in
                // the late SDP of someone else's call). Dropped, as ACKs are never answered.
                if message::tag(req.header("To").unwrap_or_default())
                    != Some(leg.local_tag.as_str())
                {
                    return true;
                }
                if leg
                    .awaiting_ack
                    .as_ref()
                    .is_some_and(|a| a.cseq == req.cseq)
                {
                    leg.awaiting_ack = None;
                }
                if side == Side::Caller && call.late_offer && req.cseq == call.invite.cseq {
                    Self::late_answer(&self.ctx, call, req);
                }
                true
            }
            // A CANCEL matches the INVITE's transaction, branch included (RFC 3261 §9.2).
            "CANCEL" if side == Side::Caller && tx.branch != call.invite.branch => {
                let no = respond(&tx, 481, &call.caller.local_tag, None, None, &[]);
                out.messages.push(call.caller.peer.send(no));
                true
            }
            "CANCEL" if side == Side::Caller => {
                let ok = respond(&tx, 200, &call.caller.local_tag, None, None, &[]);
                out.messages.push(call.caller.peer.send(ok));
                if call.state == State::Ringing && !call.final_sent && req.cseq == call.invite.cseq
                {
                    Self::fail_caller(&self.ctx, call, 487, now, out);
                    Self::finish(
                        &self.ctx,
                        call,
                        EndCause::Abandoned,
                        Some(487),
                        Some(LegRole::Caller),
                        now,
                        out,
                    );
                }
                true
            }
            _ => {
                let leg = call.leg(side);
                if message::tag(req.header("To").unwrap_or_default())
                    != Some(leg.local_tag.as_str())
                {
                    return false;
                }
                if req.cseq <= leg.remote_cseq && leg.remote_cseq != 0 {
                    let r = respond(
                        &tx,
                        500,
                        &leg.local_tag,
                        None,
                        None,
                        &[("Retry-After", "1".into())],
                    );
                    out.messages.push(leg.peer.send(r));
                    return true;
                }
                leg.remote_cseq = req.cseq;
                match req.method {
                    "BYE" => Self::bye(&self.ctx, call, side, &tx, now, out),
                    "REFER" => self.refer(key, side, req, &tx, now, out),
                    "INVITE" | "UPDATE" | "INFO" => {
                        Self::relay(&self.ctx, call, side, req, tx, now, out)
                    }
                    _ => {
                        let leg = call.leg(side);
                        let r = respond(&tx, 405, &leg.local_tag, None, None, &[]);
                        out.messages.push(leg.peer.send(r));
                    }
                }
                true
            }
        }
    }

    /// A response to a request kolokol sent.
    pub fn response(&mut self, status: u16, scan: &sip::Scan<'_>, now: u64, out: &mut Outputs) {
        if self
            .registrations
            .response(status, scan, &self.ctx.local, now, &mut out.messages)
        {
            return;
        }
        self.dialog_response(status, scan, now, out);
        self.settle(now, out);
    }

    fn dialog_response(&mut self, status: u16, scan: &sip::Scan<'_>, now: u64, out: &mut Outputs) {
        let call_id = scan.first("Call-ID").unwrap_or_default();
        let Some(&(key, side)) = self.dialogs.get(call_id) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(branch) = message::top_branch(scan) else {
            return;
        };
        let Some((cseq, method)) = message::cseq(scan) else {
            return;
        };
        let leg = call.leg(side);
        let final_response = status >= 200;
        let tx = if final_response {
            leg.take_transaction(branch, method)
        } else {
            leg.transaction_mut(branch, method).map(|t| {
                t.provisional = true;
                // Timer A stops once the INVITE is answered provisionally.
                t.retransmit = None;
                t.clone()
            })
        };
        let Some(tx) = tx else {
            // A retransmitted 2xx of an INVITE we already acknowledged: acknowledge again.
            if method == "INVITE" && (200..300).contains(&status) {
                if let Some(ack) = leg.ack.clone() {
                    out.messages.push(leg.peer.send(ack));
                }
            }
            return;
        };
        match (tx.purpose, side) {
            (Purpose::Ring, Side::Branch(i)) => {
                Self::ring_response(&self.ctx, call, i, status, scan, now, out);
                if let Some(ring) = Self::click_dial(call) {
                    Self::ring(&self.ctx, &mut self.dialogs, key, call, ring, now, out);
                }
            }
            (Purpose::Relay, _) => {
                Self::relay_response(&self.ctx, call, side, status, scan, &tx, now, out)
            }
            (Purpose::Offer, _) if final_response => {
                Self::offer_response(&self.ctx, call, side, status, scan, &tx, out)
            }
            _ => {
                if method == "INVITE" && final_response {
                    let leg = call.leg(side);
                    Self::ack(&self.ctx, leg, status, scan, cseq, &tx.branch, out);
                }
            }
        }
    }

    /// The clock: retransmissions, timeouts, no-answer, the drain deadline, forgetting
    /// ended calls.
    pub fn tick(&mut self, now: u64, out: &mut Outputs) {
        self.registrations
            .tick(&self.ctx.local, now, &mut out.messages);
        self.call_timers(now, out);
        let mut queue = crate::queue::AcdOutputs::default();
        if now >= self.next_presence_ms {
            // Operators without a registered device are offline for the queues.
            self.next_presence_ms = now + 1_000;
            let operators: Vec<String> = self.acd.operators().map(|o| o.id.clone()).collect();
            for id in operators {
                let registered = self.user_targets(&id, now).is_ok();
                self.acd.set_registered(&id, registered, now, &mut queue);
            }
        }
        self.acd.tick(now, &mut queue);
        self.apply(queue, now, out);
        self.settle(now, out);
    }

    fn call_timers(&mut self, now: u64, out: &mut Outputs) {
        let drain_over = self.drain_deadline.is_some_and(|d| now >= d);
        let mut due = self.calls.due(now);
        if drain_over {
            let running = self.calls.iter().filter(|(_, c)| c.state != State::Ended);
            due.extend(running.map(|(k, _)| *k));
            due.sort_unstable();
            due.dedup();
        }
        for key in due {
            let Some(call) = self.calls.get_mut(&key) else {
                continue;
            };
            if call.ended_at.is_some_and(|e| now >= e + LINGER_MS) {
                let call = self.calls.remove(&key).expect("present");
                self.ids.remove(&call.id);
                self.dialogs.remove(&call.caller.call_id);
                for b in &call.branches {
                    self.dialogs.remove(&b.leg.call_id);
                }
                continue;
            }
            if drain_over && call.state != State::Ended {
                Self::hang_up(&self.ctx, call, EndCause::Shutdown, now, out);
                continue;
            }
            if call.state == State::Ringing && now >= call.ring_deadline {
                Self::fail_caller(&self.ctx, call, 480, now, out);
                Self::finish(
                    &self.ctx,
                    call,
                    EndCause::NoAnswer,
                    Some(480),
                    None,
                    now,
                    out,
                );
            }
            if call.overflowed_to_user() && now >= call.ring_deadline {
                Self::hang_up(&self.ctx, call, EndCause::NoAnswer, now, out);
            }
            if call.transfer.as_ref().is_some_and(|t| now >= t.deadline) {
                Self::transfer_failed(&self.ctx, call, 480, now, out);
            }
            Self::leg_timers(&self.ctx, call, now, out);
        }
    }

    /// A stream connection closed: its legs are gone.
    pub fn connection_closed(&mut self, connection: u64, now: u64, out: &mut Outputs) {
        self.legs_lost(connection, now, out);
        self.settle(now, out);
    }

    fn legs_lost(&mut self, connection: u64, now: u64, out: &mut Outputs) {
        for call in self.calls.values_mut() {
            let lost: Vec<Side> = call
                .sides()
                .filter(|s| call.leg(*s).peer.connection == Some(connection))
                .collect();
            for side in lost {
                if call.state == State::Ended {
                    break;
                }
                let leg = call.leg(side);
                if leg.ended {
                    continue;
                }
                leg.transactions.clear();
                leg.awaiting_ack = None;
                leg.ended = true;
                if Self::transferor_left(call, side) {
                    continue;
                }
                match side {
                    _ if call.other(side).is_some() => {
                        Self::hang_up_side(&self.ctx, call, side, EndCause::LegLost, now, out)
                    }
                    Side::Caller if matches!(call.state, State::Ringing | State::Queued) => {
                        call.final_sent = true;
                        Self::finish(
                            &self.ctx,
                            call,
                            EndCause::LegLost,
                            None,
                            Some(LegRole::Caller),
                            now,
                            out,
                        );
                    }
                    Side::Branch(i) if call.branches[i].state != BranchState::Done => {
                        Self::branch_failed(&self.ctx, call, i, 503, now, out)
                    }
                    _ => {}
                }
            }
        }
    }

    /// A recording the media plane closed: its event, in the call's sequence.
    pub fn recording_finished(
        &mut self,
        call_id: &str,
        path: String,
        info: RecordingInfo,
        now: u64,
        out: &mut Outputs,
    ) {
        let kind = EventKind::RecordingFinished {
            path,
            duration_ms: info.duration_ms,
            bytes: info.bytes,
            channels: info.channels,
        };
        match self.calls.find_mut(|c| c.id == call_id) {
            Some(call) => call.emit(None, kind, now, out),
            None => out.events.push(Event {
                call_id: call_id.to_string(),
                seq: u32::MAX,
                at_ms: now,
                leg: None,
                kind,
            }),
        }
    }

    fn leg_timers(ctx: &Context, call: &mut Call, now: u64, out: &mut Outputs) {
        let mut expired_ack = false;
        for side in call.sides().collect::<Vec<_>>() {
            let leg = call.leg(side);
            if leg.awaiting_ack.as_ref().is_some_and(|a| now >= a.deadline) {
                let a = leg.awaiting_ack.take().expect("checked");
                // Timer H: the caller never acknowledged our 2xx: the dialog is dead.
                expired_ack |= a.success;
            }
            let expired = leg.timers(now, &mut out.messages);
            for tx in expired {
                match (tx.purpose, side) {
                    (Purpose::Ring, Side::Branch(i)) if !tx.provisional => {
                        // Timer B: the device never answered at all.
                        Self::branch_failed(ctx, call, i, 408, now, out);
                    }
                    (Purpose::Relay, _) => {
                        if let Some(origin) = call.other(side) {
                            let leg = call.leg(origin);
                            if let Some(rx) = leg.relayed.take() {
                                let r = respond(&rx, 408, &leg.local_tag, None, None, &[]);
                                out.messages.push(leg.peer.send(r));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if expired_ack && matches!(call.state, State::Answered | State::Queued) {
            Self::hang_up(ctx, call, EndCause::LegLost, now, out);
        }
    }

    /// The caller's answer to kolokol's offer, in the ACK of a late-offer INVITE.
    fn late_answer(ctx: &Context, call: &mut Call, ack: &Request<'_>) {
        let answer = message::sdp(&ack.scan).and_then(|s| sdp::parse(s).ok());
        let Some(answer) = answer.filter(|a| !a.codecs.is_empty()) else {
            tracing::warn!(call = %call.id, "late offer: the ACK carried no usable answer");
            return;
        };
        call.late_offer = false;
        ctx.media.set_remote(
            call.caller.endpoint.id,
            remote_of(&answer, answer.codecs[0], &call.caller.peer),
        );
    }

    /// The caller's INVITE answered: 200 with kolokol's SDP, kept until the ACK.
    fn answer_caller(ctx: &Context, call: &mut Call, now: u64, out: &mut Outputs) {
        let contact = ctx.local.contact(call.caller.peer.transport);
        let bytes = respond(
            &call.invite,
            200,
            &call.caller.local_tag,
            Some(&contact),
            Some(&call.caller_answer),
            &[],
        );
        call.final_sent = true;
        call.last_response = Some(bytes.clone());
        let cseq = call.invite.cseq;
        out.messages
            .push(call.caller.send_final(bytes, cseq, true, now));
    }

    /// Sends a final non-2xx to the caller's INVITE.
    fn fail_caller(ctx: &Context, call: &mut Call, status: u16, now: u64, out: &mut Outputs) {
        if call.click.is_some() {
            Self::click_hang_up_device(ctx, call, now, out);
            return;
        }
        if call.final_sent {
            return;
        }
        let _ = ctx;
        call.final_sent = true;
        let bytes = respond(
            &call.invite,
            status,
            &call.caller.local_tag,
            None,
            None,
            &[],
        );
        call.last_response = Some(bytes.clone());
        let cseq = call.invite.cseq;
        out.messages
            .push(call.caller.send_final(bytes, cseq, false, now));
    }

    /// Ends the call's bookkeeping: branches cancelled, media closed, the Ended event.
    fn finish(
        ctx: &Context,
        call: &mut Call,
        cause: EndCause,
        status: Option<u16>,
        by: Option<LegRole>,
        now: u64,
        out: &mut Outputs,
    ) {
        if call.state == State::Ended {
            return;
        }
        for i in 0..call.branches.len() {
            if call.other(Side::Branch(i)).is_none() {
                Self::cancel_branch(ctx, call, i, now, out);
            }
        }
        Self::left_queue_core(call, by, out);
        call.state = State::Ended;
        call.ended_at = Some(now);
        match call.bridge.take() {
            Some(b) => ctx.media.close_bridge(b),
            None => {
                ctx.media.close_endpoint(call.caller.endpoint.id);
                ctx.media.close_endpoint(call.callee_endpoint.id);
            }
        }
        if let Some(t) = call.transfer.take() {
            ctx.media.close_endpoint(t.endpoint.id);
        }
        call.emit(by, EventKind::Ended { cause, status, by }, now, out);
    }

    fn cancel_branch(ctx: &Context, call: &mut Call, i: usize, now: u64, out: &mut Outputs) {
        let b = &mut call.branches[i];
        match b.state {
            BranchState::Proceeding => {
                let bytes = b
                    .leg
                    .request("CANCEL", b.invite_cseq, &b.invite_branch, &ctx.local, 70)
                    .finish(b"", None);
                let branch = b.invite_branch.clone();
                let cseq = b.invite_cseq;
                out.messages.push(
                    b.leg
                        .start("CANCEL", cseq, branch, bytes, Purpose::Hangup, now),
                );
                b.state = BranchState::Cancelling { sent: true };
            }
            BranchState::Calling => b.state = BranchState::Cancelling { sent: false },
            _ => {}
        }
    }

    fn ring_response(
        ctx: &Context,
        call: &mut Call,
        i: usize,
        status: u16,
        scan: &sip::Scan<'_>,
        now: u64,
        out: &mut Outputs,
    ) {
        let cseq = message::cseq(scan).map_or(0, |c| c.0);
        let to_tag = scan.first("To").and_then(message::tag).map(str::to_string);
        if status < 200 {
            // Put the INVITE transaction back: it is still running.
            let b = &mut call.branches[i];
            match b.state {
                BranchState::Calling => b.state = BranchState::Proceeding,
                BranchState::Cancelling { sent: false } => {
                    b.state = BranchState::Proceeding;
                    Self::cancel_branch(ctx, call, i, now, out);
                    return;
                }
                _ => {}
            }
            if call.click.is_some() {
                Self::click_progress(ctx, call, i, status, scan, now, out);
                return;
            }
            if status == 100 || call.state != State::Ringing || call.final_sent {
                return;
            }
            let early = message::sdp(scan).and_then(|s| sdp::parse(s).ok());
            if let Some(desc) = &early {
                if let Some(codec) = desc.codecs.first() {
                    let leg = &call.branches[i].leg;
                    ctx.media
                        .set_remote(leg.endpoint.id, remote_of(desc, *codec, &leg.peer));
                    Self::bridge(ctx, call, i, now, out);
                }
            }
            // Early media needs the caller's offer to answer (no 183 after a late offer).
            let relayed = if early.is_some() && call.bridge.is_some() && !call.late_offer {
                183
            } else {
                180
            };
            let first_ring = call
                .last_response
                .as_ref()
                .is_none_or(|r| r.starts_with(b"SIP/2.0 100"));
            let contact = ctx.local.contact(call.caller.peer.transport);
            let body = (relayed == 183).then_some(call.caller_answer.as_str());
            let bytes = respond(
                &call.invite,
                relayed,
                &call.caller.local_tag,
                Some(&contact),
                body,
                &[],
            );
            out.messages.push(call.caller.peer.send(bytes.clone()));
            call.last_response = Some(bytes);
            if first_ring {
                let target = call.branches[i].target.clone();
                call.emit(
                    Some(LegRole::Callee),
                    EventKind::Ringing { target },
                    now,
                    out,
                );
            }
            return;
        }
        if (200..300).contains(&status) {
            // Acknowledge every 2xx: a dialog exists at the device whatever we do next.
            {
                let leg = &mut call.branches[i].leg;
                leg.remote_tag = to_tag;
                if let Some(c) = scan.first("Contact") {
                    leg.remote_target = message::uri(c).to_string();
                }
                leg.route_set = message::record_route(scan, true);
            }
            let branch = call.branches[i].invite_branch.clone();
            Self::ack(
                ctx,
                &mut call.branches[i].leg,
                status,
                scan,
                cseq,
                &branch,
                out,
            );
            if call.branches[i].for_transfer {
                Self::transfer_answered(ctx, call, i, scan, now, out);
                return;
            }
            if let Some(operator) = call.branches[i].operator.clone() {
                Self::operator_answered(ctx, call, i, operator, scan, now, out);
                return;
            }
            if call.click.is_some() {
                Self::click_answered(ctx, call, i, scan, now, out);
                return;
            }
            let won = call.state == State::Ringing
                && call.winner.is_none()
                && !call.final_sent
                && !matches!(call.branches[i].state, BranchState::Cancelling { .. });
            if !won {
                // Answered too late (another device won, or CANCEL crossed this 2xx).
                call.branches[i].state = BranchState::Done;
                Self::send_bye(ctx, &mut call.branches[i].leg, now, out);
                return;
            }
            let answer = message::sdp(scan).and_then(|s| sdp::parse(s).ok());
            let Some(answer) = answer.filter(|a| !a.codecs.is_empty()) else {
                // An answer we cannot use: drop this device, keep ringing the others.
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
            call.winner = Some(i);
            call.state = State::Answered;
            for j in 0..call.branches.len() {
                if j != i {
                    Self::cancel_branch(ctx, call, j, now, out);
                }
            }
            Self::bridge(ctx, call, i, now, out);
            Self::answer_caller(ctx, call, now, out);
            let by = call.branches[i].target.clone();
            out.pending.push(QueueInput::Direct {
                operator: by.clone(),
                call: call.id.clone(),
                active: true,
            });
            call.emit(Some(LegRole::Callee), EventKind::Answered { by }, now, out);
            return;
        }
        // A failure: ACK it (same transaction), and see whether anyone is still ringing.
        let branch = call.branches[i].invite_branch.clone();
        {
            let leg = &mut call.branches[i].leg;
            Self::ack(ctx, leg, status, scan, cseq, &branch, out);
        }
        if matches!(status, 401 | 407)
            && Self::authenticate_branch(ctx, call, i, status, scan, now, out)
        {
            return;
        }
        Self::branch_failed(ctx, call, i, status, now, out);
    }

    /// A device rung will not answer (`status` says why): when it was the last one
    /// ringing, the call (or the transfer) fails.
    fn branch_failed(
        ctx: &Context,
        call: &mut Call,
        i: usize,
        status: u16,
        now: u64,
        out: &mut Outputs,
    ) {
        let was = std::mem::replace(&mut call.branches[i].state, BranchState::Done);
        call.branches[i].status = Some(status);
        if Self::click_device_left(ctx, call, i, status, now, out) {
            return;
        }
        if let Some(operator) = call.branches[i].operator.clone() {
            Self::operator_missed(call, operator, was, out);
        } else if call.branches[i].for_transfer {
            Self::maybe_transfer_failed(ctx, call, now, out);
        } else {
            Self::maybe_all_failed(ctx, call, now, out);
        }
    }

    /// A provider challenged our INVITE: send it again with the trunk's credentials (once).
    fn authenticate_branch(
        ctx: &Context,
        call: &mut Call,
        i: usize,
        status: u16,
        scan: &sip::Scan<'_>,
        now: u64,
        out: &mut Outputs,
    ) -> bool {
        let mut headers = device_headers(call, &call.branches[i].leg.peer);
        let b = &mut call.branches[i];
        if matches!(b.state, BranchState::Cancelling { .. }) || call.state == State::Ended {
            return false;
        }
        let Some((username, password)) = b.credentials.take() else {
            return false;
        };
        let (challenge, header) = if status == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let uri = b.leg.target_uri().to_string();
        let Some(answer) = scan.all(challenge).find_map(|c| {
            registrar::digest::answer(c, "INVITE", &uri, &username, &password, &message::token())
        }) else {
            return false;
        };
        let leg = &mut b.leg;
        let body = sdp::render(&call.callee_offer, leg.sdp_session, leg.sdp_version);
        leg.local_cseq += 1;
        let (cseq, branch) = (leg.local_cseq, message::branch());
        headers.push((header, answer));
        let bytes = initial_invite(ctx, leg, cseq, &branch, 70, &body, &headers);
        out.messages
            .push(leg.start("INVITE", cseq, branch.clone(), bytes, Purpose::Ring, now));
        b.invite_branch = branch;
        b.invite_cseq = cseq;
        b.state = BranchState::Calling;
        true
    }

    /// When every branch has failed, the caller hears the best of their answers.
    fn maybe_all_failed(ctx: &Context, call: &mut Call, now: u64, out: &mut Outputs) {
        // A click-to-call's device that answered waits for the number: not a failure.
        let device = call.click_device();
        let ringing = |(j, b): (usize, &Branch)| b.state != BranchState::Done && device != Some(j);
        if call.state != State::Ringing || call.branches.iter().enumerate().any(ringing) {
            return;
        }
        // Once the number was dialled, its answer is the one that counts.
        let statuses: Vec<u16> = call
            .branches
            .iter()
            .filter(|b| device.is_none() || b.leg.peer.trunk)
            .filter_map(|b| b.status)
            .collect();
        let status = best_status(&statuses);
        // A click-to-call the user's own devices refused was ended by the caller.
        let by = if call.click.is_some() && device.is_none() {
            LegRole::Caller
        } else {
            LegRole::Callee
        };
        Self::fail_caller(ctx, call, status, now, out);
        Self::finish(
            ctx,
            call,
            cause_for(status),
            Some(status),
            Some(by),
            now,
            out,
        );
    }

    /// ACK for an INVITE's final response: the 2xx ACK is its own transaction; the non-2xx
    /// one reuses the INVITE's branch (RFC 3261 §17.1.1.3).
    fn ack(
        ctx: &Context,
        leg: &mut Leg,
        status: u16,
        scan: &sip::Scan<'_>,
        cseq: u32,
        invite_branch: &str,
        out: &mut Outputs,
    ) {
        let to = scan.first("To").unwrap_or_default();
        if (200..300).contains(&status) {
            let branch = message::branch();
            let bytes = leg
                .request("ACK", cseq, &branch, &ctx.local, 70)
                .finish(b"", None);
            leg.ack = Some(bytes.clone());
            out.messages.push(leg.peer.send(bytes));
        } else {
            let mut w = message::RequestWriter::new("ACK", leg.target_uri())
                .header("Via", ctx.local.via(leg.peer.transport, invite_branch))
                .header("Max-Forwards", 70)
                .header("From", format!("{};tag={}", leg.local_uri, leg.local_tag))
                .header("To", to)
                .header("Call-ID", &leg.call_id)
                .header("CSeq", format!("{cseq} ACK"));
            w = w.headers("Route", &leg.route_set);
            out.messages.push(leg.peer.send(w.finish(b"", None)));
        }
    }

    fn send_bye(ctx: &Context, leg: &mut Leg, now: u64, out: &mut Outputs) {
        if leg.ended {
            return;
        }
        leg.ended = true;
        let (branch, cseq, w) = leg.next_request("BYE", &ctx.local);
        let bytes = w.finish(b"", None);
        out.messages
            .push(leg.start("BYE", cseq, branch, bytes, Purpose::Hangup, now));
    }

    /// Starts the media between the caller and branch `i` (all first branches share one
    /// endpoint).
    fn bridge(ctx: &Context, call: &mut Call, i: usize, now: u64, out: &mut Outputs) {
        if call.bridge.is_some() {
            return;
        }
        let recording = call
            .recording
            .as_ref()
            .map(|p| (call.id.clone(), p.clone()));
        let callee = call.branches[i].leg.endpoint.id;
        match ctx.media.bridge(call.caller.endpoint.id, callee, recording) {
            Ok(b) => {
                call.bridge = Some(b);
                if let Some(p) = &call.recording {
                    let path = p.display().to_string();
                    call.emit(None, EventKind::RecordingStarted { path }, now, out);
                }
            }
            Err(e) => tracing::warn!(call = %call.id, error = %e, "bridging media failed"),
        }
    }

    /// BYE from one side: answer it, hang up the other.
    fn bye(ctx: &Context, call: &mut Call, side: Side, tx: &ServerTx, now: u64, out: &mut Outputs) {
        let leg = call.leg(side);
        let ok = respond(tx, 200, &leg.local_tag, None, None, &[]);
        out.messages.push(leg.peer.send(ok));
        leg.awaiting_ack = None;
        leg.ended = true;
        if Self::transferor_left(call, side) {
            return;
        }
        let role = call.role_of(side);
        match (call.state, side) {
            (State::Answered, _) if call.other(side).is_some() => {
                if let Some(other) = call.other(side) {
                    Self::send_bye(ctx, call.leg(other), now, out);
                }
                Self::finish(ctx, call, EndCause::Completed, None, Some(role), now, out);
            }
            (State::Answered, Side::Branch(i)) if call.branches[i].state != BranchState::Done => {
                // A transfer target ending its early dialog.
                Self::branch_failed(ctx, call, i, 480, now, out);
            }
            (State::Ringing, Side::Caller) => {
                // The caller may end an early dialog with BYE (RFC 3261 §15).
                Self::fail_caller(ctx, call, 487, now, out);
                Self::finish(
                    ctx,
                    call,
                    EndCause::Abandoned,
                    Some(487),
                    Some(role),
                    now,
                    out,
                );
            }
            (State::Ringing, Side::Branch(i)) => Self::branch_failed(ctx, call, i, 480, now, out),
            (State::Queued, Side::Caller) => {
                Self::finish(ctx, call, EndCause::Abandoned, None, Some(role), now, out)
            }
            (State::Queued, Side::Branch(i)) if call.branches[i].state != BranchState::Done => {
                Self::branch_failed(ctx, call, i, 480, now, out)
            }
            _ => {}
        }
    }

    /// Ends an answered call from kolokol's side: BYE to both legs.
    fn hang_up(ctx: &Context, call: &mut Call, cause: EndCause, now: u64, out: &mut Outputs) {
        if call.state == State::Ringing {
            Self::fail_caller(
                ctx,
                call,
                if cause == EndCause::Shutdown {
                    503
                } else {
                    480
                },
                now,
                out,
            );
            Self::finish(ctx, call, cause, None, None, now, out);
            return;
        }
        let left = call.left;
        Self::send_bye(ctx, call.leg(left), now, out);
        if let Some(w) = call.winner {
            Self::send_bye(ctx, &mut call.branches[w].leg, now, out);
        }
        Self::finish(ctx, call, cause, None, None, now, out);
    }

    /// One side is gone: BYE only to the other.
    fn hang_up_side(
        ctx: &Context,
        call: &mut Call,
        gone: Side,
        cause: EndCause,
        now: u64,
        out: &mut Outputs,
    ) {
        if let Some(other) = call.other(gone) {
            Self::send_bye(ctx, call.leg(other), now, out);
        }
        let by = call.role_of(gone);
        Self::finish(ctx, call, cause, None, Some(by), now, out);
    }

    /// re-INVITE, UPDATE, INFO from one leg: passed to the other with our own SDP.
    fn relay(
        ctx: &Context,
        call: &mut Call,
        side: Side,
        req: &Request<'_>,
        tx: ServerTx,
        now: u64,
        out: &mut Outputs,
    ) {
        let Some(other) = call.other(side).filter(|_| call.state == State::Answered) else {
            let leg = call.leg(side);
            let status = if req.method == "INFO" { 481 } else { 491 };
            let r = respond(&tx, status, &leg.local_tag, None, None, &[]);
            out.messages.push(leg.peer.send(r));
            return;
        };
        let offer = message::sdp(&req.scan).map(sdp::parse);
        let glare = call.leg(side).relayed.is_some()
            || call.leg(other).relayed.is_some()
            || call
                .leg(other)
                .transactions
                .iter()
                .any(|t| t.purpose == Purpose::Relay);
        if glare || matches!(offer, Some(Err(_))) || (req.method == "INVITE" && offer.is_none()) {
            // Glare (RFC 3261 §14.1) or an offer we cannot read.
            let leg = call.leg(side);
            let status = if glare { 491 } else { 488 };
            let r = respond(&tx, status, &leg.local_tag, None, None, &[]);
            out.messages.push(leg.peer.send(r));
            return;
        }
        let (body, content_type) = match offer {
            Some(Ok(desc)) => {
                // Offer the other side the same direction, on its own endpoint.
                let endpoint = call.leg(other).endpoint;
                let te = desc.telephone_event.map(|_| TELEPHONE_EVENT_PT);
                let codecs: Vec<Codec> =
                    desc.codecs
                        .iter()
                        .map(|c| c.0)
                        .chain(CODECS)
                        .fold(Vec::new(), |mut v, c| {
                            if !v.contains(&c) {
                                v.push(c);
                            }
                            v
                        });
                let leg_other = call.leg(other);
                let version = leg_other.next_sdp_version();
                let session = leg_other.sdp_session;
                let d = sdp::offer(endpoint.address, endpoint.port, &codecs, te, desc.direction);
                (
                    sdp::render(&d, session, version).into_bytes(),
                    Some("application/sdp".to_string()),
                )
            }
            _ => (
                req.scan.body.to_vec(),
                req.header("Content-Type").map(str::to_string),
            ),
        };
        let method: &'static str = match req.method {
            "INVITE" => "INVITE",
            "UPDATE" => "UPDATE",
            _ => "INFO",
        };
        let leg_other = call.leg(other);
        let (branch, cseq, mut w) = leg_other.next_request(method, &ctx.local);
        if method != "INFO" {
            w = w.header("Contact", ctx.local.contact(leg_other.peer.transport));
        }
        let bytes = w.finish(&body, content_type.as_deref());
        out.messages
            .push(leg_other.start(method, cseq, branch, bytes, Purpose::Relay, now));
        call.leg(side).relayed = Some(tx);
    }

    /// The other leg answered a relayed request: answer the originator.
    #[allow(clippy::too_many_arguments)]
    fn relay_response(
        ctx: &Context,
        call: &mut Call,
        side: Side,
        status: u16,
        scan: &sip::Scan<'_>,
        tx: &leg::ClientTx,
        now: u64,
        out: &mut Outputs,
    ) {
        if tx.method == "INVITE" {
            let branch = tx.branch.clone();
            Self::ack(ctx, call.leg(side), status, scan, tx.cseq, &branch, out);
        }
        let Some(origin) = call.other(side) else {
            return;
        };
        let answer = message::sdp(scan).and_then(|s| sdp::parse(s).ok());
        // A provisional answer (JsSIP sends 100 to every re-INVITE) is passed on, and the
        // relayed request stays open for the final one.
        let rx = if status < 200 {
            call.leg(origin).relayed.clone()
        } else {
            call.leg(origin).relayed.take()
        };
        let Some(rx) = rx else {
            return;
        };
        let mut body = None;
        if (200..300).contains(&status) {
            if let (Some(ans), Ok(scan_o)) = (&answer, sip::scan::scan(&rx.request)) {
                let endpoint = call.leg(side).endpoint;
                if let Some(codec) = ans.codecs.first() {
                    let peer = call.leg(side).peer;
                    ctx.media
                        .set_remote(endpoint.id, remote_of(ans, *codec, &peer));
                }
                // Answer the originator's offer on its own endpoint.
                if let Some(Ok(offer)) = message::sdp(&scan_o).map(sdp::parse) {
                    let own = call.leg(origin).endpoint;
                    if let Ok(mut a) = sdp::answer(&offer, own.address, own.port, &CODECS) {
                        if !ans.direction.receives() {
                            a.direction = match a.direction {
                                Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
                                d => d,
                            };
                        }
                        let peer = call.leg(origin).peer;
                        ctx.media
                            .set_remote(own.id, remote_of(&offer, a.codecs[0], &peer));
                        let leg_o = call.leg(origin);
                        let version = leg_o.next_sdp_version();
                        body = Some(sdp::render(&a, leg_o.sdp_session, version));
                        let held =
                            !offer.direction.receives() || offer.direction == Direction::Inactive;
                        let was = leg_o.held;
                        leg_o.held = held;
                        if held != was {
                            let kind = if held {
                                EventKind::Held
                            } else {
                                EventKind::Resumed
                            };
                            let by = call.role_of(origin);
                            call.emit(Some(by), kind, now, out);
                            if call.queue.is_some() && call.state == State::Answered {
                                out.pending.push(QueueInput::Hold {
                                    call: call.id.clone(),
                                    held,
                                });
                            }
                        }
                    }
                }
            }
        }
        let leg_o = call.leg(origin);
        let contact = (rx.method == "INVITE" || rx.method == "UPDATE")
            .then(|| ctx.local.contact(leg_o.peer.transport));
        let bytes = respond(
            &rx,
            status,
            &leg_o.local_tag,
            contact.as_deref().filter(|_| status < 300),
            body.as_deref(),
            &[],
        );
        let sent = if rx.method == "INVITE" && status >= 200 {
            leg_o.send_final(bytes, rx.cseq, false, now)
        } else {
            leg_o.peer.send(bytes)
        };
        out.messages.push(sent);
    }
}

/// The INVITE that rings a device or a trunk, with extra headers (kolokol's own, an
/// answer to a challenge).
fn initial_invite(
    ctx: &Context,
    leg: &Leg,
    cseq: u32,
    branch: &str,
    max_forwards: u8,
    sdp: &str,
    headers: &[(&str, String)],
) -> Vec<u8> {
    let mut w = leg
        .request("INVITE", cseq, branch, &ctx.local, max_forwards)
        .header("Contact", ctx.local.contact(leg.peer.transport))
        .header("Allow", crate::service::ALLOW);
    for (name, value) in headers {
        w = w.header(name, value);
    }
    w.finish(sdp.as_bytes(), Some("application/sdp"))
}

/// The header naming kolokol's call id in every INVITE to a user's device, so a browser
/// softphone knows which call (and card, `GET /api/v1/calls/{id}/partner`) is ringing.
pub const CALL_ID_HEADER: &str = "X-Kolokol-Call-Id";

/// What a user's device is told about the call ringing it; a provider is told nothing
/// of kolokol's own.
fn device_headers(call: &Call, peer: &Peer) -> Vec<(&'static str, String)> {
    if peer.trunk {
        return Vec::new();
    }
    let mut headers = vec![(CALL_ID_HEADER, call.id.clone())];
    if let Some(c) = call.click.as_ref().filter(|c| c.device.is_none()) {
        headers.push((CLICK_HEADER, c.number.clone()));
    }
    headers
}

/// A From/To value without its tag.
fn strip_tag(value: &str) -> String {
    let (_, params) = sip::grammar::split_name_addr(value);
    if params.is_empty() {
        return value.trim().to_string();
    }
    let head = &value.trim()[..value.trim().len() - params.len()];
    let kept: String = sip::grammar::params(params)
        .filter(|(n, _)| !n.eq_ignore_ascii_case("tag"))
        .map(|(n, v)| match v {
            Some(v) => format!(";{n}={v}"),
            None => format!(";{n}"),
        })
        .collect();
    format!("{head}{kept}")
}

fn is_phone_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn recording_path(root: &std::path::Path, now: u64, id: &str) -> PathBuf {
    let (y, m, d) = message::civil_date(now);
    root.join(format!("{y:04}"))
        .join(format!("{m:02}"))
        .join(format!("{d:02}"))
        .join(format!("{id}.wav"))
}
