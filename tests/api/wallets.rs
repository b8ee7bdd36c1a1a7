//! BitPay's own wallet client, bitcore-wallet-client 11.5.2, pays invoices against a live
//! server. It is driven by tests/compat/bwc.js, which builds and signs with bitcore-lib-cash.
//! The modes are JPP v2 checking our response signatures against the published key, JPP v2 with
//! the check bypassed (on a server that does not sign), and JPP v1. The facts BWC imposes on a
//! server are listed at the top of bwc.js.

use std::process::Command;
use std::time::Duration;

use crate::helpers::{Backend, TestApp};

/// A fixed signing key for the tests (any valid secp256k1 scalar).
const SIGNING_KEY: &str = "5f3e1c7a9b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bwc_pays_over_v2_verifying_our_signatures() {
    let app = TestApp::spawn_with(Backend::Sqlite, &["--signing-key", SIGNING_KEY]).await;
    bwc_pays(&app, "v2-trusted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bwc_pays_over_v2_without_signatures() {
    // The default set-up: no signing key, and the wallet told not to check.
    let app = TestApp::spawn(Backend::Sqlite).await;
    bwc_pays(&app, "v2-bypass").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bwc_pays_over_v1_verifying_our_signature() {
    let app = TestApp::spawn_with(Backend::Sqlite, &["--signing-key", SIGNING_KEY]).await;
    bwc_pays(&app, "v1").await;
}

/// Runs bwc.js in `mode`. It must print `PAID <txid>`, and the invoice it created must be paid
/// by that transaction.
async fn bwc_pays(app: &TestApp, mode: &str) {
    let compat = format!("{}/tests/compat", env!("CARGO_MANIFEST_DIR"));
    assert!(
        std::path::Path::new(&format!("{compat}/node_modules/bitcore-wallet-client")).is_dir(),
        "bitcore-wallet-client is not installed: run ./scripts/test, or `npm ci` in tests/compat"
    );
    let mut cmd = Command::new("node");
    cmd.args(["bwc.js", &app.base, &app.key, mode])
        .current_dir(&compat);
    // bwc.js gives up by itself after 90 s; this bound is for a node that never starts.
    let run = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::task::spawn_blocking(move || cmd.output()),
    )
    .await
    .unwrap_or_else(|_| panic!("bwc.js {mode} did not finish in 180 s"))
    .unwrap()
    .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    // The whole exchange, for --nocapture and for a failure's report.
    println!("--- bwc.js {mode} ---\n{stdout}{stderr}--- end of bwc.js {mode} ---");
    assert!(
        run.status.success(),
        "bwc.js {mode} failed ({}):\n{stdout}{stderr}",
        run.status
    );

    let field = |tag: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(tag))
            .unwrap_or_else(|| panic!("bwc.js {mode} printed no `{tag}` line"))
            .trim()
            .to_owned()
    };
    let id = field("INVOICE ");
    let txid = field("PAID ");
    assert_eq!(txid.len(), 64, "{txid}");

    let (status, invoice) = app.get_json(&format!("/api/jpp/invoices/{id}/")).await;
    assert_eq!(status, 200, "{invoice}");
    assert_eq!(invoice["status"], "paid", "{invoice}");
    assert_eq!(invoice["payment"]["txid"], txid.as_str(), "{invoice}");
}
