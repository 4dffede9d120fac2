//! The stored aggregates ([`super::contact::cells`]): the statements that add a batch's
//! deltas (run by the journal in the transaction that stores the events), the figures of
//! a report's period read back from them, and a rebuild from the raw log.

use super::contact::cells::{CellBook, Cells, Grain, OperatorQueue, ALL};
use super::contact::{rank, Fact};
use super::contact::{
    Book, FactReader, Figures, InQueue, Ongoing, OperatorFigures, OperatorTrack, Period,
    PeriodBook, QueueFigures, Replay,
};
use crate::store::{insert_rows, Arg, Db, Statement};
use crate::{bind_args, on_db, Store, StoreError};
use kolokol_engine::event::Record;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

const QUEUE_COLUMNS: [&str; 17] = [
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "overflowed",
    "timed_out",
    "interrupted",
    "answered_within_service_level",
    "answered_wait_ms",
    "wait_ms",
    "waits",
    "longest_wait_ms",
    "talk_ms",
    "completed",
    "held",
    "hold_ms",
    "transferred",
];

fn queue_values(f: &QueueFigures) -> [u64; 17] {
    [
        f.offered,
        f.answered,
        f.abandoned,
        f.short_abandoned,
        f.overflowed,
        f.timed_out,
        f.interrupted,
        f.answered_within_service_level,
        f.answered_wait_ms,
        f.wait_ms,
        f.waits,
        f.longest_wait_ms,
        f.talk_ms,
        f.completed,
        f.held,
        f.hold_ms,
        f.transferred,
    ]
}

fn queue_from(v: [u64; 17]) -> QueueFigures {
    let [offered, answered, abandoned, short_abandoned, overflowed, timed_out, interrupted, answered_within_service_level, answered_wait_ms, wait_ms, waits, longest_wait_ms, talk_ms, completed, held, hold_ms, transferred] =
        v;
    QueueFigures {
        offered,
        answered,
        abandoned,
        short_abandoned,
        overflowed,
        timed_out,
        interrupted,
        answered_within_service_level,
        answered_wait_ms,
        wait_ms,
        waits,
        longest_wait_ms,
        talk_ms,
        completed,
        held,
        hold_ms,
        transferred,
        ..QueueFigures::default()
    }
}

const OPERATOR_COLUMNS: [&str; 12] = [
    "in_system_ms",
    "ready_ms",
    "ringing_ms",
    "talk_ms",
    "outbound_talk_ms",
    "wrap_up_ms",
    "pause_ms",
    "made",
    "answered",
    "missed",
    "hold_ms",
    "transferred",
];

fn operator_values(f: &OperatorFigures) -> [u64; 12] {
    [
        f.in_system_ms,
        f.ready_ms,
        f.ringing_ms,
        f.talk_ms,
        f.outbound_talk_ms,
        f.wrap_up_ms,
        f.pause_ms,
        f.made,
        f.answered,
        f.missed,
        f.hold_ms,
        f.transferred,
    ]
}

fn operator_from(v: [u64; 12]) -> OperatorFigures {
    let [in_system_ms, ready_ms, ringing_ms, talk_ms, outbound_talk_ms, wrap_up_ms, pause_ms, made, answered, missed, hold_ms, transferred] =
        v;
    OperatorFigures {
        in_system_ms,
        ready_ms,
        ringing_ms,
        talk_ms,
        outbound_talk_ms,
        wrap_up_ms,
        pause_ms,
        made,
        answered,
        missed,
        hold_ms,
        transferred,
        ..OperatorFigures::default()
    }
}

/// The `INSERT INTO … (…)` head and `ON CONFLICT DO UPDATE` tail of multi-row upserts
/// adding each value to the stored one (`longest_*`: the larger).
struct Upsert {
    head: String,
    tail: String,
}

