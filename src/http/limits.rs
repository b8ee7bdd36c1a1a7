//! What one client may cost the server: a deadline for sending a whole request, bodies read
//! before any handler runs, and a per-address rate on the writes anyone may make without a key.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, ConnectionType, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

use super::body::{collect, declared_length, too_large};
use super::{ApiError, AppState};

/// The largest body any endpoint takes (a pay request carrying a 100 kB transaction as hex is
/// about 200 kB); each endpoint then applies its own, smaller limit.
pub const MAX_ANY_BODY: usize = 512 * 1024;

/// The address a request came from (behind a reverse proxy, the proxy's).
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// Reads every request body whole, within the request deadline, before the handler runs. A
/// client that trickles its body (one byte every few seconds, to hold a connection and a file
/// descriptor for as long as it likes) gets 408 and the connection is closed; one that sends
/// more than any endpoint takes gets 413 the same way. Handlers then read from memory.
pub async fn read_body_in_time(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let deadline = req
        .app_data::<web::Data<AppState>>()
        .map_or(Duration::from_secs(15), |s| s.request_timeout);
    if has_body(req.request()) {
        if declared_length(req.request()).is_some_and(|n| n > MAX_ANY_BODY) {
            // Refused before a byte of it is read.
            return Ok(refuse_and_close(req, too_large(MAX_ANY_BODY)));
        }
        let payload = req.take_payload();
        match tokio::time::timeout(deadline, collect(payload, MAX_ANY_BODY, 1024)).await {
            Ok(Ok(bytes)) => req.set_payload(Payload::from(bytes)),
            Ok(Err(refusal)) => return Ok(refuse_and_close(req, refusal)),
            Err(_elapsed) => {
                let refusal = ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!(
                        "The request body did not arrive within {} s; send the whole request at once.",
                        deadline.as_secs()
                    ),
                );
                return Ok(refuse_and_close(req, refusal));
            }
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Whether the request announces a body (a length above zero, or chunks).
fn has_body(req: &HttpRequest) -> bool {
    let headers = req.headers();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.to_str().map_or(true, |v| v.trim() != "0"))
}

/// Answers `refusal` and closes the connection: whatever else the client still sends is not
/// read.
fn refuse_and_close<B>(req: ServiceRequest, refusal: ApiError) -> ServiceResponse<EitherBody<B>> {
    let (req, _) = req.into_parts();
    let mut response = HttpResponse::from_error(refusal);
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    ServiceResponse::new(req, response).map_into_right_body()
}

/// How often the limiter forgets addresses that are back under their rate, so a flood from
/// many addresses does not keep memory.
const FORGET_EVERY: u32 = 4096;

/// The per-address rate of writes anyone may make without a key: wallet accounts
/// (`POST /api/v1/account`) and, with `--public-invoices`, invoices.
#[derive(Debug)]
pub struct PublicWrites {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU32,
}

impl PublicWrites {
    /// `per_minute` writes a minute per address, all of which may come at once.
    pub fn per_minute(per_minute: u32) -> PublicWrites {
        let quota =
            Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN));
        PublicWrites {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            checks: AtomicU32::new(0),
        }
    }

    /// Counts one write from the request's address; 429 with `Retry-After` over the rate.
    pub fn check(&self, req: &HttpRequest) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&client_ip(req)).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests of this kind from this address; wait and try again, or use an API key.",
            )
            .retry_after(wait.as_secs().max(1))
        })
    }
}
