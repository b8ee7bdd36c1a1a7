//! `--funding-source lnbits` against a real LNbits (PyPI `lnbits` 1.6.2 with its FakeWallet,
//! started by `scripts/lnbits`): Cashier's invoice is made in LNbits wallet X, paid there from
//! wallet Y, and Cashier hears of it on X's socket, settles it and tells its own wallet's
//! socket. A payment out goes through X; a definite refusal fails it, and the money comes back.
//!
//! The same over https:// and wss://: a TLS-terminating proxy with a certificate from the
//! test's own CA in front of LNbits, trusted through `--extra-ca-file` (issue 14's done-when).
//!
//! The first run installs LNbits in a virtualenv (`scripts/test` does it beforehand); it needs
//! python3 with venv and PyPI. Never skipped: without them the test fails and says why.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use cashier::app::Application;
use cashier::config::Settings;
use clap::Parser;

use crate::helpers::{Backend, TestApp};
use crate::tls::{Ca, Crossed, TlsProxy};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running LNbits; stopped when dropped, whatever the test's outcome.
struct Lnbits {
    base: String,
    pid: u32,
    /// The super user's bearer token (admin top-ups).
    token: String,
    http: reqwest::Client,
    /// Holds its data folder; removed after the process is stopped.
    _dir: tempfile::TempDir,
}

