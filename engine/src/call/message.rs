//! Reading the few header fields call control needs, and writing requests and responses
//! for one leg. Plain string work on already-checked messages.

use crate::sip::{grammar, response::finish_message, Scan};
use std::fmt::Write as _;

/// A parameter of a name-addr header (From, To, Contact): `tag`, `expires`…
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    grammar::params(grammar::split_name_addr(value).1)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v)
}

pub fn tag(value: &str) -> Option<&str> {
    header_param(value, "tag")
}

/// The URI inside a name-addr.
pub fn uri(value: &str) -> &str {
    grammar::split_name_addr(value).0
}

/// The `branch` of the top Via.
pub fn top_branch<'a>(scan: &'a Scan<'_>) -> Option<&'a str> {
    let via = grammar::split_list(scan.first("Via")?)[0];
    grammar::params(&via[via.find(';').unwrap_or(via.len())..])
        .find(|(n, _)| n.eq_ignore_ascii_case("branch"))
        .and_then(|(_, v)| v)
}

/// The method and number of CSeq.
pub fn cseq<'a>(scan: &'a Scan<'_>) -> Option<(u32, &'a str)> {
    grammar::parse_cseq(scan.first("CSeq")?).ok()
}

/// The route set a dialog learns from Record-Route, in the order the UAC uses it.
pub fn record_route(scan: &Scan<'_>, reverse: bool) -> Vec<String> {
    let mut routes: Vec<String> = scan
        .all("Record-Route")
        .flat_map(grammar::split_list)
        .map(str::to_string)
        .collect();
    if reverse {
        routes.reverse();
    }
    routes
}

/// The body when it is SDP.
pub fn sdp<'a>(scan: &'a Scan<'_>) -> Option<&'a str> {
    if scan.body.is_empty() {
        return None;
    }
    let ct = scan.first("Content-Type")?;
    ct.trim()
        .to_ascii_lowercase()
        .starts_with("application/sdp")
        .then(|| std::str::from_utf8(scan.body).ok())
        .flatten()
}

/// The user part of a sip/sips/tel URI.
pub fn uri_user(uri: &str) -> Option<&str> {
    if let Some(tel) = uri.strip_prefix("tel:") {
        return tel.split(';').next().filter(|t| !t.is_empty());
    }
    crate::sip::Request::uri_user(uri)
}

/// The display name of a name-addr, unquoted.
pub fn display_name(value: &str) -> Option<&str> {
    let v = value.trim();
    let lt = v.find('<')?;
    let name = v[..lt].trim().trim_matches('"').trim();
    (!name.is_empty()).then_some(name)
}

/// A request being written: start line, then headers in the order added.
pub struct RequestWriter {
    buf: String,
}

impl RequestWriter {
    pub fn new(method: &str, uri: &str) -> Self {
        let mut buf = String::with_capacity(768);
        let _ = write!(buf, "{method} {uri} SIP/2.0\r\n");
        RequestWriter { buf }
    }

    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        let _ = write!(self.buf, "{name}: {value}\r\n");
        self
    }

    pub fn headers<'a>(mut self, name: &str, values: impl IntoIterator<Item = &'a String>) -> Self {
        for v in values {
            let _ = write!(self.buf, "{name}: {v}\r\n");
        }
        self
    }

    pub fn finish(self, body: &[u8], content_type: Option<&str>) -> Vec<u8> {
        finish_message(self.buf, "User-Agent", body, content_type)
    }
}

/// Random tokens for tags, branches and Call-IDs.
pub fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub fn branch() -> String {
    format!("z9hG4bK{}", token())
}

/// The reason phrase we use for a status we send.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        _ => match status / 100 {
            1 => "Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Request Failure",
            5 => "Server Failure",
            _ => "Global Failure",
        },
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// civil_from_days), for the recordings' date folders without a calendar dependency.
pub fn civil_date(unix_ms: u64) -> (i64, u32, u32) {
    let z = (unix_ms / 86_400_000) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        // 2026-11-23T12:00:00Z
        assert_eq!(civil_date(1_795_435_200_000), (2026, 11, 23));
        // 2024-02-29
        assert_eq!(civil_date(1_709_164_800_000), (2024, 2, 29));
    }

    #[test]
    fn reads_name_addr_parts() {
        let v = "\"Ирина\" <sip:2001@example.com;transport=tcp>;tag=abc;expires=60";
        assert_eq!(tag(v), Some("abc"));
        assert_eq!(uri(v), "sip:2001@example.com;transport=tcp");
        assert_eq!(display_name(v), Some("Ирина"));
        assert_eq!(
            uri_user("tel:+74951234567;phone-context=x"),
            Some("+74951234567")
        );
        assert_eq!(uri_user("sip:2001@h"), Some("2001"));
    }
}
