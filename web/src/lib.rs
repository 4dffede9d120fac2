//! kolokol-web: the HTTP API under /api/v1, SIP over WebSocket at /sip (RFC 7118),
//! health and metrics. The only crate that speaks HTTP.

mod api;
mod app;
mod calls;
mod click_to_call;
mod crm;
mod guard;
mod live;
mod me;
mod openapi;
mod problem;
mod queues;
mod reports;
mod sip_ws;
mod softphone;

use axum::routing::{get, patch, post, put};
use axum::Router;
use kolokol_crm::{RoutingTable, Store, UserDirectory};
use kolokol_engine::service::SipService;
use kolokol_engine::transport::{Connections, Transport};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

pub use guard::{Guard, GuardConfig};
pub use live::{remind, Presence};
pub use problem::Problem;
pub use queues::prepare_prompts;
pub use softphone::IceServer;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub sip: Arc<SipService>,
    pub connections: Arc<Connections>,
    pub directory: Arc<UserDirectory>,
    pub routing: Arc<RoutingTable>,
    pub realm: String,
    pub metrics: PrometheusHandle,
    pub max_message: usize,
    /// Where spoken prompts are kept (`<dir>/<language>/<phrase>.wav`), and their language.
    pub prompts: (std::path::PathBuf, kolokol_engine::call::Language),
    /// Stored call, queue and operator events, for the live socket.
    pub bus: std::sync::Arc<dyn kolokol_engine::event::EventBus>,
    /// STUN/TURN servers the softphone passes to its RTCPeerConnection.
    pub ice_servers: Vec<IceServer>,
    /// How often SIP WebSocket clients are pinged (silent for three periods: dropped).
    pub ws_keepalive: std::time::Duration,
    /// Messages for one user's live sockets (reminders, import progress).
    pub notices: tokio::sync::broadcast::Sender<Notice>,
    /// Who has a live socket open.
    pub presence: Arc<live::Presence>,
    /// Origins, proxies and login throttling.
    pub guard: Arc<Guard>,
    /// Today's Call-Center and KPI figures, kept as events are stored.
    pub live_figures: Arc<kolokol_crm::reports::live::LiveFigures>,
}

/// A message for the live sockets of one user.
#[derive(Debug, Clone)]
pub struct Notice {
    pub user_id: i64,
    pub body: serde_json::Value,
}

