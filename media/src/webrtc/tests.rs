//! The gateway against a full-ICE str0m peer standing in for a browser, on loopback:
//! ICE, DTLS-SRTP, then RTP both ways between the browser and a plain "relay" socket.

use super::*;
use crate::rtp;
use std::net::UdpSocket;

fn gateway() -> WebRtc {
    WebRtc::start(WebRtcConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        candidate: "127.0.0.1:0".parse().unwrap(),
        alias_ip: "127.0.0.1".parse().unwrap(),
        threads: 2,
    })
    .unwrap()
}

fn browser() -> BrowserPeer {
    BrowserPeer::new().unwrap()
}

/// Steps the browser until `done` holds (10 s at most).
fn until(browser: &mut BrowserPeer, what: &str, done: impl Fn(&BrowserPeer) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(browser) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        browser.step().unwrap();
    }
}

fn relay_socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    s
}

/// Browser → relay and relay → browser once connected; returns what the relay got.
fn talk(browser: &mut BrowserPeer, relay: &UdpSocket, alias: SocketAddr, pt: u8) {
    until(browser, "DTLS-SRTP", |b| b.connected);
    let mut got = Vec::new();
    let mut buf = [0u8; 2000];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seq = 0u64;
    while got.len() < 5 || browser.received.len() < 5 {
        assert!(Instant::now() < deadline, "RTP did not flow both ways");
        seq += 1;
        browser.send(pt, &[0xAB; 160]);
        browser.step().unwrap();
        if let Ok((n, from)) = relay.recv_from(&mut buf) {
            assert_eq!(from, alias, "plain RTP comes from the alias socket");
            got.push(buf[..n].to_vec());
        }
        // The relay answers with a plain RTP packet of its own.
        let mut plain = vec![0x80, pt, 0, seq as u8, 0, 0, 1, 0, 0, 0, 0, 7];
        plain.extend_from_slice(&[0x55; 160]);
        relay.send_to(&plain, alias).unwrap();
    }
    let first = &got[0];
    assert_eq!(rtp::validate(first).unwrap(), 12..172);
    assert_eq!(rtp::payload_type(first), pt);
    assert!(
        first[12..].iter().all(|b| *b == 0xAB),
        "payload passes untouched"
    );
    assert!(browser
        .received
        .iter()
        .all(|(p, payload)| *p == pt && payload.iter().all(|b| *b == 0x55)));
}

/// A browser that offered, got the gateway's answer (the relay made known afterwards, as
/// the SIP edge does) and talked both ways.
fn answered_browser(gateway: &WebRtc, relay: &UdpSocket) -> (BrowserPeer, Negotiated) {
    let mut browser = browser();
    let (offer, pending) = browser.offer().unwrap();
    let negotiated = gateway.answer(&offer, None).unwrap();
    gateway.set_relay(negotiated.peer, relay.local_addr().unwrap());
    browser.take_answer(pending, &negotiated.sdp).unwrap();
    talk(&mut browser, relay, negotiated.alias, 0);
    (browser, negotiated)
}

#[test]
fn a_browser_offer_is_answered_and_media_flows_both_ways() {
    let gateway = gateway();
    let relay = relay_socket();
    let (_browser, negotiated) = answered_browser(&gateway, &relay);
    assert!(negotiated.sdp.contains("a=ice-lite"), "{}", negotiated.sdp);
    assert_eq!(negotiated.codec, Codec::Pcmu);
    assert_eq!(
        negotiated.telephone_event,
        Some(126),
        "the browser's number"
    );
    assert_eq!(negotiated.direction, Direction::SendRecv);
    assert_eq!(gateway.peers(), 1);
    gateway.close(negotiated.peer);
    assert_eq!(gateway.peers(), 0);
}

