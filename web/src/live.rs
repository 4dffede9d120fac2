//! `GET /api/v1/live`: a WebSocket streaming events as they are stored — call events and
//! queue/operator events, each a JSON text frame `{"type": "call" | "queue", "event": …}`.
//!
//! Supervisors (admins) get everything, for live queue dashboards. Anyone else gets their
//! own operator events and the events of calls that concern them: from the moment a call
//! is offered to them or answered by them, every event of that call. A client too slow to
//! keep up gets `{"type": "lagged", "missed": N}` and should reload what it shows.

use crate::api::Caller;
use crate::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use kolokol_crm::User;
use kolokol_engine::event::{EventKind, Record};
use std::collections::HashSet;
use tokio::sync::broadcast::error::RecvError;

/// Who asks is checked before the upgrade, so a stranger gets 401, not a socket.
pub async fn upgrade(caller: Caller, State(st): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let Caller(user) = caller;
    let events = st.bus.subscribe();
    ws.on_upgrade(move |socket| stream(socket, user, events))
}

async fn stream(
    mut socket: WebSocket,
    user: User,
    mut events: tokio::sync::broadcast::Receiver<Record>,
) {
    let mut audience = Audience::new(user);
    loop {
        tokio::select! {
            received = events.recv() => {
                let text = match received {
                    Ok(record) if audience.admits(&record) => {
                        serde_json::to_string(&record).unwrap_or_default()
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        serde_json::json!({"type": "lagged", "missed": missed}).to_string()
                    }
                    Err(RecvError::Closed) => break,
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                // Nothing to read from the client; pings are answered by axum.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// What one connection may see.
struct Audience {
    user: User,
    /// Calls of a non-admin user that concern them, until they end.
    calls: HashSet<String>,
}

impl Audience {
    fn new(user: User) -> Audience {
        Audience {
            user,
            calls: HashSet::new(),
        }
    }

    fn admits(&mut self, record: &Record) -> bool {
        if self.user.admin {
            return true;
        }
        let me = self.user.login.as_str();
        match record {
            Record::Queue(q) => {
                let mine = q.kind.operator() == Some(me);
                if let (true, Some(call)) = (mine, q.kind.call()) {
                    self.calls.insert(call.to_string());
                }
                mine || q.kind.call().is_some_and(|c| self.calls.contains(c))
            }
            Record::Call(e) => {
                let concerns_me = match &e.kind {
                    EventKind::Offered { user, .. } => user.as_deref() == Some(me),
                    EventKind::Answered { by } => by == me,
                    _ => false,
                };
                if concerns_me {
                    self.calls.insert(e.call_id.clone());
                }
                let admitted = self.calls.contains(&e.call_id);
                if matches!(e.kind, EventKind::Ended { .. }) {
                    self.calls.remove(&e.call_id);
                }
                admitted
            }
        }
    }
}
