//! The SIP facade: everything above it (registrar, call control) sees these types, not the
//! library underneath. rsipstack supplies the typed header parsers and the codec used for
//! requests we originate; framing, the strict checks of RFC 3261/4475 and stateless
//! response building live here because the library drops unparsable messages silently and
//! we must answer them with a 400 that says why.

pub mod grammar;
pub mod response;
pub mod scan;

pub use response::ResponseBuilder;
pub use scan::{header_is, FrameError, Scan};

/// The library types the rest of the engine may name.
pub use rsipstack::sip as codec;

/// Methods this server knows. Anything else is answered 501.
pub const KNOWN_METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
];

/// A request that passed framing and the grammar checks.
#[derive(Debug)]
pub struct Request<'a> {
    pub scan: Scan<'a>,
    pub method: &'a str,
    pub uri: &'a str,
    pub cseq: u32,
    pub max_forwards: Option<u8>,
}

impl<'a> Request<'a> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.scan.first(name)
    }

    pub fn call_id(&self) -> &str {
        self.scan.first("Call-ID").unwrap_or_default()
    }

    pub fn top_via(&self) -> &str {
        self.scan
            .first("Via")
            .map(|v| grammar::split_list(v)[0])
            .unwrap_or_default()
    }

    /// The URI of the To header (the address-of-record of a REGISTER).
    pub fn to_uri(&self) -> &str {
        self.scan
            .first("To")
            .map(|t| grammar::split_name_addr(t).0)
            .unwrap_or_default()
    }

    /// The user part of a sip/sips URI, unescaped of nothing (compared as written).
    pub fn uri_user(uri: &str) -> Option<&str> {
        let rest = uri
            .strip_prefix("sip:")
            .or_else(|| uri.strip_prefix("sips:"))
            .or_else(|| {
                uri.get(..4)
                    .filter(|s| s.eq_ignore_ascii_case("sip:"))
                    .map(|_| &uri[4..])
            })?;
        let at = rest.rfind('@')?;
        Some(rest[..at].split(';').next().unwrap_or_default())
            .map(|u| u.split(':').next().unwrap_or_default())
            .filter(|u| !u.is_empty())
    }
}

/// Everything that can come in on a SIP transport.
#[derive(Debug)]
pub enum Inbound<'a> {
    Request(Request<'a>),
    /// A response; its status code and the scan for matching a client transaction.
    Response(u16, Scan<'a>),
    /// CRLF keep-alive (RFC 5626 §3.5.1): answered with a single CRLF on streams.
    KeepAlive,
}

/// Why an inbound message is not processed.
#[derive(Debug)]
pub enum Rejected<'a> {
    /// Answer with this status; the scan has what the response must copy.
    Respond {
        status: u16,
        reason: &'static str,
        scan: Box<Scan<'a>>,
    },
    /// Not answerable (no header section, a bad response, no Via to answer to).
    Drop(&'static str),
}

fn respond<'a>(status: u16, reason: &'static str, scan: Scan<'a>) -> Rejected<'a> {
    Rejected::Respond {
        status,
        reason,
        scan: Box::new(scan),
    }
}

/// Frames one whole message (a datagram, a WebSocket frame or a framed stream chunk) and
/// checks it.
pub fn decode(data: &[u8]) -> Result<Inbound<'_>, Rejected<'_>> {
    if data.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Inbound::KeepAlive);
    }
    let scan = match scan::scan(data) {
        Ok(s) => s,
        Err(FrameError::ShortBody) => {
            // The body is shorter than Content-Length says (RFC 3261 §18.3: 400 on UDP).
            return scan_headers_only(data)
                .map(|s| Err(respond(400, "Content-Length exceeds body", s)))
                .unwrap_or(Err(Rejected::Drop("short body")));
        }
        Err(FrameError::BadContentLength) => {
            return scan_headers_only(data)
                .map(|s| Err(respond(400, "Bad Content-Length", s)))
                .unwrap_or(Err(Rejected::Drop("bad content-length")));
        }
        Err(FrameError::DuplicateContentLength) => {
            return scan_headers_only(data)
                .map(|s| Err(respond(400, "Multiple Content-Length", s)))
                .unwrap_or(Err(Rejected::Drop("duplicate content-length")));
        }
        Err(_) => return Err(Rejected::Drop("not a SIP message")),
    };
    if scan.start_line.starts_with("SIP/") {
        return check_status_line(scan.start_line)
            .map(|code| Inbound::Response(code, scan))
            .ok_or(Rejected::Drop("bad status line"));
    }
    check_request(scan).map(Inbound::Request)
}

