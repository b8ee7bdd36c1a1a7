//! The HTTP error: a status, a stable snake_case `code` clients can branch on, a `detail` a
//! person can act on, and per-field messages for invalid requests. Internal causes are logged,
//! never sent.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::jpp::InvoiceError;
use crate::store::StoreError;

#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    code: &'static str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<BTreeMap<String, Vec<String>>>,
    /// Seconds a client should wait before trying again (`Retry-After`).
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            fields: None,
            retry_after: None,
        }
    }

    /// The same error, naming a field of the request and what is wrong with it.
    pub fn with_field(self, field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut fields = self.fields.unwrap_or_default();
        fields.entry(field.into()).or_default().push(message.into());
        ApiError {
            fields: Some(fields),
            ..self
        }
    }

    /// The same error, telling the client when to try again.
    pub fn retry_after(self, secs: u64) -> Self {
        ApiError {
            retry_after: Some(secs),
            ..self
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "api_key_required",
            "This endpoint needs a merchant API key: send it as `X-Api-Key: <key>` or `Authorization: Bearer <key>`. Create one with `cashier key create`.",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "api_key_invalid",
            "This API key is not valid (unknown or revoked). Check it, or create a new one with `cashier key create`.",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "The server failed to handle this request; it has been logged.",
        )
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.code,
            self.detail
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        match self.retry_after {
            Some(secs) => {
                response.insert_header(("Retry-After", secs.to_string()));
            }
            None if self.status == StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header(("Retry-After", "1"));
            }
            None => {}
        }
        response.json(self)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "The database is unavailable right now; retry shortly.",
                )
            }
            other => {
                tracing::error!(error = %other, "database error");
                Self::internal()
            }
        }
    }
}

impl From<InvoiceError> for ApiError {
    fn from(e: InvoiceError) -> Self {
        match e {
            InvoiceError::Invalid(errors) => {
                let summary: Vec<String> = errors
                    .iter()
                    .take(3)
                    .map(|e| format!("{} {}", e.field, e.message))
                    .collect();
                let more = errors.len().saturating_sub(3);
                let mut detail = format!("The invoice request is invalid: {}", summary.join("; "));
                if more > 0 {
                    detail.push_str(&format!(" (and {more} more, see `fields`)"));
                }
                let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for e in errors {
                    fields.entry(e.field).or_default().push(e.message);
                }
                ApiError {
                    fields: Some(fields),
                    ..Self::bad_request("invalid_invoice", detail)
                }
            }
            InvoiceError::NotFound => Self::not_found("No invoice with this id exists."),
            e @ InvoiceError::NotOpen(_) => Self::new(
                StatusCode::CONFLICT,
                "invoice_not_open",
                format!("Cannot cancel: {e}."),
            ),
            InvoiceError::Storage(cause) => match cause.downcast::<StoreError>() {
                Ok(store) => (*store).into(),
                Err(other) => {
                    tracing::error!(error = %other, "storage failed");
                    Self::internal()
                }
            },
        }
    }
}
