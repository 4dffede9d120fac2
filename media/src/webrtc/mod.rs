//! Browser legs: ICE-lite + DTLS-SRTP with `str0m` in RTP mode, on one UDP port per
//! gateway thread.
//!
//! A browser leg is a *gateway*: str0m terminates ICE, DTLS and SRTP, and the plain RTP
//! inside goes to and from a loopback "alias" socket that the relay sees as an ordinary
//! phone. So a browser is bridged, transcoded, recorded, held and transferred exactly like
//! a desk phone, and PCMU/PCMA payloads pass through untouched (the relay maps payload
//! types, since the alias speaks the browser's numbers).
//!
//! Each gateway thread ([`hub`], one per core by default) owns a socket shared by its
//! browsers and their `Rtc`s; peers are assigned to threads round-robin and found by the
//! ICE ufrag of a STUN request or by the source address ICE confirmed — no scan.

mod hub;
mod peer;

use crate::sdp::{Codec, Direction};
use hub::{Command, Hub, PeerSetup, SdpChange};
pub use peer::BrowserPeer;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::config::DtlsCert;
use str0m::format::{Codec as RtcCodec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Input, Rtc, RtcConfig};

/// Payload type of telephone-event in kolokol's own offers.
const TELEPHONE_EVENT_PT: u8 = 101;

