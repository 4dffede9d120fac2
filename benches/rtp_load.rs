//! RTP load generator and meter for `benches/media-load.sh`: plays both phones of every call.
//!
//! sipp places the calls and logs kolokol's media port of each leg (`-trace_logs`, a line
//! per leg starting with the port). For every port this opens a UDP socket on 127.0.0.1 and
//! sends it a 20 ms G.711 A-law packet every 20 ms (the streams are spread evenly over each
//! 20 ms), so kolokol relays each stream to the socket playing the other leg of the call.
//! The payload carries the send time; both legs live in this one process, so every received
//! packet gives the one-way time through kolokol, kernel included.
//!
//! After all STREAMS ports are known and a warm-up, a counting window starts: every packet
//! sent in the window must come back in it (plus a short drain). Lost = sent − received.
//!
//! `rtp_load STREAMS WARMUP_S WINDOW_S LOG...`
//! (`cargo run --release -p kolokol-media --example rtp_load -- ...`)

use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

/// The send schedule's resolution: streams are split into 20 groups, one group per ms.
const SLOTS: u32 = 20;
const PAYLOAD: usize = 160;
const DRAIN: Duration = Duration::from_millis(500);
/// Latency histogram: 10 µs buckets up to 1 s.
const BUCKET_US: u64 = 10;
const BUCKETS: usize = 100_000;

struct Stream {
    socket: UdpSocket,
    to: SocketAddr,
    seq: u16,
    ssrc: u32,
}

struct Log {
    path: String,
    offset: u64,
    partial: String,
}

struct Meter {
    sent: u64,
    received: u64,
    late: u64,
    histogram: Vec<u64>,
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 4 {
        eprintln!("usage: rtp_load STREAMS WARMUP_S WINDOW_S LOG...");
        std::process::exit(2);
    }
    let wanted: usize = args[0].parse().expect("STREAMS");
    let warmup = Duration::from_secs(args[1].parse().expect("WARMUP_S"));
    let window = Duration::from_secs(args[2].parse().expect("WINDOW_S"));
    let mut logs: Vec<Log> = args[3..]
        .iter()
        .map(|p| Log {
            path: p.clone(),
            offset: 0,
            partial: String::new(),
        })
        .collect();

    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(4096);
    let mut streams: Vec<Stream> = Vec::new();
    let mut known = HashSet::new();
    let epoch = Instant::now();
    let mut meter = Meter {
        sent: 0,
        received: 0,
        late: 0,
        histogram: vec![0; BUCKETS],
    };
    let mut buf = [0u8; 2048];
    let mut packet = [0u8; 12 + PAYLOAD];
    // Counting window, fixed once every stream is known.
    let mut window_at: Option<(Instant, Instant)> = None;
    let deadline = epoch + Duration::from_secs(300);
    let mut next_scan = epoch;
    let mut tick: u64 = 0;

