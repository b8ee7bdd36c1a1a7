//! The payment URL: one invoice, every wallet's dialect (`spec/jpp.md` §3). GET is negotiated
//! by `Accept` (research §7.2), POST dispatched by `Content-Type` (§7.3). Each dialect is a thin
//! adapter: every check and every payment goes through `jpp::pay`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::auth::{presented_merchant, require};
use super::body::{media_type, read_limited};
use super::pay::{refusal, MAX_PAY_BODY};
use super::{ApiError, AppState};
use crate::auth::Scope;
use crate::jpp::pay::{PayError, Submission};
use crate::jpp::{bip70, bitpay, checkout, now_ms, Invoice, InvoiceError, InvoiceId};
use crate::jpp::{InvoiceStatus, InvoiceView};

const BIP70_REQUEST: &str = "application/bitcoincash-paymentrequest";
const BIP70_PAYMENT: &str = "application/bitcoincash-payment";
const BIP70_ACK: &str = "application/bitcoincash-paymentack";

/// What a GET is answered with, by the first rule its `Accept` matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offer {
    Bip70,
    Options,
    RequestV1,
    Json,
    Html,
}

/// Whose words a refusal is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// `{"msg", "message"}`: BitPay's clients read one or the other.
    BitPay,
    /// Plain text: Electron Cash shows it as "Bad Request: <text>".
    Bip70,
}

/// The media types in `Accept`, lower-cased, without parameters or q-values.
fn accepted(req: &HttpRequest) -> Vec<String> {
    req.headers()
        .get_all(actix_web::http::header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

fn offer(req: &HttpRequest) -> Option<Offer> {
    let types = accepted(req);
    let has = |t: &str| types.iter().any(|a| a == t);
    if has(BIP70_REQUEST) || has("application/bitcoin-paymentrequest") {
        Some(Offer::Bip70)
    } else if has("application/payment-options") {
        Some(Offer::Options)
    } else if has("application/payment-request") {
        Some(Offer::RequestV1)
    } else if has("application/json") {
        Some(Offer::Json)
    } else if has("text/html") {
        Some(Offer::Html)
    } else if types.is_empty() || has("*/*") || has("application/*") {
        Some(Offer::Json)
    } else {
        None
    }
}

fn refuse(dialect: Dialect, e: &PayError) -> HttpResponse {
    refusal(e, |mut response, code, message| match dialect {
        Dialect::BitPay => response.json(json!({"msg": message, "message": message, "code": code})),
        Dialect::Bip70 => response
            .content_type("text/plain; charset=utf-8")
            .body(message),
    })
}

/// A JSON answer of the BitPay dialects, signed when a signing key is configured: the
/// signature covers these exact bytes. Always labelled `application/json`, whatever the
/// dialect calls the message: BitPay's client under Node (superagent) only reads a body it
/// recognises as JSON, and no client checks these types.
fn signed(state: &AppState, value: &Value) -> HttpResponse {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = HttpResponse::Ok();
    response.content_type("application/json");
    if let Some(signer) = &state.signer {
        for header in signer.headers(&body) {
            response.insert_header(header);
        }
    }
    response.body(body)
}

async fn invoice(state: &AppState, id: &str) -> Result<Invoice, PayError> {
    let id: InvoiceId = id.parse().map_err(|()| PayError::NotFound)?;
    state.invoices.get(id).await.map_err(|e| match e {
        InvoiceError::Store(e) => PayError::Store(e),
        _ => PayError::NotFound,
    })
}

/// Expired and cancelled invoices are refused where BitPay refuses them; a paid one is still
/// shown (wallets show "already paid" from it).
fn still_offered(view: &InvoiceView<'_>) -> Result<(), PayError> {
    match InvoiceStatus::parse(view.status) {
        Some(s @ (InvoiceStatus::Expired | InvoiceStatus::Cancelled)) => {
            Err(PayError::NotAccepting(s))
        }
        _ => Ok(()),
    }
}

/// The checkout page, with headers that keep it out of other sites' frames (unless the
/// operator allows an embedding origin), its type unsniffed and its URL out of referrers.
fn checkout_page(state: &AppState, view: &InvoiceView<'_>) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            format!(
                "{}; frame-ancestors {}",
                checkout::csp(),
                state.frame_ancestors
            ),
        ))
        .insert_header(("Referrer-Policy", "no-referrer"));
    if state.frame_ancestors == "'none'" {
        // For browsers that predate frame-ancestors.
        response.insert_header(("X-Frame-Options", "DENY"));
    }
    response.body(checkout::page(view))
}

