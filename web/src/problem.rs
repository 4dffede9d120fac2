//! RFC 9457 problem details: every API error names its status and, where one is at
//! fault, the field.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use kolokol_crm::StoreError;
use serde::Serialize;
use std::borrow::Cow;

#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Cow<'static, str>>,
    /// How many stored values a field's new type would lose (409 until confirmed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values_lost: Option<u64>,
    /// Seconds to wait before asking again (sent as Retry-After).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            values_lost: None,
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn field(
        status: StatusCode,
        field: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            field: Some(field.into()),
            ..Problem::new(status, "Invalid field", detail)
        }
    }

    pub fn unauthorized() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "log in or send a bearer token",
        )
    }

    /// A failure on our side (I/O), logged, its detail passed on.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            e.to_string(),
        )
    }

    pub fn forbidden() -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "administrator rights required",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&self).unwrap_or_default();
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        if let Some(s) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { field, message } => Problem::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                field,
                format!("{field}: {message}"),
            ),
            StoreError::Conflict { field } => {
                let mut p = Problem::field(
                    StatusCode::CONFLICT,
                    field,
                    format!("{field}: already taken"),
                );
                p.title = "Conflict";
                p
            }
            StoreError::InvalidField { field, message } => Problem::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                field.clone(),
                format!("{field}: {message}"),
            ),
            StoreError::Unavailable(why) => {
                Problem::new(StatusCode::BAD_GATEWAY, "Unavailable", why)
            }
            StoreError::NotConfigured(why) => {
                Problem::new(StatusCode::CONFLICT, "Not configured", why)
            }
            StoreError::Forbidden(why) => Problem::new(StatusCode::FORBIDDEN, "Forbidden", why),
            StoreError::DataLoss { values } => {
                let mut p = Problem::field(
                    StatusCode::CONFLICT,
                    "kind",
                    format!("{values} stored values do not fit the new type and would be lost; repeat with \"confirm_loss\": true"),
                );
                p.title = "Data would be lost";
                p.values_lost = Some(values);
                p
            }
            StoreError::InUse(by) => Problem::new(
                StatusCode::CONFLICT,
                "In use",
                format!("still in use by {by}"),
            ),
            StoreError::TooCostly(budget) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Search too costly",
                format!(
                    "the search took longer than its {} s budget; narrow it with more specific terms or filters",
                    budget.as_secs()
                ),
            ),
            StoreError::NotFound => {
                Problem::new(StatusCode::NOT_FOUND, "Not found", "no such object")
            }
            other => {
                tracing::error!(error = %other, "storage error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error",
                    "storage error",
                )
            }
        }
    }
}
