//! Strict checks of the RFC 3261 grammar for the header fields a request depends on.
//!
//! Each check returns the reason phrase of the 400 it causes, so that a phone's log says
//! exactly what was wrong ("Bad From", "Bad Via", ...).

/// `token` characters of RFC 3261 §25.1.
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits a header value on commas that are outside quotes and angle brackets.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out
}

/// A URI as it may appear in a header: `scheme ":" opaque`, with no whitespace or brackets.
pub fn check_uri(uri: &str) -> Result<(), &'static str> {
    let colon = uri.find(':').ok_or("URI without scheme")?;
    let scheme = &uri[..colon];
    let mut chars = scheme.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err("bad URI scheme");
    }
    if uri.len() == colon + 1 || uri.chars().any(|c| c.is_whitespace() || "<>\"".contains(c)) {
        return Err("bad URI");
    }
    Ok(())
}

/// Whether a sip/sips URI carries `?headers` after its host part.
pub fn sip_uri_has_headers(uri: &str) -> bool {
    sip_uri_rest(uri).is_some_and(|rest| {
        let host_part = rest.rfind('@').map_or(rest, |at| &rest[at..]);
        host_part.contains('?')
    })
}

/// The `host[:port]` of a sip: or sips: URI: after the userinfo, before parameters and
/// headers. `None` for any other scheme.
pub fn sip_uri_host_port(uri: &str) -> Option<&str> {
    let rest = sip_uri_rest(uri)?;
    // '@' is in neither parameters nor headers: the last one ends the userinfo (which
    // may itself hold ';', '?' and ':').
    let host = rest.rfind('@').map_or(rest, |at| &rest[at + 1..]);
    Some(&host[..host.find([';', '?']).unwrap_or(host.len())])
}

/// What follows the scheme of a sip: or sips: URI; `None` for any other scheme.
pub fn sip_uri_rest(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once(':')?;
    (scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")).then_some(rest)
}

/// Parses a quoted string at the start of `s`, returning the rest after the closing quote.
fn skip_quoted(s: &str) -> Result<&str, &'static str> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Ok(&s[i + 1..]);
        }
    }
    Err("unbalanced quotes")
}

/// Generic parameters: `*( SWS ";" SWS token [ SWS "=" SWS value ] )`.
pub fn check_params(mut s: &str) -> Result<(), &'static str> {
    loop {
        s = s.trim_start_matches(is_ws);
        if s.is_empty() {
            return Ok(());
        }
        s = s.strip_prefix(';').ok_or("garbage after value")?;
        s = s.trim_start_matches(is_ws);
        let name_end = s.find(|c: char| !is_token_char(c)).unwrap_or(s.len());
        if name_end == 0 {
            return Err("empty parameter");
        }
        s = s[name_end..].trim_start_matches(is_ws);
        if let Some(rest) = s.strip_prefix('=') {
            let rest = rest.trim_start_matches(is_ws);
            if rest.starts_with('"') {
                s = skip_quoted(rest)?;
            } else {
                // token, host or IPv6 reference
                let end = rest
                    .find(|c: char| !(is_token_char(c) || c == ':' || c == '[' || c == ']'))
                    .unwrap_or(rest.len());
                if end == 0 {
                    return Err("empty parameter value");
                }
                s = &rest[end..];
            }
        }
    }
}

/// Iterates already-checked parameters as (name, value) pairs, unquoting quoted values.
pub fn params(s: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    s.split(';').skip(1).filter_map(|p| {
        let p = p.trim_matches(is_ws);
        if p.is_empty() {
            return None;
        }
        Some(match p.split_once('=') {
            Some((n, v)) => (
                n.trim_matches(is_ws),
                Some(v.trim_matches(is_ws).trim_matches('"')),
            ),
            None => (p, None),
        })
    })
}

/// A name-addr split into URI and the parameters after it (both unchecked).
pub fn split_name_addr(value: &str) -> (&str, &str) {
    let v = value.trim();
    let v = if v.starts_with('"') {
        skip_quoted(v).unwrap_or(v)
    } else {
        v
    };
    match (v.find('<'), v.find('>')) {
        (Some(lt), Some(gt)) if gt > lt => (&v[lt + 1..gt], &v[gt + 1..]),
        _ => {
            let end = v.find(';').unwrap_or(v.len());
            (v[..end].trim(), &v[end..])
        }
    }
}

