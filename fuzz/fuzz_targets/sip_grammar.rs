//! The RFC 3261 grammar checks of engine/src/sip/grammar.rs on any header value.
//!
//! Invariants: no panic; what a check accepts is consistent with the splitters the
//! service then uses on it (a checked name-addr's URI is one `check_uri` accepts, a CSeq
//! number is below 2^31, list items are sub-slices of the value).
#![no_main]

use kolokol_engine::sip::{grammar, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|value: &str| {
    let items = grammar::split_list(value);
    assert!(!items.is_empty());
    for item in &items {
        assert!(item.len() <= value.len());
        let _ = grammar::check_via(item);
        if let Ok(uri) = grammar::check_name_addr(item) {
            assert!(grammar::check_uri(uri).is_ok());
            let (split_uri, params) = grammar::split_name_addr(item);
            let _ = grammar::params(params).count();
            let _ = (split_uri, Request::uri_user(uri));
        }
    }
    let (uri, params) = grammar::split_name_addr(value);
    let _ = grammar::params(params).collect::<Vec<_>>();
    let _ = grammar::check_params(params);
    let _ = grammar::check_uri(uri);
    let _ = grammar::sip_uri_has_headers(value);
    if let Some(hp) = grammar::sip_uri_host_port(value) {
        let _ = grammar::check_host_port(hp);
    }
    let _ = grammar::sip_uri_rest(value);
    let _ = grammar::check_host_port(value);
    let _ = Request::uri_user(value);
    if let Ok((n, method)) = grammar::parse_cseq(value) {
        assert!(n < 1 << 31);
        assert!(grammar::is_token(method));
    }
    let _ = grammar::parse_max_forwards(value);
    let _ = grammar::parse_delta_seconds(value);
    let _ = grammar::check_date(value);
    let _ = kolokol_engine::sip::header_is(value, "Content-Length");
});
