//! The partner table (SPEC 2.5): the viewer's in-table columns, a search term over them,
//! per-column filters, one sort column, keyset pages. Built as SQL with bound values; only
//! fields the viewer sees can be named, and list items "hidden by default" stay out until
//! a filter on their field asks for them.

use crate::access::Viewer;
use crate::form::{Field, FieldKind, Form};
use crate::partners::{field_error, hidden_items, text_columns};
use crate::search;
use crate::store::{over_budget, Arg};
use crate::values::{self, item_set};
use crate::{bind_args, on_budgeted_db, Store, StoreError};
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;
use std::collections::BTreeMap;

/// What the table is asked for.
#[derive(Debug, Clone, Default)]
pub struct TableQuery {
    pub search: Option<String>,
    /// (field latin name, filter text): list fields `a,b` (any of), dates, numbers
    /// `from..to` (either end open), other text fields a substring.
    pub filters: Vec<(String, String)>,
    /// A field's latin name, `-` first for descending; none: newest cards first.
    pub sort: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    pub limit: u32,
    /// Cards created in `from..to` (dates, both ends included, either open).
    pub created: Option<String>,
    /// Every field the viewer sees as a column, not only the table's (reports).
    pub every_field: bool,
}

impl TableQuery {
    /// The table's parameters from a query string's pairs: `q`, `filter.<latin>`, `sort`,
    /// `after`, `limit` (1-500, default 50), `created` (`from..to`, dates). Pairs named in `extra` are handed back by name;
    /// any other is refused, named.
    pub fn from_pairs(
        pairs: Vec<(String, String)>,
        extra: &[&str],
    ) -> Result<(TableQuery, BTreeMap<String, String>), StoreError> {
        let mut q = TableQuery {
            limit: 50,
            ..TableQuery::default()
        };
        let mut others = BTreeMap::new();
        for (k, v) in pairs {
            match k.as_str() {
                "q" => q.search = Some(v),
                "sort" => q.sort = Some(v),
                "after" => q.after = Some(v),
                "created" => q.created = Some(v),
                "limit" => {
                    q.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=500).contains(n))
                        .ok_or_else(|| crate::store::invalid("limit", "1 to 500"))?
                }
                other if extra.contains(&other) => {
                    others.insert(k, v);
                }
                other => match other.strip_prefix("filter.") {
                    Some(latin) => q.filters.push((latin.to_string(), v)),
                    None => return Err(crate::store::unknown_parameter(other)),
                },
            }
        }
        Ok((q, others))
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TablePage {
    /// The columns shown, in form order.
    pub columns: Vec<String>,
    pub rows: Vec<TableRow>,
    /// Pass as `after` for the next page; none on the last.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TableRow {
    pub id: i64,
    pub created_at: String,
    pub values: Map<String, Value>,
}

/// A SQL condition with its values, numbered as they are appended.
#[derive(Clone, Default)]
pub(crate) struct Where {
    pub sql: Vec<String>,
    pub args: Vec<Arg>,
}

impl Where {
    pub fn param(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }
}

/// Case-insensitive (any alphabet) substring match of `col` (text) against `term`:
/// ILIKE on PostgreSQL, a `(?i)` regular expression on SQLite, whose LIKE folds ASCII only.
pub(crate) fn contains(w: &mut Where, postgres: bool, col: &str, term: &str) -> String {
    if postgres {
        let escaped = term
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let p = w.param(Arg::Text(Some(format!("%{escaped}%"))));
        format!("{col} ILIKE {p} ESCAPE '\\'")
    } else {
        let p = w.param(Arg::Text(Some(format!("(?i){}", regex::escape(term)))));
        format!("{col} REGEXP {p}")
    }
}

/// Ids of `field`'s list items whose name contains `term` (any case).
fn items_matching(field: &Field, form: &Form, term: &str) -> Vec<i64> {
    let term = term.to_lowercase();
    form.list_of(field).map_or_else(Vec::new, |l| {
        l.items
            .iter()
            .filter(|i| i.name.to_lowercase().contains(&term))
            .map(|i| i.id)
            .collect()
    })
}