impl Upsert {
    fn new(table: &str, keys: &[&str], columns: &[&str]) -> Upsert {
        let all: Vec<&str> = keys.iter().chain(columns).copied().collect();
        let sets: Vec<String> = columns
            .iter()
            .map(|c| {
                if c.starts_with("longest_") {
                    format!("{c} = CASE WHEN excluded.{c} > {table}.{c} THEN excluded.{c} ELSE {table}.{c} END")
                } else {
                    format!("{c} = {table}.{c} + excluded.{c}")
                }
            })
            .collect();
        Upsert {
            head: format!("INSERT INTO {table} ({})", all.join(", ")),
            tail: format!(
                "ON CONFLICT ({}) DO UPDATE SET {}",
                keys.join(", "),
                sets.join(", ")
            ),
        }
    }

    fn statements(&self, rows: Vec<Vec<Arg>>) -> Vec<Statement> {
        insert_rows(&self.head, &self.tail, rows)
    }
}

static QUEUE_UPSERT: LazyLock<Upsert> = LazyLock::new(|| {
    Upsert::new(
        "report_queue_cells",
        &["grain", "start_ms", "queue"],
        &QUEUE_COLUMNS,
    )
});
static OPERATOR_UPSERT: LazyLock<Upsert> = LazyLock::new(|| {
    Upsert::new(
        "report_operator_cells",
        &["grain", "start_ms", "operator"],
        &OPERATOR_COLUMNS,
    )
});
static PAUSE_UPSERT: LazyLock<Upsert> = LazyLock::new(|| {
    Upsert::new(
        "report_pause_cells",
        &["start_ms", "operator", "reason"],
        &["pause_ms"],
    )
});
static OPERATOR_QUEUE_UPSERT: LazyLock<Upsert> = LazyLock::new(|| {
    Upsert::new(
        "report_operator_queue_cells",
        &["start_ms", "operator", "queue"],
        &OPERATOR_QUEUE_COLUMNS,
    )
});
const OPERATOR_QUEUE_COLUMNS: [&str; 4] = ["answered", "missed", "served", "transferred"];

static TRACK_UPSERT: LazyLock<Upsert> = LazyLock::new(|| Upsert {
    head: "INSERT INTO report_tracks (operator, track)".into(),
    tail: "ON CONFLICT (operator) DO UPDATE SET track = excluded.track".into(),
});
static CALL_UPSERT: LazyLock<Upsert> = LazyLock::new(|| Upsert {
    head: "INSERT INTO report_calls (queue, call_id, state)".into(),
    tail: "ON CONFLICT (queue, call_id) DO UPDATE SET state = excluded.state".into(),
});

fn int(v: u64) -> Arg {
    Arg::Int(Some(v as i64))
}

fn text(v: &str) -> Arg {
    Arg::Text(Some(v.to_string()))
}

/// What adds `cells` to the stored cells.
pub fn cell_statements(cells: &Cells) -> Vec<Statement> {
    let mut queues = Vec::new();
    for ((grain, start, queue), f) in &cells.queues {
        let mut args = vec![text(grain.code()), int(*start), text(queue)];
        args.extend(queue_values(f).map(int));
        queues.push(args);
    }
    let (mut operators, mut pauses) = (Vec::new(), Vec::new());
    for ((grain, start, operator), f) in &cells.operators {
        let mut args = vec![text(grain.code()), int(*start), text(operator)];
        args.extend(operator_values(f).map(int));
        operators.push(args);
        if *grain == Grain::Day {
            for (reason, ms) in &f.pause_by_reason {
                pauses.push(vec![int(*start), text(operator), text(reason), int(*ms)]);
            }
        }
    }
    let operator_queues = cells
        .operator_queues
        .iter()
        .map(|((day, operator, queue), c)| {
            vec![
                int(*day),
                text(operator),
                text(queue),
                int(c.answered),
                int(c.missed),
                int(c.served),
                int(c.transferred),
            ]
        })
        .collect();
    let mut out = QUEUE_UPSERT.statements(queues);
    out.extend(OPERATOR_UPSERT.statements(operators));
    out.extend(PAUSE_UPSERT.statements(pauses));
    out.extend(OPERATOR_QUEUE_UPSERT.statements(operator_queues));
    out
}