#[derive(Debug, Clone)]
pub struct WebRtcConfig {
    /// Where the gateway listens (`0.0.0.0:PORT` is fine): gateway thread `i` takes
    /// `PORT + i`, and browsers are spread over the threads (port 0: free ports).
    pub bind: SocketAddr,
    /// The ICE candidate written into SDP: the address browsers reach (public behind NAT);
    /// thread `i`'s candidate port is this port + `i` (0: the port bound).
    pub candidate: SocketAddr,
    /// Where alias sockets bind; the relay endpoints must be reachable from here.
    pub alias_ip: IpAddr,
    /// Gateway threads; 0: one per core.
    pub threads: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    #[error("WebRTC SDP: {0}")]
    Sdp(String),
    #[error("the browser offers neither PCMU nor PCMA")]
    NoCommonCodec,
    #[error("unknown WebRTC peer {0:?}")]
    UnknownPeer(PeerId),
    #[error("the WebRTC gateway is not running")]
    Stopped,
    #[error("WebRTC socket: {0}")]
    Io(#[from] io::Error),
}

/// A negotiated browser leg: the SDP to send the browser, and what the relay endpoint
/// bridged to it must be told about its peer (the alias socket).
#[derive(Debug, Clone)]
pub struct Negotiated {
    pub peer: PeerId,
    /// Our answer (when the browser offered); empty after [`WebRtc::accept_answer`].
    pub sdp: String,
    /// The alias socket: the relay endpoint's remote address.
    pub alias: SocketAddr,
    /// What the SDP settled: codec (at its static payload type), telephone-event, and
    /// the direction as seen from the browser.
    pub codec: Codec,
    pub telephone_event: Option<u8>,
    pub direction: Direction,
}

/// What an SDP settles for a browser leg; see [`describe`].
struct Settled {
    codec: Codec,
    telephone_event: Option<u8>,
    direction: Direction,
}

impl Negotiated {
    fn new(peer: PeerId, sdp: String, alias: SocketAddr, settled: Settled) -> Negotiated {
        Negotiated {
            peer,
            sdp,
            alias,
            codec: settled.codec,
            telephone_event: settled.telephone_event,
            direction: settled.direction,
        }
    }
}

/// An offer kolokol made to a browser, waiting for its answer.
struct Pending {
    rtc: Rtc,
    offer: SdpPendingOffer,
    mid: Mid,
    relay: SocketAddr,
}

/// One gateway thread: its commands, how to wake it, the candidate its socket serves.
struct Lane {
    commands: mpsc::Sender<Command>,
    waker: mio::Waker,
    candidate: SocketAddr,
}

struct Inner {
    lanes: Vec<Lane>,
    config: WebRtcConfig,
    cert: DtlsCert,
    next_id: AtomicU64,
    pending: Mutex<HashMap<PeerId, Pending>>,
}

/// Handle to the WebRTC gateway thread. Cheap to clone; callable from any thread.
#[derive(Clone)]
pub struct WebRtc {
    inner: Arc<Inner>,
}

impl WebRtc {
    /// Binds the gateway's sockets and starts its threads.
    pub fn start(config: WebRtcConfig) -> Result<WebRtc, WebRtcError> {
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| io::Error::other("DTLS certificate generation failed"))?;
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let lanes = (0..threads)
            .map(|i| Self::start_lane(&config, i as u16))
            .collect::<Result<Vec<Lane>, WebRtcError>>()?;
        Ok(WebRtc {
            inner: Arc::new(Inner {
                lanes,
                config,
                cert,
                next_id: AtomicU64::new(1),
                pending: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Gateway thread `i` on its own socket.
    fn start_lane(config: &WebRtcConfig, i: u16) -> Result<Lane, WebRtcError> {
        let offset = |port: u16| if port == 0 { 0 } else { port + i };
        // ICE answers must leave from the address the browser sent to: a wildcard socket
        // would answer from the route's source address and the browser drops the answer.
        // So bind the candidate's own address when it is local (behind NAT it is not).
        let bind = SocketAddr::new(config.bind.ip(), offset(config.bind.port()));
        let specific = SocketAddr::new(config.candidate.ip(), bind.port());
        let socket = match bind.ip().is_unspecified() {
            true => UdpSocket::bind(specific).or_else(|_| UdpSocket::bind(bind))?,
            false => UdpSocket::bind(bind)?,
        };
        socket.set_nonblocking(true)?;
        let port = match config.candidate.port() {
            0 => socket.local_addr()?.port(),
            p => offset(p),
        };
        let candidate = SocketAddr::new(config.candidate.ip(), port);
        let (commands, receiver) = mpsc::channel();
        let hub = Hub::new(socket, candidate, receiver)?;
        let waker = hub.waker()?;
        std::thread::Builder::new()
            .name(format!("kolokol-webrtc{i}"))
            .spawn(move || hub.run())?;
        Ok(Lane {
            commands,
            waker,
            candidate,
        })
    }

    /// The addresses browsers send media to, one per gateway thread.
    pub fn candidates(&self) -> Vec<SocketAddr> {
        self.inner.lanes.iter().map(|l| l.candidate).collect()
    }

    /// The gateway thread that serves `peer`.
    fn lane(&self, peer: PeerId) -> &Lane {
        &self.inner.lanes[peer.0 as usize % self.inner.lanes.len()]
    }

    fn send(&self, peer: PeerId, command: Command) -> Result<(), WebRtcError> {
        let lane = self.lane(peer);
        lane.commands
            .send(command)
            .map_err(|_| WebRtcError::Stopped)?;
        lane.waker.wake()?;
        Ok(())
    }

    fn rtc(&self, peer: PeerId) -> Result<Rtc, WebRtcError> {
        let mut rtc = audio_config(TELEPHONE_EVENT_PT)
            .set_ice_lite(true)
            .set_dtls_cert(self.inner.cert.clone())
            .build(Instant::now());
        let candidate = Candidate::host(self.lane(peer).candidate, "udp")
            .map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        Ok(rtc)
    }

    fn next_id(&self) -> PeerId {
        PeerId(self.inner.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Answers a browser's offer; `relay` is the relay endpoint bridged to this leg (or
    /// none until [`WebRtc::set_relay`]: media waits for it).
    pub fn answer(
        &self,
        offer: &str,
        relay: Option<SocketAddr>,
    ) -> Result<Negotiated, WebRtcError> {
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let peer = self.next_id();
        let mut rtc = self.rtc(peer)?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let sdp = answer.to_sdp_string();
        let mid = audio_mid(&sdp).ok_or(WebRtcError::NoCommonCodec)?;
        let settled = describe(&sdp, true)?;
        let alias = self.add(peer, rtc, mid, relay)?;
        Ok(Negotiated::new(peer, sdp, alias, settled))
    }

    /// An offer for a call to a browser; finish with [`WebRtc::accept_answer`].
    pub fn offer(&self, relay: SocketAddr) -> Result<(PeerId, String), WebRtcError> {
        let peer = self.next_id();
        let mut rtc = self.rtc(peer)?;
        let (mid, sdp, pending) = audio_offer(&mut rtc)?;
        self.inner.pending.lock().expect("pending offers").insert(
            peer,
            Pending {
                rtc,
                offer: pending,
                mid,
                relay,
            },
        );
        Ok((peer, sdp))
    }

    /// The browser's answer to [`WebRtc::offer`]: ICE and DTLS start.
    pub fn accept_answer(&self, peer: PeerId, answer: &str) -> Result<Negotiated, WebRtcError> {
        let pending = self
            .inner
            .pending
            .lock()
            .expect("pending offers")
            .remove(&peer)
            .ok_or(WebRtcError::UnknownPeer(peer))?;
        let parsed =
            SdpAnswer::from_sdp_string(answer).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let Pending {
            mut rtc,
            offer,
            mid,
            relay,
        } = pending;
        rtc.sdp_api()
            .accept_answer(offer, parsed)
            .map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let settled = describe(answer, false)?;
        let alias = self.add(peer, rtc, mid, Some(relay))?;
        Ok(Negotiated::new(peer, String::new(), alias, settled))
    }

    /// An SDP exchange on an established leg, done on the gateway thread.
    fn exchange(
        &self,
        peer: PeerId,
        change: SdpChange,
    ) -> Result<(String, SocketAddr), WebRtcError> {
        let (reply, done) = mpsc::channel();
        self.send(
            peer,
            Command::Sdp {
                peer,
                change,
                reply,
            },
        )?;
        done.recv_timeout(Duration::from_secs(2))
            .map_err(|_| WebRtcError::Stopped)?
    }

    /// A new offer from the browser on an established leg (hold, resume): our answer.
    pub fn renegotiate(&self, peer: PeerId, offer: &str) -> Result<Negotiated, WebRtcError> {
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let (sdp, alias) = self.exchange(peer, SdpChange::Offer(offer))?;
        let settled = describe(&sdp, true)?;
        Ok(Negotiated::new(peer, sdp, alias, settled))
    }

    /// Our new offer on an established leg, in the direction kolokol wants (the other
    /// party held or resumed); finish with [`WebRtc::accept_reanswer`].
    pub fn reoffer(&self, peer: PeerId, direction: Direction) -> Result<String, WebRtcError> {
        let direction = match direction {
            Direction::SendRecv => str0m::media::Direction::SendRecv,
            Direction::SendOnly => str0m::media::Direction::SendOnly,
            Direction::RecvOnly => str0m::media::Direction::RecvOnly,
            Direction::Inactive => str0m::media::Direction::Inactive,
        };
        Ok(self.exchange(peer, SdpChange::Reoffer(direction))?.0)
    }

    /// The browser's answer to [`WebRtc::reoffer`].
    pub fn accept_reanswer(&self, peer: PeerId, answer: &str) -> Result<Negotiated, WebRtcError> {
        let parsed =
            SdpAnswer::from_sdp_string(answer).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let (_, alias) = self.exchange(peer, SdpChange::Answer(parsed))?;
        Ok(Negotiated::new(
            peer,
            String::new(),
            alias,
            describe(answer, false)?,
        ))
    }

    /// Where the leg's plain RTP goes: the relay endpoint it is bridged to.
    pub fn set_relay(&self, peer: PeerId, relay: SocketAddr) {
        let _ = self.send(peer, Command::SetRelay(peer, relay));
    }

    /// Ends a browser leg (or forgets an unanswered offer).
    pub fn close(&self, peer: PeerId) {
        if self
            .inner
            .pending
            .lock()
            .expect("pending offers")
            .remove(&peer)
            .is_none()
        {
            let _ = self.send(peer, Command::Close(peer));
        }
    }

    /// Browser legs being served now.
    pub fn peers(&self) -> usize {
        self.inner
            .lanes
            .iter()
            .map(|lane| {
                let (reply, count) = mpsc::channel();
                let asked =
                    lane.commands.send(Command::Count(reply)).is_ok() && lane.waker.wake().is_ok();
                if asked {
                    count.recv_timeout(Duration::from_secs(2)).unwrap_or(0)
                } else {
                    0
                }
            })
            .sum()
    }

    fn add(
        &self,
        peer: PeerId,
        rtc: Rtc,
        mid: Mid,
        relay: Option<SocketAddr>,
    ) -> Result<SocketAddr, WebRtcError> {
        let alias = UdpSocket::bind((self.inner.config.alias_ip, 0))?;
        alias.set_nonblocking(true)?;
        let addr = alias.local_addr()?;
        self.send(
            peer,
            Command::Add(Box::new(PeerSetup {
                peer,
                rtc,
                mid,
                alias,
                relay,
            })),
        )?;
        Ok(addr)
    }
}

/// A UDP datagram as str0m input; none when it is not STUN, DTLS, RTP or RTCP.
pub fn datagram(data: &[u8], source: SocketAddr, destination: SocketAddr) -> Option<Input<'_>> {
    Some(Input::Receive(
        Instant::now(),
        Receive {
            proto: Protocol::Udp,
            source,
            destination,
            contents: data.try_into().ok()?,
        },
    ))
}

/// Adds one send-and-receive audio m-line: (its mid, the offer, what takes the answer).
pub fn audio_offer(rtc: &mut Rtc) -> Result<(Mid, String, SdpPendingOffer), WebRtcError> {
    let mut api = rtc.sdp_api();
    let mid = api.add_media(
        MediaKind::Audio,
        str0m::media::Direction::SendRecv,
        None,
        None,
        None,
    );
    let (offer, pending) = api
        .apply()
        .ok_or_else(|| WebRtcError::Sdp("nothing to offer".into()))?;
    Ok((mid, offer.to_sdp_string(), pending))
}

/// str0m in RTP mode speaking only PCMU, PCMA and telephone-event (at `telephone_event`):
/// the gateway's peers, and the str0m "browsers" of tests and load tools.
pub fn audio_config(telephone_event: u8) -> RtcConfig {
    let mut config = RtcConfig::new()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_pcmu(true, false)
        .enable_pcma(true, false);
    config.codec_config().add_config(
        telephone_event.into(),
        None,
        RtcCodec::Tele,
        Frequency::EIGHT_KHZ,
        None,
        FormatParams::default(),
    );
    config
}

/// The first audio m-line's mid in str0m's SDP.
fn audio_mid(sdp: &str) -> Option<Mid> {
    let audio = sdp.split("m=").find(|m| m.starts_with("audio"))?;
    let mid = audio
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=mid:"))?;
    Some(Mid::from(mid.trim()))
}

/// What an SDP (ours as answerer, or the browser's answer) settles for the browser leg:
/// the first G.711 format listed is the one both sides send.
fn describe(sdp: &str, ours: bool) -> Result<Settled, WebRtcError> {
    let audio = sdp
        .split("m=")
        .find(|m| m.starts_with("audio"))
        .ok_or(WebRtcError::NoCommonCodec)?;
    let formats: Vec<u8> = audio
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(3)
        .filter_map(|f| f.parse().ok())
        .collect();
    let codec = formats
        .iter()
        .find_map(|pt| match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        })
        .ok_or(WebRtcError::NoCommonCodec)?;
    let telephone_event = audio.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("a=rtpmap:")?;
        let (pt, name) = rest.split_once(' ')?;
        name.eq_ignore_ascii_case("telephone-event/8000")
            .then(|| pt.parse().ok())
            .flatten()
    });
    let written = audio
        .lines()
        .find_map(|l| Direction::from_attribute(l.trim().strip_prefix("a=")?))
        .unwrap_or(Direction::SendRecv);
    Ok(Settled {
        codec,
        telephone_event,
        // Our own SDP states our direction; the browser's is the reverse of it.
        direction: if ours { written.reverse() } else { written },
    })
}

#[cfg(test)]
mod tests;
