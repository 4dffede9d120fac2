//! Queues, pause reasons and operators (SPEC §1.4–1.5): configuration for admins, states
//! for everyone, state changes for the operator themself or a supervisor.

use crate::api::{admin, body, Caller, QueryParams};
use crate::{AppState, Problem};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use kolokol_crm::StoreError;
use kolokol_engine::clock::now_ms;
use kolokol_engine::queue::{Acd, AcdError, AcdOutputs, OperatorState, QueueConfig};
use kolokol_engine::service::CallPlane;
use serde::{Deserialize, Serialize};

fn plane(st: &AppState) -> Result<&CallPlane, Problem> {
    st.sip.calls.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Call control is off",
            "this instance runs without call control",
        )
    })
}

/// Hands the stored queues to call control.
async fn reload(st: &AppState) -> Result<(), Problem> {
    let queues = st.store.queues().await?;
    let now = now_ms();
    let announcing = queues.iter().any(|q| q.announce_every_ms.is_some());
    plane(st)?.step(|c, _| c.set_queues(queues, now));
    if announcing {
        prepare_prompts(st);
    }
    Ok(())
}

/// Loads (generating them the first time, with espeak-ng) the prompts queue announcements
/// need, off the async threads, and hands them to call control when ready.
pub fn prepare_prompts(st: &AppState) {
    let (dir, language) = st.prompts.clone();
    let sip = st.sip.clone();
    tokio::task::spawn_blocking(move || {
        let prompts = kolokol_engine::call::Prompts::load_or_generate(&dir, language);
        if let Some(plane) = &sip.calls {
            plane.step(|c, _| c.set_prompts(prompts));
        }
    });
}

#[derive(Serialize)]
pub struct QueueView {
    #[serde(flatten)]
    config: QueueConfig,
    /// Calls waiting now, longest first.
    waiting: Vec<String>,
}

