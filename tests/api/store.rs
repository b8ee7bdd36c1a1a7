//! The store's group commit: writes queued together share a transaction, yet one write's
//! failure never undoes or blocks another's.

use cashier::store::{api_keys, StoreError};

use crate::helpers::{empty_database, Backend, TestApp, ADDR};
use crate::on_both_backends;

on_both_backends!(
    a_failing_write_leaves_the_others_in_its_batch_intact,
    pruning_removes_only_events_past_retention,
    another_writers_event_is_delivered_while_this_process_commits_without_pause,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_events_handed_over_sqlite() {
    committed_events_are_handed_over_once_and_bounded(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_events_handed_over_postgres() {
    committed_events_are_handed_over_once_and_bounded(Backend::Postgres).await
}

/// With PostgreSQL, a store's listener tells its dispatcher to read the outbox when another
/// process committed events, and not for its own commits, which were handed over already.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_another_processs_commits_send_the_dispatcher_to_the_outbox() {
    use cashier::store::events;
    let (url, _dir) = empty_database(Backend::Postgres);
    let (ours, theirs) = (
        crate::helpers::open_store(&url).await,
        crate::helpers::open_store(&url).await,
    );
    // Our listener, as the bridge runs it; pushes come through in order with the rest.
    let (pushed_tx, mut pushed) = tokio::sync::mpsc::unbounded_channel::<String>();
    let on_push: events::OnPush = std::sync::Arc::new(move |_topic: &str, data: &str| {
        let _ = pushed_tx.send(data.to_owned());
    });
    let running = std::sync::Arc::new(());
    let keep = std::sync::Arc::downgrade(&running);
    let listener = ours.clone();
    std::thread::spawn(move || listener.listen(&on_push, &keep));
    let commits = ours.commits();
    // The listener says once that it (re)connected: the outbox is read then.
    commits.notified().await;
    assert!(ours.take_committed().is_none());

    let append = |store: &cashier::store::Store, topic: &'static str| {
        let store = store.clone();
        async move {
            store
                .write(move |c| events::insert(c, topic, "invoice_cancelled", "{}", 1))
                .await
                .unwrap()
        }
    };
    // Our own commit, then a push: when the push is heard, so was the commit's notification.
    append(&ours, "invoice:ours").await;
    ours.write(|c| events::push(c, "invoice:x", "marker"))
        .await
        .unwrap();
    assert_eq!(pushed.recv().await.as_deref(), Some("marker"));
    let handed = ours
        .take_committed()
        .expect("our own commit is no reason to read");
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].topic, "invoice:ours");

    // Another process's commit: read the outbox.
    append(&theirs, "invoice:theirs").await;
    loop {
        commits.notified().await;
        if ours.take_committed().is_none() {
            break;
        }
    }
    drop(running);
}

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
                .write(move |c| {
                    api_keys::insert(c, &hash, None, 1, cashier::auth::Scopes::all(), 0)
                })
                .await;
            (i, result)
        }));
    }
    let mut ids = Vec::new();
    for w in writes {
        let (i, result) = w.await.unwrap();
        match (i % 10 == 3, result) {
            (true, Err(StoreError::Duplicate(_))) => {}
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
    use cashier::store::events;
    let body = r#"{"type":"test"}"#;
    // Both well inside the server's own 7-day retention, so its pruner leaves them alone.
    let now = cashier::units::now_ms();
    app.store
        .write(move |c| {
            events::insert(c, "invoice:old", "test", body, now - 3_600_000)?;
            events::insert(c, "invoice:new", "test", body, now)
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

/// A database from before stores existed: its key and invoice join the default store, and the
/// key keeps every scope (nothing a merchant did before the upgrade stops working).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_made_before_stores_keep_working() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (url, dir) = empty_database(backend);
        let key = cashier::auth::generate_key();
        let hash = hex::encode(cashier::auth::key_hash(&key));
        let id = "00112233445566778899aabbccddeeff";
        let (blob, outputs) = match backend {
            Backend::Sqlite => (format!("X'{hash}'"), ADDR),
            Backend::Postgres => (format!("'\\x{hash}'"), ADDR),
        };
        let outputs = format!(r#"[{{"address":"{outputs}","amount":1000}}]"#);
        let old_rows = format!(
            "INSERT INTO api_keys (key_hash, label, created_ms) VALUES ({blob}, 'old', 1);
             INSERT INTO invoices (id, status, outputs, created_ms, expires_ms, fee_per_kb, api_key_id, updated_ms)
             VALUES ('{id}', 'open', '{outputs}', 1, 4102444800000, 1000, 1, 1);"
        );
        migrate_to_before(backend, &url, "2026-11-29-000005", &old_rows);

        let app = TestApp::spawn_on_database(url, dir).await;
        let r = app
            .client
            .get(app.url("/jpp/invoices/"))
            .header("X-Api-Key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        let page: serde_json::Value = r.json().await.unwrap();
        assert_eq!(page["results"][0]["payment_id"], id, "{backend:?}: {page}");
        let cancelled = app
            .client
            .post(app.url(&format!("/jpp/invoices/{id}/cancel/")))
            .header("X-Api-Key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(cancelled.status(), 200, "{backend:?}");
        let created = app
            .client
            .post(app.url("/jpp/invoices/"))
            .header("X-Api-Key", &key)
            .json(&serde_json::json!({"outputs": [{"address": ADDR, "amount": 1000}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{backend:?}");
    }
}

/// A database from before wallets kept their balance on their row: the upgrade sets each from
/// its payment rows (settled ones and outgoing ones still pending; never an open invoice or a
/// failed payment), and the server answers those balances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_balances_are_filled_in_from_the_payments_on_upgrade() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (url, dir) = empty_database(backend);
        let keys: Vec<String> = (0..4)
            .map(|_| hex::encode(rand::random::<[u8; 16]>()))
            .collect();
        let blob = |key: &str| {
            let hash = hex::encode(cashier::auth::key_hash(key));
            match backend {
                Backend::Sqlite => format!("X'{hash}'"),
                Backend::Postgres => format!("'\\x{hash}'"),
            }
        };
        let payment = |id: &str, wallet: &str, amount: i64, fee: i64, status: &str| {
            format!(
                "INSERT INTO ln_payments (checking_id, payment_hash, wallet_id, amount_msat, fee_msat, bolt11, status, extra, created_ms, updated_ms)
                 VALUES ('{id}', '{id}', '{wallet}', {amount}, {fee}, '', '{status}', '{{}}', 1, 1);"
            )
        };
        let old_rows = [
            format!(
                "INSERT INTO wallets (id, name, inkey_hash, adminkey_hash, created_ms) VALUES
                 ('wa', 'a', {}, {}, 1), ('wb', 'b', {}, {}, 2);",
                blob(&keys[0]),
                blob(&keys[1]),
                blob(&keys[2]),
                blob(&keys[3])
            ),
            payment("in-settled", "wa", 10_000_000, 0, "success"),
            payment("out-settled", "wa", -3_000_000, -1_000, "success"),
            payment("out-pending", "wa", -2_000_000, 0, "pending"),
            payment("in-open", "wa", 5_000_000, 0, "pending"),
            payment("out-failed", "wa", -1_000_000, 0, "failed"),
            payment("in-failed", "wb", 700_000, 0, "failed"),
        ]
        .concat();
        migrate_to_before(backend, &url, "2026-11-29-000010", &old_rows);

        let app = TestApp::spawn_on_database(url, dir).await;
        for (key, want) in [(&keys[0], 4_999_000), (&keys[2], 0)] {
            let wallet: serde_json::Value = app
                .client
                .get(app.url("/api/v1/wallet"))
                .header("X-Api-Key", key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(wallet["balance"], want, "{backend:?}: {wallet}");
        }
        let checked = app
            .store
            .read(|c| cashier::store::lightning::check_balances(c, None))
            .await
            .unwrap();
        assert_eq!(checked.len(), 2, "{backend:?}");
        assert!(
            checked.iter().all(|c| c.agrees()),
            "{backend:?}: {checked:?}"
        );
    }
}

/// Applies the migrations whose folders sort before `cutoff`, then `old_rows`.
fn migrate_to_before(backend: Backend, url: &str, cutoff: &str, old_rows: &str) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    use diesel_migrations::{FileBasedMigrations, MigrationHarness};
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    let before = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&all).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.as_str() < cutoff {
            let to = before.path().join(&name);
            std::fs::create_dir(&to).unwrap();
            for file in ["up.sql", "down.sql"] {
                std::fs::copy(entry.path().join(file), to.join(file)).unwrap();
            }
        }
    }
    let migrations = FileBasedMigrations::from_path(before.path()).unwrap();
    match backend {
        Backend::Sqlite => {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_end_matches("?mode=rwc");
            let mut c = diesel::SqliteConnection::establish(path).unwrap();
            c.run_pending_migrations(migrations).unwrap();
            c.batch_execute(old_rows).unwrap();
        }
        Backend::Postgres => {
            let mut c = diesel::PgConnection::establish(url).unwrap();
            c.run_pending_migrations(migrations).unwrap();
            c.batch_execute(old_rows).unwrap();
        }
    }
}

/// Pooled read connections are not pinged before each use (a round trip per read on
/// PostgreSQL). When the database drops every connection (a restart, a failover), a read that
/// meets a dead one runs again on a live one: no request sees the dead connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_survive_the_database_dropping_every_connection() {
    use diesel::{Connection, RunQueryDsl};
    let app = TestApp::spawn(Backend::Postgres).await;
    let invoice = app.create_simple(1000).await;
    let path = format!("/jpp/invoices/{}/", invoice["payment_id"].as_str().unwrap());
    // Reads at once, so the pool holds several connections.
    let reads = (0..16).map(|_| app.get_json(&path));
    for (status, _) in futures_util::future::join_all(reads).await {
        assert_eq!(status, 200);
    }

    let admin = std::env::var("CASHIER_TEST_POSTGRES_URL").unwrap();
    let name = app.database_url.rsplit('/').next().unwrap().to_owned();
    let mut conn = diesel::PgConnection::establish(&admin).unwrap();
    let dropped = diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .execute(&mut conn)
    .unwrap();
    assert!(
        dropped >= 2,
        "the server's connections were dropped: {dropped}"
    );

    let reads = (0..16).map(|_| app.get_json(&path));
    for (status, body) in futures_util::future::join_all(reads).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["payment_id"], invoice["payment_id"]);
    }
}

/// The writers hand this process's dispatcher what they committed, so it need not read it
/// back: every event of a committed transaction, in order, once; nothing of a rolled-back
/// one; and when nobody takes them (an operator command) they are dropped past a bound, and
/// the dispatcher is told to read the outbox instead.
async fn committed_events_are_handed_over_once_and_bounded(backend: Backend) {
    use cashier::store::events;
    let (url, _dir) = empty_database(backend);
    let store = crate::helpers::open_store(&url).await;
    let append = |n: usize, then_fail: bool| {
        let store = store.clone();
        async move {
            store
                .write(move |c| {
                    for i in 0..n {
                        events::insert(
                            c,
                            "invoice:t",
                            "invoice_cancelled",
                            &format!("{{\"n\":{i}}}"),
                            1,
                        )?;
                    }
                    if then_fail {
                        return Err(StoreError::Conflict("rolled back on purpose".into()));
                    }
                    Ok(())
                })
                .await
        }
    };
    append(3, false).await.unwrap();
    assert!(append(2, true).await.is_err());
    let handed = store.take_committed().expect("nothing dropped");
    let ids: Vec<i64> = handed.iter().map(|e| e.id).collect();
    assert_eq!(
        handed.len(),
        3,
        "the rolled-back events are not handed over: {ids:?}"
    );
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(handed[2].payload, "{\"n\":2}");
    assert_eq!(handed[0].topic, "invoice:t");
    let stored = store.read(|c| events::after(c, 0, 100)).await.unwrap();
    assert_eq!(
        stored.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(),
        ids,
        "what is handed over is what the outbox holds"
    );
    assert_eq!(
        store.take_committed().map(|e| e.len()),
        Some(0),
        "handed over once"
    );

    // Nobody takes them: past the bound they are all dropped, and the next take says so.
    for _ in 0..9 {
        append(500, false).await.unwrap();
    }
    assert!(store.take_committed().is_none());
    assert_eq!(store.take_committed().map(|e| e.len()), Some(0));
}

/// Events another process commits (an operator command; with SQLite no notification tells
/// of them) reach this process's sockets even while its own commits never pause: the
/// dispatcher's safety-net read runs on a clock, not after a lull.
async fn another_writers_event_is_delivered_while_this_process_commits_without_pause(app: TestApp) {
    use cashier::notify::Topic;
    use cashier::store::events;
    let topic = Topic::parse("invoice:elsewhere");
    let mut live = app.hub.subscribe(&topic);
    // Another process's store on the same database, which this server's dispatcher is not told of.
    let other = crate::helpers::open_store(&app.database_url).await;
    let busy = std::sync::atomic::AtomicBool::new(true);
    let local = async {
        let mut n = 0u64;
        while busy.load(std::sync::atomic::Ordering::Relaxed) {
            app.store
                .write(|c| events::insert(c, "invoice:here", "invoice_cancelled", "{}", 1))
                .await
                .unwrap();
            n += 1;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        n
    };
    let heard = async {
        other
            .write(|c| {
                events::insert(
                    c,
                    "invoice:elsewhere",
                    "invoice_cancelled",
                    "{\"from\":\"elsewhere\"}",
                    1,
                )
            })
            .await
            .unwrap();
        let message = tokio::time::timeout(std::time::Duration::from_secs(30), live.recv()).await;
        busy.store(false, std::sync::atomic::Ordering::Relaxed);
        message
    };
    let (n, message) = tokio::join!(local, heard);
    let message = message
        .expect("another writer's event was never delivered")
        .unwrap();
    assert!(
        message.text.contains("\"from\":\"elsewhere\""),
        "{}",
        message.text
    );
    assert!(n > 0);
}
