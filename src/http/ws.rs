//! `/ws/jpp/invoice/{id}/`: the read-only socket a checkout page watches.
//!
//! On connect it sends what the page missed (the invoice's terminal event, or every event after
//! `?since=<event_id>`, or a snapshot with `?snapshot=1`), then every new event of the invoice.
//! What the client sends is never relayed or acted on; pings are answered; a client that falls
//! too far behind is closed (1013) so it never slows the others.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Item, Message as Frame, Session};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use crate::jpp::{InvoiceId, InvoiceStatus, InvoiceView};
use crate::notify::{Message, Replay, Slot, Subscription, Topic};
use crate::supervisor::Stopping;
use crate::units::now_ms;

/// Largest message a client may send, in one frame or spread over continuation frames;
/// anything bigger closes the socket.
const MAX_INBOUND_MESSAGE: usize = 4 * 1024;
/// Most frames one message may be split into: empty continuation frames cost nothing to send
/// and would otherwise never end.
const MAX_CONTINUATIONS: usize = 64;
/// A message (or close frame) that cannot be handed to a peer within this time means the peer
/// stopped reading: its socket is dropped rather than held open. Its connection, whose buffers
/// are full, is then ended by the kernel (`STALLED_PEER` in app.rs): actix itself would keep
/// it open for as long as the peer acknowledges without reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Options {
    since: Option<i64>,
    snapshot: bool,
}

impl Options {
    /// What to replay: everything after `since`, else `otherwise`.
    fn replay(&self, otherwise: Replay) -> Replay {
        self.since.map_or(otherwise, Replay::Since)
    }
}

fn options(query: &str) -> Options {
    let mut o = Options::default();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("since", v)) => o.since = v.parse().ok().filter(|n: &i64| *n >= 0),
            Some(("snapshot", v)) => o.snapshot = matches!(v, "1" | "true"),
            _ => {}
        }
    }
    o
}

/// A socket's place under the per-address and total caps, if both have one left.
fn slot(req: &HttpRequest, state: &AppState) -> Option<Slot> {
    state.sockets.acquire(super::limits::client_ip(req))
}

fn too_many_sockets() -> HttpResponse {
    HttpResponse::TooManyRequests()
        .insert_header(("Retry-After", "5"))
        .json(json!({
            "code": "too_many_sockets",
            "detail": "Too many sockets are open (from this address, or on this server); close some or retry later.",
        }))
}

/// The socket's response body, which actix drives until the connection is gone, holding the
/// socket's place under the caps. When the server stops serving a socket whose peer stopped
/// reading, its connection stays open (actix no longer polls the body while its write buffer
/// is full, so neither the dropped session nor anything else ends it) until the kernel gives
/// up: the place is freed then, not before, or one address could hold any number of them.
struct Held {
    body: BoxBody,
    _slot: Slot,
}

impl MessageBody for Held {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// Completes the handshake and serves the subscription; `None` (an unknown id or key) is
/// closed at once with 1008, the same answer whatever was wrong.
fn open(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
    slot: Slot,
    subscription: Option<Subscription>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, session, stream) = actix_ws::handle(req, body)?;
    let response = response
        .map_body(|_, body| Held { body, _slot: slot })
        .map_into_boxed_body();
    let stream = stream.max_frame_size(MAX_INBOUND_MESSAGE);
    let Some(sub) = subscription else {
        actix_web::rt::spawn(close(session, CloseCode::Policy, "unknown id"));
        return Ok(response);
    };
    let (ping_every, stopping) = (state.ping_every, state.stopping.clone());
    actix_web::rt::spawn(serve(session, stream, sub, ping_every, stopping));
    Ok(response)
}

/// `/ws/jpp/invoice/{id}/`: a checkout page's socket.
pub async fn invoice(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let Some(slot) = slot(&req, &state) else {
        return Ok(too_many_sockets());
    };
    let invoice = match id.parse::<InvoiceId>() {
        Ok(id) => state.invoices.get(id).await.ok(),
        Err(()) => None,
    };
    let Some(invoice) = invoice else {
        return open(&req, body, &state, slot, None);
    };
    let o = options(req.query_string());
    let terminal = matches!(
        invoice.status_at(now_ms()),
        InvoiceStatus::Paid
            | InvoiceStatus::Confirmed
            | InvoiceStatus::Invalid
            | InvoiceStatus::Expired
            | InvoiceStatus::Cancelled
    );
    // Without `since`, a finished invoice's latest event: the page needs the outcome.
    let replay = o.replay(if terminal {
        Replay::Latest
    } else {
        Replay::Nothing
    });
    let mut sub = state
        .dispatcher
        .subscribe(Topic::Invoice(invoice.id), replay)
        .await;
    if o.snapshot {
        let view = InvoiceView::new(
            &invoice,
            state.invoices.network(),
            state.invoices.public_url(),
            now_ms(),
        );
        sub.lead_with(Message::invoice_state(view));
    }
    open(&req, body, &state, slot, Some(sub))
}

