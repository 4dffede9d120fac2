//! The RTP relay: one tokio task per bridge owns both legs' sockets and moves packets between
//! them, rewriting headers in place, transcoding PCMU<->PCMA with tables and feeding the
//! recorder.
//!
//! The public [`Media`] handle is synchronous and callable from any thread: control calls touch
//! a small registry under a mutex and send messages to the bridge task, which selects on them
//! next to its sockets. The packet path takes no lock and allocates nothing; its per-packet work
//! is the pure [`forward_packet`], which the benchmark measures directly.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

use crate::g711;
use crate::recorder::{Channel, Recorder, RecordingInfo};
use crate::rtcp::{self, ReceiveStats, ReportBlock, SenderInfo};
use crate::rtp;
use crate::sdp::{Codec, Direction};

/// G.711 runs at 8 kHz: RTP timestamp units per second.
const CLOCK_RATE: u64 = 8000;
/// Largest datagram we relay; anything bigger is not G.711 RTP.
const MAX_DATAGRAM: usize = 2048;
/// Packets handled from one socket before the task looks at control messages and timers again.
const DRAIN_BURST: usize = 32;
/// Seconds between our RTCP reports on each leg.
const RTCP_INTERVAL_TICKS: u64 = 5;
const CNAME: &str = "kolokol";

pub struct MediaConfig {
    /// Address the RTP/RTCP sockets bind to.
    pub bind: IpAddr,
    /// Address written into SDP (the public one behind a 1:1 NAT).
    pub advertise: IpAddr,
    pub port_min: u16,
    pub port_max: u16,
    /// Root directory of call recordings.
    pub recordings: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndpointId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BridgeId(pub u64);

/// A local RTP/RTCP port pair, as written into SDP.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub id: EndpointId,
    /// The advertised address.
    pub address: IpAddr,
    /// RTP port (even); RTCP is `port + 1`.
    pub port: u16,
}

/// What the peer of an endpoint negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remote {
    /// The RTP address from the peer's SDP.
    pub addr: SocketAddr,
    /// Where the peer's SIP came from; also trusted as a media source (NAT).
    pub signalling_ip: Option<IpAddr>,
    pub codec: Codec,
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    /// As seen from the peer: what it will send / receive.
    pub direction: Direction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Left => 0,
            Side::Right => 1,
        }
    }
}

