//! The inbound / outbound detail (SPEC 3.3): a row per call with its time in the queue,
//! who answered and how long they talked; keyset-paged, newest first.

use super::{Params, Report, MAX_ROWS};
use crate::access::Viewer;
use crate::store::{invalid, Arg};
use crate::values::{duration_cell, DateRange};
use crate::{bind_args, on_db, Store, StoreError};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::HashMap;

/// One call of the detail.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CallDetail {
    pub id: String,
    /// inbound, outbound or internal.
    pub direction: String,
    /// The far party's number: the caller of an inbound call, the number dialled out.
    pub number: String,
    pub started_ms: i64,
    /// The queue it went through (the last one, after overflows), and when it entered.
    pub queue: Option<String>,
    pub queued_ms: Option<i64>,
    pub answered_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    /// answered, or why it was not (abandoned, no_answer, busy, …); in_progress while it lasts.
    pub status: String,
    /// The wait in the queue of an answered call / of any call that waited.
    pub answered_wait_ms: Option<i64>,
    pub wait_ms: Option<i64>,
    /// Who answered (a login), or who placed an outbound call.
    pub operator: Option<String>,
    pub talk_ms: Option<i64>,
    /// Where its recording plays (`/api/v1/recordings/{id}`), if there is one.
    pub recording: Option<String>,
}

/// A page of the detail; `next` continues it (as `after=`).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CallPage {
    pub rows: Vec<CallDetail>,
    pub next: Option<String>,
}

/// The parameters the calls report takes.
pub const CALLS_PARAMS: &[&str] = &[
    "period",
    "direction",
    "status",
    "number",
    "operator",
    "queue",
    "after",
    "limit",
    "format",
];

impl Store {
    /// Calls of `period=` (default today) newest first, filtered by `direction`, `status`
    /// (answered / unanswered), `number` (digits inside any of its numbers), `operator`
    /// (a login), `queue`; `limit` rows (1-500, default 50) after the cursor `after`.
    /// With the reports right every call; without it, the viewer's own.
    pub async fn calls_report(
        &self,
        viewer: &Viewer,
        params: &Params,
        now_ms: u64,
        limit: Option<usize>,
    ) -> Result<CallPage, StoreError> {
        let mut sql = vec!["TRUE".to_string()];
        let mut args: Vec<Arg> = Vec::new();
        let mut param = |a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        let period = match params.get("period") {
            Some(text) => {
                DateRange::parse(text).ok_or_else(|| invalid("period", "from..to (dates)"))?
            }
            None => {
                let today = Some(crate::values::local_date(now_ms, self.time_zone));
                DateRange {
                    from: today,
                    to: today,
                }
            }
        };
        let (from, to) = period.ms_bounds(self.time_zone);
        if let Some(from) = from {
            sql.push(format!("started_ms >= {}", param(Arg::Int(Some(from)))));
        }
        if let Some(to) = to {
            sql.push(format!("started_ms < {}", param(Arg::Int(Some(to)))));
        }
        if let Some(d) = params.get("direction") {
            if !["inbound", "outbound", "internal"].contains(&d) {
                return Err(invalid("direction", "inbound, outbound or internal"));
            }
            sql.push(format!("direction = {}", param(Arg::Text(Some(d.into())))));
        }
        match params.get("status") {
            None => {}
            Some("answered") => sql.push("answered_ms IS NOT NULL".into()),
            Some("unanswered") => sql.push("answered_ms IS NULL".into()),
            Some(_) => return Err(invalid("status", "answered or unanswered")),
        }
        if let Some(n) = params.get("number") {
            let digits: String = n.chars().filter(char::is_ascii_digit).collect();
            if digits.is_empty() {
                return Err(invalid("number", "digits of a number"));
            }
            let p = param(Arg::Text(Some(format!("%{digits}%"))));
            sql.push(format!(
                "(from_number LIKE {p} OR to_number LIKE {p} OR number LIKE {p})"
            ));
        }
        if let Some(login) = params.get("operator") {
            let p = param(Arg::Text(Some(login.into())));
            sql.push(format!("(answered_by = {p} OR user_login = {p})"));
        }
        if !(viewer.user.admin || viewer.user.reports) {
            let p = param(Arg::Text(Some(viewer.user.login.clone())));
            sql.push(format!("(answered_by = {p} OR user_login = {p})"));
        }
        if let Some(queue) = params.get("queue") {
            if !self.queue_exists(queue).await? {
                return Err(invalid("queue", &format!("no queue {queue}")));
            }
            let p = param(Arg::Text(Some(queue.into())));
            sql.push(format!(
                "EXISTS (SELECT 1 FROM queue_events q WHERE q.call_id = calls.id AND q.kind = 'entered' AND q.queue = {p})"
            ));
        }
        if let Some(after) = params.get("after") {
            let (started, id) = after
                .split_once(':')
                .and_then(|(s, id)| Some((s.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| invalid("after", "the next of the previous page"))?;
            let s = param(Arg::Int(Some(started)));
            let i = param(Arg::Text(Some(id)));
            sql.push(format!(
                "(started_ms < {s} OR (started_ms = {s} AND id < {i}))"
            ));
        }
        let limit = match limit {
            Some(l) => l,
            None => params
                .get("limit")
                .map(|l| {
                    l.parse()
                        .ok()
                        .filter(|n| (1..=500).contains(n))
                        .ok_or_else(|| invalid("limit", "1 to 500"))
                })
                .transpose()?
                .unwrap_or(50),
        };
        let query = format!(
            "SELECT id, direction, from_number, to_number, user_login, started_ms, answered_ms, answered_by, ended_ms, end_cause, recording \
             FROM calls WHERE {} ORDER BY started_ms DESC, id DESC LIMIT {}",
            sql.join(" AND "),
            limit + 1
        );
        let mut rows: Vec<CallDetail> = on_db!(self, pool => {
            bind_args!(sqlx::query(&query), &args)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    let direction: String = r.get(1);
                    let (from, to): (String, String) = (r.get(2), r.get(3));
                    let answered_ms: Option<i64> = r.get(6);
                    let ended_ms: Option<i64> = r.get(8);
                    let cause: Option<String> = r.get(9);
                    let recording: Option<String> = r.get(10);
                    let id: String = r.get(0);
                    // An outbound call's answerer is the far end: its operator is who
                    // placed it.
                    let operator = if direction == "outbound" {
                        r.get(4)
                    } else {
                        r.get::<Option<String>, _>(7).or(r.get(4))
                    };
                    CallDetail {
                        number: if direction == "inbound" { from } else { to },
                        direction,
                        started_ms: r.get(5),
                        queue: None,
                        queued_ms: None,
                        answered_ms,
                        ended_ms,
                        status: match (answered_ms, ended_ms, cause) {
                            (Some(_), _, _) => "answered".into(),
                            (None, None, _) => "in_progress".into(),
                            (None, Some(_), c) => c.unwrap_or_else(|| "ended".into()),
                        },
                        answered_wait_ms: None,
                        wait_ms: None,
                        operator,
                        talk_ms: answered_ms.zip(ended_ms).map(|(a, e)| e - a),
                        recording: recording.map(|_| format!("/api/v1/recordings/{id}")),
                        id,
                    }
                })
                .collect()
        });
        let next = (rows.len() > limit).then(|| {
            rows.truncate(limit);
            let last = rows.last().expect("a full page");
            format!("{}:{}", last.started_ms, last.id)
        });
        self.add_queue_times(&mut rows).await?;
        Ok(CallPage { rows, next })
    }

