//! The Call-Center and KPI reports (SPEC 3.1, 3.2) from the stored event log: the facts a
//! period needs are read, replayed ([`super::contact`]) and laid out as report rows.

use super::charts::{hourly_bars, Series};
use super::contact::{
    Fact, Figures, HourFigures, OperatorFigures, Period, PeriodBook, QueueFigures, Replay,
};
use super::{Params, Report};
use crate::access::Viewer;
use crate::store::invalid;
use crate::values::{duration_cell, DateRange};
use crate::{on_db, Store, StoreError};
use chrono::NaiveDate;
use kolokol_engine::queue::QueueEvent;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// A caller's wait ends within this long of their entering (answer, abandon, overflow):
/// the log is read this far past the period for calls that entered in it.
const LONGEST_STAY_MS: u64 = 86_400_000;
/// The longest period a report covers.
const MAX_DAYS: usize = 400;

/// The Call-Center report as data: a column per day and the total.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CallCenter {
    /// The days, `YYYY-MM-DD`.
    pub days: Vec<String>,
    pub queues: Option<Vec<String>>,
    pub per_day: Vec<QueueSummary>,
    pub total: QueueSummary,
    /// Hour by hour, for charts: calls per hour, service level per hour, operators by
    /// state (ms in each state ÷ 3,600,000 = operators in it on average).
    pub per_hour: Vec<HourView>,
}

/// One hour of the period.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HourView {
    /// Local start, `YYYY-MM-DD HH:00`.
    pub start: String,
    pub start_ms: u64,
    #[serde(flatten)]
    pub figures: HourFigures,
    pub service_level: Option<f64>,
}

/// A day's (or the period's) counts and sums with the figures derived from them
/// (percentages and means; null when their denominator is 0).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct QueueSummary {
    #[serde(flatten)]
    pub counts: QueueFigures,
    pub service_level_of_answered: Option<f64>,
    pub service_level_of_offered: Option<f64>,
    pub abandon_rate: Option<f64>,
    pub asa_ms: Option<u64>,
    pub average_wait_ms: Option<u64>,
    pub average_talk_ms: Option<u64>,
    pub average_hold_ms: Option<u64>,
}

impl From<QueueFigures> for QueueSummary {
    fn from(f: QueueFigures) -> Self {
        QueueSummary {
            service_level_of_answered: f.service_level_of_answered(),
            service_level_of_offered: f.service_level_of_offered(),
            abandon_rate: f.abandon_rate(),
            asa_ms: f.asa_ms(),
            average_wait_ms: f.average_wait_ms(),
            average_talk_ms: f.average_talk_ms(),
            average_hold_ms: f.average_hold_ms(),
            counts: f,
        }
    }
}

/// The fact of a stored queue event.
pub(super) fn queue_fact(at_ms: i64, data: &str) -> Option<(u64, Fact)> {
    match serde_json::from_str::<QueueEvent>(data) {
        Ok(e) => Some((at_ms.max(0) as u64, Fact::Queue(e.kind))),
        Err(e) => {
            tracing::warn!(error = %e, "a queue event the reports cannot read");
            None
        }
    }
}

impl Store {
    /// The period of `period=from..to` (dates; a single date is one day; none: today), up
    /// to now.
    pub fn report_period(&self, params: &Params, now_ms: u64) -> Result<Period, StoreError> {
        let today = crate::values::local_date(now_ms, self.time_zone);
        let (from, to) = match params.get("period") {
            None => (today, today),
            Some(text) => {
                let range = DateRange::parse(text)
                    .ok_or_else(|| invalid("period", "from..to, dates (YYYY-MM-DD)"))?;
                let from = range.from.or(range.to).unwrap_or(today);
                (from, range.to.unwrap_or(today.max(from)))
            }
        };
        if to < from {
            return Err(invalid("period", "ends before it begins"));
        }
        if (to - from).num_days() as usize >= MAX_DAYS {
            return Err(invalid("period", &format!("at most {MAX_DAYS} days")));
        }
        Ok(Period::new(from, to, self.time_zone, now_ms))
    }

    /// The facts `period` needs, in time order: queue events from the earliest login still
    /// open when it begins, and the outbound calls that overlap it.
    async fn facts(&self, period: &Period) -> Result<Vec<(u64, Fact)>, StoreError> {
        self.facts_between(period, period.until_ms + LONGEST_STAY_MS)
            .await
    }

