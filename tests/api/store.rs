//! The store's group commit: writes queued together share a transaction, yet one write's
//! failure never undoes or blocks another's.

use cashier::store::{api_keys, StoreError};

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    a_failing_write_leaves_the_others_in_its_batch_intact,
    pruning_removes_only_events_past_retention,
);

async fn a_failing_write_leaves_the_others_in_its_batch_intact(app: TestApp) {
    let taken = cashier::auth::key_hash(&app.key);
    let mut writes = Vec::new();
    for i in 0..200u32 {
        let store = app.store.clone();
        writes.push(tokio::spawn(async move {
            // Every tenth write repeats the hash of the existing key: a UNIQUE violation.
            let hash = if i % 10 == 3 {
                taken
            } else {
                cashier::auth::key_hash(&format!("k{i}"))
            };
            let result: Result<i64, StoreError> = store
                .write(move |c| api_keys::insert(c, &hash, None, 0))
                .await;
            (i, result)
        }));
    }
    let mut ids = Vec::new();
    for w in writes {
        let (i, result) = w.await.unwrap();
        match (i % 10 == 3, result) {
            (true, Err(StoreError::Database(_))) => {}
            (false, Ok(id)) => ids.push(id),
            (duplicate, other) => panic!("write {i} (duplicate: {duplicate}) gave {other:?}"),
        }
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 180);
    let stored = app.store.read(api_keys::list).await.unwrap();
    assert_eq!(
        stored.len(),
        181,
        "the test key plus every successful write, nothing else"
    );
}

async fn pruning_removes_only_events_past_retention(app: TestApp) {
    use cashier::store::{events, NewEvent};
    let event = |topic: &str| NewEvent {
        topic: topic.into(),
        kind: "test",
        payload: serde_json::json!({"type": "test"}),
    };
    let (old, new) = (event("invoice:old"), event("invoice:new"));
    // Both well inside the server's own 7-day retention, so its pruner leaves them alone.
    let now = cashier::jpp::now_ms();
    app.store
        .write(move |c| {
            events::insert(c, &old, now - 3_600_000)?;
            events::insert(c, &new, now)
        })
        .await
        .unwrap();
    let cutoff = now - 1_800_000;
    let pruned = app
        .store
        .write(move |c| events::prune(c, cutoff))
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert!(app.events("invoice:old").await.is_empty());
    assert_eq!(app.events("invoice:new").await.len(), 1);
    // Again: nothing left to prune, nothing else touched.
    assert_eq!(
        app.store.write(|c| events::prune(c, 2_000)).await.unwrap(),
        0
    );
    assert_eq!(app.events("invoice:new").await.len(), 1);
}
