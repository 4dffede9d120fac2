//! REST handlers of /api/v1.

use crate::guard::{Origin, Refusal};
use crate::{AppState, Problem};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kolokol_crm::{NewUser, User};
use kolokol_engine::clock::now_ms;
use serde::{Deserialize, Serialize};

pub const SESSION_COOKIE: &str = "kolokol_session";

/// The caller, from `Authorization: Bearer` or the session cookie.
pub struct Caller(pub User);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let cookie = session_cookie(&parts.headers);
        if bearer.is_none() && cookie.is_some() && !parts.method.is_safe() {
            cross_site_check(parts)?;
        }
        let token = bearer.or(cookie).ok_or_else(Problem::unauthorized)?;
        match state.store.user_by_token(token).await? {
            Some(user) => {
                let token = CallerToken(token.to_string());
                parts.extensions.insert(token);
                Ok(Caller(user))
            }
            None => Err(Problem::unauthorized()),
        }
    }
}

/// The token or session a request was authenticated with (in the request's extensions).
#[derive(Clone)]
pub struct CallerToken(pub String);

/// Only an administrator passes.
pub fn admin(caller: &Caller) -> Result<(), Problem> {
    if caller.0.admin {
        Ok(())
    } else {
        Err(Problem::forbidden())
    }
}

/// The session cookie of a request, if any.
fn session_cookie(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
}

/// A write authenticated by cookie must come from our own pages: SameSite=Strict already
/// keeps other sites' requests cookieless; this refuses what a browser marks cross-site
/// or sends with a foreign Origin.
fn cross_site_check(parts: &Parts) -> Result<(), Problem> {
    let foreign_origin = matches!(crate::guard::origin(&parts.headers), Origin::Foreign(_));
    let fetch_site = parts.headers.get("sec-fetch-site");
    if foreign_origin || fetch_site.is_some_and(|v| v == "cross-site") {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "cross-site request refused",
        ));
    }
    Ok(())
}

/// Fields of request bodies, named in problem+json when they do not parse.
const BODY_FIELDS: &[&str] = &[
    "login",
    "name",
    "extension",
    "sip_password",
    "password",
    "admin",
    "address",
    "transport",
    "inbound_ip",
    "inbound_port",
    "caller_id",
    "username",
    "number",
    "user",
    "record",
    "trunk_id",
    "queue",
    "strategy",
    "members",
    "ring_timeout_ms",
    "retry_delay_ms",
    "max_wait_ms",
    "overflow",
    "join_empty",
    "leave_empty",
    "wrap_up_ms",
    "service_level_ms",
    "short_abandon_ms",
    "auto_pause_after",
    "priority",
    "tier_step_ms",
    "reason",
    "register",
    "latin",
    "kind",
    "section",
    "list_id",
    "position",
    "shown",
    "placeholder",
    "side",
    "in_table",
    "required",
    "items",
    "access",
    "values",
    "active",
    "contacts",
    "tasks",
    "reports",
    "survivor",
    "merged",
    "description",
    "at",
    "remind_min",
    "partner_id",
    "assignee",
    "follows",
    "title",
    "status",
    "priority",
    "starts_on",
    "due_on",
    "hours_spent",
    "partners",
    "partner_filter",
    "subject",
    "to",
    "cc",
    "bcc",
    "attachments",
    "body",
    "language",
    "current",
    "new",
];

/// A query string's parameters; a rejection is a problem+json naming the parameter
/// where serde names it (unknown or missing ones).
pub struct QueryParams<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(QueryParams)
            .map_err(|e| {
                let text = e.to_string();
                // serde names the parameter only in these; elsewhere a quoted word is a value.
                let named = ["unknown field", "missing field", "duplicate field"]
                    .iter()
                    .any(|m| text.starts_with(m))
                    .then(|| text.split('`').nth(1).map(str::to_string))
                    .flatten();
                let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid query", text);
                p.field = named.map(Into::into);
                p
            })
    }
}

/// JSON bodies whose rejection is a problem+json naming what is wrong.
pub fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, Problem> {
    json.map(|Json(v)| v).map_err(|e| {
        let text = e.body_text();
        // axum reports the path of the failing field ("… target type: strategy: unknown
        // variant …"); serde names missing ones in backticks ("missing field `login`").
        let path = text
            .split_once("target type: ")
            .and_then(|(_, rest)| rest.split_once(": "))
            .map(|(path, _)| path.split(['.', '[']).next().unwrap_or(path));
        let field = BODY_FIELDS.iter().find(|f| path == Some(**f)).or_else(|| {
            BODY_FIELDS
                .iter()
                .find(|f| text.contains(&format!("`{f}`")))
        });
        let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid body", text);
        p.field = field.map(|f| (*f).into());
        p
    })
}

pub async fn ready(State(st): State<AppState>) -> Response {
    if st.store.ping().await {
        "ready".into_response()
    } else {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready",
            "database unavailable",
        )
        .into_response()
    }
}

