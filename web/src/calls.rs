//! Telephony provisioning (trunks, numbers, per-user call settings), the call history and
//! recordings.

use crate::api::{admin, body, Caller, QueryParams};
use crate::{AppState, Problem};
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kolokol_crm::telephony::{NewNumber, NewTrunk, TrunkRow, UserCalls};
use kolokol_engine::call::outbound_registration::RegistrationStatus;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// A trunk with where kolokol's registration with the provider stands.
#[derive(Serialize)]
pub struct TrunkView {
    #[serde(flatten)]
    row: TrunkRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration: Option<RegistrationStatus>,
}

pub async fn list_trunks(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TrunkView>>, Problem> {
    admin(&caller)?;
    let now = kolokol_engine::clock::now_ms();
    let trunks = st.store.trunks().await?;
    Ok(Json(
        trunks
            .into_iter()
            .map(|mut row| {
                // Provider credentials are write-only.
                row.trunk.password = row.trunk.password.as_ref().map(|_| "********".into());
                let registration = st
                    .sip
                    .calls
                    .as_ref()
                    .and_then(|p| p.step(|c, _| c.registration_status(row.id, now)));
                TrunkView { row, registration }
            })
            .collect(),
    ))
}

pub async fn create_trunk(
    State(st): State<AppState>,
    caller: Caller,
    json: Result<Json<NewTrunk>, JsonRejection>,
) -> Result<(StatusCode, Json<TrunkRow>), Problem> {
    admin(&caller)?;
    let new = body(json)?;
    let mut row = st.store.create_trunk(&new).await?;
    st.routing.reload(&st.store).await?;
    let targets = st.store.registration_targets().await?;
    if let Some(plane) = &st.sip.calls {
        let now = kolokol_engine::clock::now_ms();
        plane.step(|c, _| c.set_registrations(targets, now));
    }
    row.trunk.password = row.trunk.password.map(|_| "********".into());
    Ok((StatusCode::CREATED, Json(row)))
}

pub async fn list_numbers(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<NewNumber>>, Problem> {
    admin(&caller)?;
    Ok(Json(st.store.numbers().await?))
}

pub async fn create_number(
    State(st): State<AppState>,
    caller: Caller,
    json: Result<Json<NewNumber>, JsonRejection>,
) -> Result<(StatusCode, Json<NewNumber>), Problem> {
    admin(&caller)?;
    let new = body(json)?;
    let created = st.store.create_number(&new).await?;
    st.routing.reload(&st.store).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn set_user_calls(
    State(st): State<AppState>,
    caller: Caller,
    Path(login): Path<String>,
    json: Result<Json<UserCalls>, JsonRejection>,
) -> Result<Json<UserCalls>, Problem> {
    admin(&caller)?;
    let calls = body(json)?;
    st.store.set_user_calls(&login, &calls).await?;
    st.routing.reload(&st.store).await?;
    Ok(Json(calls))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct CallQuery {
    #[serde(default = "hundred")]
    limit: i64,
}

fn hundred() -> i64 {
    100
}

/// Recent calls, newest first: all of them for an administrator, one's own otherwise.
pub async fn list_calls(
    State(st): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<CallQuery>,
) -> Result<Json<Vec<kolokol_crm::calls::CallRow>>, Problem> {
    if !(1..=1000).contains(&q.limit) {
        return Err(Problem::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit",
            "1 to 1000",
        ));
    }
    Ok(Json(st.store.recent_calls(&caller.0, q.limit).await?))
}

/// Administrators see every call; a user the calls they placed, took, or were offered
/// (rung by a queue, overflowed or transferred to, ringing now).
async fn may_see(st: &AppState, caller: &Caller, call_id: &str) -> Result<(), Problem> {
    if caller.0.admin {
        return Ok(());
    }
    let me = &caller.0;
    let ext = me.extension.as_deref().unwrap_or_default();
    let is_me = |u: &String| *u == me.login || (!ext.is_empty() && u == ext);
    let ringing = || {
        st.sip
            .calls
            .as_ref()
            .is_some_and(|p| p.step(|c, _| c.rings_user(call_id, &me.login)))
    };
    if st.store.call_users(call_id).await?.iter().any(is_me)
        || ringing()
        || st.store.call_offered_to(call_id).await?.iter().any(is_me)
    {
        Ok(())
    } else {
        Err(Problem::forbidden())
    }
}

/// Every event of one call, in order.
pub async fn call_events(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<serde_json::Value>>, Problem> {
    may_see(&st, &caller, &id).await?;
    let rows = st.store.call_events(&id).await?;
    Ok(Json(
        rows.iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect(),
    ))
}

/// `GET /api/v1/calls/{id}/partner`: the card of the call's outside party, as the caller
/// may see it (made for an unknown number as the call is offered).
pub async fn call_partner(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<kolokol_crm::partners::Partner>, Problem> {
    may_see(&st, &caller, &id).await?;
    let partner = st.store.call_partner(&id).await?;
    let viewer = st.store.viewer(caller.0).await?;
    let form = st.store.form().await?;
    Ok(Json(st.store.partner(&viewer, &form, partner).await?))
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against a length: the inclusive range, or None
/// when unsatisfiable.
fn byte_range(spec: &str, len: u64) -> Option<(u64, u64)> {
    let spec = spec.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len - 1)
        }
        (a, "") => (a.parse().ok()?, len - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(len - 1)),
    };
    (start <= end && start < len).then_some((start, end))
}

/// The call's WAV, with HTTP Range, to the call's participants and administrators.
pub async fn recording(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    may_see(&st, &caller, &id).await?;
    let rec = st.store.recording(&id).await?;
    let mut file = tokio::fs::File::open(&rec.path).await.map_err(|_| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "Not Found",
            "the recording file is missing",
        )
    })?;
    let len = file.metadata().await.map_err(Problem::internal)?.len();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
        Some(spec) => match byte_range(spec, len) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
            None => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{len}"))],
                )
                    .into_response())
            }
        },
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(Problem::internal)?;
    let stream = futures_util::stream::unfold(
        (file.take(count), vec![0u8; 64 * 1024]),
        |(mut f, mut buf)| async move {
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => Some((
                    Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(&buf[..n])),
                    (f, buf),
                )),
                Err(e) => Some((Err(e), (f, buf))),
            }
        },
    );
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, count);
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    response
        .body(Body::from_stream(stream))
        .map_err(Problem::internal)
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(byte_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(byte_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(byte_range("bytes=990-2000", 1000), Some((990, 999)));
        assert_eq!(byte_range("bytes=1000-", 1000), None);
        assert_eq!(byte_range("bytes=5-1", 1000), None);
        assert_eq!(byte_range("items=0-1", 1000), None);
    }
}
