//! The merchant's invoice endpoints and the JSON read of an invoice.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::merchant_key;
use super::body::{read_json, MAX_JSON_BODY};
use super::{ApiError, AppState};
use crate::jpp::{now_ms, InvoiceId, InvoiceStatus, InvoiceView};
use crate::store::ListFilter;

const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 100;

/// An unknown or malformed id is 404 either way: a wrong id is not a malformed request.
fn parse_id(raw: &str) -> Result<InvoiceId, ApiError> {
    raw.parse()
        .map_err(|()| ApiError::not_found("No invoice with this id exists."))
}

/// `POST /jpp/invoices/`
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key_id = merchant_key(&req, &state, !state.public_invoices).await?;
    let body = read_json(&req, payload, MAX_JSON_BODY).await?;
    let invoice = state.invoices.create(&body, key_id).await?;
    Ok(HttpResponse::Created().json(state.invoices.view(&invoice, now_ms())))
}

#[derive(Serialize)]
struct Page<'a> {
    results: Vec<InvoiceView<'a>>,
    /// Pass as `cursor` to get the next page; null on the last one.
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /jpp/invoices/?status=&limit=&cursor=` (merchant key)
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    merchant_key(&req, &state, true).await?;
    let query = web::Query::<ListQuery>::from_query(req.query_string()).map_err(|e| {
        ApiError::bad_request(
            "invalid_query",
            format!("The query string is malformed: {e}."),
        )
    })?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(InvoiceStatus::parse(s).ok_or_else(|| {
            let names: Vec<&str> = InvoiceStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::bad_request(
                "invalid_query",
                format!("status {s:?} is unknown; use one of {}.", names.join(", ")),
            )
        })?),
    };
    let limit = match query.limit.as_deref() {
        None | Some("") => DEFAULT_PAGE,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("limit must be a whole number from 1 to {MAX_PAGE}."),
                )
            })?,
    };
    let after = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request("invalid_query", "cursor is not one this server handed out; pass the next_cursor of the previous page.")
        })?),
    };
    let page = state
        .invoices
        .list(ListFilter {
            status,
            limit,
            after,
        })
        .await?;
    let now = now_ms();
    Ok(HttpResponse::Ok().json(Page {
        results: page
            .invoices
            .iter()
            .map(|inv| state.invoices.view(inv, now))
            .collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// `POST /jpp/invoices/{id}/cancel/` (merchant key)
pub async fn cancel(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    merchant_key(&req, &state, true).await?;
    let invoice = state.invoices.cancel(parse_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(state.invoices.view(&invoice, now_ms())))
}