/// `DELETE FROM {table} WHERE ({columns}) IN (VALUES …)` for `keys`, many per statement.
fn delete_keys(table: &str, columns: &str, keys: Vec<Vec<Arg>>) -> Vec<Statement> {
    insert_rows(
        &format!("DELETE FROM {table} WHERE ({columns}) IN ("),
        ")",
        keys,
    )
}

/// What stores the operators' and calls' states `ongoing` changed since the last time.
pub fn ongoing_statements(ongoing: &mut Ongoing) -> Vec<Statement> {
    let (operators, calls) = ongoing.take_changes();
    let (mut tracks, mut gone_tracks) = (Vec::new(), Vec::new());
    for o in operators {
        match ongoing.tracks.get(&o) {
            Some(t) => tracks.push(vec![
                text(&o),
                text(&serde_json::to_string(t).unwrap_or_default()),
            ]),
            None => gone_tracks.push(vec![text(&o)]),
        }
    }
    let (mut waiting, mut gone_calls) = (Vec::new(), Vec::new());
    for key in calls {
        match ongoing.calls.get(&key) {
            Some(c) => waiting.push(vec![
                text(&key.0),
                text(&key.1),
                text(&serde_json::to_string(c).unwrap_or_default()),
            ]),
            None => gone_calls.push(vec![text(&key.0), text(&key.1)]),
        }
    }
    let mut out = TRACK_UPSERT.statements(tracks);
    out.extend(delete_keys("report_tracks", "operator", gone_tracks));
    out.extend(CALL_UPSERT.statements(waiting));
    out.extend(delete_keys("report_calls", "queue, call_id", gone_calls));
    out
}

/// Outbound calls still open are looked for this far back from the last stored event
/// when the journal resumes (the log's own time: a rebuild may replay an old stretch).
const OUTBOUND_LOOKBACK_MS: i64 = 86_400_000;

/// The setting that holds the instant (local midnight) the aggregates are to be rebuilt
/// from: set with the batch that brought an event older than they already hold.
const REBUILD_FROM: &str = "reports.rebuild_from_ms";

/// The journal's replay of everything stored: what is going on, booking cell deltas.
pub struct Ledger {
    pub replay: Replay<CellBook>,
    pub reader: FactReader,
    /// The instant of the last fact fed: nothing before it can be booked.
    watermark: u64,
}

impl Ledger {
    /// Feeds the facts of records just stored, in the order a replay of the log puts
    /// them. A batch with a record earlier than the last fact fed (one that may be a
    /// fact: [`FactReader::may_count`]) is not fed: the midnight of its day,
    /// from which the aggregates are to be rebuilt, is returned instead. Facts of the
    /// instant last fed are fed as they come: no time passes between them, and only a
    /// restart's `interrupted` and a queue event of the same call in one millisecond
    /// would leave another state than the replay's order.
    pub fn feed<'a>(&mut self, records: impl Iterator<Item = &'a Record>) -> Option<u64> {
        let mut records: Vec<&Record> = records.filter(|r| FactReader::may_count(r)).collect();
        // Read in time order: an outbound call's steps make sense only so.
        records.sort_by_key(|r| r.at_ms());
        let earliest = records.first()?.at_ms();
        if earliest < self.watermark {
            return Some(self.replay.book.day_start(earliest));
        }
        let mut facts: Vec<(u64, u8, Fact)> = records
            .into_iter()
            .filter_map(|r| self.reader.read(r))
            .map(|(at, f)| (at, rank(&f), f))
            .collect();
        facts.sort_by_key(|(at, rank, _)| (*at, *rank));
        for (at, _, fact) in &facts {
            self.replay.feed(*at, fact);
            self.watermark = *at;
        }
        None
    }

    /// What stores everything fed since the last call: cell deltas and changed states.
    pub fn statements(&mut self) -> Vec<Statement> {
        replay_statements(&mut self.replay)
    }
}

/// What stores everything `replay` booked since the last time: cell deltas and the
/// changed states.
fn replay_statements(replay: &mut Replay<CellBook>) -> Vec<Statement> {
    let mut out = cell_statements(&replay.book.take());
    out.extend(ongoing_statements(&mut replay.ongoing));
    out
}

