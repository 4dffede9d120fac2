//! Tasks (SPEC 2.10): a board of five columns, comments, a change history, partners
//! attached (one, or all the table's current filter finds), hours spent required to close.

use crate::access::Viewer;
use crate::form::Form;
use crate::store::{invalid, Arg};
use crate::table::TableQuery;
use crate::values::DateRange;
use crate::{bind_args, on_db, Store, StoreError, User};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The board's columns, in order.
pub const STATUSES: [&str; 5] = [
    "todo",
    "question",
    "in_progress",
    "closed_by_assignee",
    "done",
];
pub const PRIORITIES: [&str; 3] = ["low", "normal", "high"];
/// At most this many partners come with a table filter.
const MAX_FILTERED_PARTNERS: usize = 10_000;

/// A new task, or changes to one (absent fields stay).
#[derive(Debug, Clone, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub title: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    /// Login; the author when absent on creation.
    pub assignee: Option<String>,
    pub starts_on: Option<String>,
    pub due_on: Option<String>,
    pub hours_spent: Option<f64>,
    /// Partners by id …
    pub partners: Option<Vec<i64>>,
    /// … or every partner the table shows for this query string (`q=…&filter.city=…`).
    pub partner_filter: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct Task {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub status: String,
    pub priority: String,
    pub assignee: String,
    pub author: Option<String>,
    pub starts_on: Option<String>,
    pub due_on: Option<String>,
    pub hours_spent: Option<f64>,
    pub partners: Vec<i64>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow, schemars::JsonSchema)]
pub struct TaskComment {
    pub id: i64,
    /// The author's id and login (none once deleted) and name as it is now.
    pub user_id: Option<i64>,
    pub user_login: Option<String>,
    pub user_name: String,
    pub body: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow, schemars::JsonSchema)]
pub struct TaskChange {
    pub at: String,
    /// Who: id and login (none once deleted) and name as it is now.
    pub user_id: Option<i64>,
    pub user_login: Option<String>,
    pub user_name: String,
    pub field: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    title: String,
    description: String,
    status: String,
    priority: String,
    assignee: String,
    author: Option<String>,
    starts_on: Option<String>,
    due_on: Option<String>,
    hours_spent: Option<f64>,
    created_at: String,
    updated_at: String,
}

const SELECT: &str = "SELECT t.id, t.title, t.description, t.status, t.priority, a.login AS assignee, w.login AS author, t.starts_on, t.due_on, t.hours_spent, t.created_at, t.updated_at \
                      FROM tasks t JOIN users a ON a.id = t.assignee_id LEFT JOIN users w ON w.id = t.author_id";

fn date(field: &'static str, v: &Option<String>) -> Result<Option<String>, StoreError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => crate::values::parse_date(s)
            .map(Some)
            .ok_or_else(|| invalid(field, "a date, YYYY-MM-DD")),
    }
}

