//! Webhooks: the notification core's third consumer. Every committed event of a store's
//! invoices is POSTed to the store's endpoints that want its kind, signed (`sign.rs`); a
//! Lightning invoice created with `webhook` gets the POST LNbits sends when it settles.
//!
//! Durable by construction: the sender keeps its own cursor on the outbox and turns each event
//! into one delivery row per target (`store/webhooks.rs`) before it tries any, so a crash
//! loses nothing and a delivery is never made before its event committed. A delivery is tried
//! until the receiver answers 2xx, with exponential back-off and jitter for more than a day
//! (`--webhook-max-attempts`); deliveries to one target for one invoice go in event order, and
//! a slow or failing target holds up only its own. A delivery that uses up its attempts turns
//! its endpoint off (with a log line) until the merchant turns it on again. With several
//! processes on one PostgreSQL, the one holding an advisory lock sends, so each attempt is
//! made once. Where a webhook may go is `guard.rs`.

pub mod guard;
pub mod sign;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, Notify, Semaphore};

use super::event::lead_with;
use super::{Consumer, Delivered, Kind};
use crate::store::webhooks::{
    self as rows, Attempt, Delivery, NewDelivery, OutboxEvent, Then, PENDING,
};
use crate::store::{events, Store};
use crate::store::{lightning as ln_rows, StoreError};
use crate::supervisor::Stopping;
use crate::units::now_ms;

pub use guard::{Guard, UrlRefused};

/// The advisory lock the sending process holds.
const SENDER_LOCK_KEY: i64 = 0x6361_7368_6965_7203;
/// Most outbox events turned into deliveries per pass.
const FAN_OUT_BATCH: i64 = 500;
/// A missing outbox id this long behind a later committed one is a rolled-back transaction,
/// not one still committing (PostgreSQL hands ids out before commit): the cursor passes it.
const GAP_WAIT_MS: i64 = 30_000;
/// How often a process that does not send asks for the lock again (each ask is a connection of
/// its own, so not too often; a sender that died is replaced within this).
const LEAD_RETRY: Duration = Duration::from_secs(5);
/// Longest time the fan-out keeps a moved cursor in memory only (see `Sender::fan_out`).
const CURSOR_SAVE_EVERY: Duration = Duration::from_secs(1);
/// Longest wait between looks at the deliveries, whatever wakes the sender.
const IDLE_LOOK: Duration = Duration::from_secs(1);
/// Least time between two fan-out passes. Every commit wakes the fan-out, and each pass costs
/// reads; a busy server's events are taken a few milliseconds' worth at a time instead, which
/// a merchant's backend (an HTTP call away) cannot tell.
const FAN_OUT_SPACING: Duration = Duration::from_millis(10);
/// Longest back-off between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3 * 3600);
/// Most bytes of a receiver's answer read (and thrown away): the status is what counts.
const MAX_ANSWER_BYTES: usize = 4096;
/// Longest error text kept in the log.
const MAX_ERROR_LEN: usize = 300;

/// How the sender behaves (`--webhook-*`).
#[derive(Debug, Clone, Copy)]
pub struct WebhookSettings {
    pub guard: Guard,
    /// The whole request, connect to last byte.
    pub timeout: Duration,
    /// Most deliveries in flight at once.
    pub concurrency: usize,
    /// The first back-off; each attempt doubles it, up to three hours.
    pub first_retry: Duration,
    /// Attempts before a delivery is given up and its endpoint turned off.
    pub max_attempts: u32,
}

/// The wait before attempt `attempt + 1`, after `attempt` failed ones: `first × 2^(attempt-1)`,
/// at most [`MAX_BACKOFF`], stretched by a random 0–25 % so receivers that failed together
/// are not all retried in the same second. Never shorter than the schedule, so the attempts
/// span at least the time the schedule says.
pub fn backoff(first: Duration, attempt: u32) -> Duration {
    let doubled = first.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let base = doubled.min(MAX_BACKOFF);
    base.mul_f64(1.0 + rand::random::<f64>() * 0.25)
}