#[test]
fn kolokol_offers_to_browsers_spread_over_the_gateway_threads() {
    let gateway = gateway();
    let candidates = gateway.candidates();
    assert_eq!(candidates.len(), 2, "two gateway threads, a port each");
    // Three browsers on two threads: two of them share a thread and its port.
    let relays = [relay_socket(), relay_socket(), relay_socket()];
    let mut legs = Vec::new();
    let mut ports = Vec::new();
    for relay in &relays {
        let (peer, offer) = gateway.offer(relay.local_addr().unwrap()).unwrap();
        assert!(offer.contains("a=setup:actpass") && offer.contains("a=ice-lite"));
        let port = candidates
            .iter()
            .find(|c| offer.contains(&format!("127.0.0.1 {} typ host", c.port())))
            .expect("the offer names one of the gateway's candidates")
            .port();
        ports.push(port);
        let mut browser = browser();
        let answer = browser.answer(&offer).unwrap();
        let negotiated = gateway.accept_answer(peer, &answer).unwrap();
        assert_eq!(negotiated.telephone_event, Some(TELEPHONE_EVENT_PT));
        legs.push((browser, negotiated));
    }
    for ((browser, negotiated), relay) in legs.iter_mut().zip(&relays) {
        let pt = negotiated.codec.payload_type();
        talk(browser, relay, negotiated.alias, pt);
    }
    assert_eq!(gateway.peers(), 3);
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 2, "both threads serve browsers");
}

#[test]
fn nonsense_is_refused_and_changes_nothing() {
    let gateway = gateway();
    let relay = "127.0.0.1:9".parse().unwrap();
    assert!(matches!(
        gateway.answer("v=0\r\nnonsense", Some(relay)),
        Err(WebRtcError::Sdp(_))
    ));
    assert!(matches!(
        gateway.accept_answer(PeerId(999), "v=0"),
        Err(WebRtcError::UnknownPeer(_))
    ));
    assert_eq!(gateway.peers(), 0);
}

#[test]
fn sequence_numbers_extend_across_wraps() {
    assert_eq!(hub_extend(5, 6), 6);
    assert_eq!(hub_extend(0xFFFF, 0), 0x1_0000);
    assert_eq!(hub_extend(0x1_0002, 0xFFFE), 0xFFFE);
    assert_eq!(hub_extend(0x2_0005, 3), 0x2_0003);
}

fn hub_extend(last: u64, seq: u16) -> u64 {
    hub::extend(last, seq)
}

#[test]
fn a_browser_holds_and_resumes_by_renegotiating() {
    let gateway = gateway();
    let relay = relay_socket();
    let (mut browser, negotiated) = answered_browser(&gateway, &relay);
    let mid = browser.mid.unwrap();
    for (direction, expected) in [
        (str0m::media::Direction::SendOnly, Direction::SendOnly),
        (str0m::media::Direction::SendRecv, Direction::SendRecv),
    ] {
        let mut api = browser.rtc.sdp_api();
        api.set_direction(mid, direction);
        let (offer, pending) = api.apply().unwrap();
        let again = gateway
            .renegotiate(negotiated.peer, &offer.to_sdp_string())
            .unwrap();
        assert_eq!(again.direction, expected, "{}", again.sdp);
        assert_eq!(
            again.alias, negotiated.alias,
            "the plain side stays where it was"
        );
        browser.take_answer(pending, &again.sdp).unwrap();
    }
}

#[test]
fn kolokol_reoffers_hold_and_resume_to_a_browser() {
    let gateway = gateway();
    let relay = relay_socket();
    let (mut browser, negotiated) = answered_browser(&gateway, &relay);
    for (ours, browsers) in [
        (Direction::SendOnly, Direction::RecvOnly),
        (Direction::SendRecv, Direction::SendRecv),
    ] {
        let offer = gateway.reoffer(negotiated.peer, ours).unwrap();
        let answer = browser.answer(&offer).unwrap();
        let again = gateway.accept_reanswer(negotiated.peer, &answer).unwrap();
        assert_eq!(again.direction, browsers, "{answer}");
        assert_eq!(again.alias, negotiated.alias);
    }
}