impl Store {
    /// Tasks matching `filter`, whose `$N` are `args`, with their partners.
    pub(crate) async fn task_rows(
        &self,
        filter: &str,
        args: &[Arg],
    ) -> Result<Vec<Task>, StoreError> {
        let sql = format!(
            "{SELECT} WHERE {filter} ORDER BY t.id LIMIT {}",
            crate::reports::MAX_ROWS + 1
        );
        let rows: Vec<Row> = on_db!(self, pool => {
            bind_args!(sqlx::query_as(&sql), args).fetch_all(pool).await?
        });
        // The partners of all of them in one query.
        let links: Vec<(i64, i64)> = if rows.is_empty() {
            Vec::new()
        } else {
            let ids = rows
                .iter()
                .map(|r| r.id.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("SELECT task_id, partner_id FROM task_partners WHERE task_id IN ({ids}) ORDER BY partner_id");
            on_db!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?)
        };
        let mut partners: HashMap<i64, Vec<i64>> = HashMap::new();
        for (task, partner) in links {
            partners.entry(task).or_default().push(partner);
        }
        Ok(rows
            .into_iter()
            .map(|r| Task {
                partners: partners.remove(&r.id).unwrap_or_default(),
                id: r.id,
                title: r.title,
                description: r.description,
                status: r.status,
                priority: r.priority,
                assignee: r.assignee,
                author: r.author,
                starts_on: r.starts_on,
                due_on: r.due_on,
                hours_spent: r.hours_spent,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
            .collect())
    }

    pub async fn task(&self, id: i64) -> Result<Task, StoreError> {
        self.task_rows("t.id = $1", &[Arg::Int(Some(id))])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    /// The board: tasks assigned to `user`, or (0) everyone's.
    pub async fn tasks(&self, user: i64) -> Result<Vec<Task>, StoreError> {
        self.task_rows("($1 = 0 OR t.assignee_id = $1)", &[Arg::Int(Some(user))])
            .await
    }

    /// The calendar's tasks: those of `user` (0: everyone's) whose days, start to due, meet
    /// `period`; tasks with neither date are not on the calendar.
    pub async fn tasks_in(&self, user: i64, period: &DateRange) -> Result<Vec<Task>, StoreError> {
        let day = |d: chrono::NaiveDate| Arg::Text(Some(d.format("%Y-%m-%d").to_string()));
        let mut filter = vec![
            "($1 = 0 OR t.assignee_id = $1)".to_string(),
            "COALESCE(t.starts_on, t.due_on) IS NOT NULL".to_string(),
        ];
        let mut args = vec![Arg::Int(Some(user))];
        if let Some(from) = period.from {
            args.push(day(from));
            filter.push(format!(
                "COALESCE(t.due_on, t.starts_on) >= ${}",
                args.len()
            ));
        }
        if let Some(to) = period.to {
            args.push(day(to));
            filter.push(format!(
                "COALESCE(t.starts_on, t.due_on) <= ${}",
                args.len()
            ));
        }
        self.task_rows(&filter.join(" AND "), &args).await
    }

    /// Open tasks (not closed, not done) assigned to a user: the counter beside the menu.
    pub async fn active_tasks(&self, user: i64) -> Result<i64, StoreError> {
        Ok(on_db!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM tasks WHERE assignee_id = $1 AND status NOT IN ('closed_by_assignee', 'done')")
                .bind(user)
                .fetch_one(pool)
                .await?
        }))
    }

    /// Who may see and change a task: admins, users with the tasks right, its assignee.
    fn may_touch(by: &User, task: &Task) -> Result<(), StoreError> {
        if by.admin || by.tasks || task.assignee == by.login {
            Ok(())
        } else {
            Err(StoreError::Forbidden("not your task".into()))
        }
    }

    /// A task `by` may see.
    pub async fn task_for(&self, by: &User, id: i64) -> Result<Task, StoreError> {
        let task = self.task(id).await?;
        Self::may_touch(by, &task)?;
        Ok(task)
    }

    async fn partner_ids(
        &self,
        viewer: &Viewer,
        form: &Form,
        spec: &TaskSpec,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        if let Some(ids) = &spec.partners {
            for id in ids {
                self.partner_exists(*id)
                    .await
                    .map_err(|_| invalid("partners", &format!("no partner {id}")))?;
            }
            return Ok(Some(ids.clone()));
        }
        let Some(filter) = &spec.partner_filter else {
            return Ok(None);
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(filter)
            .map_err(|_| invalid("partner_filter", "a query string"))?;
        let (q, _) = TableQuery::from_pairs(pairs, &[]).map_err(|e| match e {
            StoreError::Invalid { message, .. } | StoreError::InvalidField { message, .. } => {
                invalid("partner_filter", &message)
            }
            e => e,
        })?;
        let table = self
            .whole_table(viewer, form, &q, MAX_FILTERED_PARTNERS)
            .await?;
        let ids = table.rows.iter().map(|r| r.id).collect();
        Ok(Some(ids))
    }

    /// Creates (`id` None; the tasks right) or changes a task, writing each change into its
    /// history. Moving it to the last two columns needs hours spent.
    pub async fn save_task(
        &self,
        viewer: &Viewer,
        form: &Form,
        id: Option<i64>,
        spec: &TaskSpec,
    ) -> Result<Task, StoreError> {
        let by = &viewer.user;
        let old = match id {
            Some(id) => {
                let t = self.task(id).await?;
                Self::may_touch(by, &t)?;
                Some(t)
            }
            None if by.admin || by.tasks => None,
            None => {
                return Err(StoreError::Forbidden(
                    "creating tasks needs the tasks right".into(),
                ))
            }
        };
        let title = match (&spec.title, &old) {
            (Some(t), _) => t.trim().to_string(),
            (None, Some(o)) => o.title.clone(),
            (None, None) => String::new(),
        };
        if title.is_empty() || title.chars().count() > 500 {
            return Err(invalid("title", "1-500 characters"));
        }
        let status = spec
            .status
            .clone()
            .or(old.as_ref().map(|o| o.status.clone()))
            .unwrap_or_else(|| "todo".into());
        if !STATUSES.contains(&status.as_str()) {
            return Err(invalid(
                "status",
                "todo, question, in_progress, closed_by_assignee or done",
            ));
        }
        let priority = spec
            .priority
            .clone()
            .or(old.as_ref().map(|o| o.priority.clone()))
            .unwrap_or_else(|| "normal".into());
        if !PRIORITIES.contains(&priority.as_str()) {
            return Err(invalid("priority", "low, normal or high"));
        }
        let hours = spec
            .hours_spent
            .or(old.as_ref().and_then(|o| o.hours_spent));
        if let Some(h) = spec.hours_spent {
            if !(0.0..=10_000.0).contains(&h) {
                return Err(invalid("hours_spent", "0 to 10000"));
            }
        }
        if matches!(status.as_str(), "closed_by_assignee" | "done")
            && !hours.is_some_and(|h| h > 0.0)
        {
            return Err(invalid(
                "hours_spent",
                "closing a task needs the hours spent",
            ));
        }
        let assignee = match &spec.assignee {
            Some(login) => self.user_named("assignee", login).await?,
            None => match &old {
                Some(o) => self.user_by_login(&o.assignee).await?,
                None => by.clone(),
            },
        };
        // Rich text, shown as HTML like comments.
        let description = match &spec.description {
            Some(d) => crate::rich_text::sanitise(d),
            None => old
                .as_ref()
                .map(|o| o.description.clone())
                .unwrap_or_default(),
        };
        let starts_on = if spec.starts_on.is_some() {
            date("starts_on", &spec.starts_on)?
        } else {
            old.as_ref().and_then(|o| o.starts_on.clone())
        };
        let due_on = if spec.due_on.is_some() {
            date("due_on", &spec.due_on)?
        } else {
            old.as_ref().and_then(|o| o.due_on.clone())
        };
        let partners = self.partner_ids(viewer, form, spec).await?;
        let now = chrono::Utc::now().to_rfc3339();
        let changes: Vec<(&str, Option<String>, Option<String>)> = match &old {
            None => vec![("created", None, Some(title.clone()))],
            Some(o) => [
                ("title", Some(o.title.clone()), Some(title.clone())),
                (
                    "description",
                    Some(o.description.clone()),
                    Some(description.clone()),
                ),
                ("status", Some(o.status.clone()), Some(status.clone())),
                ("priority", Some(o.priority.clone()), Some(priority.clone())),
                (
                    "assignee",
                    Some(o.assignee.clone()),
                    Some(assignee.login.clone()),
                ),
                ("starts_on", o.starts_on.clone(), starts_on.clone()),
                ("due_on", o.due_on.clone(), due_on.clone()),
                (
                    "hours_spent",
                    o.hours_spent.map(|h| h.to_string()),
                    hours.map(|h| h.to_string()),
                ),
                (
                    "partners",
                    Some(o.partners.len().to_string()),
                    partners
                        .as_ref()
                        .map(|p| p.len().to_string())
                        .or(Some(o.partners.len().to_string())),
                ),
            ]
            .into_iter()
            .filter(|(_, a, b)| a != b)
            .collect(),
        };
        let id = on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            let id: i64 = match id {
                None => sqlx::query_scalar("INSERT INTO tasks (title, description, status, priority, assignee_id, author_id, starts_on, due_on, hours_spent, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id")
                    .bind(&title).bind(&description).bind(&status).bind(&priority).bind(assignee.id).bind(by.id)
                    .bind(&starts_on).bind(&due_on).bind(hours).bind(&now)
                    .fetch_one(&mut *tx)
                    .await?,
                Some(id) => {
                    sqlx::query("UPDATE tasks SET title = $1, description = $2, status = $3, priority = $4, assignee_id = $5, starts_on = $6, due_on = $7, hours_spent = $8, updated_at = $9 WHERE id = $10")
                        .bind(&title).bind(&description).bind(&status).bind(&priority).bind(assignee.id)
                        .bind(&starts_on).bind(&due_on).bind(hours).bind(&now).bind(id)
                        .execute(&mut *tx)
                        .await?;
                    id
                }
            };
            if let Some(partners) = &partners {
                sqlx::query("DELETE FROM task_partners WHERE task_id = $1").bind(id).execute(&mut *tx).await?;
                for p in partners {
                    sqlx::query("INSERT INTO task_partners (task_id, partner_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(id).bind(p).execute(&mut *tx).await?;
                }
            }
            for (field, old, new) in &changes {
                sqlx::query("INSERT INTO task_history (task_id, at, user_id, user_name, field, old_value, new_value) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(id).bind(&now).bind(by.id).bind(&by.name).bind(field).bind(old).bind(new)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            id
        });
        self.task(id).await
    }

    pub async fn comment_task(
        &self,
        by: &User,
        id: i64,
        body: &str,
    ) -> Result<TaskComment, StoreError> {
        let task = self.task(id).await?;
        Self::may_touch(by, &task)?;
        if body.trim().is_empty() || body.len() > 100_000 {
            return Err(invalid("body", "1-100000 bytes"));
        }
        // Rich text is shown as HTML to others: only harmless tags and attributes stay.
        let body = crate::rich_text::sanitise(body);
        if body.trim().is_empty() {
            return Err(invalid("body", "no text left once scripts are removed"));
        }
        let comment_id: i64 = on_db!(self, pool => {
            sqlx::query_scalar("INSERT INTO task_comments (task_id, user_id, user_name, body, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id")
                .bind(id).bind(by.id).bind(&by.name).bind(&body).bind(chrono::Utc::now().to_rfc3339())
                .fetch_one(pool)
                .await?
        });
        Ok(self
            .task_comments(by, id)
            .await?
            .into_iter()
            .find(|c| c.id == comment_id)
            .expect("just written"))
    }

    pub async fn task_comments(&self, by: &User, id: i64) -> Result<Vec<TaskComment>, StoreError> {
        self.task_for(by, id).await?;
        Ok(on_db!(self, pool => {
            sqlx::query_as::<_, TaskComment>("SELECT c.id, u.id AS user_id, u.login AS user_login, COALESCE(u.name, c.user_name) AS user_name, c.body, c.created_at \
                                               FROM task_comments c LEFT JOIN users u ON u.id = c.user_id WHERE c.task_id = $1 ORDER BY c.id")
                .bind(id).fetch_all(pool).await?
        }))
    }

    pub async fn task_history(&self, by: &User, id: i64) -> Result<Vec<TaskChange>, StoreError> {
        self.task_for(by, id).await?;
        Ok(on_db!(self, pool => {
            sqlx::query_as::<_, TaskChange>("SELECT h.at, u.id AS user_id, u.login AS user_login, COALESCE(u.name, h.user_name) AS user_name, h.field, h.old_value, h.new_value \
                                              FROM task_history h LEFT JOIN users u ON u.id = h.user_id WHERE h.task_id = $1 ORDER BY h.id")
                .bind(id).fetch_all(pool).await?
        }))
    }
}