impl Drop for Lnbits {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

/// LNbits' wallet, as `POST /api/v1/account` answers.
struct Wallet {
    id: String,
    inkey: String,
    adminkey: String,
}

impl Lnbits {
    async fn start() -> Lnbits {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let token_file = dir.path().join("token");
        // The virtualenv where the script makes it by default (scripts/test installs it there
        // once); the script's own temporary files go into this test's folder.
        let venv = std::env::var_os("LNBITS_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("cashier-lnbits-venv"));
        let mut command = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lnbits"));
        command
            .arg(port.to_string())
            .env("LNBITS_VENV", &venv)
            .env("LNBITS_TOKEN_FILE", &token_file)
            .env("TMPDIR", dir.path());
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("the script's thread")
            .expect("scripts/lnbits runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stdout.lines().last().unwrap_or_default();
        let Some((base, pid)) = last.split_once(',').filter(|_| output.status.success()) else {
            panic!(
                "scripts/lnbits could not start LNbits ({}). It needs python3 with venv and, \
                 for the first install into {}, PyPI (pip install lnbits==1.6.2). Output:\n\
                 {stdout}\n{stderr}",
                output.status,
                venv.display()
            );
        };
        let lnbits = Lnbits {
            base: base.to_owned(),
            pid: pid.trim().parse().expect("LNbits' PID"),
            token: std::fs::read_to_string(&token_file)
                .expect("the super user's token")
                .trim()
                .to_owned(),
            http: crate::helpers::http_client(),
            _dir: dir,
        };
        let r = lnbits
            .http
            .get(format!("{}/api/v1/health", lnbits.base))
            .send()
            .await
            .expect("LNbits answers");
        assert!(r.status().is_success(), "LNbits health: {}", r.status());
        lnbits
    }

    /// Where it listens (plain HTTP), for a proxy in front of it.
    fn addr(&self) -> std::net::SocketAddr {
        self.base
            .trim_start_matches("http://")
            .parse()
            .expect("LNbits' address")
    }

    async fn account(&self, name: &str) -> Wallet {
        let w: Value = self
            .http
            .post(format!("{}/api/v1/account", self.base))
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let text = |k: &str| {
            w[k].as_str()
                .unwrap_or_else(|| panic!("{k} in {w}"))
                .to_owned()
        };
        let wallet = Wallet {
            id: text("id"),
            inkey: text("inkey"),
            adminkey: text("adminkey"),
        };
        // New LNbits wallets count in USD, which makes every payment look up a rate (slow,
        // and offline here): count in sats only.
        let r = self
            .http
            .patch(format!("{}/api/v1/wallet", self.base))
            .header("X-Api-Key", &wallet.adminkey)
            .json(&json!({"currency": ""}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        wallet
    }

    async fn top_up(&self, wallet: &Wallet, sats: u64) {
        let r = self
            .http
            .put(format!("{}/users/api/v1/balance", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"id": wallet.id, "amount": sats}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    async fn post_payment(&self, key: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/api/v1/payments", self.base))
            .header("X-Api-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, key: &str, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .header("X-Api-Key", key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

async fn cashier_post(app: &TestApp, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = app.client.post(app.url(path)).json(&body);
    if let Some(key) = key {
        r = r.header("X-Api-Key", key);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn cashier_get(app: &TestApp, path: &str, key: &str) -> Value {
    app.client
        .get(app.url(path))
        .header("X-Api-Key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// An invoice of another Cashier, which the remote funding source cannot pay: it says
/// "failed", Cashier fails the payment, and the wallet keeps `balance_msat` (kept on its row
/// and summed from its payments alike).
async fn a_foreign_invoice_is_refused(
    app: &TestApp,
    adminkey: &str,
    inkey: &str,
    sats: u64,
    balance_msat: i64,
) {
    let elsewhere = TestApp::spawn(Backend::Sqlite).await;
    let (_, shop) = account(&elsewhere, "elsewhere").await;
    let (status, foreign) = cashier_post(
        &elsewhere,
        "/api/v1/payments",
        Some(&shop),
        json!({"out": false, "amount": sats, "memo": "not payable from here"}),
    )
    .await;
    assert_eq!(status, 201, "{foreign}");
    let (status, refused) = cashier_post(
        app,
        "/api/v1/payments",
        Some(adminkey),
        json!({"out": true, "bolt11": foreign["bolt11"]}),
    )
    .await;
    assert_eq!(status, 520, "{refused}");
    assert_eq!(refused["status"], "failed");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("Only internal invoices can be used!"),
        "{refused}"
    );
    assert_eq!(
        cashier_get(app, "/api/v1/wallet", inkey).await["balance"],
        balance_msat
    );
    // Every settlement learnt from the source, every payment out through it and this failure
    // kept each wallet's balance equal to the sum of its payment rows.
    let checked = app
        .store
        .read(|c| cashier::store::lightning::check_balances(c, None))
        .await
        .unwrap();
    assert!(
        !checked.is_empty() && checked.iter().all(|c| c.agrees()),
        "{checked:?}"
    );
}

/// A new wallet on a Cashier: its id and its (invoice, admin) keys.
async fn account_keys(app: &TestApp, name: &str) -> (String, (String, String)) {
    let w = app.ln_account(name).await;
    (w.id, (w.inkey, w.adminkey))
}

/// A new wallet on a Cashier; its invoice key.
async fn account(app: &TestApp, name: &str) -> (String, String) {
    let (id, (inkey, _)) = account_keys(app, name).await;
    (id, inkey)
}

async fn socket(app: &TestApp, key: &str) -> Socket {
    tokio_tungstenite::connect_async(format!(
        "{}/api/v1/ws/{key}",
        app.base.replacen("http://", "ws://", 1)
    ))
    .await
    .expect("Cashier's socket")
    .0
}

/// The next payment frame on the socket (a minute at most: the test fails, never hangs).
async fn next_payment(socket: &mut Socket) -> Value {
    let wait = async {
        loop {
            match socket.next().await.expect("a frame").expect("a frame") {
                Message::Text(t) => {
                    let frame: Value = serde_json::from_str(t.as_str()).expect("JSON frame");
                    if frame["type"] == "payment" {
                        return frame;
                    }
                }
                Message::Close(c) => panic!("socket closed: {c:?}"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("a payment frame within a minute")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_lnbits_wallet_funds_cashier() {
    let lnbits = Lnbits::start().await;
    let x = lnbits.account("cashier funding").await;
    let y = lnbits.account("payer").await;
    lnbits.top_up(&y, 1000).await;

    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            "--funding-source",
            "lnbits",
            "--lnbits-url",
            &lnbits.base,
            "--lnbits-key",
            &x.adminkey,
            "--webhook-allow-private",
        ],
    )
    .await;
    let (inkey, adminkey) = account_keys(&app, "shop").await.1;
    let mut socket = socket(&app, &inkey).await;
    let mut shop_backend = crate::webhooks::Receiver::start().await;

    // Cashier's invoice is an invoice of LNbits wallet X.
    let (status, created) = cashier_post(
        &app,
        "/api/v1/payments",
        Some(&inkey),
        json!({"out": false, "amount": 100, "memo": "via lnbits", "webhook": shop_backend.url()}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let hash = created["payment_hash"].as_str().unwrap().to_owned();
    let bolt11 = created["bolt11"].as_str().unwrap().to_owned();
    let in_x = lnbits
        .get(&x.inkey, &format!("/api/v1/payments/{hash}"))
        .await;
    assert_eq!(in_x["paid"], false, "{in_x}");
    assert_eq!(in_x["details"]["amount"], 100_000);
    assert_eq!(in_x["details"]["bolt11"], bolt11.as_str());
    assert_eq!(created["checking_id"], in_x["details"]["checking_id"]);

    // Y pays it inside LNbits; Cashier learns it from X's socket.
    let (status, paid) = lnbits
        .post_payment(&y.adminkey, json!({"out": true, "bolt11": bolt11}))
        .await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["status"], "success");
    let received = next_payment(&mut socket).await;
    assert_eq!(received["event"], "payment_received", "{received}");
    assert_eq!(received["payment_hash"], hash.as_str());
    assert_eq!(received["amount"], 100);
    assert_eq!(received["payment"]["amount"], 100_000);
    assert_eq!(received["payment"]["status"], "success");
    assert_eq!(received["wallet_balance"], 100);

    let view = cashier_get(&app, &format!("/api/v1/payments/{hash}"), &inkey).await;
    assert_eq!(view["paid"], true, "{view}");
    assert_eq!(view["preimage"], paid["preimage"]);
    assert_eq!(
        cashier_get(&app, "/api/v1/wallet", &inkey).await["balance"],
        100_000
    );
    // The invoice's webhook: LNbits' POST, once, for the settlement learnt from the source.
    let hook = shop_backend.next().await;
    let posted: Value =
        serde_json::from_str(&serde_json::from_str::<String>(&hook.body).unwrap()).unwrap();
    assert_eq!(posted["payment_hash"], hash.as_str(), "{posted}");
    assert_eq!(posted["status"], "success");
    assert_eq!(posted["amount"], 100_000);

    // Out: LNbits' FakeWallet pays no invoice but its own, and says so ("failed"): Cashier
    // fails the payment and the money stays. (The way out succeeding is tested against
    // another Cashier below.)
    a_foreign_invoice_is_refused(&app, &adminkey, &inkey, 40, 100_000).await;
    assert!(shop_backend.waiting().is_empty(), "the webhook came once");
}

/// Another Cashier as the remote (`spec/lightning.md`: "a remote LNbits (or another
/// Cashier)"): its fake source's invoices are real BOLT11, so money goes both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_cashier_funds_cashier() {
    let remote = TestApp::spawn(Backend::Sqlite).await;
    let (_, (_, x_adminkey)) = account_keys(&remote, "funding").await;
    let (y_id, (y_inkey, y_adminkey)) = account_keys(&remote, "payer").await;
    remote.lightning.top_up(&y_id, 1000).await.unwrap();

    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            "--funding-source",
            "lnbits",
            "--lnbits-url",
            &remote.base,
            "--lnbits-key",
            &x_adminkey,
        ],
    )
    .await;
    let (inkey, adminkey) = account_keys(&app, "shop").await.1;
    let mut on_shop = socket(&app, &inkey).await;

    let (status, created) = cashier_post(
        &app,
        "/api/v1/payments",
        Some(&inkey),
        json!({"out": false, "amount": 100, "memo": "via cashier"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let hash = created["payment_hash"].as_str().unwrap().to_owned();
    let (status, paid) = cashier_post(
        &remote,
        "/api/v1/payments",
        Some(&y_adminkey),
        json!({"out": true, "bolt11": created["bolt11"]}),
    )
    .await;
    assert_eq!(status, 201, "{paid}");
    let received = next_payment(&mut on_shop).await;
    assert_eq!(received["event"], "payment_received", "{received}");
    assert_eq!(received["payment_hash"], hash.as_str());
    assert_eq!(received["wallet_balance"], 100);
    let view = cashier_get(&app, &format!("/api/v1/payments/{hash}"), &inkey).await;
    assert_eq!(view["paid"], true, "{view}");
    assert_eq!(view["preimage"], paid["preimage"]);

    // Out, through the remote wallet, to a wallet there.
    let (status, invoice) = cashier_post(
        &remote,
        "/api/v1/payments",
        Some(&y_inkey),
        json!({"out": false, "amount": 40, "memo": "from the shop"}),
    )
    .await;
    assert_eq!(status, 201, "{invoice}");
    let (status, sent) = cashier_post(
        &app,
        "/api/v1/payments",
        Some(&adminkey),
        json!({"out": true, "bolt11": invoice["bolt11"]}),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["status"], "success", "{sent}");
    assert_eq!(sent["amount"], -40_000);
    assert_eq!(sent["preimage"], invoice["preimage"]);
    let frame = next_payment(&mut on_shop).await;
    assert_eq!(frame["event"], "payment_sent", "{frame}");
    assert_eq!(frame["wallet_balance"], 60);
    let at_y = cashier_get(
        &remote,
        &format!(
            "/api/v1/payments/{}",
            invoice["payment_hash"].as_str().unwrap()
        ),
        &y_inkey,
    )
    .await;
    assert_eq!(at_y["paid"], true, "{at_y}");

    // An invoice the remote cannot pay: it says "failed", and the money stays here.
    a_foreign_invoice_is_refused(&app, &adminkey, &inkey, 10, 60_000).await;
}

/// Issue 14's done-when: a real LNbits reached over HTTPS settles an invoice. LNbits stands
/// behind a TLS proxy whose certificate comes from the test's own CA, trusted through
/// `--extra-ca-file` alone. The wallet is read and the invoice made over REST through TLS;
/// LNbits' settle notification comes back on the wallet socket over wss:// through the same
/// proxy, and Cashier settles the invoice.
async fn a_remote_lnbits_over_https_funds_cashier(backend: Backend) {
    let lnbits = Lnbits::start().await;
    let x = lnbits.account("cashier funding").await;
    let y = lnbits.account("payer").await;
    lnbits.top_up(&y, 1000).await;
    let ca = Ca::new();
    let mut proxy = TlsProxy::start(&ca.leaf(&["127.0.0.1"]), lnbits.addr()).await;
    let lnbits_url = proxy.url(None);
    let ca_file = ca.pem_file().display().to_string();

    let app = TestApp::spawn_with(
        backend,
        &[
            "--funding-source",
            "lnbits",
            "--lnbits-url",
            &lnbits_url,
            "--lnbits-key",
            &x.adminkey,
            "--extra-ca-file",
            &ca_file,
        ],
    )
    .await;
    // REST over TLS: the remote wallet answers.
    let status = app.lightning.funding_status().await;
    assert_eq!(status.error, None, "{status:?}");
    // The socket over wss://: LNbits switched protocols through the proxy.
    proxy
        .until(|c| matches!(c, Crossed::Answer(line) if line.starts_with("HTTP/1.1 101")))
        .await;

    let (inkey, _) = account_keys(&app, "shop").await.1;
    let mut socket = socket(&app, &inkey).await;
    let (status, created) = cashier_post(
        &app,
        "/api/v1/payments",
        Some(&inkey),
        json!({"out": false, "amount": 100, "memo": "via lnbits over https"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let hash = created["payment_hash"].as_str().unwrap().to_owned();
    let bolt11 = created["bolt11"].as_str().unwrap().to_owned();
    let in_x = lnbits
        .get(&x.inkey, &format!("/api/v1/payments/{hash}"))
        .await;
    assert_eq!(in_x["paid"], false, "{in_x}");
    assert_eq!(in_x["details"]["bolt11"], bolt11.as_str());

    // Y pays it inside LNbits; the notification crosses the proxy on X's socket...
    let (status, paid) = lnbits
        .post_payment(&y.adminkey, json!({"out": true, "bolt11": bolt11}))
        .await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["status"], "success");
    proxy
        .until(|c| matches!(c, Crossed::Pushed(text) if text.contains(&hash)))
        .await;
    // ...and Cashier settles it.
    let received = next_payment(&mut socket).await;
    assert_eq!(received["event"], "payment_received", "{received}");
    assert_eq!(received["payment_hash"], hash.as_str());
    assert_eq!(received["amount"], 100);
    assert_eq!(received["wallet_balance"], 100);
    let view = cashier_get(&app, &format!("/api/v1/payments/{hash}"), &inkey).await;
    assert_eq!(view["paid"], true, "{view}");
    assert_eq!(view["preimage"], paid["preimage"]);
    assert_eq!(
        cashier_get(&app, "/api/v1/wallet", &inkey).await["balance"],
        100_000
    );
}

mod a_remote_lnbits_over_https_funds_cashier {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::a_remote_lnbits_over_https_funds_cashier(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::a_remote_lnbits_over_https_funds_cashier(Backend::Postgres).await
    }
}

#[tokio::test]
async fn lnbits_without_its_url_or_key_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("t.sqlite").display()
    );
    let base = [
        "cashier serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &db,
        "--funding-source",
        "lnbits",
    ];
    for (extra, says) in [
        (&["--lnbits-key", "k"][..], "--lnbits-url"),
        (&["--lnbits-url", "http://127.0.0.1:9"][..], "--lnbits-key"),
        (
            &["--lnbits-url", "wss://x.example", "--lnbits-key", "k"][..],
            "the scheme must be https or http",
        ),
        (
            &[
                "--lnbits-url",
                "https://x.example",
                "--lnbits-key",
                "k",
                "--extra-ca-file",
                "/nonexistent/ca.pem",
            ][..],
            "--extra-ca-file /nonexistent/ca.pem: cannot read it",
        ),
    ] {
        let settings = Settings::try_parse_from(base.iter().chain(extra)).unwrap();
        let Err(e) = Application::build(&settings).await else {
            panic!("started with {extra:?}");
        };
        assert!(e.to_string().contains(says), "{extra:?}: {e}");
    }
}