/// `GET` on the payment URL.
pub async fn get(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(offer) = offer(&req) else {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "None of the Accept types is offered here. Ask for application/json, text/html, application/payment-request, application/payment-options or application/bitcoincash-paymentrequest.",
        ));
    };
    let dialect = match offer {
        Offer::Bip70 => Dialect::Bip70,
        Offer::Options | Offer::RequestV1 => Dialect::BitPay,
        Offer::Json | Offer::Html => {
            let id: InvoiceId = id
                .parse()
                .map_err(|()| ApiError::not_found("No invoice with this id exists."))?;
            let invoice = state.invoices.get(id).await?;
            let view = state.invoices.view(&invoice, now_ms());
            return Ok(if offer == Offer::Json {
                // `merchant_data` only for a key of the invoice's store that may read it.
                match presented_merchant(&req, &state).await? {
                    None => HttpResponse::Ok().json(view.public()),
                    Some(merchant) => {
                        require(&merchant, Scope::ReadInvoices)?;
                        if merchant.store_id != invoice.store_id {
                            return Err(ApiError::not_found("No invoice with this id exists."));
                        }
                        HttpResponse::Ok().json(view)
                    }
                }
            } else {
                checkout_page(&state, &view)
            });
        }
    };
    let invoice = match invoice(&state, &id).await {
        Ok(invoice) => invoice,
        Err(e) => return Ok(refuse(dialect, &e)),
    };
    let view = state.invoices.view(&invoice, now_ms());
    Ok(match offer {
        Offer::Bip70 => {
            let url = view.payment_url.clone();
            match bip70::payment_request(&invoice, state.invoices.network(), &url) {
                // Exactly this type, no charset: Electron Cash compares the whole header.
                Some(bytes) => HttpResponse::Ok().content_type(BIP70_REQUEST).body(bytes),
                None => HttpResponse::BadRequest()
                    .content_type("text/plain; charset=utf-8")
                    .body(bip70::TOKENS_UNSUPPORTED),
            }
        }
        _ => match still_offered(&view) {
            Err(e) => refuse(dialect, &e),
            Ok(()) if offer == Offer::Options => signed(&state, &bitpay::options(&view)),
            Ok(()) => signed(&state, &bitpay::payment_request_v1(&view)),
        },
    })
}

/// `POST` on the payment URL.
pub async fn post(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let media = media_type(&req).unwrap_or_default();
    let bip70 = matches!(
        media.as_str(),
        BIP70_PAYMENT | "application/bitcoin-payment"
    );
    let dialect = if bip70 {
        Dialect::Bip70
    } else {
        Dialect::BitPay
    };
    let limit = if bip70 {
        bip70::MAX_PAYMENT
    } else {
        MAX_PAY_BODY
    };
    let body = match read_limited(&req, payload, limit).await {
        Ok(body) => body,
        Err(e) => {
            return HttpResponse::build(e.status())
                .json(json!({"msg": e.detail(), "message": e.detail(), "code": e.code()}))
        }
    };
    let outcome = if bip70 {
        pay_bip70(&state, &id, &body).await
    } else {
        bitpay_post(&req, &state, &id, &media, &body).await
    };
    outcome.unwrap_or_else(|e| refuse(dialect, &e))
}

fn json_body(body: &[u8]) -> Result<Value, PayError> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| PayError::Unparsable("the body must be a JSON object".into()))
}

/// The one transaction of a v1 or v2 body, and its `weightedSize` if given.
fn one_transaction(body: &Value) -> Result<(Vec<u8>, Option<usize>), PayError> {
    let txs = body["transactions"]
        .as_array()
        .ok_or_else(|| PayError::Unparsable("`transactions` must be a list".into()))?;
    let [tx] = txs.as_slice() else {
        return Err(PayError::NotOneTransaction);
    };
    match tx {
        Value::String(hex_tx) => Ok((Submission::from_hex(hex_tx)?, None)),
        Value::Object(_) => {
            let hex_tx = tx["tx"].as_str().ok_or(PayError::NotHex)?;
            Ok((
                Submission::from_hex(hex_tx)?,
                weighted_size(&tx["weightedSize"]),
            ))
        }
        _ => Err(PayError::NotHex),
    }
}

