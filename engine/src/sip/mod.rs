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

    /// The user part of a sip/sips URI, compared as written (no unescaping).
    pub fn uri_user(uri: &str) -> Option<&str> {
        let rest = grammar::sip_uri_rest(uri)?;
        let userinfo = &rest[..rest.rfind('@')?];
        // `user[;params][:password]`: only the user names the AoR.
        let user = userinfo.split([';', ':']).next().unwrap_or_default();
        (!user.is_empty()).then_some(user)
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
        Err(fault) => {
            let reason = match fault {
                // RFC 3261 §18.3: a body shorter than Content-Length gets 400 on UDP.
                FrameError::ShortBody => "Content-Length exceeds body",
                FrameError::BadContentLength => "Bad Content-Length",
                FrameError::DuplicateContentLength => "Multiple Content-Length",
                _ => return Err(Rejected::Drop("not a SIP message")),
            };
            // Answer from the header section alone: the body framing is what is broken.
            return match scan::scan_lenient(data) {
                Ok(s) => Err(respond(400, reason, s)),
                Err(_) => Err(Rejected::Drop(reason)),
            };
        }
    };
    if scan.start_line.starts_with("SIP/") {
        return check_status_line(scan.start_line)
            .map(|code| Inbound::Response(code, scan))
            .ok_or(Rejected::Drop("bad status line"));
    }
    check_request(scan).map(Inbound::Request)
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

/// Headers every request needs, with the reason phrase of the 400 when one is missing.
const REQUIRED: &[(&str, &str)] = &[
    ("Via", "Missing Via"),
    ("From", "Missing From"),
    ("To", "Missing To"),
    ("Call-ID", "Missing Call-ID"),
    ("CSeq", "Missing CSeq"),
];

/// Headers that may appear once only, with the reason phrase when one repeats.
const SINGLE: &[(&str, &str)] = &[
    ("From", "Multiple From"),
    ("To", "Multiple To"),
    ("Call-ID", "Multiple Call-ID"),
    ("CSeq", "Multiple CSeq"),
    ("Max-Forwards", "Multiple Max-Forwards"),
    ("Content-Type", "Multiple Content-Type"),
    ("Expires", "Multiple Expires"),
    ("Date", "Multiple Date"),
];

fn check_request(scan: Scan<'_>) -> Result<Request<'_>, Rejected<'_>> {
    if scan.first("Via").is_none() {
        return Err(Rejected::Drop("request without Via"));
    }
    match check(&scan) {
        Ok((method, uri, cseq, max_forwards)) => Ok(Request {
            scan,
            method,
            uri,
            cseq,
            max_forwards,
        }),
        Err((status, reason)) => Err(respond(status, reason, scan)),
    }
}

/// The grammar checks; `Err` is the status and reason phrase to answer with.
type Checked<'a> = (&'a str, &'a str, u32, Option<u8>);

fn check<'a>(scan: &Scan<'a>) -> Result<Checked<'a>, (u16, &'static str)> {
    let bad = |reason| Err((400, reason));
    let line: &'a str = scan.start_line;
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return bad("Bad Request-Line");
    };
    if method.is_empty() || uri.is_empty() || version.is_empty() {
        return bad("Bad Request-Line");
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return match version.strip_prefix("SIP/") {
            Some(v)
                if v.split('.').count() == 2
                    && v.chars().all(|c| c.is_ascii_digit() || c == '.') =>
            {
                Err((505, "Version Not Supported"))
            }
            _ => bad("Bad SIP-Version"),
        };
    }
    if !grammar::is_token(method) {
        return bad("Bad Method");
    }
    if grammar::check_uri(uri).is_err() {
        return bad("Bad Request-URI");
    }
    if grammar::sip_uri_has_headers(uri) {
        return bad("Request-URI With Headers");
    }
    if let Some(Err(why)) = grammar::sip_uri_host_port(uri).map(grammar::check_host_port) {
        return bad(match why {
            "unbracketed IPv6 reference" => "Unbracketed IPv6 Reference In Request-URI",
            _ => "Bad Request-URI Host",
        });
    }
    if let Some((_, reason)) = REQUIRED.iter().find(|(n, _)| scan.count(n) == 0) {
        return bad(reason);
    }
    if let Some((_, reason)) = SINGLE.iter().find(|(n, _)| scan.count(n) > 1) {
        return bad(reason);
    }
    let first = |n| scan.first(n).unwrap_or_default();
    let (cseq, cseq_method) = grammar::parse_cseq(first("CSeq")).map_err(|r| (400, r))?;
    if cseq_method != method {
        return bad("CSeq Method Mismatch");
    }
    let max_forwards = scan
        .first("Max-Forwards")
        .map(grammar::parse_max_forwards)
        .transpose()
        .map_err(|r| (400, r))?;
    let call_id = first("Call-ID");
    if call_id.is_empty() || call_id.contains(char::is_whitespace) {
        return bad("Bad Call-ID");
    }
    if scan
        .all("Via")
        .flat_map(grammar::split_list)
        .any(|v| grammar::check_via(v).is_err())
    {
        return bad("Bad Via");
    }
    if grammar::check_name_addr(first("From")).is_err() {
        return bad("Bad From");
    }
    if grammar::check_name_addr(first("To")).is_err() {
        return bad("Bad To");
    }
    if !scan
        .all("Contact")
        .flat_map(grammar::split_list)
        .all(|c| c == "*" || grammar::check_name_addr(c).is_ok())
    {
        return bad("Bad Contact");
    }
    if scan
        .first("Date")
        .is_some_and(|d| grammar::check_date(d).is_err())
    {
        return bad("Bad Date");
    }
    if scan
        .first("Expires")
        .is_some_and(|e| grammar::parse_delta_seconds(e).is_none())
    {
        return bad("Bad Expires");
    }
    Ok((method, uri, cseq, max_forwards))
}

#[cfg(test)]
mod tests;