/// The header section alone, for answering a message whose body framing is broken.
fn scan_headers_only(data: &[u8]) -> Option<Scan<'_>> {
    scan::scan_lenient(data).ok()
}

fn check_status_line(line: &str) -> Option<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    if !version.eq_ignore_ascii_case("SIP/2.0") || code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..700).contains(c))
}

/// Names of headers that may appear once only.
const SINGLE: &[&str] = &[
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Content-Type",
    "Expires",
    "Date",
];

fn check_request(scan: Scan<'_>) -> Result<Request<'_>, Rejected<'_>> {
    let line = scan.start_line;
    let parts: Vec<&str> = line.split(' ').collect();
    if scan.first("Via").is_none() {
        return Err(Rejected::Drop("request without Via"));
    }
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(respond(400, "Bad Request-Line", scan));
    }
    let (method, uri, version) = (parts[0], parts[1], parts[2]);
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(match version.strip_prefix("SIP/") {
            Some(v)
                if v.split('.').count() == 2
                    && v.chars().all(|c| c.is_ascii_digit() || c == '.') =>
            {
                respond(505, "Version Not Supported", scan)
            }
            _ => respond(400, "Bad SIP-Version", scan),
        });
    }
    if !grammar::is_token(method) {
        return Err(respond(400, "Bad Method", scan));
    }
    if grammar::check_uri(uri).is_err() {
        return Err(respond(400, "Bad Request-URI", scan));
    }
    if grammar::sip_uri_has_headers(uri) {
        return Err(respond(400, "Request-URI With Headers", scan));
    }
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if scan.count(name) == 0 {
            return Err(respond(400, missing_reason(name), scan));
        }
    }
    for name in SINGLE {
        if scan.count(name) > 1 {
            return Err(respond(400, duplicate_reason(name), scan));
        }
    }
    let first = |n: &str| scan.first(n).unwrap_or_default().to_string();
    let (cseq, cseq_method) = match grammar::parse_cseq(&first("CSeq")) {
        Ok((n, m)) => (n, m.to_string()),
        Err(r) => return Err(respond(400, r, scan)),
    };
    if cseq_method != method {
        return Err(respond(400, "CSeq Method Mismatch", scan));
    }
    let max_forwards = match scan.first("Max-Forwards").map(grammar::parse_max_forwards) {
        Some(Ok(n)) => Some(n),
        Some(Err(r)) => return Err(respond(400, r, scan)),
        None => None,
    };
    let bad = |scan, r| Err(respond(400, r, scan));
    if scan
        .first("Call-ID")
        .is_some_and(|c| c.is_empty() || c.contains(char::is_whitespace))
    {
        return bad(scan, "Bad Call-ID");
    }
    if scan
        .all("Via")
        .flat_map(grammar::split_list)
        .any(|v| grammar::check_via(v).is_err())
    {
        return bad(scan, "Bad Via");
    }
    if grammar::check_name_addr(&first("From")).is_err() {
        return bad(scan, "Bad From");
    }
    if grammar::check_name_addr(&first("To")).is_err() {
        return bad(scan, "Bad To");
    }
    let contacts_ok = scan
        .all("Contact")
        .flat_map(grammar::split_list)
        .all(|c| c == "*" || grammar::check_name_addr(c).is_ok());
    if !contacts_ok {
        return bad(scan, "Bad Contact");
    }
    if scan
        .first("Date")
        .is_some_and(|d| grammar::check_date(d).is_err())
    {
        return bad(scan, "Bad Date");
    }
    if scan
        .first("Expires")
        .is_some_and(|e| grammar::parse_delta_seconds(e).is_none())
    {
        return bad(scan, "Bad Expires");
    }
    // Safe: every borrowed &str above points into the input, not into `scan`.
    let (method, uri) = (method, uri);
    Ok(Request {
        scan,
        method,
        uri,
        cseq,
        max_forwards,
    })
}

fn missing_reason(name: &str) -> &'static str {
    match name {
        "Via" => "Missing Via",
        "From" => "Missing From",
        "To" => "Missing To",
        "Call-ID" => "Missing Call-ID",
        _ => "Missing CSeq",
    }
}

fn duplicate_reason(name: &str) -> &'static str {
    match name {
        "From" => "Multiple From",
        "To" => "Multiple To",
        "Call-ID" => "Multiple Call-ID",
        "CSeq" => "Multiple CSeq",
        "Max-Forwards" => "Multiple Max-Forwards",
        "Content-Type" => "Multiple Content-Type",
        "Expires" => "Multiple Expires",
        _ => "Multiple Date",
    }
}

#[cfg(test)]
mod tests;
