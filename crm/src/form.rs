//! The card form (SPEC 2.3–2.4): admin-defined fields and the value lists they draw from.
//! Each field is a typed column `f_<id>` of `partners`, so filters and sorts use indexes.

use crate::search;
use crate::store::{conflict_on, invalid, Arg};
use crate::{on_db, Store, StoreError};
use serde::{Deserialize, Serialize};

/// What a field holds (SPEC 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    LargeText,
    Number,
    Date,
    /// One item of a list (radio buttons).
    List,
    /// One item of a list (drop-down).
    Dropdown,
    /// Several items of a list.
    MultiSelect,
    /// Several items of a list (check boxes).
    Checkboxes,
    /// Normalised to E.164.
    Phone,
    Email,
}

impl FieldKind {
    pub fn name(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::LargeText => "large_text",
            FieldKind::Number => "number",
            FieldKind::Date => "date",
            FieldKind::List => "list",
            FieldKind::Dropdown => "dropdown",
            FieldKind::MultiSelect => "multi_select",
            FieldKind::Checkboxes => "checkboxes",
            FieldKind::Phone => "phone",
            FieldKind::Email => "email",
        }
    }

    fn parse(s: &str) -> FieldKind {
        serde_json::from_value(serde_json::Value::String(s.into())).unwrap_or(FieldKind::Text)
    }

    /// Draws its values from a list.
    pub fn uses_list(self) -> bool {
        matches!(
            self,
            FieldKind::List | FieldKind::Dropdown | FieldKind::MultiSelect | FieldKind::Checkboxes
        )
    }

    /// Holds several list items.
    pub fn is_multi(self) -> bool {
        matches!(self, FieldKind::MultiSelect | FieldKind::Checkboxes)
    }

    /// The column type: numbers are REAL, single list items their id, the rest text
    /// (dates as ISO `YYYY-MM-DD`, item sets as `,id,id,`).
    fn column_type(self, postgres: bool) -> &'static str {
        match (self, postgres) {
            (FieldKind::Number, false) => "REAL",
            (FieldKind::Number, true) => "DOUBLE PRECISION",
            (FieldKind::List | FieldKind::Dropdown, _) => "BIGINT",
            _ => "TEXT",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    #[default]
    Left,
    Right,
}

/// A card field as the admin defined it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Display name.
    pub name: String,
    /// Unique latin name (API key, import/export header).
    pub latin: String,
    #[serde(default)]
    pub section: String,
    pub kind: FieldKind,
    /// The list a list-type field draws from.
    #[serde(default)]
    pub list_id: Option<i64>,
    #[serde(default)]
    pub position: i64,
    #[serde(default = "yes")]
    pub shown: bool,
    #[serde(default)]
    pub placeholder: String,
    #[serde(default)]
    pub side: Side,
    /// A column of the partner table.
    #[serde(default)]
    pub in_table: bool,
    #[serde(default)]
    pub required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Field {
    pub id: i64,
    #[serde(flatten)]
    pub spec: FieldSpec,
}

impl Field {
    /// The partners column holding this field.
    pub fn column(&self) -> String {
        format!("f_{}", self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct List {
    pub id: i64,
    pub name: String,
    pub items: Vec<ListItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, schemars::JsonSchema)]
pub struct ListItem {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub position: i64,
    /// Partners with this value are left out of the table unless a filter asks for them.
    #[serde(default)]
    pub hidden_by_default: bool,
}

/// The whole form: fields in order, lists with their items.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Form {
    pub fields: Vec<Field>,
    pub lists: Vec<List>,
}

impl Form {
    pub fn field(&self, latin: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.spec.latin == latin)
    }

    pub fn field_by_id(&self, id: i64) -> Option<&Field> {
        self.fields.iter().find(|f| f.id == id)
    }

    pub fn list(&self, id: i64) -> Option<&List> {
        self.lists.iter().find(|l| l.id == id)
    }

    /// The list `field` draws its items from (none for other fields).
    pub fn list_of(&self, field: &Field) -> Option<&List> {
        field.spec.list_id.and_then(|id| self.list(id))
    }
}

/// The statements giving field `id` its partners column: the column, its index (the table
/// filters and sorts on it) and, on PostgreSQL, its trigram index for the search box.
fn column_statements(id: i64, kind: FieldKind, postgres: bool) -> Vec<String> {
    let mut out = vec![
        format!(
            "ALTER TABLE partners ADD COLUMN f_{id} {}",
            kind.column_type(postgres)
        ),
        format!("CREATE INDEX partners_f_{id} ON partners (f_{id}, id)"),
    ];
    out.extend(search::trigram_index(id, kind).filter(|_| postgres));
    out
}