/// The fan-out's place in the outbox: where it has read to, and what is saved.
struct FanOutCursor {
    /// Every event up to here has its deliveries (or made none).
    at: i64,
    /// The cursor as stored; after a crash the fan-out starts from here.
    saved: i64,
    saved_at: Instant,
}

/// Aborts the task when dropped (the fan-out task ends with the sending loop).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wakes the sender when an event commits (in any process: the dispatcher hears them all).
struct Wake(Arc<Notify>);

impl Consumer for Wake {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    fn deliver(&self, _event: &Delivered) {
        self.0.notify_one();
    }
}

/// The webhook sender: a consumer that is woken by commits, and the duty that sends.
#[derive(Clone)]
pub struct Sender {
    store: Store,
    settings: WebhookSettings,
    http: reqwest::Client,
    wake: Arc<Notify>,
    /// Endpoint secrets read so far, by endpoint id.
    secrets: Arc<std::sync::Mutex<HashMap<i64, String>>>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Sender {
    /// `http` is the outbound client builder (TLS set up); the sender adds its own rules: the
    /// guard's resolver, no redirects, no proxy, the timeout.
    pub fn new(
        store: Store,
        settings: WebhookSettings,
        http: reqwest::ClientBuilder,
    ) -> Result<Sender, String> {
        let http = http
            .dns_resolver(settings.guard.resolver())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("Cashier/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the webhook client: {e}"))?;
        Ok(Sender {
            store,
            settings,
            http,
            wake: Arc::new(Notify::new()),
            secrets: Arc::default(),
        })
    }

    /// The consumer to register with the dispatcher.
    pub fn consumer(&self) -> Arc<dyn Consumer> {
        Arc::new(Wake(self.wake.clone()))
    }