    /// [`Store::facts`] with events before `end_ms` only.
    pub async fn facts_between(
        &self,
        period: &Period,
        end_ms: u64,
    ) -> Result<Vec<(u64, Fact)>, StoreError> {
        let from = period.from_ms() as i64;
        let end = end_ms as i64;
        let open_since: Option<i64> = on_db!(self, pool => {
            sqlx::query_scalar(
                "SELECT MIN(e.at_ms) FROM queue_events e WHERE e.kind = 'login' AND e.at_ms < $1 \
                 AND NOT EXISTS (SELECT 1 FROM queue_events l WHERE l.operator = e.operator \
                 AND l.kind = 'logout' AND l.at_ms >= e.at_ms AND l.at_ms < $1)",
            )
            .bind(from)
            .fetch_one(pool)
            .await?
        });
        let start = open_since.unwrap_or(from).min(from);
        let mut facts: Vec<(u64, Fact)> = Vec::new();
        let rows: Vec<(i64, String)> = on_db!(self, pool => {
            sqlx::query("SELECT at_ms, data FROM queue_events WHERE at_ms >= $1 AND at_ms < $2 ORDER BY at_ms, id")
                .bind(start)
                .bind(end)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        });
        facts.extend(
            rows.into_iter()
                .filter_map(|(at, data)| queue_fact(at, &data)),
        );
        // (call, operator, placed, answered, ended)
        type Outbound = (String, String, i64, Option<i64>, Option<i64>);
        let calls: Vec<Outbound> = on_db!(self, pool => {
            sqlx::query(
                "SELECT id, user_login, started_ms, answered_ms, ended_ms FROM calls \
                 WHERE direction = 'outbound' AND user_login IS NOT NULL \
                 AND started_ms < $2 AND (ended_ms IS NULL OR ended_ms >= $1)",
            )
            .bind(start)
            .bind(end)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect()
        });
        for (call, operator, started, answered, ended) in calls {
            let fact = |f: fn(String, String) -> Fact| f(operator.clone(), call.clone());
            facts.push((
                started as u64,
                fact(|operator, call| Fact::OutboundPlaced { operator, call }),
            ));
            if let Some(a) = answered.filter(|a| *a < end) {
                facts.push((
                    a as u64,
                    fact(|operator, call| Fact::OutboundConnected { operator, call }),
                ));
            }
            if let Some(e) = ended.filter(|e| *e < end) {
                facts.push((
                    e as u64,
                    fact(|operator, call| Fact::OutboundEnded { operator, call }),
                ));
            }
        }
        // Calls a restart closed: what of them was open ends there.
        let interrupted: Vec<(String, i64)> = on_db!(self, pool => {
            sqlx::query(
                "SELECT call_id, at_ms FROM call_events WHERE at_ms >= $1 AND at_ms < $2 \
                 AND kind = 'ended' AND data LIKE '%\"cause\":\"interrupted\"%'",
            )
            .bind(start)
            .bind(end)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
        });
        for (call, at) in interrupted {
            facts.push((at as u64, Fact::Interrupted { call }));
        }
        // Stable: events of one instant keep the log's order.
        facts.sort_by_key(|(at, _)| *at);
        Ok(facts)
    }

    /// `queue=a,b`: the queues named, each checked.
    async fn queue_filter(&self, params: &Params) -> Result<Option<BTreeSet<String>>, StoreError> {
        let Some(list) = params.get("queue") else {
            return Ok(None);
        };
        let mut queues = BTreeSet::new();
        for q in list.split(',').map(str::trim).filter(|q| !q.is_empty()) {
            if !self.queue_exists(q).await? {
                return Err(invalid("queue", &format!("no queue {q}")));
            }
            queues.insert(q.to_string());
        }
        Ok(Some(queues))
    }

    async fn figures(
        &self,
        params: &Params,
        queues: Option<BTreeSet<String>>,
        now_ms: u64,
    ) -> Result<Figures, StoreError> {
        let period = self.report_period(params, now_ms)?;
        self.figures_from_cells(period, queues).await
    }

