//! Groups and field access (SPEC 2.2): per group and field hidden, view or edit; a user's
//! access to a field is the most permissive of their groups'; no group, no fields; admins
//! see and edit everything. [`Viewer`] is that answer for one user, asked on every path
//! that reads or writes a field.

use crate::form::{Field, Form};
use crate::store::{conflict_on, invalid};
use crate::{on_db, Store, StoreError, User};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Default,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    #[default]
    Hidden,
    View,
    Edit,
}

impl Access {
    fn parse(s: &str) -> Access {
        match s {
            "edit" => Access::Edit,
            "view" => Access::View,
            _ => Access::Hidden,
        }
    }
}

/// A user and what they may do with each field.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: User,
    fields: HashMap<i64, Access>,
}

impl Viewer {
    pub fn access(&self, field: &Field) -> Access {
        if self.user.admin {
            Access::Edit
        } else {
            self.fields.get(&field.id).copied().unwrap_or_default()
        }
    }

    pub fn sees(&self, field: &Field) -> bool {
        self.access(field) >= Access::View
    }

    /// The fields of `form` this viewer sees, in form order.
    pub fn visible<'s, 'f>(&'s self, form: &'f Form) -> impl Iterator<Item = &'f Field> + 's
    where
        'f: 's,
    {
        form.fields.iter().filter(|f| self.sees(f))
    }

    /// The visible field called `latin`; hidden ones are reported as unknown, so a
    /// request cannot probe for them.
    pub fn field<'f>(&self, form: &'f Form, latin: &str) -> Option<&'f Field> {
        form.field(latin).filter(|f| self.sees(f))
    }

    /// May see what hangs on a card besides its fields (files, calls, history, e-mail
    /// with its files): an admin, or a member of a group that shows at least one field.
    /// A user in no group sees no card fields (SPEC 2.2), so nothing of a card's either.
    pub fn sees_cards(&self, form: &Form) -> bool {
        self.user.admin || self.visible(form).next().is_some()
    }

    /// [`Viewer::sees_cards`], or why not.
    pub fn may_see_cards(&self, form: &Form) -> Result<(), StoreError> {
        if self.sees_cards(form) {
            Ok(())
        } else {
            Err(StoreError::Forbidden(
                "a card's files, calls and history are for those who see its fields (a group that shows some)".into(),
            ))
        }
    }

    /// May create (and delete) partners.
    pub fn works_with_contacts(&self) -> bool {
        self.user.admin || self.user.contacts
    }
}

/// A group as the API shows and takes it: members by login, access by field latin name
/// (fields left out are hidden).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub access: BTreeMap<String, Access>,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Group {
    pub id: i64,
    #[serde(flatten)]
    pub spec: GroupSpec,
}

impl Store {
    /// What `user` may do with each field.
    pub async fn viewer(&self, user: User) -> Result<Viewer, StoreError> {
        let rows: Vec<(i64, String)> = on_db!(self, pool => {
            sqlx::query_as("SELECT a.field_id, a.access FROM field_access a JOIN group_members m ON m.group_id = a.group_id WHERE m.user_id = $1")
                .bind(user.id)
                .fetch_all(pool)
                .await?
        });
        let mut fields: HashMap<i64, Access> = HashMap::new();
        for (field, access) in rows {
            let a = fields.entry(field).or_default();
            *a = (*a).max(Access::parse(&access));
        }
        Ok(Viewer { user, fields })
    }

    pub async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        let groups: Vec<(i64, String)> = on_db!(self, pool => {
            sqlx::query_as("SELECT id, name FROM groups ORDER BY name").fetch_all(pool).await?
        });
        let members: Vec<(i64, String)> = on_db!(self, pool => {
            sqlx::query_as("SELECT m.group_id, u.login FROM group_members m JOIN users u ON u.id = m.user_id ORDER BY u.login")
                .fetch_all(pool)
                .await?
        });
        let access: Vec<(i64, String, String)> = on_db!(self, pool => {
            sqlx::query_as("SELECT a.group_id, f.latin, a.access FROM field_access a JOIN fields f ON f.id = a.field_id")
                .fetch_all(pool)
                .await?
        });
        Ok(groups
            .into_iter()
            .map(|(id, name)| Group {
                id,
                spec: GroupSpec {
                    name,
                    members: members
                        .iter()
                        .filter(|m| m.0 == id)
                        .map(|m| m.1.clone())
                        .collect(),
                    access: access
                        .iter()
                        .filter(|a| a.0 == id)
                        .map(|a| (a.1.clone(), Access::parse(&a.2)))
                        .collect(),
                },
            })
            .collect())
    }

    /// Creates (`id` None) or replaces a group with its members and field access.
    pub async fn save_group(&self, id: Option<i64>, spec: &GroupSpec) -> Result<Group, StoreError> {
        let name = spec.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(invalid("name", "1-100 characters"));
        }
        let mut member_ids = Vec::new();
        for login in &spec.members {
            match self.user_by_login(login).await {
                Ok(u) => member_ids.push(u.id),
                Err(StoreError::NotFound) => {
                    return Err(invalid("members", &format!("no user {login}")))
                }
                Err(e) => return Err(e),
            }
        }
        let form = self.form().await?;
        let mut access = Vec::new();
        for (latin, a) in &spec.access {
            let field = form
                .field(latin)
                .ok_or_else(|| invalid("access", &format!("no field {latin}")))?;
            if *a != Access::Hidden {
                access.push((field.id, if *a == Access::Edit { "edit" } else { "view" }));
            }
        }
        let id = on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            let id: i64 = match id {
                None => sqlx::query_scalar("INSERT INTO groups (name) VALUES ($1) RETURNING id")
                    .bind(name)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(conflict_on("name"))?,
                Some(id) => {
                    let done = sqlx::query("UPDATE groups SET name = $1 WHERE id = $2")
                        .bind(name)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(conflict_on("name"))?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    sqlx::query("DELETE FROM group_members WHERE group_id = $1").bind(id).execute(&mut *tx).await?;
                    sqlx::query("DELETE FROM field_access WHERE group_id = $1").bind(id).execute(&mut *tx).await?;
                    id
                }
            };
            for user in &member_ids {
                sqlx::query("INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
            }
            for (field, a) in &access {
                sqlx::query("INSERT INTO field_access (group_id, field_id, access) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(field)
                    .bind(a)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            id
        });
        self.groups()
            .await?
            .into_iter()
            .find(|g| g.id == id)
            .ok_or(StoreError::NotFound)
    }

    pub async fn delete_group(&self, id: i64) -> Result<(), StoreError> {
        let done = on_db!(self, pool => {
            sqlx::query("DELETE FROM groups WHERE id = $1").bind(id).execute(pool).await?.rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
