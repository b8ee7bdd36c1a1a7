//! The checkout page in a real browser: headless Chromium opens `/i/<id>` (it asks for
//! text/html), and the page shows the QR code, then the outcome as the socket tells it. Live
//! changes are watched over the DevTools protocol, waiting on DOM changes, never on sleeps.
//! Screenshots go to test-artifacts/ for a reviewer.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use cashier::chain::txid_of;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    an_open_invoice_shows_its_qr_code_and_waits,
    the_page_turns_paid_while_open,
    the_page_turns_expired_at_expiry,
    the_page_turns_cancelled_while_open,
    finished_invoices_are_rendered_finished,
    the_page_reconnects_and_learns_what_it_missed,
);

/// How long any one wait on the page may take before the test fails (a bound, not a timing
/// assertion: a broken page fails instead of hanging).
const PATIENCE: Duration = Duration::from_secs(60);

/// Debian's Chromium, if installed (`.ci/run` installs it).
fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// Chromium, or `None` and a note when it is missing outside CI (CI must have it).
fn chromium_or_skip() -> Option<&'static str> {
    let found = chromium();
    if found.is_none() {
        assert!(std::env::var("CI").is_err(), "CI must install chromium");
        eprintln!("SKIPPED: the checkout page tests need Chromium (apt-get install chromium)");
    }
    found
}

const FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

fn artifact(name: &str) -> String {
    let dir = format!("{}/test-artifacts", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    format!("{dir}/{name}")
}

fn page_url(app: &TestApp, id: &str) -> String {
    format!("{}/i/{id}", app.base)
}

/// The page as the server sends it to a browser.
async fn html(app: &TestApp, id: &str) -> String {
    let r = app
        .client
        .get(page_url(app, id))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/html; charset=utf-8"
    );
    r.text().await.unwrap()
}

async fn an_open_invoice_shows_its_qr_code_and_waits(app: TestApp) {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let id = app.create_simple(4000).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = page_url(&app, &id);
    let profile = tempfile::tempdir().unwrap();
    let run = |extra: Vec<String>| {
        let mut cmd = Command::new(chromium);
        cmd.args(FLAGS)
            // Runs the page's timers ahead (the countdown), but waits for its socket.
            .arg("--virtual-time-budget=5000")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url);
        cmd
    };
    let mut dump = run(vec!["--dump-dom".into()]);
    let out = tokio::task::spawn_blocking(move || dump.output().unwrap())
        .await
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<div id=\"qr\"><svg"),
        "no QR code on the page:\n{dom}"
    );
    assert!(
        dom.contains("<div id=\"status\" class=\"open\">Waiting for payment</div>"),
        "the page does not wait for the payment:\n{dom}"
    );
    assert!(dom.contains("0.00004000"), "{dom}");
    // The script ran (it replaces the static expiry line with a countdown).
    assert!(
        dom.contains("Expires in "),
        "the page's script did not run:\n{dom}"
    );

    let shot = artifact(&format!("checkout-open-{}.png", &id[..8]));
    let mut cmd = run(vec![
        format!("--screenshot={shot}"),
        "--window-size=390,900".into(),
        "--hide-scrollbars".into(),
    ]);
    cmd.stderr(Stdio::null());
    let status = tokio::task::spawn_blocking(move || cmd.status().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    assert!(std::fs::metadata(&shot)
        .map(|m| m.len() > 0)
        .unwrap_or(false));
}

async fn the_page_turns_paid_while_open(app: TestApp) {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let (id, raw) = app.invoice_and_payment().await;
    let mut page = Page::open(chromium, &page_url(&app, &id)).await;
    // The socket is up and has answered: what follows arrives live.
    page.wait_for("#live.on").await;
    assert_eq!(page.text("#status").await, "Waiting for payment");

    app.pay(&id, &raw).await;
    let txid = txid_of(&raw).to_hex();
    assert_eq!(page.wait_for("#status.paid").await, format!("Paid: {txid}"));
    // The payment part is gone and the socket closed: nothing left to pay or hear.
    assert_eq!(
        page.eval("getComputedStyle(document.getElementById('pay')).display")
            .await,
        "none"
    );
    page.wait_for("#live.done").await;
    page.screenshot(&artifact(&format!("checkout-paid-{}.png", &id[..8])))
        .await;

    // Opened afresh, the page is paid from the start.
    assert!(html(&app, &id).await.contains(&format!(
        "<div id=\"status\" class=\"paid\">Paid: {txid}</div>"
    )));
}

async fn the_page_turns_expired_at_expiry(app: TestApp) {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    // Open for a few seconds: the page counts down, then says Expired (by its clock or by
    // the server's event, whichever comes first), then hears the server's word and stops.
    let id = app.insert_invoice_expiring_in(1000, 4_000).await;
    let mut page = Page::open(chromium, &page_url(&app, &id)).await;
    assert_eq!(page.wait_for("#status.expired").await, "Expired");
    page.wait_for("#live.done").await;
    assert_eq!(
        page.eval("getComputedStyle(document.getElementById('pay')).display")
            .await,
        "none"
    );
    page.screenshot(&artifact(&format!("checkout-expired-{}.png", &id[..8])))
        .await;
}

async fn the_page_turns_cancelled_while_open(app: TestApp) {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let id = app.create_simple(1000).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut page = Page::open(chromium, &page_url(&app, &id)).await;
    page.wait_for("#live.on").await;
    let r = app
        .client
        .post(app.url(&format!("/jpp/invoices/{id}/cancel/")))
        .header("X-Api-Key", &app.key)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(page.wait_for("#status.cancelled").await, "Cancelled");
    page.wait_for("#live.done").await;
}

