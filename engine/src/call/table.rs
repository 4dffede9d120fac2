//! The live calls with a timer index, so the clock tick visits only calls with a timer due
//! instead of every call (at 1,000 calls/s, ~30,000 calls linger for retransmissions, and
//! scanning them every 20 ms was the largest cost of call control).
//!
//! Every mutable access marks the call as touched; before timers are read, touched calls
//! get an index entry for their next deadline. Entries are never updated in place: a stale
//! one is recognised when it comes due (the call's real deadline is later, or the call is
//! gone) and is re-filed or dropped.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::Call;

#[derive(Default)]
pub(super) struct CallTable {
    calls: HashMap<u64, Call>,
    touched: Vec<u64>,
    timers: BinaryHeap<Reverse<(u64, u64)>>,
}

impl CallTable {
    pub(super) fn get(&self, key: &u64) -> Option<&Call> {
        self.calls.get(key)
    }

    pub(super) fn get_mut(&mut self, key: &u64) -> Option<&mut Call> {
        let call = self.calls.get_mut(key)?;
        self.touched.push(*key);
        Some(call)
    }

    pub(super) fn insert(&mut self, key: u64, call: Call) {
        self.touched.push(key);
        self.calls.insert(key, call);
    }

    pub(super) fn remove(&mut self, key: &u64) -> Option<Call> {
        self.calls.remove(key)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&u64, &Call)> {
        self.calls.iter()
    }

    /// Every call, each marked as touched (connection loss: rare, and any call may change).
    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut Call> {
        self.touched.extend(self.calls.keys().copied());
        self.calls.values_mut()
    }

    /// The first call matching, marked as touched.
    pub(super) fn find_mut(&mut self, matches: impl Fn(&Call) -> bool) -> Option<&mut Call> {
        let key = self
            .calls
            .iter()
            .find_map(|(k, c)| matches(c).then_some(*k))?;
        self.get_mut(&key)
    }

    /// Keys of the calls with a timer due at `now`, each once, in deadline order.
    pub(super) fn due(&mut self, now: u64) -> Vec<u64> {
        self.touched.sort_unstable();
        self.touched.dedup();
        for key in self.touched.drain(..) {
            let deadline = self.calls.get(&key).map_or(u64::MAX, Call::next_deadline);
            if deadline != u64::MAX {
                self.timers.push(Reverse((deadline, key)));
            }
        }
        let mut due = Vec::new();
        while let Some(&Reverse((at, key))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(call) = self.calls.get(&key) else {
                continue;
            };
            let deadline = call.next_deadline();
            if deadline <= now {
                due.push(key);
            } else if deadline != u64::MAX {
                // Stale: the call changed since. Re-filing keeps the index right even if a
                // change slipped past `touched`.
                self.timers.push(Reverse((deadline, key)));
            }
        }
        // A call filed twice with the same due deadline is handled once.
        let mut seen = std::collections::HashSet::with_capacity(due.len());
        due.retain(|k| seen.insert(*k));
        due
    }
}

impl std::ops::Index<&u64> for CallTable {
    type Output = Call;

    fn index(&self, key: &u64) -> &Call {
        &self.calls[key]
    }
}

#[cfg(test)]
impl CallTable {
    pub(super) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Call> {
        self.calls.values()
    }
}
