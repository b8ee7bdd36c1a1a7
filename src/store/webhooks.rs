//! The webhook tables: a store's endpoints, one delivery per event and target with its log of
//! attempts, and how far the sender has read the outbox.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::Bool;

use super::schema::{
    events, invoices, wallets, webhook_attempts, webhook_cursor, webhook_deliveries,
    webhook_endpoints,
};
use super::{Conn, StoreError};

pub const PENDING: &str = "pending";
/// Deliveries inserted per statement on PostgreSQL (14 values each).
const INSERT_CHUNK: usize = 64;
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints)]
pub struct Endpoint {
    pub id: i64,
    pub store_id: i64,
    pub url: String,
    pub secret: String,
    pub kinds: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub after_event: i64,
    pub created_ms: i64,
}

impl Endpoint {
    /// Whether it asked for events of this kind.
    pub fn wants(&self, kind: &str) -> bool {
        self.kinds == "*" || self.kinds.split(' ').any(|k| k == kind)
    }
}

pub fn insert_endpoint(
    conn: &mut Conn,
    store_id: i64,
    url: &str,
    secret: &str,
    kinds: &str,
    now_ms: i64,
) -> Result<Endpoint, StoreError> {
    let after = super::events::newest_id(conn)?;
    let id: i64 = diesel::insert_into(webhook_endpoints::table)
        .values((
            webhook_endpoints::store_id.eq(store_id),
            webhook_endpoints::url.eq(url),
            webhook_endpoints::secret.eq(secret),
            webhook_endpoints::kinds.eq(kinds),
            webhook_endpoints::enabled.eq(true),
            webhook_endpoints::after_event.eq(after),
            webhook_endpoints::created_ms.eq(now_ms),
        ))
        .returning(webhook_endpoints::id)
        .get_result(conn)?;
    endpoint(conn, id, None)?.ok_or_else(|| StoreError::Corrupt("a new endpoint vanished".into()))
}

/// A store's endpoints (every store's with `None`), oldest first.
pub fn endpoints(conn: &mut Conn, store_id: Option<i64>) -> Result<Vec<Endpoint>, StoreError> {
    endpoints_where(conn, None, store_id)
}

/// The endpoint, if it exists and (with `Some`) belongs to that store.
pub fn endpoint(
    conn: &mut Conn,
    id: i64,
    store_id: Option<i64>,
) -> Result<Option<Endpoint>, StoreError> {
    Ok(endpoints_where(conn, Some(id), store_id)?
        .into_iter()
        .next())
}

fn endpoints_where(
    conn: &mut Conn,
    id: Option<i64>,
    store_id: Option<i64>,
) -> Result<Vec<Endpoint>, StoreError> {
    let mut q = webhook_endpoints::table
        .select(Endpoint::as_select())
        .order(webhook_endpoints::id)
        .into_boxed();
    if let Some(id) = id {
        q = q.filter(webhook_endpoints::id.eq(id));
    }
    if let Some(store) = store_id {
        q = q.filter(webhook_endpoints::store_id.eq(store));
    }
    Ok(q.load(conn)?)
}

/// Removes an endpoint with its deliveries and their log; whether there was one.
pub fn remove_endpoint(
    conn: &mut Conn,
    id: i64,
    store_id: Option<i64>,
) -> Result<bool, StoreError> {
    if endpoint(conn, id, store_id)?.is_none() {
        return Ok(false);
    }
    let deliveries = webhook_deliveries::table
        .filter(webhook_deliveries::endpoint_id.eq(id))
        .select(webhook_deliveries::id);
    diesel::delete(
        webhook_attempts::table.filter(webhook_attempts::delivery_id.eq_any(deliveries)),
    )
    .execute(conn)?;
    diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::endpoint_id.eq(id)))
        .execute(conn)?;
    diesel::delete(webhook_endpoints::table.filter(webhook_endpoints::id.eq(id))).execute(conn)?;
    Ok(true)
}

