//! The per-packet work of the relay, pure and free of I/O: the bridge task calls
//! [`forward_packet`] for every datagram and the benchmark measures the same function.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::Remote;
use crate::g711;
use crate::recorder::{samples_in, Channel, Recorder};
use crate::rtcp::{ReceiveStats, ReportBlock};
use crate::rtp;
use crate::sdp::Codec;

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
    /// The SDP address is not the peer's signalling address and no packet from the peer
    /// has proved it yet.
    Unproven,
    /// A telephone-event for a peer that did not negotiate telephone-event.
    TelephoneEvent,
    /// The socket refused the datagram.
    SendFailed,
}

impl DropReason {
    const ALL: [DropReason; 9] = [
        DropReason::Malformed,
        DropReason::NoRemote,
        DropReason::Source,
        DropReason::PayloadType,
        DropReason::Direction,
        DropReason::NoDestination,
        DropReason::Unproven,
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
            DropReason::Unproven => "unproven",
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

    pub(super) fn drop(&mut self, reason: DropReason) -> Verdict {
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
pub(super) struct OutgoingStream {
    pub(super) ssrc: u32,
    pub(super) started: bool,
    pub(super) resync: bool,
    pub(super) seq_offset: u16,
    pub(super) ts_offset: u32,
    pub(super) last_seq: u16,
    pub(super) last_ts: u32,
    pub(super) last_sent: Option<Instant>,
    pub(super) packets: u32,
    pub(super) octets: u32,
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
            let advance = (samples_in(elapsed) as u32).max(1);
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
    pub(super) fn rtp_time(&self, now: Instant) -> u32 {
        let elapsed = self
            .last_sent
            .map(|at| now.saturating_duration_since(at))
            .unwrap_or_default();
        self.last_ts.wrapping_add(samples_in(elapsed) as u32)
    }
}

/// The relay state of one leg: what its peer negotiated, where it really sends from, the
/// stream we receive from it and the stream we send to it.
#[derive(Debug, Clone)]
pub struct Leg {
    pub(super) remote: Option<Remote>,
    pub(super) latched: Option<SocketAddr>,
    pub(super) rtcp_peer: Option<SocketAddr>,
    pub(super) epoch: Instant,
    pub(super) receive: ReceiveStats,
    pub(super) send: OutgoingStream,
    pub(super) peer_report: Option<ReportBlock>,
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

    pub(super) fn trusts(&self, ip: IpAddr) -> bool {
        self.remote.is_some_and(|r| r.trusts(ip))
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

    /// Where packets for this leg's peer go: the latched source, else the SDP address if
    /// it is believed ([`Remote::believed`]).
    fn destination(&self) -> Result<SocketAddr, DropReason> {
        let addr = match (self.latched, self.remote) {
            (Some(latched), _) => latched,
            (None, Some(r)) if r.believed() => r.addr,
            (None, Some(r)) if usable(r.addr) => return Err(DropReason::Unproven),
            _ => return Err(DropReason::NoDestination),
        };
        if usable(addr) {
            Ok(addr)
        } else {
            Err(DropReason::NoDestination)
        }
    }

    pub(super) fn rtcp_destination(&self) -> Option<SocketAddr> {
        self.rtcp_peer.or_else(|| {
            self.latched
                .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1)))
        })
    }

    /// Arrival time in RTP timestamp units, for the jitter estimate.
    fn arrival(&self, now: Instant) -> u32 {
        samples_in(now.saturating_duration_since(self.epoch)) as u32
    }
}

/// An address media can be sent to: not port 0, not 0.0.0.0 (RFC 2543 hold).
pub(super) fn usable(addr: SocketAddr) -> bool {
    addr.port() != 0 && !addr.ip().is_unspecified()
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
    let destination = match to.destination() {
        Ok(destination) => destination,
        Err(reason) => return counters.drop(reason),
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
    for (i, chunk) in payload.chunks(samples.len()).enumerate() {
        let samples = &mut samples[..chunk.len()];
        match codec {
            Codec::Pcmu => g711::decode_ulaw(chunk, samples),
            Codec::Pcma => g711::decode_alaw(chunk, samples),
        }
        let ts = timestamp.wrapping_add((i * 320) as u32);
        tap.recorder.push(tap.channel, ts, samples, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::Direction;
    use std::time::Duration;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn remote(at: &str, codec: Codec, te: Option<u8>) -> Remote {
        Remote {
            addr: addr(at),
            signalling_ip: None,
            codec,
            payload_type: codec.payload_type(),
            telephone_event: te,
            direction: Direction::SendRecv,
            vouched: false,
        }
    }

    fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; rtp::HEADER_LEN];
        rtp::write_header(&mut p, pt, false, seq, ts, ssrc);
        p.extend_from_slice(payload);
        p
    }

    struct Pair {
        a: Leg,
        b: Leg,
        counters: RelayCounters,
        now: Instant,
    }

    impl Pair {
        fn new(a: Remote, b: Remote) -> Pair {
            let now = Instant::now();
            Pair {
                a: Leg::new(Some(a), now),
                b: Leg::new(Some(b), now),
                counters: RelayCounters::default(),
                now,
            }
        }

        fn a_to_b(&mut self, p: &mut [u8], from: &str) -> Verdict {
            forward_packet(
                &mut self.a,
                &mut self.b,
                p,
                addr(from),
                self.now,
                None,
                &mut self.counters,
            )
        }

        fn b_to_a(&mut self, p: &mut [u8], from: &str) -> Verdict {
            forward_packet(
                &mut self.b,
                &mut self.a,
                p,
                addr(from),
                self.now,
                None,
                &mut self.counters,
            )
        }
    }

    /// An offer naming a third party's address gets nothing until the peer proves it;
    /// its own signalling address and a vouched (trunk, gateway) address are believed.
    #[test]
    fn an_unproven_address_gets_no_media_until_a_packet_proves_it() {
        let mut caller = remote("10.0.0.1:4000", Codec::Pcmu, None);
        caller.signalling_ip = Some("10.0.0.1".parse().unwrap());
        let mut victim = remote("203.0.113.7:53", Codec::Pcmu, None);
        victim.signalling_ip = Some("192.0.2.9".parse().unwrap());
        let mut pair = Pair::new(caller, victim);
        let mut p = packet(0, 1, 160, 7, &[0xFF; 160]);
        assert_eq!(
            pair.a_to_b(&mut p, "10.0.0.1:4000"),
            Verdict::Drop(DropReason::Unproven)
        );
        assert_eq!(pair.counters.dropped(DropReason::Unproven), 1);
        // The peer speaks from its signalling address: that is where media goes.
        let mut p = packet(0, 1, 160, 8, &[0xFF; 160]);
        assert_eq!(
            pair.b_to_a(&mut p, "192.0.2.9:31000"),
            Verdict::Forward(addr("10.0.0.1:4000")),
            "the caller's own signalling address is believed"
        );
        let mut p = packet(0, 2, 320, 7, &[0xFF; 160]);
        assert_eq!(
            pair.a_to_b(&mut p, "10.0.0.1:4000"),
            Verdict::Forward(addr("192.0.2.9:31000"))
        );
        // A trunk's media server is believed before it speaks.
        victim.vouched = true;
        let mut pair = Pair::new(caller, victim);
        let mut p = packet(0, 1, 160, 7, &[0xFF; 160]);
        assert_eq!(
            pair.a_to_b(&mut p, "10.0.0.1:4000"),
            Verdict::Forward(addr("203.0.113.7:53"))
        );
    }

    #[test]
    fn latches_to_the_first_trusted_source_and_guards_against_hijack() {
        let mut a = remote("10.0.0.1:4000", Codec::Pcmu, None);
        a.signalling_ip = Some("192.0.2.9".parse().unwrap());
        let mut pair = Pair::new(a, remote("10.0.0.5:6000", Codec::Pcmu, None));

        let mut p = packet(0, 1, 160, 7, &[0xFF; 160]);
        assert_eq!(
            pair.a_to_b(&mut p, "10.6.6.6:4000"),
            Verdict::Drop(DropReason::Source)
        );
        assert_eq!(pair.a.latched(), None);
        // Behind NAT: the source is the signalling IP with another port.
        let mut p = packet(0, 2, 320, 7, &[0xFF; 160]);
        assert_eq!(
            pair.a_to_b(&mut p, "192.0.2.9:31000"),
            Verdict::Forward(addr("10.0.0.5:6000"))
        );
        assert_eq!(pair.a.latched(), Some(addr("192.0.2.9:31000")));
        // Now even the signalled address is someone else.
        let mut p = packet(0, 3, 480, 7, &[0xFF; 160]);
        assert_eq!(
            pair.a_to_b(&mut p, "10.0.0.1:4000"),
            Verdict::Drop(DropReason::Source)
        );
        assert_eq!(pair.counters.dropped(DropReason::Source), 2);
        // The other direction goes to the latched address, not the signalled one.
        let mut p = packet(0, 1, 160, 8, &[0xFF; 160]);
        assert_eq!(
            pair.b_to_a(&mut p, "10.0.0.5:6000"),
            Verdict::Forward(addr("192.0.2.9:31000"))
        );
        // A re-INVITE with a new address starts a new latch.
        pair.a
            .set_remote(remote("10.0.0.2:4000", Codec::Pcmu, None));
        assert_eq!(pair.a.latched(), None);
        let mut p = packet(0, 2, 320, 8, &[0xFF; 160]);
        assert_eq!(
            pair.b_to_a(&mut p, "10.0.0.5:6000"),
            Verdict::Forward(addr("10.0.0.2:4000"))
        );
        // Same address again (hold/resume) keeps the latch.
        let mut p = packet(0, 4, 640, 7, &[0xFF; 160]);
        pair.a_to_b(&mut p, "10.0.0.2:4001");
        pair.a
            .set_remote(remote("10.0.0.2:4000", Codec::Pcmu, None));
        assert_eq!(pair.a.latched(), Some(addr("10.0.0.2:4001")));
    }

    #[test]
    fn transcodes_and_rewrites_payload_type() {
        let mut b = remote("10.0.0.5:6000", Codec::Pcma, None);
        b.payload_type = 110; // dynamic type for PCMA
        let mut pair = Pair::new(remote("10.0.0.1:4000", Codec::Pcmu, None), b);
        let payload: Vec<u8> = (0..=255).collect();
        let mut p = packet(0, 1, 160, 7, &payload);
        assert!(matches!(
            pair.a_to_b(&mut p, "10.0.0.1:4000"),
            Verdict::Forward(_)
        ));
        assert_eq!(rtp::payload_type(&p), 110);
        for (i, byte) in p[12..].iter().enumerate() {
            assert_eq!(*byte, g711::ulaw_to_alaw(i as u8));
        }
        assert_eq!(pair.counters.transcoded, 1);
        // And back: the sender's dynamic type is recognised, µ-law goes out under PT 0.
        let mut p = packet(110, 1, 160, 8, &[0xD5; 10]);
        assert!(matches!(
            pair.b_to_a(&mut p, "10.0.0.5:6000"),
            Verdict::Forward(_)
        ));
        assert_eq!(rtp::payload_type(&p), 0);
        assert_eq!(&p[12..], &[g711::alaw_to_ulaw(0xD5); 10]);
        // Same codec: no transcoding.
        let mut pair = Pair::new(
            remote("10.0.0.1:4000", Codec::Pcma, None),
            remote("10.0.0.5:6000", Codec::Pcma, None),
        );
        let mut p = packet(8, 1, 160, 7, &payload);
        pair.a_to_b(&mut p, "10.0.0.1:4000");
        assert_eq!(&p[12..], &payload[..]);
        assert_eq!(pair.counters.transcoded, 0);
    }

    #[test]
    fn telephone_events_pass_with_the_receivers_payload_type() {
        let mut pair = Pair::new(
            remote("10.0.0.1:4000", Codec::Pcmu, Some(101)),
            remote("10.0.0.5:6000", Codec::Pcma, Some(96)),
        );
        let event = [5u8, 0x0A, 0x01, 0x40];
        let mut p = packet(101, 1, 160, 7, &event);
        assert!(matches!(
            pair.a_to_b(&mut p, "10.0.0.1:4000"),
            Verdict::Forward(_)
        ));
        assert_eq!(rtp::payload_type(&p), 96);
        assert_eq!(&p[12..], &event, "events are not transcoded");

        let mut pair = Pair::new(
            remote("10.0.0.1:4000", Codec::Pcmu, Some(101)),
            remote("10.0.0.5:6000", Codec::Pcmu, None),
        );
        let mut p = packet(101, 1, 160, 7, &event);
        assert_eq!(
            pair.a_to_b(&mut p, "10.0.0.1:4000"),
            Verdict::Drop(DropReason::TelephoneEvent)
        );
    }

    #[test]
    fn drops_what_must_not_be_forwarded() {
        let mut pair = Pair::new(
            remote("10.0.0.1:4000", Codec::Pcmu, None),
            remote("10.0.0.5:6000", Codec::Pcmu, None),
        );
        let src = "10.0.0.1:4000";
        assert_eq!(
            pair.a_to_b(&mut [0x80; 8], src),
            Verdict::Drop(DropReason::Malformed)
        );
        let mut cn = packet(13, 1, 160, 7, &[0x40]);
        assert_eq!(
            pair.a_to_b(&mut cn, src),
            Verdict::Drop(DropReason::PayloadType)
        );

        let mut held = remote("10.0.0.5:6000", Codec::Pcmu, None);
        for direction in [Direction::SendOnly, Direction::Inactive] {
            held.direction = direction;
            pair.b.set_remote(held);
            let mut p = packet(0, 2, 320, 7, &[0; 160]);
            assert_eq!(
                pair.a_to_b(&mut p, src),
                Verdict::Drop(DropReason::Direction)
            );
        }
        held.direction = Direction::RecvOnly;
        pair.b.set_remote(held);
        let mut p = packet(0, 3, 480, 7, &[0; 160]);
        assert!(matches!(pair.a_to_b(&mut p, src), Verdict::Forward(_)));

        // Old-style hold address and nothing latched: nowhere to send.
        pair.b.set_remote(remote("0.0.0.0:6000", Codec::Pcmu, None));
        let mut p = packet(0, 4, 640, 7, &[0; 160]);
        assert_eq!(
            pair.a_to_b(&mut p, src),
            Verdict::Drop(DropReason::NoDestination)
        );

        let now = Instant::now();
        let mut unknown = Leg::new(None, now);
        let mut p = packet(0, 5, 800, 7, &[0; 160]);
        let mut counters = RelayCounters::default();
        let v = forward_packet(
            &mut pair.a,
            &mut unknown,
            &mut p,
            addr(src),
            now,
            None,
            &mut counters,
        );
        assert_eq!(v, Verdict::Drop(DropReason::NoRemote));
        let v = forward_packet(
            &mut unknown,
            &mut pair.a,
            &mut p,
            addr(src),
            now,
            None,
            &mut counters,
        );
        assert_eq!(v, Verdict::Drop(DropReason::NoRemote));
        assert_eq!(counters.packets_in, 2);
        assert_eq!(counters.dropped(DropReason::NoRemote), 2);
    }

    #[test]
    fn outgoing_stream_is_continuous_across_a_source_change() {
        let mut pair = Pair::new(
            remote("10.0.0.1:4000", Codec::Pcmu, None),
            remote("10.0.0.5:6000", Codec::Pcmu, None),
        );
        let src = "10.0.0.1:4000";
        let ssrc_out = pair.b.outgoing_ssrc();
        let mut first = packet(0, 100, 16000, 7, &[0; 160]);
        pair.a_to_b(&mut first, src);
        let mut second = packet(0, 101, 16160, 7, &[0; 160]);
        pair.a_to_b(&mut second, src);
        assert_eq!(rtp::ssrc(&second), ssrc_out);
        let (seq, ts) = (rtp::sequence(&second), rtp::timestamp(&second));
        assert!(!rtp::marker(&second));

        // The phone restarts its stream (new SSRC, unrelated seq/ts) 20 ms later.
        pair.now += Duration::from_millis(20);
        let mut third = packet(0, 9, 777, 8, &[0; 160]);
        pair.a_to_b(&mut third, src);
        assert_eq!(rtp::ssrc(&third), ssrc_out);
        assert_eq!(rtp::sequence(&third), seq.wrapping_add(1));
        assert_eq!(rtp::timestamp(&third), ts.wrapping_add(160));
        assert!(rtp::marker(&third));
        let mut fourth = packet(0, 10, 777 + 160, 8, &[0; 160]);
        pair.a_to_b(&mut fourth, src);
        assert_eq!(rtp::sequence(&fourth), seq.wrapping_add(2));
        assert_eq!(rtp::timestamp(&fourth), ts.wrapping_add(320));
        assert!(!rtp::marker(&fourth));
        // A late packet of the new stream does not move the continuation point back.
        let mut late = packet(0, 8, 777 - 160, 8, &[0; 160]);
        pair.a_to_b(&mut late, src);
        assert_eq!(rtp::sequence(&late), seq);
    }
}