/// What marks the aggregates for a rebuild from `from_ms` (the earliest of the marks).
pub fn mark_for_rebuild(from_ms: u64) -> Vec<Statement> {
    vec![(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE \
         SET value = CASE WHEN CAST(excluded.value AS BIGINT) < CAST(settings.value AS BIGINT) \
         THEN excluded.value ELSE settings.value END"
            .into(),
        vec![text(REBUILD_FROM), text(&from_ms.to_string())],
    )]
}

/// The cells of a period as stored, and the operators' states.
#[derive(Debug, Default, PartialEq)]
pub struct StoredCells {
    pub cells: Cells,
    pub tracks: BTreeMap<String, OperatorTrack>,
}

/// A cell as read: grain, start, queue or operator, numbers.
type Keyed = (String, i64, String, Vec<i64>);
/// A day's cell as read: start, operator, reason or queue, numbers.
type Dated = (i64, String, String, Vec<i64>);
/// What [`Store::read_cells`] reads: queue, operator, pause, operator-queue cells, tracks.
type ReadCells = (
    Vec<Keyed>,
    Vec<Keyed>,
    Vec<Dated>,
    Vec<Dated>,
    Vec<(String, String)>,
);

/// The cells of a packed query (see [`Store::read_cells`]).
fn unpack<T: serde::de::DeserializeOwned>(json: &str) -> Result<Vec<T>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))
}

/// Numbers of a cell as stored (never negative), `N` of them.
fn cell_numbers<const N: usize>(v: Vec<i64>) -> Result<[u64; N], StoreError> {
    let n = v.len();
    v.into_iter()
        .map(|n| n.max(0) as u64)
        .collect::<Vec<u64>>()
        .try_into()
        .map_err(|_| {
            StoreError::Db(sqlx::Error::Decode(
                format!("a cell of {n} numbers where {N} are kept").into(),
            ))
        })
}

fn grain_of(code: &str) -> Grain {
    if code == Grain::Day.code() {
        Grain::Day
    } else {
        Grain::Slot
    }
}

impl Store {
    /// The journal's ledger as the last stored batch left it, rebuilding the aggregates
    /// first if a batch marked them for it.
    pub async fn resume_ledger(&self) -> Result<Ledger, StoreError> {
        if let Some(from) = self.setting(REBUILD_FROM).await? {
            let from_ms = from.parse::<u64>().unwrap_or(0);
            tracing::info!(
                from_ms,
                "rebuilding the reports' aggregates after a late event"
            );
            self.rebuild_reports(from_ms).await?;
        }
        self.ledger().await
    }

    /// The journal's ledger as the last stored batch left it.
    async fn ledger(&self) -> Result<Ledger, StoreError> {
        let rows: Vec<(String, String)> = on_db!(self, pool => {
            sqlx::query("SELECT operator, track FROM report_tracks")
                .fetch_all(pool).await?
                .iter().map(|r| (r.get(0), r.get(1))).collect()
        });
        let mut tracks = BTreeMap::new();
        for (o, t) in rows {
            if let Ok(t) = serde_json::from_str::<OperatorTrack>(&t) {
                tracks.insert(o, t);
            }
        }
        let rows: Vec<(String, String, String)> = on_db!(self, pool => {
            sqlx::query("SELECT queue, call_id, state FROM report_calls")
                .fetch_all(pool).await?
                .iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
        });
        let mut calls = HashMap::new();
        for (q, c, s) in rows {
            if let Ok(s) = serde_json::from_str::<InQueue>(&s) {
                calls.insert((q, c), s);
            }
        }
        let last: (Option<i64>, Option<i64>) = on_db!(self, pool => {
            sqlx::query_as("SELECT (SELECT MAX(at_ms) FROM queue_events), (SELECT MAX(at_ms) FROM call_events)")
                .fetch_one(pool).await?
        });
        let last = last.0.max(last.1).unwrap_or(0).max(0) as u64;
        let outbound: Vec<(String, String)> = on_db!(self, pool => {
            sqlx::query(
                "SELECT id, user_login FROM calls WHERE direction = 'outbound' \
                 AND user_login IS NOT NULL AND ended_ms IS NULL AND started_ms >= $1",
            )
            .bind(last as i64 - OUTBOUND_LOOKBACK_MS)
            .fetch_all(pool).await?
            .iter().map(|r| (r.get(0), r.get(1))).collect()
        });
        let mut replay = Replay::with_book(CellBook::new(self.time_zone, 0));
        replay.ongoing = Ongoing::restore(tracks, calls);
        Ok(Ledger {
            replay,
            reader: FactReader {
                outbound: outbound.into_iter().collect(),
            },
            watermark: last,
        })
    }