/// Turns an endpoint on (its waiting deliveries are due at once) or off (with the reason);
/// whether the endpoint exists.
pub fn set_enabled(
    conn: &mut Conn,
    id: i64,
    store_id: Option<i64>,
    enabled: bool,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    if endpoint(conn, id, store_id)?.is_none() {
        return Ok(false);
    }
    diesel::update(webhook_endpoints::table.filter(webhook_endpoints::id.eq(id)))
        .set((
            webhook_endpoints::enabled.eq(enabled),
            webhook_endpoints::disabled_reason.eq(if enabled { None } else { reason }),
        ))
        .execute(conn)?;
    if enabled {
        diesel::update(
            webhook_deliveries::table
                .filter(webhook_deliveries::endpoint_id.eq(id))
                .filter(webhook_deliveries::state.eq(PENDING)),
        )
        .set(webhook_deliveries::next_try_ms.eq(now_ms))
        .execute(conn)?;
    }
    Ok(true)
}

/// An outbox row as the fan-out reads it.
#[derive(Debug, Clone, Queryable)]
pub struct OutboxEvent {
    pub id: i64,
    pub topic: String,
    pub kind: String,
    pub payload: String,
    pub created_ms: i64,
}

/// Outbox events with ids in `(after, up_to]`, oldest first, at most `limit`.
pub fn events_after(
    conn: &mut Conn,
    after: i64,
    up_to: i64,
    limit: i64,
) -> Result<Vec<OutboxEvent>, StoreError> {
    Ok(events::table
        .filter(events::id.gt(after))
        .filter(events::id.le(up_to))
        .order(events::id)
        .limit(limit)
        .select((
            events::id,
            events::topic,
            events::kind,
            events::payload,
            events::created_ms,
        ))
        .load(conn)?)
}

pub fn cursor(conn: &mut Conn) -> Result<i64, StoreError> {
    Ok(webhook_cursor::table
        .filter(webhook_cursor::id.eq(1))
        .select(webhook_cursor::event_id)
        .first::<i64>(conn)
        .optional()?
        .unwrap_or(0))
}

pub fn set_cursor(conn: &mut Conn, event_id: i64) -> Result<(), StoreError> {
    diesel::update(webhook_cursor::table.filter(webhook_cursor::id.eq(1)))
        .set(webhook_cursor::event_id.eq(event_id))
        .execute(conn)?;
    Ok(())
}

/// The store of each invoice id given that exists.
pub fn stores_of(conn: &mut Conn, ids: &[String]) -> Result<HashMap<String, i64>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(invoices::table
        .filter(invoices::id.eq_any(ids))
        .select((invoices::id, invoices::store_id))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect())
}

/// The key a Lightning invoice's webhook is signed with: the hex SHA-256 of its wallet's
/// invoice key (what the server keeps; the wallet's owner can compute it from the key).
pub fn wallet_signing_key(conn: &mut Conn, wallet_id: &str) -> Result<Option<String>, StoreError> {
    Ok(wallets::table
        .filter(wallets::id.eq(wallet_id))
        .select(wallets::inkey_hash)
        .first::<Vec<u8>>(conn)
        .optional()?
        .map(hex::encode))
}

/// A delivery to be made.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct NewDelivery {
    pub id: String,
    pub target_event: String,
    pub endpoint_id: Option<i64>,
    pub event_id: i64,
    pub kind: String,
    pub topic: String,
    pub url: String,
    pub body: String,
    pub signing_key: Option<String>,
    pub payment_hash: Option<String>,
    pub state: String,
    pub next_try_ms: i64,
    pub created_ms: i64,
}

