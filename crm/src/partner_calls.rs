//! Calls in the CRM: a consumer of the event log links each inbound and outbound call to
//! the partner whose phone field holds the outside number (E.164), creating a card with
//! that phone for an unknown number as soon as the call is offered, so the operator can
//! complete it while talking. A call is claimed by inserting its `partner_calls` row in the
//! same transaction that finds or creates the card: replaying the log (a restart, a lagging
//! subscriber catching up) finds the row and changes nothing.

use crate::access::Viewer;
use crate::form::{Field, FieldKind, Form};
use crate::values::normalise_phone;
use crate::{on_db, Store, StoreError};
use kolokol_engine::event::{EventBus, EventKind, Record};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Who history says created a card for a call.
const TELEPHONY: &str = "Телефония";

/// Links calls as they are offered; at start and after falling behind, every call not
/// linked yet.
pub async fn run(store: Store, bus: Arc<dyn EventBus>) {
    let mut rx = bus.subscribe();
    let mut catch_up = true;
    loop {
        if catch_up {
            match store.link_unlinked_calls().await {
                Ok(n) if n > 0 => tracing::info!(calls = n, "linked calls to partners"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "linking calls to partners failed"),
            }
            catch_up = false;
        }
        match rx.recv().await {
            Ok(Record::Call(event)) if matches!(event.kind, EventKind::Offered { .. }) => {
                if let Err(e) = store.link_call(&event.call_id).await {
                    tracing::warn!(error = %e, call = %event.call_id, "linking a call to a partner failed; retrying with the next event");
                    catch_up = true;
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => catch_up = true,
            Err(RecvError::Closed) => break,
        }
    }
}

/// A partner's call, as the card's "Call history" tab shows it.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct PartnerCall {
    pub id: String,
    pub direction: String,
    /// The partner's number (absent unless the viewer sees every phone field or one they
    /// see holds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Who answered (inbound) or placed (outbound) it.
    pub operator: Option<String>,
    pub started_ms: i64,
    pub answered: bool,
    pub talk_ms: i64,
    pub end_cause: Option<String>,
    /// Where the recording is played from.
    pub recording: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct PartnerCalls {
    /// Calls made to the partner.
    pub made: i64,
    /// Calls from the partner nobody answered.
    pub missed: i64,
    pub calls: Vec<PartnerCall>,
}

fn phone_fields(form: &Form) -> Vec<&Field> {
    form.fields
        .iter()
        .filter(|f| f.spec.kind == FieldKind::Phone)
        .collect()
}

impl Store {
    /// Links one call (see the module); returns its partner, `None` for internal calls,
    /// numbers that are not phone numbers, or a call linked before.
    pub async fn link_call(&self, call_id: &str) -> Result<Option<i64>, StoreError> {
        let form = self.form().await?;
        let phones = phone_fields(&form);
        let lookup = phones
            .iter()
            .map(|f| format!("{} = $1", f.column()))
            .collect::<Vec<_>>()
            .join(" OR ");
        let country = &self.country;
        let postgres = self.is_postgres();
        on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            // The claim is the transaction's first statement, so it takes SQLite's write
            // lock (waiting out the journal writer) before reading anything: a read first
            // would fail at once (SQLITE_BUSY_SNAPSHOT) when the journal wrote meanwhile.
            let claimed = sqlx::query("INSERT INTO partner_calls (call_id) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(call_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if claimed == 0 {
                return Ok(None);
            }
            let call: Option<(String, String, String)> = sqlx::query_as("SELECT direction, from_number, to_number FROM calls WHERE id = $1")
                .bind(call_id)
                .fetch_optional(&mut *tx)
                .await?;
            // Not a call (yet) or an internal one: the claim is rolled back.
            let Some((direction, from, to)) = call else { return Ok(None) };
            let outside = match direction.as_str() {
                "inbound" => from,
                "outbound" => to,
                _ => return Ok(None),
            };
            let number = normalise_phone(&outside, country);
            sqlx::query("UPDATE partner_calls SET number = $1 WHERE call_id = $2")
                .bind(&number)
                .bind(call_id)
                .execute(&mut *tx)
                .await?;
            let mut partner = None;
            if let (Some(number), Some(first)) = (&number, phones.first()) {
                partner = sqlx::query_scalar(&format!("SELECT id FROM partners WHERE {lookup} ORDER BY id LIMIT 1"))
                    .bind(number)
                    .fetch_optional(&mut *tx)
                    .await?;
                let created = partner.is_none();
                if created {
                    let now = chrono::Utc::now().to_rfc3339();
                    let id: i64 = sqlx::query_scalar(&format!("INSERT INTO partners (created_at, updated_at, {}) VALUES ($1, $1, $2) RETURNING id", first.column()))
                        .bind(&now)
                        .bind(number)
                        .fetch_one(&mut *tx)
                        .await?;
                    for (field, action, value) in [(None, "created", None), (Some(first.id), "changed", Some(number))] {
                        sqlx::query("INSERT INTO partner_history (partner_id, at, user_id, user_name, field_id, action, new_value) VALUES ($1, $2, NULL, $3, $4, $5, $6)")
                            .bind(id)
                            .bind(&now)
                            .bind(TELEPHONY)
                            .bind(field)
                            .bind(action)
                            .bind(value)
                            .execute(&mut *tx)
                            .await?;
                    }
                    if !postgres && crate::search::indexed(first) {
                        for (sql, args) in crate::search::reindex(id, &[(first.id, Some(number.clone()))]) {
                            crate::bind_args!(sqlx::query(sql), &args).execute(&mut *tx).await?;
                        }
                    }
                    partner = Some(id);
                }
                sqlx::query("UPDATE partner_calls SET partner_id = $1, created = $2 WHERE call_id = $3")
                    .bind(partner)
                    .bind(created)
                    .bind(call_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(partner)
        })
    }

    /// The card a call belongs to. The call is linked first if the consumer has not done
    /// it yet, so an operator asking while the call rings gets the card, found or new.
    pub async fn call_partner(&self, call_id: &str) -> Result<i64, StoreError> {
        self.link_call(call_id).await?;
        let linked: Option<Option<i64>> = on_db!(self, pool => {
            sqlx::query_scalar("SELECT partner_id FROM partner_calls WHERE call_id = $1")
                .bind(call_id)
                .fetch_optional(pool)
                .await?
        });
        linked.flatten().ok_or(StoreError::NotFound)
    }

    /// Links every inbound and outbound call not linked yet; returns how many it linked.
    pub async fn link_unlinked_calls(&self) -> Result<usize, StoreError> {
        let ids: Vec<String> = on_db!(self, pool => {
            sqlx::query_scalar("SELECT id FROM calls c WHERE direction <> 'internal' AND NOT EXISTS (SELECT 1 FROM partner_calls p WHERE p.call_id = c.id) ORDER BY started_ms")
                .fetch_all(pool)
                .await?
        });
        let mut linked = 0;
        for id in &ids {
            if self.link_call(id).await?.is_some() {
                linked += 1;
            }
        }
        Ok(linked)
    }

    /// A partner's calls, newest first, with the made / missed counts.
    pub async fn partner_calls(
        &self,
        viewer: &Viewer,
        form: &Form,
        partner: i64,
    ) -> Result<PartnerCalls, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            direction: String,
            number: Option<String>,
            user_login: Option<String>,
            answered_by: Option<String>,
            started_ms: i64,
            answered_ms: Option<i64>,
            ended_ms: Option<i64>,
            end_cause: Option<String>,
            recording: Option<String>,
        }
        viewer.may_see_cards(form)?;
        self.partner_exists(partner).await?;
        let rows: Vec<Row> = on_db!(self, pool => {
            sqlx::query_as("SELECT c.id, c.direction, p.number, c.user_login, c.answered_by, c.started_ms, c.answered_ms, c.ended_ms, c.end_cause, c.recording \
                            FROM partner_calls p JOIN calls c ON c.id = p.call_id WHERE p.partner_id = $1 ORDER BY c.started_ms DESC")
                .bind(partner)
                .fetch_all(pool)
                .await?
        });
        // The outside number is the card's phone: shown to whoever sees every phone field,
        // else only where a phone field the viewer sees holds it now (a number in a field
        // hidden from them stays hidden here too).
        let phones = phone_fields(form);
        let seen: Vec<&Field> = phones.iter().copied().filter(|f| viewer.sees(f)).collect();
        let sees_every_phone =
            viewer.user.admin || (!phones.is_empty() && seen.len() == phones.len());
        let held: Vec<String> = match self.stored_values(partner, &seen).await? {
            Some((_, _, values)) => values.into_iter().flatten().collect(),
            None => Vec::new(),
        };
        let shown = |n: &String| sees_every_phone || held.contains(n);
        let calls: Vec<PartnerCall> = rows
            .into_iter()
            .map(|r| PartnerCall {
                operator: if r.direction == "inbound" {
                    r.answered_by
                } else {
                    r.user_login
                },
                number: r.number.filter(shown),
                answered: r.answered_ms.is_some(),
                talk_ms: match (r.answered_ms, r.ended_ms) {
                    (Some(a), Some(e)) => (e - a).max(0),
                    _ => 0,
                },
                recording: r.recording.map(|_| format!("/api/v1/recordings/{}", r.id)),
                id: r.id,
                direction: r.direction,
                started_ms: r.started_ms,
                end_cause: r.end_cause,
            })
            .collect();
        Ok(PartnerCalls {
            made: calls.iter().filter(|c| c.direction == "outbound").count() as i64,
            missed: calls
                .iter()
                .filter(|c| c.direction == "inbound" && !c.answered)
                .count() as i64,
            calls,
        })
    }
}
