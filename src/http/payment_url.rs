//! The payment URL: one invoice, every wallet's dialect (`spec/jpp.md` §3). GET is negotiated
//! by `Accept` (research §7.2), POST dispatched by `Content-Type` (§7.3). Each dialect is a thin
//! adapter: every check and every payment goes through `jpp::pay`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use serde_json::{json, Value};

use super::auth::{presented_merchant, require};
use super::body::{media_type, read_limited};
use super::checkout;
use super::error::jpp_refusal;
use super::pay::MAX_PAY_BODY;
use super::{ApiError, AppState};
use crate::auth::Scope;
use crate::jpp::pay::{PayError, Submission};
use crate::jpp::{bip70, bitpay, Invoice, InvoiceError, InvoiceId};
use crate::jpp::{InvoiceStatus, InvoiceView};
use crate::units::now_ms;

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

/// How a refusal is written: by request, so that every wallet making that request can read
/// it. The two BitPay-dialect clients read errors differently (research §2.5, §6.2):
/// - BitPay's client (bitcore-wallet-client, through superagent) reads the message of a 400,
///   422 or 500 from `msg` in a body superagent parsed, and superagent parses only JSON and
///   form (`application/x-www-form-urlencoded`) bodies; its v1 reads the status alone.
/// - Paytaca (through axios) parses any body that is valid JSON whatever its type, shows a
///   failed fetch's words only when the body stayed a string, and reads `error` or `msg`
///   from a failed verification and `message` from a failed payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// The v2 fetches (GET payment-options, POST payment-request), which both clients make.
    /// A form body `msg=<text>` is a string to axios and `{msg}` to superagent. Where BWC
    /// reads only the status (404, 503), plain text, which reads better in Paytaca.
    FetchV2,
    /// Plain text, as BitPay's spec has it: the v1 fetch (GET payment-request: BWC reads the
    /// status, Paytaca shows a string) and BIP70 (Electron Cash shows "Bad Request: <text>").
    Text,
    /// `{"msg", "message"}`: verification and payment, where BWC reads `msg`, Paytaca's
    /// verification `msg` and its payment `message`.
    Json,
}

impl Reader {
    /// The reader of a POST, from its media type.
    fn of_post(media: &str) -> Reader {
        match media {
            BIP70_PAYMENT | "application/bitcoin-payment" => Reader::Text,
            "application/payment-request" => Reader::FetchV2,
            _ => Reader::Json,
        }
    }
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

fn refuse(reader: Reader, e: &PayError) -> HttpResponse {
    jpp_refusal(e, |response, status, code, message| {
        written_for(reader, response, status, code, message)
    })
}

/// A refusal's body, as `reader` needs it.
fn written_for(
    reader: Reader,
    mut response: HttpResponseBuilder,
    status: StatusCode,
    code: &str,
    message: String,
) -> HttpResponse {
    let bwc_reads_msg = matches!(status.as_u16(), 400 | 422 | 500);
    match reader {
        Reader::FetchV2 if bwc_reads_msg => response
            .content_type("application/x-www-form-urlencoded")
            .body(form_msg(&message)),
        Reader::FetchV2 | Reader::Text => response
            .content_type("text/plain; charset=utf-8")
            .body(message),
        Reader::Json => response.json(json!({"msg": message, "message": message, "code": code})),
    }
}

/// `msg=<text>` in the form encoding. Only what a form decoder would read otherwise (`%`,
/// `&`, `+`) and bytes outside printable ASCII are escaped, so a person shown the raw body
/// reads the text itself.
fn form_msg(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    out.push_str("msg=");
    for b in text.bytes() {
        if (0x20..0x7f).contains(&b) && !b"%&+".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
        InvoiceError::Storage(e) => PayError::Storage(e),
        _ => PayError::NotFound,
    })
}

