//! The Lightning example clients in examples/lightning/, run as shipped against a live server:
//! started on the payee's invoice key, a payment made between two wallets over HTTP, their
//! output (or the page) shows it. Every wait is on a line or a DOM change, and bounded, so a
//! broken example fails rather than hangs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::browser::{artifact, chromium_or_skip, Page, Viewport};
use crate::helpers::{LnWallet, TestApp};
use crate::on_both_backends;

on_both_backends!(
    the_python_example_prints_lightning_payments,
    the_node_example_prints_lightning_payments,
    the_html_example_lists_lightning_payments_in_chromium,
);

/// How long any one wait may take (a bound against hanging, not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(60);
const SATS: u64 = 2100;
const MEMO: &str = "coffee for two";

fn examples_dir() -> String {
    format!("{}/examples/lightning", env!("CARGO_MANIFEST_DIR"))
}

/// A payer with 10,000 sats and an empty payee.
async fn two_wallets(app: &TestApp) -> (LnWallet, LnWallet) {
    let (payer, payee) = (app.ln_account("payer").await, app.ln_account("payee").await);
    app.lightning.top_up(&payer.id, 10_000).await.unwrap();
    (payer, payee)
}

/// The payee invoices, the payer pays; returns the payment hash.
async fn pay(app: &TestApp, payer: &LnWallet, payee: &LnWallet) -> String {
    let invoice = app.ln_invoice(payee, SATS, MEMO).await;
    let (status, paid) = app
        .ln_payments_post(
            &payer.adminkey,
            json!({"out": true, "bolt11": invoice["bolt11"]}),
        )
        .await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["status"], "success");
    invoice["payment_hash"].as_str().unwrap().to_owned()
}

async fn the_python_example_prints_lightning_payments(app: TestApp) {
    cli_example(&app, "python3", "payments.py").await;
}

async fn the_node_example_prints_lightning_payments(app: TestApp) {
    cli_example(&app, "node", "payments.js").await;
}

async fn cli_example(app: &TestApp, interpreter: &str, script: &str) {
    let (payer, payee) = two_wallets(app).await;

    // Live: listening on the payee's invoice key before the payment is made.
    let mut live = Example::start(
        interpreter,
        script,
        &[&payee.inkey, &app.base, "--count", "1"],
    );
    live.wait_for("Connected to").await;
    let hash = pay(app, &payer, &payee).await;
    let line = live.wait_for(&hash).await;
    for part in ["PAYMENT RECEIVED", &format!("{SATS} sats"), MEMO] {
        assert!(
            line.contains(part),
            "{script} printed {line:?}, without {part:?}"
        );
    }
    live.exits_successfully().await;

    // Late, on the payer's admin key: `--since 0` replays the top-up, then the payment.
    let mut late = Example::start(
        interpreter,
        script,
        &[&payer.adminkey, &app.base, "--since", "0", "--count", "2"],
    );
    let top_up = late.wait_for("PAYMENT").await;
    assert!(top_up.contains("PAYMENT RECEIVED: 10000 sats"), "{top_up}");
    let line = late.wait_for(&hash).await;
    for part in ["PAYMENT SENT", &format!("{SATS} sats"), MEMO] {
        assert!(
            line.contains(part),
            "{script} printed {line:?}, without {part:?}"
        );
    }
    late.exits_successfully().await;
    // Keys are secrets: the examples print only their start.
    assert!(
        !late.seen.iter().any(|l| l.contains(&payer.adminkey)),
        "{script} printed the admin key: {:?}",
        late.seen
    );
}

/// An example program and the lines it printed.
struct Example {
    child: Child,
    lines: UnboundedReceiver<String>,
    seen: Vec<String>,
    script: String,
}

impl Example {
    fn start(interpreter: &str, script: &str, args: &[&str]) -> Example {
        let mut child = Command::new(interpreter)
            .arg(script)
            .args(args)
            .current_dir(examples_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {interpreter}: {e} (./scripts/test installs what the examples need)")
            });
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Example {
            child,
            lines,
            seen: Vec::new(),
            script: script.to_owned(),
        }
    }

    /// The next line that contains `needle`.
    async fn wait_for(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!(
                "{} never printed {needle:?}; it printed {:?}",
                self.script, self.seen
            ),
        }
    }

    /// It stops by itself (`--count`), with status 0: its output ends, then it is reaped.
    async fn exits_successfully(&mut self) {
        let ended = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line);
            }
        })
        .await;
        assert!(
            ended.is_ok(),
            "{} did not exit after --count payments; it printed {:?}",
            self.script,
            self.seen
        );
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "{} exited with {status}; it printed {:?}",
            self.script,
            self.seen
        );
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        // Ends the process this test started (by its handle) if it is still running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn the_html_example_lists_lightning_payments_in_chromium(app: TestApp) {
    let Some(chromium) = chromium_or_skip("the HTML example needs") else {
        return;
    };
    let (payer, payee) = two_wallets(&app).await;
    let page_url = |extra: &str| {
        format!(
            "file://{}/payments.html?url={}&key={}{extra}",
            examples_dir(),
            app.base,
            payee.inkey
        )
    };
    let mut page = Page::open(chromium, &page_url(""), Viewport::DESKTOP).await;
    page.wait_for("#status.connected").await;

    let hash = pay(&app, &payer, &payee).await;
    let item = format!("#payments li[data-payment-hash=\"{hash}\"]");
    let text = page.wait_for(&item).await;
    for part in [&format!("Received {SATS} sats"), MEMO, &hash] {
        assert!(
            text.contains(part),
            "the item shows {text:?}, without {part:?}"
        );
    }
    let list = page
        .eval("document.getElementById('payments').outerHTML")
        .await;
    let list = list.as_str().unwrap();
    assert!(
        list.starts_with("<ul id=\"payments\">") && list.matches("<li").count() == 1,
        "{list}"
    );

    // Opened later with ?since=0, the page replays what it missed, and still lists it once.
    page.navigate(&page_url("&since=0")).await;
    page.wait_for(&item).await;
    page.wait_for("#status.connected").await;
    let count = page
        .eval("document.querySelectorAll('#payments li').length")
        .await;
    assert_eq!(count, 1);

    // A picture for a reviewer.
    page.screenshot(&artifact(&format!(
        "lightning-html-example-{}.png",
        &hash[..8]
    )))
    .await;
}
