//! G.711 µ-law and A-law, table driven.
//!
//! Decoding and the µ-law<->A-law conversions are single lookups in 256-entry tables built at
//! compile time, so the relay transcodes a packet in place with one load per byte. Encoding from
//! linear PCM follows the ITU reference segment search; it is only used to build the tables and
//! by tools that generate audio, never per relayed packet.

/// Fills a 256-entry table by evaluating `$f` for every byte (const fn pointers can't be called
/// in const context yet, hence a macro).
macro_rules! table {
    ($ty:ty, |$b:ident| $f:expr) => {{
        let mut table: [$ty; 256] = [0; 256];
        let mut i = 0;
        while i < 256 {
            let $b = i as u8;
            table[i] = $f;
            i += 1;
        }
        table
    }};
}

/// µ-law byte -> 16-bit linear PCM.
static ULAW_TO_LINEAR: [i16; 256] = table!(i16, |b| ulaw_value(b));
/// A-law byte -> 16-bit linear PCM.
static ALAW_TO_LINEAR: [i16; 256] = table!(i16, |b| alaw_value(b));
/// µ-law byte -> A-law byte (via the linear value).
static ULAW_TO_ALAW: [u8; 256] = table!(u8, |b| encode_alaw(ulaw_value(b)));
/// A-law byte -> µ-law byte (via the linear value).
static ALAW_TO_ULAW: [u8; 256] = table!(u8, |b| encode_ulaw(alaw_value(b)));

#[inline]
pub fn ulaw_to_linear(u: u8) -> i16 {
    ULAW_TO_LINEAR[u as usize]
}

#[inline]
pub fn alaw_to_linear(a: u8) -> i16 {
    ALAW_TO_LINEAR[a as usize]
}

#[inline]
pub fn linear_to_ulaw(pcm: i16) -> u8 {
    encode_ulaw(pcm)
}

#[inline]
pub fn linear_to_alaw(pcm: i16) -> u8 {
    encode_alaw(pcm)
}

#[inline]
pub fn ulaw_to_alaw(u: u8) -> u8 {
    ULAW_TO_ALAW[u as usize]
}

#[inline]
pub fn alaw_to_ulaw(a: u8) -> u8 {
    ALAW_TO_ULAW[a as usize]
}

/// Decodes µ-law bytes into `out` (as many as fit in both).
pub fn decode_ulaw(payload: &[u8], out: &mut [i16]) {
    for (sample, byte) in out.iter_mut().zip(payload) {
        *sample = ULAW_TO_LINEAR[*byte as usize];
    }
}

/// Decodes A-law bytes into `out` (as many as fit in both).
pub fn decode_alaw(payload: &[u8], out: &mut [i16]) {
    for (sample, byte) in out.iter_mut().zip(payload) {
        *sample = ALAW_TO_LINEAR[*byte as usize];
    }
}

/// Rewrites a µ-law payload as A-law in place (same length).
pub fn transcode_ulaw_to_alaw(payload: &mut [u8]) {
    for b in payload {
        *b = ULAW_TO_ALAW[*b as usize];
    }
}

/// Rewrites an A-law payload as µ-law in place (same length).
pub fn transcode_alaw_to_ulaw(payload: &mut [u8]) {
    for b in payload {
        *b = ALAW_TO_ULAW[*b as usize];
    }
}

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 8159;
/// Upper ends of the µ-law segments, in 14-bit magnitude with bias.
const ULAW_SEGMENT_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
/// Upper ends of the A-law segments, in 13-bit magnitude.
const ALAW_SEGMENT_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

const fn segment(value: i32, ends: &[i32; 8]) -> usize {
    let mut i = 0;
    while i < 8 {
        if value <= ends[i] {
            return i;
        }
        i += 1;
    }
    8
}