async fn finished_invoices_are_rendered_finished(app: TestApp) {
    // No browser needed: the server writes the final state into the page.
    let expired = app.insert_expired_invoice(1000).await;
    let page = html(&app, &expired).await;
    assert!(
        page.contains("<div id=\"status\" class=\"expired\">Expired</div>"),
        "{page}"
    );
    assert!(page.contains("<main data-state=\"expired\">"));

    let cancelled = app.create_simple(1000).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.client
        .post(app.url(&format!("/jpp/invoices/{cancelled}/cancel/")))
        .header("X-Api-Key", &app.key)
        .send()
        .await
        .unwrap();
    assert!(html(&app, &cancelled)
        .await
        .contains("<div id=\"status\" class=\"cancelled\">Cancelled</div>"));

    // Every invoice path serves the page to a browser.
    let open = app.create_simple(1000).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .client
        .get(app.url(&format!("/api/jpp/invoices/{open}/")))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("<div id=\"status\" class=\"open\">Waiting for payment</div>"));
}

async fn the_page_reconnects_and_learns_what_it_missed(app: TestApp) {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    // The page reaches the server through a proxy the test can take down, as a phone loses
    // its network.
    let proxy = Proxy::start(app.base.trim_start_matches("http://")).await;
    let (id, raw) = app.invoice_and_payment().await;
    let mut page = Page::open(chromium, &format!("http://{}/i/{id}", proxy.authority)).await;
    page.wait_for("#live.on").await;

    proxy.down();
    let lost = page.wait_for("#live.off").await;
    assert!(lost.starts_with("Connection lost"), "{lost}");
    // Paid while the page cannot hear it.
    app.pay(&id, &raw).await;
    assert_eq!(page.text("#status").await, "Waiting for payment");

    proxy.up();
    let txid = txid_of(&raw).to_hex();
    assert_eq!(page.wait_for("#status.paid").await, format!("Paid: {txid}"));
    page.wait_for("#live.done").await;
    // It came back on its own, asking for the state it missed.
    let sockets = proxy.socket_requests();
    assert!(sockets.len() >= 2, "{sockets:?}");
    assert!(
        sockets
            .iter()
            .all(|r| r.starts_with(&format!("GET /ws/jpp/invoice/{id}/?snapshot=1"))),
        "{sockets:?}"
    );
}

/// A TCP proxy on loopback in front of the server, which the test can take down (every
/// connection cut, new ones refused) and bring back. It notes the socket requests through it.
struct Proxy {
    authority: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let upstream = upstream.to_owned();
        let accept = tokio::spawn({
            let (up, connections, requests) = (up.clone(), connections.clone(), requests.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        continue; // dropped: the connection is refused
                    }
                    let (upstream, requests) = (upstream.clone(), requests.clone());
                    let task = tokio::spawn(async move {
                        let mut head = [0u8; 256];
                        if let Ok(n) = inbound.peek(&mut head).await {
                            let head = String::from_utf8_lossy(&head[..n]);
                            let line = head.lines().next().unwrap_or_default();
                            if line.starts_with("GET /ws/") {
                                requests.lock().unwrap().push(line.to_owned());
                            }
                        }
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections.lock().unwrap().push(task.abort_handle());
                }
            }
        });
        Proxy {
            authority,
            up,
            connections,
            requests,
            accept,
        }
    }

    /// Cuts every connection through the proxy and refuses new ones.
    fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The request lines of the socket connections made through the proxy.
    fn socket_requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.down();
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One tab of a headless Chromium, driven over the DevTools protocol. The browser is ended
/// when this is dropped.
struct Page {
    chromium: Child,
    devtools: Socket,
    next_id: u64,
    /// Events that arrived while waiting for an answer.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Page {
    /// Starts Chromium, opens a phone-sized tab and loads `url` in it.
    async fn open(chromium: &str, url: &str) -> Page {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium)
            .args(FLAGS)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Chromium says on stderr where its DevTools endpoint listens; the rest of its stderr
        // is read and dropped so it never blocks on a full pipe.
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
        // ws://127.0.0.1:<port>/devtools/browser/<id>
        let authority = endpoint
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        // A tab of our own (PUT, as current Chromium requires).
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
            json!({"width": 390, "height": 900, "deviceScaleFactor": 1, "mobile": true}),
        )
        .await;
        page.call("Page.enable", json!({})).await;
        page.events.clear();
        page.call("Page.navigate", json!({"url": url})).await;
        page.event("Page.loadEventFired").await;
        page
    }

    /// Sends a command and returns its result (events that come first are kept).
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

    /// Waits for an event by name.
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
        let frame = self
            .devtools
            .next()
            .await
            .expect("DevTools closed")
            .expect("DevTools frame");
        match frame {
            Message::Text(text) => serde_json::from_str(&text).unwrap(),
            other => panic!("unexpected DevTools frame {other:?}"),
        }
    }

    /// Evaluates a JavaScript expression (promises awaited) and returns its value.
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

    async fn text(&mut self, selector: &str) -> String {
        let expression = format!("document.querySelector({selector:?}).textContent");
        self.eval(&expression).await.as_str().unwrap().to_owned()
    }

    /// Waits until an element matches `selector` (watching the DOM change, not polling) and
    /// returns its text. On failure the page's DOM is in the message.
    async fn wait_for(&mut self, selector: &str) -> String {
        let expression = format!(
            "new Promise((resolve) => {{
               const sel = {selector:?};
               const found = () => document.querySelector(sel);
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

    /// What the phone-sized tab shows, as a PNG file.
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
        // Ends the Chromium this page started (by its handle), and reaps it.
        let _ = self.chromium.kill();
        let _ = self.chromium.wait();
    }
}

/// Standard base64 (DevTools sends screenshots so); not worth a dependency.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for chunk in text.trim_end_matches('=').as_bytes().chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | value(c) << (18 - 6 * i));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}
