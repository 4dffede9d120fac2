//! One bridge: both legs' sockets and relay state. A relay worker owns it and calls in when
//! a socket is readable ([`Bridge::relay`], [`Bridge::receive_rtcp`]) and once a second
//! ([`Bridge::tick`]: recording flush, RTCP reports).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use tokio::sync::mpsc;

use super::forward::{forward_packet, DropReason, Leg, RecordTap, RelayCounters, Verdict};
use super::{BridgeId, EndpointId, MediaEvent, ParkedEndpoint, Remote, RunningGuard, Side};
use crate::recorder::{Channel, Recorder};
use crate::rtcp::{self, SenderInfo};

/// Seconds between our RTCP reports on each leg.
const RTCP_INTERVAL_TICKS: u64 = 5;
const TICK: Duration = Duration::from_secs(1);
const CNAME: &str = "kolokol";

pub(super) struct LegSockets {
    pub(super) id: EndpointId,
    pub(super) rtp: UdpSocket,
    pub(super) rtcp: UdpSocket,
    remote: Option<Remote>,
}

impl LegSockets {
    pub(super) fn new(id: EndpointId, parked: ParkedEndpoint) -> LegSockets {
        LegSockets {
            id,
            rtp: UdpSocket::from_std(parked.rtp),
            rtcp: UdpSocket::from_std(parked.rtcp),
            remote: parked.remote,
        }
    }
}

struct Recording {
    key: String,
    path: PathBuf,
    recorder: Recorder,
}

pub(super) struct Bridge {
    pub(super) id: BridgeId,
    pub(super) sockets: [LegSockets; 2],
    legs: [Leg; 2],
    recording: Option<Recording>,
    pending_recording: Option<(String, PathBuf)>,
    events: mpsc::UnboundedSender<MediaEvent>,
    /// A leg whose peer just reported for the first time gets our first report at the next
    /// tick instead of waiting a full interval.
    rtcp_soon: [bool; 2],
    rtcp_countdown: u64,
    /// When [`Bridge::tick`] is due next.
    pub(super) next_tick: Instant,
    _running: RunningGuard,
}

impl Bridge {
    pub(super) fn new(
        id: BridgeId,
        sockets: [LegSockets; 2],
        recording: Option<(String, PathBuf)>,
        events: mpsc::UnboundedSender<MediaEvent>,
        running: RunningGuard,
    ) -> Bridge {
        let now = Instant::now();
        let legs = [
            Leg::new(sockets[0].remote, now),
            Leg::new(sockets[1].remote, now),
        ];
        Bridge {
            id,
            sockets,
            legs,
            recording: None,
            pending_recording: recording,
            events,
            rtcp_soon: [false; 2],
            // Spread RTCP of many calls over the 5 s interval.
            rtcp_countdown: 1 + rand::random::<u64>() % RTCP_INTERVAL_TICKS,
            next_tick: now + TICK,
            _running: running,
        }
    }

    /// Opens the recording file (a short blocking call, once per call, on the worker).
    pub(super) fn start(&mut self) {
        tracing::debug!(bridge = ?self.id, "bridge started");
        let Some((key, path)) = self.pending_recording.take() else {
            return;
        };
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

    pub(super) fn set_remote(&mut self, id: EndpointId, remote: Remote) {
        if let Some(i) = self.sockets.iter().position(|s| s.id == id) {
            self.legs[i].set_remote(remote);
        }
    }

    /// One RTP packet received on leg `i`'s socket.
    pub(super) fn relay(
        &mut self,
        i: usize,
        packet: &mut [u8],
        source: SocketAddr,
        now: Instant,
        counters: &mut RelayCounters,
    ) {
        let [left, right] = &mut self.legs;
        let (from, to) = if i == 0 { (left, right) } else { (right, left) };
        let tap = self.recording.as_mut().map(|r| RecordTap {
            recorder: &mut r.recorder,
            channel: channel(i),
        });
        let verdict = forward_packet(from, to, packet, source, now, tap, counters);
        if let Verdict::Forward(destination) = verdict {
            // Sent from the receiving leg's own socket, so its peer sees symmetric RTP.
            match self.sockets[1 - i].rtp.send_to(packet, destination) {
                Ok(_) => counters.packets_out += 1,
                Err(_) => {
                    counters.drop(DropReason::SendFailed);
                }
            }
        }
    }

    /// Puts new sockets on one side; returns the old ones for the worker to deregister.
    pub(super) fn replace(&mut self, side: Side, sockets: LegSockets) -> LegSockets {
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
        if let Some(recording) = self.recording.as_mut() {
            recording.recorder.reanchor(channel(i));
        }
        old
    }

    pub(super) fn receive_rtcp(
        &mut self,
        i: usize,
        packet: &[u8],
        source: SocketAddr,
        counters: &mut RelayCounters,
    ) {
        let leg = &mut self.legs[i];
        if !leg.trusts(source.ip()) {
            counters.drop(DropReason::Source);
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

    /// Once a second: flush the recording, and send RTCP when due.
    pub(super) fn tick(&mut self, now: Instant, scratch: &mut [u8]) {
        self.next_tick += TICK;
        if self.next_tick <= now {
            // The worker fell behind (suspended VM): do not replay the missed ticks.
            self.next_tick = now + TICK;
        }
        self.rtcp_countdown -= 1;
        let rtcp_due = self.rtcp_countdown == 0;
        if rtcp_due {
            self.rtcp_countdown = RTCP_INTERVAL_TICKS;
        }
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

    /// Ends the bridge: the recording is finished and reported, the sockets close on drop.
    pub(super) fn close(mut self) {
        self.finish_recording();
        tracing::debug!(bridge = ?self.id, "bridge closed");
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
        let _ = self.sockets[i].rtcp.send_to(&buf[..len], destination);
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

fn channel(i: usize) -> Channel {
    if i == 0 {
        Channel::Left
    } else {
        Channel::Right
    }
}