    /// The figures of `period` replayed from the raw log, as [`Store::figures_from_cells`]
    /// reads them from the aggregates (which a test holds to this).
    pub async fn figures_by_replay(
        &self,
        period: Period,
        queues: Option<BTreeSet<String>>,
    ) -> Result<Figures, StoreError> {
        let facts = self.facts(&period).await?;
        let mut r = Replay::with_book(PeriodBook::new(period, queues).without_per_queue());
        for (at, fact) in facts {
            r.feed(at, &fact);
        }
        Ok(r.finish())
    }

    /// The Call-Center report (SPEC 3.1): `period`, `queue=a,b`. Needs the reports right.
    pub async fn call_center_report(
        &self,
        viewer: &Viewer,
        params: &Params,
        now_ms: u64,
    ) -> Result<(CallCenter, Report), StoreError> {
        super::may_read_reports(viewer)?;
        let queues = self.queue_filter(params).await?;
        let f = self.figures(params, queues.clone(), now_ms).await?;
        let per_hour = f
            .hours
            .iter()
            .enumerate()
            .map(|(h, figures)| {
                let start_ms = f.period.hour_start(h);
                HourView {
                    start: chrono::DateTime::from_timestamp_millis(start_ms as i64)
                        .map(|t| {
                            t.with_timezone(&self.time_zone)
                                .format("%Y-%m-%d %H:00")
                                .to_string()
                        })
                        .unwrap_or_default(),
                    start_ms,
                    service_level: figures.service_level(),
                    figures: figures.clone(),
                }
            })
            .collect();
        let data = CallCenter {
            days: f.period.days.iter().map(NaiveDate::to_string).collect(),
            queues: queues.map(|q| q.into_iter().collect()),
            total: f.queue_total().into(),
            per_day: f
                .queue_days
                .iter()
                .cloned()
                .map(QueueSummary::from)
                .collect(),
            per_hour,
        };
        let mut report = call_center_rows(&data);
        report.charts = call_center_charts(&f);
        Ok((data, report))
    }

    /// The KPI report (SPEC 3.2): `period`, `view=by_day|summary`, `operator=a,b`,
    /// `queue=a,b` (whose calls count as answered and missed). With the reports right every
    /// operator; without it, only the viewer's own rows.
    pub async fn kpi_report(
        &self,
        viewer: &Viewer,
        params: &Params,
        now_ms: u64,
    ) -> Result<Report, StoreError> {
        let by_day = match params.get("view").unwrap_or("summary") {
            "summary" => false,
            "by_day" => true,
            _ => return Err(invalid("view", "by_day or summary")),
        };
        let wanted: Option<BTreeSet<String>> = params.get("operator").map(|l| {
            l.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        });
        let may_all = viewer.user.admin || viewer.user.reports;
        let wanted = match (may_all, wanted) {
            (true, w) => w,
            (false, Some(w)) if w.iter().any(|o| *o != viewer.user.login) => {
                return Err(StoreError::Forbidden(
                    "another operator's KPI needs the reports right".into(),
                ))
            }
            (false, _) => Some([viewer.user.login.clone()].into()),
        };
        let queues = self.queue_filter(params).await?;
        let f = self.figures(params, queues, now_ms).await?;
        let users: BTreeMap<String, (String, Option<String>)> = self
            .users()
            .await?
            .into_iter()
            .map(|u| (u.login, (u.name, u.extension)))
            .collect();
        let reasons = f.pause_reasons();
        let mut columns: Vec<String> = [
            "Дата",
            "Оператор",
            "Логин",
            "Добавочный",
            "Время в системе",
            "Готов (ожидание)",
            "Вызов звонит",
            "Разговор",
            "  из него удержание",
            "Исходящие разговоры",
            "Поствызывная обработка",
            "Пауза",
        ]
        .map(String::from)
        .to_vec();
        columns.extend(reasons.iter().map(|r| format!("Пауза: {r}")));
        columns.extend(
            [
                "Отвечено",
                "Пропущено",
                "Переведено",
                "Совершено",
                "Среднее время обработки (AHT)",
                "Занятость, %",
            ]
            .map(String::from),
        );
        let mut report = Report {
            title: "КПД операторов".into(),
            columns,
            rows: Vec::new(),
            truncated: false,
            charts: Vec::new(),
        };
        let row = |date: Value, login: &str, o: &OperatorFigures| -> Vec<Value> {
            let (name, ext) = users
                .get(login)
                .cloned()
                .unwrap_or((login.to_string(), None));
            let mut row = vec![
                date,
                json!(name),
                json!(login),
                json!(ext),
                duration_cell(o.in_system_ms),
                duration_cell(o.ready_ms),
                duration_cell(o.ringing_ms),
                duration_cell(o.talk_ms),
                duration_cell(o.hold_ms),
                duration_cell(o.outbound_talk_ms),
                duration_cell(o.wrap_up_ms),
                duration_cell(o.pause_ms),
            ];
            row.extend(
                reasons
                    .iter()
                    .map(|r| duration_cell(o.pause_by_reason.get(r).copied().unwrap_or(0))),
            );
            row.extend([
                json!(o.answered),
                json!(o.missed),
                json!(o.transferred),
                json!(o.made),
                opt_duration(o.aht_ms()),
                json!(o.occupancy().map(round1)),
            ]);
            row
        };
        let mut total = OperatorFigures::default();
        for (login, days) in &f.operator_days {
            if wanted.as_ref().is_some_and(|w| !w.contains(login)) {
                continue;
            }
            if by_day {
                for (d, o) in days.iter().enumerate() {
                    if o.in_system_ms > 0 || o.answered + o.missed + o.made > 0 {
                        report
                            .rows
                            .push(row(json!(f.period.days[d].to_string()), login, o));
                    }
                }
            } else {
                let o = f.operator_total(login);
                report.rows.push(row(Value::Null, login, &o));
                total.add(&o);
            }
        }
        if !by_day {
            let mut last = row(json!("Итого"), "", &total);
            (last[1], last[2], last[3]) = (Value::Null, Value::Null, Value::Null);
            report.rows.push(last);
        }
        Ok(report)
    }

