//! The merchant's invoice endpoints and the JSON read of an invoice.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::{merchant_with, presented_merchant, require};
use super::body::{read_json, read_limited, MAX_EMPTY_BODY, MAX_JSON_BODY};
use super::{ApiError, AppState};
use crate::auth::{Scope, DEFAULT_STORE_ID};
use crate::jpp::{InvoiceId, InvoiceStatus, InvoiceView};
use crate::store::ListFilter;
use crate::units::now_ms;

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
    let (store_id, key_id) = match presented_merchant(&req, &state).await? {
        Some(merchant) => {
            require(&merchant, Scope::CreateInvoices)?;
            (merchant.store_id, Some(merchant.key_id))
        }
        None if state.public_invoices => {
            // Keyless creation is the one unauthenticated write here: held to a per-address rate.
            state.public_writes.check(&req)?;
            (DEFAULT_STORE_ID, None)
        }
        None => return Err(ApiError::unauthorized()),
    };
    let body = read_json(&req, payload, MAX_JSON_BODY).await?;
    let invoice = state.invoices.create(&body, store_id, key_id).await?;
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
    let merchant = merchant_with(&req, &state, Scope::ReadInvoices).await?;
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
            store_id: merchant.store_id,
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
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let merchant = merchant_with(&req, &state, Scope::CancelInvoices).await?;
    let id = parse_id(&id)?;
    // Nothing is expected in the body; anything large is refused rather than read.
    read_limited(&req, payload, MAX_EMPTY_BODY).await?;
    let invoice = state.invoices.cancel(id, merchant.store_id).await?;
    Ok(HttpResponse::Ok().json(state.invoices.view(&invoice, now_ms())))
}