/// `col` holds one of `ids` (single or set-valued list fields).
fn holds_any(w: &mut Where, field: &Field, ids: &[i64]) -> String {
    let col = field.column();
    if ids.is_empty() {
        return "FALSE".into();
    }
    let parts: Vec<String> = ids
        .iter()
        .map(|id| {
            if field.spec.kind.is_multi() {
                let p = w.param(Arg::Text(Some(format!("%{}%", item_set(&[*id])))));
                format!("{col} LIKE {p}")
            } else {
                let p = w.param(Arg::Int(Some(*id)));
                format!("{col} = {p}")
            }
        })
        .collect();
    format!("({})", parts.join(" OR "))
}

/// A single-valued list field's item ids in the list's order (position, then id), reversed
/// for a descending sort; none for other fields.
fn list_order(field: &Field, form: &Form, descending: bool) -> Option<Vec<i64>> {
    if !matches!(field.spec.kind, FieldKind::List | FieldKind::Dropdown) {
        return None;
    }
    let mut items: Vec<i64> = form.list_of(field)?.items.iter().map(|i| i.id).collect();
    if descending {
        items.reverse();
    }
    Some(items)
}

/// The bound form of a filter or cursor value for `field`'s column.
fn column_arg(field: &Field, form: &Form, text: &str, country: &str) -> Result<Arg, String> {
    match field.spec.kind {
        FieldKind::Number => text
            .trim()
            .replace(',', ".")
            .parse::<f64>()
            .map(|n| Arg::Real(Some(n)))
            .map_err(|_| "must be a number".into()),
        FieldKind::Date => values::parse_date(text)
            .map(|d| Arg::Text(Some(d)))
            .ok_or_else(|| "must be a date".into()),
        FieldKind::List | FieldKind::Dropdown => text
            .parse::<i64>()
            .map(|n| Arg::Int(Some(n)))
            .map_err(|_| "bad cursor".into()),
        FieldKind::Phone => Ok(Arg::Text(Some(
            values::normalise_phone(text, country).unwrap_or_else(|| text.to_string()),
        ))),
        _ => {
            let _ = form;
            Ok(Arg::Text(Some(text.to_string())))
        }
    }
}

fn filter(
    w: &mut Where,
    postgres: bool,
    field: &Field,
    form: &Form,
    text: &str,
    country: &str,
) -> Result<String, StoreError> {
    let latin = &field.spec.latin;
    let col = field.column();
    match field.spec.kind {
        k if k.uses_list() => {
            let mut ids = Vec::new();
            for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let v = Value::String(name.to_string());
                match values::parse(field, form, &v, country) {
                    Ok(Arg::Int(Some(id))) => ids.push(id),
                    Ok(Arg::Text(Some(set))) => {
                        ids.extend(set.split(',').filter_map(|s| s.parse::<i64>().ok()))
                    }
                    _ => {
                        return Err(field_error(
                            latin,
                            &format!("\"{name}\" is not an item of the list"),
                        ))
                    }
                }
            }
            Ok(holds_any(w, field, &ids))
        }
        FieldKind::Number | FieldKind::Date => {
            let (from, to) = text.split_once("..").unwrap_or((text, text));
            let mut parts = Vec::new();
            for (bound, op) in [(from, ">="), (to, "<=")] {
                if bound.trim().is_empty() {
                    continue;
                }
                let arg =
                    column_arg(field, form, bound, country).map_err(|m| field_error(latin, &m))?;
                let p = w.param(arg);
                parts.push(format!("{col} {op} {p}"));
            }
            if parts.is_empty() {
                return Err(field_error(latin, "give from..to"));
            }
            Ok(format!("({})", parts.join(" AND ")))
        }
        FieldKind::Phone => {
            // Digits as typed match inside the stored E.164 number.
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            Ok(contains(w, postgres, &col, &digits))
        }
        _ => Ok(contains(w, postgres, &col, text.trim())),
    }
}

/// Cards whose `fields` hold `text`, as the trigram index finds them.
fn lookup(w: &mut Where, text: &str, fields: &[i64]) -> String {
    let p = w.param(Arg::Text(Some(search::phrase(text))));
    format!(
        "id IN (SELECT rowid / {} FROM partner_search WHERE partner_search MATCH {p} AND {})",
        search::SLOTS,
        search::in_fields(fields)
    )
}

