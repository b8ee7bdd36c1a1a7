//! The dev chain's own endpoints: a faucet and mining on demand. They exist only when the dev
//! chain is the node (no real money): anywhere else they answer 404.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::body::{read_json, MAX_JSON_BODY};
use super::{ApiError, AppState};
use crate::jpp::{parse_create_request, CreateLimits};
use crate::service::{DevChain, FaucetError};

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