const fn ulaw_value(u: u8) -> i16 {
    let u = !u;
    let mantissa = ((u & 0x0F) as i32) << 3;
    let exponent = ((u & 0x70) >> 4) as u32;
    let magnitude = ((mantissa + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_value(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut magnitude = ((a & 0x0F) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as u32;
    match seg {
        0 => magnitude += 8,
        1 => magnitude += 0x108,
        _ => magnitude = (magnitude + 0x108) << (seg - 1),
    }
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn encode_ulaw(pcm: i16) -> u8 {
    let mut value = (pcm as i32) >> 2;
    let mask: u8 = if value < 0 {
        value = -value;
        0x7F
    } else {
        0xFF
    };
    if value > ULAW_CLIP {
        value = ULAW_CLIP;
    }
    value += ULAW_BIAS >> 2;
    let seg = segment(value, &ULAW_SEGMENT_END);
    if seg >= 8 {
        0x7F ^ mask
    } else {
        (((seg as i32) << 4) | ((value >> (seg + 1)) & 0x0F)) as u8 ^ mask
    }
}

const fn encode_alaw(pcm: i16) -> u8 {
    let mut value = (pcm as i32) >> 3;
    let mask: u8 = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    let seg = segment(value, &ALAW_SEGMENT_END);
    if seg >= 8 {
        0x7F ^ mask
    } else {
        let shift = if seg < 2 { 1 } else { seg };
        (((seg as i32) << 4) | ((value >> shift) & 0x0F)) as u8 ^ mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ulaw_values() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(ulaw_to_linear(0x7E), -8);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
    }

    #[test]
    fn known_alaw_values() {
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn ulaw_round_trips_except_negative_zero() {
        for u in 0..=255u8 {
            let expected = if u == 0x7F { 0xFF } else { u };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(u)), expected, "ulaw {u:#04x}");
        }
    }

    #[test]
    fn alaw_round_trips() {
        for a in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(a)), a, "alaw {a:#04x}");
        }
    }

    #[test]
    fn decoding_is_monotonic_in_magnitude() {
        // Within one sign, larger code magnitude means larger linear magnitude.
        for u in 0x01..0x80u8 {
            assert!(ulaw_to_linear(u) > ulaw_to_linear(u - 1));
        }
        for a in 0..=255u8 {
            let back = linear_to_alaw(alaw_to_linear(a));
            assert_eq!(alaw_to_linear(back), alaw_to_linear(a));
        }
    }

    #[test]
    fn cross_tables_preserve_the_signal() {
        for u in 0..=255u8 {
            let a = ulaw_to_alaw(u);
            assert_eq!(a, linear_to_alaw(ulaw_to_linear(u)));
            let (lu, la) = (ulaw_to_linear(u) as i32, alaw_to_linear(a) as i32);
            // The error is within one A-law quantisation step of that magnitude.
            let step = (lu.abs() / 16).max(16);
            assert!((lu - la).abs() <= step, "ulaw {u:#04x}: {lu} vs {la}");
            // Sign is kept (zero-ish values aside).
            assert!(lu.signum() * la.signum() >= 0 || lu.abs() <= 8);
        }
        for a in 0..=255u8 {
            let u = alaw_to_ulaw(a);
            assert_eq!(u, linear_to_ulaw(alaw_to_linear(a)));
            let (la, lu) = (alaw_to_linear(a) as i32, ulaw_to_linear(u) as i32);
            let step = (la.abs() / 16).max(16);
            assert!((la - lu).abs() <= step, "alaw {a:#04x}: {la} vs {lu}");
        }
    }

    #[test]
    fn slice_decoding_matches_tables() {
        let payload: Vec<u8> = (0..=255).collect();
        let mut out = [0i16; 256];
        decode_ulaw(&payload, &mut out);
        assert!(payload
            .iter()
            .zip(&out)
            .all(|(b, s)| ulaw_to_linear(*b) == *s));
        decode_alaw(&payload, &mut out);
        assert!(payload
            .iter()
            .zip(&out)
            .all(|(b, s)| alaw_to_linear(*b) == *s));
    }

    #[test]
    fn in_place_transcoding_matches_tables() {
        let mut payload: Vec<u8> = (0..=255).collect();
        transcode_ulaw_to_alaw(&mut payload);
        for (i, b) in payload.iter().enumerate() {
            assert_eq!(*b, ulaw_to_alaw(i as u8));
        }
        transcode_alaw_to_ulaw(&mut payload);
        for (i, b) in payload.iter().enumerate() {
            assert_eq!(*b, alaw_to_ulaw(ulaw_to_alaw(i as u8)));
        }
    }
}
