//! The Lightning example clients in examples/lightning/, run as shipped against a live server:
//! started on the payee's invoice key, a payment made between two wallets over HTTP, their
//! output (or the page) shows it. Every wait is on a line or a DOM change, and bounded, so a
//! broken example fails rather than hangs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::TestApp;
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

struct Wallet {
    id: String,
    inkey: String,
    adminkey: String,
}

async fn account(app: &TestApp, name: &str) -> Wallet {
    let r = app
        .client
        .post(app.url("/api/v1/account"))
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let w: Value = r.json().await.unwrap();
    let field = |k: &str| w[k].as_str().unwrap().to_owned();
    Wallet {
        id: field("id"),
        inkey: field("inkey"),
        adminkey: field("adminkey"),
    }
}

/// A payer with 10,000 sats and an empty payee.
async fn two_wallets(app: &TestApp) -> (Wallet, Wallet) {
    let (payer, payee) = (account(app, "payer").await, account(app, "payee").await);
    app.lightning.top_up(&payer.id, 10_000).await.unwrap();
    (payer, payee)
}

async fn payments_post(app: &TestApp, key: &str, body: Value) -> Value {
    let r = app
        .client
        .post(app.url("/api/v1/payments"))
        .header("X-Api-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

/// The payee invoices, the payer pays; returns the payment hash.
async fn pay(app: &TestApp, payer: &Wallet, payee: &Wallet) -> String {
    let invoice = payments_post(
        app,
        &payee.inkey,
        json!({"out": false, "amount": SATS, "memo": MEMO}),
    )
    .await;
    let paid = payments_post(
        app,
        &payer.adminkey,
        json!({"out": true, "bolt11": invoice["bolt11"]}),
    )
    .await;
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

/// Debian's Chromium, or `None` and a note when it is missing outside CI (CI must have it).
fn chromium_or_skip() -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if found.is_none() {
        assert!(std::env::var("CI").is_err(), "CI must install chromium");
        eprintln!("SKIPPED: the HTML example needs Chromium (apt-get install chromium)");
    }
    found
}

async fn the_html_example_lists_lightning_payments_in_chromium(app: TestApp) {
    let Some(chromium) = chromium_or_skip() else {
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
    let mut page = Page::open(chromium, &page_url("")).await;
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
    let dir = format!("{}/test-artifacts", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    page.screenshot(&format!("{dir}/lightning-html-example-{}.png", &hash[..8]))
        .await;
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A headless Chromium tab driven over the DevTools protocol; the browser is ended on drop.
struct Page {
    chromium: Child,
    devtools: Socket,
    next_id: u64,
    /// Events heard while waiting for an answer.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Page {
    async fn open(chromium: &str, url: &str) -> Page {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Chromium names its DevTools endpoint on stderr; the rest is read and dropped so a
        // full pipe never blocks it.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(endpoint) = line.strip_prefix("DevTools listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(endpoint.trim().to_owned());
                    }
                }
            }
        });
        let endpoint = tokio::time::timeout(PATIENCE, rx)
            .await
            .expect("Chromium never said where DevTools listens")
            .expect("Chromium exited before DevTools listened");
        // ws://127.0.0.1:<port>/devtools/browser/<id>: a tab of our own on that port.
        let authority = endpoint
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let target: Value = reqwest::Client::new()
            .put(format!("http://{authority}/json/new?about:blank"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (devtools, _) =
            tokio_tungstenite::connect_async(target["webSocketDebuggerUrl"].as_str().unwrap())
                .await
                .unwrap();
        let mut page = Page {
            chromium: child,
            devtools,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        };
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 900, "height": 700, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
        page.call("Page.enable", json!({})).await;
        page.navigate(url).await;
        page
    }

    async fn navigate(&mut self, url: &str) {
        self.events.clear();
        self.call("Page.navigate", json!({"url": url})).await;
        self.event("Page.loadEventFired").await;
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        tokio::time::timeout(PATIENCE, self.call_unbounded(method, params))
            .await
            .unwrap_or_else(|_| panic!("DevTools never answered {method}"))
    }

    async fn call_unbounded(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({"id": id, "method": method, "params": params}).to_string();
        self.devtools.send(Message::text(command)).await.unwrap();
        loop {
            let message = self.next_message().await;
            if message["id"].as_u64() == Some(id) {
                assert!(message.get("error").is_none(), "{method} failed: {message}");
                return message["result"].clone();
            }
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    async fn event(&mut self, method: &str) -> Value {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            return self.events.remove(i);
        }
        let wait = async {
            loop {
                let message = self.next_message().await;
                if message["method"] == method {
                    return message;
                }
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .unwrap_or_else(|_| panic!("no {method} from DevTools"))
    }

    async fn next_message(&mut self) -> Value {
        match self.devtools.next().await {
            Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
            other => panic!("unexpected from DevTools: {other:?}"),
        }
    }

    /// A JavaScript expression's value (promises awaited).
    async fn eval(&mut self, expression: &str) -> Value {
        tokio::time::timeout(PATIENCE, self.eval_unbounded(expression))
            .await
            .unwrap_or_else(|_| panic!("no value for {expression}"))
    }

    async fn eval_unbounded(&mut self, expression: &str) -> Value {
        let result = self
            .call_unbounded(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression} threw: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Waits until something matches `selector`, watching DOM changes (no polling), and
    /// returns its text; on failure the page's DOM is in the message.
    async fn wait_for(&mut self, selector: &str) -> String {
        let expression = format!(
            "new Promise((resolve) => {{
               const found = () => document.querySelector({selector:?});
               if (found()) return resolve(found().textContent);
               new MutationObserver((_, observer) => {{
                 if (found()) {{ observer.disconnect(); resolve(found().textContent); }}
               }}).observe(document.documentElement,
                           {{subtree: true, childList: true, attributes: true, characterData: true}});
             }})"
        );
        match tokio::time::timeout(PATIENCE, self.eval_unbounded(&expression)).await {
            Ok(value) => value.as_str().unwrap_or_default().to_owned(),
            Err(_) => {
                let dom = self.eval("document.documentElement.outerHTML").await;
                panic!("the page never showed {selector}:\n{dom}");
            }
        }
    }

    async fn screenshot(&mut self, path: &str) {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64_decode(shot["data"].as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // Ends the Chromium this test started (by its handle), and reaps it.
        let _ = self.chromium.kill();
        let _ = self.chromium.wait();
    }
}

/// Standard base64, as DevTools sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut held) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        bits = (bits << 6 | v) & 0xffff;
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
        }
    }
    out
}
