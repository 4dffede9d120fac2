//! The partner table's query string (`GET /api/v1/partners?…`, report and export
//! queries, a task's `partner_filter`): decoded as the web crate does
//! (`serde_urlencoded` into pairs), read by `TableQuery::from_pairs`, and its values
//! through the readers the table then applies: the `created` period
//! (`values::DateRange` in any time zone), date and number bounds of filters
//! (`values::parse_date`), phone filters (`values::normalise_phone`).
//!
//! Invariants: no panic; a query that is read keeps a limit of 1 to 500 and hands back
//! only the extra pairs asked for; a period's start is never after its end.
#![no_main]

use kolokol_crm::table::TableQuery;
use kolokol_crm::values;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&zone, raw)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(raw) else {
        return;
    };
    let zone = chrono_tz::TZ_VARIANTS[usize::from(zone) * 7 % chrono_tz::TZ_VARIANTS.len()];
    let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(raw) else {
        return;
    };
    let extra = ["format", "columns"];
    let Ok((q, others)) = TableQuery::from_pairs(pairs, &extra) else {
        return;
    };
    assert!((1..=500).contains(&q.limit));
    assert!(others.keys().all(|k| extra.contains(&k.as_str())));
    if let Some(range) = q.created.as_deref().and_then(values::DateRange::parse) {
        let (from, until) = range.text_bounds(zone);
        let (from_ms, until_ms) = range.ms_bounds(zone);
        assert_eq!(from.is_some(), from_ms.is_some());
        assert_eq!(until.is_some(), until_ms.is_some());
        if let (Some(a), Some(b)) = (range.from, range.to) {
            if a <= b {
                assert!(from_ms <= until_ms, "{range:?} in {zone}");
            }
        }
    }
    for (_, text) in &q.filters {
        let (from, to) = text.split_once("..").unwrap_or((text, text));
        for bound in [from, to] {
            if let Some(iso) = values::parse_date(bound) {
                assert_eq!(values::parse_date(&iso).as_deref(), Some(iso.as_str()));
            }
            let _ = bound.trim().replace(',', ".").parse::<f64>();
        }
        for country in ["RU", "US", "DE", "ZZ"] {
            if let Some(e164) = values::normalise_phone(text, country) {
                let digits = e164.strip_prefix('+').expect("E.164 starts with +");
                assert!(
                    digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()),
                    "{text:?} in {country} read as {e164:?}"
                );
            }
        }
        let _ = values::normalise_email(text);
    }
    if let Some(term) = &q.search {
        let _ = values::normalise_phone(term, "RU");
    }
});