    /// Each call's queue, time queued and waits, from its queue events.
    async fn add_queue_times(&self, rows: &mut [CallDetail]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut args = Vec::new();
        let list: Vec<String> = rows
            .iter()
            .map(|r| {
                args.push(Arg::Text(Some(r.id.clone())));
                format!("${}", args.len())
            })
            .collect();
        let query = format!(
            "SELECT call_id, kind, queue, at_ms, data FROM queue_events WHERE call_id IN ({}) \
             AND kind IN ('entered', 'answered', 'abandoned', 'overflowed', 'timed_out') ORDER BY id",
            list.join(", ")
        );
        let events: Vec<(String, String, Option<String>, i64, String)> = on_db!(self, pool => {
            bind_args!(sqlx::query(&query), &args)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect()
        });
        let index: HashMap<String, usize> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        for (call, kind, queue, at, data) in &events {
            let Some(row) = index.get(call).map(|i| &mut rows[*i]) else {
                continue;
            };
            let wait = serde_json::from_str::<Value>(data)
                .ok()
                .and_then(|d| d["wait_ms"].as_i64());
            match kind.as_str() {
                "entered" => {
                    row.queue = queue.clone();
                    row.queued_ms.get_or_insert(*at);
                }
                "answered" => {
                    row.answered_wait_ms = wait;
                    row.wait_ms = wait.map(|w| w + row.wait_ms.unwrap_or(0));
                }
                _ => row.wait_ms = wait.map(|w| w + row.wait_ms.unwrap_or(0)),
            }
        }
        Ok(())
    }

    /// The detail as a sheet: up to [`MAX_ROWS`] calls of the filters, numbered.
    pub async fn calls_sheet(
        &self,
        viewer: &Viewer,
        params: &Params,
        now_ms: u64,
    ) -> Result<Report, StoreError> {
        let page = self
            .calls_report(viewer, params, now_ms, Some(MAX_ROWS))
            .await?;
        let time = |ms: Option<i64>| -> Value {
            ms.and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| {
                    json!(t
                        .with_timezone(&self.time_zone)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string())
                })
                .unwrap_or(Value::Null)
        };
        let dur = |ms: Option<i64>| {
            ms.map(|m| duration_cell(m.max(0) as u64))
                .unwrap_or(Value::Null)
        };
        let mut report = Report::new(
            "Входящие и исходящие звонки",
            &[
                "№",
                "Дата",
                "Номер",
                "ID звонка",
                "Тип",
                "Очередь",
                "Поставлен в очередь",
                "Ответ оператора",
                "Завершён",
                "Статус",
                "Ожидание (отвеченные)",
                "Ожидание (все)",
                "Оператор",
                "Разговор",
                "Запись",
            ],
        );
        report.truncated = page.next.is_some();
        for (n, c) in page.rows.iter().enumerate() {
            report.rows.push(vec![
                json!(n + 1),
                time(Some(c.started_ms)),
                json!(c.number),
                json!(c.id),
                json!(c.direction),
                json!(c.queue),
                time(c.queued_ms),
                time(c.answered_ms),
                time(c.ended_ms),
                json!(c.status),
                dur(c.answered_wait_ms),
                dur(c.wait_ms),
                json!(c.operator),
                dur(c.talk_ms),
                json!(c.recording),
            ]);
        }
        Ok(report)
    }
}
