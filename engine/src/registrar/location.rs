//! The location service: which contacts each address-of-record is reachable at.

use crate::transport::{Flow, Transport};
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One registered contact of an address-of-record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    /// The user part of the address-of-record (the extension).
    pub aor: String,
    /// The Contact URI exactly as the device sent it.
    pub contact: String,
    pub q: Option<f32>,
    pub expires_at_ms: u64,
    pub registered_at_ms: u64,
    pub call_id: String,
    pub cseq: u32,
    /// How the device reached us, and so how we reach it back (NAT, WebSocket).
    pub flow: Flow,
    pub user_agent: Option<String>,
}

/// A change to persist.
#[derive(Debug, Clone, PartialEq)]
pub enum LocationChange {
    Upsert(Binding),
    Remove { aor: String, contact: String },
}

/// Where binding changes go (the binary persists them; tests collect them).
pub trait BindingSink: Send + Sync {
    fn changed(&self, change: LocationChange);
}

/// A sink that forgets: for tools and tests that do not persist.
pub struct Forget;

impl BindingSink for Forget {
    fn changed(&self, _: LocationChange) {}
}

/// Whether the saved copy of `old` still serves for `new`. A refresh that only moves the
/// expiry by less than half its lifetime is not written: after a restart the binding then
/// lives at least half as long as granted, and phones refresh well before that. This keeps
/// the database out of the hot path of periodic re-registration.
fn persisted_alike(old: &Binding, new: &Binding) -> bool {
    let lifetime = new.expires_at_ms.saturating_sub(new.registered_at_ms);
    old.contact == new.contact
        && old.flow == new.flow
        && old.q == new.q
        && old.user_agent == new.user_agent
        && new.expires_at_ms.saturating_sub(old.expires_at_ms) < lifetime / 2
}

pub struct Location {
    bindings: DashMap<String, Vec<Binding>>,
    sink: Arc<dyn BindingSink>,
}

impl Location {
    pub fn new(sink: Arc<dyn BindingSink>) -> Self {
        Location {
            bindings: DashMap::new(),
            sink,
        }
    }

    /// Loads bindings saved before a restart. Expired ones are skipped, and so are
    /// WebSocket ones: a browser is reachable only over the socket it registered on, which
    /// died with the last process (they are deleted from the store too).
    pub fn restore(&self, saved: impl IntoIterator<Item = Binding>, now_ms: u64) {
        for b in saved.into_iter().filter(|b| b.expires_at_ms > now_ms) {
            if matches!(b.flow.transport, Transport::Ws | Transport::Wss) {
                self.sink.changed(LocationChange::Remove {
                    aor: b.aor,
                    contact: b.contact,
                });
                continue;
            }
            self.bindings.entry(b.aor.clone()).or_default().push(b);
        }
    }

    /// Live bindings of an AoR, highest q first.
    pub fn lookup(&self, aor: &str, now_ms: u64) -> Vec<Binding> {
        let mut out: Vec<Binding> = self
            .bindings
            .get(aor)
            .map(|v| {
                v.iter()
                    .filter(|b| b.expires_at_ms > now_ms)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| b.q.unwrap_or(1.0).total_cmp(&a.q.unwrap_or(1.0)));
        out
    }

    /// Every live binding (for the API and metrics).
    pub fn all(&self, now_ms: u64) -> Vec<Binding> {
        self.bindings
            .iter()
            .flat_map(|e| {
                e.value()
                    .iter()
                    .filter(|b| b.expires_at_ms > now_ms)
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    pub fn count(&self) -> usize {
        self.bindings.iter().map(|e| e.value().len()).sum()
    }

    /// Applies one REGISTER's contact updates atomically for the AoR. `update` gets the
    /// current live bindings and returns the new list, or an error to abort unchanged.
    pub fn update<E>(
        &self,
        aor: &str,
        now_ms: u64,
        update: impl FnOnce(&[Binding]) -> Result<Vec<Binding>, E>,
    ) -> Result<Vec<Binding>, E> {
        let mut entry = self.bindings.entry(aor.to_string()).or_default();
        entry.retain(|b| b.expires_at_ms > now_ms);
        let new = update(&entry)?;
        for old in entry.iter() {
            if !new.iter().any(|b| b.contact == old.contact) {
                self.sink.changed(LocationChange::Remove {
                    aor: aor.to_string(),
                    contact: old.contact.clone(),
                });
            }
        }
        for b in &new {
            if !entry.iter().any(|old| persisted_alike(old, b)) {
                self.sink.changed(LocationChange::Upsert(b.clone()));
            }
        }
        *entry = new.clone();
        let empty = entry.is_empty();
        drop(entry);
        if empty {
            self.bindings.remove_if(aor, |_, v| v.is_empty());
        }
        Ok(new)
    }

    /// Drops expired bindings; returns how many.
    pub fn sweep(&self, now_ms: u64) -> usize {
        let mut removed = Vec::new();
        self.bindings.retain(|_, v| {
            v.retain(|b| {
                let live = b.expires_at_ms > now_ms;
                if !live {
                    removed.push((b.aor.clone(), b.contact.clone()));
                }
                live
            });
            !v.is_empty()
        });
        let n = removed.len();
        for (aor, contact) in removed {
            self.sink.changed(LocationChange::Remove { aor, contact });
        }
        n
    }

    /// Whether any live binding is reached over this connection.
    pub fn uses_connection(&self, connection: u64) -> bool {
        self.bindings.iter().any(|e| {
            e.value()
                .iter()
                .any(|b| b.flow.connection == Some(connection))
        })
    }

    /// Drops every binding reached over a connection that has closed.
    pub fn connection_closed(&self, connection: u64) {
        let mut removed = Vec::new();
        self.bindings.retain(|_, v| {
            v.retain(|b| {
                let keep = b.flow.connection != Some(connection);
                if !keep {
                    removed.push((b.aor.clone(), b.contact.clone()));
                }
                keep
            });
            !v.is_empty()
        });
        for (aor, contact) in removed {
            self.sink.changed(LocationChange::Remove { aor, contact });
        }
    }
}
