//! The dev chain's own endpoints: a faucet and mining on demand. They exist only when the dev
//! chain is the node (no real money): anywhere else they answer 404.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::body::{read_json, MAX_JSON_BODY};
use super::{ApiError, AppState};
use crate::chain::Txid;
use crate::jpp::{parse_create_request, CreateLimits};
use crate::service::{DevChain, FaucetError, RehearsalError, MAX_REORG_DEPTH};

fn dev_chain(state: &AppState) -> Result<&DevChain, ApiError> {
    state.payments.node().dev().ok_or_else(|| {
        ApiError::not_found("The dev faucet exists only on the built-in dev chain (--node dev).")
    })
}

/// `POST /dev/faucet {address, amount, token?}`: a new coin for `address`, mined at once. The
/// body is one invoice output, checked by the same rules.
pub async fn faucet(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let chain = dev_chain(&state)?;
    let body = read_json(&req, payload, MAX_JSON_BODY).await?;
    let limits = CreateLimits {
        token_aware_addresses: false,
        ..state.invoices.limits()
    };
    let mut output = parse_create_request(&json!({"outputs": [body]}), &limits)
        .map_err(|errors| {
            let detail: Vec<String> = errors
                .iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e.field.trim_start_matches("outputs[0]."),
                        e.message
                    )
                })
                .collect();
            ApiError::bad_request(
                "invalid_request",
                format!("The faucet request is invalid: {}", detail.join("; ")),
            )
        })?
        .outputs;
    let output = output.remove(0);
    let address = output.address_string();
    let coin = chain
        .faucet(&output.address, output.amount, output.token)
        .await
        .map_err(|e| match e {
            FaucetError::Amount { .. } => ApiError::bad_request("invalid_request", e.to_string()),
            FaucetError::Store(e) => e.into(),
        })?;
    Ok(HttpResponse::Created().json(json!({
        "txid": coin.outpoint.txid.to_hex(),
        "vout": coin.outpoint.vout,
        "amount": coin.output.value,
        "address": address,
        "height": coin.height,
    })))
}

/// `POST /dev/mine {blocks?}`: mines 1 to 100 blocks; the first takes the whole mempool.
pub async fn mine(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let chain = dev_chain(&state)?;
    let blocks = if req
        .headers()
        .contains_key(actix_web::http::header::CONTENT_TYPE)
    {
        let body = read_json(&req, payload, MAX_JSON_BODY).await?;
        match body.get("blocks") {
            None | Some(Value::Null) => 1,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_request",
                        "blocks must be a whole number from 1 to 100.",
                    )
                })? as u32,
        }
    } else {
        1
    };
    let height = chain.mine(blocks).await?;
    Ok(HttpResponse::Ok().json(json!({"height": height})))
}

/// A txid field of a rehearsal request, if present.
fn txid_field(body: &Value, field: &str) -> Result<Option<Txid>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(Txid::from_hex)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_request",
                    format!("{field} must be a txid: 64 hex digits."),
                )
            }),
    }
}

fn rehearsal_error(e: RehearsalError) -> ApiError {
    match e {
        RehearsalError::Store(e) => e.into(),
        RehearsalError::NotInMempool(_) | RehearsalError::NotReorged(_) => ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "not_applicable",
            e.to_string(),
        ),
        RehearsalError::Depth { .. } | RehearsalError::TooSmall(_) => {
            ApiError::bad_request("invalid_request", e.to_string())
        }
    }
}

/// `POST /dev/double-spend {txid}`: a conflicting transaction for a mempool transaction
/// arrives and is refused, and the chain makes a double-spend proof for the first, as BCHN
/// does. Answers the proof.
pub async fn double_spend(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let chain = dev_chain(&state)?;
    let body = read_json(&req, payload, MAX_JSON_BODY).await?;
    let txid = txid_field(&body, "txid")?.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_request",
            "txid is required: the transaction to double-spend.",
        )
    })?;
    let proof = chain.double_spend(txid).await.map_err(rehearsal_error)?;
    Ok(HttpResponse::Ok().json(json!({"proof_id": proof.id, "txid": proof.txid.to_hex()})))
}

/// `POST /dev/reorg {depth, drop?, replace?}`: the newest `depth` blocks are replaced by
/// `depth + 1` new ones holding the same transactions in the last, except `drop` (gone) and
/// `replace` (its double spend mined instead). Answers the new height.
pub async fn reorg(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let chain = dev_chain(&state)?;
    let body = read_json(&req, payload, MAX_JSON_BODY).await?;
    let depth = match body.get("depth") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=u64::from(MAX_REORG_DEPTH)).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_request",
                    format!("depth must be a whole number from 1 to {MAX_REORG_DEPTH}."),
                )
            })? as u32,
    };
    let (drop, replace) = (txid_field(&body, "drop")?, txid_field(&body, "replace")?);
    if drop.is_some() && drop == replace {
        return Err(ApiError::bad_request(
            "invalid_request",
            "drop and replace name the same transaction: pick one.",
        ));
    }
    let height = chain
        .reorg(depth, drop, replace)
        .await
        .map_err(rehearsal_error)?;
    Ok(HttpResponse::Ok().json(json!({"height": height})))
}

/// `POST /dev/broadcast {raw_tx_hex}`: hands a transaction to the dev chain as
/// `sendrawtransaction` does, outside any invoice (a wallet paying an address directly).
/// Answers the txid, or BCHN's reason for refusing it (422).
pub async fn broadcast(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    use crate::chain::node::Broadcast;
    use crate::jpp::pay::Submission;
    let chain = dev_chain(&state)?;
    let body = read_json(&req, payload, MAX_JSON_BODY).await?;
    let hex = body
        .get("raw_tx_hex")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_request",
                "raw_tx_hex is required: the transaction in hex.",
            )
        })?;
    let raw = Submission::from_hex(hex)
        .map_err(|e| ApiError::bad_request("invalid_transaction", e.to_string()))?;
    match chain.broadcast(&raw).await {
        Ok(Broadcast::Accepted) => {
            Ok(HttpResponse::Ok().json(json!({"txid": crate::chain::txid_of(&raw).to_hex()})))
        }
        Ok(Broadcast::AlreadyConfirmed) => Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "already_confirmed",
            "transaction already in block chain",
        )),
        Ok(Broadcast::Rejected(r)) => Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "rejected",
            format!("the dev chain refused the transaction: {}", r.reason),
        )),
        Err(e) => Err(ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "node_unavailable",
            e.to_string(),
        )),
    }
}