    /// The figures of `period` from the stored cells, plus the open part of what the
    /// operators are doing now: the same as replaying the log ([`super::contact::replay`]).
    pub async fn figures_from_cells(
        &self,
        period: Period,
        queues: Option<BTreeSet<String>>,
    ) -> Result<Figures, StoreError> {
        let (from, to) = (period.from_ms() as i64, period.end_ms() as i64);
        let day_index = |start: i64| period.day_starting(start as u64);
        let mut book = PeriodBook::new(period.clone(), queues.clone()).without_per_queue();
        let filtered = queues.is_some();
        let StoredCells {
            cells: stored,
            tracks,
        } = self.read_cells(from, to, queues.as_ref()).await?;
        for ((grain, start, queue), f) in stored.queues {
            match grain {
                Grain::Day => {
                    if let (Some(d), true) = (day_index(start as i64), book.counts(&queue)) {
                        book.queue_days[d].add(&f);
                    }
                }
                Grain::Slot => {
                    if let Some(h) = period.hour_of(start) {
                        book.hours[h].add_calls(&f);
                    }
                }
            }
        }
        for ((grain, start, operator), mut f) in stored.operators {
            match grain {
                Grain::Day => {
                    if let Some(d) = day_index(start as i64) {
                        if filtered {
                            // Of the queues asked for only: from the per-queue cells.
                            (f.answered, f.missed, f.transferred) = (0, 0, 0);
                        }
                        book.operator_day(&operator, d).add(&f);
                    }
                }
                Grain::Slot => {
                    if let Some(h) = period.hour_of(start) {
                        book.hours[h].add_times(&f);
                    }
                }
            }
        }
        // Of the queues asked for, or (queue '') of every queue.
        for ((day, operator, queue), c) in stored.operator_queues {
            let Some(d) = day_index(day as i64) else {
                continue;
            };
            if c.served > 0 {
                book.queue_days[d]
                    .operators_answering
                    .insert(operator.clone());
            }
            if queue != ALL && c.answered + c.missed + c.transferred > 0 {
                let o = book.operator_day(&operator, d);
                o.answered += c.answered;
                o.missed += c.missed;
                o.transferred += c.transferred;
            }
        }
        let until = period.until_ms;
        for (operator, track) in &tracks {
            if let Some(state) = track.state() {
                book.time(operator, track.since_ms, until, &state);
            }
        }
        Ok(book.finish())
    }

