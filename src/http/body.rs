//! Reading request bodies ourselves: a size limit enforced before and while reading, the
//! content type checked, and JSON errors reported with their position.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use super::ApiError;

/// Largest create body (`spec/jpp.md` §2).
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// The body's media type without parameters, lower-cased; `None` without the header.
pub fn media_type(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Reads a JSON body of at most `limit` bytes, sent as `application/json` (or `…+json`).
pub async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<serde_json::Value, ApiError> {
    match media_type(req).as_deref() {
        Some("application/json") => {}
        Some(t) if t.starts_with("application/") && t.ends_with("+json") => {}
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {other:?} is not accepted here: send the body as JSON with `Content-Type: application/json`."),
            ))
        }
        None => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "The request has no Content-Type: send the body as JSON with `Content-Type: application/json`.",
            ))
        }
    }
    let bytes = read_limited(req, payload, limit).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("The body is not valid JSON: {e}."))
    })
}

/// Collects the body, refusing it with 413 as soon as it is known to exceed `limit`.
pub async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("The body is larger than the {limit} bytes this endpoint accepts."),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(
                "body_unreadable",
                format!("The body could not be read: {e}."),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
