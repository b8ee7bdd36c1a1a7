//! The `cashier` binary itself: keys, refusing bad database URLs, help, graceful shutdown,
//! the operator's wallet commands.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::helpers::{TestApp, ADDR};
use crate::on_both_backends;

on_both_backends!(wallet_check_compares_kept_balances_with_the_payments);

fn cashier() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cashier"));
    // The tests choose every setting themselves.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CASHIER_")) {
        cmd.env_remove(key);
    }
    cmd
}

#[test]
fn serve_help_documents_every_setting_with_its_default() {
    let out = cashier().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--listen",
        "CASHIER_LISTEN",
        "[default: 127.0.0.1:8000]",
        "--public-url",
        "CASHIER_PUBLIC_URL",
        "http://127.0.0.1:8000",
        "--data-dir",
        "CASHIER_DATA_DIR",
        "[default: ./cashier-data]",
        "--database-url",
        "CASHIER_DATABASE_URL",
        "sqlite://<data-dir>/cashier.sqlite",
        "--db-connections",
        "[default: 8]",
        "--db-writers",
        "[default: 4]",
        "--network",
        "CASHIER_NETWORK",
        "regtest for the dev chain",
        "--node",
        "CASHIER_NODE",
        "[default: dev]",
        "--node-url",
        "CASHIER_NODE_URL",
        "--node-timeout",
        "[default: 10]",
        "--node-connections",
        "[default: 16]",
        "--extra-ca-file",
        "CASHIER_EXTRA_CA_FILE",
        "for private CAs",
        "--reconcile-every",
        "--event-retention-days",
        "[default: 7]",
        "--sockets-per-address",
        "[default: 256]",
        "--sockets-total",
        "[default: 20000]",
        "--request-timeout",
        "[default: 15]",
        "--public-write-limit",
        "[default: 60]",
        "--frame-ancestors",
        "[default: 'none']",
        "--public-invoices",
        "CASHIER_PUBLIC_INVOICES",
        "--default-expires-in",
        "[default: 1800]",
        "--workers",
        "one per CPU core",
        "--log",
        "[default: info]",
        "--webhook-allow-private",
        "CASHIER_WEBHOOK_ALLOW_PRIVATE",
        "--webhook-timeout",
        "--webhook-concurrency",
        "[default: 16]",
        "--webhook-first-retry-ms",
        "[default: 10000]",
        "--webhook-max-attempts",
        "[default: 20]",
    ] {
        assert!(
            help.contains(needle),
            "serve --help lacks {needle:?}:\n{help}"
        );
    }
}

#[test]
fn bad_database_urls_are_clear_errors_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.sqlite");
    for (url, says) in [
        (format!("sqlite://{}", typo.display()), "does not exist"),
        (
            "mysql://root@127.0.0.1/cashier".to_owned(),
            "\"mysql\" is not supported",
        ),
        (typo.display().to_string(), "has no scheme"),
    ] {
        let out = cashier()
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{url}: {stderr}");
    }
    assert!(!typo.exists(), "a mistyped path must not create a database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_shown_once_listed_without_secrets_and_revocable() {
    let dir = tempfile::tempdir().unwrap();
    let db = ["--data-dir", dir.path().to_str().unwrap()];
    // The server makes the database; commands work on it.
    let (mut server, base) = serve(&db);
    let key = run_ok(&["key", "create", "--label", "till 1"], &db);
    assert!(key.starts_with("ck_") && key.len() == 67, "{key}");

    let list = cashier().args(["key", "list"]).args(db).output().unwrap();
    let listing = String::from_utf8(list.stdout).unwrap();
    assert!(listing.contains("till 1"), "{listing}");
    assert!(
        !listing.contains(&key[3..]),
        "the key itself must never be listed"
    );

    // The server on that data folder accepts the key, then refuses it once revoked.
    let client = crate::helpers::http_client();
    let body = json!({"outputs": [{"address": ADDR, "amount": 1000}]});
    let create = |key: String| {
        client
            .post(format!("{base}/jpp/invoices/"))
            .header("X-Api-Key", key)
            .json(&body)
            .send()
    };
    assert_eq!(create(key.clone()).await.unwrap().status(), 201);
    run_ok(&["key", "revoke", "1"], &db);
    // Every process trusts a verified key for up to a second (auth::KEY_CACHE_TTL), so the
    // revocation is awaited by polling, not assumed at once.
    let mut wait = std::time::Duration::from_millis(20);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = create(key.clone()).await.unwrap().status();
        if status == 403 {
            break;
        }
        assert_eq!(status, 201);
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked key still works"
        );
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_millis(200));
    }
    let out = cashier()
        .args(["key", "revoke", "1"])
        .args(db)
        .output()
        .unwrap();
    assert!(!out.status.success(), "revoking twice is an error");

    // SIGTERM: the server stops accepting, finishes, and exits cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.wait().unwrap();
    assert!(exit.success(), "exit status after SIGTERM: {exit}");
}

