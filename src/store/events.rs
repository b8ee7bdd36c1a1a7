//! The `events` table: the transactional outbox the notification core reads.

use diesel::prelude::*;

use super::schema::events;
use super::{Conn, StoreError};

/// An event to record with the state change it reports.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `invoice:<id>` or `wallet:<id>`.
    pub topic: String,
    pub kind: &'static str,
    /// The message as sockets receive it, without its `event_id` (known only once stored).
    pub payload: serde_json::Value,
}

/// Appends `event`; call it inside the transaction that makes the change.
pub fn insert(conn: &mut Conn, event: &NewEvent, now_ms: i64) -> Result<(), StoreError> {
    diesel::insert_into(events::table)
        .values((
            events::topic.eq(&event.topic),
            events::kind.eq(event.kind),
            events::payload.eq(event.payload.to_string()),
            events::created_ms.eq(now_ms),
        ))
        .execute(conn)?;
    Ok(())
}

/// Events of one topic in the order they were written.
pub fn for_topic(conn: &mut Conn, topic: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
    Ok(events::table
        .filter(events::topic.eq(topic))
        .order(events::id)
        .select((events::id, events::kind, events::payload))
        .load(conn)?)
}

/// The newest event id (0 when there is none).
pub fn newest_id(conn: &mut Conn) -> Result<i64, StoreError> {
    let id: Option<i64> = events::table
        .select(diesel::dsl::max(events::id))
        .first(conn)?;
    Ok(id.unwrap_or(0))
}

/// Events with an id above `after`, oldest first: `(id, topic, payload)`.
pub fn after(
    conn: &mut Conn,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, String, String)>, StoreError> {
    Ok(events::table
        .filter(events::id.gt(after))
        .order(events::id)
        .limit(limit)
        .select((events::id, events::topic, events::payload))
        .load(conn)?)
}

/// Events of one topic with an id above `after`, oldest first: `(id, kind, payload)`.
pub fn for_topic_after(
    conn: &mut Conn,
    topic: &str,
    after: i64,
) -> Result<Vec<(i64, String, String)>, StoreError> {
    Ok(events::table
        .filter(events::topic.eq(topic))
        .filter(events::id.gt(after))
        .order(events::id)
        .select((events::id, events::kind, events::payload))
        .load(conn)?)
}
