//! Merchant authentication: `X-Api-Key: <key>` or `Authorization: Bearer <key>`.

use actix_web::http::header;
use actix_web::HttpRequest;

use super::{ApiError, AppState};
use crate::auth::key_hash;
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

/// The id of the merchant key on the request. Without a key: 401 when `required`, else
/// `None`. A key that is presented must be valid either way (403).
pub async fn merchant_key(
    req: &HttpRequest,
    state: &AppState,
    required: bool,
) -> Result<Option<i64>, ApiError> {
    let Some(key) = presented_key(req).filter(|k| !k.is_empty()) else {
        return if required {
            Err(ApiError::unauthorized())
        } else {
            Ok(None)
        };
    };
    let hash = key_hash(key);
    if let Some(id) = state.keys.get(&hash) {
        return Ok(Some(id));
    }
    let row = state
        .store
        .read(move |c| store::api_keys::find_active(c, &hash))
        .await?
        .ok_or_else(ApiError::forbidden)?;
    state.keys.put(hash, row.id);
    Ok(Some(row.id))
}