/// Prometheus metrics: to the addresses in `http.metrics_from` (loopback by default) and
/// to administrators; they describe the whole installation.
pub async fn metrics(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    caller: Result<Caller, Problem>,
) -> Response {
    if !st.guard.may_scrape(peer.ip()) {
        if let Err(p) = caller
            .as_ref()
            .map_err(|_| Problem::unauthorized())
            .and_then(admin)
        {
            return p.into_response();
        }
    }
    metrics::gauge!("kolokol_registrations").set(st.sip.registrar.location.count() as f64);
    metrics::gauge!("kolokol_pike_banned_sources")
        .set(st.sip.registrar.banned_count(now_ms()) as f64);
    metrics::gauge!("kolokol_sip_connections").set(st.connections.len() as f64);
    metrics::gauge!("kolokol_sip_udp_wait_us").set(st.sip.admission.wait_us() as f64);
    if let Some(plane) = &st.sip.calls {
        let calls = plane.control.lock().map_or(0, |c| c.active_calls());
        metrics::gauge!("kolokol_active_calls").set(calls as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
        .into_response()
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct Login {
    login: String,
    password: String,
}

/// Logs in: a new session every time (the one the browser held, if any, ends), so a
/// session id planted before login is worthless after it.
///
/// A source or a login that keeps failing is refused for a while (429 with Retry-After)
/// without its password being checked; so is a login while too many checks run (503).
pub async fn login(
    State(st): State<AppState>,
    axum::Extension(listener): axum::Extension<kolokol_engine::transport::Transport>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
    json: Result<Json<Login>, JsonRejection>,
) -> Result<Response, Problem> {
    let login = body(json)?;
    let ip = st.guard.client_ip(peer, &headers);
    st.guard
        .may_try(ip, &login.login, now_ms())
        .map_err(refused)?;
    let permit = st.guard.password_check().map_err(refused)?;
    if let Some(old) = session_cookie(&headers) {
        st.store.end_session(old).await?;
        st.directory.reload(&st.store, &st.realm).await?;
    }
    let checked = st
        .store
        .check_password(&login.login, &login.password)
        .await?;
    drop(permit);
    let Some(user) = checked else {
        st.guard.failed(ip, &login.login, now_ms());
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "wrong login or password",
        ));
    };
    let token = st.store.issue_token(user.id, "session").await?;
    // Over HTTPS the cookie never travels in the clear (Secure).
    let secure = if listener == kolokol_engine::transport::Transport::Wss {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200{secure}"
    );
    Ok(([(header::SET_COOKIE, cookie)], Json(user)).into_response())
}

pub(crate) fn refused(r: Refusal) -> Problem {
    match r {
        Refusal::Throttled { retry_after_s } => Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            "too many failed logins: try again later",
        )
        .retry_after(retry_after_s),
        Refusal::Busy => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "too many logins at once: try again in a moment",
        )
        .retry_after(1),
    }
}

/// Ends the session and clears its cookie.
/// Whether the request carries a live session: the web app asks this before anything
/// else, so a signed-out page learns it without a failed (401) request in its console.
#[derive(Serialize, schemars::JsonSchema)]
pub struct SessionState {
    signed_in: bool,
}

pub async fn session_state(
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<SessionState>, Problem> {
    let signed_in = match session_cookie(&headers) {
        Some(token) => st.store.user_by_token(token).await?.is_some(),
        None => false,
    };
    Ok(Json(SessionState { signed_in }))
}

pub async fn logout(
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, Problem> {
    if let Some(token) = session_cookie(&headers) {
        st.store.end_session(token).await?;
        // The session's softphone key went with it.
        st.directory.reload(&st.store, &st.realm).await?;
    }
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], StatusCode::NO_CONTENT).into_response())
}

pub async fn list_users(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<User>>, Problem> {
    admin(&caller)?;
    Ok(Json(st.store.users().await?))
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct Created {
    #[serde(flatten)]
    user: User,
    /// The web password, shown once when it was generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

pub async fn create_user(
    State(st): State<AppState>,
    caller: Caller,
    json: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<Created>), Problem> {
    admin(&caller)?;
    let new = body(json)?;
    let (user, password) = st.store.create_user(&new, &st.realm).await?;
    st.directory.reload(&st.store, &st.realm).await?;
    st.routing.reload(&st.store).await?;
    let password = new.password.is_none().then_some(password);
    Ok((StatusCode::CREATED, Json(Created { user, password })))
}

#[derive(Serialize)]
pub struct Registration {
    aor: String,
    contact: String,
    transport: &'static str,
    source: String,
    expires_at: String,
    expires_in: u64,
    user_agent: Option<String>,
}

/// Who is registered from where: everyone's to administrators, one's own to anyone else
/// (a device's address is nobody else's business).
pub async fn registrations(
    State(st): State<AppState>,
    Caller(user): Caller,
) -> Json<Vec<Registration>> {
    let now = now_ms();
    let mut list: Vec<Registration> = st
        .sip
        .registrar
        .location
        .all(now)
        .into_iter()
        .filter(|b| user.admin || user.extension.as_deref() == Some(b.aor.as_str()))
        .map(|b| Registration {
            transport: b.flow.transport.name(),
            source: b.flow.remote.to_string(),
            expires_in: b.expires_at_ms.saturating_sub(now) / 1000,
            expires_at: chrono::DateTime::from_timestamp_millis(b.expires_at_ms as i64)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            aor: b.aor,
            contact: b.contact,
            user_agent: b.user_agent,
        })
        .collect();
    list.sort_by(|a, b| a.aor.cmp(&b.aor).then(a.contact.cmp(&b.contact)));
    Json(list)
}
