//! `/ws/jpp/invoice/{id}/`: the read-only socket a checkout page watches.
//!
//! On connect it sends what the page missed (the invoice's terminal event, or every event after
//! `?since=<event_id>`, or a snapshot with `?snapshot=1`), then every new event of the invoice.
//! What the client sends is never relayed or acted on; pings are answered; a client that falls
//! too far behind is closed (1013) so it never slows the others.

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Item, Message, Session};
use bytestring::ByteString;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use crate::jpp::{InvoiceId, InvoiceStatus, InvoiceView};
use crate::notify::message;
use crate::notify::Slot;
use crate::store::events;
use crate::units::now_ms;

/// Largest message a client may send, in one frame or spread over continuation frames;
/// anything bigger closes the socket.
const MAX_INBOUND_MESSAGE: usize = 4 * 1024;
/// Most frames one message may be split into: empty continuation frames cost nothing to send
/// and would otherwise never end.
const MAX_CONTINUATIONS: usize = 64;
/// A message that cannot be handed to a peer within this time means the peer stopped reading:
/// its socket is dropped rather than held open.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Options {
    since: Option<i64>,
    snapshot: bool,
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

/// What a socket is subscribed to, and what it is sent before live events.
struct Subscription {
    live: tokio::sync::broadcast::Receiver<ByteString>,
    first: Vec<ByteString>,
    caught_up_to: i64,
}

impl Subscription {
    /// Subscribes to `topic`, then reads what the client missed: every event after `since`,
    /// or with `latest_only` the newest one. Subscribing first means nothing falls between.
    async fn new(state: &AppState, topic: String, since: Option<i64>, latest_only: bool) -> Self {
        let live = state.dispatcher.hub().subscribe(&topic);
        let mut sub = Subscription {
            live,
            first: Vec::new(),
            caught_up_to: 0,
        };
        if since.is_none() && !latest_only {
            return sub;
        }
        let after = since.unwrap_or(0);
        let past = state
            .store
            .read(move |c| events::for_topic_after(c, &topic, after))
            .await
            .unwrap_or_default();
        let wanted = if since.is_some() {
            &past[..]
        } else {
            &past[past.len().saturating_sub(1)..]
        };
        for (event_id, _, payload) in wanted {
            sub.caught_up_to = sub.caught_up_to.max(*event_id);
            sub.first.extend(message(*event_id, payload));
        }
        sub
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
    let stream = stream.max_frame_size(MAX_INBOUND_MESSAGE);
    let Some(sub) = subscription else {
        actix_web::rt::spawn(close(session, CloseCode::Policy, "unknown id"));
        return Ok(response);
    };
    let ping_every = state.ping_every;
    actix_web::rt::spawn(async move {
        serve(
            session,
            stream,
            sub.live,
            sub.first,
            sub.caught_up_to,
            ping_every,
        )
        .await;
        drop(slot);
    });
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
    let mut sub =
        Subscription::new(&state, format!("invoice:{}", invoice.id), o.since, terminal).await;
    if o.snapshot {
        let view = InvoiceView::new(
            &invoice,
            state.invoices.network(),
            state.invoices.public_url(),
            now_ms(),
        );
        sub.first.insert(
            0,
            ByteString::from(
                json!({"type": "invoice_state", "invoice": view.public()}).to_string(),
            ),
        );
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
            let since = options(req.query_string()).since;
            Some(
                Subscription::new(&state, crate::lightning::wallet_topic(&w.id), since, false)
                    .await,
            )
        }
        None => None,
    };
    open(&req, body, &state, slot, sub)
}

/// The socket's life: catch-up first, then events, pings, and nothing the client says.
async fn serve(
    mut session: Session,
    mut stream: actix_ws::MessageStream,
    mut live: tokio::sync::broadcast::Receiver<ByteString>,
    first: Vec<ByteString>,
    mut caught_up_to: i64,
    ping_every: Duration,
) {
    // A peer that answered none of the last two pings (and said nothing else) is gone.
    let silent_peer = ping_every * 5 / 2;
    for m in first {
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
                Some(Ok(Message::Continuation(item))) => {
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
                Some(Ok(Message::Ping(bytes))) => {
                    heard = Instant::now();
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None => {
                    let _ = session.close(None).await;
                    return;
                }
                // Text, binary, pongs: proof of life, never relayed or acted on.
                Some(Ok(_)) => heard = Instant::now(),
                Some(Err(_)) => {
                    close(session, CloseCode::Size, "messages are limited to 4 KiB").await;
                    return;
                }
            },
            event = live.recv() => match event {
                Ok(bytes) => {
                    if caught_up_to > 0 {
                        // Already sent during the catch-up?
                        if event_id(&bytes).is_some_and(|id| id <= caught_up_to) {
                            continue;
                        }
                        caught_up_to = 0;
                    }
                    if !send(&mut session, bytes).await {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    close(session, CloseCode::Again, "too slow: reconnect with ?since=<last event_id>").await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
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
async fn send(session: &mut Session, message: ByteString) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, session.text(message)).await,
        Ok(Ok(()))
    )
}

fn event_id(bytes: &str) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Id {
        event_id: i64,
    }
    serde_json::from_str::<Id>(bytes).ok().map(|i| i.event_id)
}

async fn close(session: Session, code: CloseCode, why: &str) {
    let _ = session
        .close(Some(CloseReason {
            code,
            description: Some(why.to_owned()),
        }))
        .await;
}
