//! Relay workers: one OS thread per core, each owning a share of the bridges and all their
//! sockets in one edge-triggered `epoll` set (mio).
//!
//! Why not a tokio task per bridge: every packet then costs a reactor wake-up, a task
//! schedule and a poll on top of the two system calls, about 21 µs per packet on this
//! machine. A worker takes every ready socket from one `epoll_wait`, empties each with one
//! `recvmmsg` and sends with `sendto`, so a packet costs little more than the kernel's own
//! receive and send.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::batch::{RecvBatch, BATCH, MAX_DATAGRAM};
use super::bridge::{Bridge, LegSockets};
use super::forward::{DropReason, RelayCounters};
use super::{BridgeId, EndpointId, Remote, Side};

/// How often a worker looks for bridges whose once-a-second tick is due. Bridges start at
/// different moments, so their recording flushes spread over the second.
const SCAN: Duration = Duration::from_millis(50);
/// How often the worker adds its packet counters to the global metrics.
const PUBLISH: Duration = Duration::from_secs(1);
/// Batches taken from one socket per readiness event before moving on to other sockets;
/// a socket still holding packets is visited again after them.
const BATCHES_PER_EVENT: usize = 4;
const WAKER: Token = Token(usize::MAX);
/// Sockets per bridge: RTP left, RTP right, RTCP left, RTCP right.
const SOCKETS: usize = 4;

pub(super) enum Command {
    Add(Box<Bridge>),
    SetRemote(BridgeId, EndpointId, Remote),
    Replace(BridgeId, Side, LegSockets),
    Close(BridgeId),
}

/// The worker threads and the way to reach them.
pub(super) struct Workers {
    workers: Vec<WorkerHandle>,
    next: AtomicUsize,
}

struct WorkerHandle {
    commands: mpsc::Sender<Command>,
    waker: Arc<Waker>,
}

impl Workers {
    pub(super) fn start(count: usize) -> io::Result<Workers> {
        let mut workers = Vec::with_capacity(count);
        for n in 0..count.max(1) {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (commands, receiver) = mpsc::channel();
            let worker = Worker {
                poll,
                commands: receiver,
                slots: Vec::new(),
                free: Vec::new(),
                by_id: HashMap::new(),
                counters: RelayCounters::default(),
                batch: RecvBatch::new(),
                pending: Vec::new(),
                scratch: Box::new([0; MAX_DATAGRAM]),
            };
            std::thread::Builder::new()
                .name(format!("kolokol-relay-{n}"))
                .spawn(move || worker.run())?;
            workers.push(WorkerHandle { commands, waker });
        }
        Ok(Workers {
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// Picks the worker for a new bridge (round-robin: calls are alike).
    pub(super) fn assign(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len()
    }

    /// False if the worker is gone.
    pub(super) fn send(&self, worker: usize, command: Command) -> bool {
        let handle = &self.workers[worker];
        if handle.commands.send(command).is_err() {
            return false;
        }
        handle.waker.wake().is_ok()
    }
}

impl Drop for Workers {
    /// Dropping the senders and waking each worker lets it close its bridges and exit.
    fn drop(&mut self) {
        let workers = std::mem::take(&mut self.workers);
        for handle in workers {
            let waker = handle.waker.clone();
            drop(handle);
            let _ = waker.wake();
        }
    }
}

struct Worker {
    poll: Poll,
    commands: mpsc::Receiver<Command>,
    /// Bridges by slot; a socket's token is `slot * SOCKETS + socket`.
    slots: Vec<Option<Box<Bridge>>>,
    free: Vec<usize>,
    by_id: HashMap<BridgeId, usize>,
    counters: RelayCounters,
    batch: RecvBatch,
    /// RTP sockets that still held packets after their share of batches.
    pending: Vec<Token>,
    /// RTCP in and out.
    scratch: Box<[u8; MAX_DATAGRAM]>,
}

impl Worker {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_scan = Instant::now() + SCAN;
        let mut next_publish = Instant::now() + PUBLISH;
        loop {
            let now = Instant::now();
            let timeout = if self.pending.is_empty() {
                next_scan.saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "relay worker poll failed");
                    break;
                }
            }
            // Commands first: a remote or hold change sent before a packet arrived applies to
            // that packet, and a closed bridge relays no more.
            if events.iter().any(|e| e.token() == WAKER) && !self.apply_commands() {
                break;
            }
            for token in std::mem::take(&mut self.pending) {
                self.readable(token);
            }
            for event in events.iter() {
                if event.token() != WAKER {
                    self.readable(event.token());
                }
            }
            let now = Instant::now();
            if now >= next_scan {
                next_scan = now + SCAN;
                for bridge in self.slots.iter_mut().flatten() {
                    if bridge.next_tick <= now {
                        bridge.tick(now, &mut self.scratch[..]);
                    }
                }
            }
            if now >= next_publish {
                next_publish = now + PUBLISH;
                self.counters.publish();
            }
        }
        self.counters.publish();
        for slot in 0..self.slots.len() {
            self.remove(slot);
        }
    }

