//! Duplicates (SPEC 2.8): partners sharing a phone, an e-mail or any other field the viewer
//! sees (a tax id), and merging them: the survivor takes the chosen values, the others'
//! history, calls, files, events and tasks move to it, and they are removed — in one
//! transaction.

use crate::access::{Access, Viewer};
use crate::form::{Field, FieldKind, Form};
use crate::partners::field_error;
use crate::store::invalid;
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

impl Store {
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
    /// viewer may edit). Returns the survivor as the viewer sees it.
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
