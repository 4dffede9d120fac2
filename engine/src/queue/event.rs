//! Queue and operator events: what the KPI and Call-Center reports count. Times are
//! milliseconds since the Unix epoch (`at_ms`) or durations in milliseconds (`*_ms`).

use super::operator::CallRef;
use super::Overflow;
use serde::{Deserialize, Serialize};

/// Who ended an answered queue call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletedBy {
    Caller,
    Operator,
    /// kolokol (shutdown, a lost leg).
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueEvent {
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: QueueEventKind,
}

impl QueueEvent {
    pub fn new(at_ms: u64, kind: QueueEventKind) -> Self {
        QueueEvent { at_ms, kind }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QueueEventKind {
    /// A caller entered `queue`; `position` is their place among its waiting callers (1 =
    /// first).
    /// The queue's thresholds in force are kept with the call, so a later change of the
    /// queue never rewrites its history.
    Entered {
        queue: String,
        call: CallRef,
        position: usize,
        #[serde(default)]
        service_level_ms: u64,
        #[serde(default)]
        short_abandon_ms: u64,
    },
    /// The caller is rung at `operator`'s devices.
    Offered {
        queue: String,
        call: CallRef,
        operator: String,
    },
    /// `operator` did not take the offer (timeout, declined, busy); `ring_ms` is how long
    /// it rang. Counts as the operator's "missed".
    NoAnswer {
        queue: String,
        call: CallRef,
        operator: String,
        ring_ms: u64,
    },
    /// `operator` answered after the caller waited `wait_ms` in the queue;
    /// `within_service_level`: `wait_ms` ≤ the queue's service-level threshold.
    Answered {
        queue: String,
        call: CallRef,
        operator: String,
        wait_ms: u64,
        within_service_level: bool,
    },
    /// The caller hung up while waiting, after `wait_ms`, at `position`.
    Abandoned {
        queue: String,
        call: CallRef,
        wait_ms: u64,
        position: usize,
    },
    /// The caller was sent to `to` (max wait, or the queue emptied) after `wait_ms`.
    Overflowed {
        queue: String,
        call: CallRef,
        wait_ms: u64,
        to: Overflow,
    },
    /// Max wait reached with nowhere to overflow: the caller hears a goodbye and is hung up.
    TimedOut {
        queue: String,
        call: CallRef,
        wait_ms: u64,
    },
    /// An answered queue call ended, after `talk_ms` of conversation (hold included).
    Completed {
        queue: String,
        call: CallRef,
        operator: String,
        by: CompletedBy,
        talk_ms: u64,
    },
    /// `from` handed the answered call to `to` (a blind or an attended transfer) after
    /// talking `talk_ms` since they took it; `to` talks from here on and the call's
    /// `completed` names them.
    Transferred {
        queue: String,
        call: CallRef,
        from: String,
        to: String,
        attended: bool,
        talk_ms: u64,
    },
    /// A party of the answered call put it on hold (the talk goes on counting).
    HoldStarted {
        queue: String,
        call: CallRef,
        operator: String,
    },
    HoldEnded {
        queue: String,
        call: CallRef,
        operator: String,
    },
    /// The operator's work day began.
    Login {
        operator: String,
    },
    Logout {
        operator: String,
    },
    /// `auto`: paused by kolokol after missed offers, not by a person.
    Paused {
        operator: String,
        reason: String,
        auto: bool,
    },
    Resumed {
        operator: String,
    },
    /// After-call work on `call` began.
    WrapUpStarted {
        operator: String,
        call: CallRef,
    },
    WrapUpEnded {
        operator: String,
    },
}

impl QueueEventKind {
    /// `hold_started` (`held`) or `hold_ended` of `operator`'s call.
    pub fn hold(queue: String, call: CallRef, operator: String, held: bool) -> QueueEventKind {
        if held {
            QueueEventKind::HoldStarted {
                queue,
                call,
                operator,
            }
        } else {
            QueueEventKind::HoldEnded {
                queue,
                call,
                operator,
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            QueueEventKind::Entered { .. } => "entered",
            QueueEventKind::Offered { .. } => "offered",
            QueueEventKind::NoAnswer { .. } => "no_answer",
            QueueEventKind::Answered { .. } => "answered",
            QueueEventKind::Abandoned { .. } => "abandoned",
            QueueEventKind::Overflowed { .. } => "overflowed",
            QueueEventKind::TimedOut { .. } => "timed_out",
            QueueEventKind::Completed { .. } => "completed",
            QueueEventKind::Transferred { .. } => "transferred",
            QueueEventKind::HoldStarted { .. } => "hold_started",
            QueueEventKind::HoldEnded { .. } => "hold_ended",
            QueueEventKind::Login { .. } => "login",
            QueueEventKind::Logout { .. } => "logout",
            QueueEventKind::Paused { .. } => "paused",
            QueueEventKind::Resumed { .. } => "resumed",
            QueueEventKind::WrapUpStarted { .. } => "wrap_up_started",
            QueueEventKind::WrapUpEnded { .. } => "wrap_up_ended",
        }
    }

    /// How a caller's time in the queue ended: exactly one of these per call that entered.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            QueueEventKind::Answered { .. }
                | QueueEventKind::Abandoned { .. }
                | QueueEventKind::Overflowed { .. }
                | QueueEventKind::TimedOut { .. }
        )
    }

    /// The queue concerned, for call events.
    pub fn queue(&self) -> Option<&str> {
        match self {
            QueueEventKind::Entered { queue, .. }
            | QueueEventKind::Offered { queue, .. }
            | QueueEventKind::NoAnswer { queue, .. }
            | QueueEventKind::Answered { queue, .. }
            | QueueEventKind::Abandoned { queue, .. }
            | QueueEventKind::Overflowed { queue, .. }
            | QueueEventKind::TimedOut { queue, .. }
            | QueueEventKind::Completed { queue, .. }
            | QueueEventKind::Transferred { queue, .. }
            | QueueEventKind::HoldStarted { queue, .. }
            | QueueEventKind::HoldEnded { queue, .. } => Some(queue),
            _ => None,
        }
    }

    /// The operator concerned, if any.
    pub fn operator(&self) -> Option<&str> {
        match self {
            QueueEventKind::Offered { operator, .. }
            | QueueEventKind::NoAnswer { operator, .. }
            | QueueEventKind::Answered { operator, .. }
            | QueueEventKind::Completed { operator, .. }
            | QueueEventKind::Transferred { from: operator, .. }
            | QueueEventKind::HoldStarted { operator, .. }
            | QueueEventKind::HoldEnded { operator, .. }
            | QueueEventKind::Login { operator }
            | QueueEventKind::Logout { operator }
            | QueueEventKind::Paused { operator, .. }
            | QueueEventKind::Resumed { operator }
            | QueueEventKind::WrapUpStarted { operator, .. }
            | QueueEventKind::WrapUpEnded { operator } => Some(operator),
            _ => None,
        }
    }

    /// The call concerned, for call events.
    pub fn call(&self) -> Option<&str> {
        match self {
            QueueEventKind::Entered { call, .. }
            | QueueEventKind::Offered { call, .. }
            | QueueEventKind::NoAnswer { call, .. }
            | QueueEventKind::Answered { call, .. }
            | QueueEventKind::Abandoned { call, .. }
            | QueueEventKind::Overflowed { call, .. }
            | QueueEventKind::TimedOut { call, .. }
            | QueueEventKind::Completed { call, .. }
            | QueueEventKind::Transferred { call, .. }
            | QueueEventKind::HoldStarted { call, .. }
            | QueueEventKind::HoldEnded { call, .. }
            | QueueEventKind::WrapUpStarted { call, .. } => Some(call),
            _ => None,
        }
    }
}
