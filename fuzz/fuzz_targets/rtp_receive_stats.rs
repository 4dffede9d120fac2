//! `kolokol_media::rtcp::ReceiveStats` fed a stream of packets whose SSRC, sequence
//! number and timing come from the network (any values, any order), with SRs and report
//! intervals in between.
//!
//! Invariants: no panic (no arithmetic overflow) whatever the peer sends; a report block
//! exists once a packet was counted and names the current source.
#![no_main]

use arbitrary::Arbitrary;
use kolokol_media::rtcp::ReceiveStats;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

#[derive(Debug, Arbitrary)]
enum Event {
    Packet {
        ssrc: u8,
        seq: u16,
        timing: Option<(u32, u32)>,
    },
    /// A run of `count` packets from `seq` on, `step` apart, timestamps `ts_step` apart.
    Run {
        seq: u16,
        step: u8,
        count: u16,
        ts_step: u32,
        late: u32,
    },
    SenderReport {
        ntp: u64,
        after_ms: u16,
    },
    Report {
        after_ms: u32,
    },
}

fuzz_target!(|events: Vec<Event>| {
    let mut stats = ReceiveStats::default();
    let start = Instant::now();
    let mut now = start;
    let mut ssrc = None;
    for event in events {
        match event {
            Event::Packet {
                ssrc: s,
                seq,
                timing,
            } => {
                stats.on_packet(u32::from(s), seq, timing);
                ssrc = Some(u32::from(s));
            }
            Event::Run {
                seq,
                step,
                count,
                ts_step,
                late,
            } => {
                let s = ssrc.unwrap_or(7);
                let mut ts = 0u32;
                for k in 0..count.min(4096) {
                    let seq = seq.wrapping_add(u16::from(step).wrapping_mul(k));
                    let arrival = ts.wrapping_add(if k % 2 == 0 { 0 } else { late });
                    stats.on_packet(s, seq, Some((ts, arrival)));
                    ts = ts.wrapping_add(ts_step);
                }
                if count > 0 {
                    ssrc = Some(s);
                }
            }
            Event::SenderReport { ntp, after_ms } => {
                now += Duration::from_millis(u64::from(after_ms));
                stats.on_sender_report(ntp, now);
            }
            Event::Report { after_ms } => {
                now += Duration::from_millis(u64::from(after_ms));
                let block = stats.report_block(now);
                assert_eq!(block.is_some(), ssrc.is_some());
                if let Some(b) = block {
                    assert_eq!(Some(b.ssrc), ssrc);
                    assert!((-0x80_0000..=0x7F_FFFF).contains(&b.cumulative_lost));
                }
            }
        }
    }
    let _ = stats.report_block(now);
});
