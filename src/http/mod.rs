//! HTTP: the route table, extractors and handlers. Handlers translate requests into calls on
//! the service layer (`service`) and the domain's views, and their results into responses.

mod auth;
mod body;
mod checkout;
mod dev;
mod error;
mod health;
mod invoices;
mod lightning;
pub mod limits;
mod pay;
mod payment_url;
mod webhooks;
mod ws;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

pub use error::ApiError;

use std::sync::Arc;

use crate::auth::KeyCache;
use crate::notify::{ConnectionLimit, Dispatcher};
use crate::service::{Invoices, Lightning, Payments, Webhooks};
use crate::store::Store;
use crate::supervisor::Stopping;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub invoices: Invoices,
    pub payments: Payments,
    pub dispatcher: Dispatcher,
    /// Open sockets per client address.
    pub sockets: Arc<ConnectionLimit>,
    pub lightning: Lightning,
    /// The stores' webhook endpoints.
    pub webhooks: Webhooks,
    /// Whether `POST /api/v1/account` may create wallets.
    pub public_accounts: bool,
    /// Signs the BitPay dialects' answers, when configured.
    pub signer: Option<Arc<crate::jpp::signing::Signer>>,
    /// How often each socket is pinged.
    pub ping_every: std::time::Duration,
    pub public_invoices: bool,
    /// Merchant keys verified in the last second.
    pub keys: Arc<KeyCache>,
    /// How long a client has to send a request's body.
    pub request_timeout: std::time::Duration,
    /// The per-address rate of keyless writes.
    pub public_writes: Arc<limits::PublicWrites>,
    /// The checkout page's CSP `frame-ancestors`.
    pub frame_ancestors: String,
    /// Tells open sockets the server is shutting down, so they close with 1001.
    pub stopping: Stopping,
}

/// The whole API on one screen. Paths are matched without their trailing slash (the app trims
/// it first), so `/jpp/invoices/` and `/jpp/invoices` are one route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/health").get(health::health));
    for prefix in ["/jpp", "/api/jpp"] {
        cfg.service(
            web::scope(prefix)
                .service(at("/invoices").post(invoices::create).get(invoices::list))
                .service(at("/invoices/{id}/cancel").post(invoices::cancel))
                .service(at("/invoices/{id}/verify").post(pay::verify))
                .service(at("/invoices/{id}/pay").post(pay::pay))
                // A store's webhooks (merchant key with webhooks:manage).
                .service(at("/webhooks").post(webhooks::add).get(webhooks::list))
                .service(
                    at("/webhooks/{id}")
                        .get(webhooks::get)
                        .delete(webhooks::remove),
                )
                .service(at("/webhooks/{id}/enable").post(webhooks::enable))
                .service(at("/webhooks/{id}/disable").post(webhooks::disable))
                .service(at("/webhooks/{id}/deliveries").get(webhooks::deliveries))
                .service(at("/webhooks/{id}/redeliver").post(webhooks::redeliver))
                // Every alias of the payment URL watchtower and wallets use.
                .service(payment_url("/invoices/{id}"))
                .service(payment_url("/i/{id}"))
                .service(payment_url("/i/bitpay/{id}")),
        );
    }
    cfg.service(payment_url("/i/{id}"));
    cfg.route(
        "/signingKeys/paymentProtocol.json",
        web::get().to(payment_url::signing_keys),
    );
    // The checkout page's socket (read-only).
    cfg.service(at("/ws/jpp/invoice/{id}").get(ws::invoice));
    cfg.service(at("/api/ws/jpp/invoice/{id}").get(ws::invoice));
    // The Lightning wallets, as LNbits' clients call them.
    cfg.service(at("/api/v1/wallet").get(lightning::get_wallet));
    cfg.service(at("/api/v1/account").post(lightning::create_account));
    cfg.service(
        at("/api/v1/payments")
            .post(lightning::create_payment)
            .get(lightning::list_payments),
    );
    cfg.service(at("/api/v1/payments/decode").post(lightning::decode));
    cfg.service(at("/api/v1/payments/{id}").get(lightning::get_payment));
    cfg.service(
        at("/api/v1/ws/{id}")
            .get(ws::wallet)
            .post(lightning::push_in_query),
    );
    cfg.service(at("/api/v1/ws/{id}/{data}").get(lightning::push_in_path));
    // The dev chain's faucet and miner (404 unless the node is the dev chain).
    cfg.service(at("/dev/faucet").post(dev::faucet));
    cfg.service(at("/dev/mine").post(dev::mine));
    // Rehearsals of the bad days: a double spend, a reorg.
    cfg.service(at("/dev/double-spend").post(dev::double_spend));
    cfg.service(at("/dev/reorg").post(dev::reorg));
    // A transaction outside any invoice: a wallet paying an address directly.
    cfg.service(at("/dev/broadcast").post(dev::broadcast));
    cfg.default_service(web::to(not_found));
}

/// The payment URL and its aliases: every wallet dialect, negotiated.
fn payment_url(path: &str) -> actix_web::Resource {
    at(path).get(payment_url::get).post(payment_url::post)
}

/// A resource that answers 405 (in our JSON) to methods it does not route.
fn at(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn not_found() -> HttpResponse {
    HttpResponse::from_error(ApiError::not_found("There is nothing at this path. The invoice API lives under /jpp/invoices/ and /api/jpp/invoices/."))
}

async fn method_not_allowed(req: actix_web::HttpRequest) -> HttpResponse {
    if req.method() == actix_web::http::Method::OPTIONS {
        // A CORS preflight: the allowed methods and headers are on every response.
        return HttpResponse::NoContent().finish();
    }
    HttpResponse::from_error(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This path does not accept that method.",
    ))
}