impl FieldSpec {
    /// The values of the `fields` columns, `name` to `required` in table order.
    fn args(&self) -> Vec<Arg> {
        let text = |s: &str| Arg::Text(Some(s.to_string()));
        vec![
            text(self.name.trim()),
            text(&self.latin),
            text(&self.section),
            text(self.kind.name()),
            Arg::Int(self.list_id),
            Arg::Int(Some(self.position)),
            Arg::Bool(self.shown),
            text(&self.placeholder),
            text(side_name(self.side)),
            Arg::Bool(self.in_table),
            Arg::Bool(self.required),
        ]
    }

    fn validate(&self, form: &Form) -> Result<(), StoreError> {
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return Err(invalid("name", "1-100 characters"));
        }
        let latin_ok = self.latin.len() <= 64
            && self.latin.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .latin
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !latin_ok {
            return Err(invalid(
                "latin",
                "a latin letter, then latin letters, digits or '_' (at most 64, lower case)",
            ));
        }
        match (self.kind.uses_list(), self.list_id) {
            (true, None) => return Err(invalid("list_id", "a list-type field needs a list")),
            (true, Some(id)) if form.list(id).is_none() => {
                return Err(invalid("list_id", "no list with this id"))
            }
            (false, Some(_)) => {
                return Err(invalid("list_id", "only list-type fields draw from a list"))
            }
            _ => {}
        }
        if self.section.chars().count() > 100 || self.placeholder.chars().count() > 200 {
            return Err(invalid("placeholder", "at most 200 characters"));
        }
        Ok(())
    }
}

/// The confirmation word a destructive request must carry (SPEC 2.1).
pub fn confirmed(word: Option<&str>) -> Result<(), StoreError> {
    match word.map(str::trim) {
        Some(w) if w.to_lowercase() == "удалить" || w.eq_ignore_ascii_case("delete") => {
            Ok(())
        }
        _ => Err(invalid(
            "confirm",
            "type the word \"удалить\" (or \"delete\") to confirm",
        )),
    }
}

#[derive(sqlx::FromRow)]
struct FieldRow {
    id: i64,
    name: String,
    latin: String,
    section: String,
    kind: String,
    list_id: Option<i64>,
    position: i64,
    shown: bool,
    placeholder: String,
    side: String,
    in_table: bool,
    required: bool,
}

impl From<FieldRow> for Field {
    fn from(r: FieldRow) -> Field {
        Field {
            id: r.id,
            spec: FieldSpec {
                name: r.name,
                latin: r.latin,
                section: r.section,
                kind: FieldKind::parse(&r.kind),
                list_id: r.list_id,
                position: r.position,
                shown: r.shown,
                placeholder: r.placeholder,
                side: if r.side == "right" {
                    Side::Right
                } else {
                    Side::Left
                },
                in_table: r.in_table,
                required: r.required,
            },
        }
    }
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Left => "left",
        Side::Right => "right",
    }
}

