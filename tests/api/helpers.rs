//! Starts the real server on port 0 with a database of its own, and talks HTTP to it.

use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser;
use diesel::{Connection, RunQueryDsl};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use cashier::app::Application;
use cashier::chain::{Address, Network, Nft, NftCapability, OutPoint, Output, TokenData, Txid};
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

/// Runs each named `async fn(TestApp)` once on SQLite and once on PostgreSQL; with
/// `[flags] => names`, each server also gets those `cashier serve` flags.
#[macro_export]
macro_rules! on_both_backends {
    ($flags:tt => $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Sqlite, &$flags).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Postgres, &$flags).await).await
            }
        }
    )*};
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

/// An HTTP client as Cashier makes them (reqwest has no TLS provider of its own here).
pub fn http_client() -> reqwest::Client {
    http_builder().build().expect("an HTTP client")
}

/// [`http_client`]'s builder, to set more.
pub fn http_builder() -> reqwest::ClientBuilder {
    cashier::outbound::Outbound::new(None)
        .expect("the TLS setup")
        .http()
}

pub struct TestApp {
    pub base: String,
    pub payments: cashier::service::Payments,
    pub lightning: cashier::service::Lightning,
    pub hub: std::sync::Arc<cashier::notify::Hub>,
    pub client: reqwest::Client,
    /// A valid merchant key.
    pub key: String,
    pub store: Store,
    pub database_url: String,
    handle: cashier::app::Shutdown,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, &[]).await
    }

    /// Starts a server with extra `cashier serve` flags.
    pub async fn spawn_with(backend: Backend, extra: &[&str]) -> TestApp {
        let (database_url, dir) = empty_database(backend);
        Self::spawn_on(database_url, dir, extra).await
    }

    /// Starts a server on an existing database (what an upgrade finds).
    pub async fn spawn_on_database(database_url: String, dir: tempfile::TempDir) -> TestApp {
        Self::spawn_on(database_url, dir, &[]).await
    }

    /// A new one-output invoice and a signed transaction from a fresh wallet that pays it.
    pub async fn invoice_and_payment(&self) -> (String, Vec<u8>) {
        let invoice = self.create_simple(4000).await;
        let wallet = TestWallet::new();
        let coin = wallet.fund(self, 20_000, None).await;
        let raw = wallet.pay(&[coin], invoice_outputs(&invoice));
        (invoice["payment_id"].as_str().unwrap().to_owned(), raw)
    }

    /// Cancels invoice `id` with the test key; the status of the answer.
    pub async fn cancel(&self, id: &str) -> u16 {
        self.client
            .post(self.url(&format!("/jpp/invoices/{id}/cancel/")))
            .header("X-Api-Key", &self.key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A new invoice of `amount` sats, cancelled: its id.
    pub async fn cancelled_invoice(&self, amount: u64) -> String {
        let id = self.create_simple(amount).await["payment_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(self.cancel(&id).await, 200);
        id
    }

    /// Posts `raw` to the invoice's watchtower `step` endpoint (`pay` or `verify`): the status
    /// and the JSON answer.
    pub async fn post_tx(&self, id: &str, step: &str, raw: &[u8]) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(&format!("/api/jpp/invoices/{id}/{step}/")))
            .json(&json!({"raw_tx_hex": hex::encode(raw)}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// Posts `raw` to the invoice's watchtower `pay/` endpoint and requires success.
    pub async fn pay(&self, id: &str, raw: &[u8]) {
        let (status, answer) = self.post_tx(id, "pay", raw).await;
        assert_eq!(status, 200, "{answer}");
    }

    /// Stops the HTTP server (and with it the dispatcher); the store stays usable.
    pub async fn stop_server(&self) {
        self.handle.stop(true).await;
    }

    /// A second server process on this app's database, as in a scaled-out deployment.
    pub async fn another_on_the_same_database(&self) -> TestApp {
        self.another_on_the_same_database_with(&[]).await
    }

    /// [`Self::another_on_the_same_database`] with extra `cashier serve` flags.
    pub async fn another_on_the_same_database_with(&self, extra: &[&str]) -> TestApp {
        Self::spawn_on(
            self.database_url.clone(),
            tempfile::tempdir().expect("temp dir"),
            extra,
        )
        .await
    }

    /// Posts `body` to the dev chain endpoint `path` (`/dev/mine`, `/dev/reorg`, …): the
    /// status and the JSON answer.
    pub async fn dev(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("dev request");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Mines `blocks` blocks on the dev chain.
    pub async fn mine(&self, blocks: u32) {
        let (status, body) = self.dev("/dev/mine", json!({"blocks": blocks})).await;
        assert_eq!(status, 200, "{body}");
    }

    /// Reads invoice `id` until `done` holds for it (the chain watcher works beside the
    /// request that moved the chain), at most 30 s; returns it.
    pub async fn invoice_when(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/api/jpp/invoices/{id}");
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            loop {
                let (_, invoice) = self.get_json(&path).await;
                if done(&invoice) {
                    return invoice;
                }
                // A pause between reads, not a wait for anything: the loop ends on the state.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the invoice reached the state in time")
    }

    /// A server on this app's database: what a restart finds.
    pub async fn restart(mut self) -> TestApp {
        self.handle.stop(true).await;
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"));
        let database_url = self.database_url.clone();
        drop(self);
        Self::spawn_on(database_url, dir, &[]).await
    }

    async fn spawn_on(database_url: String, dir: tempfile::TempDir, extra: &[&str]) -> TestApp {
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
        let payments = app.payments().clone();
        let lightning = app.lightning().clone();
        let hub = app.dispatcher().hub().clone();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());

        let key = crate::keys::merchant_key(&store).await;
        TestApp {
            base,
            payments,
            lightning,
            hub,
            client: http_client(),
            key,
            store,
            database_url,
            handle,
            _dir: dir,
        }
    }

    /// A new store (merchant) named `name`; returns its id.
    pub async fn make_store(&self, name: &str) -> i64 {
        let name = name.to_owned();
        self.store
            .write(move |c| cashier::store::api_keys::insert_store(c, &name, 0))
            .await
            .expect("store")
            .expect("a new store name")
    }

    /// A new key of `store_id` holding `scopes` (e.g. "invoices:create"); returns the key.
    pub async fn make_key(&self, store_id: i64, scopes: &str) -> String {
        let scopes = cashier::auth::Scopes::parse(scopes).expect("scopes");
        crate::keys::insert_key(&self.store, store_id, scopes).await
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

    /// An open invoice for `amount` sats at ADDR whose time ran out a second ago, written
    /// directly so no test has to wait for a clock. Returns its id.
    pub async fn insert_expired_invoice(&self, amount: u64) -> String {
        self.insert_invoice_expiring_in(amount, -1_000).await
    }

    /// An open invoice for `amount` sats at ADDR that expires `ms` from now (negative: ago),
    /// below the create API's 60-second floor. Returns its id.
    pub async fn insert_invoice_expiring_in(&self, amount: u64, ms: i64) -> String {
        let now = cashier::units::now_ms();
        self.insert_invoice(amount, 1000, now - 61_000, now + ms)
            .await
    }

    /// An open invoice for `amount` sats at ADDR asking `fee_per_kb`, created and expiring at
    /// the given times, written directly so a test can place it anywhere in time. Returns its
    /// id.
    pub async fn insert_invoice(
        &self,
        amount: u64,
        fee_per_kb: u64,
        created_ms: i64,
        expires_ms: i64,
    ) -> String {
        use cashier::jpp::{Invoice, InvoiceOutput};
        let invoice = Invoice {
            fee_per_kb,
            ..Invoice::open(
                vec![InvoiceOutput {
                    address: Address::parse(ADDR, Network::Regtest).unwrap(),
                    amount,
                    description: None,
                    token: None,
                }],
                created_ms,
                expires_ms,
            )
        };
        let id = invoice.id.to_string();
        self.store
            .write(move |c| cashier::store::invoices::insert(c, &invoice, None))
            .await
            .expect("insert");
        id
    }

    /// The payment row recorded for the transaction `raw`, if any.
    pub async fn payment_of(&self, raw: &[u8]) -> Option<cashier::store::payments::PaymentRow> {
        let txid = cashier::chain::txid_of(raw);
        self.store
            .read(move |c| cashier::store::payments::by_txid(c, txid))
            .await
            .unwrap()
    }

    pub async fn events(&self, topic: &str) -> Vec<(i64, String, String)> {
        let topic = topic.to_owned();
        self.store
            .read(move |c| cashier::store::events::for_topic(c, &topic))
            .await
            .expect("events")
    }

    /// A new Lightning wallet named `name`, made through `POST /api/v1/account`.
    pub async fn ln_account(&self, name: &str) -> LnWallet {
        let r = self
            .client
            .post(self.url("/api/v1/account"))
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let w: Value = r.json().await.unwrap();
        let field = |k: &str| w[k].as_str().unwrap().to_owned();
        LnWallet {
            id: field("id"),
            inkey: field("inkey"),
            adminkey: field("adminkey"),
        }
    }

    /// An invoice of `sats` with `memo` to `wallet` (by its invoice key); requires 201.
    pub async fn ln_invoice(&self, wallet: &LnWallet, sats: u64, memo: &str) -> Value {
        let (status, body) = self
            .ln_payments_post(
                &wallet.inkey,
                json!({"out": false, "amount": sats, "memo": memo}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// `POST /api/v1/payments` as lnbits-rs sends it: JSON without a Content-Type header.
    /// Returns the status and the JSON body (null if there is none).
    pub async fn ln_payments_post(&self, key: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url("/api/v1/payments"))
            .header("X-Api-Key", key)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
}

/// A Lightning wallet (LNbits-compatible) and its keys.
pub struct LnWallet {
    pub id: String,
    pub inkey: String,
    pub adminkey: String,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stops accepting at once; the runtime ends the rest with the test.
        drop(self.handle.stop(false));
    }
}

/// The URL of a new, empty database on `backend`, and the folder that holds it (SQLite) or
/// nothing (PostgreSQL).
pub fn empty_database(backend: Backend) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("test.sqlite").display()
        ),
        Backend::Postgres => fresh_postgres_database(),
    };
    (url, dir)
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

/// A client socket to the server.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket to `path` on the server.
pub async fn connect(app: &TestApp, path: &str) -> Socket {
    let url = format!("{}{path}", app.base.replacen("http://", "ws://", 1));
    tokio_tungstenite::connect_async(url)
        .await
        .expect("socket")
        .0
}

/// The next text message (pings are answered by the client library).
/// A message that never comes fails the test after 60 s instead of holding the suite.
pub async fn next_text(socket: &mut Socket) -> Value {
    let next = async {
        loop {
            match socket.next().await.expect("a message").expect("a frame") {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), next)
        .await
        .expect("a message within 60 s")
}

/// A wallet on the dev chain: one key, coins from the faucet, payments built and signed the
/// way a wallet builds them.
pub struct TestWallet {
    pub secp: bitcoin::secp256k1::Secp256k1<bitcoin::secp256k1::All>,
    pub key: bitcoin::secp256k1::SecretKey,
    pub address: String,
}

impl TestWallet {
    pub fn new() -> TestWallet {
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let key = cashier::chain::wallet::random_key();
        let script = cashier::chain::sighash::p2pkh_locking_bytecode(&key.public_key(&secp));
        let address =
            bitcoincash::address::cashaddr::encode("bchreg", 0, &script[3..23]).expect("address");
        TestWallet { secp, key, address }
    }

    /// A faucet coin of `amount` sats (and `token`, invoice-output JSON) for this wallet.
    pub async fn fund(
        &self,
        app: &TestApp,
        amount: u64,
        token: Option<Value>,
    ) -> (OutPoint, Output) {
        let mut body = json!({"address": self.address, "amount": amount});
        if let Some(t) = &token {
            body["token"] = t.clone();
        }
        let r = app
            .client
            .post(app.url("/dev/faucet"))
            .json(&body)
            .send()
            .await
            .expect("faucet");
        assert_eq!(r.status(), 201);
        let coin: Value = r.json().await.expect("faucet JSON");
        let outpoint = OutPoint {
            txid: Txid::from_hex(coin["txid"].as_str().unwrap()).unwrap(),
            vout: 0,
        };
        let mut output = output_of(&json!({"address": self.address, "amount": amount}));
        output.token = token.map(|t| token_of(&t));
        (outpoint, output)
    }

    /// A signed transaction spending `coins` to `outputs` (+ change) at 1 sat/byte.
    pub fn pay(&self, coins: &[(OutPoint, Output)], outputs: Vec<Output>) -> Vec<u8> {
        self.pay_at(coins, outputs, 1000)
    }

    pub fn pay_at(
        &self,
        coins: &[(OutPoint, Output)],
        outputs: Vec<Output>,
        fee_per_kb: u64,
    ) -> Vec<u8> {
        cashier::chain::wallet::build_payment(&self.secp, &self.key, coins, outputs, fee_per_kb)
            .expect("build payment")
            .serialize()
    }

    /// `pay_at` signed as `how` says: Schnorr or ECDSA, and the hash type.
    pub fn pay_with(
        &self,
        coins: &[(OutPoint, Output)],
        outputs: Vec<Output>,
        fee_per_kb: u64,
        how: cashier::chain::sighash::SignWith,
    ) -> Vec<u8> {
        cashier::chain::wallet::build_payment_with(
            &self.secp, &self.key, coins, outputs, fee_per_kb, how,
        )
        .expect("build payment")
        .serialize()
    }
}

/// The outputs an invoice (JSON) asks for, as transaction outputs.
pub fn invoice_outputs(invoice: &Value) -> Vec<Output> {
    invoice["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(output_of)
        .collect()
}

pub fn output_of(o: &Value) -> Output {
    let address = Address::parse(o["address"].as_str().unwrap(), Network::Regtest).unwrap();
    Output {
        value: o["amount"].as_u64().unwrap(),
        token: o.get("token").filter(|t| !t.is_null()).map(token_of),
        locking_bytecode: address.locking_bytecode(),
    }
}

fn token_of(t: &Value) -> TokenData {
    let mut category = [0u8; 32];
    hex::decode_to_slice(t["category"].as_str().unwrap(), &mut category).unwrap();
    let nft = t.get("nft").filter(|n| !n.is_null()).map(|n| Nft {
        capability: NftCapability::parse(n["capability"].as_str().unwrap()).unwrap(),
        commitment: hex::decode(n["commitment"].as_str().unwrap_or("")).unwrap(),
    });
    TokenData::new(category, t["amount"].as_u64().unwrap_or(0), nft).unwrap()
}

/// A store of its own on `database_url` (one reader, one writer), beside any server on it:
/// no dispatcher, no duties.
pub async fn open_store(database_url: &str) -> Store {
    let target = cashier::store::DatabaseTarget::parse(database_url).unwrap();
    let options = cashier::store::StoreOptions {
        read_connections: 1,
        postgres_writers: 1,
    };
    tokio::task::spawn_blocking(move || Store::open(&target, &options))
        .await
        .unwrap()
        .unwrap()
}
