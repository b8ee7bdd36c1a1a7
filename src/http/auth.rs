//! Merchant authentication: `X-Api-Key: <key>` or `Authorization: Bearer <key>`, and the
//! scope each merchant endpoint needs.

use actix_web::http::{header, StatusCode};
use actix_web::HttpRequest;

use super::{ApiError, AppState};
use crate::auth::{key_hash, Merchant, Scope};
use crate::store;

/// The key the request carries, if any.
fn presented_key(req: &HttpRequest) -> Option<&str> {
    if let Some(v) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The merchant a presented key acts for; `None` without a key. A key that is presented must
/// be valid (403).
pub async fn presented_merchant(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<Merchant>, ApiError> {
    let Some(key) = presented_key(req).filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    let hash = key_hash(key);
    if let Some(merchant) = state.keys.get(&hash) {
        return Ok(Some(merchant));
    }
    let merchant = state
        .store
        .read(move |c| store::api_keys::find_active(c, &hash))
        .await?
        .ok_or_else(ApiError::forbidden)?
        .merchant();
    state.keys.put(hash, merchant);
    Ok(Some(merchant))
}

/// The merchant of a request that must carry a valid key holding `scope`: 401 without a key,
/// 403 with an invalid one or one without the scope.
pub async fn merchant_with(
    req: &HttpRequest,
    state: &AppState,
    scope: Scope,
) -> Result<Merchant, ApiError> {
    let merchant = presented_merchant(req, state)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    require(&merchant, scope)?;
    Ok(merchant)
}

/// 403 unless the key holds `scope`.
pub fn require(merchant: &Merchant, scope: Scope) -> Result<(), ApiError> {
    if merchant.scopes.contains(scope) {
        return Ok(());
    }
    let holds = match merchant.scopes.to_string() {
        s if s.is_empty() => "no scopes".to_owned(),
        s => format!("only {s}"),
    };
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        format!(
            "This API key may not do this: it needs the scope {} and holds {holds}. Use a key made with `cashier key create --scope {}`.",
            scope.as_str(),
            scope.as_str()
        ),
    ))
}
