//! RTCP (RFC 3550 §6) for one leg: receive statistics for our reports, and reading and writing
//! SR/RR/SDES packets. Every leg is terminated here rather than passed through, because after
//! SSRC rewriting and transcoding the peers' own reports would describe streams that no longer
//! exist on the other side.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;

const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u32 = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("RTCP packet shorter than its header")]
    TooShort,
    #[error("RTCP version {0}, expected 2")]
    Version(u8),
    #[error("RTCP length field runs past the datagram")]
    Truncated,
    #[error("compound RTCP must start with SR or RR, got {0}")]
    NotAReport(u8),
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// 24-bit signed on the wire.
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    pub jitter: u32,
    pub last_sr: u32,
    pub delay_since_last_sr: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

/// What we take from a received compound RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub sender_ssrc: u32,
    pub sender: Option<SenderInfo>,
    /// The first report block, if any (a leg carries one stream).
    pub block: Option<ReportBlock>,
}

/// Statistics about the stream received from one peer (RFC 3550 A.1, A.3, A.8).
#[derive(Debug, Clone, Default)]
pub struct ReceiveStats {
    ssrc: Option<u32>,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: Option<u32>,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    transit: Option<i32>,
    /// Interarrival jitter in timestamp units, scaled by 16 (A.8).
    jitter: u32,
    /// Middle 32 bits of the last SR's NTP time and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

impl ReceiveStats {
    /// Counts one packet. `timing` is (RTP timestamp, arrival in timestamp units) for audio
    /// packets; telephone events carry event-start timestamps and would skew the jitter.
    /// Returns true when the packet starts a new source (first packet or SSRC change).
    pub fn on_packet(&mut self, ssrc: u32, seq: u16, timing: Option<(u32, u32)>) -> bool {
        let new_source = self.ssrc != Some(ssrc);
        if new_source {
            *self = ReceiveStats {
                ssrc: Some(ssrc),
                last_sr: None,
                ..Default::default()
            };
            self.restart_sequence(seq);
        } else {
            let delta = seq.wrapping_sub(self.max_seq);
            if delta < MAX_DROPOUT {
                if seq < self.max_seq {
                    self.cycles = self.cycles.wrapping_add(SEQ_MOD);
                }
                self.max_seq = seq;
            } else if delta <= (SEQ_MOD - MAX_MISORDER as u32) as u16 {
                // A big jump: believe it only when the next packet follows it (A.1).
                if self.bad_seq == Some(seq as u32) {
                    self.restart_sequence(seq);
                } else {
                    self.bad_seq = Some((seq as u32 + 1) & (SEQ_MOD - 1));
                    return false;
                }
            }
            // else: duplicate or reordered packet, counted below.
        }
        self.received = self.received.wrapping_add(1);

        if let Some((timestamp, arrival)) = timing {
            let transit = arrival.wrapping_sub(timestamp) as i32;
            if let Some(previous) = self.transit {
                let d = transit.wrapping_sub(previous).unsigned_abs();
                self.jitter = self
                    .jitter
                    .wrapping_add(d)
                    .wrapping_sub(self.jitter.wrapping_add(8) >> 4);
            }
            self.transit = Some(transit);
        }
        new_source
    }

    fn restart_sequence(&mut self, seq: u16) {
        self.base_seq = seq as u32;
        self.max_seq = seq;
        self.bad_seq = None;
        self.cycles = 0;
        self.received = 0;
        self.expected_prior = 0;
        self.received_prior = 0;
    }

    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    pub fn received(&self) -> u32 {
        self.received
    }

    /// Remembers an SR from the peer for LSR/DLSR in our next report.
    pub fn on_sender_report(&mut self, ntp: u64, now: Instant) {
        self.last_sr = Some(((ntp >> 16) as u32, now));
    }

    /// The report block for our next SR/RR; advances the "since last report" interval.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        let extended_max = self.cycles + self.max_seq as u32;
        let expected = extended_max.wrapping_sub(self.base_seq).wrapping_add(1);
        let lost = (expected as i64 - self.received as i64).clamp(-0x80_0000, 0x7F_FFFF) as i32;
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => {
                let delay = now.saturating_duration_since(at);
                (lsr, (delay.as_micros() * 65536 / 1_000_000) as u32)
            }
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: lost,
            extended_highest_seq: extended_max,
            jitter: self.jitter >> 4,
            last_sr,
            delay_since_last_sr,
        })
    }
}

