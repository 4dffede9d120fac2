//! Plays a sound to an endpoint's peer while the endpoint is not bridged (a caller waiting
//! in a queue): one RTP packet every 20 ms in the peer's codec, from the endpoint's own
//! socket, until the endpoint is bridged or closed.

use super::forward::usable;
use super::Remote;
use crate::g711::{linear_to_alaw, linear_to_ulaw};
use crate::sdp::Codec;
use crate::sound::Sound;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};

/// Samples per 20 ms packet at 8 kHz.
const FRAME: usize = 160;

/// A running player; dropping it (and so `_stop`) ends the task.
pub(super) struct Player {
    pub _stop: oneshot::Sender<()>,
    pub remote: watch::Sender<Option<Remote>>,
}

/// What a player sends: an announcement once (if any), then music in a loop.
pub(super) struct Program {
    pub intro: Option<Arc<Sound>>,
    pub music: Arc<Sound>,
}

impl Program {
    fn at(&self, i: usize) -> i16 {
        match &self.intro {
            Some(intro) if i < intro.samples.len() => intro.samples[i],
            Some(intro) => self.music.at(i - intro.samples.len()),
            None => self.music.at(i),
        }
    }
}

/// One packet: RTP header, then the frame encoded in the peer's codec.
fn packet(
    buf: &mut [u8; 12 + FRAME],
    remote: &Remote,
    sound: &Program,
    n: u32,
    ssrc: u32,
) -> usize {
    let ts = n.wrapping_mul(FRAME as u32);
    crate::rtp::write_header(buf, remote.payload_type, n == 0, n as u16, ts, ssrc);
    let start = n as usize * FRAME;
    for (i, b) in buf[12..].iter_mut().enumerate() {
        let s = sound.at(start + i);
        *b = match remote.codec {
            Codec::Pcmu => linear_to_ulaw(s),
            Codec::Pcma => linear_to_alaw(s),
        };
    }
    buf.len()
}

pub(super) async fn run(
    socket: UdpSocket,
    sound: Program,
    mut remote: watch::Receiver<Option<Remote>>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ssrc = rand::random();
    let mut buf = [0u8; 12 + FRAME];
    let mut incoming = [0u8; 2048];
    let mut n = 0u32;
    // Symmetric RTP as on a bridge: the peer's first packet from a trusted address fixes
    // where the sound goes; until then only a believed SDP address gets it.
    let mut latched: Option<SocketAddr> = None;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            Ok(()) = remote.changed() => {
                latched = None;
                continue;
            }
            Ok((_, source)) = socket.recv_from(&mut incoming) => {
                let trusted = remote.borrow().is_some_and(|r| r.trusts(source.ip()));
                if latched.is_none() && trusted {
                    latched = Some(source);
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        let Some(r) = *remote.borrow() else {
            continue;
        };
        let destination = match latched {
            Some(latched) => latched,
            None if r.believed() && usable(r.addr) => r.addr,
            None => continue,
        };
        if !r.direction.receives() {
            continue;
        }
        let len = packet(&mut buf, &r, &sound, n, ssrc);
        let _ = socket.send_to(&buf[..len], destination).await;
        n = n.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::alaw_to_linear;
    use crate::sdp::Direction;

    #[test]
    fn packets_follow_on_in_the_peers_codec() {
        let sound = Program {
            intro: None,
            music: Arc::new(Sound {
                samples: (0..400).map(|i| (i * 50) as i16).collect(),
            }),
        };
        let remote = Remote {
            addr: "127.0.0.1:4000".parse().unwrap(),
            signalling_ip: None,
            codec: Codec::Pcma,
            payload_type: 8,
            telephone_event: None,
            direction: Direction::SendRecv,
            vouched: false,
        };
        let mut buf = [0u8; 12 + FRAME];
        packet(&mut buf, &remote, &sound, 0, 7);
        assert_eq!(buf[1], 0x88, "marker on the first packet, PT 8");
        packet(&mut buf, &remote, &sound, 2, 7);
        assert_eq!(buf[1], 8);
        assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), 2);
        assert_eq!(u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]), 320);
        // Frame 2 starts at sample 320; the sound (400 samples) loops at 80 into it.
        let first = alaw_to_linear(buf[12]);
        assert!((first - 320 * 50).abs() < 400, "{first}");
        let wrapped = alaw_to_linear(buf[12 + 80]);
        assert!(wrapped.abs() < 100, "{wrapped}");
    }

    #[test]
    fn the_announcement_comes_once_then_the_music_loops() {
        let p = Program {
            intro: Some(Arc::new(Sound {
                samples: vec![7; 100],
            })),
            music: Arc::new(Sound {
                samples: vec![1, 2, 3],
            }),
        };
        assert_eq!(p.at(99), 7);
        assert_eq!((p.at(100), p.at(101), p.at(103)), (1, 2, 1));
    }
}
