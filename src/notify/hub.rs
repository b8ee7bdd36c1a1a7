//! This process's subscribers, by topic: the socket side of the notification core.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

use super::{Consumer, Delivered, Message, Topic};

/// Messages a subscriber may have queued before it counts as too slow.
pub const SUBSCRIBER_QUEUE: usize = 64;

/// Topics and their subscribers. Each subscriber is a bounded broadcast receiver, so every
/// subscriber gets the same bytes and one that falls behind is told so (and its socket
/// closed) without slowing anyone else.
#[derive(Debug, Default)]
pub struct Hub {
    topics: Mutex<Topics>,
}

#[derive(Debug, Default)]
struct Topics {
    senders: HashMap<Topic, broadcast::Sender<Message>>,
    /// How many topics there were after the last sweep of abandoned ones.
    swept_at: usize,
}

impl Hub {
    /// Subscribes to `topic`; messages published from now on arrive on the receiver.
    pub fn subscribe(&self, topic: &Topic) -> broadcast::Receiver<Message> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if !topics.senders.contains_key(topic) {
            topics.forget_abandoned();
        }
        topics
            .senders
            .entry(topic.clone())
            .or_insert_with(|| broadcast::channel(SUBSCRIBER_QUEUE).0)
            .subscribe()
    }

    /// Hands `message` to every subscriber of `topic` (none: nothing happens).
    pub fn publish(&self, topic: &Topic, message: Message) {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = topics.senders.get(topic) {
            if sender.send(message).is_err() {
                // Nobody listens any more.
                topics.senders.remove(topic);
            }
        }
    }

    /// Subscribers of `topic` now: the sockets being served it.
    pub fn subscribers(&self, topic: &Topic) -> usize {
        let topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics.senders.get(topic).map_or(0, |s| s.receiver_count())
    }

    /// Topics held, with or without subscribers.
    pub fn topics(&self) -> usize {
        let topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics.senders.len()
    }
}

impl Topics {
    /// Drops the topics whose subscribers have all gone, once the map has doubled since the
    /// last time. A topic is otherwise dropped only when a message finds nobody, and most
    /// never get another: a paid invoice's page that closes leaves its channel (and its
    /// queue of 64 slots) behind, which added up with every checkout page ever opened. Doing
    /// it on doubling keeps the cost per new topic constant.
    fn forget_abandoned(&mut self) {
        if self.senders.len() < (2 * self.swept_at).max(64) {
            return;
        }
        self.senders.retain(|_, s| s.receiver_count() > 0);
        self.swept_at = self.senders.len();
    }
}

impl Consumer for Hub {
    fn name(&self) -> &'static str {
        "sockets"
    }

    fn deliver(&self, event: &Delivered) {
        self.publish(&event.topic, event.message.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpp::InvoiceId;

    #[test]
    fn topics_whose_subscribers_left_are_forgotten_without_a_message() {
        let hub = Hub::default();
        // Pages that open on an invoice, read, and close: no event ever comes after.
        for _ in 0..10_000 {
            drop(hub.subscribe(&Topic::Invoice(InvoiceId::random())));
        }
        assert!(hub.topics() <= 128, "{} topics kept", hub.topics());
    }

    #[test]
    fn a_topic_with_a_subscriber_is_kept_and_still_delivers() {
        let hub = Hub::default();
        let watched = Topic::Invoice(InvoiceId::random());
        let mut live = hub.subscribe(&watched);
        for _ in 0..10_000 {
            drop(hub.subscribe(&Topic::Invoice(InvoiceId::random())));
        }
        hub.publish(&watched, Message::unnumbered("still here"));
        assert_eq!(
            live.try_recv().map(|m| m.text.to_string()).ok().as_deref(),
            Some("still here")
        );
    }
}