    /// The cells of `[from, to)` a report reads (days; slots of everyone, or of `queues`)
    /// and the operators' states, in one snapshot.
    pub async fn read_cells(
        &self,
        from: i64,
        to: i64,
        queues: Option<&BTreeSet<String>>,
    ) -> Result<StoredCells, StoreError> {
        let slot_queues: Vec<Arg> = match queues {
            None => vec![text(ALL)],
            Some(q) => q.iter().map(|q| text(q)).collect(),
        };
        let placeholders: Vec<String> = (0..slot_queues.len())
            .map(|i| format!("${}", i + 3))
            .collect();
        let in_queues = if placeholders.is_empty() {
            "NULL".to_string()
        } else {
            placeholders.join(", ")
        };
        // On SQLite each query's rows come back packed in one JSON array, `[key…,
        // [numbers…]]` per cell: sqlx hands SQLite's rows over one by one from its worker
        // thread, and at a month's tens of thousands of cells that hand-over was most of a
        // report's time. PostgreSQL's rows arrive cheaply (and its JSON is slower): as rows.
        let postgres = self.is_postgres();
        let cells_sql = |columns: &str, numbers: &[&str], rest: &str| {
            let numbers = numbers.join(", ");
            if postgres {
                format!("SELECT {columns}, ARRAY[{numbers}]::bigint[] {rest}")
            } else {
                format!(
                    "SELECT json_group_array(json_array({columns}, json_array({numbers}))) {rest}"
                )
            }
        };
        let queue_sql = cells_sql(
            "grain, start_ms, queue",
            &QUEUE_COLUMNS,
            &format!(
                "FROM report_queue_cells WHERE start_ms >= $1 AND start_ms < $2 \
                 AND (grain = 'day' OR queue IN ({in_queues}))"
            ),
        );
        let operator_sql = cells_sql(
            "grain, start_ms, operator",
            &OPERATOR_COLUMNS,
            "FROM report_operator_cells WHERE start_ms >= $1 AND start_ms < $2 \
             AND (grain = 'day' OR operator = '')",
        );
        let pause_sql = cells_sql(
            "start_ms, operator, reason",
            &["pause_ms"],
            "FROM report_pause_cells WHERE start_ms >= $1 AND start_ms < $2",
        );
        let operator_queue_sql = cells_sql(
            "start_ms, operator, queue",
            &OPERATOR_QUEUE_COLUMNS,
            &format!(
                "FROM report_operator_queue_cells WHERE start_ms >= $1 AND start_ms < $2 \
                 AND queue IN ({in_queues})"
            ),
        );
        let tracks_sql = "SELECT operator, track FROM report_tracks";
        let (queue_cells, operator_cells, pause_cells, operator_queue_cells, tracks): ReadCells =
            match &self.db {
                Db::Sqlite(pool) => {
                    let mut tx = pool.begin().await?;
                    let queue_cells: String = bind_args!(
                        sqlx::query_scalar(&queue_sql).bind(from).bind(to),
                        &slot_queues
                    )
                    .fetch_one(&mut *tx)
                    .await?;
                    let operator_cells: String = sqlx::query_scalar(&operator_sql)
                        .bind(from)
                        .bind(to)
                        .fetch_one(&mut *tx)
                        .await?;
                    let pause_cells: String = sqlx::query_scalar(&pause_sql)
                        .bind(from)
                        .bind(to)
                        .fetch_one(&mut *tx)
                        .await?;
                    let operator_queue_cells: String = bind_args!(
                        sqlx::query_scalar(&operator_queue_sql).bind(from).bind(to),
                        &slot_queues
                    )
                    .fetch_one(&mut *tx)
                    .await?;
                    let tracks = sqlx::query_as(tracks_sql).fetch_all(&mut *tx).await?;
                    tx.commit().await?;
                    (
                        unpack(&queue_cells)?,
                        unpack(&operator_cells)?,
                        unpack(&pause_cells)?,
                        unpack(&operator_queue_cells)?,
                        tracks,
                    )
                }
                Db::Postgres(pool) => {
                    let mut tx = pool.begin().await?;
                    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        .execute(&mut *tx)
                        .await?;
                    let queue_cells =
                        bind_args!(sqlx::query_as(&queue_sql).bind(from).bind(to), &slot_queues)
                            .fetch_all(&mut *tx)
                            .await?;
                    let operator_cells = sqlx::query_as(&operator_sql)
                        .bind(from)
                        .bind(to)
                        .fetch_all(&mut *tx)
                        .await?;
                    let pause_cells = sqlx::query_as(&pause_sql)
                        .bind(from)
                        .bind(to)
                        .fetch_all(&mut *tx)
                        .await?;
                    let operator_queue_cells = bind_args!(
                        sqlx::query_as(&operator_queue_sql).bind(from).bind(to),
                        &slot_queues
                    )
                    .fetch_all(&mut *tx)
                    .await?;
                    let tracks = sqlx::query_as(tracks_sql).fetch_all(&mut *tx).await?;
                    tx.commit().await?;
                    (
                        queue_cells,
                        operator_cells,
                        pause_cells,
                        operator_queue_cells,
                        tracks,
                    )
                }
            };
        let mut out = StoredCells::default();
        for (grain, start, queue, v) in queue_cells {
            out.cells.queues.insert(
                (grain_of(&grain), start as u64, queue),
                queue_from(cell_numbers(v)?),
            );
        }
        for (grain, start, operator, v) in operator_cells {
            out.cells.operators.insert(
                (grain_of(&grain), start as u64, operator),
                operator_from(cell_numbers(v)?),
            );
        }
        for (start, operator, reason, v) in pause_cells {
            let [ms] = cell_numbers(v)?;
            out.cells
                .operators
                .entry((Grain::Day, start as u64, operator))
                .or_default()
                .pause_by_reason
                .insert(reason, ms);
        }
        for (start, operator, queue, v) in operator_queue_cells {
            let [answered, missed, served, transferred] = cell_numbers(v)?;
            out.cells.operator_queues.insert(
                (start as u64, operator, queue),
                OperatorQueue {
                    answered,
                    missed,
                    served,
                    transferred,
                },
            );
        }
        for (operator, track) in tracks {
            if let Ok(t) = serde_json::from_str::<OperatorTrack>(&track) {
                out.tracks.insert(operator, t);
            }
        }
        Ok(out)
    }
}