/// The columns the table shows `viewer` for `q`, in form order.
fn table_columns<'f>(viewer: &Viewer, form: &'f Form, q: &TableQuery) -> Vec<&'f Field> {
    viewer
        .visible(form)
        .filter(|f| f.spec.in_table || q.every_field)
        .collect()
}

/// A card as read for a page: the sort column's value as text, the columns' as stored.
struct Found {
    id: i64,
    created_at: String,
    sort_key: Option<String>,
    values: Vec<Option<String>>,
}

/// `col` (RFC 3339 text, UTC) within `range`, read as a [`values::DateRange`] of days in
/// `zone`; `field` names the parameter when it is not one.
pub(crate) fn instant_between(
    w: &mut Where,
    col: &str,
    field: &'static str,
    range: &str,
    zone: chrono_tz::Tz,
) -> Result<String, StoreError> {
    let range = values::DateRange::parse(range).ok_or_else(|| {
        crate::store::invalid(field, "from..to, dates (YYYY-MM-DD or DD.MM.YYYY)")
    })?;
    let (from, until) = range.text_bounds(zone);
    let mut parts = Vec::new();
    if let Some(from) = from {
        parts.push(format!("{col} >= {}", w.param(Arg::Text(Some(from)))));
    }
    if let Some(until) = until {
        parts.push(format!("{col} < {}", w.param(Arg::Text(Some(until)))));
    }
    Ok(format!("({})", parts.join(" AND ")))
}

