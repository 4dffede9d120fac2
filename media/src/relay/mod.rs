//! The RTP relay: relay worker threads (one per core) own the bridges — both legs' sockets
//! each — and move packets between them, rewriting headers in place, transcoding PCMU<->PCMA
//! with tables and feeding the recorder.
//!
//! The public [`Media`] handle is synchronous and callable from any thread: control calls touch
//! a small registry under a mutex and send commands to the bridge's worker. The packet path
//! takes no lock and allocates nothing; its per-packet work is the pure [`forward_packet`],
//! which the benchmark measures directly.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};

use crate::recorder::RecordingInfo;
use crate::sdp::{Codec, Direction};
use crate::sound::Sound;

mod batch;
mod bridge;
mod forward;
mod player;
mod worker;

use bridge::{Bridge, LegSockets};
pub use forward::{forward_packet, DropReason, Leg, RecordTap, RelayCounters, Verdict};
use worker::{Command, Workers};

#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Address the RTP/RTCP sockets bind to.
    pub bind: IpAddr,
    /// Address written into SDP (the public one behind a 1:1 NAT).
    pub advertise: IpAddr,
    pub port_min: u16,
    pub port_max: u16,
    /// Root directory of call recordings. Directories are created when a recording starts
    /// (each bridge gets a full path), not here.
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
    /// The SDP address is believed before any packet proves it: a configured trunk's
    /// (providers' media servers often sit apart from their signalling), or the WebRTC
    /// gateway's own alias socket.
    pub vouched: bool,
}

impl Remote {
    /// Whether a packet from `ip` may come from this peer (and so fix the latch).
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.addr.ip().to_canonical() == ip
            || self.signalling_ip.map(|s| s.to_canonical()) == Some(ip)
    }

    /// Whether media may go to the SDP address before a packet from the peer proved it.
    /// An offer can point anywhere: sending there unproven would turn kolokol into a
    /// stream cannon aimed at a third party (or at a local service), so only the peer's
    /// own signalling address or a vouched one is believed.
    pub(crate) fn believed(&self) -> bool {
        self.vouched
            || self
                .signalling_ip
                .is_none_or(|s| s.to_canonical() == self.addr.ip().to_canonical())
    }
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
    /// Open bridges (recordings not yet finished); shutdown waits for zero.
    running: watch::Sender<usize>,
    workers: Workers,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    next_port: u16,
    /// Open endpoints not (yet) in a bridge.
    parked: HashMap<EndpointId, ParkedEndpoint>,
    bridges: HashMap<BridgeId, BridgeControl>,
    bridged: HashMap<EndpointId, BridgeId>,
    /// Sounds playing to parked endpoints (dropping one stops it).
    players: HashMap<EndpointId, player::Player>,
    shutting_down: bool,
}

struct ParkedEndpoint {
    rtp: StdUdpSocket,
    rtcp: StdUdpSocket,
    remote: Option<Remote>,
}

struct BridgeControl {
    worker: usize,
    endpoints: [EndpointId; 2],
}

impl Media {
    /// Must be called inside a tokio runtime: players (music on hold) run on it. Starts one
    /// relay worker thread per core.
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

        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = Workers::start(cores)?;
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
                workers,
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
            if let Some(p) = registry.players.get(&id) {
                p.remote.send_replace(Some(remote));
            }
        } else if let Some(bridge) = registry.bridged.get(&id) {
            if let Some(control) = registry.bridges.get(bridge) {
                let command = Command::SetRemote(*bridge, id, remote);
                self.inner.workers.send(control.worker, command);
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
            registry.players.remove(&id);
            if !registry.parked.contains_key(&id) {
                return Err(if registry.bridged.contains_key(&id) {
                    MediaError::EndpointBridged(id)
                } else {
                    MediaError::UnknownEndpoint(id)
                });
            }
        }
        let sockets = [left, right].map(|id| {
            let parked = registry.parked.remove(&id).expect("checked above");
            LegSockets::new(id, parked)
        });
        let id = BridgeId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let worker = self.inner.workers.assign();
        registry.bridges.insert(
            id,
            BridgeControl {
                worker,
                endpoints: [left, right],
            },
        );
        registry.bridged.insert(left, id);
        registry.bridged.insert(right, id);
        metrics::gauge!("kolokol_media_bridges").set(registry.bridges.len() as f64);
        drop(registry);

        self.inner.running.send_modify(|n| *n += 1);
        let bridge = Bridge::new(
            id,
            sockets,
            recording,
            self.inner.events.clone(),
            RunningGuard(self.inner.running.clone()),
        );
        if !self
            .inner
            .workers
            .send(worker, Command::Add(Box::new(bridge)))
        {
            return Err(MediaError::ShuttingDown);
        }
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
        let sockets = LegSockets::new(endpoint, parked);
        let control = registry.bridges.get_mut(&bridge).expect("checked above");
        let old = std::mem::replace(&mut control.endpoints[side.index()], endpoint);
        let command = Command::Replace(bridge, side, sockets);
        if !self.inner.workers.send(control.worker, command) {
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
            self.inner
                .workers
                .send(control.worker, Command::Close(bridge));
        }
    }

    /// Closes an endpoint that was never bridged (failed call). Bridged endpoints are closed
    /// with their bridge; for them this does nothing.
    pub fn close_endpoint(&self, id: EndpointId) {
        let mut registry = self.registry();
        registry.players.remove(&id);
        registry.parked.remove(&id);
    }

    /// Plays `sound` in a loop to the peer of a parked endpoint (music on hold for a
    /// waiting caller) until the endpoint is bridged or closed. Playing again replaces the
    /// sound.
    pub fn play(&self, id: EndpointId, sound: Arc<Sound>) -> Result<(), MediaError> {
        self.start_player(id, None, sound)
    }

    /// Plays `announcement` once, then `music` in a loop, replacing what played before.
    pub fn announce(
        &self,
        id: EndpointId,
        announcement: Arc<Sound>,
        music: Arc<Sound>,
    ) -> Result<(), MediaError> {
        self.start_player(id, Some(announcement), music)
    }

    fn start_player(
        &self,
        id: EndpointId,
        intro: Option<Arc<Sound>>,
        music: Arc<Sound>,
    ) -> Result<(), MediaError> {
        let mut registry = self.registry();
        let parked = registry
            .parked
            .get(&id)
            .ok_or(MediaError::UnknownEndpoint(id))?;
        let socket = {
            let _runtime = self.inner.handle.enter();
            tokio::net::UdpSocket::from_std(parked.rtp.try_clone()?)?
        };
        let (remote, remote_rx) = watch::channel(parked.remote);
        let (stop, stop_rx) = oneshot::channel();
        registry.players.insert(
            id,
            player::Player {
                _stop: stop,
                remote,
            },
        );
        self.inner.handle.spawn(player::run(
            socket,
            player::Program { intro, music },
            remote_rx,
            stop_rx,
        ));
        Ok(())
    }

    /// Closes every bridge and endpoint and resolves once every recording is finished.
    /// New endpoints and bridges are refused from the moment this is called.
    pub fn shutdown(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut registry = self.registry();
        registry.shutting_down = true;
        registry.players.clear();
        registry.parked.clear();
        registry.bridged.clear();
        for (id, control) in registry.bridges.drain() {
            self.inner.workers.send(control.worker, Command::Close(id));
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

/// Decrements the running-bridge count when a bridge is dropped, however it ends.
struct RunningGuard(watch::Sender<usize>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}
