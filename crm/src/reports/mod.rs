//! The CRM's reports (SPEC 3, items 4–7): partners, card dynamics, events, tasks. Each is
//! rows under named columns, so the API shows, downloads (XLSX, CSV) and prints them alike.
//! Each needs the reports right. Fields the viewer may not see are in none of them.
//! The contact-center reports (items 1–3) are in [`contact`] and [`contact_store`].

pub mod calls_report;
pub mod cells_store;
pub mod charts;
pub mod contact;
pub mod contact_store;
pub mod live;

use crate::access::Viewer;
use crate::form::Form;
use crate::store::{invalid, Arg};
use crate::table::{contains, instant_between, TableQuery, Where};
use crate::values::DateRange;
use crate::{bind_args, on_db, Store, StoreError};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A report holds at most this many rows; `truncated` says when there were more.
pub const MAX_ROWS: usize = 100_000;

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Report {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub truncated: bool,
    /// Charts for the print page (inline SVG); the JSON has their data in its own shape.
    #[serde(skip)]
    #[schemars(skip)]
    pub charts: Vec<String>,
}

impl Report {
    fn new(title: &str, columns: &[&str]) -> Report {
        Report {
            title: title.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            truncated: false,
            charts: Vec::new(),
        }
    }

    /// Keeps [`MAX_ROWS`], noting whether more were found.
    fn capped(mut self) -> Report {
        self.truncated = self.rows.len() > MAX_ROWS;
        self.rows.truncate(MAX_ROWS);
        self
    }
}

/// A report's parameters: each known name at most once; anything else is refused, named.
pub struct Params(BTreeMap<String, String>);

