//! The signed-in user's own account: who they are and may do, their settings, their web
//! password.

use crate::api::{body, refused, Caller, CallerToken};
use crate::{AppState, Problem};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use kolokol_crm::settings::{SettingsChange, UserSettings};
use serde::{Deserialize, Serialize};

/// What the user may do besides telephony, the partner table and cards, and events.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Rights {
    /// Everything, every field.
    pub admin: bool,
    /// Create (and delete) partners.
    pub contacts: bool,
    pub tasks: bool,
    pub reports: bool,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct Me {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub admin: bool,
    pub extension: Option<String>,
    pub rights: Rights,
    pub settings: UserSettings,
    /// The contact center's time zone (IANA name): the days of reports and of the
    /// History window are its days.
    pub time_zone: String,
}

/// `GET /api/v1/me`
pub async fn me(State(st): State<AppState>, Caller(user): Caller) -> Result<Json<Me>, Problem> {
    let settings = st.store.user_settings(user.id).await?;
    Ok(Json(Me {
        rights: Rights {
            admin: user.admin,
            contacts: user.contacts,
            tasks: user.tasks,
            reports: user.reports,
        },
        id: user.id,
        admin: user.admin,
        login: user.login,
        name: user.name,
        extension: user.extension,
        settings,
        time_zone: st.store.time_zone.name().to_string(),
    }))
}

/// `PATCH /api/v1/me/settings`
pub async fn change_settings(
    State(st): State<AppState>,
    Caller(user): Caller,
    json: Result<Json<SettingsChange>, JsonRejection>,
) -> Result<Json<UserSettings>, Problem> {
    let change = body(json)?;
    Ok(Json(st.store.change_settings(user.id, &change).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password in use now.
    current: String,
    /// At least 8 characters (at most 1024 bytes).
    new: String,
}

/// `PUT /api/v1/me/password`: guesses of `current` count as failed logins (throttled
/// alike), and the user's other sessions and tokens end.
pub async fn change_password(
    State(st): State<AppState>,
    Caller(user): Caller,
    token: Option<Extension<CallerToken>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    json: Result<Json<PasswordChange>, JsonRejection>,
) -> Result<StatusCode, Problem> {
    let change = body(json)?;
    let now = kolokol_engine::clock::now_ms();
    let ip = st.guard.client_ip(peer, &headers);
    st.guard.may_try(ip, &user.login, now).map_err(refused)?;
    let permit = st.guard.password_check().map_err(refused)?;
    let keep = token.map(|Extension(t)| t.0);
    let changed = st
        .store
        .change_own_password(&user, &change.current, &change.new, keep.as_deref())
        .await?;
    drop(permit);
    if !changed {
        st.guard.failed(ip, &user.login, now);
        let mut p = Problem::field(
            StatusCode::FORBIDDEN,
            "current",
            "current: not your password",
        );
        p.title = "Forbidden";
        return Err(p);
    }
    // Softphone keys of the sessions that ended go with them.
    st.directory.reload(&st.store, &st.realm).await?;
    Ok(StatusCode::NO_CONTENT)
}
