//! Calendar events (SPEC 2.9): what, when, a reminder N minutes before, a type, a partner,
//! the assignee and who set it up; follow-ups chain events both ways; completing one keeps
//! the time. Reminders are handed out once, at their minute ([`Store::due_reminders`]).

use crate::store::{invalid, Arg};
use crate::{bind_args, on_db, Store, StoreError, User};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    pub description: String,
    #[serde(default)]
    pub kind: String,
    /// When, as RFC 3339 (`2026-11-24T10:00:00+03:00`).
    pub at: String,
    /// Remind this many minutes before.
    #[serde(default)]
    pub remind_min: Option<i64>,
    #[serde(default)]
    pub partner_id: Option<i64>,
    /// The assignee's login; the creator when absent.
    #[serde(default)]
    pub assignee: Option<String>,
    /// The event this one follows up.
    #[serde(default)]
    pub follows: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct CalendarEvent {
    pub id: i64,
    pub description: String,
    pub kind: String,
    pub at: String,
    pub remind_min: Option<i64>,
    pub partner_id: Option<i64>,
    pub assignee: String,
    pub initiator: Option<String>,
    /// The event this follows up, and the follow-ups of this one.
    pub follows: Option<i64>,
    pub followed_by: Vec<i64>,
    pub completed_at: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    description: String,
    kind: String,
    at_ms: i64,
    remind_min: Option<i64>,
    partner_id: Option<i64>,
    assignee: String,
    initiator: Option<String>,
    parent_id: Option<i64>,
    completed_at: Option<String>,
}

const SELECT: &str = "SELECT e.id, e.description, e.kind, e.at_ms, e.remind_min, e.partner_id, a.login AS assignee, i.login AS initiator, e.parent_id, e.completed_at \
                      FROM events e JOIN users a ON a.id = e.assignee_id LEFT JOIN users i ON i.id = e.initiator_id";

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// A reminder due now: whom to tell, about what.
#[derive(Debug, Clone)]
pub struct Reminder {
    pub user_id: i64,
    pub event: CalendarEvent,
}

