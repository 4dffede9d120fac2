//! Load on the WebRTC gateway: LEGS str0m "browsers" (full ICE, DTLS-SRTP, one UDP socket
//! each) connect to kolokol's gateway at once, then each sends 50 PCMU packets/s for
//! SECONDS; a plain socket per leg stands in for the relay and echoes what the gateway
//! delivers, so every packet is decrypted, passed through the alias, and encrypted back.
//!
//!   cargo run --release -p kolokol-media --example webrtc_load -- [LEGS] [SECONDS] [THREADS]
//!
//! THREADS: gateway threads (0, the default: one per core).
//!
//! Prints the handshake rate (all legs offered at once, until the last is connected), the
//! gateway threads' CPU per leg and per packet (from /proc, those threads only), and loss.

use kolokol_media::webrtc::{audio_config, audio_offer, datagram, WebRtc, WebRtcConfig};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::media::Mid;
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, Input, Output, Rtc};

struct Browser {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    mid: Mid,
    connected: Option<Instant>,
    sent: u64,
    received: u64,
}

/// utime+stime ticks of this process's threads whose names start with `name` (which names itself once it
/// runs: wait a little for it).
fn thread_ticks(name: &str) -> u64 {
    for _ in 0..100 {
        if let Some(t) = find_thread_ticks(name) {
            return t;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no thread {name}");
}

fn find_thread_ticks(name: &str) -> Option<u64> {
    let mut found = None;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim().starts_with(name) {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
            let fields: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap()
                .split_whitespace()
                .collect();
            let ticks = fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?;
            found = Some(found.unwrap_or(0) + ticks);
        }
    }
    found
}

/// Drains a browser's outputs; counts connections and echoed packets.
fn drive(b: &mut Browser) {
    loop {
        match b.rtc.poll_output() {
            Ok(Output::Transmit(t)) => {
                let _ = b.socket.send_to(&t.contents, t.destination);
            }
            Ok(Output::Event(Event::Connected)) => b.connected = Some(Instant::now()),
            Ok(Output::Event(Event::RtpPacket(_))) => b.received += 1,
            Ok(Output::Event(_)) => {}
            Ok(Output::Timeout(_)) | Err(_) => break,
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let legs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let ticks_per_s = 100.0; // CLK_TCK on Linux
    let gateway = WebRtc::start(WebRtcConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        candidate: "127.0.0.1:0".parse().unwrap(),
        alias_ip: "127.0.0.1".parse().unwrap(),
        threads,
    })
    .expect("gateway");

    // The relay's stand-ins: one socket per leg echoing to the alias it hears from.
    let relays: Vec<std::net::UdpSocket> = (0..legs)
        .map(|_| {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let relay_addrs: Vec<SocketAddr> = relays.iter().map(|s| s.local_addr().unwrap()).collect();
    std::thread::Builder::new()
        .name("echo".into())
        .spawn(move || {
            let mut poll = Poll::new().unwrap();
            let mut sockets: Vec<UdpSocket> = relays.into_iter().map(UdpSocket::from_std).collect();
            for (i, s) in sockets.iter_mut().enumerate() {
                poll.registry()
                    .register(s, Token(i), Interest::READABLE)
                    .unwrap();
            }
            let mut events = Events::with_capacity(1024);
            let mut buf = [0u8; 1500];
            loop {
                poll.poll(&mut events, None).unwrap();
                for e in events.iter() {
                    let s = &sockets[e.token().0];
                    while let Ok((n, from)) = s.recv_from(&mut buf) {
                        let _ = s.send_to(&buf[..n], from);
                    }
                }
            }
        })
        .unwrap();

    // Every browser offers at once; the gateway answers.
    let mut poll = Poll::new().unwrap();
    let mut browsers: Vec<Browser> = Vec::with_capacity(legs);
    let gateway_start = thread_ticks("kolokol-webrtc");
    let started = Instant::now();
    for (i, relay) in relay_addrs.iter().enumerate() {
        let mut socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        poll.registry()
            .register(&mut socket, Token(i), Interest::READABLE)
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let mut rtc = audio_config(126).build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let (mid, offer, pending) = audio_offer(&mut rtc).unwrap();
        let answer = gateway.answer(&offer, Some(*relay)).expect("answer");
        rtc.sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer.sdp).unwrap())
            .unwrap();
        let mut b = Browser {
            rtc,
            socket,
            addr,
            mid,
            connected: None,
            sent: 0,
            received: 0,
        };
        drive(&mut b);
        browsers.push(b);
    }

    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 2000];
    let mut all_connected: Option<Instant> = None;
    let mut measuring: Option<(Instant, u64, u64, u64)> = None;
    let mut next_frame = Instant::now();
    let deadline = started + Duration::from_secs(seconds + 60);
    loop {
        let now = Instant::now();
        assert!(now < deadline, "legs did not connect in time");
        poll.poll(&mut events, Some(next_frame.saturating_duration_since(now)))
            .unwrap();
        for e in events.iter() {
            let b = &mut browsers[e.token().0];
            while let Ok((n, source)) = b.socket.recv_from(&mut buf) {
                let Some(input) = datagram(&buf[..n], source, b.addr) else {
                    continue;
                };
                let _ = b.rtc.handle_input(input);
                drive(b);
            }
        }
        let now = Instant::now();
        if now < next_frame {
            continue;
        }
        next_frame += Duration::from_millis(20);
        let mut connected = 0;
        for b in browsers.iter_mut() {
            let _ = b.rtc.handle_input(Input::Timeout(now));
            if b.connected.is_some() {
                connected += 1;
                if all_connected.is_some() {
                    b.sent += 1;
                    let mut api = b.rtc.direct_api();
                    if let Some(tx) = api.stream_tx_by_mid(b.mid, None) {
                        tx.write_rtp(RtpWrite::new(
                            0.into(),
                            SeqNo::from(b.sent),
                            b.sent as u32 * 160,
                            now,
                            vec![0x55; 160],
                        ));
                    }
                }
            }
            drive(b);
        }
        if all_connected.is_none() && connected == legs {
            let at = browsers.iter().filter_map(|b| b.connected).max().unwrap();
            all_connected = Some(at);
            let gateway_connected = thread_ticks("kolokol-webrtc") - gateway_start;
            let took = at - started;
            println!(
                "{legs} legs connected (ICE + DTLS) in {:.2} s: {:.0} handshakes/s; gateway threads {:.2} s CPU, {:.2} ms per handshake",
                took.as_secs_f64(),
                legs as f64 / took.as_secs_f64(),
                gateway_connected as f64 / ticks_per_s,
                gateway_connected as f64 / ticks_per_s * 1000.0 / legs as f64
            );
            // Let the streams settle for 2 s before measuring.
            measuring = Some((now + Duration::from_secs(2), 0, 0, 0));
        }
        if let Some((from, ticks0, sent0, received0)) = measuring.as_mut() {
            if now >= *from && *ticks0 == 0 {
                *ticks0 = thread_ticks("kolokol-webrtc");
                *sent0 = browsers.iter().map(|b| b.sent).sum();
                *received0 = browsers.iter().map(|b| b.received).sum();
            } else if *ticks0 > 0 && now >= *from + Duration::from_secs(seconds) {
                let ticks = thread_ticks("kolokol-webrtc") - *ticks0;
                let sent: u64 = browsers.iter().map(|b| b.sent).sum::<u64>() - *sent0;
                let received: u64 = browsers.iter().map(|b| b.received).sum::<u64>() - *received0;
                let cpu = ticks as f64 / ticks_per_s;
                // Each echoed packet crosses the gateway twice (decrypt in, encrypt out).
                println!(
                    "{seconds} s of 50 packets/s per leg each way: sent {sent}, echoed back {received} ({:.3} % lost); gateway threads {:.1} % of a core, {:.2} ms CPU per leg-second, {:.2} µs per packet",
                    100.0 * (sent.saturating_sub(received)) as f64 / sent.max(1) as f64,
                    100.0 * cpu / seconds as f64,
                    cpu * 1000.0 / (legs as u64 * seconds) as f64,
                    cpu * 1e6 / (2 * sent.max(1)) as f64
                );
                return;
            }
        }
    }
}
