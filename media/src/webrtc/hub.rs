//! The gateway thread: the shared WebRTC socket, every peer's `Rtc` and alias socket, and
//! the peers' str0m timers, in one mio poll loop.

use super::{PeerId, WebRtcError};
use crate::rtp;
use mio::net::UdpSocket as MioSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::ice::StunMessage;
use str0m::media::Mid;
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};

const SHARED: Token = Token(0);
const WAKER: Token = Token(1);
/// Alias sockets are `Token(peer id + FIRST_ALIAS)`.
const FIRST_ALIAS: usize = 2;
/// Longest sleep without a str0m timer due.
const IDLE: Duration = Duration::from_millis(100);

pub(super) struct PeerSetup {
    pub peer: PeerId,
    pub rtc: Rtc,
    pub mid: Mid,
    pub alias: UdpSocket,
    pub relay: Option<SocketAddr>,
}

/// An SDP exchange on an established leg.
pub(super) enum SdpChange {
    /// The browser offers (hold, resume): we answer.
    Offer(SdpOffer),
    /// We offer this direction (the other party holds or resumes).
    Reoffer(str0m::media::Direction),
    /// The browser's answer to our re-offer.
    Answer(SdpAnswer),
}

pub(super) enum Command {
    Add(Box<PeerSetup>),
    Sdp {
        peer: PeerId,
        change: SdpChange,
        /// Our SDP (none after an answer), and the leg's alias address.
        reply: mpsc::Sender<Result<(String, SocketAddr), WebRtcError>>,
    },
    SetRelay(PeerId, SocketAddr),
    Close(PeerId),
    Count(mpsc::Sender<usize>),
}

struct Peer {
    rtc: Rtc,
    mid: Mid,
    alias: MioSocket,
    /// The relay endpoint bridged to this leg; media waits until it is known.
    relay: Option<SocketAddr>,
    ufrag: String,
    /// Where the browser's media comes from, once ICE has seen it.
    remote: Option<SocketAddr>,
    /// Extended sequence number of the last packet sent to the browser.
    sent_seq: Option<u64>,
    deadline: Instant,
    /// Our re-offer, until the browser answers it.
    reoffer: Option<SdpPendingOffer>,
}

impl Peer {
    fn sdp(&mut self, change: SdpChange) -> Result<(String, SocketAddr), WebRtcError> {
        let alias = self.alias.local_addr()?;
        let failed = |e: str0m::RtcError| WebRtcError::Sdp(e.to_string());
        let ours = match change {
            SdpChange::Offer(offer) => {
                self.reoffer = None;
                let answer = self.rtc.sdp_api().accept_offer(offer).map_err(failed)?;
                answer.to_sdp_string()
            }
            SdpChange::Reoffer(direction) => {
                let mut api = self.rtc.sdp_api();
                api.set_direction(self.mid, direction);
                let (offer, pending) = api
                    .apply()
                    .ok_or_else(|| WebRtcError::Sdp("nothing to offer".into()))?;
                self.reoffer = Some(pending);
                offer.to_sdp_string()
            }
            SdpChange::Answer(answer) => {
                let pending = self
                    .reoffer
                    .take()
                    .ok_or_else(|| WebRtcError::Sdp("an answer without our offer".into()))?;
                self.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .map_err(failed)?;
                String::new()
            }
        };
        Ok((ours, alias))
    }
}

pub(super) struct Hub {
    poll: Poll,
    socket: MioSocket,
    candidate: SocketAddr,
    commands: mpsc::Receiver<Command>,
    peers: HashMap<PeerId, Peer>,
    by_ufrag: HashMap<String, PeerId>,
    by_source: HashMap<SocketAddr, PeerId>,
    timers: BinaryHeap<Reverse<(Instant, PeerId)>>,
    buf: Vec<u8>,
}

impl Hub {
    pub fn new(
        socket: UdpSocket,
        candidate: SocketAddr,
        commands: mpsc::Receiver<Command>,
    ) -> io::Result<Hub> {
        let poll = Poll::new()?;
        let mut socket = MioSocket::from_std(socket);
        poll.registry()
            .register(&mut socket, SHARED, Interest::READABLE)?;
        Ok(Hub {
            poll,
            socket,
            candidate,
            commands,
            peers: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_source: HashMap::new(),
            timers: BinaryHeap::new(),
            buf: vec![0; 2048],
        })
    }