impl Store {
    /// Events matching `filter`, whose `$N` are `args`, with their follow-ups.
    pub(crate) async fn event_rows(
        &self,
        filter: &str,
        args: &[Arg],
    ) -> Result<Vec<CalendarEvent>, StoreError> {
        let sql = format!(
            "{SELECT} WHERE {filter} ORDER BY e.at_ms, e.id LIMIT {}",
            crate::reports::MAX_ROWS + 1
        );
        let rows: Vec<Row> = on_db!(self, pool => {
            bind_args!(sqlx::query_as(&sql), args).fetch_all(pool).await?
        });
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let links: Vec<(i64, i64)> = if ids.is_empty() {
            Vec::new()
        } else {
            let list = ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let sql =
                format!("SELECT parent_id, id FROM events WHERE parent_id IN ({list}) ORDER BY id");
            on_db!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?)
        };
        let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
        for (parent, child) in links {
            children.entry(parent).or_default().push(child);
        }
        Ok(rows
            .into_iter()
            .map(|r| CalendarEvent {
                followed_by: children.remove(&r.id).unwrap_or_default(),
                id: r.id,
                description: r.description,
                kind: r.kind,
                at: rfc3339(r.at_ms),
                remind_min: r.remind_min,
                partner_id: r.partner_id,
                assignee: r.assignee,
                initiator: r.initiator,
                follows: r.parent_id,
                completed_at: r.completed_at,
            })
            .collect())
    }

    pub async fn event(&self, id: i64) -> Result<CalendarEvent, StoreError> {
        self.event_rows("e.id = $1", &[Arg::Int(Some(id))])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    /// Events between two instants (ms), of one user or (for an admin asking) everyone's.
    pub async fn events(
        &self,
        user: Option<i64>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<CalendarEvent>, StoreError> {
        match user {
            Some(u) => {
                self.event_rows(
                    "e.assignee_id = $1 AND e.at_ms >= $2 AND e.at_ms < $3",
                    &[u, from_ms, to_ms].map(|a| Arg::Int(Some(a))),
                )
                .await
            }
            None => {
                self.event_rows(
                    "e.at_ms >= $1 AND e.at_ms < $2",
                    &[from_ms, to_ms].map(|a| Arg::Int(Some(a))),
                )
                .await
            }
        }
    }

    /// The active (not completed) events assigned to a user: the counter beside the menu.
    pub async fn active_events(&self, user: i64) -> Result<i64, StoreError> {
        Ok(on_db!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE assignee_id = $1 AND completed_at IS NULL")
                .bind(user)
                .fetch_one(pool)
                .await?
        }))
    }

    pub async fn create_event(
        &self,
        by: &User,
        spec: &EventSpec,
    ) -> Result<CalendarEvent, StoreError> {
        let description = spec.description.trim();
        if description.is_empty() || description.chars().count() > 10_000 {
            return Err(invalid("description", "1-10000 characters"));
        }
        // Rich text, shown as HTML to others: cleaned like task comments.
        let description = crate::rich_text::sanitise(description);
        let description = description.trim();
        if description.is_empty() {
            return Err(invalid(
                "description",
                "no text left once scripts are removed",
            ));
        }
        let at = chrono::DateTime::parse_from_rfc3339(&spec.at)
            .map_err(|_| {
                invalid(
                    "at",
                    "an RFC 3339 date-time, e.g. 2026-11-24T10:00:00+03:00",
                )
            })?
            .timestamp_millis();
        if let Some(m) = spec.remind_min {
            if !(0..=60 * 24 * 30).contains(&m) {
                return Err(invalid("remind_min", "0 to 43200 minutes"));
            }
        }
        let assignee = match &spec.assignee {
            Some(login) => self.user_named("assignee", login).await?,
            None => by.clone(),
        };
        if let Some(p) = spec.partner_id {
            self.partner_exists(p)
                .await
                .map_err(|_| invalid("partner_id", "no such partner"))?;
        }
        if let Some(f) = spec.follows {
            self.event(f)
                .await
                .map_err(|_| invalid("follows", "no such event"))?;
        }
        let remind_at = spec.remind_min.map(|m| at - m * 60_000);
        let id: i64 = on_db!(self, pool => {
            sqlx::query_scalar("INSERT INTO events (description, kind, at_ms, remind_min, remind_at_ms, partner_id, assignee_id, initiator_id, parent_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id")
                .bind(description)
                .bind(spec.kind.trim())
                .bind(at)
                .bind(spec.remind_min)
                .bind(remind_at)
                .bind(spec.partner_id)
                .bind(assignee.id)
                .bind(by.id)
                .bind(spec.follows)
                .bind(chrono::Utc::now().to_rfc3339())
                .fetch_one(pool)
                .await?
        });
        self.event(id).await
    }

    /// Marks an event done, keeping when (the assignee, the initiator or an admin).
    pub async fn complete_event(&self, by: &User, id: i64) -> Result<CalendarEvent, StoreError> {
        let event = self.event(id).await?;
        if !(by.admin
            || event.assignee == by.login
            || event.initiator.as_deref() == Some(by.login.as_str()))
        {
            return Err(StoreError::Forbidden("not your event".into()));
        }
        if event.completed_at.is_some() {
            return Ok(event);
        }
        on_db!(self, pool => {
            sqlx::query("UPDATE events SET completed_at = $1 WHERE id = $2 AND completed_at IS NULL")
                .bind(chrono::Utc::now().to_rfc3339())
                .bind(id)
                .execute(pool)
                .await?;
        });
        self.event(id).await
    }

    /// Hands out (once: marks) the reminders due by `now_ms` of `users`, for events not
    /// completed. Callers name the users they can reach, so a reminder whose user is away
    /// waits for them.
    pub async fn due_reminders(
        &self,
        now_ms: i64,
        users: &[i64],
    ) -> Result<Vec<Reminder>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = users.iter().map(i64::to_string).collect();
        let sql = format!(
            "UPDATE events SET reminded = TRUE WHERE NOT reminded AND remind_at_ms <= $1 AND completed_at IS NULL AND assignee_id IN ({}) RETURNING id, assignee_id",
            list.join(", ")
        );
        let ids: Vec<(i64, i64)> = on_db!(self, pool => {
            sqlx::query_as(&sql).bind(now_ms).fetch_all(pool).await?
        });
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = ids.iter().map(|(id, _)| id.to_string()).collect();
        let events = self
            .event_rows(&format!("e.id IN ({})", list.join(", ")), &[])
            .await?;
        Ok(events
            .into_iter()
            .filter_map(|event| {
                let user_id = ids.iter().find(|(id, _)| *id == event.id)?.1;
                Some(Reminder { user_id, event })
            })
            .collect())
    }

    /// Puts reminders that could not be handed out back to wait (their user left).
    pub async fn unclaim_reminders(&self, events: &[i64]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = events.iter().map(i64::to_string).collect();
        let sql = format!(
            "UPDATE events SET reminded = FALSE WHERE id IN ({}) AND completed_at IS NULL",
            list.join(", ")
        );
        on_db!(self, pool => {
            sqlx::query(&sql).execute(pool).await?;
        });
        Ok(())
    }
}
