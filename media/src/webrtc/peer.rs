//! A full-ICE str0m peer speaking G.711 that stands in for a browser: the gateway's own
//! tests, the end-to-end tests and load tools drive kolokol with it. One blocking UDP
//! socket on loopback; [`BrowserPeer::step`] moves it on.

use super::{audio_config, audio_offer, datagram, WebRtcError};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::Mid;
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcError};

/// Chrome's payload type for telephone-event/8000.
const CHROME_TELEPHONE_EVENT: u8 = 126;

pub struct BrowserPeer {
    pub rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    pub mid: Option<Mid>,
    /// ICE and DTLS are up: SRTP flows.
    pub connected: bool,
    /// RTP received: (payload type, payload).
    pub received: Vec<(u8, Vec<u8>)>,
    /// Packets sent (also their sequence numbers).
    sent: u64,
}

impl BrowserPeer {
    /// On a free loopback port, numbering telephone-event as Chrome does.
    pub fn new() -> io::Result<BrowserPeer> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(5)))?;
        let addr = socket.local_addr()?;
        let mut rtc = audio_config(CHROME_TELEPHONE_EVENT).build(Instant::now());
        let candidate = Candidate::host(addr, "udp").map_err(io::Error::other)?;
        rtc.add_local_candidate(candidate);
        Ok(BrowserPeer {
            rtc,
            socket,
            addr,
            mid: None,
            connected: false,
            received: Vec::new(),
            sent: 0,
        })
    }

    /// An offer for a call this browser places.
    pub fn offer(&mut self) -> Result<(String, SdpPendingOffer), WebRtcError> {
        let (mid, offer, pending) = audio_offer(&mut self.rtc)?;
        self.mid = Some(mid);
        Ok((offer, pending))
    }

    /// The answer to [`BrowserPeer::offer`].
    pub fn take_answer(
        &mut self,
        pending: SdpPendingOffer,
        answer: &str,
    ) -> Result<(), WebRtcError> {
        let answer =
            SdpAnswer::from_sdp_string(answer).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| WebRtcError::Sdp(e.to_string()))
    }

    /// Answers an offer (kolokol calling this browser, or re-offering).
    pub fn answer(&mut self, offer: &str) -> Result<String, WebRtcError> {
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        Ok(answer.to_sdp_string())
    }

    /// Drains str0m's outputs, then reads one datagram (or lets up to 5 ms pass).
    pub fn step(&mut self) -> Result<(), RtcError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaAdded(m)) => self.mid = Some(m.mid),
                Output::Event(Event::RtpPacket(p)) => self
                    .received
                    .push((*p.header.payload_type, p.payload.to_vec())),
                Output::Event(_) => {}
                Output::Timeout(_) => break,
            }
        }
        let mut buf = [0u8; 2000];
        let input = match self.socket.recv_from(&mut buf) {
            Ok((n, source)) => match datagram(&buf[..n], source, self.addr) {
                Some(input) => input,
                None => return Ok(()),
            },
            Err(_) => Input::Timeout(Instant::now()),
        };
        self.rtc.handle_input(input)
    }

    /// One 20 ms frame (160 samples); nothing before the media is negotiated.
    pub fn send(&mut self, payload_type: u8, payload: &[u8]) {
        let Some(mid) = self.mid else {
            return;
        };
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, None) else {
            return;
        };
        self.sent += 1;
        tx.write_rtp(RtpWrite::new(
            payload_type.into(),
            SeqNo::from(self.sent),
            self.sent as u32 * 160,
            Instant::now(),
            payload.to_vec(),
        ));
    }
}
