//! The event log's writer: events from call control are appended to `call_events` (and
//! folded into the `calls` and `recordings` rows), queue and operator events to
//! `queue_events`, in one transaction per batch, and only then published. A subscriber
//! never sees an event a crash could take back.

use crate::reports::cells_store::{mark_for_rebuild, Ledger};
use crate::store::{insert_rows, Arg, Statement};
use crate::{bind_args, on_db};
use crate::{Store, StoreError};
use kolokol_engine::event::{EndCause, Event, EventBus, EventKind, LegRole, Record};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Waits between attempts to write a batch the database refused.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Appends and publishes until the channel closes or `stop` fires; on stop, everything
/// already queued is written first. Give it a store of its own ([`Store::dedicated`]), so
/// that no burst of searches holding the shared pool keeps it from writing.
pub async fn run(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<Record>,
    bus: Arc<dyn EventBus>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut batch = Vec::with_capacity(1024);
    let mut stopping = false;
    // The reports' aggregates as the stored log leaves them; reloaded after a failure.
    let mut ledger: Option<Ledger> = None;
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
        // A batch is written or retried, never dropped: what call control recorded is
        // kept while the database is busy or away, and published once stored.
        let mut backoff = RETRY_FIRST;
        let stored = loop {
            match append(&store, &mut ledger, &mut batch).await {
                Ok(stored) => break stored,
                Err(e) => {
                    ledger = None;
                    tracing::error!(error = %e, events = batch.len(), retry_ms = backoff.as_millis() as u64, "appending call events failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        };
        // Duplicates were stored before, and published then.
        for i in stored {
            bus.publish(&batch[i]);
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

/// Stores a batch and, in the same transaction, what it adds to the reports' aggregates.
/// Events already stored (delivered twice) are skipped; returns which were stored. An
/// event older than what the aggregates already hold marks them for a rebuild from its
/// day, done right after.
async fn append(
    store: &Store,
    slot: &mut Option<Ledger>,
    batch: &mut [Record],
) -> Result<Vec<usize>, StoreError> {
    let ledger = match slot {
        Some(l) => l,
        None => slot.insert(store.resume_ledger().await?),
    };
    let mut stored: Vec<usize> = Vec::with_capacity(batch.len());
    let late = on_db!(store, pool => {
        let mut tx = pool.begin().await?;
        // Raised after the call was forgotten in memory: next in its sequence.
        let mut next_seq: HashMap<String, u32> = HashMap::new();
        for record in batch.iter_mut() {
            let Record::Call(e) = record else { continue };
            if e.seq != u32::MAX {
                continue;
            }
            let seq = match next_seq.get(&e.call_id) {
                Some(seq) => *seq,
                None => {
                    let max: Option<i64> =
                        sqlx::query_scalar("SELECT MAX(seq) FROM call_events WHERE call_id = $1")
                            .bind(&e.call_id)
                            .fetch_one(&mut *tx)
                            .await?;
                    max.unwrap_or(0) as u32 + 1
                }
            };
            e.seq = seq;
            next_seq.insert(e.call_id.clone(), seq + 1);
        }
        // The event rows, many per statement; those inserted come back (a duplicate of
        // one already stored does not).
        let mut rows = EventRows::of(batch);
        let mut inserted: HashSet<(String, i64)> = HashSet::new();
        for (sql, args) in rows.statements() {
            for r in bind_args!(sqlx::query(&sql), &args).fetch_all(&mut *tx).await? {
                inserted.insert((r.get(0), r.get(1)));
            }
        }
        for (i, key) in rows.keys.into_iter().enumerate() {
            if inserted.remove(&key) {
                stored.push(i);
            }
        }
        let mut summaries = Summaries::default();
        for &i in &stored {
            if let Record::Call(e) = &batch[i] {
                summaries.add(e);
            }
        }
        for (sql, args) in summaries.statements() {
            bind_args!(sqlx::query(&sql), &args).execute(&mut *tx).await?;
        }
        let late = ledger.feed(stored.iter().map(|&i| &batch[i]));
        let more = match late {
            None => ledger.statements(),
            Some(from_ms) => mark_for_rebuild(from_ms),
        };
        for (sql, args) in &more {
            bind_args!(sqlx::query(sql.as_ref()), args).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        late
    });
    if late.is_some() {
        // The batch is stored: a failed rebuild is tried again with the next one.
        *slot = store
            .resume_ledger()
            .await
            .inspect_err(
                |e| tracing::error!(error = %e, "rebuilding the reports' aggregates failed"),
            )
            .ok();
    }
    Ok(stored)
}

fn int(v: impl Into<i64>) -> Arg {
    Arg::Int(Some(v.into()))
}

fn text(v: impl ToString) -> Arg {
    Arg::Text(Some(v.to_string()))
}

fn opt_text(v: Option<impl ToString>) -> Arg {
    Arg::Text(v.map(|v| v.to_string()))
}

/// FNV-1a of a queue event's JSON: with its instant, what makes it the same event.
fn digest(data: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// A batch's event rows, and the key each record's row has.
struct EventRows {
    queue: Vec<Vec<Arg>>,
    call: Vec<Vec<Arg>>,
    /// Per record: `(at_ms as text, digest)` of a queue event, `(call, seq)` of a call's.
    keys: Vec<(String, i64)>,
}

impl EventRows {
    fn of(batch: &[Record]) -> EventRows {
        let mut rows = EventRows {
            queue: Vec::new(),
            call: Vec::new(),
            keys: Vec::with_capacity(batch.len()),
        };
        for record in batch {
            match record {
                Record::Queue(q) => {
                    let data = serde_json::to_string(q).unwrap_or_default();
                    let digest = digest(&data);
                    rows.keys.push((q.at_ms.to_string(), digest));
                    rows.queue.push(vec![
                        int(q.at_ms as i64),
                        text(q.kind.name()),
                        opt_text(q.kind.queue()),
                        opt_text(q.kind.call()),
                        opt_text(q.kind.operator()),
                        text(data),
                        int(digest),
                    ]);
                }
                Record::Call(e) => {
                    rows.keys.push((e.call_id.clone(), i64::from(e.seq)));
                    rows.call.push(vec![
                        text(&e.call_id),
                        int(e.seq),
                        int(e.at_ms as i64),
                        opt_text(leg_name(e.leg)),
                        text(e.kind.name()),
                        text(serde_json::to_string(e).unwrap_or_default()),
                    ]);
                }
            }
        }
        rows
    }

    /// The inserts; each returns the keys of the rows it inserted (a queue event's
    /// instant as text, so that both kinds of key read alike).
    fn statements(&mut self) -> Vec<Statement> {
        let mut out = insert_rows(
            "INSERT INTO queue_events (at_ms, kind, queue, call_id, operator, data, digest)",
            "ON CONFLICT DO NOTHING RETURNING CAST(at_ms AS TEXT), digest",
            std::mem::take(&mut self.queue),
        );
        out.extend(insert_rows(
            "INSERT INTO call_events (call_id, seq, at_ms, leg, kind, data)",
            "ON CONFLICT DO NOTHING RETURNING call_id, seq",
            std::mem::take(&mut self.call),
        ));
        out
    }
}

/// What a batch's call events change in the calls' summary rows (and recordings'), as
/// few statements: new calls inserted many per statement, each call's last answer and
/// end set many per statement (later events of one call win, as one by one they would).
#[derive(Default)]
struct Summaries {
    new_calls: Vec<Vec<Arg>>,
    answered: BTreeMap<String, Vec<Arg>>,
    ended: BTreeMap<String, Vec<Arg>>,
    recordings: Vec<Statement>,
}

impl Summaries {
    fn add(&mut self, e: &Event) {
        let id = || text(&e.call_id);
        let at = int(e.at_ms as i64);
        match &e.kind {
            EventKind::Offered {
                direction,
                from,
                to,
                user,
                number,
                trunk,
            } => self.new_calls.push(vec![
                id(),
                text(direction.as_str()),
                text(from),
                text(to),
                opt_text(user.as_ref()),
                opt_text(number.as_ref()),
                opt_text(trunk.as_ref()),
                at,
            ]),
            EventKind::Answered { by } => {
                self.answered
                    .insert(e.call_id.clone(), vec![id(), at, text(by)]);
            }
            EventKind::RecordingStarted { path } => {
                self.recordings.push((
                    "UPDATE calls SET recording = $1 WHERE id = $2".into(),
                    vec![text(path), id()],
                ));
                self.recordings.push((
                    "INSERT INTO recordings (call_id, path) VALUES ($1, $2) ON CONFLICT DO NOTHING".into(),
                    vec![id(), text(path)],
                ));
            }
            EventKind::RecordingFinished {
                duration_ms,
                bytes,
                channels,
                ..
            } => self.recordings.push((
                "UPDATE recordings SET duration_ms = $1, bytes = $2, channels = $3, complete = TRUE WHERE call_id = $4".into(),
                vec![
                    int(*duration_ms as i64),
                    int(*bytes as i64),
                    int(*channels),
                    id(),
                ],
            )),
            EventKind::Ended { cause, status, .. } => {
                self.ended.insert(
                    e.call_id.clone(),
                    vec![
                        id(),
                        at,
                        text(cause.as_str()),
                        Arg::Int(status.map(i64::from)),
                    ],
                );
            }
            _ => {}
        }
    }

    fn statements(self) -> Vec<Statement> {
        let mut out = insert_rows(
            "INSERT INTO calls (id, direction, from_number, to_number, user_login, number, trunk, started_ms)",
            "ON CONFLICT DO NOTHING",
            self.new_calls,
        );
        out.extend(self.recordings);
        // VALUES' columns are column1, column2, … in both SQLite and PostgreSQL.
        out.extend(insert_rows(
            "UPDATE calls SET answered_ms = CAST(v.column2 AS BIGINT), answered_by = v.column3 FROM (",
            ") AS v WHERE calls.id = v.column1",
            self.answered.into_values().collect(),
        ));
        out.extend(insert_rows(
            "UPDATE calls SET ended_ms = CAST(v.column2 AS BIGINT), end_cause = v.column3, \
             end_status = CAST(v.column4 AS BIGINT) FROM (",
            ") AS v WHERE calls.id = v.column1",
            self.ended.into_values().collect(),
        ));
        out
    }
}

/// After a crash: calls without an end get an `ended` event (cause `interrupted`), in
/// their own sequence. Returns how many.
pub async fn close_interrupted(store: &Store, now_ms: u64) -> Result<usize, StoreError> {
    let open: Vec<(String, Option<i64>)> = on_db!(store, pool => {
        sqlx::query_as("SELECT c.id, (SELECT MAX(seq) FROM call_events WHERE call_id = c.id) AS seq FROM calls c WHERE c.ended_ms IS NULL")
            .fetch_all(pool)
            .await?
    });
    let mut events: Vec<Record> = open
        .into_iter()
        .map(|(call_id, seq)| Event {
            call_id,
            seq: seq.unwrap_or(0) as u32 + 1,
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
    append(store, &mut None, &mut events).await?;
    Ok(n)
}

/// A recording as the database knows it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct Recording {
    pub call_id: String,
    pub path: String,
    pub duration_ms: i64,
    pub bytes: i64,
    pub channels: i64,
    pub complete: bool,
}

impl Store {
    /// Recordings never finished (left by a crash).
    pub async fn unfinished_recordings(&self) -> Result<Vec<Recording>, StoreError> {
        Ok(on_db!(self, pool => {
            sqlx::query_as::<_, Recording>("SELECT * FROM recordings WHERE NOT complete")
                .fetch_all(pool)
                .await?
        }))
    }

    pub async fn complete_recording(
        &self,
        call_id: &str,
        duration_ms: u64,
        bytes: u64,
        channels: u16,
    ) -> Result<(), StoreError> {
        on_db!(self, pool => {
            sqlx::query("UPDATE recordings SET duration_ms = $1, bytes = $2, channels = $3, complete = TRUE WHERE call_id = $4")
                .bind(duration_ms as i64)
                .bind(bytes as i64)
                .bind(i64::from(channels))
                .bind(call_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn recording(&self, call_id: &str) -> Result<Recording, StoreError> {
        on_db!(self, pool => {
            sqlx::query_as::<_, Recording>("SELECT * FROM recordings WHERE call_id = $1")
                .bind(call_id)
                .fetch_optional(pool)
                .await?
        })
        .ok_or(StoreError::NotFound)
    }

    /// Who took part in a call (the user placing it and the one answering).
    pub async fn call_users(&self, call_id: &str) -> Result<Vec<String>, StoreError> {
        let (user, answered_by): (Option<String>, Option<String>) = on_db!(self, pool => {
            sqlx::query_as("SELECT user_login, answered_by FROM calls WHERE id = $1")
                .bind(call_id)
                .fetch_optional(pool)
                .await?
        })
        .ok_or(StoreError::NotFound)?;
        Ok([user, answered_by].into_iter().flatten().collect())
    }

    /// The users a call was put to besides those: the operators a queue rang, the user it
    /// overflowed to, those it was transferred to (so an operator may open its card while
    /// their phone rings).
    pub async fn call_offered_to(&self, call_id: &str) -> Result<Vec<String>, StoreError> {
        use kolokol_engine::queue::{Overflow, QueueEvent, QueueEventKind};
        // A call meets few operators; the bound only keeps a pathological one cheap.
        let rows: Vec<String> = on_db!(self, pool => {
            sqlx::query_scalar("SELECT data FROM queue_events WHERE call_id = $1 AND kind IN ('offered', 'overflowed', 'transferred') ORDER BY id LIMIT 1000")
                .bind(call_id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .iter()
            .filter_map(|d| serde_json::from_str::<QueueEvent>(d).ok())
            .filter_map(|e| match e.kind {
                QueueEventKind::Offered { operator, .. } => Some(operator),
                QueueEventKind::Overflowed {
                    to: Overflow::User(user),
                    ..
                } => Some(user),
                QueueEventKind::Transferred { to, .. } => Some(to),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kolokol_engine::event::LocalBus;
    use kolokol_engine::queue::{QueueEvent, QueueEventKind};

    /// Searches that hold every connection of the shared pool once made the writer's
    /// acquire time out, and the whole batch was dropped. Its own connection keeps it
    /// writing.
    #[tokio::test]
    async fn a_busy_shared_pool_does_not_keep_the_log_from_writing() {
        let dir = std::env::temp_dir().join(format!("kolokol-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("log.db").display());
        let store = Store::open(&url).await.unwrap();
        let crate::store::Db::Sqlite(pool) = &store.db else {
            unreachable!("a SQLite URL")
        };
        // Every connection of the shared pool (four), as a burst of searches holds them.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(pool.acquire().await.unwrap());
        }
        assert!(pool.try_acquire().is_none());
        let bus = Arc::new(LocalBus::new(16));
        let mut published = bus.subscribe();
        let (tx, rx) = mpsc::unbounded_channel();
        let (_stop, stopped) = oneshot::channel();
        tokio::spawn(run(store.dedicated().await.unwrap(), rx, bus, stopped));
        let login = QueueEvent::new(
            1,
            QueueEventKind::Login {
                operator: "ivanova".into(),
            },
        );
        tx.send(Record::Queue(login.clone())).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), published.recv())
            .await
            .expect("the event is stored and published while the pool is held")
            .unwrap();
        assert_eq!(got, Record::Queue(login));
        drop(held);
        let stored: i64 = on_db!(store, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM queue_events WHERE operator = 'ivanova'")
                .fetch_one(pool)
                .await
                .unwrap()
        });
        assert_eq!(stored, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
