//! A store's webhook endpoints over the merchant API (a key with `webhooks:manage`): each
//! call sees only the key's store; another store's endpoint is 404.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::auth::merchant_with;
use super::body::{read_json, read_limited, MAX_EMPTY_BODY, MAX_JSON_BODY};
use super::{ApiError, AppState};
use crate::auth::{Merchant, Scope};
use crate::service::webhooks::{delivery_json, endpoint_json, WebhookError};

const DEFAULT_LOG: i64 = 50;

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::NotFound(_) => ApiError::not_found(format!("{e}.")),
            WebhookError::Url(refused) => {
                ApiError::bad_request("webhook_url_refused", format!("{refused}."))
                    .with_field("url", refused.to_string())
            }
            WebhookError::Kinds(text) => {
                ApiError::bad_request("invalid_webhook", format!("{text}."))
                    .with_field("events", text)
            }
            e @ WebhookError::TooMany => {
                ApiError::new(StatusCode::CONFLICT, "too_many_webhooks", format!("{e}."))
            }
            WebhookError::Range(text) => {
                ApiError::bad_request("invalid_webhook", format!("{text}."))
            }
            WebhookError::Storage(e) => e.into(),
        }
    }
}

async fn manager(req: &HttpRequest, state: &AppState) -> Result<Merchant, ApiError> {
    merchant_with(req, state, Scope::ManageWebhooks).await
}

fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found("No webhook endpoint with this id exists."))
}

/// A field of the request as a string, or a 400 naming it.
fn string_field<'a>(body: &'a Value, name: &str) -> Result<Option<&'a str>, ApiError> {
    match &body[name] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(
            ApiError::bad_request("invalid_webhook", format!("{name} must be a string."))
                .with_field(name, "must be a string"),
        ),
    }
}

/// `POST …/webhooks {"url", "events"?}` → 201, the endpoint with its `secret` (shown once).
pub async fn add(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let merchant = manager(&req, &state).await?;
    let body = read_json(&req, payload, MAX_JSON_BODY).await?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "invalid_webhook",
            "The body must be a JSON object: {\"url\": \"https://…\", \"events\": [\"payment_received\", …]}.",
        ));
    }
    let url = string_field(&body, "url")?.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_webhook",
            "url is required: where the events are POSTed.",
        )
        .with_field("url", "is required")
    })?;
    let kinds: Vec<String> = match &body["events"] {
        Value::Null => Vec::new(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_webhook",
                "events must be a list of event kinds, such as [\"payment_received\"].",
            )
            .with_field("events", "must be a list of strings"))
        }
    };
    let endpoint = state.webhooks.add(merchant.store_id, url, &kinds).await?;
    Ok(HttpResponse::Created().json(endpoint_json(&endpoint, true)))
}

/// `GET …/webhooks` → `{"webhooks": [...]}` (no secrets).
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let merchant = manager(&req, &state).await?;
    let endpoints = state.webhooks.list(Some(merchant.store_id)).await?;
    let list: Vec<Value> = endpoints.iter().map(|e| endpoint_json(e, false)).collect();
    Ok(HttpResponse::Ok().json(json!({ "webhooks": list })))
}

/// `GET …/webhooks/{id}`
pub async fn get(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let merchant = manager(&req, &state).await?;
    let id = parse_id(&id)?;
    let endpoint = state.webhooks.get(id, Some(merchant.store_id)).await?;
    Ok(HttpResponse::Ok().json(endpoint_json(&endpoint, false)))
}

/// `DELETE …/webhooks/{id}` → 204; its deliveries and their log go with it.
pub async fn remove(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let merchant = manager(&req, &state).await?;
    let id = parse_id(&id)?;
    state.webhooks.remove(id, Some(merchant.store_id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn switch(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    on: bool,
) -> Result<HttpResponse, ApiError> {
    let merchant = manager(&req, &state).await?;
    let id = parse_id(&id)?;
    read_limited(&req, payload, MAX_EMPTY_BODY).await?;
    let endpoint = state
        .webhooks
        .set_enabled(id, Some(merchant.store_id), on)
        .await?;
    Ok(HttpResponse::Ok().json(endpoint_json(&endpoint, false)))
}

/// `POST …/webhooks/{id}/enable`: on again; what waits for it is sent at once.
pub async fn enable(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    switch(req, id, payload, state, true).await
}

/// `POST …/webhooks/{id}/disable`
pub async fn disable(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    switch(req, id, payload, state, false).await
}

/// `GET …/webhooks/{id}/deliveries?limit=` → `{"deliveries": [...]}`, newest event first,
/// each with its attempts (time, HTTP status, error, latency) and next try.
pub async fn deliveries(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let merchant = manager(&req, &state).await?;
    let id = parse_id(&id)?;
    let query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("The query string is malformed: {e}."),
                )
            })?;
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("") => DEFAULT_LOG,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=crate::service::webhooks::MAX_LOG).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!(
                        "limit must be a whole number from 1 to {}.",
                        crate::service::webhooks::MAX_LOG
                    ),
                )
            })?,
    };
    let log = state
        .webhooks
        .log(id, Some(merchant.store_id), limit)
        .await?;
    let list: Vec<Value> = log.iter().map(|(d, a)| delivery_json(d, a)).collect();
    Ok(HttpResponse::Ok().json(json!({ "deliveries": list })))
}

/// `POST …/webhooks/{id}/redeliver {"event_id"}` (that event) or `{"since_event_id"}` (it and
/// every later one) → `{"queued": n}`.
pub async fn redeliver(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let merchant = manager(&req, &state).await?;
    let id = parse_id(&id)?;
    let body = read_json(&req, payload, MAX_JSON_BODY).await?;
    let number = |name: &str| -> Result<Option<i64>, ApiError> {
        match &body[name] {
            Value::Null => Ok(None),
            v => v.as_i64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_webhook",
                    format!("{name} must be an event id (a whole number above 0)."),
                )
                .with_field(name, "must be a whole number above 0")
            }),
        }
    };
    let (from, to) = match (number("event_id")?, number("since_event_id")?) {
        (Some(one), None) => (one, Some(one)),
        (None, Some(since)) => (since, None),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_webhook",
                "Give either event_id (that event) or since_event_id (it and every later one).",
            ))
        }
    };
    let queued = state
        .webhooks
        .redeliver(id, Some(merchant.store_id), from, to)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "queued": queued })))
}
