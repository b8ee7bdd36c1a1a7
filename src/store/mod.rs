//! Storage: one diesel code path for SQLite (bundled, WAL) and PostgreSQL.
//!
//! Reads run on a connection pool. Writes go through a small set of writer threads that run
//! whatever is queued in one database transaction (group commit), and every job learns its
//! result only after that transaction has committed. Should a job fail, the batch is rolled
//! back and each of its jobs runs again in a transaction of its own, so one job's failure never
//! touches another's work (and the common all-succeed case pays no savepoints). SQLite gets one
//! writer (it allows one at a time anyway, and a single writer never meets `database is
//! locked`); PostgreSQL gets several.

pub mod api_keys;
pub mod chain;
pub mod dev_chain;
pub mod events;
pub mod invoices;
pub mod lightning;
pub mod payments;
pub mod schema;
mod target;
pub mod webhooks;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, Pool};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use api_keys::ApiKeyRow;
pub use invoices::{InvoicePage, ListFilter};
pub use target::{Backend, DatabaseTarget};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Advisory lock key held while migrating, so processes starting together migrate once.
const MIGRATION_LOCK_KEY: i64 = 0x6361_7368_6965_7201;
/// How often the SQLite WAL is checkpointed in the background.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// Most items of a list bound into one statement (`IN (…)`, `= ANY(…)`); longer lists go in
/// chunks. SQLite's bound-variable limit is far above it.
const MAX_BIND_LIST: usize = 500;
/// Runs a job gets, alone, when it keeps giving way to other transactions (deadlocks).
const TRANSIENT_TRIES: u32 = 4;
/// Most jobs one write transaction takes from the queue.
const MAX_BATCH: usize = 128;

/// One connection type for both backends.
#[derive(diesel::MultiConnection)]
pub enum Conn {
    Sqlite(diesel::SqliteConnection),
    Postgres(diesel::PgConnection),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(diesel::result::Error),
    /// A row with the same unique key exists already; nothing was written. Callers decide what
    /// that means (a race lost to an identical write, usually) without knowing diesel.
    #[error("duplicate: {0}")]
    Duplicate(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Config(String),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// A conditional write found the row changed under it; the write was rolled back.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A write would take a stored total out of its range (a wallet's balance below zero or
    /// past `i64::MAX` msat); the write was rolled back.
    #[error("out of range: {0}")]
    OutOfRange(String),
}

impl StoreError {
    /// A PostgreSQL deadlock or serialization failure: the transaction was chosen to give way
    /// to another one and rolled back, and running it again alone is the documented remedy.
    /// (Writers of several jobs' batches can cross in the order they lock rows, such as the two
    /// wallets of a Lightning payment.)
    pub fn is_transient(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            StoreError::Database(Error::DatabaseError(
                DatabaseErrorKind::SerializationFailure,
                _,
            )) => true,
            // diesel names no kind for SQLSTATE 40P01; its message is PostgreSQL's own.
            StoreError::Database(Error::DatabaseError(DatabaseErrorKind::Unknown, info)) => {
                info.message().starts_with("deadlock detected")
            }
            _ => false,
        }
    }
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                StoreError::Duplicate(info.message().to_owned())
            }
            other => StoreError::Database(other),
        }
    }
}

/// Settings the store needs; the rest of the configuration stays outside.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pooled connections for reads.
    pub read_connections: u32,
    /// Writer threads (PostgreSQL only; SQLite always has one).
    pub postgres_writers: usize,
}

/// A queued write.
trait Job: Send {
    /// Runs the work inside the current transaction and keeps its result; says whether it
    /// succeeded. May be called again after a rollback.
    fn run(&mut self, conn: &mut Conn) -> bool;
    /// Hands the kept result to the caller once the transaction committed (or the commit error).
    fn finish(self: Box<Self>, outcome: Result<(), &StoreError>);
    /// Whether its last run failed only because another transaction was in the way (see
    /// [`StoreError::is_transient`]): running it again may well succeed.
    fn failed_transiently(&self) -> bool;
}

