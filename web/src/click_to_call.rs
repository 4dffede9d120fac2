//! `POST /api/v1/calls`: click-to-call. kolokol rings the caller's own devices (the INVITE
//! carries `X-Kolokol-Call-Id` and `X-Kolokol-Click-To-Call: <number>`, so a softphone may
//! answer it by itself), then dials the number through their trunk.

use crate::api::{body, Caller};
use crate::{AppState, Problem};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use kolokol_engine::call::ClickError;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClickToCall {
    /// The number to call: digits, an optional leading `+`; spaces, `-`, `.` and
    /// parentheses are dropped; at most 32 digits.
    to: String,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct Placed {
    /// kolokol's call id: the call events', and the INVITE's X-Kolokol-Call-Id.
    call_id: String,
}

pub async fn place(
    State(st): State<AppState>,
    Caller(user): Caller,
    json: Result<Json<ClickToCall>, JsonRejection>,
) -> Result<(StatusCode, Json<Placed>), Problem> {
    let ClickToCall { to } = body(json)?;
    let unavailable = || {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "not taking calls now",
        )
        .retry_after(30)
    };
    let plane = st.sip.calls.as_ref().ok_or_else(unavailable)?;
    let now = kolokol_engine::clock::now_ms();
    let placed = plane.step(|c, out| c.click_to_call(&user.login, &to, now, out));
    match placed {
        Ok(call_id) => Ok((StatusCode::ACCEPTED, Json(Placed { call_id }))),
        Err(e @ (ClickError::Malformed | ClickError::NoRoute | ClickError::Internal)) => Err(
            Problem::field(StatusCode::UNPROCESSABLE_ENTITY, "to", format!("to: {e}")),
        ),
        Err(ClickError::NoDevice) => Err(Problem::new(
            StatusCode::CONFLICT,
            "Conflict",
            "no phone or softphone of yours is registered to ring first",
        )),
        Err(ClickError::TooMany) => Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            "a call of yours is being placed already: answer or end it first",
        )
        .retry_after(5)),
        Err(ClickError::Unavailable) => Err(unavailable()),
    }
}
