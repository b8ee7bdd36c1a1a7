//! The notification core: events leave the `events` outbox only after the transaction that
//! wrote them committed, and reach every socket subscribed to their topic.
//!
//! The [`Dispatcher`] reads new events by id whenever it is woken: by this process's writers
//! after they commit, by PostgreSQL `NOTIFY` when any process commits one (so a socket on one
//! server hears a payment accepted by another), and by a short timer as a safety net. Each event is serialised once,
//! with its `event_id`, and the same bytes go to every subscriber. A subscriber is a bounded
//! broadcast receiver: one that falls behind is told so (and its socket closed) without slowing
//! anyone else.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytestring::ByteString;
use tokio::sync::{broadcast, Notify};

use crate::store::{events, Backend, Store, StoreError};

/// Messages a subscriber may have queued before it counts as too slow.
pub const SUBSCRIBER_QUEUE: usize = 64;
/// How often the dispatcher looks for events without being woken: a safety net should a
/// notification be lost.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Ids below the newest delivered one that are looked at again: on PostgreSQL a transaction
/// holding a lower id can commit after one holding a higher id.
const LOOKBACK: i64 = 256;
/// Most events read per pass.
const BATCH: i64 = 500;

/// Topics and their subscribers, in this process.
#[derive(Debug, Default)]
pub struct Hub {
    topics: Mutex<HashMap<String, broadcast::Sender<ByteString>>>,
}

impl Hub {
    /// Subscribes to `topic`; messages published from now on arrive on the receiver.
    pub fn subscribe(&self, topic: &str) -> broadcast::Receiver<ByteString> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics
            .entry(topic.to_owned())
            .or_insert_with(|| broadcast::channel(SUBSCRIBER_QUEUE).0)
            .subscribe()
    }

    /// Hands `message` to every subscriber of `topic` (none: nothing happens).
    pub fn publish(&self, topic: &str, message: ByteString) {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = topics.get(topic) {
            if sender.send(message).is_err() {
                // Nobody listens any more.
                topics.remove(topic);
            }
        }
    }
}

/// An event as subscribers receive it: its payload with `event_id` added.
pub fn message(event_id: i64, payload: &str) -> Option<ByteString> {
    let mut value: serde_json::Value = serde_json::from_str(payload).ok()?;
    value
        .as_object_mut()?
        .insert("event_id".into(), event_id.into());
    Some(ByteString::from(value.to_string()))
}

/// Moves committed events from the outbox to the hub.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    store: Store,
    hub: Arc<Hub>,
    wake: Arc<Notify>,
}

impl Dispatcher {
    pub fn new(store: Store, hub: Arc<Hub>) -> Dispatcher {
        Dispatcher {
            store,
            hub,
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Call after committing an event: the dispatcher reads it at once.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Hands `data` as is to the sockets on `topic` in every process (with PostgreSQL, through
    /// `NOTIFY`; otherwise there is only this process). Not stored, not numbered.
    pub async fn push(&self, topic: &str, data: &str) -> Result<(), StoreError> {
        if self.store.backend() == Backend::Postgres {
            let (topic, data) = (topic.to_owned(), data.to_owned());
            // Every process hears it from the database, this one included.
            self.store
                .write(move |c| events::push(c, &topic, &data))
                .await
        } else {
            self.hub.publish(topic, ByteString::from(data.to_owned()));
            Ok(())
        }
    }

    /// Delivers events committed from now on, until the task is dropped.
    pub async fn run(self) {
        let hub = self.hub.clone();
        let on_push: events::OnPush = Arc::new(move |topic: &str, data: &str| {
            hub.publish(topic, ByteString::from(data.to_owned()))
        });
        self.store
            .listen_for_events(Arc::downgrade(&self.wake), on_push);
        let mut newest = match self.store.read(events::newest_id).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "dispatcher: cannot read the outbox; events will not be delivered");
                return;
            }
        };
        // What was committed before start is not news: sockets catch up on their own.
        let from = newest - LOOKBACK;
        let mut delivered: BTreeSet<i64> = match self
            .store
            .read(move |c| events::after(c, from, LOOKBACK))
            .await
        {
            Ok(rows) => rows.into_iter().map(|(id, _, _)| id).collect(),
            Err(_) => BTreeSet::new(),
        };
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
            // New events, and any id in the look-back window not delivered yet: a gap that a
            // slower transaction may have filled since (usually none, so nothing is re-read).
            let gaps: Vec<i64> = ((newest - LOOKBACK + 1).max(1)..newest)
                .filter(|id| !delivered.contains(id))
                .collect();
            let rows = match self
                .store
                .read(move |c| {
                    let mut rows = events::after(c, newest, BATCH)?;
                    if !gaps.is_empty() {
                        rows.extend(events::with_ids(c, &gaps)?);
                    }
                    Ok(rows)
                })
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "dispatcher: reading the outbox failed; retrying");
                    continue;
                }
            };
            let full = rows.len() as i64 >= BATCH;
            for (id, topic, payload) in rows {
                if !delivered.insert(id) {
                    continue;
                }
                newest = newest.max(id);
                match message(id, &payload) {
                    Some(bytes) => self.hub.publish(&topic, bytes),
                    None => tracing::error!(id, "dispatcher: event payload is not a JSON object"),
                }
            }
            delivered = delivered.split_off(&(newest - LOOKBACK));
            if full {
                // More are waiting: go again without waiting for a wake-up.
                self.wake.notify_one();
            }
        }
    }
}

/// Open sockets, capped per client address and in all: one address cannot hold the server's
/// sockets, and many addresses together cannot exhaust its file descriptors.
#[derive(Debug)]
pub struct ConnectionLimit {
    per_address: usize,
    total: usize,
    open: Mutex<OpenSockets>,
}

#[derive(Debug, Default)]
struct OpenSockets {
    by_address: HashMap<std::net::IpAddr, usize>,
    total: usize,
}

/// One open socket's place under the limit; freed when dropped.
#[derive(Debug)]
pub struct Slot {
    limit: Arc<ConnectionLimit>,
    address: std::net::IpAddr,
}

impl ConnectionLimit {
    /// At most `per_address` sockets from one address and `total` from all of them.
    pub fn new(per_address: usize, total: usize) -> Arc<ConnectionLimit> {
        Arc::new(ConnectionLimit {
            per_address,
            total,
            open: Mutex::default(),
        })
    }

    /// A slot for one more socket from `address`, unless it or the server has reached its cap.
    pub fn acquire(self: &Arc<Self>, address: std::net::IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.total {
            return None;
        }
        let count = open.by_address.entry(address).or_default();
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        open.total += 1;
        Some(Slot {
            limit: self.clone(),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
            open.total -= 1;
        }
    }
}
