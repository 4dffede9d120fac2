//! The event log's vocabulary: every change of a call is one typed [`Event`]. The engine
//! only produces them; the binary appends them to storage and then publishes them on an
//! [`EventBus`], so nobody sees an event that a crash could lose.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Which side of a call an event concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegRole {
    /// The leg the call came in on.
    Caller,
    /// The leg kolokol placed towards the destination.
    Callee,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// User to user.
    Internal,
    /// From a trunk to a number.
    Inbound,
    /// From a user out through a trunk.
    Outbound,
}

impl CallDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::Internal => "internal",
            CallDirection::Inbound => "inbound",
            CallDirection::Outbound => "outbound",
        }
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    /// Answered, then one side hung up.
    Completed,
    /// The caller gave up before anyone answered.
    Abandoned,
    Busy,
    NoAnswer,
    Declined,
    /// Nobody to ring: unknown number, no registered device.
    Unavailable,
    /// A leg stopped answering (lost ACK, dead transport).
    LegLost,
    /// kolokol was stopping and the call outlived the drain deadline.
    Shutdown,
    /// Found unfinished after a crash.
    Interrupted,
    /// An attended transfer took its remaining party into another call.
    Transferred,
    Failed,
}

impl EndCause {
    pub fn as_str(self) -> &'static str {
        match self {
            EndCause::Completed => "completed",
            EndCause::Abandoned => "abandoned",
            EndCause::Busy => "busy",
            EndCause::NoAnswer => "no_answer",
            EndCause::Declined => "declined",
            EndCause::Unavailable => "unavailable",
            EndCause::LegLost => "leg_lost",
            EndCause::Shutdown => "shutdown",
            EndCause::Interrupted => "interrupted",
            EndCause::Transferred => "transferred",
            EndCause::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    Offered {
        direction: CallDirection,
        from: String,
        to: String,
        /// The user who placed or is meant to take the call.
        user: Option<String>,
        /// The DID it came in on, or the external number dialled.
        number: Option<String>,
        trunk: Option<String>,
    },
    Ringing {
        target: String,
    },
    Answered {
        by: String,
    },
    Held,
    Resumed,
    Transferred {
        to: String,
        attended: bool,
    },
    RecordingStarted {
        path: String,
    },
    RecordingFinished {
        path: String,
        duration_ms: u64,
        bytes: u64,
        channels: u16,
    },
    Ended {
        cause: EndCause,
        /// The SIP status the caller was given when the call failed.
        status: Option<u16>,
        by: Option<LegRole>,
    },
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Offered { .. } => "offered",
            EventKind::Ringing { .. } => "ringing",
            EventKind::Answered { .. } => "answered",
            EventKind::Held => "held",
            EventKind::Resumed => "resumed",
            EventKind::Transferred { .. } => "transferred",
            EventKind::RecordingStarted { .. } => "recording_started",
            EventKind::RecordingFinished { .. } => "recording_finished",
            EventKind::Ended { .. } => "ended",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub call_id: String,
    /// Per call, from 1, without gaps.
    pub seq: u32,
    pub at_ms: u64,
    pub leg: Option<LegRole>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What the journal appends: a call's event, or a queue/operator event (operator events
/// belong to no call).
/// As published on the live socket: `{"type": "call" | "queue", "event": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "event", rename_all = "snake_case")]
pub enum Record {
    Call(Event),
    Queue(crate::queue::QueueEvent),
}

impl Record {
    /// When it happened.
    pub fn at_ms(&self) -> u64 {
        match self {
            Record::Call(e) => e.at_ms,
            Record::Queue(e) => e.at_ms,
        }
    }
}

/// Where stored events are published. In-process now; NATS JetStream can implement it
/// when kolokol runs on several nodes.
pub trait EventBus: Send + Sync {
    fn publish(&self, record: &Record);
    fn subscribe(&self) -> broadcast::Receiver<Record>;
}

/// The in-process bus: a broadcast channel; slow subscribers miss events (and are told so
/// by `RecvError::Lagged`) rather than slowing calls down.
pub struct LocalBus(broadcast::Sender<Record>);

impl LocalBus {
    pub fn new(capacity: usize) -> Self {
        LocalBus(broadcast::channel(capacity).0)
    }
}

impl EventBus for LocalBus {
    fn publish(&self, record: &Record) {
        let _ = self.0.send(record.clone());
    }

    fn subscribe(&self) -> broadcast::Receiver<Record> {
        self.0.subscribe()
    }
}
