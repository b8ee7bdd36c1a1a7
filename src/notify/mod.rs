//! The notification core, shared by the BCH invoices and the Lightning wallets.
//!
//! One way in: a state change and its [`Event`] are written in one store transaction
//! ([`append`]); the store wakes the [`Dispatcher`] after every commit that appended. One way
//! out: the dispatcher reads the outbox by id and hands each event, serialised once, to every
//! [`Consumer`]. Today's consumers are the socket [`Hub`] of this process and, with
//! PostgreSQL, the [`bridge`] that carries wake-ups and pushes between processes; a webhook
//! sender is one more consumer. A socket's catch-up (`?since=`, the latest event, a snapshot)
//! is a [`Subscription`]; `http/ws.rs` only adapts it to a WebSocket.

pub mod bridge;
mod dispatcher;
mod event;
mod hub;
mod limit;
mod subscription;
mod topic;
pub mod webhook;

pub use dispatcher::Dispatcher;
pub use event::{append, Event, Kind, Message};
pub use hub::{Hub, SUBSCRIBER_QUEUE};
pub use limit::{ConnectionLimit, Slot};
pub use subscription::{Replay, Subscription};
pub use topic::Topic;

/// A committed event, as consumers receive it.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// Its outbox id, which orders events and lets receivers drop duplicates.
    pub id: i64,
    pub topic: Topic,
    pub message: Message,
}

/// Something that hears every committed event after its commit. `deliver` runs on the
/// dispatcher's task: it must not wait (queue the work if it has any).
pub trait Consumer: Send + Sync {
    /// For logs.
    fn name(&self) -> &'static str;
    fn deliver(&self, event: &Delivered);
}
