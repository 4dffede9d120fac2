//! Card values between the API (JSON) and their columns: validation and normalisation on
//! the way in (SPEC 2.3: required, number, date, e-mail, phone to E.164, list membership),
//! rendering on the way out. Columns are read back as text (`CAST(f_N AS TEXT)`), so one
//! reader serves every type and both backends.

use crate::form::{Field, FieldKind, Form};
use crate::store::Arg;
use chrono::TimeZone;
use chrono_tz::Tz;
use serde_json::Value;

/// The longest text a one-line field keeps, and a large text.
const MAX_TEXT: usize = 1_000;
const MAX_LARGE_TEXT: usize = 100_000;

/// Turns an API value into what `field`'s column stores; `Err` says why it does not fit.
/// `null` and `""` clear the value.
pub fn parse(field: &Field, form: &Form, value: &Value, country: &str) -> Result<Arg, String> {
    let kind = field.spec.kind;
    let empty = match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if empty {
        return Ok(match kind {
            FieldKind::Number => Arg::Real(None),
            FieldKind::List | FieldKind::Dropdown => Arg::Int(None),
            _ => Arg::Text(None),
        });
    }
    let text = || -> Result<String, String> {
        match value {
            Value::String(s) => Ok(s.trim().to_string()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err("must be a string".into()),
        }
    };
    match kind {
        FieldKind::Text | FieldKind::LargeText => {
            let s = text()?;
            let max = if kind == FieldKind::Text {
                MAX_TEXT
            } else {
                MAX_LARGE_TEXT
            };
            if s.chars().count() > max {
                return Err(format!("at most {max} characters"));
            }
            Ok(Arg::Text(Some(s)))
        }
        FieldKind::Number => {
            let n = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().replace(',', ".").replace(' ', "").parse().ok(),
                _ => None,
            };
            match n {
                Some(n) if n.is_finite() => Ok(Arg::Real(Some(n))),
                _ => Err("must be a number".into()),
            }
        }
        FieldKind::Date => parse_date(&text()?)
            .map(|d| Arg::Text(Some(d)))
            .ok_or_else(|| "must be a date (YYYY-MM-DD or DD.MM.YYYY)".into()),
        FieldKind::Email => {
            let s = text()?;
            normalise_email(&s)
                .map(|e| Arg::Text(Some(e)))
                .ok_or_else(|| "must be an e-mail address".into())
        }
        FieldKind::Phone => normalise_phone(&text()?, country)
            .map(|p| Arg::Text(Some(p)))
            .ok_or_else(|| "must be a phone number".into()),
        FieldKind::List | FieldKind::Dropdown => {
            let item = item_id(field, form, value)?;
            Ok(Arg::Int(Some(item)))
        }
        FieldKind::MultiSelect | FieldKind::Checkboxes => {
            // An array of items, or text listing them ("VIP, Опт": imports, exports).
            let listed: Vec<Value>;
            let wanted: Vec<&Value> = match value {
                Value::Array(a) => a.iter().collect(),
                Value::String(s) => {
                    listed = s
                        .split(',')
                        .map(|i| Value::String(i.trim().to_string()))
                        .collect();
                    listed.iter().collect()
                }
                v => vec![v],
            };
            let mut ids = wanted
                .into_iter()
                .map(|v| item_id(field, form, v))
                .collect::<Result<Vec<_>, _>>()?;
            ids.sort_unstable();
            ids.dedup();
            Ok(Arg::Text(Some(item_set(&ids))))
        }
    }
}

/// `,3,7,`: item ids a `LIKE '%,3,%'` finds.
pub fn item_set(ids: &[i64]) -> String {
    let mut s = String::from(",");
    for id in ids {
        s.push_str(&id.to_string());
        s.push(',');
    }
    s
}

/// The id of the list item named (or numbered) by `value`.
fn item_id(field: &Field, form: &Form, value: &Value) -> Result<i64, String> {
    let list = form.list_of(field).ok_or("the field has no list")?;
    let found = match value {
        Value::String(s) => list.items.iter().find(|i| i.name == s.trim()),
        Value::Number(n) => list.items.iter().find(|i| Some(i.id) == n.as_i64()),
        _ => None,
    };
    found
        .map(|i| i.id)
        .ok_or_else(|| format!("not an item of the list \"{}\"", list.name))
}

