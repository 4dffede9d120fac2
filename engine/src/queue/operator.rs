//! An operator (SPEC §1.5): one person, whatever number of devices, in exactly one state,
//! with the time spent in each state accounted for.

use serde::{Deserialize, Serialize};

/// A call as the queue core knows it (kolokol's call id).
pub type CallRef = String;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OperatorState {
    /// Not logged in: no work day running.
    Offline,
    /// Logged in and waiting for a call.
    Ready,
    /// A queue call is offered to the operator's devices.
    Ringing { call: CallRef },
    /// In a call, queued or direct (hold counts as talk).
    Talking { call: CallRef },
    /// After-call work until `until_ms`; no calls offered.
    WrapUp { until_ms: u64 },
    /// Paused with a reason (a name from the pause reasons table).
    Paused { reason: String },
}

impl OperatorState {
    pub fn label(&self) -> &'static str {
        match self {
            OperatorState::Offline => "offline",
            OperatorState::Ready => "ready",
            OperatorState::Ringing { .. } => "ringing",
            OperatorState::Talking { .. } => "talking",
            OperatorState::WrapUp { .. } => "wrap_up",
            OperatorState::Paused { .. } => "paused",
        }
    }

    fn slot(&self) -> usize {
        match self {
            OperatorState::Offline => 0,
            OperatorState::Ready => 1,
            OperatorState::Ringing { .. } => 2,
            OperatorState::Talking { .. } => 3,
            OperatorState::WrapUp { .. } => 4,
            OperatorState::Paused { .. } => 5,
        }
    }
}

/// Milliseconds spent in each state (offline, ready, ringing, talking, wrap-up, paused).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateTimes {
    pub offline_ms: u64,
    pub ready_ms: u64,
    pub ringing_ms: u64,
    pub talking_ms: u64,
    pub wrap_up_ms: u64,
    pub paused_ms: u64,
}

impl StateTimes {
    fn add(&mut self, slot: usize, ms: u64) {
        let field = match slot {
            0 => &mut self.offline_ms,
            1 => &mut self.ready_ms,
            2 => &mut self.ringing_ms,
            3 => &mut self.talking_ms,
            4 => &mut self.wrap_up_ms,
            _ => &mut self.paused_ms,
        };
        *field += ms;
    }

    /// Time in the system: every state but offline.
    pub fn logged_in_ms(&self) -> u64 {
        self.ready_ms + self.ringing_ms + self.talking_ms + self.wrap_up_ms + self.paused_ms
    }
}

#[derive(Debug, Clone)]
pub struct Operator {
    pub id: String,
    pub state: OperatorState,
    /// When the current state began.
    pub since_ms: u64,
    /// When the operator last had nothing to do (longest-idle).
    pub idle_since_ms: u64,
    /// A pause asked for while busy; taken when the call (and wrap-up) is over.
    pub pending_pause: Option<String>,
    /// Offers missed in a row (auto-pause).
    pub missed_in_row: u32,
    /// Today's counters.
    pub accepted: u32,
    pub missed: u32,
    pub talk_ms: u64,
    pub times: StateTimes,
    /// When the work day began (login), for time in system.
    pub logged_in_at_ms: Option<u64>,
    /// Some device of theirs is registered; without one they are offered nothing.
    pub registered: bool,
}

impl Operator {
    pub fn new(id: &str, now: u64) -> Self {
        Operator {
            id: id.to_string(),
            state: OperatorState::Offline,
            since_ms: now,
            idle_since_ms: now,
            pending_pause: None,
            missed_in_row: 0,
            accepted: 0,
            missed: 0,
            talk_ms: 0,
            times: StateTimes::default(),
            logged_in_at_ms: None,
            registered: true,
        }
    }

    /// Moves to `state`, accounting the time spent in the old one.
    pub fn enter(&mut self, state: OperatorState, now: u64) {
        let spent = now.saturating_sub(self.since_ms);
        self.times.add(self.state.slot(), spent);
        if let OperatorState::Talking { .. } = self.state {
            self.talk_ms += spent;
        }
        if matches!(state, OperatorState::Ready)
            && !matches!(self.state, OperatorState::Ringing { .. })
        {
            self.idle_since_ms = now;
        }
        if matches!(state, OperatorState::Offline) {
            self.logged_in_at_ms = None;
        } else if self.logged_in_at_ms.is_none() {
            self.logged_in_at_ms = Some(now);
        }
        self.state = state;
        self.since_ms = now;
    }

    pub fn is_ready(&self) -> bool {
        self.state == OperatorState::Ready
    }

    pub fn is_logged_in(&self) -> bool {
        self.state != OperatorState::Offline
    }

    /// The times with the current state counted up to `now`.
    pub fn times_at(&self, now: u64) -> StateTimes {
        let mut t = self.times;
        t.add(self.state.slot(), now.saturating_sub(self.since_ms));
        t
    }
}