/// `name-addr / addr-spec` followed by parameters (From, To, Contact, Route).
/// Returns the URI.
pub fn check_name_addr(value: &str) -> Result<&str, &'static str> {
    let v = value.trim();
    let (uri, params) = if v.starts_with('"') {
        let after_quote = skip_quoted(v)?;
        let after_quote = after_quote.trim_start_matches(is_ws);
        if !after_quote.starts_with('<') {
            return Err("quoted display name without <URI>");
        }
        bracketed(after_quote)?
    } else if let Some(lt) = v.find('<') {
        let display = &v[..lt];
        if !display.chars().all(|c| is_token_char(c) || is_ws(c)) {
            return Err("bad display name");
        }
        bracketed(&v[lt..])?
    } else {
        // addr-spec: the URI ends at the first ';', and may not carry headers or commas.
        let end = v.find(';').unwrap_or(v.len());
        let uri = v[..end].trim_end_matches(is_ws);
        if uri.contains(['?', ',']) {
            return Err("URI with headers must be in angle brackets");
        }
        (uri, &v[end..])
    };
    check_uri(uri)?;
    check_params(params)?;
    Ok(uri)
}

/// `"<" addr-spec ">"` with no whitespace inside the brackets; returns (uri, rest).
fn bracketed(s: &str) -> Result<(&str, &str), &'static str> {
    let inner = s.strip_prefix('<').ok_or("missing <")?;
    let gt = inner.find('>').ok_or("missing >")?;
    let uri = &inner[..gt];
    if uri.starts_with(is_ws) || uri.ends_with(is_ws) {
        return Err("whitespace inside <>");
    }
    Ok((uri, &inner[gt + 1..]))
}

/// One Via value: `SIP / 2.0 / transport LWS sent-by *( ; via-params )`.
pub fn check_via(value: &str) -> Result<(), &'static str> {
    let mut rest = value.trim();
    for expected_slash in [true, true, false] {
        let end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
        if end == 0 {
            return Err("bad sent-protocol");
        }
        rest = rest[end..].trim_start_matches(is_ws);
        if expected_slash {
            rest = rest.strip_prefix('/').ok_or("bad sent-protocol")?;
            rest = rest.trim_start_matches(is_ws);
        }
    }
    let host_end = rest
        .find(|c: char| is_ws(c) || c == ';')
        .unwrap_or(rest.len());
    let sent_by = &rest[..host_end];
    check_host_port(sent_by)?;
    check_params(&rest[host_end..])
}

/// `host [":" port]` (RFC 3261 hostport). An IPv6 address must be a bracketed reference
/// holding a valid address (RFC 5118 §4.2-4.5): unbracketed, its colons read as a port.
pub fn check_host_port(s: &str) -> Result<(), &'static str> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let close = v6.find(']').ok_or("bad IPv6 reference")?;
        let after = &v6[close + 1..];
        if v6[..close].parse::<std::net::Ipv6Addr>().is_err() {
            return Err("bad IPv6 reference");
        }
        if !after.is_empty() && !after.starts_with(':') {
            return Err("bad IPv6 reference");
        }
        (&v6[..close], after.strip_prefix(':'))
    } else if s.matches(':').count() > 1 {
        return Err("unbracketed IPv6 reference");
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c))
    {
        return Err("bad host");
    }
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return Err("bad port");
        }
    }
    Ok(())
}

/// `CSeq: 1*DIGIT LWS Method`; returns (number, method). The number must be < 2^31.
pub fn parse_cseq(value: &str) -> Result<(u32, &str), &'static str> {
    let mut parts = value.split_whitespace();
    let (Some(num), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("Bad CSeq");
    };
    if num.len() > 10 || !num.bytes().all(|b| b.is_ascii_digit()) || !is_token(method) {
        return Err("Bad CSeq");
    }
    let n: u64 = num.parse().map_err(|_| "Bad CSeq")?;
    if n >= 1 << 31 {
        return Err("Bad CSeq");
    }
    Ok((n as u32, method))
}

/// `Max-Forwards: 1*DIGIT`, 0..=255.
pub fn parse_max_forwards(value: &str) -> Result<u8, &'static str> {
    let v = value.trim();
    if v.is_empty() || v.len() > 5 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err("Bad Max-Forwards");
    }
    v.parse::<u8>().map_err(|_| "Bad Max-Forwards")
}