impl Params {
    pub fn new(
        pairs: Vec<(String, String)>,
        known: &'static [&'static str],
    ) -> Result<Params, StoreError> {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            match known.iter().find(|n| **n == k) {
                Some(name) if map.contains_key(*name) => {
                    return Err(invalid(name, "given more than once"));
                }
                Some(name) if !v.trim().is_empty() => {
                    map.insert(name.to_string(), v.trim().to_string());
                }
                Some(_) => {}
                None => return Err(crate::store::unknown_parameter(&k)),
            }
        }
        Ok(Params(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

fn may_read_reports(viewer: &Viewer) -> Result<(), StoreError> {
    if viewer.user.admin || viewer.user.reports {
        Ok(())
    } else {
        Err(StoreError::Forbidden(
            "reports need the reports right".into(),
        ))
    }
}

impl Store {
    /// A stored timestamp as a report shows it: `YYYY-MM-DD HH:MM`, local time.
    fn minute(&self, rfc3339: &str) -> Value {
        json!(crate::values::local_minute(rfc3339, self.time_zone))
    }

    /// The conditions events and tasks reports share: the right to read reports, `created`
    /// (a period of `created_col`) and users by login (parameter, column).
    async fn report_filter(
        &self,
        viewer: &Viewer,
        params: &Params,
        created_col: &str,
        users: &[(&'static str, &str)],
    ) -> Result<Where, StoreError> {
        may_read_reports(viewer)?;
        let mut w = Where::default();
        w.sql.push("TRUE".into());
        if let Some(period) = params.get("created") {
            let cond = instant_between(&mut w, created_col, "created", period, self.time_zone)?;
            w.sql.push(cond);
        }
        for (name, col) in users {
            if let Some(login) = params.get(name) {
                let id = self.user_named(name, login).await?.id;
                let p = w.param(Arg::Int(Some(id)));
                w.sql.push(format!("{col} = {p}"));
            }
        }
        Ok(w)
    }

    /// Partners (report 4): the table's search and filters plus `created` (a period), with
    /// every field the viewer sees.
    pub async fn partners_report(
        &self,
        viewer: &Viewer,
        form: &Form,
        query: &TableQuery,
    ) -> Result<Report, StoreError> {
        may_read_reports(viewer)?;
        let q = TableQuery {
            every_field: true,
            ..query.clone()
        };
        let table = self.whole_table(viewer, form, &q, MAX_ROWS + 1).await?;
        let mut report = Report::new("Партнёры", &["№", "Создана"]);
        report.columns.extend(
            table
                .columns
                .iter()
                .map(|l| form.field(l).map_or(l.clone(), |f| f.spec.name.clone())),
        );
        report.rows = table
            .rows
            .into_iter()
            .map(|mut r| {
                let mut row = vec![json!(r.id), self.minute(&r.created_at)];
                row.extend(
                    table
                        .columns
                        .iter()
                        .map(|c| r.values.remove(c).unwrap_or(Value::Null)),
                );
                row
            })
            .collect();
        Ok(report.capped())
    }

    /// Card dynamics (report 5): changes to cards in `period`, optionally by one `user`
    /// (login); changes to fields the viewer may not see are left out.
    pub async fn card_dynamics(
        &self,
        viewer: &Viewer,
        form: &Form,
        params: &Params,
    ) -> Result<Report, StoreError> {
        may_read_reports(viewer)?;
        let mut w = Where::default();
        if let Some(period) = params.get("period") {
            let cond = instant_between(&mut w, "h.at", "period", period, self.time_zone)?;
            w.sql.push(cond);
        }
        if let Some(login) = params.get("user") {
            let id = self.user_named("user", login).await?.id;
            let p = w.param(Arg::Int(Some(id)));
            w.sql.push(format!("h.user_id = {p}"));
        }
        let visible: Vec<String> = viewer.visible(form).map(|f| f.id.to_string()).collect();
        w.sql.push(if visible.is_empty() {
            "h.field_id IS NULL".into()
        } else {
            format!(
                "(h.field_id IS NULL OR h.field_id IN ({}))",
                visible.join(", ")
            )
        });
        let sql = format!(
            "SELECT h.at, COALESCE(u.name || ' (' || u.login || ')', h.user_name), h.partner_id, h.field_id, h.action, h.old_value, h.new_value \
             FROM partner_history h LEFT JOIN users u ON u.id = h.user_id WHERE {} ORDER BY h.id LIMIT {}",
            w.sql.join(" AND "),
            MAX_ROWS + 1
        );
        type Change = (
            String,
            String,
            i64,
            Option<i64>,
            String,
            Option<String>,
            Option<String>,
        );
        let changes: Vec<Change> = on_db!(self, pool => {
            bind_args!(sqlx::query_as(&sql), &w.args).fetch_all(pool).await?
        });
        let mut report = Report::new(
            "Динамика карточек",
            &[
                "Когда",
                "Кто",
                "Партнёр",
                "Действие",
                "Поле",
                "Было",
                "Стало",
            ],
        );
        report.rows = changes
            .into_iter()
            .map(|(at, who, partner, field, action, old, new)| {
                let field = field
                    .and_then(|id| form.field_by_id(id))
                    .map(|f| f.spec.name.clone());
                vec![
                    self.minute(&at),
                    json!(who),
                    json!(partner),
                    json!(action),
                    json!(field),
                    json!(old),
                    json!(new),
                ]
            })
            .collect();
        Ok(report.capped())
    }

    /// Events (report 6): by `created` and `due` periods, `initiator`, `assignee` (logins)
    /// and `partner` (id).
    pub async fn events_report(
        &self,
        viewer: &Viewer,
        params: &Params,
    ) -> Result<Report, StoreError> {
        let mut w = self
            .report_filter(
                viewer,
                params,
                "e.created_at",
                &[
                    ("initiator", "e.initiator_id"),
                    ("assignee", "e.assignee_id"),
                ],
            )
            .await?;
        if let Some(period) = params.get("due") {
            let range =
                DateRange::parse(period).ok_or_else(|| invalid("due", "from..to, dates"))?;
            let (from, until) = range.ms_bounds(self.time_zone);
            if let Some(ms) = from {
                let p = w.param(Arg::Int(Some(ms)));
                w.sql.push(format!("e.at_ms >= {p}"));
            }
            if let Some(ms) = until {
                let p = w.param(Arg::Int(Some(ms)));
                w.sql.push(format!("e.at_ms < {p}"));
            }
        }
        if let Some(partner) = params.get("partner") {
            let id = partner
                .parse::<i64>()
                .map_err(|_| invalid("partner", "a partner's id"))?;
            let p = w.param(Arg::Int(Some(id)));
            w.sql.push(format!("e.partner_id = {p}"));
        }
        let events = self.event_rows(&w.sql.join(" AND "), &w.args).await?;
        let mut report = Report::new(
            "События",
            &[
                "№",
                "Срок",
                "Тип",
                "Описание",
                "Партнёр",
                "Исполнитель",
                "Инициатор",
                "Напоминание, мин",
                "Выполнено",
            ],
        );
        report.rows = events
            .into_iter()
            .map(|e| {
                vec![
                    json!(e.id),
                    self.minute(&e.at),
                    json!(e.kind),
                    json!(e.description),
                    json!(e.partner_id),
                    json!(e.assignee),
                    json!(e.initiator),
                    json!(e.remind_min),
                    e.completed_at
                        .as_deref()
                        .map_or(Value::Null, |t| self.minute(t)),
                ]
            })
            .collect();
        Ok(report.capped())
    }

    /// Tasks (report 7): `q` in the title or description, and per-column filters: `status`
    /// and `priority` (comma-separated), `assignee`, `author` (logins), `due` and `created`
    /// (periods).
    pub async fn tasks_report(
        &self,
        viewer: &Viewer,
        params: &Params,
    ) -> Result<Report, StoreError> {
        let mut w = self
            .report_filter(
                viewer,
                params,
                "t.created_at",
                &[("assignee", "t.assignee_id"), ("author", "t.author_id")],
            )
            .await?;
        if let Some(term) = params.get("q") {
            let postgres = self.is_postgres();
            let title = contains(&mut w, postgres, "t.title", term);
            let description = contains(&mut w, postgres, "t.description", term);
            w.sql.push(format!("({title} OR {description})"));
        }
        for (name, allowed) in [
            ("status", &crate::tasks::STATUSES[..]),
            ("priority", &crate::tasks::PRIORITIES[..]),
        ] {
            let Some(given) = params.get(name) else {
                continue;
            };
            let mut any = Vec::new();
            for v in given.split(',').map(str::trim) {
                let Some(v) = allowed.iter().find(|a| **a == v) else {
                    return Err(invalid(name, &format!("one of {}", allowed.join(", "))));
                };
                any.push(w.param(Arg::Text(Some(v.to_string()))));
            }
            w.sql.push(format!("t.{name} IN ({})", any.join(", ")));
        }
        if let Some(period) = params.get("due") {
            // Due dates are plain dates: compared as text they order by day.
            let range =
                DateRange::parse(period).ok_or_else(|| invalid("due", "from..to, dates"))?;
            if let Some(from) = range.from {
                let p = w.param(Arg::Text(Some(from.format("%Y-%m-%d").to_string())));
                w.sql.push(format!("t.due_on >= {p}"));
            }
            if let Some(to) = range.to {
                let p = w.param(Arg::Text(Some(to.format("%Y-%m-%d").to_string())));
                w.sql.push(format!("t.due_on <= {p}"));
            }
        }
        let tasks = self.task_rows(&w.sql.join(" AND "), &w.args).await?;
        let mut report = Report::new(
            "Задачи",
            &[
                "№",
                "Название",
                "Статус",
                "Приоритет",
                "Исполнитель",
                "Автор",
                "Начало",
                "Срок",
                "Часов",
                "Партнёры",
                "Создана",
            ],
        );
        report.rows = tasks
            .into_iter()
            .map(|t| {
                let partners: Vec<String> = t.partners.iter().map(i64::to_string).collect();
                vec![
                    json!(t.id),
                    json!(t.title),
                    json!(t.status),
                    json!(t.priority),
                    json!(t.assignee),
                    json!(t.author),
                    json!(t.starts_on),
                    json!(t.due_on),
                    json!(t.hours_spent),
                    json!(partners.join(", ")),
                    self.minute(&t.created_at),
                ]
            })
            .collect();
        Ok(report.capped())
    }
}
