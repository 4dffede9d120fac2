//! The index behind the table's search box. On SQLite, an FTS5 `trigram` table holds one
//! row per card and text-like field (rowid = partner × 4096 + field) with the value as shown,
//! so a term found in few cards is looked up instead of scanned for, and field access still
//! applies (the query names the fields the viewer sees). On PostgreSQL a `pg_trgm` GIN
//! index per column serves ILIKE the same way.

use crate::form::{Field, FieldKind};
use crate::store::Arg;

/// Field ids below this are indexed (rowid = partner × SLOTS + field).
pub(crate) const SLOTS: i64 = 4096;

/// Above this many matches a term is common: walking the newest cards finds a page sooner
/// than collecting every match.
pub(crate) const COMMON: i64 = 2000;

/// Whether the field's values are in the index (list fields are searched by item names).
pub(crate) fn indexed(field: &Field) -> bool {
    !field.spec.kind.uses_list() && field.id < SLOTS
}

/// PostgreSQL's trigram index for field `id` of `kind`, if it gets one: on the column, or
/// on a number's text (what the search box matches, `CAST(f AS TEXT)`, an immutable cast).
pub(crate) fn trigram_index(id: i64, kind: FieldKind) -> Option<String> {
    let on = match kind {
        FieldKind::Text
        | FieldKind::LargeText
        | FieldKind::Phone
        | FieldKind::Email
        | FieldKind::Date => format!("f_{id}"),
        FieldKind::Number => format!("(CAST(f_{id} AS TEXT))"),
        _ => return None,
    };
    Some(format!(
        "CREATE INDEX IF NOT EXISTS partners_f_{id}_trgm ON partners USING gin ({on} gin_trgm_ops)"
    ))
}

/// The condition keeping index rows of `fields` (ids, so written into the SQL).
pub(crate) fn in_fields(fields: &[i64]) -> String {
    let list: Vec<String> = fields.iter().map(i64::to_string).collect();
    format!("rowid % {SLOTS} IN ({})", list.join(", "))
}

/// `term` as an FTS5 phrase.
pub(crate) fn phrase(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// Statements replacing the index rows of `partner` for `values` (field id, text shown).
pub(crate) fn reindex(
    partner: i64,
    values: &[(i64, Option<String>)],
) -> Vec<(&'static str, Vec<Arg>)> {
    let mut out = Vec::with_capacity(values.len() * 2);
    for (field, text) in values {
        let rowid = Arg::Int(Some(partner * SLOTS + field));
        out.push((
            "DELETE FROM partner_search WHERE rowid = $1",
            vec![rowid.clone()],
        ));
        if let Some(t) = text {
            out.push((
                "INSERT INTO partner_search (rowid, value) VALUES ($1, $2)",
                vec![rowid, Arg::Text(Some(t.clone()))],
            ));
        }
    }
    out
}

/// The statement removing every index row of `partner`.
pub(crate) fn forget(partner: i64) -> (&'static str, Vec<Arg>) {
    (
        "DELETE FROM partner_search WHERE rowid BETWEEN $1 AND $2",
        vec![
            Arg::Int(Some(partner * SLOTS)),
            Arg::Int(Some(partner * SLOTS + SLOTS - 1)),
        ],
    )
}

/// The statement removing every index row of field `field` (a scan: fields change rarely).
pub(crate) fn forget_field(field: i64) -> (&'static str, Vec<Arg>) {
    (
        "DELETE FROM partner_search WHERE rowid % $1 = $2",
        vec![Arg::Int(Some(SLOTS)), Arg::Int(Some(field))],
    )
}