/// Inserts the deliveries not made yet (by `target_event`); how many were new.
pub fn insert_deliveries(conn: &mut Conn, new: Vec<NewDelivery>) -> Result<usize, StoreError> {
    if new.is_empty() {
        return Ok(0);
    }
    let keys: Vec<&str> = new.iter().map(|d| d.target_event.as_str()).collect();
    let existing: std::collections::HashSet<String> = webhook_deliveries::table
        .filter(webhook_deliveries::target_event.eq_any(&keys))
        .select(webhook_deliveries::target_event)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let fresh: Vec<NewDelivery> = new
        .into_iter()
        .filter(|d| !existing.contains(&d.target_event))
        .collect();
    if fresh.is_empty() {
        return Ok(0);
    }
    let n = fresh.len();
    match conn {
        // Many rows a statement: one round trip for each chunk.
        Conn::Postgres(pg) => {
            for chunk in fresh.chunks(INSERT_CHUNK) {
                diesel::insert_into(webhook_deliveries::table)
                    .values(chunk)
                    .execute(pg)?;
            }
        }
        // In-process: a statement per row costs no round trip.
        Conn::Sqlite(_) => {
            for d in &fresh {
                diesel::insert_into(webhook_deliveries::table)
                    .values(d)
                    .execute(conn)?;
            }
        }
    }
    Ok(n)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: Option<i64>,
    pub event_id: i64,
    pub kind: String,
    pub topic: String,
    pub url: String,
    pub body: String,
    pub signing_key: Option<String>,
    pub payment_hash: Option<String>,
    pub state: String,
    pub attempts: i32,
    /// Which redelivery this is (0 before any): an attempt's outcome counts only in its round.
    pub round: i32,
    pub next_try_ms: i64,
    pub created_ms: i64,
    pub done_ms: Option<i64>,
}

/// `state = 'pending'` written as a literal: SQLite uses a partial index only when the query
/// names its condition as the index does, never through a bound parameter.
fn pending() -> diesel::expression::SqlLiteral<Bool> {
    diesel::dsl::sql::<Bool>("webhook_deliveries.state = 'pending'")
}

/// Not a delivery to an endpoint that is off. Written as a lookup by the endpoint's id, so
/// both databases drive the query from the pending deliveries' index, never from all of an
/// endpoint's deliveries (an `IN` list there makes SQLite read the endpoint's whole history).
fn target_enabled() -> diesel::expression::SqlLiteral<Bool> {
    diesel::dsl::sql::<Bool>(
        "NOT EXISTS (SELECT 1 FROM webhook_endpoints off \
         WHERE off.id = webhook_deliveries.endpoint_id AND NOT off.enabled)",
    )
}

/// Deliveries due at `now_ms`, soonest first, at most `limit`, leaving out `busy` (in flight)
/// and any with an earlier undelivered event for the same target and topic (per-invoice
/// order), and those of disabled endpoints.
pub fn due(
    conn: &mut Conn,
    now_ms: i64,
    busy: &[String],
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    Ok(webhook_deliveries::table
        .filter(pending())
        .filter(webhook_deliveries::next_try_ms.le(now_ms))
        .filter(webhook_deliveries::id.ne_all(busy))
        .filter(target_enabled())
        .filter(diesel::dsl::sql::<Bool>(
            "NOT EXISTS (SELECT 1 FROM webhook_deliveries earlier \
             WHERE earlier.topic = webhook_deliveries.topic \
             AND earlier.event_id < webhook_deliveries.event_id \
             AND earlier.state = 'pending' \
             AND COALESCE(earlier.endpoint_id, 0) = COALESCE(webhook_deliveries.endpoint_id, 0))",
        ))
        .order(webhook_deliveries::next_try_ms)
        .limit(limit)
        .select(Delivery::as_select())
        .load(conn)?)
}

/// When the next pending delivery of an enabled target falls due after `now_ms`, if any.
/// (Those due already are started, or wait for one in flight, whose end wakes the sender.)
pub fn next_due_ms(conn: &mut Conn, now_ms: i64) -> Result<Option<i64>, StoreError> {
    Ok(webhook_deliveries::table
        .filter(pending())
        .filter(webhook_deliveries::next_try_ms.gt(now_ms))
        .filter(target_enabled())
        .select(diesel::dsl::min(webhook_deliveries::next_try_ms))
        .first::<Option<i64>>(conn)?)
}

/// One attempt's outcome.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at_ms: i64,
    pub status: Option<i32>,
    pub error: Option<String>,
    pub latency_ms: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook_attempts)]
struct AttemptRow {
    delivery_id: String,
    at_ms: i64,
    status: Option<i32>,
    error: Option<String>,
    latency_ms: i64,
}

/// What the attempt makes of the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Delivered,
    /// Tried again at this time.
    RetryAt(i64),
    /// Given up.
    Failed,
}