    fn readable(&mut self, token: Token) {
        let slot = token.0 / SOCKETS;
        let socket = token.0 % SOCKETS;
        // A token of a bridge closed earlier in this round finds an empty slot (or, reused,
        // a socket with nothing queued): harmless.
        let Some(bridge) = self.slots.get_mut(slot).and_then(|b| b.as_deref_mut()) else {
            return;
        };
        let leg = socket % 2;
        if socket < 2 {
            for _ in 0..BATCHES_PER_EVENT {
                let n = match self.batch.receive(&bridge.sockets[leg].rtp) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    // E.g. ICMP port unreachable from an earlier send: not fatal for UDP,
                    // and reading it cleared it; packets may still be queued behind it.
                    Err(_) => continue,
                };
                let now = Instant::now();
                for i in 0..n {
                    let (packet, source) = self.batch.packet(i);
                    match source {
                        Some(source) => bridge.relay(leg, packet, source, now, &mut self.counters),
                        None => {
                            self.counters.packets_in += 1;
                            self.counters.drop(DropReason::Source);
                        }
                    }
                }
                if n < BATCH {
                    return;
                }
            }
            self.pending.push(token);
        } else {
            // RTCP: a report every few seconds, no batching needed.
            for _ in 0..BATCH {
                match bridge.sockets[leg].rtcp.recv_from(&mut self.scratch[..]) {
                    Ok((len, source)) => {
                        bridge.receive_rtcp(leg, &self.scratch[..len], source, &mut self.counters)
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(_) => continue,
                }
            }
        }
    }

    /// Applies queued commands; false once `Media` is gone.
    fn apply_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Add(bridge)) => self.add(bridge),
                Ok(Command::SetRemote(id, endpoint, remote)) => {
                    if let Some(bridge) = self.bridge(id) {
                        bridge.set_remote(endpoint, remote);
                    }
                }
                Ok(Command::Replace(id, side, sockets)) => self.replace(id, side, sockets),
                Ok(Command::Close(id)) => {
                    if let Some(slot) = self.by_id.get(&id).copied() {
                        self.remove(slot);
                    }
                }
                Err(mpsc::TryRecvError::Empty) => return true,
                Err(mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn bridge(&mut self, id: BridgeId) -> Option<&mut Bridge> {
        let slot = *self.by_id.get(&id)?;
        self.slots[slot].as_deref_mut()
    }

    fn add(&mut self, mut bridge: Box<Bridge>) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        bridge.start();
        let registry = self.poll.registry();
        for (leg, sockets) in bridge.sockets.iter_mut().enumerate() {
            register(registry, sockets, slot, leg);
        }
        self.by_id.insert(bridge.id, slot);
        self.slots[slot] = Some(bridge);
    }

    fn replace(&mut self, id: BridgeId, side: Side, mut sockets: LegSockets) {
        let Some(slot) = self.by_id.get(&id).copied() else {
            return;
        };
        let registry = self.poll.registry();
        let Some(bridge) = self.slots[slot].as_deref_mut() else {
            return;
        };
        register(registry, &mut sockets, slot, side.index());
        let mut old = bridge.replace(side, sockets);
        deregister(registry, &mut old);
    }

    fn remove(&mut self, slot: usize) {
        let Some(mut bridge) = self.slots[slot].take() else {
            return;
        };
        let registry = self.poll.registry();
        for sockets in bridge.sockets.iter_mut() {
            deregister(registry, sockets);
        }
        self.by_id.remove(&bridge.id);
        self.free.push(slot);
        bridge.close();
    }
}

fn register(registry: &Registry, sockets: &mut LegSockets, slot: usize, leg: usize) {
    let base = slot * SOCKETS;
    // Registering a fresh socket only fails when the kernel is out of memory; the leg then
    // stays silent and the call goes on.
    if let Err(e) = registry
        .register(&mut sockets.rtp, Token(base + leg), Interest::READABLE)
        .and_then(|_| {
            registry.register(&mut sockets.rtcp, Token(base + 2 + leg), Interest::READABLE)
        })
    {
        tracing::error!(error = %e, "cannot watch a media socket");
    }
}

/// Explicit, because a player may still hold a duplicate of the descriptor, and epoll
/// watches the open file, not the descriptor.
fn deregister(registry: &Registry, sockets: &mut LegSockets) {
    let _ = registry.deregister(&mut sockets.rtp);
    let _ = registry.deregister(&mut sockets.rtcp);
}
