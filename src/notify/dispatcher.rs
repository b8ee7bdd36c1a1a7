//! Moves committed events from the outbox to the consumers.
//!
//! This process's writers hand the dispatcher the events they committed, which it delivers
//! without reading them back. It reads new events by id from the outbox when another process
//! committed some (PostgreSQL `NOTIFY`), when hand-overs were dropped, and on a short timer as
//! a safety net should a wake-up be lost. Each event's message is made once and the same bytes
//! go to every consumer.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::{Consumer, Delivered, Hub, Message, Topic};
use crate::store::{events, Backend, Store, StoreError};
use crate::supervisor::Stopping;

/// How often the dispatcher looks for events without being woken.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Ids below the newest delivered one that are looked at again: on PostgreSQL a transaction
/// holding a lower id can commit after one holding a higher id.
const LOOKBACK: i64 = 256;
/// Most events read per pass.
const BATCH: i64 = 500;

/// The outbox's reader and the consumers it feeds: the socket [`Hub`] always, and any other
/// registered with [`Dispatcher::with_consumer`] before it runs.
#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    hub: Arc<Hub>,
    consumers: Vec<Arc<dyn Consumer>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field(
                "consumers",
                &self.consumers.iter().map(|c| c.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Dispatcher {
    pub fn new(store: Store) -> Dispatcher {
        let hub = Arc::new(Hub::default());
        Dispatcher {
            store,
            consumers: vec![hub.clone()],
            hub,
        }
    }

    /// Adds a consumer: it is handed every event committed from the time the dispatcher runs.
    pub fn with_consumer(mut self, consumer: Arc<dyn Consumer>) -> Dispatcher {
        self.consumers.push(consumer);
        self
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    /// Hands `data` as is to the sockets on `topic` in every process (with PostgreSQL, through
    /// `NOTIFY`; otherwise there is only this process). Not stored, not numbered.
    pub async fn push(&self, topic: &Topic, data: &str) -> Result<(), StoreError> {
        if self.store.backend() == Backend::Postgres {
            let (topic, data) = (topic.to_string(), data.to_owned());
            // Every process hears it from the database, this one included (the bridge).
            self.store
                .write(move |c| events::push(c, &topic, &data))
                .await
        } else {
            self.hub
                .publish(topic, Message::unnumbered(data.to_owned()));
            Ok(())
        }
    }

    /// Hands one event to every consumer: its message made once, the same bytes for all.
    fn deliver(&self, id: i64, topic: &str, body: &str) {
        let event = Delivered {
            id,
            topic: Topic::parse(topic),
            message: Message::numbered(id, body),
        };
        for consumer in &self.consumers {
            consumer.deliver(&event);
        }
    }

    /// Delivers events committed from now on, until `stopping`.
    pub async fn run(self, mut stopping: Stopping) -> Result<(), String> {
        let commits = self.store.commits();
        let mut newest = self
            .store
            .read(events::newest_id)
            .await
            .map_err(|e| format!("cannot read the outbox: {e}"))?;
        // What was committed before start is not news: sockets catch up on their own. (What
        // commits from here on is read if it is not handed over.)
        let _ = self.store.take_committed();
        let from = newest - LOOKBACK;
        let mut delivered: BTreeSet<i64> = self
            .store
            .read(move |c| events::after(c, from, LOOKBACK))
            .await
            .map(|rows| rows.into_iter().map(|(id, _, _)| id).collect())
            .unwrap_or_default();
        // An interval, not a sleep started afresh each turn: under a steady stream of local
        // commits a sleep would never end, and another process's events (an operator command's
        // on SQLite) would wait for a lull.
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let timer = tokio::select! {
                _ = commits.notified() => false,
                _ = poll.tick() => true,
                _ = stopping.stopped() => return Ok(()),
            };
            // This process's commits first, as its writers handed them over: no read between
            // a commit and its sockets. When that is all there is, the outbox is not read:
            // another process's commits, dropped hand-overs and the timer say otherwise.
            if let Some(local) = self.store.take_committed() {
                for e in local {
                    if delivered.insert(e.id) {
                        newest = newest.max(e.id);
                        self.deliver(e.id, &e.topic, &e.payload);
                    }
                }
                if !timer {
                    // The window's bookkeeping stays bounded between reads too.
                    if delivered.len() > 4 * LOOKBACK as usize {
                        delivered = delivered.split_off(&(newest - LOOKBACK));
                    }
                    continue;
                }
            }
            // New events (other processes' too), and any id in the look-back window not
            // delivered yet: a gap that a slower transaction may have filled since (usually
            // none, so nothing is re-read).
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
            for (id, topic, body) in rows {
                if delivered.insert(id) {
                    newest = newest.max(id);
                    self.deliver(id, &topic, &body);
                }
            }
            delivered = delivered.split_off(&(newest - LOOKBACK));
            if full {
                // More are waiting: go again without waiting for a wake-up.
                commits.notify_one();
            }
        }
    }
}
