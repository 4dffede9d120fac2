//! `GET /api/v1/live`: a WebSocket streaming events as they are stored — call events and
//! queue/operator events, each a JSON text frame `{"type": "call" | "queue", "event": …}`.
//!
//! Supervisors (admins) get everything, for live queue dashboards. Anyone else gets their
//! own operator events and the events of calls that concern them: from the moment a call
//! is offered to them or answered by them, every event of that call up to its recording. A client too slow to
//! keep up gets `{"type": "lagged", "missed": N}` and should reload what it shows.
//!
//! Queue and operator events a non-admin may not read still tell them that the floor
//! changed: `{"type": "floor_changed"}`, at most once per `FLOOR_HINT`, so the status bar
//! reloads colleagues' states and the queue counters (GET /api/v1/operators, which every
//! user may read) without polling.

use crate::api::Caller;
use crate::{AppState, Notice};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use kolokol_crm::calendar::Reminder;
use kolokol_crm::User;
use kolokol_engine::event::{EventKind, Record};
use std::collections::{HashMap, HashSet, VecDeque};
use tokio::sync::broadcast::error::RecvError;

/// Who asks is checked before the upgrade, so a stranger gets 401, not a socket.
pub async fn upgrade(
    caller: Result<Caller, crate::Problem>,
    headers: axum::http::HeaderMap,
    State(st): State<AppState>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    // The session cookie rides along with any page's WebSocket: only ours may use it.
    if !st.guard.origin_allowed(&headers) {
        return crate::sip_ws::foreign_origin();
    }
    let user = match caller {
        Ok(Caller(user)) => user,
        Err(p) => return p.into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    // Subscribed before the user counts as present: nothing meant for them is missed.
    let events = st.bus.subscribe();
    let notices = st.notices.subscribe();
    ws.on_upgrade(move |socket| async move {
        let _present = st.presence.enter(user.id);
        let mut socket = socket;
        // Reminders that fell due while the user had no live socket; those a closing
        // socket does not take wait for the next one.
        match st.store.due_reminders(now(), &[user.id]).await {
            Ok(missed) => {
                for (n, r) in missed.iter().enumerate() {
                    let text = reminder(r).to_string();
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        let unsent: Vec<i64> = missed[n..].iter().map(|r| r.event.id).collect();
                        if let Err(e) = st.store.unclaim_reminders(&unsent).await {
                            tracing::error!(error = %e, "keeping unsent reminders failed");
                        }
                        return;
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "reading missed reminders failed"),
        }
        stream(socket, user, events, notices).await
    })
}

fn now() -> i64 {
    kolokol_engine::clock::now_ms() as i64
}

fn reminder(r: &Reminder) -> serde_json::Value {
    serde_json::json!({"type": "reminder", "event": r.event})
}

/// Users with a live socket open, counted per socket.
#[derive(Debug, Default)]
pub struct Presence(std::sync::Mutex<HashMap<i64, usize>>);

/// A user's presence while it lives.
pub struct Present<'p> {
    presence: &'p Presence,
    user: i64,
}

impl Presence {
    pub fn enter(&self, user: i64) -> Present<'_> {
        *self.0.lock().expect("presence").entry(user).or_default() += 1;
        Present {
            presence: self,
            user,
        }
    }

    pub fn users(&self) -> Vec<i64> {
        self.0.lock().expect("presence").keys().copied().collect()
    }
}

impl Drop for Present<'_> {
    fn drop(&mut self) {
        let mut users = self.presence.0.lock().expect("presence");
        if let Some(n) = users.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                users.remove(&self.user);
            }
        }
    }
}

/// Hands out calendar reminders at their minute, to the assignee's live sockets as
/// `{"type": "reminder", "event": …}`; each goes out once (the store marks it). A user
/// with no socket open gets theirs when they next connect.
pub async fn remind(st: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        match st.store.due_reminders(now(), &st.presence.users()).await {
            Ok(due) => {
                // A user who left meanwhile gets theirs when they come back.
                let present = st.presence.users();
                let mut gone = Vec::new();
                for r in due {
                    if present.contains(&r.user_id) {
                        let _ = st.notices.send(Notice {
                            user_id: r.user_id,
                            body: reminder(&r),
                        });
                    } else {
                        gone.push(r.event.id);
                    }
                }
                if let Err(e) = st.store.unclaim_reminders(&gone).await {
                    tracing::error!(error = %e, "keeping reminders of absent users failed");
                }
            }
            Err(e) => tracing::error!(error = %e, "reading due reminders failed"),
        }
    }
}

