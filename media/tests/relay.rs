//! The relay on loopback: plain UDP sockets play the phones.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use kolokol_media::g711;
use kolokol_media::rtp;
use kolokol_media::{
    Codec, Direction, Endpoint, Media, MediaConfig, MediaError, MediaEvent, Remote, Side,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(10);

/// Each test gets its own port range so tests can run in parallel.
fn port_range(pairs: u16) -> (u16, u16) {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 41000 + (std::process::id() % 50) as u16 * 200;
    let start = base + NEXT.fetch_add(40, Ordering::Relaxed);
    (start, start + pairs * 2 - 1)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kolokol-media-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn media(name: &str, pairs: u16) -> (Media, mpsc::UnboundedReceiver<MediaEvent>, PathBuf) {
    let (port_min, port_max) = port_range(pairs);
    let root = temp_dir(name);
    let (tx, rx) = mpsc::unbounded_channel();
    let media = Media::new(
        MediaConfig {
            bind: LOCALHOST,
            advertise: LOCALHOST,
            port_min,
            port_max,
            recordings: root.clone(),
        },
        tx,
    )
    .unwrap();
    (media, rx, root)
}

struct Phone {
    socket: UdpSocket,
    ssrc: u32,
    seq: u16,
    ts: u32,
}

impl Phone {
    async fn new(ip: IpAddr) -> Phone {
        Phone {
            socket: UdpSocket::bind(SocketAddr::new(ip, 0)).await.unwrap(),
            ssrc: rand_ssrc(),
            seq: 1000,
            ts: 50_000,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    fn remote(&self, codec: Codec, te: Option<u8>) -> Remote {
        Remote {
            addr: self.addr(),
            signalling_ip: None,
            codec,
            payload_type: codec.payload_type(),
            telephone_event: te,
            direction: Direction::SendRecv,
            vouched: false,
        }
    }

    /// Sends one 20 ms packet with the given payload type and payload.
    async fn send(&mut self, to: &Endpoint, pt: u8, payload: &[u8]) {
        let mut packet = vec![0u8; 12];
        rtp::write_header(&mut packet, pt, false, self.seq, self.ts, self.ssrc);
        packet.extend_from_slice(payload);
        self.socket
            .send_to(&packet, SocketAddr::new(to.address, to.port))
            .await
            .unwrap();
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
    }

    async fn recv(&self) -> Vec<u8> {
        let mut buf = [0u8; 2048];
        let (n, _) = timeout(WAIT, self.socket.recv_from(&mut buf))
            .await
            .expect("timed out waiting for a relayed packet")
            .unwrap();
        let packet = buf[..n].to_vec();
        rtp::validate(&packet).expect("relay sent valid RTP");
        packet
    }
}

fn rand_ssrc() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0x1000);
    NEXT.fetch_add(0x1111, Ordering::Relaxed)
}

async fn recording_closed(
    events: &mut mpsc::UnboundedReceiver<MediaEvent>,
) -> (String, PathBuf, kolokol_media::RecordingInfo) {
    match timeout(WAIT, events.recv()).await.expect("no media event") {
        Some(MediaEvent::RecordingClosed { key, path, info }) => (key, path, info),
        other => panic!("expected RecordingClosed, got {other:?}"),
    }
}

fn read_wav(path: &Path) -> Vec<[i16; 2]> {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    assert_eq!(spec.channels, 2);
    assert_eq!(spec.sample_rate, 8000);
    assert_eq!(spec.bits_per_sample, 16);
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    samples.chunks(2).map(|c| [c[0], c[1]]).collect()
}

#[tokio::test]
async fn relays_transcodes_latches_and_records() {
    let (media, mut events, root) = media("main", 4);
    let mut caller = Phone::new(LOCALHOST).await;
    let mut callee = Phone::new(LOCALHOST).await;
    let a = media.open_endpoint().unwrap();
    let b = media.open_endpoint().unwrap();
    assert_eq!(a.address, LOCALHOST);
    assert_eq!(a.port % 2, 0);
    assert_ne!(a.port, b.port);

    // The caller signalled a port it does not send from (NAT): latching must find it.
    let mut caller_remote = caller.remote(Codec::Pcmu, Some(101));
    caller_remote.addr.set_port(9);
    media.set_remote(a.id, caller_remote);
    media.set_remote(b.id, callee.remote(Codec::Pcma, Some(96)));
    let path = root.join("2026/call-1.wav");
    let bridge = media
        .bridge(a.id, b.id, Some(("call-1".into(), path.clone())))
        .unwrap();
    assert_eq!(media.active_bridges(), 1);

    // Caller -> callee: PCMU in, PCMA out, table-exact.
    let ulaw: Vec<u8> = (0..160).map(|i| (i * 7 % 256) as u8).collect();
    let mut callee_ssrc = None;
    let mut last_seq = None;
    for _ in 0..25 {
        caller.send(&a, 0, &ulaw).await;
        let p = callee.recv().await;
        assert_eq!(rtp::payload_type(&p), 8);
        let payload = &p[12..];
        assert_eq!(payload.len(), 160);
        for (got, sent) in payload.iter().zip(&ulaw) {
            assert_eq!(*got, g711::ulaw_to_alaw(*sent));
        }
        let ssrc = *callee_ssrc.get_or_insert(rtp::ssrc(&p));
        assert_eq!(rtp::ssrc(&p), ssrc, "SSRC constant");
        assert_ne!(ssrc, caller.ssrc, "SSRC rewritten");
        if let Some(prev) = last_seq {
            assert_eq!(rtp::sequence(&p), u16::wrapping_add(prev, 1));
        }
        last_seq = Some(rtp::sequence(&p));
    }

    // Callee -> caller: goes to the latched address, PCMA -> PCMU.
    let alaw = [0xD5u8 ^ 0x30; 160];
    for _ in 0..25 {
        callee.send(&b, 8, &alaw).await;
        let p = caller.recv().await;
        assert_eq!(rtp::payload_type(&p), 0);
        assert!(p[12..].iter().all(|b| *b == g711::alaw_to_ulaw(alaw[0])));
    }

    // Telephone-event: PT rewritten to the callee's, payload untouched.
    let event = [1u8, 0x8A, 0x03, 0x20];
    caller.send(&a, 101, &event).await;
    let p = callee.recv().await;
    assert_eq!(rtp::payload_type(&p), 96);
    assert_eq!(&p[12..], &event);
    assert_eq!(rtp::ssrc(&p), callee_ssrc.unwrap());

    // Hijack: another IP, and the caller's IP from another port after latching. Neither may
    // reach the callee; the next packet the callee sees is the legitimate one.
    let hijacker = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let spoof_port = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut forged = vec![0u8; 12];
    rtp::write_header(&mut forged, 0, false, 1, 1, 0xBAD);
    forged.extend_from_slice(&[0x55; 160]);
    hijacker
        .send_to(&forged, (LOCALHOST, a.port))
        .await
        .unwrap();
    spoof_port
        .send_to(&forged, (LOCALHOST, a.port))
        .await
        .unwrap();
    // An unnegotiated payload type (comfort noise) is dropped too.
    caller.send(&a, 13, &[0x40]).await;
    let marker = [0xFFu8; 160];
    caller.send(&a, 0, &marker).await;
    let p = callee.recv().await;
    assert_eq!(&p[12..], &[g711::ulaw_to_alaw(0xFF); 160][..]);
    assert_eq!(rtp::ssrc(&p), callee_ssrc.unwrap());

    media.close_bridge(bridge);
    assert_eq!(media.active_bridges(), 0);
    let (key, closed_path, info) = recording_closed(&mut events).await;
    assert_eq!(key, "call-1");
    assert_eq!(closed_path, path);
    assert_eq!(info.channels, 2);
    // 26 packets (0.52 s) each way, anchored where they arrived: at least that long, and not
    // much longer unless the machine stalled for seconds.
    assert!(info.duration_ms >= 520, "duration {}", info.duration_ms);
    assert!(info.duration_ms < 5000, "duration {}", info.duration_ms);

    let frames = read_wav(&path);
    assert_eq!(frames.len() as u64 / 8, info.duration_ms);
    let left: Vec<i16> = ulaw.iter().map(|u| g711::ulaw_to_linear(*u)).collect();
    // The caller's audio is on the left, in order, packet after packet.
    let start = frames
        .iter()
        .position(|f| f[0] != 0)
        .expect("left channel has audio");
    for k in 0..25 {
        for (i, sample) in left.iter().enumerate() {
            assert_eq!(frames[start + k * 160 + i][0], *sample);
        }
    }
    let right_value = g711::alaw_to_linear(alaw[0]);
    let right_count = frames.iter().filter(|f| f[1] == right_value).count();
    assert_eq!(right_count, 25 * 160, "callee's audio on the right");
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn replace_keeps_streams_continuous_and_recording_in_one_file() {
    let (media, mut events, root) = media("replace", 4);
    let mut caller = Phone::new(LOCALHOST).await;
    let mut agent1 = Phone::new(LOCALHOST).await;
    let mut agent2 = Phone::new(LOCALHOST).await;
    let a = media.open_endpoint().unwrap();
    let b = media.open_endpoint().unwrap();
    media.set_remote(a.id, caller.remote(Codec::Pcmu, None));
    media.set_remote(b.id, agent1.remote(Codec::Pcmu, None));
    let path = root.join("call-2.wav");
    let bridge = media
        .bridge(a.id, b.id, Some(("call-2".into(), path.clone())))
        .unwrap();

    caller.send(&a, 0, &[0x10; 160]).await;
    let to_agent1 = agent1.recv().await;
    agent1.send(&b, 0, &[0x20; 160]).await;
    let to_caller1 = caller.recv().await;

    // Transfer to agent2, who talks PCMA. set_remote before replace, from a non-tokio thread.
    let c = media.open_endpoint().unwrap();
    let remote2 = agent2.remote(Codec::Pcma, None);
    let m = media.clone();
    std::thread::spawn(move || m.set_remote(c.id, remote2))
        .join()
        .unwrap();
    assert!(matches!(
        media.replace(bridge, Side::Right, a.id),
        Err(MediaError::EndpointBridged(_))
    ));
    media.replace(bridge, Side::Right, c.id).unwrap();

    caller.send(&a, 0, &[0x10; 160]).await;
    let to_agent2 = agent2.recv().await;
    assert_eq!(rtp::payload_type(&to_agent2), 8);
    assert_eq!(&to_agent2[12..], &[g711::ulaw_to_alaw(0x10); 160][..]);
    // The right-hand outgoing stream keeps its SSRC and sequence.
    assert_eq!(rtp::ssrc(&to_agent2), rtp::ssrc(&to_agent1));
    assert_eq!(
        rtp::sequence(&to_agent2),
        rtp::sequence(&to_agent1).wrapping_add(1)
    );

    // The caller hears agent2 as a continuation of the same stream.
    agent2.send(&c, 8, &[0x33; 160]).await;
    let to_caller2 = caller.recv().await;
    assert_eq!(rtp::payload_type(&to_caller2), 0);
    assert_eq!(rtp::ssrc(&to_caller2), rtp::ssrc(&to_caller1));
    assert_eq!(
        rtp::sequence(&to_caller2),
        rtp::sequence(&to_caller1).wrapping_add(1)
    );
    assert!(
        rtp::marker(&to_caller2),
        "new source is marked as a new talkspurt"
    );
    assert!(
        rtp::timestamp(&to_caller2)
            .wrapping_sub(rtp::timestamp(&to_caller1))
            .wrapping_sub(1)
            < 8000 * 10
    );

    // The old endpoint was closed: its port can be bound again.
    std::net::UdpSocket::bind((LOCALHOST, b.port)).expect("old endpoint's port released");

    media.close_bridge(bridge);
    let (key, _, info) = recording_closed(&mut events).await;
    assert_eq!(key, "call-2");
    assert_eq!(info.channels, 2);
    let frames = read_wav(&path);
    let agent1_value = g711::ulaw_to_linear(0x20);
    let agent2_value = g711::alaw_to_linear(0x33);
    assert_eq!(frames.iter().filter(|f| f[1] == agent1_value).count(), 160);
    assert_eq!(frames.iter().filter(|f| f[1] == agent2_value).count(), 160);
    let first1 = frames.iter().position(|f| f[1] == agent1_value).unwrap();
    let first2 = frames.iter().position(|f| f[1] == agent2_value).unwrap();
    assert!(
        first2 >= first1 + 160,
        "agent2 follows agent1 in the same file"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn hold_stops_forwarding_to_the_held_party() {
    let (media, _events, _root) = media("hold", 4);
    let mut caller = Phone::new(LOCALHOST).await;
    let mut callee = Phone::new(LOCALHOST).await;
    let a = media.open_endpoint().unwrap();
    let b = media.open_endpoint().unwrap();
    // Remotes set after bridging, like a late answer.
    let bridge = media.bridge(a.id, b.id, None).unwrap();
    media.set_remote(a.id, caller.remote(Codec::Pcmu, None));
    let mut callee_remote = callee.remote(Codec::Pcmu, None);
    media.set_remote(b.id, callee_remote);

    caller.send(&a, 0, &[1; 160]).await;
    assert_eq!(&callee.recv().await[12..], &[1; 160][..]);

    // The callee puts the call on hold: it will only send.
    callee_remote.direction = Direction::SendOnly;
    media.set_remote(b.id, callee_remote);
    caller.send(&a, 0, &[2; 160]).await; // must not reach the callee
                                         // The caller still hears the callee (music on hold). The relay reads the caller's socket
                                         // first, so once this arrives the packet above was handled.
    callee.send(&b, 0, &[3; 160]).await;
    assert_eq!(&caller.recv().await[12..], &[3; 160][..]);

    callee_remote.direction = Direction::SendRecv;
    media.set_remote(b.id, callee_remote);
    caller.send(&a, 0, &[4; 160]).await;
    assert_eq!(
        &callee.recv().await[12..],
        &[4; 160][..],
        "held audio was not forwarded"
    );

    // Telephone-event towards a peer without telephone-event is dropped.
    media.close_bridge(bridge);
}

#[tokio::test]
async fn ports_are_allocated_round_robin_and_exhaust() {
    let (media, _events, _root) = media("ports", 2);
    let first = media.open_endpoint().unwrap();
    let second = media.open_endpoint().unwrap();
    assert_eq!(second.port, first.port + 2);
    assert!(matches!(
        media.open_endpoint(),
        Err(MediaError::PortsExhausted)
    ));
    media.close_endpoint(first.id);
    let again = media.open_endpoint().unwrap();
    assert_eq!(again.port, first.port);
    assert!(matches!(
        media.bridge(first.id, again.id, None),
        Err(MediaError::UnknownEndpoint(_))
    ));
    assert!(matches!(
        media.bridge(again.id, again.id, None),
        Err(MediaError::SameEndpoint(_))
    ));
}

#[tokio::test]
async fn busy_ports_are_skipped() {
    let (port_min, port_max) = port_range(3);
    let first_even = port_min + (port_min & 1);
    // Someone else holds the RTCP port of the first pair.
    let _squatter = std::net::UdpSocket::bind((LOCALHOST, first_even + 1)).unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    let media = Media::new(
        MediaConfig {
            bind: LOCALHOST,
            advertise: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            port_min,
            port_max,
            recordings: temp_dir("busy"),
        },
        tx,
    )
    .unwrap();
    let endpoint = media.open_endpoint().unwrap();
    assert_eq!(endpoint.port, first_even + 2);
    assert_eq!(endpoint.address, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
}

#[tokio::test]
async fn shutdown_finishes_every_recording() {
    let (media, mut events, root) = media("shutdown", 6);
    let mut bridges = Vec::new();
    let mut phones = Vec::new();
    for n in 0..2 {
        let a = media.open_endpoint().unwrap();
        let b = media.open_endpoint().unwrap();
        let mut caller = Phone::new(LOCALHOST).await;
        let callee = Phone::new(LOCALHOST).await;
        media.set_remote(a.id, caller.remote(Codec::Pcmu, None));
        media.set_remote(b.id, callee.remote(Codec::Pcmu, None));
        let path = root.join(format!("c{n}.wav"));
        bridges.push(
            media
                .bridge(a.id, b.id, Some((format!("c{n}"), path)))
                .unwrap(),
        );
        caller.send(&a, 0, &[9; 160]).await;
        callee.recv().await;
        phones.push((caller, callee));
    }
    timeout(WAIT, media.shutdown())
        .await
        .expect("shutdown finished");
    assert_eq!(media.active_bridges(), 0);
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (key, path, info) = recording_closed(&mut events).await;
        assert!(info.duration_ms >= 20);
        assert_eq!(read_wav(&path).len() as u64 / 8, info.duration_ms);
        keys.push(key);
    }
    keys.sort();
    assert_eq!(keys, ["c0", "c1"]);
    assert!(matches!(
        media.open_endpoint(),
        Err(MediaError::ShuttingDown)
    ));
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn a_range_without_a_port_pair_is_rejected() {
    for (port_min, port_max) in [(40001, 40002), (40000, 40000), (0, 1), (40010, 40000)] {
        let (tx, _rx) = mpsc::unbounded_channel();
        let result = Media::new(
            MediaConfig {
                bind: LOCALHOST,
                advertise: LOCALHOST,
                port_min,
                port_max,
                recordings: temp_dir("range"),
            },
            tx,
        );
        assert!(
            matches!(result, Err(MediaError::BadPortRange { .. })),
            "{port_min}-{port_max}"
        );
    }
}

#[test]
fn new_outside_a_runtime_is_an_error() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let result = Media::new(
        MediaConfig {
            bind: LOCALHOST,
            advertise: LOCALHOST,
            port_min: 40000,
            port_max: 40001,
            recordings: temp_dir("noruntime"),
        },
        tx,
    );
    assert!(matches!(result, Err(MediaError::NoRuntime)));
}

#[tokio::test]
async fn rtcp_is_terminated_per_leg_with_a_sender_report() {
    use kolokol_media::rtcp;
    let (media, _events, _root) = media("rtcp", 4);
    let mut caller = Phone::new(LOCALHOST).await;
    let mut callee = Phone::new(LOCALHOST).await;
    let caller_rtcp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let a = media.open_endpoint().unwrap();
    let b = media.open_endpoint().unwrap();
    media.set_remote(a.id, caller.remote(Codec::Pcmu, None));
    media.set_remote(b.id, callee.remote(Codec::Pcmu, None));
    let bridge = media.bridge(a.id, b.id, None).unwrap();

    for _ in 0..10 {
        caller.send(&a, 0, &[0xFF; 160]).await;
        callee.recv().await;
    }
    let mut to_caller_ssrc = 0;
    for _ in 0..5 {
        callee.send(&b, 0, &[0xFF; 160]).await;
        to_caller_ssrc = rtp::ssrc(&caller.recv().await);
    }

    // The caller reports first; the relay answers on the address the report came from.
    let ntp = rtcp::ntp_now();
    let mut buf = [0u8; 256];
    let sender = rtcp::SenderInfo {
        ntp,
        rtp_timestamp: caller.ts,
        packets: 10,
        octets: 1600,
    };
    let n = rtcp::write_report(&mut buf, caller.ssrc, Some(sender), None, "caller");
    caller_rtcp
        .send_to(&buf[..n], (LOCALHOST, a.port + 1))
        .await
        .unwrap();

    let (n, from) = timeout(WAIT, caller_rtcp.recv_from(&mut buf))
        .await
        .expect("an RTCP report from the relay")
        .unwrap();
    assert_eq!(from, SocketAddr::new(LOCALHOST, a.port + 1));
    let report = rtcp::parse(&buf[..n]).unwrap();
    assert_eq!(report.sender_ssrc, to_caller_ssrc);
    let info = report
        .sender
        .expect("a sender report: we sent to the caller");
    assert_eq!(info.packets, 5);
    assert_eq!(info.octets, 5 * 160);
    let block = report
        .block
        .expect("a report block about the caller's stream");
    assert_eq!(block.ssrc, caller.ssrc);
    assert_eq!(block.extended_highest_seq, caller.seq as u32 - 1);
    assert_eq!(block.cumulative_lost, 0);
    assert_eq!(block.fraction_lost, 0);
    assert_eq!(block.last_sr, (ntp >> 16) as u32);
    media.close_bridge(bridge);
}

#[tokio::test]
async fn a_recording_that_cannot_start_is_reported_and_the_call_still_flows() {
    let (media, mut events, root) = media("recfail", 4);
    std::fs::create_dir_all(&root).unwrap();
    let blocker = root.join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let mut caller = Phone::new(LOCALHOST).await;
    let callee = Phone::new(LOCALHOST).await;
    let a = media.open_endpoint().unwrap();
    let b = media.open_endpoint().unwrap();
    media.set_remote(a.id, caller.remote(Codec::Pcmu, None));
    media.set_remote(b.id, callee.remote(Codec::Pcmu, None));
    let bridge = media
        .bridge(a.id, b.id, Some(("call-x".into(), blocker.join("x.wav"))))
        .unwrap();
    match timeout(WAIT, events.recv()).await.expect("an event") {
        Some(MediaEvent::RecordingFailed { key, error }) => {
            assert_eq!(key, "call-x");
            assert!(error.contains("x.wav"), "{error}");
        }
        other => panic!("expected RecordingFailed, got {other:?}"),
    }
    caller.send(&a, 0, &[0xFF; 160]).await;
    callee.recv().await;
    media.close_bridge(bridge);
    timeout(WAIT, media.shutdown()).await.unwrap();
    assert!(
        events.try_recv().is_err(),
        "no RecordingClosed for a failed recording"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn a_waiting_endpoint_hears_the_sound_until_it_is_bridged() {
    let (media, _events, _) = media("play", 4);
    let caller = Phone::new(LOCALHOST).await;
    let mut operator = Phone::new(LOCALHOST).await;
    let a = media.open_endpoint().unwrap();
    let b = media.open_endpoint().unwrap();
    // Playing before the remote is known waits for it.
    media
        .play(a.id, std::sync::Arc::new(kolokol_media::Sound::ringback()))
        .unwrap();
    media.set_remote(a.id, caller.remote(Codec::Pcma, None));
    let first = caller.recv().await;
    assert_eq!(rtp::payload_type(&first), 8, "in the caller's codec");
    let tone_ssrc = rtp::ssrc(&first);
    let mut loud = 0;
    for _ in 0..20 {
        let p = caller.recv().await;
        assert_eq!(rtp::ssrc(&p), tone_ssrc);
        loud += p[12..]
            .iter()
            .filter(|b| g711::alaw_to_linear(**b).unsigned_abs() > 3_000)
            .count();
    }
    assert!(loud > 1_000, "the 425 Hz ringback is heard: {loud}");
    // Bridged: the player stops; what the caller gets now comes from the operator.
    media.set_remote(b.id, operator.remote(Codec::Pcma, None));
    media.bridge(a.id, b.id, None).unwrap();
    operator.send(&b, 8, &[0xd5; 160]).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let p = caller.recv().await;
        if rtp::ssrc(&p) != tone_ssrc {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tone never stopped"
        );
        operator.send(&b, 8, &[0xd5; 160]).await;
    }
    assert!(matches!(
        media.play(a.id, std::sync::Arc::new(kolokol_media::Sound::ringback())),
        Err(MediaError::UnknownEndpoint(_))
    ));
}

/// Music on hold is not a stream cannon: a waiting caller whose offer names someone else's
/// address (here 127.0.0.2, signalling from 127.0.0.1) is played nothing until the caller
/// speaks from a trusted address, and then it goes there.
#[tokio::test]
async fn a_waiting_endpoint_plays_only_to_a_proven_address() {
    let (media, _events, _) = media("play-proven", 2);
    let victim = Phone::new("127.0.0.2".parse().unwrap()).await;
    let mut caller = Phone::new(LOCALHOST).await;
    let a = media.open_endpoint().unwrap();
    let mut offer = victim.remote(Codec::Pcma, None);
    offer.signalling_ip = Some(LOCALHOST);
    media.set_remote(a.id, offer);
    media
        .play(a.id, std::sync::Arc::new(kolokol_media::Sound::ringback()))
        .unwrap();
    caller.send(&a, 8, &[0xd5; 160]).await;
    for _ in 0..5 {
        let p = caller.recv().await;
        assert_eq!(rtp::payload_type(&p), 8);
    }
    let mut buf = [0u8; 2048];
    let leaked = victim.socket.try_recv_from(&mut buf);
    assert!(
        leaked.is_err(),
        "nothing may reach the unproven SDP address: {leaked:?}"
    );
}
