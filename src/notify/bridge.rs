//! The PostgreSQL bridge between processes: every process holds a `LISTEN` connection, so a
//! commit in any of them wakes every dispatcher (through the store's commit signal), and a
//! push reaches the sockets of every process. SQLite has one process and needs none.

use std::sync::Arc;

use super::{Hub, Message, Topic};
use crate::store::{events, Backend, Store};
use crate::supervisor::Stopping;

/// Listens until `stopping` (on SQLite there is nothing to listen to: it just waits). The connection lives on a thread of its
/// own, since diesel cannot await a socket; the thread ends once this future stops or is
/// dropped (a thread, not a blocking task, so a runtime shutting down never waits for it).
pub async fn run(store: Store, hub: Arc<Hub>, mut stopping: Stopping) -> Result<(), String> {
    if store.backend() != Backend::Postgres {
        stopping.stopped().await;
        return Ok(());
    }
    let on_push: events::OnPush = Arc::new(move |topic: &str, data: &str| {
        hub.publish(&Topic::parse(topic), Message::unnumbered(data.to_owned()))
    });
    let running = Arc::new(());
    let (keep, (ended, listening)) = (Arc::downgrade(&running), tokio::sync::oneshot::channel());
    std::thread::Builder::new()
        .name("db-listen".into())
        .spawn(move || {
            store.listen(&on_push, &keep);
            let _ = ended.send(());
        })
        .map_err(|e| format!("cannot start the listener thread: {e}"))?;
    tokio::select! {
        _ = listening => Err("the listener thread ended".into()),
        _ = stopping.stopped() => {
            drop(running);
            Ok(())
        }
    }
}