async fn stream(
    mut socket: WebSocket,
    user: User,
    mut events: tokio::sync::broadcast::Receiver<Record>,
    mut notices: tokio::sync::broadcast::Receiver<Notice>,
) {
    let me = user.id;
    let mut audience = Audience::new(user);
    let mut floor_changed = false;
    let mut hint = tokio::time::interval(FLOOR_HINT);
    hint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = hint.tick(), if floor_changed => {
                floor_changed = false;
                let text = serde_json::json!({"type": "floor_changed"}).to_string();
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            notice = notices.recv() => match notice {
                Ok(n) if n.user_id == me => {
                    if socket.send(Message::Text(n.body.to_string().into())).await.is_err() {
                        break;
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
            received = events.recv() => {
                let text = match received {
                    Ok(record) if audience.admits(&record) => {
                        serde_json::to_string(&record).unwrap_or_default()
                    }
                    Ok(Record::Queue(_)) => {
                        floor_changed = true;
                        continue;
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

/// How often, at most, a non-admin hears that the floor changed.
const FLOOR_HINT: std::time::Duration = std::time::Duration::from_millis(300);

/// What one connection may see.
struct Audience {
    user: User,
    /// Calls of a non-admin user that concern them, until their recording is finished.
    calls: HashSet<String>,
    /// Ended calls still in `calls`, oldest first.
    ended: VecDeque<String>,
}

/// Ended calls whose recording event a non-admin may still be waiting for.
const ENDED_KEPT: usize = 64;

impl Audience {
    fn new(user: User) -> Audience {
        Audience {
            user,
            calls: HashSet::new(),
            ended: VecDeque::new(),
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
                match e.kind {
                    // The recording's event follows the end; keep the last ended calls
                    // until it comes (a bounded number, for calls never recorded).
                    EventKind::Ended { .. } if admitted => {
                        self.ended.push_back(e.call_id.clone());
                        if self.ended.len() > ENDED_KEPT {
                            let oldest = self.ended.pop_front().expect("not empty");
                            self.calls.remove(&oldest);
                        }
                    }
                    EventKind::RecordingFinished { .. } => {
                        self.calls.remove(&e.call_id);
                    }
                    _ => {}
                }
                admitted
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kolokol_engine::event::{CallDirection, EndCause, Event};

    fn user(login: &str, admin: bool) -> User {
        User {
            id: 1,
            login: login.into(),
            name: login.into(),
            extension: None,
            active: true,
            admin,
            contacts: false,
            tasks: false,
            reports: false,
            created_at: String::new(),
        }
    }

    fn event(call: &str, kind: EventKind) -> Record {
        Record::Call(Event {
            call_id: call.into(),
            seq: 1,
            at_ms: 0,
            leg: None,
            kind,
        })
    }

    fn offered(call: &str, to: &str) -> Record {
        event(
            call,
            EventKind::Offered {
                direction: CallDirection::Inbound,
                from: "74951112233".into(),
                to: to.into(),
                user: Some(to.into()),
                number: None,
                trunk: None,
            },
        )
    }

    fn ended(call: &str) -> Record {
        let kind = EventKind::Ended {
            cause: EndCause::Completed,
            status: None,
            by: None,
        };
        event(call, kind)
    }

    fn recorded(call: &str) -> Record {
        let kind = EventKind::RecordingFinished {
            path: String::new(),
            duration_ms: 1,
            bytes: 1,
            channels: 2,
        };
        event(call, kind)
    }

    #[test]
    fn an_operator_follows_their_calls_up_to_the_recording_and_nothing_else() {
        let mut ann = Audience::new(user("ann", false));
        assert!(!ann.admits(&offered("c2", "bob")), "bob's call");
        assert!(ann.admits(&offered("c1", "ann")));
        assert!(ann.admits(&event("c1", EventKind::Held)));
        assert!(!ann.admits(&event("c2", EventKind::Held)));
        assert!(ann.admits(&ended("c1")));
        assert!(ann.admits(&recorded("c1")), "the recording follows the end");
        assert!(
            !ann.admits(&event("c1", EventKind::Resumed)),
            "forgotten after it"
        );
        // Ended calls never recorded are forgotten after a while.
        for n in 0..=ENDED_KEPT {
            let call = format!("x{n}");
            ann.admits(&offered(&call, "ann"));
            ann.admits(&ended(&call));
        }
        assert!(!ann.admits(&recorded("x0")));
        assert!(ann.calls.len() <= ENDED_KEPT);

        let mut supervisor = Audience::new(user("boss", true));
        assert!(supervisor.admits(&offered("c2", "bob")));
    }
}