/// The router for one listener; `ws_transport` is what SIP over its WebSocket is called.
pub fn router(state: AppState, ws_transport: Transport) -> Router {
    Router::new()
        .route("/api/v1/me/softphone", get(softphone::credentials))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(api::ready))
        .route("/metrics", get(api::metrics))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/v1/session", get(api::session_state).post(api::login))
        .route("/api/v1/session/logout", post(api::logout))
        .route("/api/v1/users", get(api::list_users).post(api::create_user))
        .route(
            "/api/v1/users/{id}",
            patch(crm::update_user).delete(crm::delete_user),
        )
        .route(
            "/api/v1/groups",
            get(crm::list_groups).post(crm::create_group),
        )
        .route(
            "/api/v1/groups/{id}",
            put(crm::replace_group).delete(crm::delete_group),
        )
        .route("/api/v1/form", get(crm::form))
        .route(
            "/api/v1/events",
            get(crm::list_events).post(crm::create_event),
        )
        .route("/api/v1/events/{id}", get(crm::event))
        .route("/api/v1/events/{id}/complete", post(crm::complete_event))
        .route("/api/v1/tasks", get(crm::list_tasks).post(crm::create_task))
        .route("/api/v1/tasks/{id}", get(crm::task).patch(crm::update_task))
        .route(
            "/api/v1/tasks/{id}/comments",
            get(crm::task_comments).post(crm::comment_task),
        )
        .route("/api/v1/tasks/{id}/history", get(crm::task_history))
        .route("/api/v1/me/counters", get(crm::counters))
        .route("/api/v1/me", get(me::me))
        .route("/api/v1/me/settings", patch(me::change_settings))
        .route("/api/v1/me/password", put(me::change_password))
        .route("/api/v1/fields", post(crm::create_field))
        .route(
            "/api/v1/fields/{id}",
            put(crm::replace_field).delete(crm::delete_field),
        )
        .route("/api/v1/lists", post(crm::create_list))
        .route("/api/v1/lists/{id}/export", get(crm::export_list))
        .route("/api/v1/partners/export", get(crm::export_partners))
        .route("/api/v1/reports/partners", get(reports::partners))
        .route("/api/v1/reports/card-dynamics", get(reports::card_dynamics))
        .route("/api/v1/reports/events", get(reports::events))
        .route("/api/v1/reports/tasks", get(reports::tasks))
        .route("/api/v1/reports/call-center", get(reports::call_center))
        .route("/api/v1/reports/kpi", get(reports::kpi))
        .route("/api/v1/reports/calls", get(reports::calls))
        .route("/api/v1/partners/duplicates", get(crm::duplicates))
        .route("/api/v1/partners/merge", post(crm::merge_partners))
        .route(
            "/api/v1/partners/import",
            post(crm::import_partners).layer(axum::extract::DefaultBodyLimit::max(256 << 20)),
        )
        .route(
            "/api/v1/lists/{id}",
            put(crm::replace_list).delete(crm::delete_list),
        )
        .route(
            "/api/v1/partners",
            get(crm::table).post(crm::create_partner),
        )
        .route(
            "/api/v1/partners/{id}",
            get(crm::partner)
                .patch(crm::update_partner)
                .delete(crm::delete_partner),
        )
        .route("/api/v1/partners/{id}/history", get(crm::partner_history))
        .route("/api/v1/partners/{id}/calls", get(crm::partner_calls))
        .route("/api/v1/partners/{id}/email", post(crm::send_email))
        .route(
            "/api/v1/partners/{id}/files",
            get(crm::list_files)
                .post(crm::add_file)
                // The store enforces crm.max_file_mb; the body may be that large.
                .layer(axum::extract::DefaultBodyLimit::max(
                    state.store.max_file_bytes as usize + 1,
                )),
        )
        .route(
            "/api/v1/partners/{id}/files/{file}",
            get(crm::download_file).delete(crm::delete_file),
        )
        .route(
            "/api/v1/tasks/{id}/files",
            get(crm::list_task_files).post(crm::add_task_file).layer(
                axum::extract::DefaultBodyLimit::max(state.store.max_file_bytes as usize + 1),
            ),
        )
        .route(
            "/api/v1/tasks/{id}/files/{file}",
            get(crm::download_task_file).delete(crm::delete_task_file),
        )
        .route("/api/v1/registrations", get(api::registrations))
        .route(
            "/api/v1/trunks",
            get(calls::list_trunks).post(calls::create_trunk),
        )
        .route(
            "/api/v1/numbers",
            get(calls::list_numbers).post(calls::create_number),
        )
        .route("/api/v1/users/{login}/calls", put(calls::set_user_calls))
        .route("/api/v1/calls", get(calls::list_calls))
        .route("/api/v1/calls", post(click_to_call::place))
        .route("/api/v1/live", get(live::upgrade))
        .route("/api/v1/calls/{id}/events", get(calls::call_events))
        .route("/api/v1/calls/{id}/partner", get(calls::call_partner))
        .route("/api/v1/recordings/{id}", get(calls::recording))
        .route(
            "/api/v1/queues",
            get(queues::list_queues).post(queues::create_queue),
        )
        .route(
            "/api/v1/queues/{name}",
            put(queues::replace_queue).delete(queues::delete_queue),
        )
        .route("/api/v1/queues/stats", get(queues::stats))
        .route("/api/v1/queue-events", get(queues::list_events))
        .route(
            "/api/v1/pause-reasons",
            get(queues::list_pause_reasons).post(queues::add_pause_reason),
        )
        .route("/api/v1/operators", get(queues::list_operators))
        .route("/api/v1/operators/{id}/login", post(queues::login))
        .route("/api/v1/operators/{id}/logout", post(queues::logout))
        .route("/api/v1/operators/{id}/pause", post(queues::pause))
        .route("/api/v1/operators/{id}/resume", post(queues::resume))
        .route(
            "/sip",
            get(move |ws, info, headers, st| sip_ws::upgrade(ws, info, headers, st, ws_transport)),
        )
        // The web app: its assets, and its page for every client route.
        .fallback(app::serve)
        // Which listener a request came through (HTTPS: WSS), for the session cookie.
        .layer(axum::Extension(ws_transport))
        .with_state(state)
}
