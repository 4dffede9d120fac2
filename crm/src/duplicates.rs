//! Duplicates (SPEC 2.8): partners sharing a phone, an e-mail or any other field the viewer
//! sees (a tax id), and merging them: the survivor takes the chosen values, the others'
//! history, calls, files, events and tasks move to it, and they are removed — in one
//! transaction.

use crate::access::{Access, Viewer};
use crate::form::{Field, FieldKind, Form};
use crate::partners::field_error;
use crate::store::{invalid, Arg};
use crate::values::display;
use crate::{on_db, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Partners sharing one value.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct DuplicateGroup {
    pub field: String,
    pub value: Value,
    pub partners: Vec<i64>,
}

/// A merge as asked: who survives, who goes, which values the survivor ends with.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Merge {
    pub survivor: i64,
    pub merged: Vec<i64>,
    #[serde(default)]
    pub values: Map<String, Value>,
}

/// At most this many groups per answer.
const MAX_GROUPS: usize = 500;

/// A statement of a merge's transaction with its values.
type Statement = (String, Vec<Arg>);

impl Store {
    /// What the survivor of `merge` keeps of the merged cards (see
    /// [`Store::merge_partners`]): the statements filling its empty fields from them, with
    /// their history and search rows, and history lines for the values not kept.
    async fn values_kept(
        &self,
        viewer: &Viewer,
        form: &Form,
        merge: &Merge,
    ) -> Result<Vec<Statement>, StoreError> {
        let fields: Vec<&Field> = form
            .fields
            .iter()
            .filter(|f| !merge.values.contains_key(&f.spec.latin))
            .collect();
        let fields = &fields;
        let stored = |id: i64| async move {
            let (_, _, values) = self
                .stored_values(id, fields)
                .await?
                .ok_or(StoreError::NotFound)?;
            let values: Vec<Option<String>> = values
                .into_iter()
                .map(|v| v.filter(|t| !t.is_empty()))
                .collect();
            Ok::<_, StoreError>(values)
        };
        let mut held = stored(merge.survivor).await?;
        let now = chrono::Utc::now().to_rfc3339();
        let text = |s: Option<String>| Arg::Text(s);
        let line = |f: &Field,
                    action: &str,
                    old: Option<String>,
                    new: Option<String>|
         -> Statement {
            (
                "INSERT INTO partner_history (partner_id, at, user_id, user_name, field_id, action, old_value, new_value) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)".into(),
                vec![
                    Arg::Int(Some(merge.survivor)),
                    text(Some(now.clone())),
                    Arg::Int(Some(viewer.user.id)),
                    text(Some(viewer.user.name.clone())),
                    Arg::Int(Some(f.id)),
                    text(Some(action.into())),
                    text(display(f, form, old.as_deref())),
                    text(display(f, form, new.as_deref())),
                ],
            )
        };
        let mut out = Vec::new();
        for id in &merge.merged {
            for (i, theirs) in stored(*id).await?.into_iter().enumerate() {
                let (f, Some(theirs)) = (fields[i], theirs) else {
                    continue;
                };
                match &held[i] {
                    None => {
                        let col = f.column();
                        out.push((
                            format!("UPDATE partners SET {col} = (SELECT {col} FROM partners WHERE id = $2) WHERE id = $1"),
                            vec![Arg::Int(Some(merge.survivor)), Arg::Int(Some(*id))],
                        ));
                        out.push(line(f, "changed", None, Some(theirs.clone())));
                        if !self.is_postgres() && crate::search::indexed(f) {
                            let shown = display(f, form, Some(&theirs));
                            for (sql, args) in
                                crate::search::reindex(merge.survivor, &[(f.id, shown)])
                            {
                                out.push((sql.into(), args));
                            }
                        }
                        held[i] = Some(theirs);
                    }
                    Some(mine)
                        if display(f, form, Some(mine)) != display(f, form, Some(&theirs)) =>
                    {
                        out.push(line(f, "merged", Some(theirs), Some(mine.clone())));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(out)
    }

    /// Groups of partners sharing a value of `field` (latin name), or, with none, of any
    /// phone or e-mail field the viewer sees.
    pub async fn duplicates(
        &self,
        viewer: &Viewer,
        form: &Form,
        field: Option<&str>,
    ) -> Result<Vec<DuplicateGroup>, StoreError> {
        let fields: Vec<&Field> = match field {
            Some(latin) => vec![viewer
                .field(form, latin)
                .ok_or_else(|| field_error(latin, "no such field"))?],
            None => viewer
                .visible(form)
                .filter(|f| matches!(f.spec.kind, FieldKind::Phone | FieldKind::Email))
                .collect(),
        };
        let mut groups: Vec<DuplicateGroup> = Vec::new();
        for f in fields {
            // E-mail addresses match whatever their case.
            let key = if f.spec.kind == FieldKind::Email {
                format!("LOWER({})", f.column())
            } else {
                f.column()
            };
            let sql = format!(
                "SELECT CAST({key} AS TEXT), id FROM partners WHERE {key} IN \
                 (SELECT {key} FROM partners WHERE {c} IS NOT NULL GROUP BY {key} HAVING COUNT(*) > 1) \
                 ORDER BY 1, id",
                c = f.column()
            );
            let rows: Vec<(String, i64)> = on_db!(self, pool => {
                sqlx::query_as(&sql).fetch_all(pool).await?
            });
            let mut current: Option<String> = None;
            for (value, id) in rows {
                if current.as_deref() == Some(value.as_str()) {
                    if let Some(g) = groups.last_mut() {
                        g.partners.push(id);
                    }
                    continue;
                }
                if groups.len() == MAX_GROUPS {
                    return Ok(groups);
                }
                groups.push(DuplicateGroup {
                    field: f.spec.latin.clone(),
                    value: crate::values::render(f, form, Some(&value)),
                    partners: vec![id],
                });
                current = Some(value);
            }
        }
        Ok(groups)
    }

    /// Merges partners into `survivor` (the "contacts" right; `values` must be fields the
    /// viewer may edit). Every other field keeps the survivor's value or, where it has
    /// none, takes the first one the merged cards hold (in the order of `merged`): fields
    /// hidden from the merger too, whose values they could neither see nor choose, so no
    /// value is dropped unseen. Where both hold different values the survivor's stays and
    /// the other is kept in the survivor's history (a `merged` line on that field, shown
    /// to those who see it). Returns the survivor as the viewer sees it.
    pub async fn merge_partners(
        &self,
        viewer: &Viewer,
        form: &Form,
        merge: &Merge,
    ) -> Result<crate::partners::Partner, StoreError> {
        if !viewer.works_with_contacts() {
            return Err(StoreError::Forbidden(
                "merging partners needs the contacts right".into(),
            ));
        }
        if merge.merged.is_empty() || merge.merged.contains(&merge.survivor) {
            return Err(invalid(
                "merged",
                "one or more partners other than the survivor",
            ));
        }
        for id in std::iter::once(&merge.survivor).chain(&merge.merged) {
            self.partner_exists(*id).await?;
        }
        for latin in merge.values.keys() {
            match viewer.field(form, latin) {
                Some(f) if viewer.access(f) == Access::Edit => {}
                _ => return Err(field_error(latin, "you may not change this field")),
            }
        }
        self.update_partner(viewer, form, merge.survivor, &merge.values)
            .await?;
        let keep = self.values_kept(viewer, form, merge).await?;
        let ids = merge
            .merged
            .iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let now = chrono::Utc::now().to_rfc3339();
        let postgres = self.is_postgres();
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            // Before the merged cards go: the values the survivor takes from them.
            for (sql, args) in &keep {
                crate::bind_args!(sqlx::query(sql), args).execute(&mut *tx).await?;
            }
            for id in &merge.merged {
                for table in ["partner_history", "partner_calls", "partner_files", "events"] {
                    sqlx::query(&format!("UPDATE {table} SET partner_id = $1 WHERE partner_id = $2"))
                        .bind(merge.survivor)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                // A task may list both: it keeps the survivor once.
                sqlx::query("INSERT INTO task_partners (task_id, partner_id) SELECT task_id, $1 FROM task_partners WHERE partner_id = $2 ON CONFLICT DO NOTHING")
                    .bind(merge.survivor)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM partners WHERE id = $1").bind(id).execute(&mut *tx).await?;
                if !postgres {
                    let (sql, args) = crate::search::forget(*id);
                    crate::bind_args!(sqlx::query(sql), &args).execute(&mut *tx).await?;
                }
            }
            sqlx::query("INSERT INTO partner_history (partner_id, at, user_id, user_name, action, new_value) VALUES ($1, $2, $3, $4, 'merged', $5)")
                .bind(merge.survivor)
                .bind(&now)
                .bind(viewer.user.id)
                .bind(&viewer.user.name)
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        self.partner(viewer, form, merge.survivor).await
    }
}
