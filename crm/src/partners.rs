//! Partners (SPEC 2.5–2.6): cards read and written through a [`Viewer`], so a field the
//! user may not see is neither shown, accepted, searched, filtered, sorted nor in history;
//! every change is kept in the card's history.

use crate::access::{Access, Viewer};
use crate::form::{Field, FieldSpec, Form};
use crate::search;
use crate::store::Arg;
use crate::values::{self, display, stored_text};
use crate::{bind_args, on_db, Store, StoreError};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;

/// A card as one viewer sees it: only the fields they may view.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Partner {
    pub id: i64,
    pub created_at: String,
    pub updated_at: String,
    pub values: Map<String, Value>,
    /// The fields this viewer may change.
    pub editable: Vec<String>,
}

/// One line of a card's history.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, schemars::JsonSchema)]
pub struct HistoryEntry {
    pub id: i64,
    pub at: String,
    /// Who: the user's id and login (none for telephony or a deleted user) and their name
    /// as it is now (as it was, once they are deleted).
    pub user_id: Option<i64>,
    pub user_login: Option<String>,
    pub user_name: String,
    pub action: String,
    /// The field's latin name (none for the card as a whole).
    pub field: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

/// `SELECT` list reading every column of `fields` as text. The aliases differ from the
/// column names so an `ORDER BY f_N` still sorts by the typed column.
pub(crate) fn text_columns<'a>(fields: impl Iterator<Item = &'a Field>) -> String {
    fields
        .map(|f| format!(", CAST({} AS TEXT) AS t_{}", f.column(), f.id))
        .collect()
}

/// A who-did-it for history rows (no id: the system, e.g. telephony).
pub(crate) struct Author<'a> {
    pub id: Option<i64>,
    pub name: &'a str,
}

impl Store {
    /// `NotFound` unless card `id` exists.
    pub(crate) async fn partner_exists(&self, id: i64) -> Result<(), StoreError> {
        let found: Option<i64> = on_db!(self, pool => {
            sqlx::query_scalar("SELECT id FROM partners WHERE id = $1").bind(id).fetch_optional(pool).await?
        });
        found.map(|_| ()).ok_or(StoreError::NotFound)
    }

    /// The card `id` with the fields `viewer` sees.
    pub async fn partner(
        &self,
        viewer: &Viewer,
        form: &Form,
        id: i64,
    ) -> Result<Partner, StoreError> {
        let visible: Vec<&Field> = viewer.visible(form).collect();
        let stored = self.stored_values(id, &visible).await?;
        let (created_at, updated_at, values) = stored.ok_or(StoreError::NotFound)?;
        Ok(Partner {
            id,
            created_at,
            updated_at,
            values: visible
                .iter()
                .zip(&values)
                .map(|(f, v)| (f.spec.latin.clone(), values::render(f, form, v.as_deref())))
                .collect(),
            editable: visible
                .iter()
                .filter(|f| viewer.access(f) == Access::Edit)
                .map(|f| f.spec.latin.clone())
                .collect(),
        })
    }

    /// Creation time, update time and the text of each of `fields` of partner `id`.
    pub(crate) async fn stored_values(
        &self,
        id: i64,
        fields: &[&Field],
    ) -> Result<Option<(String, String, Vec<Option<String>>)>, StoreError> {
        let sql = format!(
            "SELECT created_at, updated_at{} FROM partners WHERE id = $1",
            text_columns(fields.iter().copied())
        );
        Ok(on_db!(self, pool => {
            sqlx::query(&sql).bind(id).fetch_optional(pool).await?.map(|r| {
                (
                    r.get::<String, _>(0),
                    r.get::<String, _>(1),
                    (0..fields.len()).map(|i| r.get::<Option<String>, _>(i + 2)).collect(),
                )
            })
        }))
    }

