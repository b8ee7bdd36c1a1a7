//! A store's webhook endpoints as the merchant manages them (the API and `cashier webhook`):
//! add (the URL checked, the secret made and shown once), list, remove, turn on or off, read
//! the delivery log, and queue events again. Sending is `notify::webhook`.

use serde_json::{json, Value};

use crate::notify::webhook::{self, sign, Guard, UrlRefused};
use crate::notify::Kind;
use crate::store::webhooks::{self as rows, Attempt, Delivery, Endpoint};
use crate::store::{events, Store, StoreError};
use crate::units::{iso_millis, now_ms};

/// Most endpoints one store may have.
pub const MAX_ENDPOINTS: usize = 10;
/// Most deliveries one log read returns.
pub const MAX_LOG: i64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("there is no webhook endpoint {0} in this store")]
    NotFound(i64),
    #[error(transparent)]
    Url(#[from] UrlRefused),
    #[error("{0}")]
    Kinds(String),
    #[error("this store has {MAX_ENDPOINTS} webhook endpoints already; remove one first")]
    TooMany,
    #[error("{0}")]
    Range(String),
    #[error(transparent)]
    Storage(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct Webhooks {
    store: Store,
    guard: Guard,
}

impl Webhooks {
    pub fn new(store: Store, guard: Guard) -> Webhooks {
        Webhooks { store, guard }
    }

    /// Registers `url` for `kinds` (every kind when empty); the endpoint with its secret, the
    /// one time it is shown.
    pub async fn add(
        &self,
        store_id: i64,
        url: &str,
        kinds: &[String],
    ) -> Result<Endpoint, WebhookError> {
        let kinds = kinds_text(kinds)?;
        let url = self.guard.check(url).await?.to_string();
        let secret = sign::new_secret();
        let now = now_ms();
        self.store
            .write(move |c| {
                if rows::endpoints(c, Some(store_id))?.len() >= MAX_ENDPOINTS {
                    return Ok(None);
                }
                rows::insert_endpoint(c, store_id, &url, &secret, &kinds, now).map(Some)
            })
            .await?
            .ok_or(WebhookError::TooMany)
    }

    /// A store's endpoints (every store's with `None`).
    pub async fn list(&self, store_id: Option<i64>) -> Result<Vec<Endpoint>, WebhookError> {
        Ok(self
            .store
            .read(move |c| rows::endpoints(c, store_id))
            .await?)
    }

    /// One endpoint, if it is the store's (`None`: any store's, as the operator sees them).
    pub async fn get(&self, id: i64, store_id: Option<i64>) -> Result<Endpoint, WebhookError> {
        self.store
            .read(move |c| rows::endpoint(c, id, store_id))
            .await?
            .ok_or(WebhookError::NotFound(id))
    }

    pub async fn remove(&self, id: i64, store_id: Option<i64>) -> Result<(), WebhookError> {
        self.store
            .write(move |c| rows::remove_endpoint(c, id, store_id))
            .await?
            .then_some(())
            .ok_or(WebhookError::NotFound(id))
    }

    /// Turns an endpoint on (what waits for it is sent at once) or off.
    pub async fn set_enabled(
        &self,
        id: i64,
        store_id: Option<i64>,
        enabled: bool,
    ) -> Result<Endpoint, WebhookError> {
        let now = now_ms();
        self.store
            .write(move |c| {
                let reason = (!enabled).then_some("turned off by the merchant");
                if !rows::set_enabled(c, id, store_id, enabled, reason, now)? {
                    return Ok(None);
                }
                rows::endpoint(c, id, store_id)
            })
            .await?
            .ok_or(WebhookError::NotFound(id))
    }

    /// The endpoint's deliveries, newest event first, with every attempt.
    pub async fn log(
        &self,
        id: i64,
        store_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(Delivery, Vec<Attempt>)>, WebhookError> {
        let limit = limit.clamp(1, MAX_LOG);
        self.store
            .read(move |c| {
                if rows::endpoint(c, id, store_id)?.is_none() {
                    return Ok(None);
                }
                rows::log(c, id, limit).map(Some)
            })
            .await?
            .ok_or(WebhookError::NotFound(id))
    }

    /// Sends the endpoint's events `from..=to` again (`to` defaults to the newest): one event
    /// when `to == from`. How many deliveries were queued.
    pub async fn redeliver(
        &self,
        id: i64,
        store_id: Option<i64>,
        from: i64,
        to: Option<i64>,
    ) -> Result<usize, WebhookError> {
        if from < 1 || to.is_some_and(|to| to < from) {
            return Err(WebhookError::Range(
                "give an event id of 1 or more (and an end no lower than the start)".into(),
            ));
        }
        let now = now_ms();
        self.store
            .write(move |c| {
                let Some(endpoint) = rows::endpoint(c, id, store_id)? else {
                    return Ok(None);
                };
                let to = match to {
                    Some(to) => to,
                    None => events::newest_id(c)?,
                };
                webhook::redeliver(c, &endpoint, from, to, now).map(Some)
            })
            .await?
            .ok_or(WebhookError::NotFound(id))
    }
}

/// The kinds as stored: names checked and space-separated, or `*` for all.
fn kinds_text(kinds: &[String]) -> Result<String, WebhookError> {
    let mut names: Vec<&str> = Vec::new();
    for name in kinds
        .iter()
        .flat_map(|k| k.split([',', ' ']))
        .filter(|k| !k.is_empty())
    {
        let kind = Kind::parse(name)
            .filter(|k| *k != Kind::PaymentSent)
            .ok_or_else(|| {
                WebhookError::Kinds(format!(
                    "unknown event kind {name:?}; the kinds are {}",
                    invoice_kinds().join(", ")
                ))
            })?;
        if !names.contains(&kind.as_str()) {
            names.push(kind.as_str());
        }
    }
    Ok(if names.is_empty() {
        "*".into()
    } else {
        names.join(" ")
    })
}

/// The kinds an invoice's events have (what an endpoint may ask for).
fn invoice_kinds() -> Vec<&'static str> {
    Kind::ALL
        .into_iter()
        .filter(|k| *k != Kind::PaymentSent)
        .map(Kind::as_str)
        .collect()
}

/// An endpoint as the API shows it; the secret only when just made.
pub fn endpoint_json(e: &Endpoint, with_secret: bool) -> Value {
    let events: Vec<&str> = if e.kinds == "*" {
        invoice_kinds()
    } else {
        e.kinds.split(' ').collect()
    };
    let mut v = json!({
        "id": e.id,
        "store_id": e.store_id,
        "url": e.url,
        "events": events,
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason,
        "created": iso_millis(e.created_ms),
    });
    if with_secret {
        v["secret"] = json!(e.secret);
    }
    v
}

/// A delivery with its attempts, as the log shows it.
pub fn delivery_json(d: &Delivery, attempts: &[Attempt]) -> Value {
    let last = attempts.last();
    json!({
        "delivery_id": d.id,
        "event_id": d.event_id,
        "kind": d.kind,
        "topic": d.topic,
        "state": d.state,
        "attempts": d.attempts,
        "last_status": last.and_then(|a| a.status),
        "last_error": last.and_then(|a| a.error.clone()),
        "next_try": (d.state == rows::PENDING).then(|| iso_millis(d.next_try_ms)),
        "created": iso_millis(d.created_ms),
        "done": d.done_ms.map(iso_millis),
        "log": attempts.iter().map(|a| json!({
            "at": iso_millis(a.at_ms),
            "status": a.status,
            "error": a.error,
            "latency_ms": a.latency_ms,
        })).collect::<Vec<_>>(),
    })
}