#[derive(Debug, Clone)]
pub enum MediaEvent {
    RecordingClosed {
        key: String,
        path: PathBuf,
        info: RecordingInfo,
    },
    RecordingFailed {
        key: String,
        error: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no free RTP/RTCP port pair in the configured range")]
    PortsExhausted,
    #[error("RTP port range {min}-{max} holds no even/odd port pair")]
    BadPortRange { min: u16, max: u16 },
    #[error("unknown media endpoint {0:?}")]
    UnknownEndpoint(EndpointId),
    #[error("media endpoint {0:?} is already bridged")]
    EndpointBridged(EndpointId),
    #[error("cannot bridge media endpoint {0:?} with itself")]
    SameEndpoint(EndpointId),
    #[error("unknown bridge {0:?}")]
    UnknownBridge(BridgeId),
    #[error("media is shutting down")]
    ShuttingDown,
    #[error("Media::new must be called inside a tokio runtime")]
    NoRuntime,
    #[error("recordings directory {path}: {source}")]
    Recordings { path: PathBuf, source: io::Error },
    #[error("media socket: {0}")]
    Io(#[from] io::Error),
}

/// Handle to the media relay. Cheap to clone; every method is synchronous and callable from
/// any thread (only [`Media::new`] needs to run inside a tokio runtime).
#[derive(Clone)]
pub struct Media {
    inner: Arc<Inner>,
}

struct Inner {
    bind: IpAddr,
    advertise: IpAddr,
    /// First even port and last usable RTP port of the range.
    first_port: u16,
    last_port: u16,
    recordings: PathBuf,
    handle: Handle,
    events: mpsc::UnboundedSender<MediaEvent>,
    next_id: AtomicU64,
    /// Running bridge tasks; shutdown waits for zero.
    running: watch::Sender<usize>,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    next_port: u16,
    /// Open endpoints not (yet) in a bridge.
    parked: HashMap<EndpointId, ParkedEndpoint>,
    bridges: HashMap<BridgeId, BridgeControl>,
    bridged: HashMap<EndpointId, BridgeId>,
    shutting_down: bool,
}

struct ParkedEndpoint {
    rtp: StdUdpSocket,
    rtcp: StdUdpSocket,
    remote: Option<Remote>,
}

struct BridgeControl {
    control: mpsc::UnboundedSender<Control>,
    endpoints: [EndpointId; 2],
}

enum Control {
    SetRemote(EndpointId, Remote),
    Replace(Side, LegSockets),
    Close,
}

impl Media {
    /// Must be called inside a tokio runtime: bridge tasks are spawned on it.
    pub fn new(
        config: MediaConfig,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> Result<Media, MediaError> {
        let handle = Handle::try_current().map_err(|_| MediaError::NoRuntime)?;
        let first_port = config.port_min.saturating_add(config.port_min & 1);
        if first_port == 0 || first_port >= config.port_max {
            return Err(MediaError::BadPortRange {
                min: config.port_min,
                max: config.port_max,
            });
        }
        let last_port = if config.port_max & 1 == 1 {
            config.port_max - 1
        } else {
            config.port_max - 2
        };
        std::fs::create_dir_all(&config.recordings).map_err(|source| MediaError::Recordings {
            path: config.recordings.clone(),
            source,
        })?;
        let (running, _) = watch::channel(0);
        Ok(Media {
            inner: Arc::new(Inner {
                bind: config.bind,
                advertise: config.advertise,
                first_port,
                last_port,
                recordings: config.recordings,
                handle,
                events,
                next_id: AtomicU64::new(1),
                running,
                registry: Mutex::new(Registry {
                    next_port: first_port,
                    ..Default::default()
                }),
            }),
        })
    }

    /// Root directory for recordings, from the configuration.
    pub fn recordings(&self) -> &Path {
        &self.inner.recordings
    }

    /// Binds an RTP (even) + RTCP (odd) socket pair, walking the range round-robin so a port
    /// just released is not reused at once (late packets of the old call would leak in).
    pub fn open_endpoint(&self) -> Result<Endpoint, MediaError> {
        let inner = &self.inner;
        let mut registry = self.registry();
        if registry.shutting_down {
            return Err(MediaError::ShuttingDown);
        }
        let pairs = (inner.last_port - inner.first_port) / 2 + 1;
        for _ in 0..pairs {
            let port = registry.next_port;
            registry.next_port = if port >= inner.last_port {
                inner.first_port
            } else {
                port + 2
            };
            let Some((rtp, rtcp)) = bind_pair(inner.bind, port) else {
                continue;
            };
            let id = EndpointId(inner.next_id.fetch_add(1, Ordering::Relaxed));
            registry.parked.insert(
                id,
                ParkedEndpoint {
                    rtp,
                    rtcp,
                    remote: None,
                },
            );
            return Ok(Endpoint {
                id,
                address: inner.advertise,
                port,
            });
        }
        Err(MediaError::PortsExhausted)
    }

    /// Sets or updates (re-INVITE) what the endpoint's peer negotiated.
    pub fn set_remote(&self, id: EndpointId, remote: Remote) {
        let mut registry = self.registry();
        if let Some(parked) = registry.parked.get_mut(&id) {
            parked.remote = Some(remote);
        } else if let Some(bridge) = registry.bridged.get(&id) {
            if let Some(control) = registry.bridges.get(bridge) {
                let _ = control.control.send(Control::SetRemote(id, remote));
            }
        } else {
            tracing::debug!(?id, "set_remote for an unknown media endpoint");
        }
    }

    /// Starts relaying between two open endpoints; `left` is the caller (left WAV channel).
    pub fn bridge(
        &self,
        left: EndpointId,
        right: EndpointId,
        recording: Option<(String, PathBuf)>,
    ) -> Result<BridgeId, MediaError> {
        if left == right {
            return Err(MediaError::SameEndpoint(left));
        }
        let mut registry = self.registry();
        if registry.shutting_down {
            return Err(MediaError::ShuttingDown);
        }
        for id in [left, right] {
            if !registry.parked.contains_key(&id) {
                return Err(if registry.bridged.contains_key(&id) {
                    MediaError::EndpointBridged(id)
                } else {
                    MediaError::UnknownEndpoint(id)
                });
            }
        }
        let sockets = {
            let _runtime = self.inner.handle.enter();
            let l = registry
                .parked
                .remove(&left)
                .map(|p| LegSockets::new(left, p));
            let r = registry
                .parked
                .remove(&right)
                .map(|p| LegSockets::new(right, p));
            match (l, r) {
                (Some(Ok(l)), Some(Ok(r))) => [l, r],
                (l, r) => {
                    let error = [l, r]
                        .into_iter()
                        .flatten()
                        .find_map(Result::err)
                        .unwrap_or_else(|| io::Error::other("endpoint vanished"));
                    return Err(error.into());
                }
            }
        };
        let id = BridgeId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let (control, control_rx) = mpsc::unbounded_channel();
        registry.bridges.insert(
            id,
            BridgeControl {
                control,
                endpoints: [left, right],
            },
        );
        registry.bridged.insert(left, id);
        registry.bridged.insert(right, id);
        drop(registry);

        self.inner.running.send_modify(|n| *n += 1);
        let task = BridgeTask::new(
            id,
            sockets,
            recording,
            control_rx,
            self.inner.events.clone(),
            RunningGuard(self.inner.running.clone()),
        );
        self.inner.handle.spawn(task.run());
        Ok(id)
    }

    /// Transfer: puts `endpoint` in place of one side. The relay and the recording continue
    /// (same file, same outgoing SSRCs); the old endpoint is closed.
    pub fn replace(
        &self,
        bridge: BridgeId,
        side: Side,
        endpoint: EndpointId,
    ) -> Result<(), MediaError> {
        let mut registry = self.registry();
        if !registry.bridges.contains_key(&bridge) {
            return Err(MediaError::UnknownBridge(bridge));
        }
        let Some(parked) = registry.parked.remove(&endpoint) else {
            return Err(if registry.bridged.contains_key(&endpoint) {
                MediaError::EndpointBridged(endpoint)
            } else {
                MediaError::UnknownEndpoint(endpoint)
            });
        };
        let sockets = {
            let _runtime = self.inner.handle.enter();
            LegSockets::new(endpoint, parked)?
        };
        let control = registry.bridges.get_mut(&bridge).expect("checked above");
        let old = std::mem::replace(&mut control.endpoints[side.index()], endpoint);
        if control
            .control
            .send(Control::Replace(side, sockets))
            .is_err()
        {
            return Err(MediaError::UnknownBridge(bridge));
        }
        registry.bridged.remove(&old);
        registry.bridged.insert(endpoint, bridge);
        Ok(())
    }

    /// Stops relaying, closes both endpoints and finishes the recording
    /// ([`MediaEvent::RecordingClosed`] follows).
    pub fn close_bridge(&self, bridge: BridgeId) {
        let mut registry = self.registry();
        if let Some(control) = registry.bridges.remove(&bridge) {
            for id in control.endpoints {
                registry.bridged.remove(&id);
            }
            let _ = control.control.send(Control::Close);
        }
    }

    /// Closes an endpoint that was never bridged (failed call). Bridged endpoints are closed
    /// with their bridge; for them this does nothing.
    pub fn close_endpoint(&self, id: EndpointId) {
        self.registry().parked.remove(&id);
    }

    /// Closes every bridge and endpoint and resolves once every recording is finished.
    /// New endpoints and bridges are refused from the moment this is called.
    pub fn shutdown(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut registry = self.registry();
        registry.shutting_down = true;
        registry.parked.clear();
        registry.bridged.clear();
        for (_, control) in registry.bridges.drain() {
            let _ = control.control.send(Control::Close);
        }
        drop(registry);
        let mut running = self.inner.running.subscribe();
        async move {
            let _ = running.wait_for(|n| *n == 0).await;
        }
    }

    pub fn active_bridges(&self) -> usize {
        self.registry().bridges.len()
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // The registry stays consistent even if a holder panicked: every update is one step.
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn bind_pair(ip: IpAddr, port: u16) -> Option<(StdUdpSocket, StdUdpSocket)> {
    let rtp = StdUdpSocket::bind(SocketAddr::new(ip, port)).ok()?;
    let rtcp = StdUdpSocket::bind(SocketAddr::new(ip, port + 1)).ok()?;
    rtp.set_nonblocking(true).ok()?;
    rtcp.set_nonblocking(true).ok()?;
    Some((rtp, rtcp))
}

/// Decrements the running-bridge count when a bridge task ends, however it ends.
struct RunningGuard(watch::Sender<usize>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

// ---------------------------------------------------------------------------------------------
// Per-packet work (pure, no I/O): used by the bridge task and by the benchmark.
// ---------------------------------------------------------------------------------------------

/// Why a packet was not forwarded; also the `reason` label of `kolokol_rtp_dropped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not valid RTP.
    Malformed,
    /// The sending or receiving leg has no negotiated remote yet.
    NoRemote,
    /// From an address that is neither the signalled nor the latched one (hijack guard).
    Source,
    /// A payload type that was not negotiated (comfort noise, video, ...).
    PayloadType,
    /// The receiving peer does not receive (hold / inactive).
    Direction,
    /// No usable address to send to (port 0 or 0.0.0.0 and nothing latched).
    NoDestination,
    /// A telephone-event for a peer that did not negotiate telephone-event.
    TelephoneEvent,
    /// The socket refused the datagram.
    SendFailed,
}

impl DropReason {
    const ALL: [DropReason; 8] = [
        DropReason::Malformed,
        DropReason::NoRemote,
        DropReason::Source,
        DropReason::PayloadType,
        DropReason::Direction,
        DropReason::NoDestination,
        DropReason::TelephoneEvent,
        DropReason::SendFailed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NoRemote => "no_remote",
            DropReason::Source => "source",
            DropReason::PayloadType => "payload_type",
            DropReason::Direction => "direction",
            DropReason::NoDestination => "no_destination",
            DropReason::TelephoneEvent => "telephone_event",
            DropReason::SendFailed => "send_failed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) packet to this address from the receiving leg's socket.
    Forward(SocketAddr),
    Drop(DropReason),
}

/// Per-task counters, added to the global `metrics` once a second rather than per packet.
#[derive(Debug, Default, Clone)]
pub struct RelayCounters {
    pub packets_in: u64,
    pub packets_out: u64,
    pub transcoded: u64,
    pub dropped: [u64; DropReason::ALL.len()],
}

impl RelayCounters {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    fn drop(&mut self, reason: DropReason) -> Verdict {
        self.dropped[reason.index()] += 1;
        Verdict::Drop(reason)
    }

    /// Adds the counts to the global metrics and resets them.
    pub fn publish(&mut self) {
        if self.packets_in > 0 {
            metrics::counter!("kolokol_rtp_packets_total", "dir" => "in")
                .increment(self.packets_in);
        }
        if self.packets_out > 0 {
            metrics::counter!("kolokol_rtp_packets_total", "dir" => "out")
                .increment(self.packets_out);
        }
        if self.transcoded > 0 {
            metrics::counter!("kolokol_rtp_transcoded_total").increment(self.transcoded);
        }
        for reason in DropReason::ALL {
            let n = self.dropped[reason.index()];
            if n > 0 {
                metrics::counter!("kolokol_rtp_dropped_total", "reason" => reason.label())
                    .increment(n);
            }
        }
        *self = RelayCounters::default();
    }
}

/// Where to put a leg's decoded audio.
pub struct RecordTap<'a> {
    pub recorder: &'a mut Recorder,
    pub channel: Channel,
}

/// The stream we send to one peer: a fixed SSRC, and seq/timestamp offsets that keep it
/// continuous when the source behind it changes (transfer, re-INVITE, new SSRC).
#[derive(Debug, Clone)]
struct OutgoingStream {
    ssrc: u32,
    started: bool,
    resync: bool,
    seq_offset: u16,
    ts_offset: u32,
    last_seq: u16,
    last_ts: u32,
    last_sent: Option<Instant>,
    packets: u32,
    octets: u32,
}

impl OutgoingStream {
    fn new() -> OutgoingStream {
        OutgoingStream {
            ssrc: rand::random(),
            started: false,
            resync: false,
            seq_offset: 0,
            ts_offset: 0,
            last_seq: 0,
            last_ts: 0,
            last_sent: None,
            packets: 0,
            octets: 0,
        }
    }

    fn rewrite(&mut self, packet: &mut [u8], payload_len: usize, now: Instant) {
        let seq = rtp::sequence(packet);
        let ts = rtp::timestamp(packet);
        if !self.started {
            self.started = true;
            self.resync = false;
        } else if self.resync {
            // Continue right after the last packet sent, with the timestamp advanced by the
            // real time that passed, and mark the new talkspurt for the peer's jitter buffer.
            let elapsed = self
                .last_sent
                .map(|at| now.saturating_duration_since(at))
                .unwrap_or_default();
            let advance = ((elapsed.as_micros() as u64 * CLOCK_RATE / 1_000_000) as u32).max(1);
            self.seq_offset = self.last_seq.wrapping_add(1).wrapping_sub(seq);
            self.ts_offset = self.last_ts.wrapping_add(advance).wrapping_sub(ts);
            self.resync = false;
            rtp::set_marker(packet, true);
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_ts = ts.wrapping_add(self.ts_offset);
        rtp::set_sequence(packet, out_seq);
        rtp::set_timestamp(packet, out_ts);
        rtp::set_ssrc(packet, self.ssrc);
        // Only move forward: a reordered packet must not pull the continuation point back.
        if self.packets == 0 || (out_seq.wrapping_sub(self.last_seq) as i16) > 0 {
            self.last_seq = out_seq;
            self.last_ts = out_ts;
            self.last_sent = Some(now);
        }
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload_len as u32);
    }

    /// Our RTP time now, extrapolated from the last packet sent (for the SR).
    fn rtp_time(&self, now: Instant) -> u32 {
        let elapsed = self
            .last_sent
            .map(|at| now.saturating_duration_since(at))
            .unwrap_or_default();
        self.last_ts
            .wrapping_add((elapsed.as_micros() as u64 * CLOCK_RATE / 1_000_000) as u32)
    }
}

/// The relay state of one leg: what its peer negotiated, where it really sends from, the
/// stream we receive from it and the stream we send to it.
#[derive(Debug, Clone)]
pub struct Leg {
    remote: Option<Remote>,
    latched: Option<SocketAddr>,
    rtcp_peer: Option<SocketAddr>,
    epoch: Instant,
    receive: ReceiveStats,
    send: OutgoingStream,
    peer_report: Option<ReportBlock>,
}

impl Leg {
    pub fn new(remote: Option<Remote>, now: Instant) -> Leg {
        Leg {
            remote,
            latched: None,
            rtcp_peer: None,
            epoch: now,
            receive: ReceiveStats::default(),
            send: OutgoingStream::new(),
            peer_report: None,
        }
    }

    pub fn remote(&self) -> Option<Remote> {
        self.remote
    }

    /// The source address packets are accepted from, once the first one arrived.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// The SSRC of the stream we send to this leg's peer.
    pub fn outgoing_ssrc(&self) -> u32 {
        self.send.ssrc
    }

    /// Applies a (re-)negotiation. A new address means a new latch.
    pub fn set_remote(&mut self, remote: Remote) {
        if let Some(old) = self.remote {
            if old.addr != remote.addr || old.signalling_ip != remote.signalling_ip {
                self.latched = None;
                self.rtcp_peer = None;
            }
        }
        self.remote = Some(remote);
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.remote.is_some_and(|r| {
            r.addr.ip().to_canonical() == ip
                || r.signalling_ip.map(|s| s.to_canonical()) == Some(ip)
        })
    }

    /// Symmetric RTP: the first packet from a trusted IP fixes the source address:port.
    fn accepts(&mut self, source: SocketAddr) -> bool {
        match self.latched {
            Some(latched) => latched == source,
            None if self.trusts(source.ip()) => {
                self.latched = Some(source);
                true
            }
            None => false,
        }
    }

    fn destination(&self) -> Option<SocketAddr> {
        let addr = self.latched.or(self.remote.map(|r| r.addr))?;
        (addr.port() != 0 && !addr.ip().is_unspecified()).then_some(addr)
    }

    fn rtcp_destination(&self) -> Option<SocketAddr> {
        self.rtcp_peer.or_else(|| {
            self.latched
                .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1)))
        })
    }

    /// Arrival time in RTP timestamp units, for the jitter estimate.
    fn arrival(&self, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(self.epoch);
        (elapsed.as_micros() as u64 * CLOCK_RATE / 1_000_000) as u32
    }
}

#[derive(Clone, Copy)]
enum PayloadKind {
    Audio(Codec),
    TelephoneEvent,
}

fn classify(pt: u8, remote: &Remote) -> Option<PayloadKind> {
    if pt == remote.payload_type {
        Some(PayloadKind::Audio(remote.codec))
    } else if Some(pt) == remote.telephone_event {
        Some(PayloadKind::TelephoneEvent)
    } else {
        // Peers that offered both G.711 laws may switch between them under static types.
        match pt {
            0 => Some(PayloadKind::Audio(Codec::Pcmu)),
            8 => Some(PayloadKind::Audio(Codec::Pcma)),
            _ => None,
        }
    }
}

/// The whole per-packet job: validate, check and latch the source, record, then rewrite the
/// packet in place for the other leg (payload type, transcoding, SSRC, seq, timestamp).
/// On [`Verdict::Forward`] the caller sends `packet` unchanged in length.
pub fn forward_packet(
    from: &mut Leg,
    to: &mut Leg,
    packet: &mut [u8],
    source: SocketAddr,
    now: Instant,
    tap: Option<RecordTap<'_>>,
    counters: &mut RelayCounters,
) -> Verdict {
    counters.packets_in += 1;
    let Ok(payload) = rtp::validate(packet) else {
        return counters.drop(DropReason::Malformed);
    };
    let Some(sender) = from.remote else {
        return counters.drop(DropReason::NoRemote);
    };
    if !from.accepts(source) {
        return counters.drop(DropReason::Source);
    }
    let Some(kind) = classify(rtp::payload_type(packet), &sender) else {
        return counters.drop(DropReason::PayloadType);
    };

    let timestamp = rtp::timestamp(packet);
    let timing = match kind {
        PayloadKind::Audio(_) => Some((timestamp, from.arrival(now))),
        PayloadKind::TelephoneEvent => None,
    };
    let new_source = from
        .receive
        .on_packet(rtp::ssrc(packet), rtp::sequence(packet), timing);
    if new_source {
        to.send.resync = true;
    }
    if let (Some(tap), PayloadKind::Audio(codec)) = (tap, kind) {
        if new_source {
            tap.recorder.reanchor(tap.channel);
        }
        record(tap, codec, timestamp, &packet[payload.clone()], now);
    }

    let Some(receiver) = to.remote else {
        return counters.drop(DropReason::NoRemote);
    };
    if !receiver.direction.receives() {
        return counters.drop(DropReason::Direction);
    }
    let Some(destination) = to.destination() else {
        return counters.drop(DropReason::NoDestination);
    };
    match kind {
        PayloadKind::Audio(codec) => {
            if codec != receiver.codec {
                match codec {
                    Codec::Pcmu => g711::transcode_ulaw_to_alaw(&mut packet[payload.clone()]),
                    Codec::Pcma => g711::transcode_alaw_to_ulaw(&mut packet[payload.clone()]),
                }
                counters.transcoded += 1;
            }
            rtp::set_payload_type(packet, receiver.payload_type);
        }
        PayloadKind::TelephoneEvent => match receiver.telephone_event {
            Some(pt) => rtp::set_payload_type(packet, pt),
            None => return counters.drop(DropReason::TelephoneEvent),
        },
    }
    to.send.rewrite(packet, payload.len(), now);
    Verdict::Forward(destination)
}

/// Decodes G.711 into a stack buffer and pushes it to the recorder, in chunks.
fn record(tap: RecordTap<'_>, codec: Codec, timestamp: u32, payload: &[u8], now: Instant) {
    let mut samples = [0i16; 320];
    let decode = match codec {
        Codec::Pcmu => g711::ulaw_to_linear,
        Codec::Pcma => g711::alaw_to_linear,
    };
    for (i, chunk) in payload.chunks(samples.len()).enumerate() {
        for (sample, byte) in samples.iter_mut().zip(chunk) {
            *sample = decode(*byte);
        }
        let ts = timestamp.wrapping_add((i * samples.len()) as u32);
        tap.recorder
            .push(tap.channel, ts, &samples[..chunk.len()], now);
    }
}

// ---------------------------------------------------------------------------------------------
// The bridge task.
// ---------------------------------------------------------------------------------------------

struct LegSockets {
    id: EndpointId,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    remote: Option<Remote>,
}

impl LegSockets {
    /// Needs a runtime context (`Handle::enter`).
    fn new(id: EndpointId, parked: ParkedEndpoint) -> io::Result<LegSockets> {
        Ok(LegSockets {
            id,
            rtp: UdpSocket::from_std(parked.rtp)?,
            rtcp: UdpSocket::from_std(parked.rtcp)?,
            remote: parked.remote,
        })
    }
}

struct Recording {
    key: String,
    path: PathBuf,
    recorder: Recorder,
}

struct BridgeTask {
    id: BridgeId,
    sockets: [LegSockets; 2],
    legs: [Leg; 2],
    recording: Option<Recording>,
    pending_recording: Option<(String, PathBuf)>,
    control: mpsc::UnboundedReceiver<Control>,
    events: mpsc::UnboundedSender<MediaEvent>,
    counters: RelayCounters,
    _running: RunningGuard,
}

enum Wakeup {
    Rtp(usize, io::Result<(usize, SocketAddr)>),
    Rtcp(usize, io::Result<(usize, SocketAddr)>),
    Control(Option<Control>),
    Tick,
}

impl BridgeTask {
    fn new(
        id: BridgeId,
        sockets: [LegSockets; 2],
        recording: Option<(String, PathBuf)>,
        control: mpsc::UnboundedReceiver<Control>,
        events: mpsc::UnboundedSender<MediaEvent>,
        running: RunningGuard,
    ) -> BridgeTask {
        let now = Instant::now();
        let legs = [
            Leg::new(sockets[0].remote, now),
            Leg::new(sockets[1].remote, now),
        ];
        BridgeTask {
            id,
            sockets,
            legs,
            recording: None,
            pending_recording: recording,
            control,
            events,
            counters: RelayCounters::default(),
            _running: running,
        }
    }

    async fn run(mut self) {
        tracing::debug!(bridge = ?self.id, "bridge started");
        if let Some((key, path)) = self.pending_recording.take() {
            // Opening the file is a short blocking call; it happens once per call.
            match Recorder::create(&path) {
                Ok(recorder) => {
                    self.recording = Some(Recording {
                        key,
                        path,
                        recorder,
                    })
                }
                Err(e) => self.recording_failed(key, &path, e),
            }
        }
        // One buffer per socket, allocated once per call and reused for every packet.
        let mut rtp_buffers = Box::new([[0u8; MAX_DATAGRAM]; 2]);
        let mut rtcp_buffers = Box::new([[0u8; MAX_DATAGRAM]; 2]);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Spread RTCP of many calls over the 5 s interval.
        let mut rtcp_countdown: u64 = 1 + rand::random::<u64>() % RTCP_INTERVAL_TICKS;

        loop {
            let wakeup = {
                let [rtp0, rtp1] = &mut *rtp_buffers;
                let [rtcp0, rtcp1] = &mut *rtcp_buffers;
                let [leg0, leg1] = &self.sockets;
                tokio::select! {
                    // Control first: a close or replace takes effect before more packets flow.
                    biased;
                    c = self.control.recv() => Wakeup::Control(c),
                    _ = tick.tick() => Wakeup::Tick,
                    r = leg0.rtp.recv_from(rtp0) => Wakeup::Rtp(0, r),
                    r = leg1.rtp.recv_from(rtp1) => Wakeup::Rtp(1, r),
                    r = leg0.rtcp.recv_from(rtcp0) => Wakeup::Rtcp(0, r),
                    r = leg1.rtcp.recv_from(rtcp1) => Wakeup::Rtcp(1, r),
                }
            };
            match wakeup {
                Wakeup::Rtp(i, Ok((len, source))) => {
                    let buffer = &mut rtp_buffers[i];
                    self.relay(i, &mut buffer[..len], source);
                    // Drain what else is queued on this socket without another select round.
                    for _ in 0..DRAIN_BURST {
                        match self.sockets[i].rtp.try_recv_from(buffer) {
                            Ok((len, source)) => self.relay(i, &mut buffer[..len], source),
                            Err(_) => break,
                        }
                    }
                }
                Wakeup::Rtp(i, Err(e)) | Wakeup::Rtcp(i, Err(e)) => {
                    // E.g. ICMP port unreachable from an earlier send: not fatal for UDP.
                    tracing::trace!(bridge = ?self.id, leg = i, error = %e, "media socket error");
                }
                Wakeup::Rtcp(i, Ok((len, source))) => {
                    self.receive_rtcp(i, &rtcp_buffers[i][..len], source);
                }
                Wakeup::Control(Some(Control::SetRemote(id, remote))) => {
                    if let Some(i) = self.sockets.iter().position(|s| s.id == id) {
                        self.legs[i].set_remote(remote);
                    }
                }
                Wakeup::Control(Some(Control::Replace(side, sockets))) => {
                    self.replace(side, sockets);
                }
                Wakeup::Control(Some(Control::Close)) | Wakeup::Control(None) => break,
                Wakeup::Tick => {
                    rtcp_countdown -= 1;
                    let send_rtcp = rtcp_countdown == 0;
                    if send_rtcp {
                        rtcp_countdown = RTCP_INTERVAL_TICKS;
                    }
                    self.on_tick(send_rtcp, &mut rtcp_buffers[0]);
                }
            }
        }
        self.counters.publish();
        self.finish_recording();
        tracing::debug!(bridge = ?self.id, "bridge closed");
    }

    fn relay(&mut self, i: usize, packet: &mut [u8], source: SocketAddr) {
        let now = Instant::now();
        let [left, right] = &mut self.legs;
        let (from, to) = if i == 0 { (left, right) } else { (right, left) };
        let tap = self.recording.as_mut().map(|r| RecordTap {
            recorder: &mut r.recorder,
            channel: if i == 0 {
                Channel::Left
            } else {
                Channel::Right
            },
        });
        let verdict = forward_packet(from, to, packet, source, now, tap, &mut self.counters);
        if let Verdict::Forward(destination) = verdict {
            // Sent from the receiving leg's own socket, so its peer sees symmetric RTP.
            match self.sockets[1 - i].rtp.try_send_to(packet, destination) {
                Ok(_) => self.counters.packets_out += 1,
                Err(_) => {
                    self.counters.drop(DropReason::SendFailed);
                }
            }
        }
    }

    fn replace(&mut self, side: Side, sockets: LegSockets) {
        let i = side.index();
        let now = Instant::now();
        let mut leg = Leg::new(sockets.remote, now);
        // The stream we send towards this side keeps its SSRC and continues seamlessly.
        leg.send = self.legs[i].send.clone();
        leg.send.resync = true;
        self.legs[i] = leg;
        // The other side now hears a new source behind the same SSRC.
        self.legs[1 - i].send.resync = true;
        let old = std::mem::replace(&mut self.sockets[i], sockets);
        tracing::debug!(bridge = ?self.id, old = ?old.id, new = ?self.sockets[i].id, "leg replaced");
        drop(old);
        if let Some(recording) = self.recording.as_mut() {
            let channel = if i == 0 {
                Channel::Left
            } else {
                Channel::Right
            };
            recording.recorder.reanchor(channel);
        }
    }

    fn receive_rtcp(&mut self, i: usize, packet: &[u8], source: SocketAddr) {
        let leg = &mut self.legs[i];
        if !leg.trusts(source.ip()) {
            self.counters.drop(DropReason::Source);
            return;
        }
        match rtcp::parse(packet) {
            Ok(report) => {
                leg.rtcp_peer = Some(source);
                if let Some(sender) = report.sender {
                    leg.receive.on_sender_report(sender.ntp, Instant::now());
                }
                if report.block.is_some() {
                    leg.peer_report = report.block;
                }
            }
            Err(e) => tracing::trace!(bridge = ?self.id, error = %e, "bad RTCP"),
        }
    }

    fn on_tick(&mut self, send_rtcp: bool, scratch: &mut [u8]) {
        let now = Instant::now();
        self.counters.publish();
        if let Some(recording) = self.recording.as_mut() {
            if let Err(e) = recording.recorder.flush(now) {
                // Stop recording this call rather than fail it; the file keeps what it has.
                let recording = self.recording.take().expect("checked above");
                self.recording_failed(recording.key, &recording.path, e);
            }
        }
        if send_rtcp {
            for i in 0..2 {
                self.send_rtcp(i, now, scratch);
            }
        }
    }

    /// SR (or RR before we sent anything) with a report block about what we receive.
    fn send_rtcp(&mut self, i: usize, now: Instant, buf: &mut [u8]) {
        let leg = &mut self.legs[i];
        let Some(destination) = leg.rtcp_destination() else {
            return;
        };
        let sender = (leg.send.packets > 0).then(|| SenderInfo {
            ntp: rtcp::ntp_now(),
            rtp_timestamp: leg.send.rtp_time(now),
            packets: leg.send.packets,
            octets: leg.send.octets,
        });
        let block = leg.receive.report_block(now);
        let len = rtcp::write_report(buf, leg.send.ssrc, sender, block, CNAME);
        let _ = self.sockets[i].rtcp.try_send_to(&buf[..len], destination);
        if let Some(peer) = leg.peer_report {
            tracing::trace!(
                bridge = ?self.id,
                leg = i,
                fraction_lost = peer.fraction_lost,
                jitter = peer.jitter,
                "peer reception report"
            );
        }
    }

    fn finish_recording(&mut self) {
        let Some(recording) = self.recording.take() else {
            return;
        };
        match recording.recorder.finish() {
            Ok(info) => {
                let _ = self.events.send(MediaEvent::RecordingClosed {
                    key: recording.key,
                    path: recording.path,
                    info,
                });
            }
            Err(e) => self.recording_failed(recording.key, &recording.path, e),
        }
    }

    fn recording_failed(&self, key: String, path: &Path, error: io::Error) {
        tracing::warn!(bridge = ?self.id, path = %path.display(), %error, "recording failed");
        let _ = self.events.send(MediaEvent::RecordingFailed {
            key,
            error: format!("{}: {error}", path.display()),
        });
    }
}