/// A stored value (its column read as text) as the API shows it.
pub fn render(field: &Field, form: &Form, stored: Option<&str>) -> Value {
    let Some(s) = stored else {
        return if field.spec.kind.is_multi() {
            Value::Array(Vec::new())
        } else {
            Value::Null
        };
    };
    let item_name = |id: i64| {
        form.list_of(field)
            .and_then(|l| l.items.iter().find(|i| i.id == id))
            .map(|i| Value::String(i.name.clone()))
    };
    match field.spec.kind {
        FieldKind::Number => s
            .parse::<f64>()
            .ok()
            .and_then(|n| {
                if n.fract() == 0.0 && n.abs() < 9e15 {
                    Some(Value::from(n as i64))
                } else {
                    serde_json::Number::from_f64(n).map(Value::Number)
                }
            })
            .unwrap_or(Value::Null),
        FieldKind::List | FieldKind::Dropdown => s
            .parse::<i64>()
            .ok()
            .and_then(item_name)
            .unwrap_or(Value::Null),
        FieldKind::MultiSelect | FieldKind::Checkboxes => Value::Array(
            s.split(',')
                .filter_map(|id| id.parse::<i64>().ok())
                .filter_map(item_name)
                .collect(),
        ),
        _ => Value::String(s.to_string()),
    }
}

/// Plain text of a stored value, for history and the search index.
pub fn display(field: &Field, form: &Form, stored: Option<&str>) -> Option<String> {
    plain(&render(field, form, stored))
}

/// A duration as a report cell: `{"duration_ms": n}`, so JSON keeps the exact figure, a
/// sheet gets a time value (`[h]:mm:ss`) and text reads `H:MM:SS`.
pub fn duration_cell(ms: u64) -> Value {
    serde_json::json!({ "duration_ms": ms })
}

/// The milliseconds of a [`duration_cell`].
pub fn duration_of(value: &Value) -> Option<u64> {
    value.as_object()?.get("duration_ms")?.as_u64()
}

/// `H:MM:SS`, hours unbounded.
pub fn hms(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// An API value as plain text: item lists joined with ", ", durations `H:MM:SS`, nothing
/// for null.
pub fn plain(value: &Value) -> Option<String> {
    if let Some(ms) = duration_of(value) {
        return Some(hms(ms));
    }
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => Some(a.iter().filter_map(plain).collect::<Vec<_>>().join(", ")),
        v => Some(v.to_string()),
    }
}

/// An [`Arg`] as the text its column reads back as.
pub fn stored_text(arg: &Arg) -> Option<String> {
    match arg {
        Arg::Int(v) => v.map(|v| v.to_string()),
        Arg::Real(v) => v.map(|v| v.to_string()),
        Arg::Text(v) => v.clone(),
        Arg::Bool(b) => Some(b.to_string()),
    }
}

/// A period of whole days, `from..to` with both ends included and either open; a single
/// date is that day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DateRange {
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
}

impl DateRange {
    /// Reads `from..to` (dates as [`parse_date`] takes them); none for nonsense or `..`.
    pub fn parse(text: &str) -> Option<DateRange> {
        let (from, to) = text.split_once("..").unwrap_or((text, text));
        let day = |s: &str| -> Option<Option<chrono::NaiveDate>> {
            if s.trim().is_empty() {
                return Some(None);
            }
            let iso = parse_date(s)?;
            chrono::NaiveDate::parse_from_str(&iso, "%Y-%m-%d")
                .ok()
                .map(Some)
        };
        let range = DateRange {
            from: day(from)?,
            to: day(to)?,
        };
        (range.from.is_some() || range.to.is_some()).then_some(range)
    }

    /// The first instant in the period and the first after it: midnights in `zone`, as
    /// UTC `YYYY-MM-DDTHH:MM:SS` prefixes comparing as text with stored RFC 3339 (UTC)
    /// timestamps.
    pub fn text_bounds(&self, zone: Tz) -> (Option<String>, Option<String>) {
        let text = |d| midnight(d, zone).format("%Y-%m-%dT%H:%M:%S").to_string();
        (self.from.map(text), self.after().map(text))
    }

    /// The same bounds in milliseconds since the epoch.
    pub fn ms_bounds(&self, zone: Tz) -> (Option<i64>, Option<i64>) {
        let ms = |d| midnight(d, zone).timestamp_millis();
        (self.from.map(ms), self.after().map(ms))
    }

    /// The day after the period.
    fn after(&self) -> Option<chrono::NaiveDate> {
        self.to.and_then(|d| d.succ_opt())
    }
}

/// The date an instant falls on in `zone`.
pub fn local_date(at_ms: u64, zone: Tz) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(at_ms as i64)
        .unwrap_or_default()
        .with_timezone(&zone)
        .date_naive()
}

/// When day `date` begins in `zone` (the first instant that exists, across a DST gap), in UTC.
pub fn midnight(date: chrono::NaiveDate, zone: Tz) -> chrono::DateTime<chrono::Utc> {
    let local = date.and_time(chrono::NaiveTime::MIN);
    zone.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(local + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| local.and_utc())
}

/// A stored RFC 3339 timestamp as `YYYY-MM-DD HH:MM` in `zone`, as reports show it.
pub fn local_minute(rfc3339: &str, zone: Tz) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// ISO `YYYY-MM-DD` from that form or Russian `DD.MM.YYYY`.
pub fn parse_date(s: &str) -> Option<String> {
    let s = s.trim();
    let date = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| chrono::NaiveDate::parse_from_str(s, "%d.%m.%Y"))
        .ok()?;
    Some(date.format("%Y-%m-%d").to_string())
}