impl Store {
    /// The form as stored now.
    pub async fn form(&self) -> Result<Form, StoreError> {
        let fields: Vec<FieldRow> = on_db!(self, pool => {
            sqlx::query_as("SELECT * FROM fields ORDER BY position, id").fetch_all(pool).await?
        });
        let lists: Vec<(i64, String)> = on_db!(self, pool => {
            sqlx::query_as("SELECT id, name FROM lists ORDER BY name").fetch_all(pool).await?
        });
        let items: Vec<(i64, i64, String, i64, bool)> = on_db!(self, pool => {
            sqlx::query_as("SELECT list_id, id, name, position, hidden_by_default FROM list_items ORDER BY position, id")
                .fetch_all(pool)
                .await?
        });
        Ok(Form {
            fields: fields.into_iter().map(Field::from).collect(),
            lists: lists
                .into_iter()
                .map(|(id, name)| List {
                    id,
                    name,
                    items: items
                        .iter()
                        .filter(|i| i.0 == id)
                        .map(|(_, id, name, position, hidden)| ListItem {
                            id: *id,
                            name: name.clone(),
                            position: *position,
                            hidden_by_default: *hidden,
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// Adds a field and its partners column (indexed: the table filters and sorts on it).
    pub async fn create_field(&self, spec: &FieldSpec) -> Result<Field, StoreError> {
        spec.validate(&self.form().await?)?;
        let postgres = self.is_postgres();
        let id: i64 = on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            let insert = "INSERT INTO fields (name, latin, section, kind, list_id, position, shown, placeholder, side, in_table, required) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id";
            let id: i64 = crate::bind_args!(sqlx::query_scalar(insert), &spec.args())
                .fetch_one(&mut *tx)
                .await
                .map_err(conflict_on("latin"))?;
            for statement in column_statements(id, spec.kind, postgres) {
                sqlx::query(&statement).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            id
        });
        Ok(Field {
            id,
            spec: spec.clone(),
        })
    }

    /// Changes a field. A new kind converts the stored values; those that do not convert
    /// are lost, so unless `confirm` the change is refused with their count.
    pub async fn update_field(
        &self,
        id: i64,
        spec: &FieldSpec,
        confirm: bool,
    ) -> Result<Field, StoreError> {
        let form = self.form().await?;
        let old = form.field_by_id(id).ok_or(StoreError::NotFound)?.clone();
        spec.validate(&form)?;
        let converted = if old.spec.kind != spec.kind || old.spec.list_id != spec.list_id {
            let (values, lost) = self.convert_values(&form, &old, spec).await?;
            if lost > 0 && !confirm {
                return Err(StoreError::DataLoss { values: lost });
            }
            Some(values)
        } else {
            None
        };
        let postgres = self.is_postgres();
        let col = old.column();
        let new_field = Field {
            id,
            spec: spec.clone(),
        };
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            let update = "UPDATE fields SET name = $1, latin = $2, section = $3, kind = $4, list_id = $5, position = $6, shown = $7, placeholder = $8, side = $9, in_table = $10, required = $11 WHERE id = $12";
            let mut args = spec.args();
            args.push(Arg::Int(Some(id)));
            crate::bind_args!(sqlx::query(update), &args)
                .execute(&mut *tx)
                .await
                .map_err(conflict_on("latin"))?;
            if let Some(values) = &converted {
                // A column's type cannot change in SQLite: replace the column.
                sqlx::query(&format!("DROP INDEX partners_{col}")).execute(&mut *tx).await?;
                sqlx::query(&format!("ALTER TABLE partners DROP COLUMN {col}")).execute(&mut *tx).await?;
                for statement in column_statements(id, spec.kind, postgres) {
                    sqlx::query(&statement).execute(&mut *tx).await?;
                }
                let update = format!("UPDATE partners SET {col} = $1 WHERE id = $2");
                for (partner, value) in values {
                    let args = [value.clone(), Arg::Int(Some(*partner))];
                    crate::bind_args!(sqlx::query(&update), &args)
                        .execute(&mut *tx)
                        .await?;
                }
                if !postgres {
                    let (sql, args) = search::forget_field(id);
                    crate::bind_args!(sqlx::query(sql), &args).execute(&mut *tx).await?;
                    if search::indexed(&new_field) {
                        for (partner, value) in values {
                            let shown = crate::values::display(&new_field, &form, crate::values::stored_text(value).as_deref());
                            for (sql, args) in search::reindex(*partner, &[(id, shown)]) {
                                crate::bind_args!(sqlx::query(sql), &args).execute(&mut *tx).await?;
                            }
                        }
                    }
                }
            }
            tx.commit().await?;
        });
        Ok(Field {
            id,
            spec: spec.clone(),
        })
    }

    /// Removes a field, its column and its values.
    pub async fn delete_field(&self, id: i64) -> Result<(), StoreError> {
        let form = self.form().await?;
        let field = form.field_by_id(id).ok_or(StoreError::NotFound)?;
        let col = field.column();
        let postgres = self.is_postgres();
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(&format!("DROP INDEX partners_{col}")).execute(&mut *tx).await?;
            sqlx::query(&format!("ALTER TABLE partners DROP COLUMN {col}")).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM fields WHERE id = $1").bind(id).execute(&mut *tx).await?;
            if !postgres {
                let (sql, args) = search::forget_field(id);
                crate::bind_args!(sqlx::query(sql), &args).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Creates a list with its items.
    pub async fn create_list(&self, name: &str, items: &[ListItem]) -> Result<List, StoreError> {
        let name = list_name(name)?;
        check_items(items)?;
        let id: i64 = on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar("INSERT INTO lists (name) VALUES ($1) RETURNING id")
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .map_err(conflict_on("name"))?;
            for item in items {
                crate::bind_args!(sqlx::query(INSERT_ITEM), &item_args(id, item)).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            id
        });
        self.list(id).await
    }

    /// Replaces a list's name and items: items with an id are kept (renamed, moved), new
    /// ones added, missing ones removed (values holding them are cleared).
    pub async fn replace_list(
        &self,
        id: i64,
        name: &str,
        items: &[ListItem],
    ) -> Result<List, StoreError> {
        let form = self.form().await?;
        let old = form.list(id).ok_or(StoreError::NotFound)?;
        check_items(items)?;
        if let Some(bad) = items
            .iter()
            .find(|i| i.id != 0 && !old.items.iter().any(|o| o.id == i.id))
        {
            return Err(invalid(
                "items",
                &format!("item {} is not in this list", bad.id),
            ));
        }
        let gone: Vec<i64> = old
            .items
            .iter()
            .filter(|o| !items.iter().any(|i| i.id == o.id))
            .map(|o| o.id)
            .collect();
        let users: Vec<Field> = form
            .fields
            .iter()
            .filter(|f| f.spec.list_id == Some(id))
            .cloned()
            .collect();
        let name = list_name(name)?;
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE lists SET name = $1 WHERE id = $2")
                .bind(name)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(conflict_on("name"))?;
            for item in &gone {
                for f in &users {
                    let col = f.column();
                    if f.spec.kind.is_multi() {
                        sqlx::query(&format!("UPDATE partners SET {col} = REPLACE({col}, $1, ',') WHERE {col} LIKE $2"))
                            .bind(format!(",{item},"))
                            .bind(format!("%,{item},%"))
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query(&format!("UPDATE partners SET {col} = NULL WHERE {col} = ','"))
                            .execute(&mut *tx)
                            .await?;
                    } else {
                        sqlx::query(&format!("UPDATE partners SET {col} = NULL WHERE {col} = $1"))
                            .bind(item)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                sqlx::query("DELETE FROM list_items WHERE id = $1").bind(item).execute(&mut *tx).await?;
            }
            for item in items {
                if item.id == 0 {
                    crate::bind_args!(sqlx::query(INSERT_ITEM), &item_args(id, item)).execute(&mut *tx).await?;
                } else {
                    sqlx::query("UPDATE list_items SET name = $1, position = $2, hidden_by_default = $3 WHERE id = $4")
                        .bind(item.name.trim())
                        .bind(item.position)
                        .bind(item.hidden_by_default)
                        .bind(item.id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
        });
        self.list(id).await
    }

    /// List `id` as it is stored.
    async fn list(&self, id: i64) -> Result<List, StoreError> {
        self.form()
            .await?
            .list(id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }

    /// Removes a list no field draws from.
    pub async fn delete_list(&self, id: i64) -> Result<(), StoreError> {
        let form = self.form().await?;
        form.list(id).ok_or(StoreError::NotFound)?;
        let users: Vec<&str> = form
            .fields
            .iter()
            .filter(|f| f.spec.list_id == Some(id))
            .map(|f| f.spec.latin.as_str())
            .collect();
        if !users.is_empty() {
            return Err(StoreError::InUse(format!("fields {}", users.join(", "))));
        }
        on_db!(self, pool => {
            sqlx::query("DELETE FROM lists WHERE id = $1").bind(id).execute(pool).await?;
        });
        Ok(())
    }
}

const INSERT_ITEM: &str =
    "INSERT INTO list_items (list_id, name, position, hidden_by_default) VALUES ($1, $2, $3, $4)";

fn item_args(list: i64, item: &ListItem) -> [Arg; 4] {
    [
        Arg::Int(Some(list)),
        Arg::Text(Some(item.name.trim().to_string())),
        Arg::Int(Some(item.position)),
        Arg::Bool(item.hidden_by_default),
    ]
}

/// A list's name, trimmed, when it fits.
fn list_name(name: &str) -> Result<&str, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "1-100 characters"));
    }
    Ok(name)
}

fn check_items(items: &[ListItem]) -> Result<(), StoreError> {
    for (n, item) in items.iter().enumerate() {
        let name = item.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(invalid(
                "items",
                &format!("item {n}: name of 1-200 characters"),
            ));
        }
        if items[..n].iter().any(|o| o.name.trim() == name) {
            return Err(invalid("items", &format!("item {n}: \"{name}\" twice")));
        }
    }
    Ok(())
}
