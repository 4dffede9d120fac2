//! RTP (RFC 3550 §5.1) header access on a borrowed packet buffer.
//!
//! The relay rewrites headers in the buffer it received into, so everything here reads or writes
//! bytes in place and allocates nothing. Call [`validate`] first; the accessors assume at least
//! the fixed 12-byte header is present.

use std::ops::Range;

pub const HEADER_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("RTP packet shorter than its header ({0} bytes)")]
    TooShort(usize),
    #[error("RTP version {0}, expected 2")]
    Version(u8),
    #[error("RTP CSRC list or header extension runs past the packet end")]
    Truncated,
    #[error("RTP padding length {0} is larger than the payload")]
    Padding(u8),
}

/// Checks version, fixed header, CSRC list, extension and padding; returns the payload range.
pub fn validate(packet: &[u8]) -> Result<Range<usize>, RtpError> {
    if packet.len() < HEADER_LEN {
        return Err(RtpError::TooShort(packet.len()));
    }
    let version = packet[0] >> 6;
    if version != 2 {
        return Err(RtpError::Version(version));
    }
    let csrc_count = (packet[0] & 0x0F) as usize;
    let mut start = HEADER_LEN + 4 * csrc_count;
    if packet[0] & 0x10 != 0 {
        // Extension header: 16-bit profile, 16-bit length in 32-bit words.
        if packet.len() < start + 4 {
            return Err(RtpError::Truncated);
        }
        let words = u16::from_be_bytes([packet[start + 2], packet[start + 3]]) as usize;
        start += 4 + 4 * words;
    }
    if packet.len() < start {
        return Err(RtpError::Truncated);
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        let padding = packet[end - 1];
        if padding == 0 || (padding as usize) > end - start {
            return Err(RtpError::Padding(padding));
        }
        end -= padding as usize;
    }
    Ok(start..end)
}

#[inline]
pub fn payload_type(packet: &[u8]) -> u8 {
    packet[1] & 0x7F
}

#[inline]
pub fn set_payload_type(packet: &mut [u8], pt: u8) {
    packet[1] = (packet[1] & 0x80) | (pt & 0x7F);
}

#[inline]
pub fn marker(packet: &[u8]) -> bool {
    packet[1] & 0x80 != 0
}

#[inline]
pub fn set_marker(packet: &mut [u8], marker: bool) {
    packet[1] = (packet[1] & 0x7F) | if marker { 0x80 } else { 0 };
}

#[inline]
pub fn sequence(packet: &[u8]) -> u16 {
    u16::from_be_bytes([packet[2], packet[3]])
}

#[inline]
pub fn set_sequence(packet: &mut [u8], seq: u16) {
    packet[2..4].copy_from_slice(&seq.to_be_bytes());
}

#[inline]
pub fn timestamp(packet: &[u8]) -> u32 {
    u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]])
}

#[inline]
pub fn set_timestamp(packet: &mut [u8], ts: u32) {
    packet[4..8].copy_from_slice(&ts.to_be_bytes());
}

#[inline]
pub fn ssrc(packet: &[u8]) -> u32 {
    u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]])
}

#[inline]
pub fn set_ssrc(packet: &mut [u8], ssrc: u32) {
    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// Writes a plain 12-byte header (no CSRC, extension or padding) at the start of `buf`.
pub fn write_header(buf: &mut [u8], pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32) {
    buf[0] = 0x80;
    buf[1] = 0;
    set_payload_type(buf, pt);
    set_marker(buf, marker);
    set_sequence(buf, seq);
    set_timestamp(buf, ts);
    set_ssrc(buf, ssrc);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN];
        write_header(&mut p, 0, true, 0xBEEF, 0xDEAD_BEEF, 0x1234_5678);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn reads_and_writes_fields() {
        let mut p = packet(&[1, 2, 3]);
        assert_eq!(validate(&p), Ok(12..15));
        assert_eq!(payload_type(&p), 0);
        assert!(marker(&p));
        assert_eq!(sequence(&p), 0xBEEF);
        assert_eq!(timestamp(&p), 0xDEAD_BEEF);
        assert_eq!(ssrc(&p), 0x1234_5678);
        set_payload_type(&mut p, 101);
        assert!(marker(&p), "marker survives a payload type change");
        set_marker(&mut p, false);
        assert_eq!(payload_type(&p), 101);
        set_sequence(&mut p, 1);
        set_timestamp(&mut p, 2);
        set_ssrc(&mut p, 3);
        assert_eq!((sequence(&p), timestamp(&p), ssrc(&p)), (1, 2, 3));
        assert!(!marker(&p));
        assert_eq!(&p[12..], &[1, 2, 3]);
    }

    #[test]
    fn rejects_bad_packets() {
        assert_eq!(validate(&[0x80; 11]), Err(RtpError::TooShort(11)));
        let mut p = packet(&[0; 4]);
        p[0] = 0x40;
        assert_eq!(validate(&p), Err(RtpError::Version(1)));
        let mut p = packet(&[0; 4]);
        p[0] |= 2; // two CSRCs = 8 bytes, only 4 present
        assert_eq!(validate(&p), Err(RtpError::Truncated));
        let mut p = packet(&[0; 4]);
        p[0] |= 0x20;
        p[15] = 5;
        assert_eq!(validate(&p), Err(RtpError::Padding(5)));
        p[15] = 0;
        assert_eq!(validate(&p), Err(RtpError::Padding(0)));
    }

    #[test]
    fn skips_csrc_extension_and_padding() {
        let mut p = packet(&[]);
        p[0] |= 0x10 | 0x20 | 1; // extension, padding, one CSRC
        p.extend_from_slice(&[0, 0, 0, 9]); // CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // extension, one word
        p.extend_from_slice(&[7, 7, 7]); // payload
        p.extend_from_slice(&[0, 2]); // padding of 2
        assert_eq!(validate(&p), Ok(24..27));
        let mut q = p.clone();
        q[0] &= !0x20;
        q.truncate(18); // extension cut short
        assert_eq!(validate(&q), Err(RtpError::Truncated));
    }
}
