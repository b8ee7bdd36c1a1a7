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
    topics: Mutex<HashMap<Topic, broadcast::Sender<Message>>>,
}

impl Hub {
    /// Subscribes to `topic`; messages published from now on arrive on the receiver.
    pub fn subscribe(&self, topic: &Topic) -> broadcast::Receiver<Message> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics
            .entry(topic.clone())
            .or_insert_with(|| broadcast::channel(SUBSCRIBER_QUEUE).0)
            .subscribe()
    }

    /// Hands `message` to every subscriber of `topic` (none: nothing happens).
    pub fn publish(&self, topic: &Topic, message: Message) {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = topics.get(topic) {
            if sender.send(message).is_err() {
                // Nobody listens any more.
                topics.remove(topic);
            }
        }
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
