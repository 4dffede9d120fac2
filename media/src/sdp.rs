//! The slice of SDP (RFC 4566 / RFC 3264) a G.711 phone needs: one audio stream, PCMU/PCMA,
//! RFC 4733 telephone-event, direction and ptime. Anything else in the body is ignored.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    /// Static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// Encoding name as written in `a=rtpmap`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    fn from_static_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    fn from_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Codec::Pcma)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction the other party must use (RFC 3264 §6.1).
    pub fn reverse(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    pub(crate) fn from_attribute(attr: &str) -> Option<Direction> {
        match attr {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioDescription {
    /// From the audio m-line's c= or else the session c=.
    pub address: IpAddr,
    /// 0 means the stream is rejected / disabled.
    pub port: u16,
    /// Supported codecs in the offerer's order, with the payload type it uses for each.
    pub codecs: Vec<(Codec, u8)>,
    /// RFC 4733 payload type (`telephone-event/8000`).
    pub telephone_event: Option<u8>,
    /// What the describing party will do. Old-style hold (c=0.0.0.0) is folded in: the party
    /// does not want to receive, so sendrecv becomes sendonly and recvonly becomes inactive.
    pub direction: Direction,
    pub ptime: Option<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("SDP has no audio stream (m=audio)")]
    NoAudio,
    #[error("SDP has no connection address (c=) for the audio stream")]
    MissingConnection,
    #[error("bad connection line (c=): {0:?}")]
    BadConnection(String),
    #[error("bad media line (m=): {0:?}")]
    BadMediaLine(String),
    #[error("unsupported transport profile {0:?} (only RTP/AVP)")]
    UnsupportedProfile(String),
    #[error("no supported codec offered (PCMU or PCMA)")]
    NoSupportedCodec,
}

/// Parses the first `m=audio` stream of an SDP body.
pub fn parse(sdp: &str) -> Result<AudioDescription, SdpError> {
    let mut session_address: Option<IpAddr> = None;
    let mut session_direction: Option<Direction> = None;
    let mut media: Option<MediaSection> = None;
    let mut in_other_media = false;

    for raw in sdp.lines() {
        let line = raw.trim_end_matches('\r').trim();
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match kind {
            "m" => {
                if media.is_some() {
                    // Only the first audio stream matters; stop at the next m= line.
                    break;
                }
                if value.starts_with("audio ") {
                    media = Some(MediaSection::parse_m_line(value)?);
                    in_other_media = false;
                } else {
                    in_other_media = true;
                }
            }
            _ if in_other_media => {}
            "c" => {
                let address = parse_connection(value)?;
                match media.as_mut() {
                    Some(m) => m.address = Some(address),
                    None => session_address = Some(address),
                }
            }
            "a" => {
                let (name, arg) = match value.split_once(':') {
                    Some((n, a)) => (n, Some(a.trim())),
                    None => (value, None),
                };
                if let Some(direction) = Direction::from_attribute(name) {
                    match media.as_mut() {
                        Some(m) => m.direction = Some(direction),
                        None => session_direction = Some(direction),
                    }
                    continue;
                }
                let (Some(m), Some(arg)) = (media.as_mut(), arg) else {
                    continue;
                };
                match name {
                    "rtpmap" => m.rtpmap(arg),
                    "ptime" => m.ptime = arg.parse().ok(),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    let media = media.ok_or(SdpError::NoAudio)?;
    let address = media
        .address
        .or(session_address)
        .ok_or(SdpError::MissingConnection)?;
    let mut direction = media
        .direction
        .or(session_direction)
        .unwrap_or(Direction::SendRecv);
    if address.is_unspecified() {
        // RFC 3264 §8.4 old-style hold: "don't send to me".
        direction = match direction {
            Direction::SendRecv => Direction::SendOnly,
            Direction::RecvOnly => Direction::Inactive,
            other => other,
        };
    }

    let mut codecs = Vec::new();
    let mut telephone_event = None;
    for &pt in &media.formats {
        match media.format_name(pt) {
            Some(Format::Audio(codec)) => codecs.push((codec, pt)),
            Some(Format::TelephoneEvent) if telephone_event.is_none() => telephone_event = Some(pt),
            _ => {}
        }
    }
    if codecs.is_empty() && media.port != 0 {
        return Err(SdpError::NoSupportedCodec);
    }

    Ok(AudioDescription {
        address,
        port: media.port,
        codecs,
        telephone_event,
        direction,
        ptime: media.ptime,
    })
}

enum Format {
    Audio(Codec),
    TelephoneEvent,
}

struct MediaSection {
    port: u16,
    formats: Vec<u8>,
    /// (payload type, encoding name, clock rate) from a=rtpmap.
    rtpmaps: Vec<(u8, String, u32)>,
    address: Option<IpAddr>,
    direction: Option<Direction>,
    ptime: Option<u32>,
}

impl MediaSection {
    fn parse_m_line(value: &str) -> Result<MediaSection, SdpError> {
        let bad = || SdpError::BadMediaLine(format!("m={value}"));
        let mut fields = value.split_ascii_whitespace();
        let _audio = fields.next().ok_or_else(bad)?;
        let port_field = fields.next().ok_or_else(bad)?;
        // "port/count" is legal; only the base port matters for one stream.
        let port = port_field
            .split('/')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(bad)?;
        let profile = fields.next().ok_or_else(bad)?;
        if !profile.eq_ignore_ascii_case("RTP/AVP") && !profile.eq_ignore_ascii_case("RTP/AVPF") {
            return Err(SdpError::UnsupportedProfile(profile.to_string()));
        }
        let formats = fields
            .map(|f| f.parse::<u8>().ok().filter(|pt| *pt < 128))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)?;
        if formats.is_empty() {
            return Err(bad());
        }
        Ok(MediaSection {
            port,
            formats,
            rtpmaps: Vec::new(),
            address: None,
            direction: None,
            ptime: None,
        })
    }

    fn rtpmap(&mut self, arg: &str) {
        // "<pt> <name>/<rate>[/<channels>]"; malformed lines are ignored like unknown codecs.
        let Some((pt, encoding)) = arg.split_once(char::is_whitespace) else {
            return;
        };
        let Ok(pt) = pt.parse::<u8>() else { return };
        let mut parts = encoding.trim().split('/');
        let name = parts.next().unwrap_or_default().to_string();
        let rate = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
        self.rtpmaps.push((pt, name, rate));
    }

    fn format_name(&self, pt: u8) -> Option<Format> {
        if let Some((_, name, rate)) = self.rtpmaps.iter().find(|(p, _, _)| *p == pt) {
            if *rate != 8000 {
                return None;
            }
            if name.eq_ignore_ascii_case("telephone-event") {
                return Some(Format::TelephoneEvent);
            }
            return Codec::from_name(name).map(Format::Audio);
        }
        // Static payload types need no rtpmap (RFC 3551).
        Codec::from_static_payload_type(pt).map(Format::Audio)
    }
}

fn parse_connection(value: &str) -> Result<IpAddr, SdpError> {
    let bad = || SdpError::BadConnection(format!("c={value}"));
    let mut fields = value.split_ascii_whitespace();
    if fields.next() != Some("IN") {
        return Err(bad());
    }
    let family = fields.next().ok_or_else(bad)?;
    // Multicast may carry "/ttl[/count]".
    let address = fields
        .next()
        .ok_or_else(bad)?
        .split('/')
        .next()
        .unwrap_or("");
    let ip: IpAddr = address.parse().map_err(|_| bad())?;
    match (family, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err(bad()),
    }
}

/// Renders a complete SDP body for one audio stream, CRLF line ends.
pub fn render(desc: &AudioDescription, session_id: u64, version: u64) -> String {
    let family = match desc.address {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    };
    let mut out = String::with_capacity(256);
    let addr = desc.address;
    let _ = write!(
        out,
        "v=0\r\no=kolokol {session_id} {version} IN {family} {addr}\r\n"
    );
    let _ = write!(out, "s=kolokol\r\nc=IN {family} {addr}\r\nt=0 0\r\n");
    let _ = write!(out, "m=audio {} RTP/AVP", desc.port);
    for (_, pt) in &desc.codecs {
        let _ = write!(out, " {pt}");
    }
    if let Some(te) = desc.telephone_event {
        let _ = write!(out, " {te}");
    }
    if desc.codecs.is_empty() && desc.telephone_event.is_none() {
        // A rejected stream still needs one format to be syntactically valid.
        out.push_str(" 0");
    }
    out.push_str("\r\n");
    for (codec, pt) in &desc.codecs {
        let _ = write!(out, "a=rtpmap:{pt} {}/8000\r\n", codec.name());
    }
    if let Some(te) = desc.telephone_event {
        let _ = write!(
            out,
            "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
        );
    }
    let _ = write!(out, "a=ptime:{}\r\n", desc.ptime.unwrap_or(20));
    let _ = write!(out, "a={}\r\n", desc.direction.as_str());
    out
}

/// Builds our offer: codecs with their static payload types, in our preference order.
pub fn offer(
    address: IpAddr,
    port: u16,
    codecs: &[Codec],
    telephone_event: Option<u8>,
    direction: Direction,
) -> AudioDescription {
    AudioDescription {
        address,
        port,
        codecs: codecs.iter().map(|c| (*c, c.payload_type())).collect(),
        telephone_event,
        direction,
        ptime: Some(20),
    }
}

/// Answers an offer with exactly one codec: the first offered one we support, under the
/// offerer's payload type, so we never answer with something the offerer cannot receive.
pub fn answer(
    offer: &AudioDescription,
    address: IpAddr,
    port: u16,
    supported: &[Codec],
) -> Result<AudioDescription, SdpError> {
    let chosen = offer
        .codecs
        .iter()
        .find(|(codec, _)| supported.contains(codec))
        .copied();
    let (codecs, port) = match chosen {
        Some(c) if offer.port != 0 => (vec![c], port),
        // A stream the offerer disabled is answered disabled (RFC 3264 §6).
        _ if offer.port == 0 => (chosen.into_iter().collect(), 0),
        _ => return Err(SdpError::NoSupportedCodec),
    };
    Ok(AudioDescription {
        address,
        port,
        codecs,
        telephone_event: offer.telephone_event,
        direction: offer.direction.reverse(),
        ptime: offer.ptime.or(Some(20)),
    })
}

/// The address used for an "on hold, don't send to me" answer or offer (RFC 3264 §8.4).
pub const HOLD_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const SIPP_DEFAULT: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

    const BARESIP: &str = "v=0\r\n\
o=- 1946298413 3409237187 IN IP4 192.168.1.20\r\n\
s=-\r\n\
c=IN IP4 192.168.1.20\r\n\
t=0 0\r\n\
a=tool:baresip 3.10.1\r\n\
m=audio 10382 RTP/AVP 96 97 98 9 0 8 101\r\n\
b=AS:128\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:97 G7221/16000\r\n\
a=rtpmap:98 L16/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=rtcp-rsize\r\n\
a=ssrc:2217452215 cname:cd1a0e1b-8b5c\r\n";

    const LINPHONE: &str = "v=0\r\n\
o=alice 3006 1417 IN IP4 10.0.0.7\r\n\
s=Talk\r\n\
c=IN IP4 10.0.0.7\r\n\
t=0 0\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
m=audio 7078 RTP/AVP 96 97 98 8 0 101 99 100\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:97 speex/16000\r\n\
a=rtpmap:98 speex/8000\r\n\
a=rtpmap:101 telephone-event/48000\r\n\
a=rtpmap:99 telephone-event/16000\r\n\
a=rtpmap:100 telephone-event/8000\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
m=video 9078 RTP/AVP 96\r\n\
c=IN IP4 10.0.0.8\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=recvonly\r\n";

    #[test]
    fn parses_sipp_default() {
        let d = parse(SIPP_DEFAULT).unwrap();
        assert_eq!(d.address, ip("127.0.0.1"));
        assert_eq!(d.port, 6000);
        assert_eq!(d.codecs, vec![(Codec::Pcmu, 0)]);
        assert_eq!(d.telephone_event, None);
        assert_eq!(d.direction, Direction::SendRecv);
        assert_eq!(d.ptime, None);
    }

    #[test]
    fn parses_baresip_with_many_codecs() {
        let d = parse(BARESIP).unwrap();
        assert_eq!(d.address, ip("192.168.1.20"));
        assert_eq!(d.port, 10382);
        assert_eq!(d.codecs, vec![(Codec::Pcmu, 0), (Codec::Pcma, 8)]);
        assert_eq!(d.telephone_event, Some(101));
        assert_eq!(d.direction, Direction::SendRecv);
    }

    #[test]
    fn parses_linphone_and_ignores_other_media() {
        let d = parse(LINPHONE).unwrap();
        assert_eq!(d.address, ip("10.0.0.7"));
        assert_eq!(d.port, 7078);
        assert_eq!(d.codecs, vec![(Codec::Pcma, 8), (Codec::Pcmu, 0)]);
        // Only the 8 kHz telephone-event is usable with G.711.
        assert_eq!(d.telephone_event, Some(100));
        assert_eq!(d.direction, Direction::SendRecv);
    }

    #[test]
    fn dynamic_payload_type_for_g711() {
        let sdp = "v=0\r\nc=IN IP4 10.1.1.1\r\nm=audio 4000 RTP/AVP 110 111\r\n\
a=rtpmap:110 PCMA/8000\r\na=rtpmap:111 telephone-event/8000\r\na=ptime:30\r\n";
        let d = parse(sdp).unwrap();
        assert_eq!(d.codecs, vec![(Codec::Pcma, 110)]);
        assert_eq!(d.telephone_event, Some(111));
        assert_eq!(d.ptime, Some(30));
    }

    #[test]
    fn media_level_connection_and_direction_win() {
        let sdp = "v=0\nc=IN IP4 10.1.1.1\na=recvonly\nt=0 0\nm=audio 4000 RTP/AVP 0\n\
c=IN IP4 10.2.2.2\na=sendonly\n";
        let d = parse(sdp).unwrap();
        assert_eq!(d.address, ip("10.2.2.2"));
        assert_eq!(d.direction, Direction::SendOnly);
        let sdp = "v=0\nc=IN IP4 10.1.1.1\na=recvonly\nt=0 0\nm=audio 4000 RTP/AVP 0\n";
        assert_eq!(parse(sdp).unwrap().direction, Direction::RecvOnly);
    }

    #[test]
    fn sendonly_hold() {
        let sdp = SIPP_DEFAULT.to_string() + "a=sendonly\r\n";
        let d = parse(&sdp).unwrap();
        assert_eq!(d.direction, Direction::SendOnly);
        let a = answer(&d, ip("10.9.9.9"), 20000, &[Codec::Pcmu]).unwrap();
        assert_eq!(a.direction, Direction::RecvOnly);
    }

    #[test]
    fn old_style_hold_with_zero_address() {
        let sdp = SIPP_DEFAULT.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        let d = parse(&sdp).unwrap();
        assert!(d.address.is_unspecified());
        assert_eq!(d.direction, Direction::SendOnly);
        assert!(!d.direction.receives());
        let sdp = sdp + "a=recvonly\r\n";
        assert_eq!(parse(&sdp).unwrap().direction, Direction::Inactive);
    }

    #[test]
    fn ipv6_connection() {
        let sdp = "v=0\r\nc=IN IP6 2001:db8::1\r\nm=audio 5004 RTP/AVP 8\r\n";
        let d = parse(sdp).unwrap();
        assert_eq!(d.address, ip("2001:db8::1"));
        let text = render(&d, 1, 2);
        assert!(text.contains("c=IN IP6 2001:db8::1\r\n"));
        assert_eq!(parse(&text).unwrap().address, d.address);
    }

    #[test]
    fn render_parse_round_trip() {
        let d = offer(
            ip("192.0.2.10"),
            30000,
            &[Codec::Pcma, Codec::Pcmu],
            Some(101),
            Direction::SendRecv,
        );
        let text = render(&d, 42, 7);
        assert!(text.starts_with("v=0\r\no=kolokol 42 7 IN IP4 192.0.2.10\r\ns=kolokol\r\n"));
        assert!(text.contains("m=audio 30000 RTP/AVP 8 0 101\r\n"));
        assert!(text.contains("a=fmtp:101 0-16\r\n"));
        assert!(text.contains("a=ptime:20\r\n"));
        assert!(text.ends_with("a=sendrecv\r\n"));
        assert!(text.split("\r\n").all(|l| !l.contains('\n')));
        assert_eq!(parse(&text).unwrap(), d);

        for direction in [
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ] {
            let d = offer(ip("192.0.2.10"), 30000, &[Codec::Pcmu], None, direction);
            assert_eq!(parse(&render(&d, 1, 1)).unwrap(), d);
        }
    }

    #[test]
    fn answer_picks_first_offered_supported_codec() {
        let offer = parse(LINPHONE).unwrap();
        let a = answer(&offer, ip("192.0.2.1"), 20000, &[Codec::Pcmu, Codec::Pcma]).unwrap();
        assert_eq!(a.codecs, vec![(Codec::Pcma, 8)]);
        assert_eq!(a.telephone_event, Some(100));
        assert_eq!(a.direction, Direction::SendRecv);
        assert_eq!(a.port, 20000);
        let a = answer(&offer, ip("192.0.2.1"), 20000, &[Codec::Pcmu]).unwrap();
        assert_eq!(a.codecs, vec![(Codec::Pcmu, 0)]);

        let sipp = parse(SIPP_DEFAULT).unwrap();
        let a = answer(&sipp, ip("192.0.2.1"), 20000, &[Codec::Pcma, Codec::Pcmu]).unwrap();
        assert_eq!(a.codecs, vec![(Codec::Pcmu, 0)]);
        assert_eq!(a.telephone_event, None, "no telephone-event unless offered");
        assert_eq!(
            answer(&sipp, ip("192.0.2.1"), 20000, &[Codec::Pcma]),
            Err(SdpError::NoSupportedCodec)
        );
    }

    #[test]
    fn answer_keeps_dynamic_payload_types() {
        let sdp = "v=0\r\nc=IN IP4 10.1.1.1\r\nm=audio 4000 RTP/AVP 110 111\r\n\
a=rtpmap:110 PCMA/8000\r\na=rtpmap:111 telephone-event/8000\r\na=sendonly\r\n";
        let a = answer(&parse(sdp).unwrap(), ip("192.0.2.1"), 1, &[Codec::Pcma]).unwrap();
        assert_eq!(a.codecs, vec![(Codec::Pcma, 110)]);
        assert_eq!(a.telephone_event, Some(111));
        assert_eq!(a.direction, Direction::RecvOnly);
        let back = parse(&render(&a, 1, 1)).unwrap();
        assert_eq!(back.codecs, vec![(Codec::Pcma, 110)]);
    }

    #[test]
    fn rejected_stream() {
        let sdp =
            "v=0\r\nc=IN IP4 10.1.1.1\r\nm=audio 0 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n";
        let d = parse(sdp).unwrap();
        assert_eq!(d.port, 0);
        assert!(d.codecs.is_empty());
        let a = answer(&d, ip("192.0.2.1"), 20000, &[Codec::Pcmu]).unwrap();
        assert_eq!(a.port, 0);
        assert!(render(&a, 1, 1).contains("m=audio 0 RTP/AVP 0\r\n"));
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(parse("v=0\r\nc=IN IP4 1.2.3.4\r\n"), Err(SdpError::NoAudio));
        assert_eq!(
            parse("v=0\r\nm=video 1 RTP/AVP 96\r\nc=IN IP4 1.2.3.4\r\n"),
            Err(SdpError::NoAudio)
        );
        assert_eq!(
            parse("v=0\r\nm=audio 4000 RTP/AVP 0\r\n"),
            Err(SdpError::MissingConnection)
        );
        assert!(matches!(
            parse("v=0\r\nc=IN IP4 999.1.1.1\r\nm=audio 4000 RTP/AVP 0\r\n"),
            Err(SdpError::BadConnection(_))
        ));
        assert!(matches!(
            parse("v=0\r\nc=IN IP6 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n"),
            Err(SdpError::BadConnection(_))
        ));
        assert!(matches!(
            parse("v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio xx RTP/AVP 0\r\n"),
            Err(SdpError::BadMediaLine(_))
        ));
        assert!(matches!(
            parse("v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 4000 RTP/AVP\r\n"),
            Err(SdpError::BadMediaLine(_))
        ));
        assert!(matches!(
            parse("v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 4000 RTP/SAVP 0\r\n"),
            Err(SdpError::UnsupportedProfile(_))
        ));
        assert_eq!(
            parse("v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 4000 RTP/AVP 9 101\r\na=rtpmap:101 telephone-event/8000\r\n"),
            Err(SdpError::NoSupportedCodec)
        );
        let msg = SdpError::BadMediaLine("m=audio xx".into()).to_string();
        assert!(msg.contains("m=audio xx"));
    }
}