/// Logs an attempt and moves its delivery, only if it is still pending in the same round (a
/// redelivery asked for while the attempt was in flight must still go out); whether it moved.
pub fn record_attempt(
    conn: &mut Conn,
    delivery_id: &str,
    round: i32,
    attempt: &Attempt,
    then: Then,
) -> Result<bool, StoreError> {
    let (state, next, done) = match then {
        Then::Delivered => (DELIVERED, None, Some(attempt.at_ms)),
        Then::RetryAt(at) => (PENDING, Some(at), None),
        Then::Failed => (FAILED, None, Some(attempt.at_ms)),
    };
    let target = webhook_deliveries::table
        .filter(webhook_deliveries::id.eq(delivery_id))
        .filter(webhook_deliveries::state.eq(PENDING))
        .filter(webhook_deliveries::round.eq(round));
    let moved = match next {
        Some(at) => diesel::update(target)
            .set((
                webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
                webhook_deliveries::next_try_ms.eq(at),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set((
                webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
                webhook_deliveries::state.eq(state),
                webhook_deliveries::done_ms.eq(done),
            ))
            .execute(conn)?,
    };
    if moved == 0 {
        return Ok(false);
    }
    diesel::insert_into(webhook_attempts::table)
        .values((
            webhook_attempts::delivery_id.eq(delivery_id),
            webhook_attempts::at_ms.eq(attempt.at_ms),
            webhook_attempts::status.eq(attempt.status),
            webhook_attempts::error.eq(&attempt.error),
            webhook_attempts::latency_ms.eq(attempt.latency_ms),
        ))
        .execute(conn)?;
    Ok(true)
}

/// An endpoint's deliveries, newest event first, at most `limit`, with each one's attempts.
pub fn log(
    conn: &mut Conn,
    endpoint_id: i64,
    limit: i64,
) -> Result<Vec<(Delivery, Vec<Attempt>)>, StoreError> {
    let deliveries: Vec<Delivery> = webhook_deliveries::table
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .order(webhook_deliveries::event_id.desc())
        .limit(limit)
        .select(Delivery::as_select())
        .load(conn)?;
    let ids: Vec<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
    let mut attempts: HashMap<String, Vec<Attempt>> = HashMap::new();
    let rows: Vec<AttemptRow> = webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq_any(&ids))
        .order(webhook_attempts::id)
        .select(AttemptRow::as_select())
        .load(conn)?;
    for r in rows {
        attempts.entry(r.delivery_id).or_default().push(Attempt {
            at_ms: r.at_ms,
            status: r.status,
            error: r.error,
            latency_ms: r.latency_ms,
        });
    }
    Ok(deliveries
        .into_iter()
        .map(|d| {
            let a = attempts.remove(&d.id).unwrap_or_default();
            (d, a)
        })
        .collect())
}

/// Queues an endpoint's deliveries of events `from..=to` again (attempts start over); how
/// many. Events it never had a delivery for are the caller's to fan out first.
pub fn requeue(
    conn: &mut Conn,
    endpoint_id: i64,
    from: i64,
    to: i64,
    now_ms: i64,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
            .filter(webhook_deliveries::event_id.ge(from))
            .filter(webhook_deliveries::event_id.le(to)),
    )
    .set((
        webhook_deliveries::state.eq(PENDING),
        webhook_deliveries::attempts.eq(0),
        webhook_deliveries::round.eq(webhook_deliveries::round + 1),
        webhook_deliveries::next_try_ms.eq(now_ms),
        webhook_deliveries::done_ms.eq(None::<i64>),
    ))
    .execute(conn)?)
}

/// Deletes deliveries finished before `before_ms`, with their attempts (the event pruner's
/// retention); pending ones stay whatever their age.
pub fn prune(conn: &mut Conn, before_ms: i64) -> Result<usize, StoreError> {
    let old = webhook_deliveries::table
        .filter(webhook_deliveries::state.ne(PENDING))
        .filter(webhook_deliveries::done_ms.lt(before_ms))
        .select(webhook_deliveries::id);
    diesel::delete(webhook_attempts::table.filter(webhook_attempts::delivery_id.eq_any(old)))
        .execute(conn)?;
    Ok(diesel::delete(
        webhook_deliveries::table
            .filter(webhook_deliveries::state.ne(PENDING))
            .filter(webhook_deliveries::done_ms.lt(before_ms)),
    )
    .execute(conn)?)
}