/// Only an open invoice is offered in BitPay's fetches: a paid, expired or cancelled one (or
/// one being paid right now) is refused with "Invoice no longer accepting payments", as
/// BitPay's spec does. Offered, a paid invoice would be paid again by a wallet that reads no
/// payment from these messages (Paytaca over v2), and refused only at verification.
fn still_offered(invoice: &Invoice, now: i64) -> Result<(), PayError> {
    match invoice.status_at(now) {
        InvoiceStatus::Open => Ok(()),
        other => Err(PayError::NotAccepting(other)),
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
    let reader = match offer {
        Offer::Bip70 | Offer::RequestV1 => Reader::Text,
        Offer::Options => Reader::FetchV2,
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
        Err(e) => return Ok(refuse(reader, &e)),
    };
    let now = now_ms();
    let view = state.invoices.view(&invoice, now);
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
        _ => match still_offered(&invoice, now) {
            Err(e) => refuse(reader, &e),
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
    let reader = Reader::of_post(&media);
    let limit = if bip70 {
        bip70::MAX_PAYMENT
    } else {
        MAX_PAY_BODY
    };
    let body = match read_limited(&req, payload, limit).await {
        Ok(body) => body,
        Err(e) => {
            return written_for(
                reader,
                HttpResponse::build(e.status()),
                e.status(),
                e.code(),
                e.detail().to_owned(),
            )
        }
    };
    let outcome = if bip70 {
        pay_bip70(&state, &id, &body).await
    } else {
        bitpay_post(&req, &state, &id, &media, &body).await
    };
    outcome.unwrap_or_else(|e| refuse(reader, &e))
}

fn json_body(body: &[u8]) -> Result<Value, PayError> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| PayError::Unparsable("the body must be a JSON object".into()))
}

/// The one transaction of a v1 or v2 body. A `weightedSize` beside it is not read: see
/// [`crate::service::Payments::verify`].
fn one_transaction(body: &Value) -> Result<Vec<u8>, PayError> {
    let txs = body["transactions"]
        .as_array()
        .ok_or_else(|| PayError::Unparsable("`transactions` must be a list".into()))?;
    let [tx] = txs.as_slice() else {
        return Err(PayError::NotOneTransaction);
    };
    match tx {
        Value::String(hex_tx) => Submission::from_hex(hex_tx),
        Value::Object(_) => Submission::from_hex(tx["tx"].as_str().ok_or(PayError::NotHex)?),
        _ => Err(PayError::NotHex),
    }
}

/// v2 bodies name the chain (and maybe the currency): only BCH is priced here. Every invoice
/// is priced in BCH alone, so a chain left empty or out means BCH: Paytaca takes `chain` from
/// the invoice it fetched, and a watchtower JSON invoice had none.
fn check_chain(body: &Value) -> Result<(), PayError> {
    let named = |field: &str| body[field].as_str().unwrap_or("").trim().to_owned();
    let chain = named("chain");
    if !chain.is_empty() && !chain.eq_ignore_ascii_case(bitpay::CHAIN) {
        return Err(PayError::WrongChain(chain));
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
            let now = now_ms();
            still_offered(&invoice, now)?;
            let view = state.invoices.view(&invoice, now);
            Ok(signed(state, &bitpay::payment_request_v2(&view)))
        }
        // v2 and v1 verification: every check, nothing written.
        "application/payment-verification" | "application/verify-payment" => {
            let request = json_body(body)?;
            let raw = if media == "application/verify-payment" {
                let hex_tx = request["unsignedTransaction"]
                    .as_str()
                    .ok_or(PayError::NotHex)?;
                Submission::from_hex(hex_tx)?
            } else {
                check_chain(&request)?;
                one_transaction(&request)?
            };
            state.payments.verify(invoice_id, &raw).await?;
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
            let raw_tx = one_transaction(&request)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_message_reads_as_its_text_and_decodes_to_it() {
        assert_eq!(
            form_msg("Invoice no longer accepting payments (the invoice is paid)"),
            "msg=Invoice no longer accepting payments (the invoice is paid)"
        );
        // What a form decoder would split or change, and what is not ASCII, is escaped.
        assert_eq!(form_msg("a&b=c+d 100%"), "msg=a%26b=c%2Bd 100%25");
        assert_eq!(form_msg("é\n"), "msg=%C3%A9%0A");
    }
}
