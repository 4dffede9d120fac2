//! The stored aggregates: a replay's figures booked on 15-minute slots and on days (in
//! `crm.time_zone`), as the deltas one journal batch adds to the stored cells. A month's
//! report then reads a few thousand cells instead of replaying millions of events.
//!
//! Closed intervals only: an operator's time in the state they are still in is booked
//! when it ends; a report adds the open part from the stored [`super::Ongoing`].

use super::{Book, Count, OperatorFigures, QueueFigures, State};
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// A slot: every zone's midnight falls on one (offsets are whole quarter hours).
pub const SLOT_MS: u64 = 900_000;

/// The key of the all-queues and all-operators slot cells the hourly charts read.
pub const ALL: &str = "";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grain {
    Slot,
    Day,
}

impl Grain {
    pub fn code(self) -> &'static str {
        match self {
            Grain::Slot => "slot",
            Grain::Day => "day",
        }
    }
}

/// One operator's calls of one queue (or, [`ALL`], of every queue: `served` only) on one
/// day: answered, missed and transferred by the day it happened, `served` by the day the
/// call entered (operators answering).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperatorQueue {
    pub answered: u64,
    pub missed: u64,
    pub served: u64,
    pub transferred: u64,
}

/// Cell key: grain, start (ms since the epoch), queue or operator.
pub type CellKey = (Grain, u64, String);

/// Deltas (or, read back, the stored values) of the cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cells {
    /// Calls by the slot and day they entered, per queue (and [`ALL`] for slots).
    /// `operators_answering` is kept in `operator_queues`.
    pub queues: BTreeMap<CellKey, QueueFigures>,
    /// Operators' time and outbound calls per day; everyone's time ([`ALL`]) per slot
    /// (the charts of operators by state); pause reasons on days only; answered and
    /// missed in `operator_queues`.
    pub operators: BTreeMap<CellKey, OperatorFigures>,
    /// Per (day, operator, queue).
    pub operator_queues: BTreeMap<(u64, String, String), OperatorQueue>,
}

/// Books a replay's figures as cell deltas.
#[derive(Debug, Clone)]
pub struct CellBook {
    zone: Tz,
    /// Nothing before this is booked (a rebuild from a date).
    from_ms: u64,
    pub cells: Cells,
}

impl CellBook {
    pub fn new(zone: Tz, from_ms: u64) -> CellBook {
        CellBook {
            zone,
            from_ms,
            cells: Cells::default(),
        }
    }

    /// Hands the deltas booked so far over, starting afresh.
    pub fn take(&mut self) -> Cells {
        std::mem::take(&mut self.cells)
    }

    /// Midnight of the day `at_ms` falls on.
    pub fn day_start(&self, at_ms: u64) -> u64 {
        self.day(at_ms).0
    }

    /// Midnight of the day `at_ms` falls on, and of the next.
    fn day(&self, at_ms: u64) -> (u64, u64) {
        let date = crate::values::local_date(at_ms, self.zone);
        let start = |d| {
            crate::values::midnight(d, self.zone)
                .timestamp_millis()
                .max(0) as u64
        };
        (start(date), start(date.succ_opt().unwrap_or(date)))
    }

    fn queue(&mut self, grain: Grain, start: u64, queue: &str) -> &mut QueueFigures {
        self.cells
            .queues
            .entry((grain, start, queue.to_string()))
            .or_default()
    }

    fn operator(&mut self, grain: Grain, start: u64, operator: &str) -> &mut OperatorFigures {
        self.cells
            .operators
            .entry((grain, start, operator.to_string()))
            .or_default()
    }

    fn operator_queue(&mut self, day: u64, operator: &str, queue: &str) -> &mut OperatorQueue {
        self.cells
            .operator_queues
            .entry((day, operator.to_string(), queue.to_string()))
            .or_default()
    }
}

/// The start of the slot `at_ms` falls in.
pub fn slot_of(at_ms: u64) -> u64 {
    at_ms - at_ms % SLOT_MS
}

impl Book for CellBook {
    fn call(
        &mut self,
        entered_ms: u64,
        queue: &str,
        short_abandon_ms: u64,
        figures: impl Fn(&mut QueueFigures, u64),
    ) {
        if entered_ms < self.from_ms {
            return;
        }
        let mut delta = QueueFigures::default();
        figures(&mut delta, short_abandon_ms);
        let (day, _) = self.day(entered_ms);
        for operator in std::mem::take(&mut delta.operators_answering) {
            self.operator_queue(day, &operator, queue).served += 1;
            self.operator_queue(day, &operator, ALL).served += 1;
        }
        let slot = slot_of(entered_ms);
        self.queue(Grain::Slot, slot, queue).add(&delta);
        self.queue(Grain::Slot, slot, ALL).add(&delta);
        self.queue(Grain::Day, day, queue).add(&delta);
    }

    fn count(&mut self, at_ms: u64, operator: &str, queue: Option<&str>, count: Count) {
        if at_ms < self.from_ms {
            return;
        }
        let (day, _) = self.day(at_ms);
        match (queue, count) {
            (Some(q), Count::Answered) => self.operator_queue(day, operator, q).answered += 1,
            (Some(q), Count::Missed) => self.operator_queue(day, operator, q).missed += 1,
            (Some(q), Count::Transferred) => self.operator_queue(day, operator, q).transferred += 1,
            _ => {}
        }
        count.add_to(self.operator(Grain::Day, day, operator));
    }

    fn time(&mut self, operator: &str, from_ms: u64, to_ms: u64, state: &State) {
        let from_ms = from_ms.max(self.from_ms);
        let mut at = from_ms;
        while at < to_ms {
            let slot = slot_of(at);
            let end = (slot + SLOT_MS).min(to_ms);
            state.add_to(self.operator(Grain::Slot, slot, ALL), end - at);
            at = end;
        }
        let mut at = from_ms;
        while at < to_ms {
            let (day, next) = self.day(at);
            let end = next.max(at + 1).min(to_ms);
            state.add_to(self.operator(Grain::Day, day, operator), end - at);
            at = end;
        }
    }
}
