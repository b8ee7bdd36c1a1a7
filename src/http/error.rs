//! Errors as HTTP answers, one mapping per dialect family, side by side:
//!
//! - the merchant API: [`ApiError`] (a status, a stable snake_case `code` clients can branch
//!   on, a `detail` a person can act on, per-field messages), from `InvoiceError` and
//!   `StoreError`;
//! - the wallets' payment protocols (watchtower, BitPay JSON v1/v2, BIP70): [`jpp_refusal`]
//!   decides status, code and message for a `PayError`, and each dialect writes the body;
//! - the LNbits API: [`lnbits_refusal`] for an `LnError`, in LNbits' shape and statuses.
//!
//! Internal causes are logged, never sent.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use serde::Serialize;
use serde_json::json;

use crate::jpp::pay::PayError;
use crate::jpp::InvoiceError;
use crate::lightning::LnError;
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
            e @ InvoiceError::NoXpub => {
                Self::bad_request("invalid_invoice", format!("Cannot create: {e}."))
                    .with_field("amount", "this store has no xpub")
            }
            e @ InvoiceError::GapLimit { .. } => Self::new(
                StatusCode::CONFLICT,
                "gap_limit_reached",
                format!("Cannot create: {e}."),
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

// The wallets' payment protocols.

fn status_and_code(e: &PayError) -> (StatusCode, &'static str) {
    match e {
        PayError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        PayError::NotHex | PayError::BadTx(_) => (StatusCode::BAD_REQUEST, "invalid_transaction"),
        PayError::NotAccepting(_) => (StatusCode::BAD_REQUEST, "invoice_not_accepting"),
        PayError::UsedElsewhere => (StatusCode::BAD_REQUEST, "transaction_used"),
        PayError::Replay => (StatusCode::BAD_REQUEST, "transaction_replayed"),
        PayError::MissingOutput { .. } => (StatusCode::BAD_REQUEST, "output_missing"),
        PayError::WrongAmount { .. } => (StatusCode::BAD_REQUEST, "wrong_amount"),
        PayError::WrongTokens { .. } => (StatusCode::BAD_REQUEST, "wrong_tokens"),
        PayError::FeeTooLow { .. } => (StatusCode::BAD_REQUEST, "fee_too_low"),
        PayError::FeeUnverifiable(_) => (StatusCode::BAD_REQUEST, "fee_unverifiable"),
        PayError::Rejected(_) => (StatusCode::BAD_REQUEST, "rejected_by_network"),
        PayError::Invalid(_) | PayError::Unparsable(_) => {
            (StatusCode::BAD_REQUEST, "invalid_request")
        }
        PayError::NotOneTransaction => (StatusCode::BAD_REQUEST, "one_transaction"),
        PayError::UnsupportedType => (StatusCode::BAD_REQUEST, "unsupported_content_type"),
        PayError::WrongChain(_) => (StatusCode::BAD_REQUEST, "wrong_chain"),
        PayError::InputsMissing => (StatusCode::UNPROCESSABLE_ENTITY, "inputs_missing"),
        // 422 as for missing inputs: the coins cannot pay, and BitPay's client reads the
        // message of a 400 or 422 only.
        PayError::DoubleSpend => (StatusCode::UNPROCESSABLE_ENTITY, "double_spend"),
        PayError::NodeUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "node_unavailable"),
        PayError::Pending => (StatusCode::SERVICE_UNAVAILABLE, "payment_pending"),
        PayError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
    }
}

/// The message a person reads: the fixed phrase, and for a refused invoice why.
fn message(e: &PayError) -> String {
    match e {
        PayError::NotAccepting(status) => format!("{e} (the invoice is {status})"),
        PayError::NodeUnavailable(cause) => {
            tracing::warn!(error = %cause, "pay: node unavailable");
            e.to_string()
        }
        _ => e.to_string(),
    }
}

/// A refused payment in any dialect: the status (and `Retry-After`) are decided here once;
/// `render` writes the body from the status, the stable code and the message a person reads.
pub(super) fn jpp_refusal(
    e: &PayError,
    render: impl FnOnce(HttpResponseBuilder, StatusCode, &'static str, String) -> HttpResponse,
) -> HttpResponse {
    if let PayError::Storage(store) = e {
        // Internal: logged with its cause, answered without it.
        tracing::error!(error = %store, "pay: storage failed");
        return ResponseError::error_response(&ApiError::internal());
    }
    let (status, code) = status_and_code(e);
    let mut response = HttpResponse::build(status);
    if e.is_retryable() {
        response.insert_header(("Retry-After", "2"));
    }
    render(response, status, code, message(e))
}

// The LNbits API.

fn code(e: &LnError) -> (StatusCode, &'static str) {
    // LNbits answers failed payments with 520; its clients look for it.
    let failed = StatusCode::from_u16(520).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match e {
        LnError::WalletNotFound => (StatusCode::NOT_FOUND, "wallet_not_found"),
        LnError::PaymentNotFound => (StatusCode::NOT_FOUND, "payment_not_found"),
        LnError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        LnError::AdminKeyRequired => (StatusCode::FORBIDDEN, "admin_key_required"),
        LnError::InsufficientBalance => (failed, "insufficient_balance"),
        LnError::AlreadyPaid | LnError::PaidBefore => (failed, "already_paid"),
        // LNbits refuses such an invoice as a failed payment ("Bolt11 changed."), 520.
        LnError::NotIssued => (failed, "invoice_mismatch"),
        LnError::Expired => (StatusCode::BAD_REQUEST, "invoice_expired"),
        LnError::PaymentFailed(_) => (failed, "payment_failed"),
        LnError::Funding(_) => (failed, "funding_source_failed"),
        LnError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
    }
}

/// An error as LNbits writes it (`detail`), with our stable `code`, and `status` for the
/// payment failures LNbits' clients classify by it.
pub fn lnbits_refusal(e: LnError) -> HttpResponse {
    let (status, code) = code(&e);
    let detail = match &e {
        LnError::Storage(cause) => {
            tracing::error!(error = %cause, "lightning: storage failed");
            "Internal error; try again shortly.".to_owned()
        }
        other => other.to_string(),
    };
    let mut body = json!({"detail": detail, "code": code});
    if status.as_u16() == 520 {
        body["status"] = json!("failed");
    }
    HttpResponse::build(status).json(body)
}
