//! Registrations survive a restart: location changes are written behind, in batches.

use crate::{on_db, Store};
use kolokol_engine::registrar::{Binding, BindingSink, LocationChange};
use tokio::sync::mpsc;

/// Hands location changes to the writer task without blocking the SIP path.
pub struct BindingWriter(pub mpsc::UnboundedSender<LocationChange>);

impl BindingSink for BindingWriter {
    fn changed(&self, change: LocationChange) {
        let _ = self.0.send(change);
    }
}

/// Writes changes in one transaction per batch until the channel closes.
pub async fn write_behind(store: Store, mut rx: mpsc::UnboundedReceiver<LocationChange>) {
    let mut batch = Vec::with_capacity(1024);
    while rx.recv_many(&mut batch, 4096).await > 0 {
        if let Err(e) = write_batch(&store, &batch).await {
            tracing::error!(error = %e, "saving registrations failed");
        }
        batch.clear();
    }
}

async fn write_batch(store: &Store, batch: &[LocationChange]) -> Result<(), sqlx::Error> {
    on_db!(store, pool => {
        let mut tx = pool.begin().await?;
        for change in batch {
            match change {
                LocationChange::Upsert(b) => {
                    let json = serde_json_string(b);
                    sqlx::query("INSERT INTO bindings (aor, contact, expires_at_ms, binding) VALUES ($1, $2, $3, $4) ON CONFLICT(aor, contact) DO UPDATE SET expires_at_ms = excluded.expires_at_ms, binding = excluded.binding")
                        .bind(&b.aor)
                        .bind(&b.contact)
                        .bind(b.expires_at_ms as i64)
                        .bind(json)
                        .execute(&mut *tx)
                        .await?;
                }
                LocationChange::Remove { aor, contact } => {
                    sqlx::query("DELETE FROM bindings WHERE aor = $1 AND contact = $2")
                        .bind(aor)
                        .bind(contact)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await
    })
}

fn serde_json_string(b: &Binding) -> String {
    serde_json::to_string(b).unwrap_or_default()
}

/// Bindings saved before the last stop that have not expired.
pub async fn load(store: &Store, now_ms: u64) -> Result<Vec<Binding>, sqlx::Error> {
    let rows: Vec<String> = on_db!(store, pool => {
        sqlx::query_scalar("SELECT binding FROM bindings WHERE expires_at_ms > $1")
            .bind(now_ms as i64)
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .iter()
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect())
}
