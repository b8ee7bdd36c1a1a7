//! HTTP: the route table, extractors and handlers. Handlers translate requests into calls on
//! the areas that hold the logic (`jpp`, `store`) and their results into responses.

mod auth;
mod body;
mod error;
mod health;
mod invoices;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

pub use error::ApiError;

use std::sync::Arc;

use crate::auth::KeyCache;
use crate::jpp::Invoices;
use crate::store::Store;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub invoices: Invoices,
    pub public_invoices: bool,
    /// Merchant keys verified in the last second.
    pub keys: Arc<KeyCache>,
}

/// The whole API on one screen. Paths are matched without their trailing slash (the app trims
/// it first), so `/jpp/invoices/` and `/jpp/invoices` are one route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health));
    for prefix in ["/jpp", "/api/jpp"] {
        cfg.service(
            web::scope(prefix)
                .service(
                    web::resource("/invoices")
                        .post(invoices::create)
                        .get(invoices::list)
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/invoices/{id}/cancel")
                        .post(invoices::cancel)
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource(["/invoices/{id}", "/i/{id}", "/i/bitpay/{id}"])
                        .get(invoices::read)
                        .default_service(web::to(method_not_allowed)),
                ),
        );
    }
    cfg.service(
        web::resource("/i/{id}")
            .get(invoices::read)
            .default_service(web::to(method_not_allowed)),
    );
    cfg.default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    HttpResponse::from_error(ApiError::not_found("There is nothing at this path. The invoice API lives under /jpp/invoices/ and /api/jpp/invoices/."))
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::from_error(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This path does not accept that method.",
    ))
}