/// `/api/v1/ws/{wallet id | inkey | adminkey}`: a Lightning wallet's socket, one frame per
/// settled payment (`?since=<event_id>` replays what was missed).
pub async fn wallet(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let Some(slot) = slot(&req, &state) else {
        return Ok(too_many_sockets());
    };
    let wallet = state.lightning.wallet_for_socket(&id).await.ok().flatten();
    let sub = match wallet {
        Some(w) => {
            let replay = options(req.query_string()).replay(Replay::Nothing);
            Some(
                state
                    .dispatcher
                    .subscribe(Topic::Wallet(w.id), replay)
                    .await,
            )
        }
        None => None,
    };
    open(&req, body, &state, slot, sub)
}

/// The socket's life: catch-up first, then events, pings, and nothing the client says, until
/// the peer leaves or the server shuts down (1001, "going away").
async fn serve(
    mut session: Session,
    mut stream: actix_ws::MessageStream,
    mut sub: Subscription,
    ping_every: Duration,
    mut stopping: Stopping,
) {
    // A peer that answered none of the last two pings (and said nothing else) is gone.
    let silent_peer = ping_every * 5 / 2;
    for m in std::mem::take(&mut sub.first) {
        if !send(&mut session, m).await {
            return;
        }
    }
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut heard = Instant::now();
    // The message being received in pieces: its bytes and frames so far.
    let (mut pieces_len, mut pieces) = (0usize, 0usize);
    loop {
        tokio::select! {
            inbound = stream.recv() => match inbound {
                Some(Ok(Frame::Continuation(item))) => {
                    heard = Instant::now();
                    let (bytes, last) = match item {
                        Item::FirstText(b) | Item::FirstBinary(b) => {
                            (pieces_len, pieces) = (0, 0);
                            (b, false)
                        }
                        Item::Continue(b) => (b, false),
                        Item::Last(b) => (b, true),
                    };
                    pieces_len += bytes.len();
                    pieces += 1;
                    if pieces_len > MAX_INBOUND_MESSAGE || pieces > MAX_CONTINUATIONS {
                        close(session, CloseCode::Size, "messages are limited to 4 KiB").await;
                        return;
                    }
                    if last {
                        (pieces_len, pieces) = (0, 0);
                    }
                }
                Some(Ok(Frame::Ping(bytes))) => {
                    heard = Instant::now();
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Frame::Close(_))) | None => {
                    let _ = tokio::time::timeout(SEND_TIMEOUT, session.close(None)).await;
                    return;
                }
                // Text, binary, pongs: proof of life, never relayed or acted on.
                Some(Ok(_)) => heard = Instant::now(),
                Some(Err(_)) => {
                    close(session, CloseCode::Size, "messages are limited to 4 KiB").await;
                    return;
                }
            },
            event = sub.live.recv() => match event {
                Ok(message) => {
                    if !sub.is_new(&message) {
                        continue;
                    }
                    if !send(&mut session, message).await {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    close(session, CloseCode::Again, "too slow: reconnect with ?since=<last event_id>").await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            _ = stopping.stopped() => {
                close(session, CloseCode::Away, "the server is shutting down").await;
                return;
            }
            _ = ping.tick() => {
                if heard.elapsed() > silent_peer {
                    close(session, CloseCode::Away, "no answer to pings").await;
                    return;
                }
                if session.ping(b"").await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Sends one message; false when the peer is gone or stopped reading (then the socket is
/// dropped, which closes the connection).
async fn send(session: &mut Session, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, session.text(message.text)).await,
        Ok(Ok(()))
    )
}

/// Sends a close frame, waiting no longer than for a message: a peer that stopped reading
/// must not hold this task. The server waits for no answer: actix ends the connection once the
/// frame is written.
async fn close(session: Session, code: CloseCode, why: &str) {
    let reason = CloseReason {
        code,
        description: Some(why.to_owned()),
    };
    let _ = tokio::time::timeout(SEND_TIMEOUT, session.close(Some(reason))).await;
}
