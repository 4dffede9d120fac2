//! Queues, pause reasons and what operators did, as stored: queue configurations are the
//! engine's [`QueueConfig`] in JSON; operator states and today's counters are read back
//! from `queue_events`, so they survive a restart.

use crate::on_db;
use crate::store::{conflict_on, invalid, Store, StoreError};
use kolokol_engine::queue::{Overflow, QueueConfig};
use serde::Serialize;
use sqlx::Row;
use std::collections::HashMap;

/// An operator's last state change as the log has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredState {
    LoggedIn,
    LoggedOut,
    Paused(String),
}

/// Today's counters of one operator (SPEC §1.5: accepted, missed).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counters {
    pub accepted: u32,
    pub missed: u32,
}

impl Store {
    async fn check_queue(&self, q: &QueueConfig) -> Result<(), StoreError> {
        let name = q.name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid("name", "1-64 letters, digits, '-' or '_'"));
        }
        if q.weight == 0 {
            return Err(invalid("weight", "must be at least 1"));
        }
        if q.ring_timeout_ms == 0 {
            return Err(invalid("ring_timeout_ms", "must be positive"));
        }
        for m in &q.members {
            if !self.user_exists(&m.operator).await? {
                return Err(invalid("members", &format!("no user {}", m.operator)));
            }
        }
        match &q.overflow {
            Overflow::User(login) if !self.user_exists(login).await? => {
                Err(invalid("overflow", "no user with this login"))
            }
            Overflow::Queue(next) if next == &q.name => {
                Err(invalid("overflow", "a queue cannot overflow into itself"))
            }
            _ => Ok(()),
        }
    }

    pub async fn create_queue(&self, q: &QueueConfig) -> Result<(), StoreError> {
        self.check_queue(q).await?;
        let r = on_db!(self, pool => sqlx::query("INSERT INTO queues (name, config, created_at) VALUES ($1, $2, $3)")
            .bind(&q.name)
            .bind(serde_json::to_string(q).expect("serialisable"))
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(pool)
            .await.map(|d| d.rows_affected()));
        r.map_err(conflict_on("name"))?;
        Ok(())
    }

    pub async fn replace_queue(&self, q: &QueueConfig) -> Result<(), StoreError> {
        self.check_queue(q).await?;
        let done = on_db!(self, pool => sqlx::query("UPDATE queues SET config = $1 WHERE name = $2")
            .bind(serde_json::to_string(q).expect("serialisable"))
            .bind(&q.name)
            .execute(pool)
            .await.map(|d| d.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Fails with [`StoreError::InUse`] while a number routes to the queue or another queue
    /// overflows into it.
    pub async fn check_queue_unused(&self, name: &str) -> Result<(), StoreError> {
        let mut users: Vec<String> = self
            .numbers()
            .await?
            .into_iter()
            .filter(|n| n.queue.as_deref() == Some(name))
            .map(|n| format!("number {}", n.number))
            .collect();
        users.extend(
            self.queues()
                .await?
                .into_iter()
                .filter(|q| q.overflow == Overflow::Queue(name.to_string()))
                .map(|q| format!("queue {} (overflow)", q.name)),
        );
        if !users.is_empty() {
            return Err(StoreError::InUse(users.join(", ")));
        }
        Ok(())
    }

    /// Removes a queue that nothing refers to any more.
    pub async fn delete_queue(&self, name: &str) -> Result<(), StoreError> {
        self.check_queue_unused(name).await?;
        let done = on_db!(self, pool => sqlx::query("DELETE FROM queues WHERE name = $1")
            .bind(name)
            .execute(pool)
            .await.map(|d| d.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn queues(&self) -> Result<Vec<QueueConfig>, StoreError> {
        Ok(
            on_db!(self, pool => sqlx::query("SELECT config FROM queues ORDER BY name")
            .fetch_all(pool)
            .await?
            .iter()
            .filter_map(|r| serde_json::from_str(&r.get::<String, _>("config")).ok())
            .collect()),
        )
    }

    pub async fn queue_exists(&self, name: &str) -> Result<bool, StoreError> {
        let found: Option<String> = on_db!(self, pool => sqlx::query_scalar("SELECT name FROM queues WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await)?;
        Ok(found.is_some())
    }

    pub async fn pause_reasons(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            on_db!(self, pool => sqlx::query_scalar("SELECT name FROM pause_reasons ORDER BY position, id")
                .fetch_all(pool)
                .await)?,
        )
    }

    pub async fn add_pause_reason(&self, name: &str) -> Result<(), StoreError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(invalid("name", "1-64 characters"));
        }
        let r = on_db!(self, pool => sqlx::query("INSERT INTO pause_reasons (name, position) VALUES ($1, (SELECT COALESCE(MAX(position), 0) + 1 FROM pause_reasons))")
            .bind(name)
            .execute(pool)
            .await.map(|d| d.rows_affected()));
        r.map_err(conflict_on("name"))?;
        Ok(())
    }

    /// Each operator's last login, logout, pause or resume: their state to restore.
    pub async fn operator_states(&self) -> Result<HashMap<String, StoredState>, StoreError> {
        Ok(on_db!(self, pool => sqlx::query(
            "SELECT operator, kind, data FROM queue_events WHERE id IN (SELECT MAX(id) FROM queue_events WHERE kind IN ('login', 'logout', 'paused', 'resumed') GROUP BY operator)",
        )
        .fetch_all(pool)
        .await?
            .iter()
            .filter_map(|r| {
                let operator: String = r.get("operator");
                let state = match r.get::<String, _>("kind").as_str() {
                    "logout" => StoredState::LoggedOut,
                    "paused" => {
                        let data: serde_json::Value =
                            serde_json::from_str(&r.get::<String, _>("data")).ok()?;
                        StoredState::Paused(data["reason"].as_str()?.to_string())
                    }
                    _ => StoredState::LoggedIn,
                };
                Some((operator, state))
            })
            .collect()))
    }

    /// Accepted and missed queue offers per operator since `since_ms`.
    pub async fn operator_counters(
        &self,
        since_ms: u64,
    ) -> Result<HashMap<String, Counters>, StoreError> {
        let rows: Vec<(String, String, i64)> = on_db!(self, pool => sqlx::query_as("SELECT operator, kind, COUNT(*) AS n FROM queue_events WHERE at_ms >= $1 AND kind IN ('answered', 'no_answer') GROUP BY operator, kind")
            .bind(since_ms as i64)
            .fetch_all(pool)
            .await)?;
        let mut out: HashMap<String, Counters> = HashMap::new();
        for (operator, kind, n) in rows {
            let c = out.entry(operator).or_default();
            let n = n as u32;
            match kind.as_str() {
                "answered" => c.accepted = n,
                _ => c.missed = n,
            }
        }
        Ok(out)
    }
}

impl Store {
    /// Queue and operator events in the order they happened, optionally of one queue or one
    /// operator, after event `after_id`, at most `limit`. Each is the event's JSON plus `id`.
    pub async fn queue_events(
        &self,
        queue: Option<&str>,
        operator: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        Ok(
            on_db!(self, pool => sqlx::query("SELECT id, data FROM queue_events WHERE id > $1 AND ($2 IS NULL OR queue = $2) AND ($3 IS NULL OR operator = $3) ORDER BY id LIMIT $4")
            .bind(after_id)
            .bind(queue)
            .bind(operator)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .filter_map(|r| {
                let mut v: serde_json::Value =
                    serde_json::from_str(&r.get::<String, _>("data")).ok()?;
                v["id"] = r.get::<i64, _>("id").into();
                Some(v)
            })
            .collect()),
        )
    }
}
