//! The `events` table: the transactional outbox the notification core reads.

use diesel::prelude::*;

use super::schema::events;
use super::{Conn, StoreError};

/// Appends an event (`notify::append` is the one caller): call it inside the transaction that
/// makes the change. The writer wakes the dispatcher once that transaction commits.
pub fn insert(
    conn: &mut Conn,
    topic: &str,
    kind: &str,
    payload: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let id = diesel::insert_into(events::table)
        .values((
            events::topic.eq(topic),
            events::kind.eq(kind),
            events::payload.eq(payload),
            events::created_ms.eq(now_ms),
        ))
        .returning(events::id)
        .get_result::<i64>(conn)?;
    // The writer announces it (`announce`) just before the commit, and hands it to this
    // process's dispatcher just after.
    super::appended_in_this_transaction(super::Appended {
        id,
        topic: topic.to_owned(),
        payload: payload.to_owned(),
    });
    Ok(())
}

/// On PostgreSQL, tells every listening process that the open transaction appended events;
/// the notification is delivered when (and only if) it commits, and names its `origin` (a
/// store's own hex name) so the committing process's listener can ignore it. Nothing to do
/// on SQLite.
pub(super) fn announce(conn: &mut Conn, origin: &str) -> Result<(), StoreError> {
    if let Conn::Postgres(_) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(CHANNEL)
            .bind::<diesel::sql_types::Text, _>(origin)
            .execute(conn)?;
    }
    Ok(())
}

/// The PostgreSQL channel committed events are announced on.
const CHANNEL: &str = "cashier_events";
/// The PostgreSQL channel pushes travel on, to the sockets of every process.
const PUSH_CHANNEL: &str = "cashier_push";

/// A push from the LNbits-style endpoints, to every process's sockets on `topic`, when (and
/// only if) the transaction commits. Pushes are not stored: they carry no event id.
pub fn push(conn: &mut Conn, topic: &str, data: &str) -> Result<(), StoreError> {
    let payload = serde_json::json!({"topic": topic, "data": data}).to_string();
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<diesel::sql_types::Text, _>(PUSH_CHANNEL)
        .bind::<diesel::sql_types::Text, _>(payload)
        .execute(conn)?;
    Ok(())
}

/// What the listener does with a push: the topic and the data.
pub type OnPush = std::sync::Arc<dyn Fn(&str, &str) + Send + Sync>;
/// How often the listening connection is checked for notifications. diesel cannot wait on
/// the socket, so the listener polls; a local poll with nothing waiting is one system call.
const LISTEN_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// Holds a `LISTEN` connection and calls `elsewhere` on every event notification not from
/// `origin` (another process committed: its events must be read), and when it reconnects (one
/// may have been missed); hands pushes to `on_push`; reconnects when the connection fails,
/// while `keep` can be upgraded.
pub(super) fn listen(
    url: &str,
    origin: &str,
    elsewhere: &dyn Fn(),
    on_push: &OnPush,
    keep: &std::sync::Weak<()>,
) {
    use diesel::connection::SimpleConnection;
    let mut retry = std::time::Duration::from_millis(100);
    while keep.strong_count() > 0 {
        let mut conn = match diesel::PgConnection::establish(url)
            .map_err(|e| e.to_string())
            .and_then(|mut c| {
                c.batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {PUSH_CHANNEL}"))
                    .map(|()| c)
                    .map_err(|e| e.to_string())
            }) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "event listener: cannot listen; retrying");
                std::thread::sleep(retry);
                retry = (retry * 2).min(std::time::Duration::from_secs(5));
                continue;
            }
        };
        retry = std::time::Duration::from_millis(100);
        // A notification may have been missed while reconnecting: look once.
        elsewhere();
        'connected: while keep.strong_count() > 0 {
            for n in conn.notifications_iter() {
                match n {
                    Ok(n) if n.channel == PUSH_CHANNEL => {
                        let push: serde_json::Value =
                            serde_json::from_str(&n.payload).unwrap_or_default();
                        if let (Some(topic), Some(data)) =
                            (push["topic"].as_str(), push["data"].as_str())
                        {
                            on_push(topic, data);
                        }
                    }
                    // This store's own commit: its dispatcher has those events already.
                    Ok(n) if n.payload == origin => {}
                    // In order with the pushes: a push heard after a commit finds it told.
                    Ok(_) => elsewhere(),
                    Err(e) => {
                        tracing::warn!(error = %e, "event listener: connection lost; reconnecting");
                        elsewhere();
                        break 'connected;
                    }
                }
            }
            std::thread::sleep(LISTEN_POLL);
        }
    }
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

/// The events among `ids` that exist (ids a transaction held but had not committed when a
/// higher id was read), oldest first: `(id, topic, payload)`.
pub fn with_ids(conn: &mut Conn, ids: &[i64]) -> Result<Vec<(i64, String, String)>, StoreError> {
    Ok(events::table
        .filter(events::id.eq_any(ids))
        .order(events::id)
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

/// Deletes events older than `before_ms`; returns how many. Replay (`?since=`) reaches back
/// only as far as this retention.
pub fn prune(conn: &mut Conn, before_ms: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(events::table.filter(events::created_ms.lt(before_ms))).execute(conn)?)
}