    pub fn waker(&self) -> io::Result<Waker> {
        Waker::new(self.poll.registry(), WAKER)
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let now = Instant::now();
            let sleep = self
                .timers
                .peek()
                .map_or(IDLE, |Reverse((at, _))| at.saturating_duration_since(now))
                .min(IDLE);
            if let Err(e) = self.poll.poll(&mut events, Some(sleep)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "WebRTC poll failed; browser media stops");
                    return;
                }
            }
            for event in events.iter() {
                match event.token() {
                    SHARED => self.receive_from_browsers(),
                    WAKER => {
                        if !self.apply_commands() {
                            return;
                        }
                    }
                    Token(t) => self.receive_from_relay(PeerId((t - FIRST_ALIAS) as u64)),
                }
            }
            self.timeouts();
        }
    }

    /// Applies queued commands; false once every handle is gone.
    fn apply_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Add(setup)) => self.add(*setup),
                Ok(Command::Sdp {
                    peer,
                    change,
                    reply,
                }) => {
                    let done = match self.peers.get_mut(&peer) {
                        Some(p) => p.sdp(change),
                        None => Err(WebRtcError::UnknownPeer(peer)),
                    };
                    if done.is_ok() {
                        self.reindex(peer);
                        self.drive(peer);
                    }
                    let _ = reply.send(done);
                }
                Ok(Command::SetRelay(peer, relay)) => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.relay = Some(relay);
                    }
                }
                Ok(Command::Close(peer)) => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.rtc.disconnect();
                    }
                    self.remove(peer);
                }
                Ok(Command::Count(reply)) => {
                    let _ = reply.send(self.peers.len());
                }
                Err(mpsc::TryRecvError::Empty) => return true,
                Err(mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn add(&mut self, setup: PeerSetup) {
        let PeerSetup {
            peer,
            mut rtc,
            mid,
            alias,
            relay,
        } = setup;
        let mut alias = MioSocket::from_std(alias);
        let token = Token(peer.0 as usize + FIRST_ALIAS);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut alias, token, Interest::READABLE)
        {
            tracing::warn!(?peer, error = %e, "WebRTC alias socket not registered");
            return;
        }
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        self.by_ufrag.insert(ufrag.clone(), peer);
        self.peers.insert(
            peer,
            Peer {
                rtc,
                mid,
                alias,
                relay,
                ufrag,
                remote: None,
                sent_seq: None,
                deadline: Instant::now(),
                reoffer: None,
            },
        );
        self.drive(peer);
    }

    /// A remote ICE restart gives the peer new local credentials.
    fn reindex(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let ufrag = p.rtc.direct_api().local_ice_credentials().ufrag;
        if ufrag != p.ufrag {
            self.by_ufrag.remove(&p.ufrag);
            self.by_ufrag.insert(ufrag.clone(), peer);
            p.ufrag = ufrag;
        }
    }

    fn remove(&mut self, peer: PeerId) {
        if let Some(mut p) = self.peers.remove(&peer) {
            // Send what disconnect queued (DTLS close), then forget the peer.
            while let Ok(Output::Transmit(t)) = p.rtc.poll_output() {
                let _ = self.socket.send_to(&t.contents, t.destination);
            }
            let _ = self.poll.registry().deregister(&mut p.alias);
            self.by_ufrag.remove(&p.ufrag);
            if let Some(remote) = p.remote {
                self.by_source.remove(&remote);
            }
        }
    }

    /// Datagrams from browsers: STUN is routed by our ufrag, the rest by source address.
    fn receive_from_browsers(&mut self) {
        loop {
            let (n, source) = match self.socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!(error = %e, "WebRTC socket receive");
                    continue;
                }
            };
            let data = &self.buf[..n];
            let peer = if n >= 20 && data[0] < 2 {
                StunMessage::parse(data)
                    .ok()
                    .and_then(|m| m.split_username().map(|(ours, _)| ours.to_string()))
                    .and_then(|ufrag| self.by_ufrag.get(&ufrag).copied())
            } else {
                self.by_source.get(&source).copied()
            };
            let Some(peer) = peer else {
                continue;
            };
            let Some(input) = super::datagram(data, source, self.candidate) else {
                continue;
            };
            let Some(p) = self.peers.get_mut(&peer) else {
                continue;
            };
            if !p.rtc.accepts(&input) {
                continue;
            }
            if let Err(e) = p.rtc.handle_input(input) {
                tracing::debug!(?peer, error = %e, "WebRTC input");
            }
            if p.remote != Some(source) {
                if let Some(old) = p.remote.replace(source) {
                    self.by_source.remove(&old);
                }
                self.by_source.insert(source, peer);
            }
            self.drive(peer);
        }
    }

    /// Plain RTP from the relay, to be encrypted and sent to the browser.
    fn receive_from_relay(&mut self, peer: PeerId) {
        loop {
            let Some(p) = self.peers.get_mut(&peer) else {
                return;
            };
            let n = match p.alias.recv_from(&mut self.buf) {
                Ok((n, _)) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => continue,
            };
            let packet = &self.buf[..n];
            let Ok(payload) = rtp::validate(packet) else {
                continue;
            };
            if !p.rtc.is_connected() {
                continue;
            }
            let seq = rtp::sequence(packet);
            let extended = match p.sent_seq {
                None => seq as u64,
                Some(last) => extend(last, seq),
            };
            p.sent_seq = Some(extended.max(p.sent_seq.unwrap_or(0)));
            let write = RtpWrite::new(
                rtp::payload_type(packet).into(),
                SeqNo::from(extended),
                rtp::timestamp(packet),
                Instant::now(),
                &packet[payload],
            )
            .marker(rtp::marker(packet));
            if let Some(tx) = p.rtc.direct_api().stream_tx_by_mid(p.mid, None) {
                tx.write_rtp(write);
            }
            self.drive(peer);
        }
    }

    fn timeouts(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, peer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(p) = self.peers.get_mut(&peer) else {
                continue;
            };
            if p.deadline != at {
                continue; // superseded
            }
            if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                tracing::debug!(?peer, error = %e, "WebRTC timeout");
            }
            self.drive(peer);
        }
    }

    /// Drains a peer's outputs after any input: datagrams out, RTP to the relay, its next
    /// timer. A peer that is no longer alive is dropped.
    fn drive(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        loop {
            match p.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    if let Err(e) = self.socket.send_to(&t.contents, t.destination) {
                        tracing::debug!(?peer, error = %e, "WebRTC send");
                    }
                }
                Ok(Output::Event(Event::RtpPacket(packet))) => {
                    let Some(relay) = p.relay else {
                        continue;
                    };
                    let mut out = [0u8; 1500];
                    let h = &packet.header;
                    let len = rtp::HEADER_LEN + packet.payload.len();
                    if len > out.len() {
                        continue;
                    }
                    out[0] = 0x80;
                    out[1] = (*h.payload_type & 0x7F) | if h.marker { 0x80 } else { 0 };
                    out[2..4].copy_from_slice(&h.sequence_number.to_be_bytes());
                    out[4..8].copy_from_slice(&h.timestamp.to_be_bytes());
                    out[8..12].copy_from_slice(&(*h.ssrc).to_be_bytes());
                    out[12..len].copy_from_slice(&packet.payload);
                    let _ = p.alias.send_to(&out[..len], relay);
                }
                Ok(Output::Event(Event::IceConnectionStateChange(state))) => {
                    tracing::debug!(?peer, ?state, "WebRTC ICE");
                    if state == IceConnectionState::Disconnected {
                        p.rtc.disconnect();
                    }
                }
                Ok(Output::Event(Event::Connected)) => {
                    tracing::debug!(?peer, "WebRTC connected (DTLS-SRTP up)");
                }
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(at)) => {
                    if at != p.deadline {
                        p.deadline = at;
                        self.timers.push(Reverse((at, peer)));
                    }
                    break;
                }
                Err(e) => {
                    tracing::debug!(?peer, error = %e, "WebRTC peer failed");
                    p.rtc.disconnect();
                    break;
                }
            }
        }
        if !p.rtc.is_alive() {
            self.remove(peer);
        }
    }
}

/// The extended sequence number of `seq` given the last one sent (RFC 3550 A.1 style).
pub(super) fn extend(last: u64, seq: u16) -> u64 {
    let roc = last >> 16;
    let last16 = (last & 0xFFFF) as u16;
    let candidate = (roc << 16) | seq as u64;
    let forward = seq.wrapping_sub(last16);
    if forward < 0x8000 {
        // Ahead of the last one (possibly across a wrap).
        if seq < last16 {
            candidate + 0x1_0000
        } else {
            candidate
        }
    } else if seq > last16 && roc > 0 {
        // A late packet from before the last wrap.
        candidate - 0x1_0000
    } else {
        candidate
    }
}
