//! The LNbits-compatible wallet API (`spec/lightning.md`): the status codes and bodies LNbits'
//! clients expect, keys from `X-Api-Key` or `?api-key=`, and JSON read whatever the
//! Content-Type says (LNbits' own Rust client sends none).

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use sha2::Digest as _;

use super::body::read_limited;
use super::error::lnbits_refusal;
use super::AppState;
use crate::lightning::decoded;
use crate::lightning::{LnError, NewInvoice, Wallet};

const MAX_BODY: usize = 64 * 1024;
/// Largest push: a socket message, and within PostgreSQL's `NOTIFY` payload limit (8000 bytes).
const MAX_PUSH: usize = 4 * 1024;
const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 200;

/// The key a request carries, from the header or the query string.
pub fn api_key(req: &HttpRequest) -> Option<String> {
    if let Some(key) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim().to_owned());
    }
    query(req).remove("api-key")
}

/// The query string's parameters (none if it does not parse).
fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// The wallet the request's key opens (and whether it is the admin key).
async fn wallet(req: &HttpRequest, state: &AppState) -> Result<(Wallet, bool), HttpResponse> {
    let Some(key) = api_key(req) else {
        return Err(HttpResponse::Unauthorized().json(json!({
            "detail": "No Api Key provided.", "code": "missing_api_key"})));
    };
    state
        .lightning
        .wallet_for_key(&key)
        .await
        .map_err(lnbits_refusal)
}

/// The body as JSON, whatever the Content-Type says; an empty body is `{}`.
async fn lenient_json(req: &HttpRequest, payload: web::Payload) -> Result<Value, HttpResponse> {
    let bytes = read_limited(req, payload, MAX_BODY)
        .await
        .map_err(|e| actix_web::ResponseError::error_response(&e))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| lnbits_refusal(LnError::Invalid("The body must be a JSON object.".into())))
}

/// `GET /api/v1/wallet`: `{id?, name, balance}`, the balance in msat; the id only for the
/// admin key.
pub async fn get_wallet(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (wallet, admin) = match wallet(&req, &state).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match state.lightning.balance_msat(&wallet.id).await {
        Ok(balance) => {
            let mut body = json!({"name": wallet.name, "balance": balance});
            if admin {
                body["id"] = json!(wallet.id);
            }
            HttpResponse::Ok().json(body)
        }
        Err(e) => lnbits_refusal(e),
    }
}

/// `POST /api/v1/account {"name"}`: a new wallet with its keys (shown this once).
pub async fn create_account(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if !state.public_accounts {
        return HttpResponse::Forbidden().json(json!({
            "detail": "This server does not create accounts over the API; an operator creates wallets with `cashier wallet create`.",
            "code": "accounts_disabled"}));
    }
    // Anyone may make a wallet: held to a per-address rate.
    if let Err(e) = state.public_writes.check(&req) {
        return HttpResponse::from_error(e);
    }
    let body = match lenient_json(&req, payload).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = body["name"].as_str().unwrap_or("My wallet");
    match state.lightning.create_wallet(name).await {
        Ok((wallet, inkey, adminkey)) => HttpResponse::Ok().json(json!({
            "id": wallet.id, "name": wallet.name, "user": wallet.id,
            "inkey": inkey, "adminkey": adminkey, "balance_msat": 0, "currency": null,
        })),
        Err(e) => lnbits_refusal(e),
    }
}

/// `POST /api/v1/payments`: `out: false` makes an invoice, otherwise (LNbits' default) pays
/// `bolt11` with the admin key.
pub async fn create_payment(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (wallet, admin) = match wallet(&req, &state).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let body = match lenient_json(&req, payload).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let outgoing = body.get("out").and_then(Value::as_bool).unwrap_or(true);
    let result = if outgoing {
        if !admin {
            Err(LnError::AdminKeyRequired)
        } else {
            match body["bolt11"].as_str() {
                Some(bolt11) => state.lightning.pay(&wallet, bolt11).await,
                None => Err(LnError::Invalid("Missing BOLT11 invoice".into())),
            }
        }
    } else {
        match invoice_request(&body) {
            Ok(new) => state.lightning.create_invoice(&wallet, new).await,
            Err(e) => Err(e),
        }
    };
    match result {
        // The creator of an invoice sees its preimage (LNbits' clients read it).
        Ok(payment) => HttpResponse::Created().json(payment.to_json(!outgoing)),
        Err(e) => lnbits_refusal(e),
    }
}

