//! The bridge task: owns both legs' sockets, relays RTP, terminates RTCP, flushes the
//! recording and applies control messages, all from one `select!` loop.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::forward::{forward_packet, DropReason, Leg, RecordTap, RelayCounters, Verdict};
use super::{
    BridgeId, Control, EndpointId, MediaEvent, ParkedEndpoint, Remote, RunningGuard, Side,
};
use crate::recorder::{Channel, Recorder};
use crate::rtcp::{self, SenderInfo};

/// Largest datagram we relay; anything bigger is not G.711 RTP.
const MAX_DATAGRAM: usize = 2048;
/// Packets handled from one socket before the task looks at control messages and timers again.
const DRAIN_BURST: usize = 32;
/// Seconds between our RTCP reports on each leg.
const RTCP_INTERVAL_TICKS: u64 = 5;
const CNAME: &str = "kolokol";

pub(super) struct LegSockets {
    id: EndpointId,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    remote: Option<Remote>,
}

impl LegSockets {
    /// Needs a runtime context (`Handle::enter`).
    pub(super) fn new(id: EndpointId, parked: ParkedEndpoint) -> io::Result<LegSockets> {
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

pub(super) struct BridgeTask {
    id: BridgeId,
    sockets: [LegSockets; 2],
    legs: [Leg; 2],
    recording: Option<Recording>,
    pending_recording: Option<(String, PathBuf)>,
    control: mpsc::UnboundedReceiver<Control>,
    events: mpsc::UnboundedSender<MediaEvent>,
    counters: RelayCounters,
    /// A leg whose peer just reported for the first time gets our first report at the next
    /// tick instead of waiting a full interval.
    rtcp_soon: [bool; 2],
    _running: RunningGuard,
}

enum Wakeup {
    Rtp(usize, io::Result<(usize, SocketAddr)>),
    Rtcp(usize, io::Result<(usize, SocketAddr)>),
    Control(Option<Control>),
    Tick,
}

impl BridgeTask {
    pub(super) fn new(
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
            rtcp_soon: [false; 2],
            _running: running,
        }
    }

    pub(super) async fn run(mut self) {
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
                    // In this order: a close or replace takes effect before more packets flow,
                    // and packets are handled in a fixed order. The left leg cannot starve the
                    // right one unless packets arrive faster than we drop them (~30 ns each),
                    // which the kernel cannot deliver on one socket.
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
                    let rtcp_due = rtcp_countdown == 0;
                    if rtcp_due {
                        rtcp_countdown = RTCP_INTERVAL_TICKS;
                    }
                    self.on_tick(rtcp_due, &mut rtcp_buffers[0]);
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
                if leg.rtcp_peer.is_none() {
                    self.rtcp_soon[i] = true;
                }
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

    fn on_tick(&mut self, rtcp_due: bool, scratch: &mut [u8]) {
        let now = Instant::now();
        self.counters.publish();
        if let Some(recording) = self.recording.as_mut() {
            if let Err(e) = recording.recorder.flush(now) {
                // Stop recording this call rather than fail it; the file keeps what it has.
                let recording = self.recording.take().expect("checked above");
                self.recording_failed(recording.key, &recording.path, e);
            }
        }
        for i in 0..2 {
            if rtcp_due || self.rtcp_soon[i] {
                self.rtcp_soon[i] = false;
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