/// The current wall-clock time as a 64-bit NTP timestamp.
pub fn ntp_now() -> u64 {
    let since_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_unix.as_secs() + 2_208_988_800;
    let fraction = ((since_unix.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// Writes a compound SR (or RR when we sent nothing) + SDES CNAME into `buf`; returns its
/// length. `buf` must hold at least 128 bytes plus the CNAME.
pub fn write_report(
    buf: &mut [u8],
    ssrc: u32,
    sender: Option<SenderInfo>,
    block: Option<ReportBlock>,
    cname: &str,
) -> usize {
    let count = block.is_some() as u8;
    let mut len = 8;
    buf[0] = 0x80 | count;
    buf[1] = if sender.is_some() { PT_SR } else { PT_RR };
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    if let Some(s) = sender {
        buf[8..16].copy_from_slice(&s.ntp.to_be_bytes());
        buf[16..20].copy_from_slice(&s.rtp_timestamp.to_be_bytes());
        buf[20..24].copy_from_slice(&s.packets.to_be_bytes());
        buf[24..28].copy_from_slice(&s.octets.to_be_bytes());
        len = 28;
    }
    if let Some(b) = block {
        let r = &mut buf[len..len + 24];
        r[0..4].copy_from_slice(&b.ssrc.to_be_bytes());
        let lost = (b.cumulative_lost as u32) & 0x00FF_FFFF;
        r[4..8].copy_from_slice(&(((b.fraction_lost as u32) << 24) | lost).to_be_bytes());
        r[8..12].copy_from_slice(&b.extended_highest_seq.to_be_bytes());
        r[12..16].copy_from_slice(&b.jitter.to_be_bytes());
        r[16..20].copy_from_slice(&b.last_sr.to_be_bytes());
        r[20..24].copy_from_slice(&b.delay_since_last_sr.to_be_bytes());
        len += 24;
    }
    buf[2..4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());

    // SDES with one chunk: our SSRC and CNAME, then the null item, padded to 32 bits.
    let start = len;
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    buf[start] = 0x81;
    buf[start + 1] = PT_SDES;
    buf[start + 4..start + 8].copy_from_slice(&ssrc.to_be_bytes());
    buf[start + 8] = 1; // CNAME
    buf[start + 9] = cname.len() as u8;
    buf[start + 10..start + 10 + cname.len()].copy_from_slice(cname);
    let mut end = start + 10 + cname.len();
    let padded = (end + 1).div_ceil(4) * 4;
    buf[end..padded].fill(0);
    end = padded;
    buf[start + 2..start + 4].copy_from_slice(&(((end - start) / 4 - 1) as u16).to_be_bytes());
    end
}

/// Reads the SR/RR at the head of a compound RTCP packet; later parts are checked for framing.
pub fn parse(packet: &[u8]) -> Result<Report, RtcpError> {
    let mut offset = 0;
    let mut report: Option<Report> = None;
    while offset < packet.len() {
        let part = &packet[offset..];
        if part.len() < 4 {
            return Err(RtcpError::TooShort);
        }
        let version = part[0] >> 6;
        if version != 2 {
            return Err(RtcpError::Version(version));
        }
        let size = (u16::from_be_bytes([part[2], part[3]]) as usize + 1) * 4;
        if size > part.len() {
            return Err(RtcpError::Truncated);
        }
        let part = &part[..size];
        let pt = part[1];
        if offset == 0 {
            if pt != PT_SR && pt != PT_RR {
                return Err(RtcpError::NotAReport(pt));
            }
            let blocks_at = if pt == PT_SR { 28 } else { 8 };
            if part.len() < blocks_at {
                return Err(RtcpError::Truncated);
            }
            let sender = (pt == PT_SR).then(|| SenderInfo {
                ntp: u64::from_be_bytes(part[8..16].try_into().unwrap_or_default()),
                rtp_timestamp: be32(&part[16..20]),
                packets: be32(&part[20..24]),
                octets: be32(&part[24..28]),
            });
            let count = (part[0] & 0x1F) as usize;
            let block = (count > 0 && part.len() >= blocks_at + 24).then(|| {
                let r = &part[blocks_at..blocks_at + 24];
                let lost_word = be32(&r[4..8]);
                // Sign-extend the 24-bit cumulative loss.
                let cumulative_lost = ((lost_word << 8) as i32) >> 8;
                ReportBlock {
                    ssrc: be32(&r[0..4]),
                    fraction_lost: (lost_word >> 24) as u8,
                    cumulative_lost,
                    extended_highest_seq: be32(&r[8..12]),
                    jitter: be32(&r[12..16]),
                    last_sr: be32(&r[16..20]),
                    delay_since_last_sr: be32(&r[20..24]),
                }
            });
            report = Some(Report {
                sender_ssrc: be32(&part[4..8]),
                sender,
                block,
            });
        }
        offset += size;
    }
    report.ok_or(RtcpError::TooShort)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_loss_and_wraparound() {
        let mut stats = ReceiveStats::default();
        assert!(stats.on_packet(7, 65530, None));
        for seq in 65531..=65535u16 {
            assert!(!stats.on_packet(7, seq, None));
        }
        // 0 and 1 lost, then 2..=9 arrive: wrapped once.
        for seq in 2..10u16 {
            stats.on_packet(7, seq, None);
        }
        let now = Instant::now();
        let block = stats.report_block(now).unwrap();
        assert_eq!(block.ssrc, 7);
        assert_eq!(block.extended_highest_seq, 65536 + 9);
        assert_eq!(block.cumulative_lost, 2);
        assert_eq!(block.fraction_lost, (2 * 256 / 16) as u8);
        // Next interval: no loss.
        stats.on_packet(7, 10, None);
        let block = stats.report_block(now).unwrap();
        assert_eq!(block.fraction_lost, 0);
        assert_eq!(block.cumulative_lost, 2);
    }

    #[test]
    fn new_ssrc_restarts_and_big_jump_needs_confirmation() {
        let mut stats = ReceiveStats::default();
        stats.on_packet(1, 100, None);
        assert!(stats.on_packet(2, 5000, None));
        assert_eq!(stats.received(), 1);
        // Jump of 20000: ignored once, accepted when the next follows.
        assert!(!stats.on_packet(2, 25000, None));
        assert_eq!(stats.received(), 1);
        stats.on_packet(2, 25001, None);
        assert_eq!(stats.received(), 1);
        let block = stats.report_block(Instant::now()).unwrap();
        assert_eq!(block.extended_highest_seq, 25001);
        assert_eq!(block.cumulative_lost, 0);
    }

    #[test]
    fn jitter_follows_a8() {
        let mut stats = ReceiveStats::default();
        // Packets every 160 samples, arrivals alternate 0 and 80 samples late.
        for k in 0..200u32 {
            let late = if k % 2 == 0 { 0 } else { 80 };
            stats.on_packet(9, k as u16, Some((k * 160, 1000 + k * 160 + late)));
        }
        let jitter = stats.report_block(Instant::now()).unwrap().jitter;
        // |D| = 80 every packet: J converges to 80 (minus the integer estimator's bias).
        assert!((75..=80).contains(&jitter), "jitter {jitter}");
    }

    #[test]
    fn report_round_trip_with_lsr() {
        let mut stats = ReceiveStats::default();
        stats.on_packet(0xAABB, 1, None);
        let t = Instant::now();
        stats.on_sender_report(0x1122_3344_5566_7788, t);
        let block = stats.report_block(t + Duration::from_millis(500)).unwrap();
        assert_eq!(block.last_sr, 0x3344_5566);
        assert_eq!(block.delay_since_last_sr, 32768);

        let mut buf = [0u8; 256];
        let sender = SenderInfo {
            ntp: ntp_now(),
            rtp_timestamp: 1234,
            packets: 50,
            octets: 8000,
        };
        let n = write_report(&mut buf, 0xCAFE, Some(sender), Some(block), "kolokol");
        assert_eq!(n % 4, 0);
        let report = parse(&buf[..n]).unwrap();
        assert_eq!(report.sender_ssrc, 0xCAFE);
        assert_eq!(report.sender, Some(sender));
        assert_eq!(report.block, Some(block));

        let negative = ReportBlock {
            cumulative_lost: -3,
            ..block
        };
        let n = write_report(&mut buf, 1, None, Some(negative), "x");
        assert_eq!(buf[1], PT_RR);
        let report = parse(&buf[..n]).unwrap();
        assert_eq!(report.sender, None);
        assert_eq!(report.block.unwrap().cumulative_lost, -3);
    }

    #[test]
    fn rejects_bad_rtcp() {
        assert_eq!(parse(&[0x80, 200]), Err(RtcpError::TooShort));
        assert_eq!(parse(&[0x40, 200, 0, 0]), Err(RtcpError::Version(1)));
        assert_eq!(
            parse(&[0x80, 200, 0, 9, 0, 0, 0, 0]),
            Err(RtcpError::Truncated)
        );
        assert_eq!(parse(&[0x81, 202, 0, 0]), Err(RtcpError::NotAReport(202)));
    }
}