    /// The duty: waits to be the sending process, then fans events out and sends deliveries
    /// until `stopping`. Attempts in flight when it stops stay pending and are made again.
    pub async fn run(self, mut stopping: Stopping) -> Result<(), String> {
        let mut lead = loop {
            match self
                .store
                .take_lead(SENDER_LOCK_KEY, "webhook-lock")
                .await?
            {
                Some(lead) => break lead,
                None => {
                    tokio::select! {
                        _ = stopping.stopped() => return Ok(()),
                        _ = tokio::time::sleep(LEAD_RETRY) => {}
                    }
                }
            }
        };
        // Turning events into deliveries runs beside the sending, so a write queued behind the
        // API's never holds up the deliveries already made.
        let fanned = Arc::new(Notify::new());
        let fan_out = AbortOnDrop(tokio::spawn(self.clone().fan_out_loop(fanned.clone())));
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
        let mut busy: HashSet<String> = HashSet::new();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            let next = match self
                .start_due(&permits, &mut busy, &mut tasks, &done_tx)
                .await
            {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: reading the deliveries failed; retrying");
                    None
                }
            };
            let wait = next.map_or(IDLE_LOOK, |at| {
                Duration::from_millis(at.saturating_sub(now_ms()).max(0) as u64).min(IDLE_LOOK)
            });
            tokio::select! {
                _ = stopping.stopped() => break,
                _ = &mut lead.lost => {
                    drop(fan_out);
                    return Err("lost the webhook sender's lock".into());
                }
                _ = fanned.notified() => {}
                Some(id) = done_rx.recv() => {
                    busy.remove(&id);
                    while let Ok(id) = done_rx.try_recv() {
                        busy.remove(&id);
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
            while tasks.try_join_next().is_some() {}
        }
        drop(fan_out);
        Ok(())
    }

    /// Fans out whenever an event commits (and on a timer, should a wake-up be lost); tells
    /// the sending loop when there are new deliveries.
    async fn fan_out_loop(self, fanned: Arc<Notify>) {
        let mut cursor = None;
        loop {
            match self.fan_out(&mut cursor).await {
                Ok((made, more)) => {
                    if made > 0 {
                        fanned.notify_one();
                    }
                    if more {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: reading the outbox failed; retrying");
                }
            }
            tokio::time::sleep(FAN_OUT_SPACING).await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(IDLE_LOOK) => {}
            }
        }
    }

    /// Turns outbox events after the cursor into deliveries, and moves the cursor past every
    /// event looked at with no earlier id still possibly committing. How many deliveries were
    /// made, and whether more events are waiting.
    ///
    /// Events that make no delivery (a server without webhooks: nearly all of them) cost one
    /// read and no write: the cursor moves in memory and is saved at most every
    /// [`CURSOR_SAVE_EVERY`], or with the next deliveries. After a crash the events since the
    /// saved cursor are read again, which is harmless: the inserts skip what exists.
    async fn fan_out(
        &self,
        cursor: &mut Option<FanOutCursor>,
    ) -> Result<(usize, bool), StoreError> {
        let known = cursor.as_ref().map(|c| c.at);
        let now = now_ms();
        let (at, events, new) = self
            .store
            .read(move |c| {
                let at = match known {
                    Some(at) => at,
                    None => rows::cursor(c)?,
                };
                let newest = events::newest_id(c)?;
                if newest <= at {
                    return Ok((at, Vec::new(), Vec::new()));
                }
                let events = rows::events_after(c, at, newest, FAN_OUT_BATCH)?;
                let new = deliveries_for(c, &events, now)?;
                Ok((at, events, new))
            })
            .await?;
        let cursor = cursor.get_or_insert(FanOutCursor {
            at,
            saved: at,
            saved_at: Instant::now(),
        });
        let safe = safe_cursor(at, &events, now);
        // More to read at once only when the cursor moves: behind a gap still young, the same
        // events would be read again and again until it ages.
        let more = events.len() as i64 >= FAN_OUT_BATCH && safe > at;
        cursor.at = cursor.at.max(safe);
        let stale = cursor.at > cursor.saved && cursor.saved_at.elapsed() >= CURSOR_SAVE_EVERY;
        if new.is_empty() && !stale {
            return Ok((0, more));
        }
        let (to, saved) = (cursor.at, cursor.saved);
        let made = self
            .store
            .write(move |c| {
                let made = rows::insert_deliveries(c, new.clone())?;
                if to > saved {
                    rows::set_cursor(c, to)?;
                }
                Ok(made)
            })
            .await?;
        cursor.saved = to;
        cursor.saved_at = Instant::now();
        Ok((made, more))
    }

    /// Starts the due deliveries there is room for; when the next one not started is due.
    async fn start_due(
        &self,
        permits: &Arc<Semaphore>,
        busy: &mut HashSet<String>,
        tasks: &mut tokio::task::JoinSet<()>,
        done: &mpsc::UnboundedSender<String>,
    ) -> Result<Option<i64>, StoreError> {
        let room = permits.available_permits() as i64;
        let now = now_ms();
        let in_flight: Vec<String> = busy.iter().cloned().collect();
        let (due, next) = self
            .store
            .read(move |c| {
                let due = if room > 0 {
                    rows::due(c, now, &in_flight, room)?
                } else {
                    Vec::new()
                };
                Ok((due, rows::next_due_ms(c, now)?))
            })
            .await?;
        for delivery in due {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            busy.insert(delivery.id.clone());
            let sender = self.clone();
            let done = done.clone();
            tasks.spawn(async move {
                let id = delivery.id.clone();
                sender.attempt(delivery, permit).await;
                let _ = done.send(id);
            });
        }
        Ok(next)
    }

    /// One attempt: POST, judge the answer, record it (and what it makes of the delivery).
    /// The permit bounds requests in flight, so it goes as soon as the answer is in: the
    /// record's write may wait behind others.
    async fn attempt(&self, delivery: Delivery, permit: tokio::sync::OwnedSemaphorePermit) {
        let at_ms = now_ms();
        let started = Instant::now();
        // An IP-literal host never reaches the resolver: the guard checks it here. A name is
        // checked by the resolver, on the addresses the connection then uses.
        let form = self.settings.guard.check_form(&delivery.url);
        let posted = match &form {
            Ok(_) => self.post(&delivery).await,
            Err(e) => Err(e.to_string()),
        };
        let (status, error) = match posted {
            Ok(status) => (Some(i32::from(status)), None),
            Err(e) => (None, Some(e)),
        };
        drop(permit);
        let attempt = Attempt {
            at_ms,
            status,
            error,
            latency_ms: started.elapsed().as_millis() as i64,
        };
        let attempts = u32::try_from(delivery.attempts).unwrap_or(0) + 1;
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        // A URL that is not one (a Lightning invoice's `webhook` is not checked when it is
        // given, as in LNbits) will never work: no point trying it for a day.
        let hopeless = form.is_err();
        let then = if delivered {
            Then::Delivered
        } else if hopeless || attempts >= self.settings.max_attempts {
            Then::Failed
        } else {
            Then::RetryAt(
                now_ms() + backoff(self.settings.first_retry, attempts).as_millis() as i64,
            )
        };
        if !delivered {
            tracing::info!(delivery = %delivery.id, event_id = delivery.event_id,
                endpoint = ?delivery.endpoint_id, attempts, status = ?attempt.status,
                error = attempt.error.as_deref().unwrap_or(""), "webhooks: attempt failed");
        }
        let recorded = {
            let id = delivery.id.clone();
            let round = delivery.round;
            let hash = delivery.payment_hash.clone();
            let endpoint = delivery.endpoint_id;
            let event_id = delivery.event_id;
            let attempt = attempt.clone();
            self.store
                .write(move |c| {
                    let moved = rows::record_attempt(c, &id, round, &attempt, then)?;
                    if moved {
                        if let Some(hash) = &hash {
                            let answer = attempt.status.map_or("-1".to_owned(), |s| s.to_string());
                            ln_rows::set_webhook_status(c, hash, &answer)?;
                        }
                        if let (Then::Failed, Some(endpoint)) = (then, endpoint) {
                            let last = match (attempt.status, &attempt.error) {
                                (Some(status), _) => format!("HTTP {status}"),
                                (None, Some(error)) => error.clone(),
                                (None, None) => "no answer".into(),
                            };
                            let reason = format!(
                                "event {event_id} was not delivered after {attempts} attempts \
                                 (last: {last})"
                            );
                            rows::set_enabled(c, endpoint, None, false, Some(&reason), now_ms())?;
                        }
                    }
                    Ok(moved)
                })
                .await
        };
        match recorded {
            Ok(true) if then == Then::Failed => {
                if let Some(endpoint) = delivery.endpoint_id {
                    tracing::warn!(endpoint, event_id = delivery.event_id, attempts,
                        url = %delivery.url,
                        "webhooks: giving up on a delivery; the endpoint is turned off until \
                         `cashier webhook enable` (or POST …/webhooks/{{id}}/enable)");
                } else {
                    tracing::warn!(
                        event_id = delivery.event_id,
                        attempts,
                        "webhooks: giving up on a Lightning invoice's webhook"
                    );
                }
            }
            Ok(_) => {}
            Err(e) => {
                // The delivery stays as it was and is tried again: at least once, not at most.
                tracing::warn!(error = %e, delivery = %delivery.id,
                    "webhooks: recording an attempt failed");
            }
        }
    }

    /// An endpoint's secret. Kept once read: a secret never changes, and a removed endpoint's
    /// deliveries go with it.
    async fn secret_of(&self, endpoint: i64) -> Result<String, String> {
        if let Some(secret) = self
            .secrets
            .lock()
            .ok()
            .and_then(|s| s.get(&endpoint).cloned())
        {
            return Ok(secret);
        }
        let secret = self
            .store
            .read(move |c| rows::endpoint(c, endpoint, None))
            .await
            .map_err(|e| e.to_string())?
            .map(|e| e.secret)
            .ok_or("the endpoint was removed")?;
        if let Ok(mut secrets) = self.secrets.lock() {
            secrets.insert(endpoint, secret.clone());
        }
        Ok(secret)
    }

    /// POSTs the delivery, its URL's form checked already (`attempt`); the HTTP status, or
    /// why there was none.
    async fn post(&self, delivery: &Delivery) -> Result<u16, String> {
        let key = match (&delivery.signing_key, delivery.endpoint_id) {
            (Some(key), _) => key.clone(),
            (None, Some(endpoint)) => self.secret_of(endpoint).await?,
            (None, None) => return Err("nothing to sign with".into()),
        };
        let signature = sign::signature(&key, now_ms() / 1000, delivery.body.as_bytes());
        let mut answer = self
            .http
            .post(&delivery.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(sign::SIGNATURE_HEADER, signature)
            .header(sign::EVENT_ID_HEADER, delivery.event_id.to_string())
            .header(sign::DELIVERY_ID_HEADER, &delivery.id)
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = answer.status().as_u16();
        // Read a little of the answer so the connection can be reused; never more.
        let mut read = 0;
        while read < MAX_ANSWER_BYTES {
            match answer.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        Ok(status)
    }
}

/// An error with its causes, bounded: what the delivery log shows.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if text.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The cursor after `events` (ids above `cursor`, ascending): the highest id up to which
/// every id has been seen, passing a gap only once a later event is [`GAP_WAIT_MS`] old.
fn safe_cursor(cursor: i64, events: &[OutboxEvent], now_ms: i64) -> i64 {
    let mut safe = cursor;
    for event in events {
        if event.id != safe + 1 && now_ms - event.created_ms < GAP_WAIT_MS {
            break;
        }
        safe = event.id;
    }
    safe
}

/// The deliveries `events` make: one per endpoint of the invoice's store that wants the kind
/// (and existed before the event), and one per settled incoming Lightning payment with a
/// `webhook`.
fn deliveries_for(
    c: &mut crate::store::Conn,
    events: &[OutboxEvent],
    now_ms: i64,
) -> Result<Vec<NewDelivery>, StoreError> {
    // An endpoint that is off gets its deliveries too: they wait, and are sent when it is on
    // again, so turning it off loses nothing.
    let endpoints = rows::endpoints(c, None)?;
    let stores = if endpoints.is_empty() {
        HashMap::new()
    } else {
        stores_of(c, events)?
    };
    let mut new = Vec::new();
    for event in events {
        if event.topic.starts_with("invoice:") {
            for endpoint in endpoints
                .iter()
                .filter(|e| e.after_event < event.id && reaches(e, event, &stores))
            {
                new.push(endpoint_delivery(endpoint, event, now_ms));
            }
        } else if event.topic.starts_with("wallet:") && event.kind == Kind::PaymentReceived.as_str()
        {
            if let Some(d) = lightning_delivery(c, event, now_ms)? {
                new.push(d);
            }
        }
    }
    Ok(new)
}

/// The store of each invoice the invoice events among `events` are about, by invoice id.
fn stores_of(
    c: &mut crate::store::Conn,
    events: &[OutboxEvent],
) -> Result<HashMap<String, i64>, StoreError> {
    let invoice_ids: Vec<String> = events
        .iter()
        .filter_map(|e| e.topic.strip_prefix("invoice:").map(str::to_owned))
        .collect();
    rows::stores_of(c, &invoice_ids)
}

/// Whether `event` is for `endpoint`: about an invoice of its store, of a kind it wants.
fn reaches(endpoint: &rows::Endpoint, event: &OutboxEvent, stores: &HashMap<String, i64>) -> bool {
    event
        .topic
        .strip_prefix("invoice:")
        .and_then(|invoice| stores.get(invoice))
        .is_some_and(|&store| store == endpoint.store_id)
        && endpoint.wants(&event.kind)
}

fn new_delivery_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The socket's message with the event, store and delivery ids first.
fn endpoint_delivery(endpoint: &rows::Endpoint, event: &OutboxEvent, now_ms: i64) -> NewDelivery {
    let id = new_delivery_id();
    let fields = format!(
        "\"event_id\":{},\"store_id\":{},\"delivery_id\":\"{id}\"",
        event.id, endpoint.store_id
    );
    NewDelivery {
        target_event: format!("e{}:{}", endpoint.id, event.id),
        endpoint_id: Some(endpoint.id),
        event_id: event.id,
        kind: event.kind.clone(),
        topic: event.topic.clone(),
        url: endpoint.url.clone(),
        body: lead_with(&fields, &event.payload),
        signing_key: None,
        payment_hash: None,
        state: PENDING.into(),
        next_try_ms: now_ms,
        created_ms: now_ms,
        id,
    }
}

/// LNbits' webhook for an incoming payment: the Payment object as LNbits 1.1+ posts it (JSON
/// text encoded once more as a JSON string: `json=payment.json()` in LNbits), signed with the
/// wallet's key in a header LNbits receivers ignore.
fn lightning_delivery(
    c: &mut crate::store::Conn,
    event: &OutboxEvent,
    now_ms: i64,
) -> Result<Option<NewDelivery>, StoreError> {
    let Ok(message) = serde_json::from_str::<Value>(&event.payload) else {
        return Ok(None);
    };
    let payment = &message["payment"];
    let (Some(url), Some(hash)) = (
        payment["webhook"].as_str().filter(|u| !u.is_empty()),
        payment["payment_hash"].as_str(),
    ) else {
        return Ok(None);
    };
    let wallet = event.topic.trim_start_matches("wallet:");
    let Some(key) = rows::wallet_signing_key(c, wallet)? else {
        return Ok(None);
    };
    let body = Value::String(payment.to_string()).to_string();
    Ok(Some(NewDelivery {
        id: new_delivery_id(),
        target_event: format!("ln:{}", event.id),
        endpoint_id: None,
        event_id: event.id,
        kind: event.kind.clone(),
        topic: event.topic.clone(),
        url: url.to_owned(),
        body,
        signing_key: Some(key),
        payment_hash: Some(hash.to_owned()),
        state: PENDING.into(),
        next_try_ms: now_ms,
        created_ms: now_ms,
    }))
}

/// Queues an endpoint's events again (`from..=to` by outbox id), making the deliveries it
/// never had while the events are still in the outbox: `cashier webhook redeliver` and the
/// API. How many deliveries are queued.
pub fn redeliver(
    c: &mut crate::store::Conn,
    endpoint: &rows::Endpoint,
    from: i64,
    to: i64,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let mut after = from.saturating_sub(1);
    loop {
        let events = rows::events_after(c, after, to, FAN_OUT_BATCH)?;
        let Some(last) = events.last().map(|e| e.id) else {
            break;
        };
        let stores = stores_of(c, &events)?;
        let new = events
            .iter()
            .filter(|e| reaches(endpoint, e, &stores))
            .map(|e| endpoint_delivery(endpoint, e, now_ms))
            .collect();
        rows::insert_deliveries(c, new)?;
        after = last;
    }
    rows::requeue(c, endpoint.id, from, to, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, created_ms: i64) -> OutboxEvent {
        OutboxEvent {
            id,
            topic: "invoice:x".into(),
            kind: "payment_received".into(),
            payload: "{}".into(),
            created_ms,
        }
    }

    #[test]
    fn the_cursor_waits_at_a_young_gap_and_passes_an_old_one() {
        let now = 100_000;
        let young = [event(11, now - 10), event(13, now - 10)];
        assert_eq!(safe_cursor(10, &young, now), 11);
        let old = [
            event(11, now - 40_000),
            event(13, now - 40_000),
            event(14, now),
        ];
        assert_eq!(safe_cursor(10, &old, now), 14);
        assert_eq!(safe_cursor(10, &[], now), 10);
        // A gap right after the cursor holds it where it is.
        assert_eq!(safe_cursor(10, &[event(12, now)], now), 10);
    }

    #[test]
    fn the_back_off_doubles_to_a_cap_and_the_attempts_span_more_than_a_day() {
        let first = Duration::from_secs(10);
        for attempt in 1..30 {
            let d = backoff(first, attempt);
            let base = first
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(MAX_BACKOFF);
            assert!(d >= base && d <= base.mul_f64(1.25), "{attempt}: {d:?}");
        }
        // The default schedule: 20 attempts, 19 waits, at least a day from first to last.
        let span: Duration = (1..20).map(|a| backoff(first, a)).sum();
        assert!(span >= Duration::from_secs(24 * 3600), "{span:?}");
    }
}