fn weighted_size(v: &Value) -> Option<usize> {
    v.as_u64().and_then(|n| usize::try_from(n).ok())
}

/// v2 bodies name the chain (and maybe the currency): only BCH is priced here.
fn check_chain(body: &Value) -> Result<(), PayError> {
    let named = |field: &str| body[field].as_str().unwrap_or("").trim().to_owned();
    let chain = named("chain");
    if !chain.eq_ignore_ascii_case(bitpay::CHAIN) {
        return Err(PayError::WrongChain(if chain.is_empty() {
            "an unnamed chain".into()
        } else {
            chain
        }));
    }
    let currency = named("currency");
    if !currency.is_empty() && !currency.eq_ignore_ascii_case(bitpay::CHAIN) {
        return Err(PayError::WrongChain(currency));
    }
    Ok(())
}

async fn bitpay_post(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    media: &str,
    body: &[u8],
) -> Result<HttpResponse, PayError> {
    let invoice_id: InvoiceId = id.parse().map_err(|()| PayError::NotFound)?;
    match media {
        // v2 step 2: the wallet chose BCH.
        "application/payment-request" => {
            check_chain(&json_body(body)?)?;
            let invoice = invoice(state, id).await?;
            let view = state.invoices.view(&invoice, now_ms());
            still_offered(&view)?;
            Ok(signed(state, &bitpay::payment_request_v2(&view)))
        }
        // v2 and v1 verification: every check, nothing written.
        "application/payment-verification" | "application/verify-payment" => {
            let request = json_body(body)?;
            let (raw, size) = if media == "application/verify-payment" {
                let hex_tx = request["unsignedTransaction"]
                    .as_str()
                    .ok_or(PayError::NotHex)?;
                (
                    Submission::from_hex(hex_tx)?,
                    weighted_size(&request["weightedSize"]),
                )
            } else {
                check_chain(&request)?;
                one_transaction(&request)?
            };
            state.payments.verify(invoice_id, &raw, size).await?;
            Ok(signed(
                state,
                &json!({"payment": request, "memo": bitpay::VERIFIED}),
            ))
        }
        "application/payment" => {
            let request = json_body(body)?;
            // v2 says so in a header, or by sending objects where v1 sends strings.
            let v2 = req
                .headers()
                .get("x-paypro-version")
                .is_some_and(|v| v.as_bytes() == b"2")
                || request["transactions"][0].is_object();
            if v2 {
                check_chain(&request)?;
            }
            let (raw_tx, _) = one_transaction(&request)?;
            let submission = Submission {
                raw_tx,
                memo: None,
                refund_to: None,
            };
            state.payments.pay(invoice_id, submission).await?;
            Ok(signed(
                state,
                &json!({"payment": request, "memo": bitpay::RECEIVED}),
            ))
        }
        _ => Err(PayError::UnsupportedType),
    }
}

async fn pay_bip70(state: &AppState, id: &str, body: &[u8]) -> Result<HttpResponse, PayError> {
    let invoice_id: InvoiceId = id.parse().map_err(|()| PayError::NotFound)?;
    let payment = bip70::read_payment(body)
        .map_err(|e| PayError::Unparsable(format!("not a Payment: {e}")))?;
    let [raw_tx] = payment.transactions.as_slice() else {
        return Err(PayError::NotOneTransaction);
    };
    let submission = Submission {
        raw_tx: raw_tx.clone(),
        memo: payment.memo.clone(),
        refund_to: bip70::refunds(&payment, state.invoices.network()).map_err(PayError::Invalid)?,
    };
    state.payments.pay(invoice_id, submission).await?;
    Ok(HttpResponse::Ok()
        .content_type(BIP70_ACK)
        .body(bip70::ack(payment)))
}

/// `GET /signingKeys/paymentProtocol.json`: the key that signs responses, for wallets to pin.
pub async fn signing_keys(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let signer = state.signer.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "This server does not sign its responses (start it with --signing-key to do so).",
        )
    })?;
    let public_url = state.invoices.public_url();
    let domain = public_url
        .split("://")
        .nth(1)
        .unwrap_or(public_url)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(signer.key_document(domain, now_ms())))
}
