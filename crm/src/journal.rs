//! The event log's writer: events from call control are appended to `call_events` (and
//! folded into the `calls` and `recordings` rows), queue and operator events to
//! `queue_events`, in one transaction per batch, and only then published. A subscriber
//! never sees an event a crash could take back.

use crate::{Store, StoreError};
use kolokol_engine::event::{EndCause, Event, EventBus, EventKind, LegRole, Record};
use kolokol_engine::queue::QueueEvent;
use sqlx::{Row, Sqlite, Transaction};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Appends and publishes until the channel closes or `stop` fires; on stop, everything
/// already queued is written first.
pub async fn run(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<Record>,
    bus: Arc<dyn EventBus>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut batch = Vec::with_capacity(1024);
    let mut stopping = false;
    loop {
        if stopping {
            while let Ok(e) = rx.try_recv() {
                batch.push(e);
            }
            if batch.is_empty() {
                break;
            }
        } else {
            tokio::select! {
                n = rx.recv_many(&mut batch, 4096) => if n == 0 { break },
                _ = &mut stop => { stopping = true; continue; }
            }
        }
        match append(&store, &mut batch).await {
            Ok(()) => {
                for record in &batch {
                    bus.publish(record);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "appending call events failed")
            }
        }
        batch.clear();
    }
}

fn leg_name(leg: Option<LegRole>) -> Option<&'static str> {
    leg.map(|l| match l {
        LegRole::Caller => "caller",
        LegRole::Callee => "callee",
    })
}

async fn append(store: &Store, batch: &mut [Record]) -> Result<(), sqlx::Error> {
    let mut tx = store.pool.begin().await?;
    for record in batch.iter_mut() {
        let e = match record {
            Record::Call(e) => e,
            Record::Queue(q) => {
                insert_queue_event(&mut tx, q).await?;
                continue;
            }
        };
        if e.seq == u32::MAX {
            // Raised after the call was forgotten in memory: next in its sequence.
            let max: Option<i64> =
                sqlx::query_scalar("SELECT MAX(seq) FROM call_events WHERE call_id = $1")
                    .bind(&e.call_id)
                    .fetch_one(&mut *tx)
                    .await?;
            e.seq = max.unwrap_or(0) as u32 + 1;
        }
        insert(&mut tx, e).await?;
    }
    tx.commit().await
}

