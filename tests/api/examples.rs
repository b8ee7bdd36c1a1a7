//! The example clients in examples/, run as shipped against a live server: started on an
//! invoice, the invoice paid, their output shows the txid.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use cashier::chain::txid_of;

use crate::browser::{artifact, chromium_or_skip, Page, Viewport};
use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    the_python_example_prints_the_payment,
    the_node_example_prints_the_payment,
    the_html_example_shows_the_payment_in_chromium,
);

async fn the_html_example_shows_the_payment_in_chromium(app: TestApp) {
    let Some(chromium) = chromium_or_skip("the HTML example needs") else {
        return;
    };
    // Paid before the page opens: the page must learn it on connect.
    let (id, raw) = app.invoice_and_payment().await;
    app.pay(&id, &raw).await;

    let page = format!(
        "file://{}/examples/websocket_client_example.html?host={}&invoice={id}",
        env!("CARGO_MANIFEST_DIR"),
        app.base.trim_start_matches("http://")
    );
    // Waits on the page's own DOM change, however long a loaded machine takes to connect.
    let mut tab = Page::open(chromium, &page, Viewport::DESKTOP).await;
    let status = tab.wait_for("#status.paid").await;
    assert_eq!(status, format!("Paid: {}", txid_of(&raw).to_hex()));
    // A picture for a reviewer.
    tab.screenshot(&artifact(&format!("html-example-paid-{}.png", &id[..8])))
        .await;
}

async fn the_python_example_prints_the_payment(app: TestApp) {
    run_example(&app, "python3", "websocket_client_example.py").await;
}

async fn the_node_example_prints_the_payment(app: TestApp) {
    run_example(&app, "node", "websocket_client_example.js").await;
}

async fn run_example(app: &TestApp, interpreter: &str, script: &str) {
    let (id, raw) = app.invoice_and_payment().await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let examples = format!("{}/examples", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(interpreter)
        .arg(script)
        .args([&id, &host])
        .current_dir(&examples)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {interpreter}: {e} (./scripts/test installs what the examples need)")
        });
    let mut lines = lines_of(&mut child);
    let mut seen = Vec::new();
    wait_for(&mut lines, &mut seen, "Connected to", script).await;

    app.pay(&id, &raw).await;
    wait_for(&mut lines, &mut seen, "PAYMENT RECEIVED", script).await;
    wait_for(&mut lines, &mut seen, &txid_of(&raw).to_hex(), script).await;
    // It stops by itself after the invoice's last event.
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{script} exited with {status}");
}

/// The child's standard output, line by line as it comes.
pub(crate) fn lines_of(
    child: &mut std::process::Child,
) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (lines_tx, lines) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Reads the example's lines until one contains `needle` (bounded, so a broken example fails
/// rather than hangs).
pub(crate) async fn wait_for(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: &mut Vec<String>,
    needle: &str,
    script: &str,
) {
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.recv().await {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "{script} never printed {needle:?}; it printed {seen:?}"
    );
}