pub async fn list_queues(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<QueueView>>, Problem> {
    admin(&caller)?;
    let queues = st.store.queues().await?;
    let plane = plane(&st)?;
    Ok(Json(
        queues
            .into_iter()
            .map(|config| {
                let waiting = plane.step(|c, _| c.acd().waiting(&config.name));
                QueueView { config, waiting }
            })
            .collect(),
    ))
}

pub async fn create_queue(
    State(st): State<AppState>,
    caller: Caller,
    json: Result<Json<QueueConfig>, JsonRejection>,
) -> Result<(StatusCode, Json<QueueConfig>), Problem> {
    admin(&caller)?;
    let q = body(json)?;
    st.store.create_queue(&q).await?;
    reload(&st).await?;
    Ok((StatusCode::CREATED, Json(q)))
}

pub async fn replace_queue(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    json: Result<Json<QueueConfig>, JsonRejection>,
) -> Result<Json<QueueConfig>, Problem> {
    admin(&caller)?;
    let mut q = body(json)?;
    q.name = name;
    st.store.replace_queue(&q).await?;
    reload(&st).await?;
    Ok(Json(q))
}

/// Removes a queue once nothing routes to it and nobody waits in it.
pub async fn delete_queue(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    admin(&caller)?;
    if !st.store.queue_exists(&name).await? {
        return Err(StoreError::NotFound.into());
    }
    st.store.check_queue_unused(&name).await?;
    plane(&st)?
        .step(|c, _| c.remove_queue(&name))
        .or_else(|e| match e {
            AcdError::UnknownQueue => Ok(()),
            AcdError::State(why) => Err(Problem::new(StatusCode::CONFLICT, "In use", why)),
            other => Err(Problem::internal(format!("{other:?}"))),
        })?;
    st.store.delete_queue(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_pause_reasons(
    State(st): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<String>>, Problem> {
    Ok(Json(st.store.pause_reasons().await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct NewReason {
    name: String,
}

pub async fn add_pause_reason(
    State(st): State<AppState>,
    caller: Caller,
    json: Result<Json<NewReason>, JsonRejection>,
) -> Result<(StatusCode, Json<Vec<String>>), Problem> {
    admin(&caller)?;
    let r = body(json)?;
    st.store.add_pause_reason(&r.name).await?;
    Ok((StatusCode::CREATED, Json(st.store.pause_reasons().await?)))
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct OperatorView {
    id: String,
    state: &'static str,
    /// The pause reason while paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The call being offered or talked on.
    #[serde(skip_serializing_if = "Option::is_none")]
    call: Option<String>,
    /// Milliseconds in the current state.
    in_state_ms: u64,
    /// Some device of theirs is registered (without one they get no queue calls).
    registered: bool,
    /// Today (since 00:00 UTC): queue calls answered, offers missed.
    accepted: u32,
    missed: u32,
    /// Callers waiting in the operator's queues now.
    waiting: usize,
}

pub async fn list_operators(
    State(st): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<OperatorView>>, Problem> {
    let now = now_ms();
    // "Today" begins at midnight where the contact center is (crm.time_zone).
    let counters = st
        .store
        .operator_counters(st.store.day_start_ms(now))
        .await?;
    let mut list = plane(&st)?.step(|c, _| {
        let acd = c.acd();
        acd.operators()
            .map(|o| {
                let (reason, call) = match &o.state {
                    OperatorState::Paused { reason } => (Some(reason.clone()), None),
                    OperatorState::Ringing { call } | OperatorState::Talking { call } => {
                        (None, Some(call.clone()))
                    }
                    _ => (None, None),
                };
                OperatorView {
                    id: o.id.clone(),
                    state: o.state.label(),
                    reason,
                    call,
                    in_state_ms: now.saturating_sub(o.since_ms),
                    registered: o.registered,
                    accepted: 0,
                    missed: 0,
                    waiting: acd.waiting_for(&o.id),
                }
            })
            .collect::<Vec<_>>()
    });
    for o in &mut list {
        let c = counters.get(&o.id).copied().unwrap_or_default();
        (o.accepted, o.missed) = (c.accepted, c.missed);
    }
    list.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(list))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct PauseBody {
    reason: String,
}

/// Who may change `operator`: the operator themself or an admin (supervisor).
async fn known_operator(st: &AppState, caller: &Caller, operator: &str) -> Result<(), Problem> {
    if !caller.0.admin && caller.0.login != operator {
        return Err(Problem::forbidden());
    }
    if !st.store.user_exists(operator).await? {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("no user {operator}"),
        ));
    }
    Ok(())
}

fn change(
    st: &AppState,
    operator: &str,
    f: impl FnOnce(&mut Acd, u64, &mut AcdOutputs) -> Result<(), AcdError>,
) -> Result<StatusCode, Problem> {
    let now = now_ms();
    plane(st)?
        .step(|c, out| {
            c.with_acd(now, out, |acd, o| {
                acd.add_operator(operator, now);
                f(acd, now, o)
            })
        })
        .map(|_| StatusCode::NO_CONTENT)
        .map_err(|e| match e {
            AcdError::State(why) => Problem::new(StatusCode::CONFLICT, "Not possible now", why),
            other => Problem::internal(format!("{other:?}")),
        })
}

pub async fn login(
    State(st): State<AppState>,
    caller: Caller,
    Path(operator): Path<String>,
) -> Result<StatusCode, Problem> {
    known_operator(&st, &caller, &operator).await?;
    change(&st, &operator, |acd, now, o| acd.login(&operator, now, o))
}

pub async fn logout(
    State(st): State<AppState>,
    caller: Caller,
    Path(operator): Path<String>,
) -> Result<StatusCode, Problem> {
    known_operator(&st, &caller, &operator).await?;
    change(&st, &operator, |acd, now, o| acd.logout(&operator, now, o))
}

pub async fn pause(
    State(st): State<AppState>,
    caller: Caller,
    Path(operator): Path<String>,
    json: Result<Json<PauseBody>, JsonRejection>,
) -> Result<StatusCode, Problem> {
    known_operator(&st, &caller, &operator).await?;
    let p = body(json)?;
    if !st.store.pause_reasons().await?.contains(&p.reason) {
        return Err(Problem::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason",
            "not one of GET /api/v1/pause-reasons",
        ));
    }
    change(&st, &operator, |acd, now, o| {
        acd.pause(&operator, &p.reason, now, o)
    })
}

pub async fn resume(
    State(st): State<AppState>,
    caller: Caller,
    Path(operator): Path<String>,
) -> Result<StatusCode, Problem> {
    known_operator(&st, &caller, &operator).await?;
    change(&st, &operator, |acd, now, o| acd.resume(&operator, now, o))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct EventFilter {
    queue: Option<String>,
    operator: Option<String>,
    #[serde(default)]
    after_id: i64,
    limit: Option<i64>,
}

/// The queue and operator event log (what reports count), oldest first, pageable by id.
pub async fn list_events(
    State(st): State<AppState>,
    caller: Caller,
    QueryParams(f): QueryParams<EventFilter>,
) -> Result<Json<Vec<serde_json::Value>>, Problem> {
    admin(&caller)?;
    let limit = f.limit.unwrap_or(1000).clamp(1, 10_000);
    Ok(Json(
        st.store
            .queue_events(f.queue.as_deref(), f.operator.as_deref(), f.after_id, limit)
            .await?,
    ))
}

/// A caller waiting now.
#[derive(Serialize, schemars::JsonSchema)]
pub struct WaitingCaller {
    call: String,
    wait_ms: u64,
}

/// One queue today: the report's figures up to now, and who waits now.
#[derive(Serialize, schemars::JsonSchema)]
pub struct QueueToday {
    queue: String,
    #[serde(flatten)]
    figures: kolokol_crm::reports::contact_store::QueueSummary,
    /// Callers waiting now, longest first.
    waiting: Vec<WaitingCaller>,
    longest_wait_now_ms: Option<u64>,
}

/// Today's live figures (Call-Center and KPI definitions, up to the last event).
#[derive(Serialize, schemars::JsonSchema)]
pub struct QueueStats {
    /// Today in crm.time_zone, `YYYY-MM-DD`.
    day: String,
    queues: Vec<QueueToday>,
    /// Per operator (every operator with the reports right, else one's own).
    operators: std::collections::BTreeMap<String, kolokol_crm::reports::contact::OperatorFigures>,
}

/// `GET /api/v1/queues/stats`: the figures of today, as the reports define them, kept as
/// events are stored.
pub async fn stats(
    State(st): State<AppState>,
    Caller(user): Caller,
) -> Result<Json<QueueStats>, Problem> {
    let now = now_ms();
    let figures = st.live_figures.snapshot(now).ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Starting",
            "today's figures are being read from the log",
        )
        .retry_after(1)
    })?;
    let plane = plane(&st)?;
    let mut queues = Vec::new();
    for config in st.store.queues().await? {
        let waiting: Vec<WaitingCaller> = plane
            .step(|c, _| c.acd().waiting_since(&config.name))
            .into_iter()
            .map(|(call, since)| WaitingCaller {
                call,
                wait_ms: now.saturating_sub(since),
            })
            .collect();
        let today = figures
            .per_queue
            .get(&config.name)
            .and_then(|days| days.first().cloned())
            .unwrap_or_default();
        queues.push(QueueToday {
            queue: config.name,
            figures: today.into(),
            longest_wait_now_ms: waiting.iter().map(|w| w.wait_ms).max(),
            waiting,
        });
    }
    let sees_all = user.admin || user.reports;
    let operators = figures
        .operator_days
        .iter()
        .filter(|(login, _)| sees_all || **login == user.login)
        .map(|(login, days)| (login.clone(), days[0].clone()))
        .collect();
    Ok(Json(QueueStats {
        day: figures.period.days[0].to_string(),
        queues,
        operators,
    }))
}