    /// How many queue and operator events the log holds.
    pub async fn queue_event_count(&self) -> Result<i64, StoreError> {
        Ok(on_db!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM queue_events").fetch_one(pool).await?
        }))
    }

    /// Midnight of the day `at_ms` falls on, in `crm.time_zone` (operators' "today").
    pub fn day_start_ms(&self, at_ms: u64) -> u64 {
        let date = crate::values::local_date(at_ms, self.time_zone);
        crate::values::midnight(date, self.time_zone)
            .timestamp_millis()
            .max(0) as u64
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The Call-Center figures as rows: a figure per row, a column per day, then the total.
fn call_center_rows(data: &CallCenter) -> Report {
    let mut columns = vec!["Показатель".to_string()];
    columns.extend(data.days.iter().cloned());
    columns.push("Итого".into());
    type Cell = fn(&QueueFigures) -> Value;
    let figures: [(&str, Cell); 22] = [
        (
            "Операторов обслуживали входящие",
            |f| json!(f.operators_answering.len()),
        ),
        ("Операторов в системе", |f| {
            json!(f.operators_logged_in.len())
        }),
        ("Поступило", |f| json!(f.offered)),
        ("Отвечено", |f| json!(f.answered)),
        ("Потеряно (брошено)", |f| json!(f.abandoned)),
        ("  из них коротких", |f| {
            json!(f.short_abandoned)
        }),
        (
            "Переведено в другую очередь (overflow)",
            |f| json!(f.overflowed),
        ),
        ("Превышено время ожидания", |f| {
            json!(f.timed_out)
        }),
        ("Прервано перезапуском", |f| {
            json!(f.interrupted)
        }),
        (
            "Отвечено в пределах уровня сервиса",
            |f| json!(f.answered_within_service_level),
        ),
        (
            "Уровень сервиса, % от отвеченных",
            |f| json!(f.service_level_of_answered().map(round1)),
        ),
        (
            "Уровень сервиса, % от поступивших",
            |f| json!(f.service_level_of_offered().map(round1)),
        ),
        ("Доля потерянных, %", |f| {
            json!(f.abandon_rate().map(round1))
        }),
        ("Среднее время ответа (ASA)", |f| {
            opt_duration(f.asa_ms())
        }),
        ("Среднее ожидание", |f| {
            opt_duration(f.average_wait_ms())
        }),
        ("Максимальное ожидание", |f| {
            if f.waits > 0 {
                duration_cell(f.longest_wait_ms)
            } else {
                Value::Null
            }
        }),
        ("Среднее время разговора", |f| {
            opt_duration(f.average_talk_ms())
        }),
        ("Разговоров завершено", |f| {
            json!(f.completed)
        }),
        ("  из них с удержанием", |f| json!(f.held)),
        ("Время на удержании", |f| {
            duration_cell(f.hold_ms)
        }),
        ("Среднее удержание", |f| {
            opt_duration(f.average_hold_ms())
        }),
        ("Переводов на другого оператора", |f| json!(f.transferred)),
    ];
    let rows = figures
        .iter()
        .map(|(name, cell)| {
            let mut row = vec![json!(name)];
            row.extend(data.per_day.iter().map(|d| cell(&d.counts)));
            row.push(cell(&data.total.counts));
            row
        })
        .collect();
    Report {
        title: "Call-Center".into(),
        columns,
        rows,
        truncated: false,
        charts: Vec::new(),
    }
}

/// The operator states of the chart, stacked from the bottom: name, colour, time.
type StateTime = fn(&HourFigures) -> u64;
const STATES: [(&str, &str, StateTime); 6] = [
    ("Разговор", "#3a9a5b", |h| h.talk_ms),
    ("Исходящие", "#2f7d8c", |h| h.outbound_talk_ms),
    ("Вызов", "#e0a030", |h| h.ringing_ms),
    ("Обработка", "#9b6bc4", |h| h.wrap_up_ms),
    ("Пауза", "#d05a4a", |h| h.pause_ms),
    ("Готов", "#9db4d8", |h| h.ready_ms),
];

/// The print page's charts, hour of the day by hour of the day over the whole period.
fn call_center_charts(f: &Figures) -> Vec<String> {
    use chrono::Timelike;
    let mut by_hour = vec![HourFigures::default(); 24];
    for (h, figures) in f.hours.iter().enumerate() {
        let Some(hour) =
            chrono::TimeZone::timestamp_millis_opt(&f.period.zone, f.period.hour_start(h) as i64)
                .single()
                .map(|t| t.hour() as usize)
        else {
            continue;
        };
        let b = &mut by_hour[hour];
        b.offered += figures.offered;
        b.answered += figures.answered;
        b.abandoned += figures.abandoned;
        b.short_abandoned += figures.short_abandoned;
        b.answered_within_service_level += figures.answered_within_service_level;
        b.ready_ms += figures.ready_ms;
        b.ringing_ms += figures.ringing_ms;
        b.talk_ms += figures.talk_ms;
        b.outbound_talk_ms += figures.outbound_talk_ms;
        b.wrap_up_ms += figures.wrap_up_ms;
        b.pause_ms += figures.pause_ms;
    }
    let each = |get: &dyn Fn(&HourFigures) -> f64| -> [f64; 24] {
        std::array::from_fn(|h| get(&by_hour[h]))
    };
    let operators = |ms: &dyn Fn(&HourFigures) -> u64| {
        let days = f.period.days.len().max(1) as f64;
        each(&|h| ms(h) as f64 / 3_600_000.0 / days)
    };
    vec![
        hourly_bars(
            "Звонки по часам",
            &[
                Series {
                    name: "Поступило",
                    colour: "#4a7bd0",
                    values: each(&|h| h.offered as f64),
                },
                Series {
                    name: "Отвечено",
                    colour: "#3a9a5b",
                    values: each(&|h| h.answered as f64),
                },
                Series {
                    name: "Потеряно",
                    colour: "#d05a4a",
                    values: each(&|h| h.abandoned as f64),
                },
            ],
            false,
            None,
        ),
        hourly_bars(
            "Уровень сервиса по часам, % от отвеченных",
            &[Series {
                name: "Уровень сервиса",
                colour: "#3a9a5b",
                values: each(&|h| h.service_level().unwrap_or(0.0)),
            }],
            false,
            Some(100.0),
        ),
        hourly_bars(
            "Операторы по состояниям (в среднем за час)",
            &STATES
                .iter()
                .map(|(name, colour, ms)| Series {
                    name,
                    colour,
                    values: operators(ms),
                })
                .collect::<Vec<_>>(),
            true,
            None,
        ),
    ]
}

fn opt_duration(ms: Option<u64>) -> Value {
    ms.map(duration_cell).unwrap_or(Value::Null)
}