    loop {
        let now = Instant::now();
        if now > deadline {
            eprintln!(
                "rtp_load: gave up with {} of {wanted} streams",
                streams.len()
            );
            std::process::exit(1);
        }
        if window_at.is_none() && now >= next_scan {
            next_scan = now + Duration::from_millis(100);
            for log in &mut logs {
                for port in new_ports(log)? {
                    if known.insert(port) {
                        streams.push(open_stream(&poll, streams.len(), port)?);
                    }
                }
            }
            if streams.len() >= wanted {
                let start = now + warmup;
                window_at = Some((start, start + window));
            }
        }
        if let Some((_, end)) = window_at {
            if now >= end + DRAIN {
                break;
            }
        }
        // Send the groups due by now.
        let due = (now - epoch).as_micros() as u64 / 1000;
        while tick <= due {
            let sending =
                window_at.is_none_or(|(_, end)| epoch + Duration::from_millis(tick) < end);
            if sending {
                let slot = (tick % SLOTS as u64) as usize;
                for stream in streams.iter_mut().skip(slot).step_by(SLOTS as usize) {
                    let sent_at = Instant::now();
                    let sent_ns = (sent_at - epoch).as_nanos() as u64;
                    write_packet(&mut packet, stream, sent_ns);
                    // Counted by the same send time the receiver reads from the packet.
                    let counting =
                        window_at.is_some_and(|(start, end)| sent_at >= start && sent_at < end);
                    if stream.socket.send_to(&packet, stream.to).is_ok() && counting {
                        meter.sent += 1;
                    }
                }
            }
            tick += 1;
        }
        let next_tick = epoch + Duration::from_millis(tick);
        poll.poll(
            &mut events,
            Some(next_tick.saturating_duration_since(Instant::now())),
        )?;
        for event in events.iter() {
            let stream = &streams[event.token().0];
            loop {
                match stream.socket.recv_from(&mut buf) {
                    Ok((len, _)) if len == packet.len() => {
                        let received = (Instant::now() - epoch).as_nanos() as u64;
                        let sent_ns = u64::from_le_bytes(buf[12..20].try_into().unwrap());
                        let sent_at = epoch + Duration::from_nanos(sent_ns);
                        let Some((start, end)) = window_at else {
                            continue;
                        };
                        if sent_at < start || sent_at >= end {
                            continue;
                        }
                        meter.received += 1;
                        let us = received.saturating_sub(sent_ns) / 1000;
                        let bucket = (us / BUCKET_US) as usize;
                        if bucket < BUCKETS {
                            meter.histogram[bucket] += 1;
                        } else {
                            meter.late += 1;
                        }
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {}
                }
            }
        }
    }

    let lost = meter.sent.saturating_sub(meter.received);
    println!(
        "rtp: streams={} window={}s sent={} received={} lost={} ({:.4}%)",
        streams.len(),
        window.as_secs(),
        meter.sent,
        meter.received,
        lost,
        lost as f64 * 100.0 / meter.sent.max(1) as f64
    );
    let quantile = |q: f64| {
        let target = (meter.received as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, n) in meter.histogram.iter().enumerate() {
            seen += n;
            if seen >= target.max(1) {
                return i as u64 * BUCKET_US;
            }
        }
        BUCKETS as u64 * BUCKET_US
    };
    println!(
        "one-way through kolokol: p50={} us p99={} us p99.9={} us over 1 s={}",
        quantile(0.5),
        quantile(0.99),
        quantile(0.999),
        meter.late
    );
    Ok(())
}

fn open_stream(poll: &Poll, index: usize, port: u16) -> io::Result<Stream> {
    let mut socket = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    poll.registry()
        .register(&mut socket, Token(index), Interest::READABLE)?;
    Ok(Stream {
        socket,
        to: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        seq: 0,
        ssrc: 0x1000_0000 + index as u32,
    })
}

/// RTP header (PCMA), then the send time and zeros as "audio".
fn write_packet(packet: &mut [u8; 12 + PAYLOAD], stream: &mut Stream, sent_ns: u64) {
    stream.seq = stream.seq.wrapping_add(1);
    let ts = (stream.seq as u32).wrapping_mul(PAYLOAD as u32);
    packet[0] = 0x80;
    packet[1] = 8;
    packet[2..4].copy_from_slice(&stream.seq.to_be_bytes());
    packet[4..8].copy_from_slice(&ts.to_be_bytes());
    packet[8..12].copy_from_slice(&stream.ssrc.to_be_bytes());
    packet[12..20].copy_from_slice(&sent_ns.to_le_bytes());
}

/// Ports in lines appended to a sipp log since the last look.
fn new_ports(log: &mut Log) -> io::Result<Vec<u16>> {
    let Ok(mut file) = std::fs::File::open(&log.path) else {
        return Ok(Vec::new());
    };
    file.seek(SeekFrom::Start(log.offset))?;
    let mut text = String::new();
    let n = file.read_to_string(&mut text)?;
    log.offset += n as u64;
    log.partial.push_str(&text);
    let complete = log.partial.rfind('\n').map_or(0, |i| i + 1);
    let lines: String = log.partial.drain(..complete).collect();
    Ok(lines
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<u16>().ok())
        .collect())
}
