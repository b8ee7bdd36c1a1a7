//! The watchtower pay endpoints: `verify/` and `pay/` on an invoice. The logic is the pay flow
//! in `service::Payments`; this file only speaks the watchtower dialect.

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value};

use super::body::read_json;
use super::error::jpp_refusal;
use super::{ApiError, AppState};
use crate::jpp::pay::{PayError, Submission};
use crate::jpp::InvoiceId;
use crate::units::now_ms;

/// Pay bodies carry one transaction of at most 100 kB as hex, plus a little JSON.
pub(super) const MAX_PAY_BODY: usize = 256 * 1024;

fn error_response(e: &PayError, body: impl FnOnce(&'static str, String) -> Value) -> HttpResponse {
    if let PayError::NotFound = e {
        // The same 404 as every invoice path of the watchtower dialect.
        return ResponseError::error_response(&ApiError::not_found(
            "No invoice with this id exists.",
        ));
    }
    jpp_refusal(e, |mut response, _, code, message| {
        response.json(body(code, message))
    })
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
