//! Today's figures, kept as events are stored: the Call-Center and KPI definitions of
//! [`super::contact`], applied event by event to a replay of today that never ends (it
//! rolls over at midnight in `crm.time_zone`). Memory follows the calls in progress and
//! the operators, not the number of events.

use super::contact::{FactReader, Figures, Period, Replay};
use crate::{Store, StoreError};
use kolokol_engine::event::{EventBus, Record};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast::error::RecvError;

#[derive(Default)]
struct Today {
    replay: Option<Replay>,
    /// Call events to facts (it knows the outbound calls in progress).
    reader: FactReader,
}

/// The live figures of today.
pub struct LiveFigures {
    zone: chrono_tz::Tz,
    today: Mutex<Today>,
}

fn today_of(zone: chrono_tz::Tz, at_ms: u64) -> Period {
    let day = crate::values::local_date(at_ms, zone);
    Period::new(day, day, zone, u64::MAX)
}

impl LiveFigures {
    pub fn new(zone: chrono_tz::Tz) -> LiveFigures {
        LiveFigures {
            zone,
            today: Mutex::new(Today::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Today> {
        self.today.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replays today from the log, up to `now_ms` (at start, or after missing events).
    pub async fn rebuild(&self, store: &Store, now_ms: u64) -> Result<(), StoreError> {
        let period = today_of(self.zone, now_ms);
        let facts = store.facts_between(&period, now_ms).await?;
        let mut replay = Replay::new(period, None);
        let mut reader = FactReader::default();
        for (at, fact) in facts {
            reader.remember(&fact);
            replay.feed(at, &fact);
        }
        *self.lock() = Today {
            replay: Some(replay),
            reader,
        };
        Ok(())
    }

    /// One stored event.
    pub fn feed(&self, record: &Record) {
        let mut today = self.lock();
        let Some((at, fact)) = today.reader.read(record) else {
            return;
        };
        let zone = self.zone;
        let Some(replay) = today.replay.take() else {
            return;
        };
        // Past midnight: the state goes on into a new day.
        let mut replay = if replay.period().day_of(at).is_none() && at >= replay.period().from_ms()
        {
            replay.roll_over(today_of(zone, at))
        } else {
            replay
        };
        replay.feed(at, &fact);
        today.replay = Some(replay);
    }

    /// Today's figures up to `now_ms`; none before the first rebuild.
    pub fn snapshot(&self, now_ms: u64) -> Option<Figures> {
        let today = self.lock();
        let replay = today.replay.as_ref()?;
        if replay.period().day_of(now_ms).is_none() && now_ms >= replay.period().from_ms() {
            // Nothing happened yet today: yesterday's state, carried into today.
            return Some(
                replay
                    .clone()
                    .roll_over(today_of(self.zone, now_ms))
                    .snapshot(now_ms),
            );
        }
        Some(replay.snapshot(now_ms))
    }
}

/// Keeps `live` current from the bus: a rebuild from the log first, and again whenever
/// the bus says events were missed.
pub async fn run(store: Store, bus: Arc<dyn EventBus>, live: Arc<LiveFigures>) {
    let mut events = bus.subscribe();
    let now = || kolokol_engine::clock::now_ms();
    let mut since = now();
    if let Err(e) = live.rebuild(&store, since).await {
        tracing::error!(error = %e, "live figures: reading today's log failed");
    }
    loop {
        match events.recv().await {
            Ok(record) => {
                let at = record.at_ms();
                // Already in the rebuild.
                if at >= since {
                    live.feed(&record);
                }
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "live figures missed events; reading today's log again"
                );
                since = now();
                if let Err(e) = live.rebuild(&store, since).await {
                    tracing::error!(error = %e, "live figures: reading today's log failed");
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}
