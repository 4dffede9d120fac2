//! Calls as the log summed them up (`calls` rows) and their raw events.

use crate::{on_db, Store, StoreError, User};
use serde::Serialize;

/// One call's summary row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, schemars::JsonSchema)]
pub struct CallRow {
    pub id: String,
    pub direction: String,
    #[sqlx(rename = "from_number")]
    pub from: String,
    #[sqlx(rename = "to_number")]
    pub to: String,
    #[sqlx(rename = "user_login")]
    pub user: Option<String>,
    pub number: Option<String>,
    pub trunk: Option<String>,
    pub started_ms: i64,
    pub answered_ms: Option<i64>,
    pub answered_by: Option<String>,
    pub ended_ms: Option<i64>,
    pub end_cause: Option<String>,
    pub end_status: Option<i64>,
    pub recording: Option<String>,
}

pub(crate) const CALL_COLUMNS: &str = "id, direction, from_number, to_number, user_login, number, trunk, started_ms, answered_ms, answered_by, ended_ms, end_cause, end_status, recording";

impl Store {
    /// Recent calls, newest first: all of them for an administrator, `me`'s own otherwise.
    pub async fn recent_calls(&self, me: &User, limit: i64) -> Result<Vec<CallRow>, StoreError> {
        Ok(on_db!(self, pool => {
            sqlx::query_as::<_, CallRow>(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE $1 OR user_login = $2 OR answered_by = $2 ORDER BY started_ms DESC LIMIT $3"))
                .bind(me.admin)
                .bind(&me.login)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Every event of one call as stored (JSON), in order.
    pub async fn call_events(&self, call_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(on_db!(self, pool => {
            sqlx::query_scalar("SELECT data FROM call_events WHERE call_id = $1 ORDER BY seq")
                .bind(call_id)
                .fetch_all(pool)
                .await?
        }))
    }
}
