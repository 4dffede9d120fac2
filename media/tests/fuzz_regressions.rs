//! Inputs that crashed the media crate's parsers of untrusted packets, kept so they stay
//! fixed (the fuzz targets are in `fuzz/`: `rtp_validate`, `rtp_receive_stats`,
//! `rtcp_parse`; `fuzz/run.sh` runs them).

use kolokol_media::rtcp::ReceiveStats;
use std::time::Instant;

/// `rtp_receive_stats`: the interarrival jitter (RFC 3550 A.8, `J += |D| - (J + 8) / 16`)
/// is kept in a u32 that a peer's timestamps move at will. Transit times of 0, 2^31, 0 and
/// 394,264,572 left it at u32::MAX - 3, and the next packet's `J + 8` overflowed: a panic
/// where overflow is checked (debug builds, tests), a wrapped value in release. It wraps
/// now as in the RFC's C, in every build.
#[test]
fn jitter_near_u32_max_does_not_overflow() {
    let mut stats = ReceiveStats::default();
    for (seq, arrival) in [0u32, 0x8000_0000, 0, 394_264_572, 0, 160]
        .into_iter()
        .enumerate()
    {
        stats.on_packet(7, seq as u16, Some((0, arrival)));
    }
    let block = stats.report_block(Instant::now()).expect("a source");
    assert_eq!(block.ssrc, 7);
    assert_eq!(block.extended_highest_seq, 5);
}

/// Found beside the jitter while writing `rtp_receive_stats` (too long an input for the
/// fuzzer to reach): the sequence-number cycle count (RFC 3550 A.1, a u32 in steps of
/// 2^16) overflowed after 65,536 wraps, some 1.5 million packets a peer can send in one
/// call. It wraps as in the RFC's C.
#[test]
fn sequence_cycles_wrap_after_65536_rounds() {
    let mut stats = ReceiveStats::default();
    let mut seq = 0u16;
    for _ in 0..(65_536u32 * 23 + 1) {
        stats.on_packet(9, seq, None);
        seq = seq.wrapping_add(2_900);
    }
    let block = stats.report_block(Instant::now()).expect("a source");
    assert_eq!(block.ssrc, 9);
}