/// Runs `cashier <args> <db>`, requires success, returns what it printed on stdout.
fn run_ok(args: &[&str], db: &[&str]) -> String {
    let out = cashier().args(args).args(db).output().unwrap();
    assert!(
        out.status.success(),
        "cashier {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs `cashier <args> <db>`, requires failure, returns what it said on stderr.
fn run_err(args: &[&str], db: &[&str]) -> String {
    let out = cashier().args(args).args(db).output().unwrap();
    assert!(!out.status.success(), "cashier {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts `cashier serve` on a free port over `db`; returns the process and its base URL.
fn serve(db: &[&str]) -> (std::process::Child, String) {
    let mut server = cashier()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = wait_for_listening(&mut server);
    (server, base)
}

/// Reads the server's log until it says where it listens; returns the base URL.
fn wait_for_listening(server: &mut std::process::Child) -> String {
    let stdout = server.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("Cashier listening on ").nth(1) {
            let addr = rest.split(';').next().unwrap().trim();
            // Keep draining the log so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return format!("http://{addr}");
        }
    }
    panic!("the server exited before listening");
}

/// The README's quick start: a server with default settings, a key, an invoice, paid by
/// `cashier dev pay` with nothing else — tokens included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_pay_pays_an_invoice_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = ["--data-dir", dir.path().to_str().unwrap()];
    let (mut server, base) = serve(&db);
    let key = run_ok(&["key", "create"], &db);
    let client = crate::helpers::http_client();
    let category = "12".repeat(32);
    for body in [
        json!({"outputs": [{"address": ADDR, "amount": 10_000}], "memo": "coffee"}),
        json!({"outputs": [{"address": crate::helpers::ADDR_TOKEN, "amount": 1000, "token": {"category": category, "amount": 5,
                                                                      "nft": {"capability": "none", "commitment": "01"}}},
                           {"address": ADDR, "amount": 2000}]}),
    ] {
        let invoice: serde_json::Value = client
            .post(format!("{base}/api/jpp/invoices/"))
            .header("X-Api-Key", &key)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let uri = invoice["payment_uri"].as_str().unwrap();
        // The command line prints the same URI the API gave.
        let id = invoice["payment_id"].as_str().unwrap();
        let printed = run_ok(&["invoice", "uri", id, "--public-url", &base], &db);
        assert_eq!(printed, uri);
        let out = cashier().args(["dev", "pay", uri]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let txid = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert_eq!(txid.len(), 64, "{txid}");
        let read: serde_json::Value = client
            .get(invoice["payment_url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(read["status"], "paid", "{read}");
        assert_eq!(read["payment"]["txid"], txid.as_str());

        // Paying it again is refused with the reason.
        let out = cashier().args(["dev", "pay", uri]).output().unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("the invoice is paid"));
    }
    let unknown = cashier()
        .args(["invoice", "uri", &"0".repeat(32)])
        .args(db)
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no invoice"));
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Reads the invoice at `url` until its status is `want` (at most 30 s); returns it.
async fn invoice_becomes(client: &reqwest::Client, url: &str, want: &str) -> serde_json::Value {
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let read: serde_json::Value =
                client.get(url).send().await.unwrap().json().await.unwrap();
            if read["status"] == want {
                return read;
            }
            // A pause between reads; the loop ends on the state.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the invoice never became {want}"))
}

/// `cashier dev` rehearses each bad day against a running server: a double spend (the proof
/// invalidates the invoice), the block that confirms our transaction after all, a reorg that
/// mines the double spend instead; what cannot happen is refused with the server's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_rehearses_the_bad_days_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = ["--data-dir", dir.path().to_str().unwrap()];
    let (mut server, base) = serve(&db);
    let key = run_ok(&["key", "create"], &db);
    let client = crate::helpers::http_client();
    let invoice: serde_json::Value = client
        .post(format!("{base}/api/jpp/invoices/"))
        .header("X-Api-Key", &key)
        .json(&json!({"outputs": [{"address": ADDR, "amount": 10_000}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = invoice["payment_url"].as_str().unwrap().to_owned();
    let txid = run_ok(&["dev", "pay", &url], &[]);
    let status_becomes = |want: &'static str| invoice_becomes(&client, &url, want);
    let at = ["--url", base.as_str()];

    let proof = run_ok(&["dev", "double-spend", &txid], &at);
    assert_eq!(proof.len(), 64, "{proof}");
    let invalid = status_becomes("invalid").await;
    assert_eq!(invalid["invalid_reason"], "double_spend_proof");
    assert_eq!(invalid["payment"]["double_spend_proof"], proof.as_str());

    let height: i64 = run_ok(&["dev", "mine"], &at).parse().unwrap();
    assert!(height > 0);
    status_becomes("confirmed").await;

    let after: i64 = run_ok(&["dev", "reorg", "--depth", "1", "--replace", &txid], &at)
        .parse()
        .unwrap();
    assert_eq!(after, height + 1, "one block replaced by two");
    let replaced = status_becomes("invalid").await;
    assert_eq!(replaced["invalid_reason"], "double_spend_mined");

    // A wallet without the payment protocol: `dev pay` with the plain address URI, or with
    // --to-address, pays the address, and the watcher finds it.
    let direct: serde_json::Value = client
        .post(format!("{base}/api/jpp/invoices/"))
        .header("X-Api-Key", &key)
        .json(&json!({"outputs": [{"address": crate::helpers::TestWallet::new().address, "amount": 3000}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let direct_url = direct["payment_url"].as_str().unwrap().to_owned();
    let address = direct["outputs"][0]["address"].as_str().unwrap().to_owned();
    run_ok(
        &["dev", "pay", "--to-address", &address, "--amount", "1000"],
        &at,
    );
    let partly = invoice_becomes(&client, &direct_url, "paid_partial").await;
    let uri = partly["address_uri"].as_str().unwrap().to_owned();
    assert!(uri.ends_with("?amount=0.00002"), "{uri}");
    run_ok(&["dev", "pay", &uri], &at);
    let read = invoice_becomes(&client, &direct_url, "paid").await;
    assert_eq!(read["payment"]["via"], "chain");
    assert_eq!(read["amount_paid"], 3000);

    let refused = run_err(&["dev", "reorg", "--depth", "0"], &at);
    assert!(refused.contains("depth must be"), "{refused}");
    let refused = run_err(&["dev", "double-spend", "xyz"], &at);
    assert!(refused.contains("txid must be"), "{refused}");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// The operator's wallet commands, against a running server: a top-up from the command line
/// reaches the wallet's socket on the server (through the shared outbox).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallets_are_made_listed_and_topped_up_from_the_command_line() {
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let db = ["--data-dir", dir.path().to_str().unwrap()];
    let (mut server, base) = serve(&db);
    let created = run_ok(&["wallet", "create", "--name", "till 1"], &db);
    let field = |name: &str| {
        created
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {created}"))
    };
    let (id, inkey) = (field("id:"), field("inkey:"));
    assert_eq!(field("adminkey:").len(), 32);
    let url = format!("{}/api/v1/ws/{inkey}", base.replacen("http://", "ws://", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    let said = run_ok(&["wallet", "topup", &id, "2500"], &db);
    assert!(said.contains("balance 2500 sat"), "{said}");
    let frame = loop {
        match socket.next().await.unwrap().unwrap() {
            tokio_tungstenite::tungstenite::Message::Text(t) => {
                break serde_json::from_str::<serde_json::Value>(&t).unwrap()
            }
            _ => continue,
        }
    };
    assert_eq!(frame["event"], "payment_received");
    assert_eq!(frame["amount"], 2500);
    assert_eq!(frame["memo"], "Admin credit");
    assert_eq!(frame["wallet_balance"], 2500);

    let listed = run_ok(&["wallet", "list"], &db);
    let row = listed.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(row.contains("2500") && row.ends_with("till 1"), "{listed}");
    assert!(!listed.contains(&inkey), "keys are never listed");
    let wallet: serde_json::Value = crate::helpers::http_client()
        .get(format!("{base}/api/v1/wallet"))
        .header("X-Api-Key", &inkey)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wallet["balance"], 2_500_000);
    let unknown = cashier()
        .args(["wallet", "topup", "nosuchwallet", "5"])
        .args(db)
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("Wallet not found"));
    server.kill().unwrap();
    server.wait().unwrap();
}

/// A command pointed at the wrong folder says so and creates nothing; only `serve` makes a
/// database (a key "revoked" in an empty database would stay live in the real one).
#[test]
fn commands_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("cashier-dta");
    for args in [
        &["key", "revoke", "1"][..],
        &["key", "list"],
        &["key", "create"],
        &["store", "list"],
        &["wallet", "list"],
        &["invoice", "uri", "0123456789abcdef0123456789abcdef"],
    ] {
        let stderr = run_err(args, &["--data-dir", typo.to_str().unwrap()]);
        assert!(
            stderr.contains("there is no Cashier database"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!typo.exists(), "nothing was created");
}

/// Stores and scoped keys from the command line: a till's key creates invoices in its store
/// and does nothing else; the listing shows stores and scopes, never keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_and_scoped_keys_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = ["--data-dir", dir.path().to_str().unwrap()];
    let (mut server, base) = serve(&db);
    let id = run_ok(&["store", "create", "corner shop"], &db);
    assert_eq!(id, "2", "the default store is 1");
    let stores = run_ok(&["store", "list"], &db);
    assert!(
        stores.contains("default") && stores.contains("corner shop"),
        "{stores}"
    );
    let taken = run_err(&["store", "create", "corner shop"], &db);
    assert!(
        taken.contains("exists already"),
        "names are unique: {taken}"
    );

    let till = run_ok(
        &[
            "key",
            "create",
            "--store",
            "corner shop",
            "--scope",
            "invoices:create",
            "--label",
            "till",
        ],
        &db,
    );
    let owner = run_ok(&["key", "create", "--store", "2"], &db);
    let default_key = run_ok(&["key", "create"], &db);
    let bad = run_err(&["key", "create", "--scope", "invoices:delete"], &db);
    assert!(bad.contains("unknown scope"), "{bad}");
    let nowhere = run_err(&["key", "create", "--store", "no such shop"], &db);
    assert!(nowhere.contains("no store"), "{nowhere}");

    let listing = run_ok(&["key", "list"], &db);
    let till_row = listing.lines().find(|l| l.ends_with("till")).unwrap();
    assert!(till_row.contains("corner shop") && till_row.contains("invoices:create"));
    assert!(!till_row.contains("invoices:read"), "{listing}");
    for key in [&till, &owner, &default_key] {
        assert!(!listing.contains(&key[3..]), "keys are never listed");
    }

    // The shop's invoices wait for 3 confirmations unless one asks otherwise; the default
    // store's keep the server's count.
    run_ok(&["store", "confirmations", "corner shop", "3"], &db);
    let wrong = run_err(&["store", "confirmations", "corner shop", "145"], &db);
    assert!(wrong.contains("from 0 to 144"), "{wrong}");
    let nowhere = run_err(&["store", "confirmations", "no such shop", "1"], &db);
    assert!(nowhere.contains("no store"), "{nowhere}");

    let client = crate::helpers::http_client();
    let create = |key: String, body: serde_json::Value| {
        let client = client.clone();
        let url = format!("{base}/jpp/invoices/");
        async move {
            client
                .post(url)
                .header("X-Api-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let invoice = create(
        till.clone(),
        json!({"outputs": [{"address": ADDR, "amount": 1000}]}),
    )
    .await;
    assert_eq!(invoice["confirmations_required"], 3);
    let asked = create(
        till.clone(),
        json!({"outputs": [{"address": ADDR, "amount": 1000}], "confirmations": 1}),
    )
    .await;
    assert_eq!(asked["confirmations_required"], 1);
    let elsewhere = create(
        default_key.clone(),
        json!({"outputs": [{"address": ADDR, "amount": 1000}]}),
    )
    .await;
    assert_eq!(elsewhere["confirmations_required"], 0);
    run_ok(&["store", "confirmations", "corner shop", "default"], &db);

    // An xpub is kept; a private key is refused with a warning, and never stored.
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let master = bitcoin::bip32::Xpriv::new_master(bitcoin::NetworkKind::Test, &[7u8; 32]).unwrap();
    let tpub = bitcoin::bip32::Xpub::from_priv(&secp, &master).to_string();
    let secret = run_err(&["store", "xpub", "corner shop", &master.to_string()], &db);
    assert!(secret.contains("never paste a private key"), "{secret}");
    assert!(
        !secret.contains(&master.to_string()),
        "the secret is never repeated"
    );
    run_ok(&["store", "xpub", "corner shop", &tpub], &db);
    let fresh = create(till.clone(), json!({"amount": 1000})).await;
    assert!(
        fresh["outputs"][0]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("bchreg:q")),
        "{fresh}"
    );
    run_ok(&["store", "xpub", "corner shop", "none"], &db);
    let none = create(till.clone(), json!({"amount": 1000})).await;
    assert_eq!(none["code"], "invalid_invoice", "{none}");
    let back = create(
        till.clone(),
        json!({"outputs": [{"address": ADDR, "amount": 1000}]}),
    )
    .await;
    assert_eq!(back["confirmations_required"], 0);
    let list = |key: String| {
        client
            .get(format!("{base}/jpp/invoices/"))
            .header("X-Api-Key", key)
            .send()
    };
    assert_eq!(list(till.clone()).await.unwrap().status(), 403);
    let ids = |listed: serde_json::Value| -> Vec<serde_json::Value> {
        listed["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["payment_id"].clone())
            .collect()
    };
    let owned = ids(list(owner.clone()).await.unwrap().json().await.unwrap());
    assert_eq!(owned.len(), 4);
    assert!(owned.contains(&invoice["payment_id"]));
    let other = ids(list(default_key).await.unwrap().json().await.unwrap());
    assert_eq!(
        other,
        [elsewhere["payment_id"].clone()],
        "the default store sees none of the shop's"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = ["--data-dir", dir.path().to_str().unwrap()];
    // The server makes the database; the commands work on it.
    let (mut server, _) = serve(&db);
    let private = "http://127.0.0.1:9/hook";
    let refused = run_err(&["webhook", "add", private], &db);
    assert!(refused.contains("--webhook-allow-private"), "{refused}");
    let secret = run_ok(
        &[
            "webhook",
            "add",
            private,
            "--webhook-allow-private",
            "--event",
            "payment_received,invoice_expired",
        ],
        &db,
    );
    assert!(
        secret.starts_with("whsec_") && !secret.contains('\n'),
        "{secret}"
    );
    let unknown = run_err(
        &[
            "webhook",
            "add",
            private,
            "--webhook-allow-private",
            "--event",
            "nope",
        ],
        &db,
    );
    assert!(unknown.contains("unknown event kind"), "{unknown}");
    let nowhere = run_err(
        &[
            "webhook",
            "add",
            private,
            "--webhook-allow-private",
            "--store",
            "no such",
        ],
        &db,
    );
    assert!(nowhere.contains("no store"), "{nowhere}");

    let list = run_ok(&["webhook", "list"], &db);
    assert!(
        list.contains(private) && list.contains("payment_received invoice_expired"),
        "{list}"
    );
    assert!(
        !list.contains(&secret[6..]),
        "secrets are never listed: {list}"
    );
    assert_eq!(list.lines().count(), 2, "one endpoint: {list}");
    run_ok(&["webhook", "disable", "1"], &db);
    let list = run_ok(&["webhook", "list"], &db);
    assert!(list.contains("(off: turned off by the merchant)"), "{list}");
    run_ok(&["webhook", "enable", "1"], &db);
    assert!(!run_ok(&["webhook", "list"], &db).contains("(off"));
    let log = run_ok(&["webhook", "log", "1"], &db);
    assert_eq!(log.lines().count(), 1, "no deliveries yet: {log}");
    let queued = run_ok(&["webhook", "redeliver", "1", "--since", "1"], &db);
    assert!(queued.contains("Queued 0"), "{queued}");
    run_err(&["webhook", "redeliver", "1"], &db);
    let missing = run_err(&["webhook", "remove", "7"], &db);
    assert!(missing.contains("no webhook endpoint 7"), "{missing}");
    run_ok(&["webhook", "remove", "1"], &db);
    assert_eq!(run_ok(&["webhook", "list"], &db).lines().count(), 1);
    server.kill().unwrap();
    let _ = server.wait();
}

/// `cashier wallet check` beside a running server: every kept balance agrees with its
/// payments; one changed behind the server's back is named with both figures (exit non-zero)
/// until `--repair` sets it back to the payments' sum.
async fn wallet_check_compares_kept_balances_with_the_payments(app: TestApp) {
    use cashier::store::schema::wallets;
    use diesel::prelude::*;
    let db = ["--database-url", app.database_url.as_str()];
    let (a, b) = (app.ln_account("till").await, app.ln_account("shop").await);
    app.lightning.top_up(&a.id, 5000).await.unwrap();
    let invoice = app.ln_invoice(&b, 1200, "coffee").await;
    let (status, paid) = app
        .ln_payments_post(
            &a.adminkey,
            json!({"out": true, "bolt11": invoice["bolt11"]}),
        )
        .await;
    assert_eq!(status, 201, "{paid}");
    let line = |out: &str, id: &str| {
        out.lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("no line for {id} in {out}"))
            .to_owned()
    };

    let all = run_ok(&["wallet", "check"], &db);
    assert_eq!(all.lines().count(), 2, "{all}");
    let of_a = line(&all, &a.id);
    assert!(
        of_a.starts_with("ok") && of_a.contains(" 3800000 msat"),
        "{all}"
    );
    assert!(of_a.ends_with("till"), "{all}");
    assert!(line(&all, &b.id).contains(" 1200000 msat"), "{all}");

    // One more msat kept than the payments hold, written behind the server's back.
    let id = a.id.clone();
    app.store
        .write(move |c| {
            diesel::update(wallets::table.find(&id))
                .set(wallets::balance_msat.eq(wallets::balance_msat + 1))
                .execute(c)
                .map_err(Into::into)
        })
        .await
        .unwrap();
    let figures = "kept 3800001 msat, payments sum to 3800000 msat";
    let out = cashier()
        .args(["wallet", "check"])
        .args(db)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a difference must fail the check");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(line(&stdout, &a.id).starts_with("DIFFERS"), "{stdout}");
    assert!(line(&stdout, &a.id).contains(figures), "{stdout}");
    assert!(line(&stdout, &b.id).starts_with("ok"), "{stdout}");
    assert!(
        stderr.contains(&a.id) && stderr.contains(figures) && !stderr.contains(&b.id),
        "{stderr}"
    );
    // One wallet at a time.
    let only_b = run_ok(&["wallet", "check", "--wallet", &b.id], &db);
    assert_eq!(only_b.lines().count(), 1, "{only_b}");
    assert!(run_err(&["wallet", "check", "--wallet", &a.id], &db).contains(figures));
    let nobody = run_err(&["wallet", "check", "--wallet", "nosuchwallet"], &db);
    assert!(nobody.contains("no wallet nosuchwallet"), "{nobody}");

    // The payments are the truth: the repair sets the kept balance to their sum.
    let repaired = run_ok(&["wallet", "check", "--repair"], &db);
    let of_a = line(&repaired, &a.id);
    assert!(
        of_a.starts_with("repaired") && of_a.contains(figures),
        "{repaired}"
    );
    assert!(line(&repaired, &b.id).starts_with("ok"), "{repaired}");
    let after = run_ok(&["wallet", "check"], &db);
    assert!(after.lines().all(|l| l.starts_with("ok")), "{after}");
    let wallet: serde_json::Value = app
        .client
        .get(app.url("/api/v1/wallet"))
        .header("X-Api-Key", &a.inkey)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wallet["balance"], 3_800_000);
}
