//! What a new subscriber is sent before live events: nothing, the topic's latest event (a
//! finished invoice's outcome), or every event after an id (`?since=`), and optionally a
//! snapshot first. Subscribing happens before the outbox is read, so nothing committed in
//! between is lost; what arrives live and was already sent is skipped by its id.

use tokio::sync::broadcast;

use super::{Dispatcher, Message, Topic};
use crate::store::events;

/// Which past events a subscriber is sent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Live events only.
    Nothing,
    /// The topic's newest event, if any.
    Latest,
    /// Every event with an id above this one.
    Since(i64),
}

/// A subscriber's live receiver and what it is sent before.
#[derive(Debug)]
pub struct Subscription {
    pub live: broadcast::Receiver<Message>,
    /// Sent first, in order.
    pub first: Vec<Message>,
    /// The newest event id in `first`: live messages up to it were already sent.
    caught_up_to: i64,
}

impl Subscription {
    /// Puts `message` before everything else (a snapshot).
    pub fn lead_with(&mut self, message: Message) {
        self.first.insert(0, message);
    }

    /// Whether a live message is news to this subscriber (not already sent in the catch-up).
    pub fn is_new(&mut self, message: &Message) -> bool {
        if self.caught_up_to == 0 {
            return true;
        }
        if message.event_id.is_some_and(|id| id <= self.caught_up_to) {
            return false;
        }
        // Ids only grow from here: no need to look again.
        self.caught_up_to = 0;
        true
    }
}

impl Dispatcher {
    /// Subscribes to `topic` and reads what `replay` asks for. A failed read of the outbox
    /// leaves the catch-up empty: live events still arrive.
    pub async fn subscribe(&self, topic: Topic, replay: Replay) -> Subscription {
        let live = self.hub().subscribe(&topic);
        let mut sub = Subscription {
            live,
            first: Vec::new(),
            caught_up_to: 0,
        };
        let after = match replay {
            Replay::Nothing => return sub,
            Replay::Latest => 0,
            Replay::Since(id) => id,
        };
        let name = topic.to_string();
        let past = self
            .store()
            .read(move |c| events::for_topic_after(c, &name, after))
            .await
            .unwrap_or_default();
        let wanted = match replay {
            Replay::Latest => &past[past.len().saturating_sub(1)..],
            _ => &past[..],
        };
        for (event_id, _, body) in wanted {
            sub.caught_up_to = sub.caught_up_to.max(*event_id);
            sub.first.push(Message::numbered(*event_id, body));
        }
        sub
    }
}