/// A page cursor: the sort column's value as text (none: NULL) and the row id.
fn encode_cursor(value: Option<&str>, id: i64) -> String {
    let json = serde_json::json!([value, id]).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_cursor(s: &str) -> Option<(Option<String>, i64)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Store {
    /// Every row (up to `max`) the table shows for `query`, from its first page on.
    pub async fn whole_table(
        &self,
        viewer: &Viewer,
        form: &Form,
        query: &TableQuery,
        max: usize,
    ) -> Result<TablePage, StoreError> {
        let mut q = query.clone();
        q.limit = 500;
        q.after = None;
        let mut whole = self.partner_table(viewer, form, &q).await?;
        while let Some(next) = whole.next.take().filter(|_| whole.rows.len() < max) {
            q.after = Some(next);
            let page = self.partner_table(viewer, form, &q).await?;
            whole.rows.extend(page.rows);
            whole.next = page.next;
        }
        whole.rows.truncate(max);
        whole.next = None;
        Ok(whole)
    }

    /// How many index rows of `fields` hold `text`, counted up to [`search::COMMON`].
    async fn search_hits(&self, text: &str, fields: &[i64]) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM partner_search WHERE partner_search MATCH $1 AND {} LIMIT {})",
            search::in_fields(fields),
            search::COMMON
        );
        let budget = over_budget(self.search_budget);
        Ok(on_budgeted_db!(self, conn => {
            sqlx::query_scalar(&sql)
                .bind(search::phrase(text))
                .fetch_one(conn)
                .await
                .map_err(&budget)?
        }))
    }

    /// The rarest of `pieces` in `fields` of the index, if it is rare (SQLite only).
    async fn rarest(&self, pieces: &[&str], fields: &[i64]) -> Result<Option<String>, StoreError> {
        if self.is_postgres() || fields.is_empty() {
            return Ok(None);
        }
        let mut best: Option<(i64, &str)> = None;
        // FTS5 reads its query as a C string: a NUL would cut the phrase short (an error).
        for piece in pieces
            .iter()
            .filter(|p| p.chars().count() >= 3 && !p.contains('\0'))
        {
            let hits = self.search_hits(piece, fields).await?;
            if hits < best.map_or(search::COMMON, |(h, _)| h) {
                best = Some((hits, piece));
            }
        }
        Ok(best.map(|(_, p)| p.to_string()))
    }

    /// The search box's condition: `term` inside any of `columns` as shown (phones by
    /// digits, lists by item names). On SQLite, where some word of the term (or the whole
    /// term) is rare in the trigram index, the cards holding it are looked up there and
    /// only they are checked for the whole term; otherwise every card is checked while the
    /// table walks them in order, which fills a page soon when the term is common.
    async fn search_condition(
        &self,
        w: &mut Where,
        columns: &[&Field],
        form: &Form,
        term: &str,
    ) -> Result<String, StoreError> {
        let postgres = self.is_postgres();
        // Digits search phones only when the term is a phone number as people type it.
        let digits: String = term.chars().filter(char::is_ascii_digit).collect();
        let phone_like = !digits.is_empty()
            && term
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c));
        // Numbers and dates hold nothing but digits and separators.
        let numeric = !digits.is_empty()
            && term
                .chars()
                .all(|c| c.is_ascii_digit() || " .,-:/+".contains(c));
        let (phones, texts): (Vec<&Field>, Vec<&Field>) = columns
            .iter()
            .copied()
            .filter(|f| !f.spec.kind.uses_list())
            .filter(|f| match f.spec.kind {
                FieldKind::Phone => phone_like,
                FieldKind::Number | FieldKind::Date => numeric,
                _ => true,
            })
            .partition(|f| f.spec.kind == FieldKind::Phone);
        let ids = |fields: &[&Field]| -> Option<Vec<i64>> {
            fields
                .iter()
                .map(|f| search::indexed(f).then_some(f.id))
                .collect()
        };
        let (text_ids, phone_ids) = (ids(&texts), ids(&phones));
        // The words of the term are cheap to count (a common one stops early); the whole
        // term, when it has several, costs the intersection of all its trigrams.
        let words: Vec<&str> = term.split_whitespace().collect();
        let text_piece = match &text_ids {
            Some(ids) if !texts.is_empty() => match self.rarest(&words, ids).await? {
                None if words.len() > 1 => self.rarest(&[term], ids).await?,
                found => found,
            },
            _ => None,
        };
        let phone_found = match &phone_ids {
            Some(ids) if !phones.is_empty() => self.rarest(&[&digits], ids).await?.is_some(),
            _ => false,
        };
        let looked_up = (texts.is_empty() || text_piece.is_some())
            && (phones.is_empty() || phone_found)
            && !(texts.is_empty() && phones.is_empty());

        let mut any = Vec::new();
        for f in columns.iter().filter(|f| f.spec.kind.uses_list()) {
            let items = items_matching(f, form, term);
            if !items.is_empty() {
                any.push(holds_any(w, f, &items));
            }
        }
        let matches = |w: &mut Where, fields: &[&Field], text: &str| -> Vec<String> {
            fields
                .iter()
                .map(|f| match f.spec.kind {
                    // As PostgreSQL's trigram index on a number has it.
                    FieldKind::Number => {
                        contains(w, postgres, &format!("CAST({} AS TEXT)", f.column()), text)
                    }
                    _ => contains(w, postgres, &f.column(), text),
                })
                .collect()
        };
        if looked_up {
            if let (Some(piece), Some(ids)) = (&text_piece, &text_ids) {
                let found = lookup(w, piece, ids);
                if piece == term {
                    any.push(found);
                } else {
                    let whole = matches(w, &texts, term);
                    any.push(format!("({found} AND ({}))", whole.join(" OR ")));
                }
            }
            if let (true, Some(ids)) = (phone_found, &phone_ids) {
                any.push(lookup(w, &digits, ids));
            }
        } else {
            any.extend(matches(w, &texts, term));
            any.extend(matches(w, &phones, &digits));
        }
        Ok(if any.is_empty() {
            "FALSE".into()
        } else {
            format!("({})", any.join(" OR "))
        })
    }

    /// The conditions of the table's rows for `q` (search over `columns`, the creation
    /// period, filters, list items hidden by default), every named field checked.
    async fn conditions(
        &self,
        viewer: &Viewer,
        form: &Form,
        q: &TableQuery,
        columns: &[&Field],
    ) -> Result<Where, StoreError> {
        let postgres = self.is_postgres();
        let mut w = Where::default();
        if let Some(term) = q.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let cond = self.search_condition(&mut w, columns, form, term).await?;
            w.sql.push(cond);
        }
        if let Some(range) = &q.created {
            let cond = instant_between(&mut w, "created_at", "created", range, self.time_zone)?;
            w.sql.push(cond);
        }
        let mut filtered = Vec::new();
        for (latin, text) in &q.filters {
            let field = viewer
                .field(form, latin)
                .ok_or_else(|| field_error(latin, "no such field"))?;
            let cond = filter(&mut w, postgres, field, form, text, &self.country)?;
            w.sql.push(cond);
            filtered.push(field.id);
        }
        for f in viewer.visible(form) {
            let hidden = hidden_items(f, form);
            if hidden.is_empty() || filtered.contains(&f.id) {
                continue;
            }
            let cond = holds_any(&mut w, f, &hidden);
            w.sql.push(format!("NOT COALESCE({cond}, FALSE)"));
        }
        Ok(w)
    }

    /// How many partners the table holds for `q`, counted up to `cap`.
    pub async fn table_count(
        &self,
        viewer: &Viewer,
        form: &Form,
        q: &TableQuery,
        cap: usize,
    ) -> Result<usize, StoreError> {
        let columns = table_columns(viewer, form, q);
        let w = self.conditions(viewer, form, q, &columns).await?;
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM partners{} LIMIT {cap}) AS t",
            if w.sql.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", w.sql.join(" AND "))
            },
        );
        let budget = over_budget(self.search_budget);
        let n: i64 = on_budgeted_db!(self, conn => {
            bind_args!(sqlx::query_scalar(&sql), &w.args)
                .fetch_one(conn)
                .await
                .map_err(&budget)?
        });
        Ok(n as usize)
    }

    pub async fn partner_table(
        &self,
        viewer: &Viewer,
        form: &Form,
        q: &TableQuery,
    ) -> Result<TablePage, StoreError> {
        let postgres = self.is_postgres();
        let columns = table_columns(viewer, form, q);
        let w = self.conditions(viewer, form, q, &columns).await?;
        // Sort: a visible field (NULLs last) then id, or newest first.
        let (sort, descending) = match q.sort.as_deref() {
            Some(s) => {
                let (latin, desc) = match s.strip_prefix('-') {
                    Some(l) => (l, true),
                    None => (s, false),
                };
                let f = viewer
                    .field(form, latin)
                    .ok_or_else(|| field_error(latin, "no such field to sort by"))?;
                (Some(f), desc)
            }
            None => (None, true),
        };
        let (cmp, dir) = if descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let limit = q.limit.clamp(1, 500) as usize;
        let cursor =
            match &q.after {
                Some(after) => Some(decode_cursor(after).ok_or_else(|| {
                    crate::store::invalid("after", "not a cursor from this table")
                })?),
                None => None,
            };
        let cols = text_columns(columns.iter().copied());
        // Sorted by a column, the cards holding a value come first (walking the column's
        // index), then those without one by id: two plain orders an index serves, where one
        // "NULLs last" order would sort every matching card.
        let mut phases: Vec<(Where, String)> = Vec::new();
        match (sort, cursor) {
            (None, cursor) => {
                let mut w = w;
                if let Some((_, id)) = cursor {
                    let idp = w.param(Arg::Int(Some(id)));
                    w.sql.push(format!("id {cmp} {idp}"));
                }
                phases.push((w, format!("id {dir}")));
            }
            (Some(f), cursor) => {
                let col = f.column();
                let bad_cursor = || crate::store::invalid("after", "not a cursor from this table");
                if let Some(items) = list_order(f, form, descending) {
                    // The list's own order: each item's cards by id (an index range), from
                    // the cursor's item on.
                    let from = match &cursor {
                        Some((Some(v), _)) => items
                            .iter()
                            .position(|i| i.to_string() == *v)
                            .ok_or_else(bad_cursor)?,
                        Some((None, _)) => items.len(),
                        None => 0,
                    };
                    for (n, item) in items[from..].iter().enumerate() {
                        let mut one = w.clone();
                        let p = one.param(Arg::Int(Some(*item)));
                        one.sql.push(format!("{col} = {p}"));
                        if let (0, Some((Some(_), id))) = (n, &cursor) {
                            let idp = one.param(Arg::Int(Some(*id)));
                            one.sql.push(format!("id {cmp} {idp}"));
                        }
                        phases.push((one, format!("id {dir}")));
                    }
                } else {
                    let by_value = format!("{col} {dir}, id {dir}");
                    let mut values = w.clone();
                    match &cursor {
                        Some((None, _)) => {}
                        Some((Some(v), id)) => {
                            let arg =
                                column_arg(f, form, v, &self.country).map_err(|_| bad_cursor())?;
                            let vp = values.param(arg);
                            let idp = values.param(Arg::Int(Some(*id)));
                            values.sql.push(format!(
                                "({col} {cmp} {vp} OR ({col} = {vp} AND id {cmp} {idp}))"
                            ));
                            phases.push((values, by_value));
                        }
                        None => {
                            values.sql.push(format!("{col} IS NOT NULL"));
                            phases.push((values, by_value));
                        }
                    }
                }
                let mut nulls = w;
                nulls.sql.push(format!("{col} IS NULL"));
                if let Some((None, id)) = cursor {
                    let idp = nulls.param(Arg::Int(Some(id)));
                    nulls.sql.push(format!("id {cmp} {idp}"));
                }
                phases.push((nulls, format!("id {dir}")));
            }
        }
        // The cursor carries the sort value as text; it must read back as the same value.
        // SQLite prints a REAL with 15 digits, which a 16- or 17-digit number does not
        // survive (PostgreSQL prints the shortest exact form).
        let sort_key = match sort {
            Some(f) if f.spec.kind == FieldKind::Number && !postgres => {
                // (printf reads NULL as 0: the empty stay NULL.)
                format!(
                    "CASE WHEN {c} IS NULL THEN NULL ELSE printf('%!.17g', {c}) END",
                    c = f.column()
                )
            }
            Some(f) => format!("CAST({} AS TEXT)", f.column()),
            None => "NULL".into(),
        };
        let mut rows = Vec::new();
        for (w, order) in phases {
            let wanted = limit + 1 - rows.len();
            if wanted == 0 {
                break;
            }
            let sql = format!(
                "SELECT id, created_at, {sort_key} AS sort_key{cols} FROM partners{} ORDER BY {order} LIMIT {wanted}",
                if w.sql.is_empty() {
                    String::new()
                } else {
                    format!(" WHERE {}", w.sql.join(" AND "))
                },
            );
            let budget = over_budget(self.search_budget);
            let found: Vec<Found> = on_budgeted_db!(self, conn => {
                bind_args!(sqlx::query(&sql), &w.args)
                    .fetch_all(conn)
                    .await
                    .map_err(&budget)?
                    .iter()
                    .map(|r| Found {
                        id: r.get(0),
                        created_at: r.get(1),
                        sort_key: r.get(2),
                        values: (0..columns.len()).map(|i| r.get(i + 3)).collect(),
                    })
                    .collect()
            });
            rows.extend(found);
        }
        let next = (rows.len() > limit).then(|| {
            rows.truncate(limit);
            let last = rows.last().expect("a full page");
            encode_cursor(last.sort_key.as_deref(), last.id)
        });
        Ok(TablePage {
            columns: columns.iter().map(|f| f.spec.latin.clone()).collect(),
            rows: rows
                .into_iter()
                .map(
                    |Found {
                         id,
                         created_at,
                         values,
                         ..
                     }| TableRow {
                        id,
                        created_at,
                        values: columns
                            .iter()
                            .zip(values)
                            .map(|(f, v)| {
                                (f.spec.latin.clone(), values::render(f, form, v.as_deref()))
                            })
                            .collect(),
                    },
                )
                .collect(),
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::tests::store_with_partners;

    /// A search past its time budget stops with a clear error, and the connection it ran
    /// on serves the next search in full (the budget ended with the search).
    #[tokio::test]
    async fn a_search_past_its_budget_is_stopped_and_the_pool_unharmed() {
        let titles: Vec<String> = (0..2_000).map(|i| format!("Партнёр {i}")).collect();
        let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
        let (mut store, viewer, form) = store_with_partners("search-budget", &titles).await;
        let q = TableQuery {
            filters: vec![("title".into(), "ёр 19".into())],
            limit: 500,
            ..TableQuery::default()
        };
        store.search_budget = std::time::Duration::ZERO;
        for _ in 0..8 {
            match store.partner_table(&viewer, &form, &q).await {
                Err(StoreError::TooCostly(_)) => {}
                other => panic!("a search without budget ran: {other:?}"),
            }
        }
        store.search_budget = crate::store::SEARCH_BUDGET;
        for _ in 0..8 {
            let page = store.partner_table(&viewer, &form, &q).await.unwrap();
            assert_eq!(page.rows.len(), 111, "19, 190-199, 1900-1999");
        }
    }
}