fn invoice_request(body: &Value) -> Result<NewInvoice, LnError> {
    let unit = body["unit"].as_str().unwrap_or("sat");
    if !unit.eq_ignore_ascii_case("sat") {
        return Err(LnError::Invalid(format!(
            "unit {unit:?} is not supported: amounts are in sat"
        )));
    }
    let amount_sats = match &body["amount"] {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .ok_or_else(|| {
                LnError::Invalid("amount must be a whole, positive number of sats".into())
            })?,
        Value::Null => return Err(LnError::Invalid("amount is required (sats)".into())),
        _ => return Err(LnError::Invalid("amount must be a number of sats".into())),
    };
    let text = |field: &str| -> Result<Option<String>, LnError> {
        match &body[field] {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(LnError::Invalid(format!("{field} must be a string"))),
        }
    };
    let description_hash = match text("description_hash")? {
        None => match text("unhashed_description")? {
            None => None,
            Some(h) => {
                let raw = hex::decode(h)
                    .map_err(|_| LnError::Invalid("unhashed_description must be hex".into()))?;
                Some(<[u8; 32]>::from(sha2::Sha256::digest(raw)))
            }
        },
        Some(h) => Some(
            hex::decode(&h)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| LnError::Invalid("description_hash must be 64 hex digits".into()))?,
        ),
    };
    let expiry_secs =
        match &body["expiry"] {
            Value::Null => None,
            v => Some(v.as_u64().ok_or_else(|| {
                LnError::Invalid("expiry must be a whole number of seconds".into())
            })?),
        };
    let extra = match &body["extra"] {
        Value::Null => None,
        v @ Value::Object(_) => Some(v.clone()),
        _ => return Err(LnError::Invalid("extra must be an object".into())),
    };
    Ok(NewInvoice {
        amount_sats,
        memo: text("memo")?,
        expiry_secs,
        description_hash,
        extra,
        webhook: text("webhook")?,
    })
}

/// `GET /api/v1/payments/{hash or checking id}`.
pub async fn get_payment(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    // With a key: the owner's view (a key of another wallet finds nothing). Without one: only
    // whether it is paid.
    let owner = match api_key(&req) {
        Some(_) => match wallet(&req, &state).await {
            Ok((w, _)) => Some(w),
            Err(r) => return r,
        },
        None => None,
    };
    match state.lightning.payment(owner.as_ref(), &id).await {
        Ok(p) => {
            let paid = p.status == crate::lightning::PayStatus::Success;
            let mut body = json!({"paid": paid, "status": p.status.as_str()});
            if owner.is_some() {
                body["preimage"] = json!(if paid { p.preimage.clone() } else { None });
                body["details"] = p.to_json(false);
            }
            HttpResponse::Ok().json(body)
        }
        Err(e) => lnbits_refusal(e),
    }
}

/// `GET /api/v1/payments?limit=&offset=`: the wallet's payments, newest first.
pub async fn list_payments(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (wallet, _) = match wallet(&req, &state).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let query = query(&req);
    let number = |name: &str, default: i64| -> Result<i64, LnError> {
        match query.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| LnError::Invalid(format!("{name} must be a whole number"))),
        }
    };
    let (limit, offset) = match (number("limit", DEFAULT_PAGE), number("offset", 0)) {
        (Ok(l), Ok(o)) => (l.clamp(1, MAX_PAGE), o),
        (Err(e), _) | (_, Err(e)) => return lnbits_refusal(e),
    };
    match state.lightning.payments(&wallet, limit, offset).await {
        Ok(list) => {
            HttpResponse::Ok().json(list.iter().map(|p| p.to_json(false)).collect::<Vec<_>>())
        }
        Err(e) => lnbits_refusal(e),
    }
}

/// `POST /api/v1/payments/decode {data}`.
pub async fn decode(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let body = match lenient_json(&req, payload).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match body["data"].as_str().map(decoded) {
        Some(Ok(v)) => HttpResponse::Ok().json(v),
        Some(Err(e)) => lnbits_refusal(e),
        None => lnbits_refusal(LnError::Invalid(
            "data (a BOLT11 invoice) is required".into(),
        )),
    }
}

/// `GET /api/v1/ws/{id}/{data}` and `POST /api/v1/ws/{id}?data=` (or the body): `data` to the
/// wallet's sockets, as is. Unlike LNbits, only the wallet's admin key may push, and a push
/// is never stored or numbered, so it cannot pass for a payment event.
pub async fn push_in_path(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (target, data) = path.into_inner();
    push(req, target, Some(data), payload, state).await
}

pub async fn push_in_query(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    push(req, path.into_inner(), None, payload, state).await
}

async fn push(
    req: HttpRequest,
    target: String,
    in_path: Option<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (wallet, admin) = match wallet(&req, &state).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let named = match state.lightning.wallet_for_socket(&target).await {
        Ok(w) => w,
        Err(e) => return lnbits_refusal(e),
    };
    if !admin || named.as_ref().map(|w| &w.id) != Some(&wallet.id) {
        return HttpResponse::Unauthorized().json(json!({
            "detail": "Pushing to a wallet's sockets needs that wallet's admin key.",
            "code": "admin_key_required"}));
    }
    let data = match in_path {
        Some(d) => d,
        None => match query(&req).remove("data") {
            Some(d) => d,
            None => match read_limited(&req, payload, MAX_BODY).await {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => return actix_web::ResponseError::error_response(&e),
            },
        },
    };
    if data.len() > MAX_PUSH {
        return lnbits_refusal(LnError::Invalid(format!(
            "data is {} bytes; a push carries at most {MAX_PUSH}",
            data.len()
        )));
    }
    let topic = crate::notify::Topic::Wallet(wallet.id);
    match state.dispatcher.push(&topic, &data).await {
        Ok(()) => HttpResponse::Ok().json(json!({"sent": true, "data": data})),
        Err(e) => lnbits_refusal(e.into()),
    }
}
