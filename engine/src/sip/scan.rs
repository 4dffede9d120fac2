//! Framing and a raw header scan of one SIP message.
//!
//! rsipstack's parser is lenient by design (it keeps what it cannot read as strings and
//! defaults a bad Content-Length to 0), so before handing a message to it we look at the
//! raw text once: where the message ends, which headers it has, and whether the fields a
//! transaction depends on are well formed. That scan is what lets us answer a malformed
//! request with a 400 that names the fault instead of dropping it silently.

use std::borrow::Cow;

/// One header line, with continuation lines folded into a single space.
#[derive(Debug, Clone)]
pub struct RawHeader<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
}

/// The raw parts of one message.
#[derive(Debug)]
pub struct Scan<'a> {
    pub start_line: &'a str,
    pub headers: Vec<RawHeader<'a>>,
    /// The body as framed by Content-Length (or the rest of the datagram without one).
    pub body: &'a [u8],
    /// The Content-Length header, if present and numeric.
    pub content_length: Option<usize>,
    /// Bytes of the input this message occupies (header section + body).
    pub consumed: usize,
}

/// Why a byte sequence is not a framable SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("incomplete message: no end of header section")]
    NoHeaderEnd,
    #[error("header section is not UTF-8")]
    NotUtf8,
    #[error("empty message")]
    Empty,
    #[error("Content-Length is not a number")]
    BadContentLength,
    #[error("Content-Length exceeds the bytes received")]
    ShortBody,
    #[error("header line without a colon")]
    HeaderWithoutColon,
    #[error("more than one Content-Length")]
    DuplicateContentLength,
}

impl<'a> Scan<'a> {
    /// The value of the first header with this name (long or compact form).
    pub fn first(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| header_is(h.name, name))
            .map(|h| h.value.as_ref())
    }

    /// Every value of headers with this name, in order.
    pub fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers
            .iter()
            .filter(move |h| header_is(h.name, name))
            .map(|h| h.value.as_ref())
    }

    pub fn count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|h| header_is(h.name, name))
            .count()
    }
}

/// Compact forms of RFC 3261 §7.3.3 (and RFC 3515/3903 ones phones send).
const COMPACT: &[(&str, &str)] = &[
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("e", "Content-Encoding"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("f", "From"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("t", "To"),
    ("v", "Via"),
    ("r", "Refer-To"),
    ("o", "Event"),
    ("u", "Allow-Events"),
];

/// Whether a header name as written matches a canonical long name.
pub fn header_is(written: &str, long: &str) -> bool {
    if written.eq_ignore_ascii_case(long) {
        return true;
    }
    written.len() == 1
        && COMPACT
            .iter()
            .any(|(c, l)| c.eq_ignore_ascii_case(written) && l.eq_ignore_ascii_case(long))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Frames and scans the message at the start of `data`.
///
/// A missing Content-Length means "the rest of `data`" (right for a datagram or a
/// WebSocket frame; stream transports require the header). A Content-Length larger than
/// what arrived is [`FrameError::ShortBody`]: an error on a datagram, "wait for more" on a
/// stream.
pub fn scan(data: &[u8]) -> Result<Scan<'_>, FrameError> {
    scan_with(data, true)
}

/// Like [`scan`] but ignores Content-Length trouble (empty body): used only to answer a
/// message whose framing is broken.
pub fn scan_lenient(data: &[u8]) -> Result<Scan<'_>, FrameError> {
    scan_with(data, false)
}

fn scan_with(data: &[u8], strict_length: bool) -> Result<Scan<'_>, FrameError> {
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let skip = data
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    let data_from = &data[skip..];
    if data_from.is_empty() {
        return Err(FrameError::Empty);
    }
    let end = find(data_from, b"\r\n\r\n").ok_or(FrameError::NoHeaderEnd)?;
    let head = std::str::from_utf8(&data_from[..end]).map_err(|_| FrameError::NotUtf8)?;
    let mut lines = head.split("\r\n");
    let start_line = lines.next().ok_or(FrameError::Empty)?;
    let mut headers: Vec<RawHeader<'_>> = Vec::with_capacity(16);
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Folded continuation: join with one space (RFC 3261 §7.3.1).
            // Appended in place: copying the value per line made many folds quadratic.
            let last = headers.last_mut().ok_or(FrameError::HeaderWithoutColon)?;
            let value = last.value.to_mut();
            value.push(' ');
            value.push_str(line.trim());
            value.truncate(value.trim_end().len());
            let lead = value.len() - value.trim_start().len();
            if lead > 0 {
                value.drain(..lead);
            }
            continue;
        }
        let colon = line.find(':').ok_or(FrameError::HeaderWithoutColon)?;
        headers.push(RawHeader {
            name: line[..colon].trim_end_matches([' ', '\t']),
            value: Cow::Borrowed(line[colon + 1..].trim_matches([' ', '\t'])),
        });
    }
    let mut content_length = None;
    if !strict_length {
        return Ok(Scan {
            start_line,
            headers,
            body: &[],
            content_length,
            consumed: data.len(),
        });
    }
    for h in headers
        .iter()
        .filter(|h| header_is(h.name, "Content-Length"))
    {
        if content_length.is_some() {
            return Err(FrameError::DuplicateContentLength);
        }
        let v = h.value.trim();
        if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FrameError::BadContentLength);
        }
        content_length = Some(v.parse().map_err(|_| FrameError::BadContentLength)?);
    }
    let body_start = end + 4;
    let available = data_from.len() - body_start;
    let body_len = match content_length {
        Some(n) if n > available => return Err(FrameError::ShortBody),
        Some(n) => n,
        None => available,
    };
    Ok(Scan {
        start_line,
        headers,
        body: &data_from[body_start..body_start + body_len],
        content_length,
        consumed: skip + body_start + body_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_continuations_and_knows_compact_names() {
        let m =
            b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h\r\nSubject: one\r\n  two\r\nl: 0\r\n\r\n";
        let s = scan(m).unwrap();
        assert_eq!(s.first("Via"), Some("SIP/2.0/UDP h"));
        assert_eq!(s.first("Subject"), Some("one two"));
        assert_eq!(s.content_length, Some(0));
        assert_eq!(s.consumed, m.len());
    }

    #[test]
    fn frames_two_messages_in_one_buffer() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabcOPTIONS sip:c@d SIP/2.0\r\n\r\n";
        let s = scan(m).unwrap();
        assert_eq!(s.body, b"abc");
        assert_eq!(&m[s.consumed..s.consumed + 7], b"OPTIONS");
    }

    #[test]
    fn rejects_negative_duplicate_and_overlong_lengths() {
        let neg = b"X sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n";
        assert_eq!(scan(neg).unwrap_err(), FrameError::BadContentLength);
        let dup = b"X sip:a SIP/2.0\r\nl: 0\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(scan(dup).unwrap_err(), FrameError::DuplicateContentLength);
        let short = b"X sip:a SIP/2.0\r\nl: 10\r\n\r\nabc";
        assert_eq!(scan(short).unwrap_err(), FrameError::ShortBody);
    }
}