    /// Checks `values` against the form and the viewer's access: every key a field the
    /// viewer may edit, every value fitting its field. Errors name the field.
    fn check_values<'f>(
        &self,
        viewer: &Viewer,
        form: &'f Form,
        values: &Map<String, Value>,
    ) -> Result<Vec<(&'f Field, Arg)>, StoreError> {
        let mut out = Vec::with_capacity(values.len());
        for (latin, value) in values {
            let field = viewer
                .field(form, latin)
                .ok_or_else(|| field_error(latin, "no such field"))?;
            if viewer.access(field) != Access::Edit {
                return Err(field_error(latin, "you may not change this field"));
            }
            let arg = values::parse(field, form, value, &self.country)
                .map_err(|m| field_error(latin, &m))?;
            if field.spec.required && stored_text(&arg).is_none() {
                return Err(field_error(latin, "required"));
            }
            out.push((field, arg));
        }
        Ok(out)
    }

    /// `values` checked as a new card: every field fits, required fields the viewer may
    /// edit are given.
    pub(crate) fn checked_card<'f>(
        &self,
        viewer: &Viewer,
        form: &'f Form,
        values: &Map<String, Value>,
    ) -> Result<Vec<(&'f Field, Arg)>, StoreError> {
        let checked = self.check_values(viewer, form, values)?;
        if let Some(missing) = form.fields.iter().find(|f| {
            f.spec.required
                && viewer.access(f) == Access::Edit
                && !checked.iter().any(|(c, _)| c.id == f.id)
        }) {
            return Err(field_error(&missing.spec.latin, "required"));
        }
        Ok(checked)
    }

    /// Creates a card. Needs the "contacts" right.
    pub async fn create_partner(
        &self,
        viewer: &Viewer,
        form: &Form,
        values: &Map<String, Value>,
    ) -> Result<Partner, StoreError> {
        if !viewer.works_with_contacts() {
            return Err(StoreError::Forbidden(
                "creating partners needs the contacts right".into(),
            ));
        }
        let checked = self.checked_card(viewer, form, values)?;
        let author = Author {
            id: Some(viewer.user.id),
            name: &viewer.user.name,
        };
        let ids = self
            .insert_partners(form, &[checked], &author, "created")
            .await?;
        self.partner(viewer, form, ids[0]).await
    }

    /// Inserts cards with their (checked) values and history, in one transaction. Cards
    /// filling the same fields (an import's rows) share multi-row statements.
    pub(crate) async fn insert_partners(
        &self,
        form: &Form,
        cards: &[Vec<(&Field, Arg)>],
        author: &Author<'_>,
        action: &str,
    ) -> Result<Vec<i64>, StoreError> {
        let now = chrono::Utc::now().to_rfc3339();
        let postgres = self.is_postgres();
        // Runs of cards with the same columns, at most ROWS_PER_STATEMENT each.
        let mut batches: Vec<(String, Vec<Arg>, usize)> = Vec::new();
        let mut start = 0;
        while start < cards.len() {
            let columns: Vec<i64> = cards[start].iter().map(|(f, _)| f.id).collect();
            let same =
                |c: &Vec<(&Field, Arg)>| c.iter().map(|(f, _)| f.id).eq(columns.iter().copied());
            let len = cards[start..]
                .iter()
                .take(ROWS_PER_STATEMENT)
                .take_while(|c| same(c))
                .count();
            let cols: String = cards[start]
                .iter()
                .map(|(f, _)| format!(", {}", f.column()))
                .collect();
            let sql = format!(
                "INSERT INTO partners (created_at, updated_at, created_by{cols}) VALUES {} RETURNING id",
                values_list(len, 3 + columns.len())
            );
            let mut args = Vec::with_capacity(len * (3 + columns.len()));
            for card in &cards[start..start + len] {
                args.push(Arg::Text(Some(now.clone())));
                args.push(Arg::Text(Some(now.clone())));
                args.push(Arg::Int(author.id));
                args.extend(card.iter().map(|(_, a)| a.clone()));
            }
            batches.push((sql, args, len));
            start += len;
        }
        // Per card: (field, action, new value) lines.
        type Lines<'a> = Vec<(Option<i64>, &'a str, Option<String>)>;
        let history: Vec<Lines> = cards
            .iter()
            .map(|values| {
                std::iter::once((None, action, None))
                    .chain(values.iter().filter_map(|(f, a)| {
                        let text = stored_text(a)?;
                        Some((Some(f.id), "changed", display(f, form, Some(&text))))
                    }))
                    .collect()
            })
            .collect();
        let ids = on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut ids = Vec::with_capacity(cards.len());
            for (sql, args, _) in &batches {
                let mut got: Vec<i64> = bind_args!(sqlx::query_scalar(sql), args).fetch_all(&mut *tx).await?;
                // Ids grow in the order of VALUES; RETURNING promises no order.
                got.sort_unstable();
                ids.extend(got);
            }
            let lines: Vec<Arg> = ids
                .iter()
                .zip(&history)
                .flat_map(|(id, lines)| {
                    let now = &now;
                    lines.iter().flat_map(move |(field, action, new)| {
                        [
                            Arg::Int(Some(*id)),
                            Arg::Text(Some(now.clone())),
                            Arg::Int(author.id),
                            Arg::Text(Some(author.name.to_string())),
                            Arg::Int(*field),
                            Arg::Text(Some(action.to_string())),
                            Arg::Text(new.clone()),
                        ]
                    })
                })
                .collect();
            for chunk in lines.chunks(7 * ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO partner_history (partner_id, at, user_id, user_name, field_id, action, new_value) VALUES {}",
                    values_list(chunk.len() / 7, 7)
                );
                bind_args!(sqlx::query(&sql), chunk).execute(&mut *tx).await?;
            }
            if !postgres {
                let rows: Vec<Arg> = ids
                    .iter()
                    .zip(cards)
                    .flat_map(|(id, values)| {
                        values.iter().filter(|(f, _)| search::indexed(f)).filter_map(move |(f, a)| {
                            let text = display(f, form, stored_text(a).as_deref())?;
                            Some([Arg::Int(Some(id * search::SLOTS + f.id)), Arg::Text(Some(text))])
                        })
                    })
                    .flatten()
                    .collect();
                for chunk in rows.chunks(2 * ROWS_PER_STATEMENT) {
                    let sql = format!("INSERT INTO partner_search (rowid, value) VALUES {}", values_list(chunk.len() / 2, 2));
                    bind_args!(sqlx::query(&sql), chunk).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            ids
        });
        Ok(ids)
    }

    /// Changes the given fields of a card; each changed value goes into its history.
    pub async fn update_partner(
        &self,
        viewer: &Viewer,
        form: &Form,
        id: i64,
        values: &Map<String, Value>,
    ) -> Result<Partner, StoreError> {
        let checked = self.check_values(viewer, form, values)?;
        let fields: Vec<&Field> = checked.iter().map(|(f, _)| *f).collect();
        let (_, _, old) = self
            .stored_values(id, &fields)
            .await?
            .ok_or(StoreError::NotFound)?;
        let changed: Vec<(&Field, &Arg, Option<String>)> = checked
            .iter()
            .zip(old)
            .filter(|((f, a), old)| {
                display(f, form, old.as_deref()) != display(f, form, stored_text(a).as_deref())
            })
            .map(|((f, a), old)| (*f, a, old))
            .collect();
        if !changed.is_empty() {
            let now = chrono::Utc::now().to_rfc3339();
            let sets: String = changed
                .iter()
                .enumerate()
                .map(|(i, (f, _, _))| format!(", {} = ${}", f.column(), i + 3))
                .collect();
            let sql = format!("UPDATE partners SET updated_at = $1{sets} WHERE id = $2");
            let mut args = vec![Arg::Text(Some(now.clone())), Arg::Int(Some(id))];
            args.extend(changed.iter().map(|(_, a, _)| (*a).clone()));
            let history: Vec<(i64, Option<String>, Option<String>)> = changed
                .iter()
                .map(|(f, a, old)| {
                    (
                        f.id,
                        display(f, form, old.as_deref()),
                        display(f, form, stored_text(a).as_deref()),
                    )
                })
                .collect();
            let reindex = if self.is_postgres() {
                Vec::new()
            } else {
                let shown: Vec<(i64, Option<String>)> = history
                    .iter()
                    .filter(|(f, _, _)| form.field_by_id(*f).is_some_and(search::indexed))
                    .map(|(f, _, new)| (*f, new.clone()))
                    .collect();
                search::reindex(id, &shown)
            };
            on_db!(self, pool => {
                let mut tx = pool.begin().await?;
                bind_args!(sqlx::query(&sql), &args).execute(&mut *tx).await?;
                for (sql, args) in &reindex {
                    bind_args!(sqlx::query(sql), args).execute(&mut *tx).await?;
                }
                for (field, old, new) in &history {
                    sqlx::query("INSERT INTO partner_history (partner_id, at, user_id, user_name, field_id, action, old_value, new_value) VALUES ($1, $2, $3, $4, $5, 'changed', $6, $7)")
                        .bind(id)
                        .bind(&now)
                        .bind(viewer.user.id)
                        .bind(&viewer.user.name)
                        .bind(field)
                        .bind(old)
                        .bind(new)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            });
        }
        self.partner(viewer, form, id).await
    }

    /// Deletes a card (the "contacts" right), with its history.
    pub async fn delete_partner(&self, viewer: &Viewer, id: i64) -> Result<(), StoreError> {
        if !viewer.works_with_contacts() {
            return Err(StoreError::Forbidden(
                "deleting partners needs the contacts right".into(),
            ));
        }
        let files = self.files(crate::files::Owner::Partner(id)).await?;
        let (forget, forget_args) = search::forget(id);
        let postgres = self.is_postgres();
        let done = on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("DELETE FROM partners WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
            if !postgres {
                bind_args!(sqlx::query(forget), &forget_args).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            done
        });
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.remove_stored(&files).await;
        Ok(())
    }

    /// A card's history, newest first, without the fields `viewer` may not see.
    pub async fn partner_history(
        &self,
        viewer: &Viewer,
        form: &Form,
        id: i64,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: i64,
            at: String,
            user_id: Option<i64>,
            user_login: Option<String>,
            user_name: String,
            action: String,
            field_id: Option<i64>,
            old_value: Option<String>,
            new_value: Option<String>,
        }
        viewer.may_see_cards(form)?;
        self.partner_exists(id).await?;
        let rows: Vec<Row> = on_db!(self, pool => {
            sqlx::query_as("SELECT h.id, h.at, u.id AS user_id, u.login AS user_login, COALESCE(u.name, h.user_name) AS user_name, h.action, h.field_id, h.old_value, h.new_value \
                            FROM partner_history h LEFT JOIN users u ON u.id = h.user_id WHERE h.partner_id = $1 ORDER BY h.id DESC")
                .bind(id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let field = match r.field_id {
                    Some(fid) => {
                        let f = form.field_by_id(fid).filter(|f| viewer.sees(f))?;
                        Some(f.spec.latin.clone())
                    }
                    None => None,
                };
                Some(HistoryEntry {
                    id: r.id,
                    at: r.at,
                    user_id: r.user_id,
                    user_login: r.user_login,
                    user_name: r.user_name,
                    action: r.action,
                    field,
                    old_value: r.old_value,
                    new_value: r.new_value,
                })
            })
            .collect())
    }

    /// What changing `old` into `new` does to the stored values: each partner's converted
    /// value, and how many values do not convert (and would be lost).
    pub(crate) async fn convert_values(
        &self,
        form: &Form,
        old: &Field,
        new: &FieldSpec,
    ) -> Result<(Vec<(i64, Arg)>, u64), StoreError> {
        let col = old.column();
        let sql = format!("SELECT id, CAST({col} AS TEXT) FROM partners WHERE {col} IS NOT NULL");
        let stored: Vec<(i64, String)> = on_db!(self, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        let target = Field {
            id: old.id,
            spec: new.clone(),
        };
        let mut lost = 0;
        let mut out = Vec::with_capacity(stored.len());
        for (id, text) in stored {
            let value = values::render(old, form, Some(&text));
            match values::parse(&target, form, &value, &self.country) {
                Ok(arg) if value.is_null() || stored_text(&arg).is_some() => out.push((id, arg)),
                _ => {
                    lost += 1;
                    out.push((
                        id,
                        values::parse(&target, form, &Value::Null, "").expect("null fits"),
                    ));
                }
            }
        }
        Ok((out, lost))
    }
}

/// Rows per multi-row INSERT. Not more: sqlx looks each `$N` up among all of a statement's
/// parameter names, so binding costs grow with the square of their number.
const ROWS_PER_STATEMENT: usize = 32;

/// `($1, $2), ($3, $4)` for `rows` rows of `width` values.
fn values_list(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A fault in card field `latin`, named `values.<latin>`.
pub(crate) fn field_error(latin: &str, message: &str) -> StoreError {
    StoreError::InvalidField {
        field: format!("values.{latin}"),
        message: message.to_string(),
    }
}

/// List items hidden by default for `field` (none for other kinds).
pub(crate) fn hidden_items(field: &Field, form: &Form) -> Vec<i64> {
    if !field.spec.kind.uses_list() {
        return Vec::new();
    }
    form.list_of(field).map_or_else(Vec::new, |l| {
        l.items
            .iter()
            .filter(|i| i.hidden_by_default)
            .map(|i| i.id)
            .collect()
    })
}