async fn insert_queue_event(
    tx: &mut Transaction<'_, Sqlite>,
    e: &QueueEvent,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO queue_events (at_ms, kind, queue, call_id, operator, data) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(e.at_ms as i64)
        .bind(e.kind.name())
        .bind(e.kind.queue())
        .bind(e.kind.call())
        .bind(e.kind.operator())
        .bind(serde_json::to_string(e).unwrap_or_default())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn insert(tx: &mut Transaction<'_, Sqlite>, e: &Event) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT OR IGNORE INTO call_events (call_id, seq, at_ms, leg, kind, data) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&e.call_id)
        .bind(e.seq as i64)
        .bind(e.at_ms as i64)
        .bind(leg_name(e.leg))
        .bind(e.kind.name())
        .bind(serde_json::to_string(e).unwrap_or_default())
        .execute(&mut **tx)
        .await?;
    let at = e.at_ms as i64;
    match &e.kind {
        EventKind::Offered {
            direction,
            from,
            to,
            user,
            number,
            trunk,
        } => {
            sqlx::query("INSERT OR IGNORE INTO calls (id, direction, from_number, to_number, user_login, number, trunk, started_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&e.call_id)
                .bind(direction.as_str())
                .bind(from)
                .bind(to)
                .bind(user)
                .bind(number)
                .bind(trunk)
                .bind(at)
                .execute(&mut **tx)
                .await?;
        }
        EventKind::Answered { by } => {
            sqlx::query("UPDATE calls SET answered_ms = $1, answered_by = $2 WHERE id = $3")
                .bind(at)
                .bind(by)
                .bind(&e.call_id)
                .execute(&mut **tx)
                .await?;
        }
        EventKind::RecordingStarted { path } => {
            sqlx::query("UPDATE calls SET recording = $1 WHERE id = $2")
                .bind(path)
                .bind(&e.call_id)
                .execute(&mut **tx)
                .await?;
            sqlx::query("INSERT OR IGNORE INTO recordings (call_id, path) VALUES ($1, $2)")
                .bind(&e.call_id)
                .bind(path)
                .execute(&mut **tx)
                .await?;
        }
        EventKind::RecordingFinished {
            duration_ms,
            bytes,
            channels,
            ..
        } => {
            sqlx::query("UPDATE recordings SET duration_ms = $1, bytes = $2, channels = $3, complete = 1 WHERE call_id = $4")
                .bind(*duration_ms as i64)
                .bind(*bytes as i64)
                .bind(i64::from(*channels))
                .bind(&e.call_id)
                .execute(&mut **tx)
                .await?;
        }
        EventKind::Ended { cause, status, .. } => {
            sqlx::query(
                "UPDATE calls SET ended_ms = $1, end_cause = $2, end_status = $3 WHERE id = $4",
            )
            .bind(at)
            .bind(cause.as_str())
            .bind(status.map(i64::from))
            .bind(&e.call_id)
            .execute(&mut **tx)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// After a crash: calls without an end get an `ended` event (cause `interrupted`), in
/// their own sequence. Returns how many.
pub async fn close_interrupted(store: &Store, now_ms: u64) -> Result<usize, StoreError> {
    let rows = sqlx::query("SELECT c.id, (SELECT MAX(seq) FROM call_events WHERE call_id = c.id) AS seq FROM calls c WHERE c.ended_ms IS NULL")
        .fetch_all(&store.pool)
        .await?;
    let mut events: Vec<Record> = rows
        .iter()
        .map(|r| Event {
            call_id: r.get("id"),
            seq: r.get::<Option<i64>, _>("seq").unwrap_or(0) as u32 + 1,
            at_ms: now_ms,
            leg: None,
            kind: EventKind::Ended {
                cause: EndCause::Interrupted,
                status: None,
                by: None,
            },
        })
        .map(Record::Call)
        .collect();
    let n = events.len();
    append(store, &mut events).await?;
    Ok(n)
}

/// A recording as the database knows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recording {
    pub call_id: String,
    pub path: String,
    pub duration_ms: i64,
    pub bytes: i64,
    pub channels: i64,
    pub complete: bool,
}

fn row_to_recording(r: &sqlx::sqlite::SqliteRow) -> Recording {
    Recording {
        call_id: r.get("call_id"),
        path: r.get("path"),
        duration_ms: r.get("duration_ms"),
        bytes: r.get("bytes"),
        channels: r.get("channels"),
        complete: r.get::<i64, _>("complete") != 0,
    }
}

impl Store {
    /// Recordings never finished (left by a crash).
    pub async fn unfinished_recordings(&self) -> Result<Vec<Recording>, StoreError> {
        let rows = sqlx::query("SELECT * FROM recordings WHERE complete = 0")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(row_to_recording).collect())
    }

    pub async fn complete_recording(
        &self,
        call_id: &str,
        duration_ms: u64,
        bytes: u64,
        channels: u16,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE recordings SET duration_ms = $1, bytes = $2, channels = $3, complete = 1 WHERE call_id = $4")
            .bind(duration_ms as i64)
            .bind(bytes as i64)
            .bind(i64::from(channels))
            .bind(call_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn recording(&self, call_id: &str) -> Result<Recording, StoreError> {
        let row = sqlx::query("SELECT * FROM recordings WHERE call_id = $1")
            .bind(call_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row_to_recording(&row))
    }

    /// Who took part in a call (the user placing it and the one answering).
    pub async fn call_users(&self, call_id: &str) -> Result<Vec<String>, StoreError> {
        let row = sqlx::query("SELECT user_login, answered_by FROM calls WHERE id = $1")
            .bind(call_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok([
            row.get::<Option<String>, _>("user_login"),
            row.get("answered_by"),
        ]
        .into_iter()
        .flatten()
        .collect())
    }
}