struct Pending<T, F> {
    work: F,
    result: Option<Result<T, StoreError>>,
    reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: Fn(&mut Conn) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &mut Conn) -> bool {
        let result = (self.work)(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, outcome: Result<(), &StoreError>) {
        let result = match (outcome, self.result) {
            (_, Some(Err(e))) => Err(e),
            (Ok(()), Some(ok)) => ok,
            (Err(e), _) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
            (Ok(()), None) => Err(StoreError::Unavailable("the write did not run".into())),
        };
        let _ = self.reply.send(result);
    }

    fn failed_transiently(&self) -> bool {
        matches!(&self.result, Some(Err(e)) if e.is_transient())
    }
}

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    target: DatabaseTarget,
    readers: Pool<ReadManager>,
    jobs: mpsc::Sender<Box<dyn Job>>,
    /// Signalled after every commit that appended an event (and, with PostgreSQL, when any
    /// process commits one): the dispatcher waits on it.
    commits: Arc<tokio::sync::Notify>,
    /// What this process's writers committed, for its dispatcher ([`Store::take_committed`]).
    handed: Arc<Mutex<HandedOver>>,
    /// This store's name in its `NOTIFY`s, so its listener can tell another process's commits
    /// (to be read from the outbox) from its own (handed over already).
    origin: Arc<str>,
    /// Background threads watch this and stop once every clone of the store is gone.
    _alive: Arc<()>,
}

