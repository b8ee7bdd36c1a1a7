//! Starts the real server on port 0 with a database of its own, and talks HTTP to it.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::dev::ServerHandle;
use clap::Parser;
use diesel::{Connection, RunQueryDsl};
use serde_json::{json, Value};

use cashier::app::Application;
use cashier::config::Settings;
use cashier::store::Store;

/// A regtest P2PKH address (the key hash of BCHN's CashAddr vectors).
pub const ADDR: &str = "bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvs";
/// The same key, token-aware.
pub const ADDR_TOKEN: &str = "bchreg:zr6m7j9njldwwzlg9v7v53unlr4jkmx6eyxaqlk5nr";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(TestApp)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await).await
            }
        }
    )*};
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// A valid merchant key.
    pub key: String,
    pub store: Store,
    pub database_url: String,
    handle: ServerHandle,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, &[]).await
    }

    /// Starts a server with extra `cashier serve` flags.
    pub async fn spawn_with(backend: Backend, extra: &[&str]) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match backend {
            Backend::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("test.sqlite").display()
            ),
            Backend::Postgres => fresh_postgres_database(),
        };
        let mut args = vec![
            "cashier serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database_url,
            "--workers",
            "2",
            "--db-connections",
            "4",
        ];
        args.extend_from_slice(extra);
        let settings = Settings::try_parse_from(args).expect("test settings parse");
        let app = Application::build(&settings).await.expect("server starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let store = app.store().clone();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());

        let key = cashier::auth::generate_key();
        let hash = cashier::auth::key_hash(&key);
        store
            .write(move |c| cashier::store::api_keys::insert(c, &hash, Some("tests"), 0))
            .await
            .expect("test key");
        TestApp {
            base,
            client: reqwest::Client::new(),
            key,
            store,
            database_url,
            handle,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a create body with the merchant key; returns status and JSON.
    pub async fn create(&self, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url("/jpp/invoices/"))
            .header("X-Api-Key", &self.key)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.expect("JSON body"))
    }

    /// Creates a one-output invoice and returns its JSON.
    pub async fn create_simple(&self, amount: u64) -> Value {
        let (status, body) = self
            .create(&json!({"outputs": [{"address": ADDR, "amount": amount}], "memo": "test"}))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.expect("JSON body"))
    }

    /// Invoices the merchant sees, all statuses, via the list endpoint.
    pub async fn count_invoices(&self) -> usize {
        let r = self
            .client
            .get(self.url("/jpp/invoices/?limit=100"))
            .header("X-Api-Key", &self.key)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.expect("JSON");
        body["results"].as_array().expect("results").len()
    }

    pub async fn events(&self, topic: &str) -> Vec<(i64, String, String)> {
        let topic = topic.to_owned();
        self.store
            .read(move |c| cashier::store::events::for_topic(c, &topic))
            .await
            .expect("events")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stops accepting at once; the runtime ends the rest with the test.
        drop(self.handle.stop(false));
    }
}

/// A new, empty database in the test PostgreSQL cluster (`CASHIER_TEST_POSTGRES_URL`).
fn fresh_postgres_database() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let admin = std::env::var("CASHIER_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "CASHIER_TEST_POSTGRES_URL is not set: run the suite with ./scripts/test, which starts a \
             throwaway PostgreSQL, or point it at a server where this user may CREATE DATABASE"
        )
    });
    let name = format!(
        "cashier_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        hex::encode(rand::random::<[u8; 4]>())
    );
    let mut conn = diesel::PgConnection::establish(&admin).expect("connect to the test PostgreSQL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create test database");
    // Replace the database name (the last path segment) of the admin URL.
    let (head, tail) = admin.split_at(admin.rfind('/').expect("URL with a database"));
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{head}/{name}{query}")
}