/// The address with its domain in lower case, when it looks like one.
pub fn normalise_email(s: &str) -> Option<String> {
    let s = s.trim();
    let (local, domain) = s.rsplit_once('@')?;
    let ok = !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && !s.chars().any(|c| c.is_whitespace() || c == ',' || c == ';')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    ok.then(|| format!("{local}@{}", domain.to_lowercase()))
}

/// E.164 (`+74951234567`) from any way people write a number; national numbers are read
/// in `country` (ISO 3166 code, e.g. "RU").
///
/// `phonenumber` decides first. It strips a leading national prefix even after a country
/// code, so it calls St. Petersburg's +7 812 … invalid (812 starts with Russia's prefix 8);
/// then the number is taken as written: `+`/`00` and 8–15 digits with a known country code,
/// or a national number (less its national prefix) under `country`'s code.
pub fn normalise_phone(s: &str, country: &str) -> Option<String> {
    let s = s.trim();
    if s.chars().any(|c| c.is_alphabetic()) {
        return None;
    }
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 3 {
        return None;
    }
    let region = country.parse::<phonenumber::country::Id>().ok();
    if let Ok(n) = phonenumber::parse(region, s) {
        if phonenumber::is_valid(&n) {
            let e164 = n.format().mode(phonenumber::Mode::E164).to_string();
            // E.164 is at most 15 digits; phonenumber calls some longer German numbers valid.
            if e164.len() <= 16 {
                return Some(e164);
            }
        }
    }
    let international = if s.starts_with('+') {
        Some(digits.as_str())
    } else {
        digits.strip_prefix("00")
    };
    let e164 = match international {
        Some(d) => {
            phonenumber::parse(None, format!("+{d}")).ok()?;
            d.to_string()
        }
        None => {
            let meta = phonenumber::metadata::DATABASE.by_id(country)?;
            let national = meta
                .national_prefix()
                .and_then(|p| digits.strip_prefix(p))
                .unwrap_or(&digits);
            format!("{}{national}", meta.country_code())
        }
    };
    (8..=15).contains(&e164.len()).then(|| format!("+{e164}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn periods_are_days_of_the_configured_zone() {
        let period = DateRange::parse("24.11.2026..2026-11-24").unwrap();
        assert_eq!(
            period.text_bounds(chrono_tz::Europe::Moscow),
            (
                Some("2026-11-23T21:00:00".into()),
                Some("2026-11-24T21:00:00".into())
            )
        );
        // Summer time: Berlin's July days begin at 22:00 UTC.
        let july = DateRange::parse("2026-07-01..").unwrap();
        assert_eq!(
            july.ms_bounds(chrono_tz::Europe::Berlin).0,
            Some(1_782_856_800_000)
        );
        assert_eq!(july.ms_bounds(chrono_tz::Europe::Berlin).1, None);
        assert!(DateRange::parse("..").is_none());
        assert!(DateRange::parse("вчера").is_none());
        assert_eq!(
            local_minute("2026-11-23T21:30:05.123+00:00", chrono_tz::Europe::Moscow),
            "2026-11-24 00:30"
        );
    }

    use super::*;

    #[test]
    fn phones_become_e164_in_the_default_country() {
        for written in [
            "8 (495) 123-45-67",
            "+7 495 123 45 67",
            "84951234567",
            "7-495-123-45-67",
        ] {
            assert_eq!(
                normalise_phone(written, "RU").as_deref(),
                Some("+74951234567"),
                "{written}"
            );
        }
        assert_eq!(
            normalise_phone("(202) 555-0143", "US").as_deref(),
            Some("+12025550143")
        );
        assert_eq!(
            normalise_phone("+7 (812) 312-45-67", "RU").as_deref(),
            Some("+78123124567")
        );
        assert_eq!(
            normalise_phone("8 (812) 312-45-67", "RU").as_deref(),
            Some("+78123124567")
        );
        assert_eq!(normalise_phone("12", "RU"), None);
        assert_eq!(normalise_phone("not a phone", "RU"), None);
    }

    #[test]
    fn emails_and_dates_are_checked_and_normalised() {
        assert_eq!(
            normalise_email(" Ivan.Petrov@Example.RU ").as_deref(),
            Some("Ivan.Petrov@example.ru")
        );
        for bad in [
            "ivan",
            "ivan@",
            "@example.ru",
            "ivan@example",
            "a b@example.ru",
            "a@b..ru",
        ] {
            assert_eq!(normalise_email(bad), None, "{bad}");
        }
        assert_eq!(parse_date("24.11.2026").as_deref(), Some("2026-11-24"));
        assert_eq!(parse_date("2026-02-30"), None);
    }
}
