//! Criterion: the relay's per-packet work without sockets — exactly the function the bridge
//! task runs for every datagram (`relay::forward_packet`): RTP validation, source/latch check,
//! receive statistics, G.711 decode into the recorder, PCMU->PCMA transcoding and the header
//! rewrite, for one 20 ms (160-byte) packet.
//!
//! `cargo bench -p kolokol-media --bench media_relay -- --warm-up-time 1 --measurement-time 3`
//!
//! The recorded case advances simulated time by 20 ms per packet and flushes the recorder
//! once per simulated second, as the task does; it starts a new file every simulated minute
//! so the benchmark does not fill the disk (the create/finalize cost is included, amortised
//! over 3,000 packets).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kolokol_media::g711;
use kolokol_media::relay::{forward_packet, Leg, RecordTap, RelayCounters, Verdict};
use kolokol_media::{rtp, Channel, Codec, Direction, Recorder, Remote};

const PACKETS_PER_SECOND: u64 = 50;
const PACKETS_PER_FILE: u64 = 60 * PACKETS_PER_SECOND;

fn remote(addr: &str, codec: Codec) -> Remote {
    Remote {
        addr: addr.parse().unwrap(),
        signalling_ip: None,
        codec,
        payload_type: codec.payload_type(),
        telephone_event: Some(101),
        direction: Direction::SendRecv,
        vouched: false,
    }
}

fn template() -> Vec<u8> {
    let mut packet = vec![0u8; rtp::HEADER_LEN];
    rtp::write_header(&mut packet, 0, false, 0, 0, 0x1234_5678);
    packet.extend((0..160u32).map(|i| (i * 37 % 256) as u8));
    packet
}

fn temp_wav() -> PathBuf {
    std::env::temp_dir()
        .join(format!("kolokol-bench-{}", std::process::id()))
        .join("relay.wav")
}

/// One direction of a bridge, fed one packet at a time.
struct Stream {
    from: Leg,
    to: Leg,
    source: SocketAddr,
    template: Vec<u8>,
    packet: Vec<u8>,
    counters: RelayCounters,
    seq: u16,
    ts: u32,
    now: Instant,
}

impl Stream {
    fn new(to_codec: Codec) -> Stream {
        let now = Instant::now();
        let template = template();
        Stream {
            from: Leg::new(Some(remote("192.0.2.10:4000", Codec::Pcmu)), now),
            to: Leg::new(Some(remote("192.0.2.20:6000", to_codec)), now),
            source: "192.0.2.10:4000".parse().unwrap(),
            packet: template.clone(),
            template,
            counters: RelayCounters::default(),
            seq: 0,
            ts: 0,
            now,
        }
    }

    /// What the socket read would do: a fresh packet in the reused buffer.
    fn next_packet(&mut self) {
        self.packet.copy_from_slice(&self.template);
        rtp::set_sequence(&mut self.packet, self.seq);
        rtp::set_timestamp(&mut self.packet, self.ts);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        self.now += Duration::from_millis(20);
    }

    fn forward(&mut self, tap: Option<RecordTap<'_>>) -> Verdict {
        forward_packet(
            &mut self.from,
            &mut self.to,
            &mut self.packet,
            self.source,
            self.now,
            tap,
            &mut self.counters,
        )
    }
}

fn relay(c: &mut Criterion) {
    let mut group = c.benchmark_group("relay packet");
    group.throughput(Throughput::Elements(1));

    group.bench_function("pcmu->pcma + recording", |b| {
        let path = temp_wav();
        let mut stream = Stream::new(Codec::Pcma);
        let mut recorder = Some(Recorder::create_at(&path, stream.now).unwrap());
        let (mut since_flush, mut since_file) = (0u64, 0u64);
        b.iter(|| {
            stream.next_packet();
            let rec = recorder.as_mut().unwrap();
            let verdict = stream.forward(Some(RecordTap {
                recorder: rec,
                channel: Channel::Left,
            }));
            since_flush += 1;
            since_file += 1;
            if since_flush == PACKETS_PER_SECOND {
                since_flush = 0;
                rec.flush(stream.now).unwrap();
            }
            if since_file == PACKETS_PER_FILE {
                since_file = 0;
                recorder.take().unwrap().finish().unwrap();
                recorder = Some(Recorder::create_at(&path, stream.now).unwrap());
            }
            black_box(verdict)
        });
        if let Some(rec) = recorder {
            rec.finish().unwrap();
        }
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
        assert_eq!(stream.counters.packets_in, stream.counters.transcoded);
    });

    group.bench_function("pcmu->pcma, no recording", |b| {
        let mut stream = Stream::new(Codec::Pcma);
        b.iter(|| {
            stream.next_packet();
            black_box(stream.forward(None))
        });
    });

    group.bench_function("pcmu->pcmu, no recording", |b| {
        let mut stream = Stream::new(Codec::Pcmu);
        b.iter(|| {
            stream.next_packet();
            black_box(stream.forward(None))
        });
    });
    group.finish();

    let mut payload = [0u8; 160];
    c.bench_function("g711 ulaw->alaw 160 bytes in place", |b| {
        b.iter(|| g711::transcode_ulaw_to_alaw(black_box(&mut payload)))
    });
}

criterion_group!(benches, relay);
criterion_main!(benches);