impl Store {
    /// Connects, runs pending migrations and starts the writers. Blocking: call it before the
    /// server starts or from a blocking thread.
    pub fn open(target: &DatabaseTarget, options: &StoreOptions) -> Result<Store, StoreError> {
        target.check()?;
        let manager = Manager {
            target: target.clone(),
        };
        let mut conn = manager.connect().map_err(|e| connect_error(target, e))?;
        migrate(&mut conn)?;

        let readers = Pool::builder()
            .max_size(options.read_connections.max(1))
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            // No `SELECT 1` before every read: on PostgreSQL that doubled the round trips of
            // a one-query read. A connection is dropped instead once a read on it fails and a
            // ping after the failure fails too (`ReadManager::has_broken`).
            .test_on_check_out(false)
            .build(ReadManager(Manager {
                target: target.read_only(),
            }))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;

        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let queue = Arc::new(Mutex::new(queue));
        let writers = match target.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => options.postgres_writers.max(1),
        };
        let commits = Arc::new(tokio::sync::Notify::new());
        let handed = Arc::new(Mutex::new(HandedOver::default()));
        let origin: Arc<str> = hex::encode(rand::random::<[u8; 8]>()).into();
        let mut first = Some(conn);
        for n in 0..writers {
            let conn = match first.take() {
                Some(c) => c,
                None => manager.connect().map_err(|e| connect_error(target, e))?,
            };
            let (queue, manager) = (queue.clone(), manager.clone());
            let (commits, handed, origin) = (commits.clone(), handed.clone(), origin.clone());
            std::thread::Builder::new()
                .name(format!("db-writer-{n}"))
                .spawn(move || writer_loop(conn, manager, queue, &commits, &handed, &origin))
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        }
        let alive = Arc::new(());
        if target.backend() == Backend::Sqlite {
            let (manager, alive) = (manager.clone(), Arc::downgrade(&alive));
            std::thread::Builder::new()
                .name("db-checkpoint".into())
                .spawn(move || checkpoint_loop(manager, alive))
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        }
        Ok(Store {
            backend: target.backend(),
            target: target.clone(),
            readers,
            jobs,
            commits,
            handed,
            origin,
            _alive: alive,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The commit signal: notified after every commit that appended an event. One waiter
    /// (the dispatcher) is expected; a signal with nobody waiting is kept for the next wait.
    pub fn commits(&self) -> Arc<tokio::sync::Notify> {
        self.commits.clone()
    }

    /// The events this process's writers committed since the last call, oldest commit first,
    /// so the dispatcher can deliver them without reading them back. `None` when the outbox
    /// holds committed events that were not handed over: some were dropped (the dispatcher
    /// fell far behind), or another process committed some, or the listener reconnected and
    /// may have missed word of them.
    pub fn take_committed(&self) -> Option<Vec<Appended>> {
        let mut handed = self.handed.lock().unwrap_or_else(|e| e.into_inner());
        if std::mem::take(&mut handed.read_outbox) {
            handed.events.clear();
            return None;
        }
        Some(std::mem::take(&mut handed.events))
    }

    /// Blocks on a `LISTEN` connection that signals [`Store::commits`] whenever any process
    /// commits an event, and hands pushes to `on_push`, while `keep` can be upgraded. Returns
    /// at once on SQLite, where there is one process and its writers signal commits themselves.
    pub fn listen(&self, on_push: &events::OnPush, keep: &std::sync::Weak<()>) {
        if let DatabaseTarget::Postgres { url } = &self.target {
            let elsewhere = || {
                self.handed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .read_outbox = true;
                self.commits.notify_one();
            };
            events::listen(url, &self.origin, &elsewhere, on_push, keep);
        }
    }

    /// The last step of a shutdown, once nobody writes any more: returns after a write queued
    /// now has committed. SQLite's one writer takes jobs in order, so every earlier write has
    /// committed too, and the WAL is then folded into the database file. PostgreSQL's writers
    /// take jobs side by side; there, what matters is that every answered request and every
    /// stopped duty awaited its own writes already.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(())).await?;
        if self.backend == Backend::Sqlite {
            // Outside the writer: a checkpoint cannot run inside its open transaction.
            let manager = Manager {
                target: self.target.clone(),
            };
            tokio::task::spawn_blocking(move || {
                let mut conn = manager
                    .connect()
                    .map_err(|e| connect_error(&manager.target, e))?;
                conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);")?;
                Ok::<_, StoreError>(())
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        }
        Ok(())
    }

    /// Runs `f` on a pooled read-only connection (more than once if the connection turns out
    /// to be dead, so `f` must only read).
    ///
    /// SQLite reads are a few microseconds of CPU that never wait for a lock (WAL readers do not
    /// block), so they run right here: a hop to a blocking thread would cost more than the
    /// query. PostgreSQL reads wait on the network, so they move to tokio's blocking threads.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut Conn) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.readers.clone();
        let run = move || {
            // A pooled connection is not pinged before use. When a read fails (rare: a read
            // that finds nothing is `Ok`) and a ping fails too, the connection is dead (the
            // database restarted, the socket dropped): the pool drops it and the read, which
            // changes nothing, runs again on another. Every pooled connection may be dead
            // after a restart, hence as many tries as the pool holds, plus a new one.
            let mut tries = pool.max_size() + 1;
            loop {
                let mut conn = pool
                    .get()
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                let result = f(&mut conn.conn);
                tries -= 1;
                if result.is_ok() || tries == 0 {
                    return result;
                }
                conn.broken = conn.conn.batch_execute("SELECT 1").is_err();
                if !conn.broken {
                    return result;
                }
            }
        };
        match self.backend {
            Backend::Sqlite => run(),
            Backend::Postgres => tokio::task::spawn_blocking(run)
                .await
                .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?,
        }
    }

    /// Runs `f` in a write transaction (shared with other writes queued at the same moment)
    /// and returns its result once that transaction is durable. An `Err` from `f` undoes only
    /// `f`'s work. `f` may run more than once, so it must only touch the database.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&mut Conn) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Pending {
            work: f,
            result: None,
            reply,
        };
        self.jobs
            .send(Box::new(job))
            .map_err(|_| StoreError::Unavailable("the database writer has stopped".into()))?;
        rx.await.map_err(|_| {
            StoreError::Unavailable("the write transaction could not be started".into())
        })?
    }

    /// Holds the PostgreSQL session advisory lock `key` on a connection of its own, so one
    /// process of many does a duty (the chain watcher). Blocking: run it on a thread. Calls
    /// `taken` with whether the lock was free; if it was, holds it while `keep` can be
    /// upgraded, then releases it. Returns an error when the connection is lost (so is the
    /// lock: PostgreSQL releases it with the session). On SQLite, with one process, the lock
    /// is always taken and nothing is held.
    pub fn hold_lock(
        &self,
        key: i64,
        keep: &std::sync::Weak<()>,
        taken: impl FnOnce(bool),
    ) -> Result<(), StoreError> {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let DatabaseTarget::Postgres { url } = &self.target else {
            taken(true);
            return Ok(());
        };
        let mut conn =
            diesel::PgConnection::establish(url).map_err(|e| connect_error(&self.target, e))?;
        let got: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind::<diesel::sql_types::BigInt, _>(key)
            .get_result(&mut conn)?;
        taken(got.locked);
        if !got.locked {
            return Ok(());
        }
        let mut ticks = 0u32;
        while keep.strong_count() > 0 {
            std::thread::sleep(Duration::from_millis(100));
            ticks += 1;
            // About once a second: a connection that died took the lock with it.
            if ticks.is_multiple_of(10) {
                conn.batch_execute("SELECT 1").map_err(|e| {
                    StoreError::Unavailable(format!("the connection holding a lock: {e}"))
                })?;
            }
        }
        diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<diesel::sql_types::BigInt, _>(key)
            .execute(&mut conn)?;
        Ok(())
    }

    /// Takes the advisory lock `key` if it is free (always on SQLite), for a duty one process
    /// of many does. The lock lives on a connection held by a thread of its own (named
    /// `thread`), released when the [`Lead`] is dropped; `None` when another process holds it.
    pub async fn take_lead(&self, key: i64, thread: &str) -> Result<Option<Lead>, String> {
        let keep = Arc::new(());
        if self.backend() == Backend::Sqlite {
            let (never, lost) = tokio::sync::oneshot::channel();
            return Ok(Some(Lead {
                _keep: keep,
                _never: Some(never),
                lost,
            }));
        }
        let weak = Arc::downgrade(&keep);
        let (taken_tx, taken_rx) = tokio::sync::oneshot::channel();
        let (lost_tx, lost_rx) = tokio::sync::oneshot::channel();
        let store = self.clone();
        let name = thread.to_owned();
        std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let held = store.hold_lock(key, &weak, |taken| {
                    let _ = taken_tx.send(taken);
                });
                if let Err(e) = held {
                    tracing::warn!(error = %e, lock = %name, "lock connection failed");
                }
                let _ = lost_tx.send(());
            })
            .map_err(|e| format!("cannot start the lock thread: {e}"))?;
        match taken_rx.await {
            Ok(true) => Ok(Some(Lead {
                _keep: keep,
                _never: None,
                lost: lost_rx,
            })),
            Ok(false) => Ok(None),
            Err(_) => Err(format!(
                "could not reach the database for the {thread} lock"
            )),
        }
    }

    /// `SELECT 1` on a pooled connection.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| {
            diesel::sql_query("SELECT 1").execute(c)?;
            Ok(())
        })
        .await
    }
}

