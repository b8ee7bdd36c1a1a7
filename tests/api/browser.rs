//! Headless Chromium for the tests that need a browser: finding it (or skipping without it),
//! one-shot runs (`--dump-dom`, `--screenshot`), and a tab driven over the DevTools protocol
//! that waits on DOM changes, never on sleeps. Pictures go to test-artifacts/ for a reviewer.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// How long any one wait on the browser may take before the test fails (a bound, not a
/// timing assertion: a broken page fails instead of hanging).
const PATIENCE: Duration = Duration::from_secs(60);

/// The flags of every headless run.
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

/// Debian's Chromium, if installed (`.ci/run` installs it).
fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// Chromium, or `None` and a note when it is missing outside CI (CI must have it). `what`
/// says who skips, e.g. "the HTML example needs".
pub fn chromium_or_skip(what: &str) -> Option<&'static str> {
    let found = chromium();
    if found.is_none() {
        assert!(std::env::var("CI").is_err(), "CI must install chromium");
        eprintln!("SKIPPED: {what} Chromium (apt-get install chromium)");
    }
    found
}

/// The path of a file named `name` in test-artifacts/ (made if missing), for a reviewer.
pub fn artifact(name: &str) -> String {
    let dir = format!("{}/test-artifacts", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    format!("{dir}/{name}")
}

/// A one-shot headless run with its profile in `profile`: the page's timers run ahead by up
/// to `virtual_time_ms` (it still waits for its sockets). The caller adds its own flags
/// (`--dump-dom`, `--screenshot=…`), then the URL.
pub fn headless(chromium: &str, profile: &Path, virtual_time_ms: u32) -> Command {
    let mut cmd = Command::new(chromium);
    cmd.args(FLAGS)
        .arg(format!("--virtual-time-budget={virtual_time_ms}"))
        .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// Runs a `--dump-dom` command and returns the DOM it printed.
pub async fn dump_dom(mut cmd: Command) -> String {
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a `--screenshot=<shot>` command and requires it to succeed and `shot` to be non-empty.
pub async fn screenshot(mut cmd: Command, shot: &str) {
    let status = tokio::task::spawn_blocking(move || cmd.status().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    assert!(std::fs::metadata(shot)
        .map(|m| m.len() > 0)
        .unwrap_or(false));
}

/// The size of a DevTools tab.
pub struct Viewport {
    width: u32,
    height: u32,
    mobile: bool,
}

impl Viewport {
    pub const PHONE: Viewport = Viewport {
        width: 390,
        height: 900,
        mobile: true,
    };
    pub const DESKTOP: Viewport = Viewport {
        width: 900,
        height: 700,
        mobile: false,
    };
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One tab of a headless Chromium, driven over the DevTools protocol. The browser is ended
/// when this is dropped.
pub struct Page {
    chromium: Child,
    devtools: Socket,
    next_id: u64,
    /// Events that arrived while waiting for an answer.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Page {
    /// Starts Chromium, opens a tab of `viewport`'s size and loads `url` in it.
    pub async fn open(chromium: &str, url: &str, viewport: Viewport) -> Page {
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
        let target: Value = crate::helpers::http_client()
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
            json!({
                "width": viewport.width,
                "height": viewport.height,
                "deviceScaleFactor": 1,
                "mobile": viewport.mobile,
            }),
        )
        .await;
        page.call("Page.enable", json!({})).await;
        page.navigate(url).await;
        page
    }

    /// Loads `url` in the tab and waits for its load event.
    pub async fn navigate(&mut self, url: &str) {
        self.events.clear();
        self.call("Page.navigate", json!({"url": url})).await;
        self.event("Page.loadEventFired").await;
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
    pub async fn eval(&mut self, expression: &str) -> Value {
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

    /// The text of the first element that matches `selector`.
    pub async fn text(&mut self, selector: &str) -> String {
        let expression = format!("document.querySelector({selector:?}).textContent");
        self.eval(&expression).await.as_str().unwrap().to_owned()
    }

    /// Waits until an element matches `selector` (watching the DOM change, not polling) and
    /// returns its text. On failure the page's DOM is in the message.
    pub async fn wait_for(&mut self, selector: &str) -> String {
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

    /// What the tab shows, as a PNG file.
    pub async fn screenshot(&mut self, path: &str) {
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