/// A delta-seconds value; absurdly large values saturate (RFC 3261 §20.19 allows that).
pub fn parse_delta_seconds(value: &str) -> Option<u32> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse::<u32>().unwrap_or(u32::MAX))
}

/// RFC 1123 date in GMT: `Sat, 13 Nov 2010 23:29:00 GMT`.
pub fn check_date(value: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    const DAYS: [&str; 7] = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let ok = parts.len() == 6
        && DAYS.contains(&parts[0])
        && parts[1].len() == 2
        && parts[1].bytes().all(|b| b.is_ascii_digit())
        && MONTHS.contains(&parts[2])
        && parts[3].len() == 4
        && parts[3].bytes().all(|b| b.is_ascii_digit())
        && parts[4].len() == 8
        && parts[5] == "GMT";
    if ok {
        Ok(())
    } else {
        Err("Bad Date")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_forms() {
        assert_eq!(
            check_name_addr("caller<sip:c@example.com>;tag=3"),
            Ok("sip:c@example.com")
        );
        assert_eq!(
            check_name_addr("\"J \\\"R\\\"\" <sip:j@example.com> ; tag = 9"),
            Ok("sip:j@example.com")
        );
        assert_eq!(check_name_addr("sip:u@h ;  tag = 1"), Ok("sip:u@h"));
        assert!(check_name_addr("\"Mr. J. User <sip:j@example.com>").is_err());
        assert!(check_name_addr("\"W, T\" < sip:t@example.org >").is_err());
        assert!(check_name_addr("Bell, Alexander <sip:a@example.com>;tag=43").is_err());
        assert!(check_name_addr("sip:u@example.com?Route=%3Csip:x%3E").is_err());
        assert!(check_name_addr("\"Joe\" <sip:joe@example.org>;;;;").is_err());
    }

    #[test]
    fn via_forms() {
        assert!(check_via("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw").is_ok());
        assert!(check_via("SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en").is_ok());
        assert!(check_via("SIP/2.0/UDP [2001:db8::1]:5060;rport;branch=z9").is_ok());
        assert!(check_via("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(check_via("SIP/2.0/UDP").is_err());
    }

    /// RFC 5118's IPv6 torture cases, at the grammar and through the decoder.
    #[test]
    fn ipv6_references_per_rfc_5118() {
        assert!(check_host_port("[2001:db8::10]").is_ok());
        assert!(check_host_port("[2001:db8::10]:5070").is_ok());
        assert!(check_host_port("[::ffff:192.0.2.10]:5060").is_ok()); // §4.7
        assert!(check_host_port("2001:db8::10").is_err()); // §4.2, unbracketed
        assert!(check_host_port("[2001:db8::10:5070]").is_ok()); // §4.4, valid address
        assert!(check_host_port("[2001:db8::10]5070").is_err());
        assert!(check_host_port("[2001:db8:::10]").is_err());
        assert!(check_host_port("[2001:db8::10").is_err());
        assert!(check_host_port("[192.0.2.10]").is_err());
        let request = |uri: &str| {
            format!("OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3\r\nMax-Forwards: 70\r\nTo: <sip:user@example.com>\r\nFrom: <sip:u@example.com>;tag=81\r\nCall-ID: v6@[2001:db8::9:1]\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        };
        let status = |uri: &str| match crate::sip::decode(request(uri).as_bytes()) {
            Ok(_) => 0,
            Err(crate::sip::Rejected::Respond { status, .. }) => status,
            Err(crate::sip::Rejected::Drop(_)) => 1,
        };
        assert_eq!(status("sip:user@[2001:db8::10]"), 0);
        assert_eq!(status("sip:user@[2001:db8::10]:5070;transport=udp"), 0);
        assert_eq!(status("sip:user@2001:db8::10"), 400);
        assert_eq!(status("sip:[2001:db8::10]"), 0);
    }

    #[test]
    fn scalars() {
        assert_eq!(parse_cseq("0009 INVITE"), Ok((9, "INVITE")));
        assert!(parse_cseq("36893488147419103232 REGISTER").is_err());
        assert_eq!(parse_max_forwards("0068"), Ok(68));
        assert!(parse_max_forwards("300").is_err());
        assert_eq!(parse_delta_seconds("1".repeat(40).as_str()), Some(u32::MAX));
        assert!(check_date("Sat, 13 Nov 2010 23:29:00 GMT").is_ok());
        assert!(check_date("Fri, 01 Jan 2010 16:00:00 EST").is_err());
    }
}