fn connect_error(target: &DatabaseTarget, e: diesel::ConnectionError) -> StoreError {
    StoreError::Unavailable(format!("cannot open {}: {e}", target.redacted()))
}

/// An event appended by a transaction of this process, handed to its dispatcher once the
/// transaction committed: `(id, topic, payload)` as the outbox holds them.
#[derive(Debug, Clone)]
pub struct Appended {
    pub id: i64,
    pub topic: String,
    pub payload: String,
}

/// Most committed events waiting for the dispatcher in memory. Past it (a dispatcher far
/// behind, or none: an operator command) they are all dropped and the dispatcher reads them
/// from the outbox, as it does every other process's.
const HANDED_OVER_MAX: usize = 4096;

/// Committed events on their way from the writers to the dispatcher.
#[derive(Default)]
struct HandedOver {
    events: Vec<Appended>,
    /// The outbox holds committed events not among `events`: the dispatcher must read it.
    read_outbox: bool,
}

thread_local! {
    /// Filled by `events::insert` on a writer thread: the events the open transaction appended,
    /// so its commit wakes the dispatcher and hands them over. Kept here rather than by each
    /// caller, so no caller can forget the wake-up.
    static APPENDED: std::cell::RefCell<Vec<Appended>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn appended_in_this_transaction(event: Appended) {
    APPENDED.with(|a| a.borrow_mut().push(event));
}

fn appended_any() -> bool {
    APPENDED.with(|a| !a.borrow().is_empty())
}

/// The events the transaction since the last call appended; clears them.
fn take_appended() -> Vec<Appended> {
    APPENDED.with(|a| std::mem::take(&mut *a.borrow_mut()))
}

/// Takes what is queued, runs it in one transaction, commits, then tells each job.
fn writer_loop(
    mut conn: Conn,
    manager: Manager,
    queue: Arc<Mutex<mpsc::Receiver<Box<dyn Job>>>>,
    commits: &tokio::sync::Notify,
    handed: &Mutex<HandedOver>,
    origin: &str,
) {
    // Hands the events a committed transaction appended to this process's dispatcher and
    // wakes it; those of a rolled-back one are dropped.
    let committed = |outcome: &Result<(), StoreError>| {
        let appended = take_appended();
        if outcome.is_ok() && !appended.is_empty() {
            if let Ok(mut handed) = handed.lock() {
                if handed.events.len() + appended.len() > HANDED_OVER_MAX {
                    handed.events.clear();
                    handed.read_outbox = true;
                } else {
                    handed.events.extend(appended);
                }
            }
            commits.notify_one();
        }
    };
    loop {
        let mut batch = {
            let Ok(queue) = queue.lock() else { return };
            let Ok(first) = queue.recv() else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        if let Err(e) = begin(&mut conn) {
            tracing::error!(error = %e, "cannot begin a write transaction");
            let e = StoreError::from(e);
            for job in batch {
                job.finish(Err(&e));
            }
            if let Ok(fresh) = manager.connect() {
                conn = fresh;
            }
            continue;
        }
        // Stop at the first failure: on PostgreSQL the rest of the transaction is void anyway.
        let all_ok = batch.iter_mut().all(|job| job.run(&mut conn));
        if all_ok {
            let outcome = commit(&mut conn, origin);
            committed(&outcome);
            for job in batch {
                job.finish(outcome.as_ref().map(|_| ()));
            }
            continue;
        }
        let _ = <Conn as Connection>::TransactionManager::rollback_transaction(&mut conn);
        take_appended();
        if batch.len() == 1 && !batch.iter().any(|job| job.failed_transiently()) {
            // Its own failure, already rolled back: the caller gets that error.
            for job in batch {
                job.finish(Ok(()));
            }
            continue;
        }
        // Someone failed: give every job a transaction of its own, and one that gave way to
        // another transaction a few more tries.
        for mut job in batch {
            let mut tries = TRANSIENT_TRIES;
            let outcome = loop {
                let outcome = begin(&mut conn).map_err(StoreError::from).and_then(|()| {
                    if job.run(&mut conn) {
                        commit(&mut conn, origin)
                    } else {
                        <Conn as Connection>::TransactionManager::rollback_transaction(&mut conn)
                            .map_err(StoreError::from)
                    }
                });
                tries -= 1;
                if tries == 0 || !job.failed_transiently() {
                    break outcome;
                }
                take_appended();
            };
            committed(&outcome);
            job.finish(outcome.as_ref().map(|_| ()));
        }
    }
}

fn commit(conn: &mut Conn, origin: &str) -> Result<(), StoreError> {
    // One announcement per transaction, however many events it appended: delivered to every
    // listening process when (and only if) the commit succeeds.
    let announced = match appended_any() {
        true => events::announce(conn, origin),
        false => Ok(()),
    };
    let committed = announced.and_then(|()| {
        <Conn as Connection>::TransactionManager::commit_transaction(conn).map_err(StoreError::from)
    });
    if committed.is_err() {
        let _ = <Conn as Connection>::TransactionManager::rollback_transaction(conn);
    }
    committed
}

/// Copies the SQLite WAL back into the database file off the write path. The writer's own
/// automatic checkpoint would stall whichever batch crosses the threshold; a PASSIVE
/// checkpoint here never blocks the writer or readers.
fn checkpoint_loop(manager: Manager, alive: std::sync::Weak<()>) {
    let Ok(mut conn) = manager.connect() else {
        return;
    };
    while alive.upgrade().is_some() {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

/// SQLite takes the write lock up front (`BEGIN IMMEDIATE`) so no statement in the batch can
/// meet a lock upgrade failure.
fn begin(conn: &mut Conn) -> QueryResult<()> {
    match conn {
        Conn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"),
        Conn::Postgres(c) => AnsiTransactionManager::begin_transaction(c),
    }
}

fn migrate(conn: &mut Conn) -> Result<(), StoreError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
    match conn {
        Conn::Sqlite(c) => {
            // WAL is a property of the file: set once, kept by every later connection.
            c.batch_execute("PRAGMA journal_mode = WAL;")?;
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(failed)?;
        }
        Conn::Postgres(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .execute(c)?;
            let result = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                .execute(c)?;
            result.map_err(failed)?;
        }
    }
    Ok(())
}

/// Opens connections for one target, with the per-connection settings each backend needs.
#[derive(Clone)]
struct Manager {
    target: DatabaseTarget,
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = diesel::ConnectionError;

    fn connect(&self) -> Result<Conn, diesel::ConnectionError> {
        let setup_failed =
            |e: diesel::result::Error| diesel::ConnectionError::CouldntSetupConfiguration(e);
        match &self.target {
            DatabaseTarget::Sqlite {
                path, read_only, ..
            } => {
                let mut c = diesel::SqliteConnection::establish(&path.to_string_lossy())?;
                // busy_timeout first: the other pragmas may already need to wait for a lock.
                c.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                )
                .map_err(setup_failed)?;
                if *read_only {
                    c.batch_execute("PRAGMA query_only = 1;")
                        .map_err(setup_failed)?;
                }
                Ok(Conn::Sqlite(c))
            }
            DatabaseTarget::Postgres { url, .. } => {
                Ok(Conn::Postgres(diesel::PgConnection::establish(url)?))
            }
        }
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), diesel::ConnectionError> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, _conn: &mut Conn) -> bool {
        false
    }
}

/// A pooled read connection, marked broken when a read failed and a ping after it failed too.
struct ReadConn {
    conn: Conn,
    broken: bool,
}

/// The read pool's manager: [`Manager`]'s connections, checked only after a failure.
struct ReadManager(Manager);

impl ManageConnection for ReadManager {
    type Connection = ReadConn;
    type Error = diesel::ConnectionError;

    fn connect(&self) -> Result<ReadConn, diesel::ConnectionError> {
        Ok(ReadConn {
            conn: self.0.connect()?,
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut ReadConn) -> Result<(), diesel::ConnectionError> {
        self.0.is_valid(&mut conn.conn)
    }

    fn has_broken(&self, conn: &mut ReadConn) -> bool {
        conn.broken
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

/// A duty's lead ([`Store::take_lead`]): the lock is held while this lives; `lost` resolves
/// if it is lost (the connection holding it failed).
pub struct Lead {
    _keep: Arc<()>,
    /// Keeps `lost` pending where nothing can be lost (SQLite).
    _never: Option<tokio::sync::oneshot::Sender<()>>,
    pub lost: tokio::sync::oneshot::Receiver<()>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error};

    struct Info(&'static str);

    impl DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn database(kind: DatabaseErrorKind, message: &'static str) -> StoreError {
        StoreError::Database(Error::DatabaseError(kind, Box::new(Info(message))))
    }

    #[test]
    fn only_giving_way_to_another_transaction_is_worth_a_retry() {
        // PostgreSQL's words for SQLSTATE 40P01, which diesel files under Unknown.
        assert!(database(DatabaseErrorKind::Unknown, "deadlock detected").is_transient());
        assert!(database(
            DatabaseErrorKind::SerializationFailure,
            "could not serialize access due to concurrent update"
        )
        .is_transient());
        assert!(!database(DatabaseErrorKind::Unknown, "syntax error at or near").is_transient());
        assert!(!database(DatabaseErrorKind::CheckViolation, "deadlock detected?").is_transient());
        assert!(!StoreError::Duplicate("deadlock detected".into()).is_transient());
        assert!(!StoreError::Conflict("deadlock detected".into()).is_transient());
    }
}
