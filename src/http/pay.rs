//! The watchtower pay endpoints: `verify/` and `pay/` on an invoice. The logic is the pay flow
//! in `jpp::pay`; this file only speaks the watchtower dialect.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use serde_json::{json, Value};

use super::body::read_json;
use super::{ApiError, AppState};
use crate::jpp::pay::{PayError, Submission};
use crate::jpp::InvoiceId;
use crate::units::now_ms;

/// Pay bodies carry one transaction of at most 100 kB as hex, plus a little JSON.
pub(super) const MAX_PAY_BODY: usize = 256 * 1024;

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

fn error_response(e: &PayError, body: impl FnOnce(&'static str, String) -> Value) -> HttpResponse {
    if let PayError::NotFound = e {
        // The same 404 as every invoice path of the watchtower dialect.
        return ResponseError::error_response(&ApiError::not_found(
            "No invoice with this id exists.",
        ));
    }
    refusal(e, |mut response, _, code, message| {
        response.json(body(code, message))
    })
}

/// A refused payment in any dialect: the status (and `Retry-After`) are decided here once;
/// `render` writes the body from the status, the stable code and the message a person reads.
pub(super) fn refusal(
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

fn invoice_id(raw: &str) -> Result<InvoiceId, ApiError> {
    raw.parse()
        .map_err(|()| ApiError::not_found("No invoice with this id exists."))
}

/// The transaction hex, required.
fn raw_tx(body: &Value) -> Result<Vec<u8>, PayError> {
    let hex_tx = body["raw_tx_hex"].as_str().ok_or(PayError::NotHex)?;
    Submission::from_hex(hex_tx)
}

/// `POST /jpp/invoices/{id}/verify/` `{raw_tx_hex}` → `{valid, error?}`; writes nothing.
pub async fn verify(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = invoice_id(&id)?;
    let body = read_json(&req, payload, MAX_PAY_BODY).await?;
    let outcome = match raw_tx(&body) {
        Ok(raw) => state.payments.verify(id, &raw).await,
        Err(e) => Err(e),
    };
    Ok(match outcome {
        Ok(()) => HttpResponse::Ok().json(json!({"valid": true})),
        Err(e) => error_response(
            &e,
            |code, msg| json!({"valid": false, "error": msg, "code": code}),
        ),
    })
}

/// `POST /jpp/invoices/{id}/pay/` `{raw_tx_hex, memo?, refund_to?}` → the paid invoice.
pub async fn pay(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = invoice_id(&id)?;
    let body = read_json(&req, payload, MAX_PAY_BODY).await?;
    let submission = raw_tx(&body).and_then(|raw_tx| {
        let memo = match &body["memo"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            _ => return Err(PayError::Invalid("memo must be a string".into())),
        };
        Ok(Submission {
            raw_tx,
            memo,
            refund_to: body.get("refund_to").cloned(),
        })
    });
    let outcome = match submission {
        Ok(s) => state.payments.pay(id, s).await,
        Err(e) => Err(e),
    };
    Ok(match outcome {
        // The wallet's answer: never the merchant's private `merchant_data`.
        Ok(invoice) => HttpResponse::Ok().json(state.invoices.view(&invoice, now_ms()).public()),
        Err(e) => error_response(
            &e,
            |code, msg| json!({"code": code, "detail": msg.clone(), "non_field_errors": [msg]}),
        ),
    })
}
