//! The facts of stored records, as they arrive: queue events as they are, and of call
//! events the steps of operators' outbound calls and the restarts that cut calls off.

use super::Fact;
use kolokol_engine::event::{CallDirection, EndCause, EventKind, Record};
use std::collections::HashMap;

/// Turns records into facts; remembers the outbound calls in progress (call → operator).
#[derive(Debug, Clone, Default)]
pub struct FactReader {
    pub outbound: HashMap<String, String>,
}

impl FactReader {
    /// Follows a fact read from the log (outbound calls placed and ended).
    pub fn remember(&mut self, fact: &Fact) {
        match fact {
            Fact::OutboundPlaced { operator, call } => {
                self.outbound.insert(call.clone(), operator.clone());
            }
            Fact::OutboundEnded { call, .. } | Fact::Interrupted { call } => {
                self.outbound.remove(call);
            }
            _ => {}
        }
    }

    /// Whether `record` may be a fact: what it is may depend on the records before it
    /// (an outbound call's answer is one only while the call is known to be open), so
    /// one that comes late has to be replayed in its place, not read now.
    pub fn may_count(record: &Record) -> bool {
        match record {
            Record::Queue(_) => true,
            Record::Call(e) => matches!(
                e.kind,
                EventKind::Offered {
                    direction: CallDirection::Outbound,
                    ..
                } | EventKind::Answered { .. }
                    | EventKind::Ended { .. }
            ),
        }
    }

    /// The fact of `record` and its instant, if the reports count it.
    pub fn read(&mut self, record: &Record) -> Option<(u64, Fact)> {
        let e = match record {
            Record::Queue(e) => return Some((e.at_ms, Fact::Queue(e.kind.clone()))),
            Record::Call(e) => e,
        };
        let call = e.call_id.clone();
        let fact = match &e.kind {
            EventKind::Offered {
                direction: CallDirection::Outbound,
                user: Some(operator),
                ..
            } => {
                self.outbound.insert(call.clone(), operator.clone());
                Fact::OutboundPlaced {
                    operator: operator.clone(),
                    call,
                }
            }
            EventKind::Answered { .. } => Fact::OutboundConnected {
                operator: self.outbound.get(&call)?.clone(),
                call,
            },
            EventKind::Ended {
                cause: EndCause::Interrupted,
                ..
            } => {
                self.outbound.remove(&call);
                Fact::Interrupted { call }
            }
            EventKind::Ended { .. } => Fact::OutboundEnded {
                operator: self.outbound.remove(&call)?,
                call,
            },
            _ => return None,
        };
        Some((e.at_ms, fact))
    }
}

/// Where a fact goes among those of the same instant when the log is replayed: queue
/// events (in the order stored) first, then outbound calls' steps, then restarts.
pub fn rank(fact: &Fact) -> u8 {
    match fact {
        Fact::Queue(_) => 0,
        Fact::OutboundPlaced { .. }
        | Fact::OutboundConnected { .. }
        | Fact::OutboundEnded { .. } => 1,
        Fact::Interrupted { .. } => 2,
    }
}