/// The cell tables, each keyed by a `start_ms`.
const CELL_TABLES: [&str; 4] = [
    "report_queue_cells",
    "report_operator_cells",
    "report_pause_cells",
    "report_operator_queue_cells",
];

/// How much of the log a rebuild reads at a time.
const REBUILD_WINDOW_MS: u64 = 86_400_000;

/// A rebuild's facts still to come: outbound calls' steps after the window they began in.
type Pending = Vec<(u64, u8, Fact)>;

/// The outbound facts of a call (placed, connected, ended), into `pending`.
fn outbound_facts(
    pending: &mut Pending,
    (call, operator, placed, answered, ended): (String, String, i64, Option<i64>, Option<i64>),
) {
    let steps = [(Some(placed), 0u8), (answered, 1), (ended, 2)];
    for (at, step) in steps {
        let Some(at) = at else { continue };
        let (operator, call) = (operator.clone(), call.clone());
        let fact = match step {
            0 => Fact::OutboundPlaced { operator, call },
            1 => Fact::OutboundConnected { operator, call },
            _ => Fact::OutboundEnded { operator, call },
        };
        pending.push((at.max(0) as u64, rank(&fact), fact));
    }
}

impl Store {
    /// Recomputes the aggregates from `from_ms` (a local midnight) on from the raw log,
    /// in one transaction (on PostgreSQL the log's tables are locked against writes
    /// meanwhile; on SQLite the transaction is the only writer). Returns the events read.
    pub async fn rebuild_reports(&self, from_ms: u64) -> Result<u64, StoreError> {
        let postgres = self.is_postgres();
        let zone = self.time_zone;
        let from = from_ms as i64;
        let mut read = 0u64;
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            if postgres {
                sqlx::query("LOCK TABLE queue_events, call_events, calls IN SHARE MODE")
                    .execute(&mut *tx).await?;
            }
            for table in CELL_TABLES {
                sqlx::query(&format!("DELETE FROM {table} WHERE start_ms >= $1"))
                    .bind(from).execute(&mut *tx).await?;
            }
            for sql in ["DELETE FROM report_tracks", "DELETE FROM report_calls"] {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            sqlx::query("DELETE FROM settings WHERE key = $1").bind(REBUILD_FROM)
                .execute(&mut *tx).await?;
            // Who is logged in at `from` began before it: the replay starts at the
            // earliest such login, booking nothing before `from`.
            let open_since: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(e.at_ms) FROM queue_events e WHERE e.kind = 'login' AND e.at_ms < $1 \
                 AND NOT EXISTS (SELECT 1 FROM queue_events l WHERE l.operator = e.operator \
                 AND l.kind = 'logout' AND l.at_ms >= e.at_ms AND l.at_ms < $1)",
            )
            .bind(from).fetch_one(&mut *tx).await?;
            let span: (Option<i64>, Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
                "SELECT (SELECT MIN(at_ms) FROM queue_events), (SELECT MIN(at_ms) FROM call_events), \
                 (SELECT MAX(at_ms) FROM queue_events), (SELECT MAX(at_ms) FROM call_events)",
            )
            .fetch_one(&mut *tx).await?;
            let first = [span.0, span.1].into_iter().flatten().min().unwrap_or(from);
            let start = open_since.unwrap_or(from).min(from).max(first);
            let end = span.2.max(span.3).map_or(start, |l| l + 1);
            let mut replay = Replay::with_book(CellBook::new(zone, from_ms));
            let mut pending: Pending = Vec::new();
            // Outbound calls open when the replay starts.
            for r in sqlx::query(
                "SELECT id, user_login, started_ms, answered_ms, ended_ms FROM calls \
                 WHERE direction = 'outbound' AND user_login IS NOT NULL \
                 AND started_ms < $1 AND (ended_ms IS NULL OR ended_ms >= $1)",
            )
            .bind(start).fetch_all(&mut *tx).await?
            {
                outbound_facts(&mut pending, (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)));
            }
            let mut window = start;
            while window < end {
                let window_end = (window + REBUILD_WINDOW_MS as i64).min(end);
                let mut facts: Vec<(u64, u8, Fact)> = Vec::new();
                for r in sqlx::query("SELECT at_ms, data FROM queue_events WHERE at_ms >= $1 AND at_ms < $2 ORDER BY at_ms, id")
                    .bind(window).bind(window_end).fetch_all(&mut *tx).await?
                {
                    if let Some((at, fact)) = super::contact_store::queue_fact(r.get(0), &r.get::<String, _>(1)) {
                        facts.push((at, 0, fact));
                    }
                }
                read += facts.len() as u64;
                for r in sqlx::query(
                    "SELECT id, user_login, started_ms, answered_ms, ended_ms FROM calls \
                     WHERE direction = 'outbound' AND user_login IS NOT NULL \
                     AND started_ms >= $1 AND started_ms < $2",
                )
                .bind(window).bind(window_end).fetch_all(&mut *tx).await?
                {
                    outbound_facts(&mut pending, (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)));
                }
                for r in sqlx::query(
                    "SELECT call_id, at_ms FROM call_events WHERE at_ms >= $1 AND at_ms < $2 \
                     AND kind = 'ended' AND data LIKE '%\"cause\":\"interrupted\"%'",
                )
                .bind(window).bind(window_end).fetch_all(&mut *tx).await?
                {
                    let fact = Fact::Interrupted { call: r.get(0) };
                    facts.push((r.get::<i64, _>(1) as u64, rank(&fact), fact));
                }
                let (now, later): (Pending, Pending) = std::mem::take(&mut pending)
                    .into_iter()
                    .partition(|(at, _, _)| (*at as i64) < window_end);
                pending = later;
                read += now.len() as u64;
                facts.extend(now);
                facts.sort_by_key(|(at, rank, _)| (*at, *rank));
                for (at, _, fact) in &facts {
                    replay.feed(*at, fact);
                }
                for (sql, args) in cell_statements(&replay.book.take()) {
                    bind_args!(sqlx::query(&sql), &args).execute(&mut *tx).await?;
                }
                window = window_end;
            }
            // Steps stamped after the last event (a clock that went back): in order.
            pending.sort_by_key(|(at, rank, _)| (*at, *rank));
            for (at, _, fact) in &pending {
                replay.feed(*at, fact);
            }
            for (sql, args) in replay_statements(&mut replay) {
                bind_args!(sqlx::query(&sql), &args).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(read)
    }

    /// The first day of the log, as the midnight it begins at (none: an empty log).
    pub async fn first_event_day(&self) -> Result<Option<u64>, StoreError> {
        let first: (Option<i64>, Option<i64>) = on_db!(self, pool => {
            sqlx::query_as("SELECT (SELECT MIN(at_ms) FROM queue_events), (SELECT MIN(at_ms) FROM call_events)")
                .fetch_one(pool).await?
        });
        let first = match first {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => return Ok(None),
            },
        };
        Ok(Some(
            CellBook::new(self.time_zone, 0).day_start(first.max(0) as u64),
        ))
    }
}
