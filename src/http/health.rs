use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// `GET /health`: 200 when the database answers, 503 when it does not.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let database = state.store.backend().as_str();
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ok", "database": database})),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(json!({"status": "unavailable", "database": database,
                             "detail": "The database does not answer."}))
        }
    }
}
