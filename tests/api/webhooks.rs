//! Webhooks end to end: a real receiver on a real socket, told to succeed, fail with 500,
//! hang, reset the connection, redirect, or be down; the server started in-process (and once
//! as a child process, killed mid-delivery). Every delivery is checked the way a receiver
//! checks it: the signature over its timestamp and body, the event id in header and body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use cashier::notify::webhook::sign;

/// Flags every test here runs with: the receiver is on 127.0.0.1, retries come quickly, and a
/// hanging receiver is given up on after a second.
const FLAGS: [&str; 5] = [
    "--webhook-allow-private",
    "--webhook-first-retry-ms",
    "50",
    "--webhook-timeout",
    "1",
];

/// How long a test waits for anything before it fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// What the receiver does with the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Fail500,
    /// Reads the request and never answers.
    Hang,
    /// Reads the request and resets the connection.
    Reset,
    /// Answers 302 to this port's `/elsewhere`.
    Redirect(u16),
}

/// One request the receiver read, and what it did with it.
#[derive(Debug)]
pub struct Hit {
    pub headers: HashMap<String, String>,
    pub body: String,
    pub answered: Mode,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// The signature checks with `secret` and a five-minute tolerance, and the event id header
    /// is the body's; the body as JSON.
    pub fn verified(&self, secret: &str) -> Value {
        let header = &self.headers["cashier-signature"];
        let now = cashier::units::now_ms() / 1000;
        assert_eq!(
            sign::verify(secret, header, self.body.as_bytes(), now, 300),
            Ok(()),
            "{header} over {}",
            self.body
        );
        let body = self.json();
        assert_eq!(
            self.headers["cashier-event-id"],
            body["event_id"].to_string()
        );
        assert_eq!(self.headers["cashier-delivery-id"], body["delivery_id"]);
        body
    }
}

/// A webhook receiver on 127.0.0.1 that can be told how to behave, and taken down and up.
pub struct Receiver {
    pub port: u16,
    mode: Arc<Mutex<Mode>>,
    hits: mpsc::UnboundedReceiver<Hit>,
    sender: mpsc::UnboundedSender<Hit>,
    accepting: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, hits) = mpsc::unbounded_channel();
        let mut receiver = Receiver {
            port,
            mode: Arc::new(Mutex::new(Mode::Ok)),
            hits,
            sender,
            accepting: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: TcpListener) {
        let (mode, sender) = (self.mode.clone(), self.sender.clone());
        self.accepting = Some(tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (mode, sender) = (mode.clone(), sender.clone());
                tokio::spawn(answer(socket, mode, sender));
            }
        }));
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Stops listening: connections are refused.
    pub fn down(&mut self) {
        if let Some(task) = self.accepting.take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn up(&mut self) {
        let listener = loop {
            // The aborted task drops its listener as it ends; the port is free a moment later.
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        self.serve(listener);
    }

    /// The next request read, whatever was answered.
    pub async fn next(&mut self) -> Hit {
        tokio::time::timeout(PATIENCE, self.hits.recv())
            .await
            .expect("no webhook request arrived in time")
            .unwrap()
    }

    /// The next request answered 200, skipping failed attempts.
    pub async fn next_delivered(&mut self) -> Hit {
        loop {
            let hit = self.next().await;
            if hit.answered == Mode::Ok {
                return hit;
            }
        }
    }

    /// Requests read and not yet taken.
    pub fn waiting(&mut self) -> Vec<Hit> {
        let mut hits = Vec::new();
        while let Ok(hit) = self.hits.try_recv() {
            hits.push(hit);
        }
        hits
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}

/// Reads one request and answers it as `mode` says; one request per connection.
async fn answer(mut socket: TcpStream, mode: Arc<Mutex<Mode>>, hits: mpsc::UnboundedSender<Hit>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, length) = loop {
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while buf.len() < head_end + length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    let answered = *mode.lock().unwrap();
    let _ = hits.send(Hit {
        headers,
        body,
        answered,
    });
    let reply = match answered {
        Mode::Ok => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".into(),
        Mode::Fail500 => {
            "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                .into()
        }
        Mode::Redirect(port) => format!(
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{port}/elsewhere\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ),
        Mode::Hang => {
            // Holds the connection past the server's timeout; the server gives up first.
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        Mode::Reset => {
            let _ = socket.set_zero_linger();
            return;
        }
    };
    let _ = socket.write_all(reply.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// Registers `url` for the test key's store over the API: the endpoint's id and secret.
pub async fn register(app: &TestApp, url: &str, events: Option<Value>) -> (i64, String) {
    let mut body = json!({ "url": url });
    if let Some(events) = events {
        body["events"] = events;
    }
    let (status, answer) =
        webhook_call(app, &app.key, "POST", "/api/jpp/webhooks", Some(body)).await;
    assert_eq!(status, 201, "{answer}");
    let secret = answer["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (answer["id"].as_i64().unwrap(), secret)
}

/// A call to the webhook API with `key`: status and JSON (null when there is none).
pub async fn webhook_call(
    app: &TestApp,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app
        .client
        .request(method.parse().unwrap(), app.url(path))
        .header("X-Api-Key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The endpoint's delivery log.
pub async fn deliveries(app: &TestApp, id: i64) -> Vec<Value> {
    let (status, log) = webhook_call(
        app,
        &app.key,
        "GET",
        &format!("/api/jpp/webhooks/{id}/deliveries"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    log["deliveries"].as_array().unwrap().clone()
}

/// Asks for events to be sent again (`{"event_id"}` or `{"since_event_id"}`): how many were
/// queued.
async fn redeliver(app: &TestApp, hook: i64, body: Value) -> i64 {
    let path = format!("/api/jpp/webhooks/{hook}/redeliver");
    let (status, queued) = webhook_call(app, &app.key, "POST", &path, Some(body)).await;
    assert_eq!(status, 200, "{queued}");
    queued["queued"].as_i64().unwrap()
}

/// A Lightning invoice of `payee` made with `request`, paid by `payer` on this server.
async fn paid_internally(
    app: &TestApp,
    (payee, payer): (&crate::helpers::LnWallet, &crate::helpers::LnWallet),
    request: Value,
) -> Value {
    let (status, invoice) = app.ln_payments_post(&payee.inkey, request).await;
    assert_eq!(status, 201, "{invoice}");
    let pay = json!({"out": true, "bolt11": invoice["bolt11"]});
    let (status, paid) = app.ln_payments_post(&payer.adminkey, pay).await;
    assert_eq!(status, 201, "{paid}");
    invoice
}

/// Reads a Lightning payment until its `webhook_status` is `want`.
async fn webhook_status_becomes(app: &TestApp, inkey: &str, hash: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let got: Value = app
            .client
            .get(app.url(&format!("/api/v1/payments/{hash}")))
            .header("X-Api-Key", inkey)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if got["details"]["webhook_status"] == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{want}: {got}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads the delivery log until `done` holds for it (the server's own record, not a sleep).
pub async fn log_when(app: &TestApp, id: i64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let log = deliveries(app, id).await;
        if done(&log) {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery log never got there: {log:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A paid invoice's id.
pub async fn paid_invoice(app: &TestApp) -> String {
    let (id, raw) = app.invoice_and_payment().await;
    app.pay(&id, &raw).await;
    id
}

async fn a_payment_reaches_the_receiver_once_signed(app: TestApp) {
    let mut receiver = Receiver::start().await;
    let (hook, secret) = register(&app, &receiver.url(), None).await;
    let id = paid_invoice(&app).await;

    let hit = receiver.next().await;
    assert_eq!(hit.answered, Mode::Ok);
    let body = hit.verified(&secret);
    assert_eq!(body["type"], "payment_received");
    assert_eq!(body["invoice"]["payment_id"], id.as_str());
    assert_eq!(body["invoice"]["status"], "paid");
    assert_eq!(body["store_id"], 1);
    assert!(
        body["invoice"].get("merchant_data").is_none(),
        "the socket's public shape: {body}"
    );
    assert_eq!(hit.headers["content-type"], "application/json");
    assert!(hit.headers["user-agent"].starts_with("Cashier/"));
    let event_id = body["event_id"].as_i64().unwrap();
    let stored = app.events(&format!("invoice:{id}")).await;
    assert_eq!(stored.last().unwrap().0, event_id);

    // Once: a later event (a cancel) comes next, with nothing of the payment before it.
    let cancelled = app.cancelled_invoice(1000).await;
    let next = receiver.next().await.verified(&secret);
    assert_eq!(next["type"], "invoice_cancelled");
    assert_eq!(next["invoice"]["payment_id"], cancelled.as_str());
    assert!(next["event_id"].as_i64().unwrap() > event_id);
    let log = log_when(&app, hook, |log| {
        log.len() == 2 && log.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    for d in &log {
        assert_eq!(d["attempts"], 1, "{d}");
        assert_eq!(d["last_status"], 200);
        assert_eq!(d["log"].as_array().unwrap().len(), 1);
        assert!(d["next_try"].is_null());
    }
    assert!(receiver.waiting().is_empty());
}

async fn an_endpoint_gets_only_the_kinds_it_asked_for(app: TestApp) {
    let mut receiver = Receiver::start().await;
    let (_, secret) = register(&app, &receiver.url(), Some(json!(["invoice_cancelled"]))).await;
    paid_invoice(&app).await;
    let cancelled = app.cancelled_invoice(1000).await;
    let body = receiver.next().await.verified(&secret);
    assert_eq!(body["type"], "invoice_cancelled");
    assert_eq!(body["invoice"]["payment_id"], cancelled.as_str());
    // The payment came first and was not sent.
    assert!(receiver.waiting().is_empty());
}

async fn a_failing_receiver_gets_the_event_after_it_recovers(app: TestApp) {
    let mut receiver = Receiver::start().await;
    let (hook, secret) = register(&app, &receiver.url(), None).await;
    for mode in [Mode::Fail500, Mode::Hang, Mode::Reset] {
        receiver.set(mode);
        let id = paid_invoice(&app).await;
        // It was tried and failed.
        assert_eq!(receiver.next().await.answered, mode);
        receiver.set(Mode::Ok);
        let body = receiver.next_delivered().await.verified(&secret);
        assert_eq!(body["invoice"]["payment_id"], id.as_str(), "{mode:?}");
    }
    let log = log_when(&app, hook, |log| {
        log.len() == 3 && log.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    // Newest first: reset, hang, 500.
    let first_attempt = |d: &Value| d["log"][0].clone();
    assert!(first_attempt(&log[0])["status"].is_null());
    assert!(first_attempt(&log[1])["status"].is_null());
    assert!(
        first_attempt(&log[1])["error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{}",
        log[1]
    );
    assert_eq!(first_attempt(&log[2])["status"], 500);
    for d in &log {
        assert!(d["attempts"].as_i64().unwrap() >= 2, "{d}");
        assert_eq!(d["last_status"], 200);
    }

    // Down: connections refused until it is back.
    receiver.down();
    let id = paid_invoice(&app).await;
    let log = log_when(&app, hook, |log| {
        log.len() == 4 && log[0]["attempts"].as_i64().unwrap() >= 2
    })
    .await;
    assert_eq!(log[0]["state"], "pending");
    assert!(log[0]["last_error"].as_str().unwrap().len() > 3);
    assert!(log[0]["next_try"].is_string());
    receiver.up().await;
    let body = receiver.next_delivered().await.verified(&secret);
    assert_eq!(body["invoice"]["payment_id"], id.as_str());
}

async fn a_redirect_is_not_followed(app: TestApp) {
    let mut receiver = Receiver::start().await;
    let mut elsewhere = Receiver::start().await;
    receiver.set(Mode::Redirect(elsewhere.port));
    let (hook, secret) = register(&app, &receiver.url(), None).await;
    paid_invoice(&app).await;
    // Tried twice, answered 302 both times; the other address never called.
    assert_eq!(
        receiver.next().await.answered,
        Mode::Redirect(elsewhere.port)
    );
    assert_eq!(
        receiver.next().await.answered,
        Mode::Redirect(elsewhere.port)
    );
    let log = deliveries(&app, hook).await;
    assert_eq!(log[0]["state"], "pending");
    assert!(log[0]["log"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["status"] == 302));
    assert!(elsewhere.waiting().is_empty());
    receiver.set(Mode::Ok);
    receiver.next_delivered().await.verified(&secret);
    assert!(elsewhere.waiting().is_empty());
}

async fn events_of_one_invoice_arrive_in_order_and_a_stuck_one_holds_only_its_own(app: TestApp) {
    let mut slow = Receiver::start().await;
    let mut healthy = Receiver::start().await;
    let (_, slow_secret) = register(&app, &slow.url(), None).await;
    let (_, healthy_secret) = register(&app, &healthy.url(), None).await;
    slow.set(Mode::Fail500);
    let id = paid_invoice(&app).await;
    // The healthy endpoint is not held up by the failing one.
    let body = healthy.next().await.verified(&healthy_secret);
    assert_eq!(
        (
            body["type"].as_str(),
            body["invoice"]["payment_id"].as_str()
        ),
        (Some("payment_received"), Some(id.as_str()))
    );
    assert_eq!(slow.next().await.answered, Mode::Fail500);
    // A second event of the same invoice (`--confirmations 1`: a block confirms it).
    app.mine(1).await;
    let body = healthy.next().await.verified(&healthy_secret);
    assert_eq!(body["type"], "payment_confirmed");
    // At the failing endpoint the confirmation waits behind the payment: only the payment is
    // tried until it is delivered.
    slow.set(Mode::Ok);
    let first = loop {
        let hit = slow.next().await;
        let body = hit.verified(&slow_secret);
        assert_eq!(body["type"], "payment_received", "tried out of order");
        if hit.answered == Mode::Ok {
            break body;
        }
    };
    assert_eq!(first["invoice"]["payment_id"], id.as_str());
    let second = slow.next_delivered().await.verified(&slow_secret);
    assert_eq!(second["type"], "payment_confirmed");
    assert!(second["event_id"].as_i64() > first["event_id"].as_i64());
}

async fn a_receiver_given_up_on_turns_its_endpoint_off_until_enabled(app: TestApp) {
    let mut receiver = Receiver::start().await;
    receiver.set(Mode::Fail500);
    let (hook, secret) = register(&app, &receiver.url(), None).await;
    let first = paid_invoice(&app).await;
    for _ in 0..2 {
        assert_eq!(receiver.next().await.answered, Mode::Fail500);
    }
    let log = log_when(&app, hook, |log| {
        log.first().is_some_and(|d| d["state"] == "failed")
    })
    .await;
    assert_eq!(log[0]["attempts"], 2);
    let (_, endpoint) = webhook_call(
        &app,
        &app.key,
        "GET",
        &format!("/api/jpp/webhooks/{hook}"),
        None,
    )
    .await;
    assert_eq!(endpoint["enabled"], false, "{endpoint}");
    assert!(endpoint["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("2 attempts"));
    assert!(endpoint.get("secret").is_none());

    // Off: a new event waits, and is sent when the endpoint is on again, before the next.
    let second = paid_invoice(&app).await;
    let waiting = log_when(&app, hook, |log| log.len() == 2).await;
    assert_eq!(
        (&waiting[0]["state"], &waiting[0]["attempts"]),
        (&json!("pending"), &json!(0))
    );
    assert!(receiver.waiting().is_empty());
    receiver.set(Mode::Ok);
    let (status, _) = webhook_call(
        &app,
        &app.key,
        "POST",
        &format!("/api/jpp/webhooks/{hook}/enable"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let body = receiver.next().await.verified(&secret);
    assert_eq!(body["invoice"]["payment_id"], second.as_str());
    let third = paid_invoice(&app).await;
    let body = receiver.next().await.verified(&secret);
    assert_eq!(body["invoice"]["payment_id"], third.as_str());
    assert!(receiver.waiting().is_empty());

    // The one given up on, sent again on request.
    let event_id = log[0]["event_id"].as_i64().unwrap();
    assert_eq!(
        redeliver(&app, hook, json!({"event_id": event_id})).await,
        1
    );
    let again = receiver.next().await.verified(&secret);
    assert_eq!(again["invoice"]["payment_id"], first.as_str());
    assert_eq!(again["event_id"], event_id);

    // Everything since the first: the three payments' events.
    assert_eq!(
        redeliver(&app, hook, json!({"since_event_id": event_id})).await,
        3
    );
    let mut ids: Vec<i64> = Vec::new();
    for _ in 0..3 {
        ids.push(
            receiver.next().await.verified(&secret)["event_id"]
                .as_i64()
                .unwrap(),
        );
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
}

async fn a_lightning_invoice_with_a_webhook_gets_lnbits_post_once(app: TestApp) {
    let mut receiver = Receiver::start().await;
    let payee = app.ln_account("payee").await;
    let payer = app.ln_account("payer").await;
    app.lightning.top_up(&payer.id, 10_000).await.unwrap();
    let invoice = paid_internally(
        &app,
        (&payee, &payer),
        json!({"out": false, "amount": 2100, "memo": "coffee", "webhook": receiver.url()}),
    )
    .await;

    let hit = receiver.next().await;
    // LNbits 1.1+ sends the Payment as JSON text inside a JSON string.
    let text: String = serde_json::from_str(&hit.body).unwrap();
    let payment: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(payment["payment_hash"], invoice["payment_hash"]);
    assert_eq!(payment["amount"], 2_100_000);
    assert_eq!(payment["status"], "success");
    assert_eq!(payment["memo"], "coffee");
    assert_eq!(payment["webhook"], receiver.url().as_str());
    // Signed with the hex SHA-256 of the payee's invoice key, for receivers that check.
    let key = hex::encode(sha2_of(&payee.inkey));
    let now = cashier::units::now_ms() / 1000;
    assert_eq!(
        sign::verify(
            &key,
            &hit.headers["cashier-signature"],
            hit.body.as_bytes(),
            now,
            300
        ),
        Ok(())
    );
    // LNbits' webhook_status follows: the HTTP status as text.
    let hash = invoice["payment_hash"].as_str().unwrap();
    webhook_status_becomes(&app, &payee.inkey, hash, "200").await;
    // Once: the payer's own event (payment_sent) makes no webhook, and nothing else came.
    assert!(receiver.waiting().is_empty());
}

fn sha2_of(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

on_both_backends!(["--webhook-allow-private", "--webhook-first-retry-ms", "50", "--webhook-timeout", "1"] => a_payment_reaches_the_receiver_once_signed,
    an_endpoint_gets_only_the_kinds_it_asked_for,
    a_failing_receiver_gets_the_event_after_it_recovers,
    a_redirect_is_not_followed,
    a_lightning_invoice_with_a_webhook_gets_lnbits_post_once);

on_both_backends!(["--webhook-allow-private", "--webhook-first-retry-ms", "50", "--confirmations", "1"]
    => events_of_one_invoice_arrive_in_order_and_a_stuck_one_holds_only_its_own);

on_both_backends!(["--webhook-allow-private", "--webhook-first-retry-ms", "20", "--webhook-max-attempts", "2"]
    => a_receiver_given_up_on_turns_its_endpoint_off_until_enabled);

/// Attacks on the webhook API: URLs into the server's own network, other stores' keys and
/// endpoints, keys without the scope, malformed requests. Each is refused and nothing changes.
async fn private_targets_are_refused_without_the_setting(app: TestApp) {
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ] {
        let (status, answer) = webhook_call(
            &app,
            &app.key,
            "POST",
            "/api/jpp/webhooks",
            Some(json!({"url": url})),
        )
        .await;
        assert_eq!(status, 400, "{url}: {answer}");
        assert_eq!(answer["code"], "webhook_url_refused", "{url}");
        assert!(
            answer["detail"]
                .as_str()
                .unwrap()
                .contains("--webhook-allow-private"),
            "{answer}"
        );
    }
    for (body, field) in [
        (json!({"url": "ftp://example.com/"}), "url"),
        (json!({"url": "http://user:pw@example.com/"}), "url"),
        (json!({"url": 5}), "url"),
        (json!({}), "url"),
        (
            json!({"url": "https://example.com/", "events": ["payment_stolen"]}),
            "events",
        ),
        (
            json!({"url": "https://example.com/", "events": "payment_received"}),
            "events",
        ),
    ] {
        let (status, answer) = webhook_call(
            &app,
            &app.key,
            "POST",
            "/api/jpp/webhooks",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["fields"][field].is_array(), "{body}: {answer}");
    }
    let (status, list) = webhook_call(&app, &app.key, "GET", "/api/jpp/webhooks", None).await;
    assert_eq!(
        (status, list["webhooks"].as_array().unwrap().len()),
        (200, 0)
    );
    // A Lightning invoice's `webhook` is taken as given (as LNbits does) and checked when it
    // is sent: one into the server's network is never called, and one that is not a URL is
    // not retried for a day. LNbits' "-1" says so.
    let mut receiver = Receiver::start().await;
    let payee = app.ln_account("payee").await;
    let payer = app.ln_account("payer").await;
    app.lightning.top_up(&payer.id, 10_000).await.unwrap();
    for webhook in [receiver.url(), "not a url".to_owned()] {
        let invoice = paid_internally(
            &app,
            (&payee, &payer),
            json!({"out": false, "amount": 10, "webhook": webhook}),
        )
        .await;
        let hash = invoice["payment_hash"].as_str().unwrap();
        webhook_status_becomes(&app, &payee.inkey, hash, "-1").await;
    }
    assert!(
        receiver.waiting().is_empty(),
        "a private address was called"
    );
}

async fn other_stores_and_unscoped_keys_reach_nothing(app: TestApp) {
    let mut receiver = Receiver::start().await;
    let (hook, _) = register(&app, &receiver.url(), None).await;
    let other_store = app.make_store("other").await;
    let stranger = app.make_key(other_store, "all").await;
    let till = app
        .make_key(1, "invoices:create invoices:read invoices:cancel")
        .await;

    // A key without webhooks:manage, of the right store: 403 everywhere.
    for (method, path) in [
        ("GET", "/api/jpp/webhooks".to_owned()),
        ("POST", "/api/jpp/webhooks".to_owned()),
        ("GET", format!("/api/jpp/webhooks/{hook}/deliveries")),
        ("DELETE", format!("/api/jpp/webhooks/{hook}")),
    ] {
        let (status, answer) = webhook_call(
            &app,
            &till,
            method,
            &path,
            Some(json!({"url": receiver.url()})),
        )
        .await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "insufficient_scope");
    }
    // Another store's key: the endpoint does not exist for it.
    for (method, path, body) in [
        ("GET", format!("/api/jpp/webhooks/{hook}"), None),
        ("GET", format!("/api/jpp/webhooks/{hook}/deliveries"), None),
        ("DELETE", format!("/api/jpp/webhooks/{hook}"), None),
        ("POST", format!("/api/jpp/webhooks/{hook}/disable"), None),
        (
            "POST",
            format!("/api/jpp/webhooks/{hook}/redeliver"),
            Some(json!({"since_event_id": 1})),
        ),
    ] {
        let (status, answer) = webhook_call(&app, &stranger, method, &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
    }
    let (_, theirs) = webhook_call(&app, &stranger, "GET", "/api/jpp/webhooks", None).await;
    assert_eq!(theirs["webhooks"], json!([]));
    // No key at all.
    let r = app
        .client
        .get(app.url("/api/jpp/webhooks"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Nothing changed: the endpoint is there, on, and still gets its store's events.
    let (_, ours) = webhook_call(
        &app,
        &app.key,
        "GET",
        &format!("/api/jpp/webhooks/{hook}"),
        None,
    )
    .await;
    assert_eq!(ours["enabled"], true);
    // And the other store's own endpoint hears nothing of this store's payments.
    let mut theirs_receiver = Receiver::start().await;
    let (status, _) = webhook_call(
        &app,
        &stranger,
        "POST",
        "/api/jpp/webhooks",
        Some(json!({"url": theirs_receiver.url()})),
    )
    .await;
    assert_eq!(status, 201);
    let id = paid_invoice(&app).await;
    assert_eq!(
        receiver.next().await.json()["invoice"]["payment_id"],
        id.as_str()
    );
    assert!(theirs_receiver.waiting().is_empty());

    // At most ten endpoints per store: the eleventh is refused and nothing is added.
    for n in 2..=10 {
        register(&app, &format!("{}?n={n}", receiver.url()), None).await;
    }
    let (status, answer) = webhook_call(
        &app,
        &app.key,
        "POST",
        "/api/jpp/webhooks",
        Some(json!({"url": receiver.url()})),
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("too_many_webhooks")),
        "{answer}"
    );
    let (_, list) = webhook_call(&app, &app.key, "GET", "/api/jpp/webhooks", None).await;
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 10);

    // Bad ids and bad redelivery requests.
    for path in [
        "/api/jpp/webhooks/0",
        "/api/jpp/webhooks/abc",
        "/api/jpp/webhooks/-1",
    ] {
        let (status, _) = webhook_call(&app, &app.key, "GET", path, None).await;
        assert_eq!(status, 404, "{path}");
    }
    for body in [
        json!({}),
        json!({"event_id": 0}),
        json!({"event_id": "1"}),
        json!({"event_id": 1, "since_event_id": 1}),
    ] {
        let (status, answer) = webhook_call(
            &app,
            &app.key,
            "POST",
            &format!("/api/jpp/webhooks/{hook}/redeliver"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
}

on_both_backends!(private_targets_are_refused_without_the_setting);
on_both_backends!(["--webhook-allow-private"] => other_stores_and_unscoped_keys_reach_nothing);

mod two_processes {
    use super::*;

    /// Two servers on one PostgreSQL: payments through both, every event delivered once (one
    /// process sends, so each attempt is made once).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_event_is_delivered_once() {
        let a = TestApp::spawn_with(Backend::Postgres, &FLAGS).await;
        let b = a.another_on_the_same_database_with(&FLAGS).await;
        let mut receiver = Receiver::start().await;
        let (_, secret) = register(&a, &receiver.url(), None).await;
        let mut paid = Vec::new();
        for i in 0..6 {
            let app = if i % 2 == 0 { &a } else { &b };
            paid.push(paid_invoice(app).await);
        }
        let mut seen: Vec<String> = Vec::new();
        let mut event_ids = Vec::new();
        while seen.len() < paid.len() {
            let body = receiver.next().await.verified(&secret);
            event_ids.push(body["event_id"].as_i64().unwrap());
            seen.push(body["invoice"]["payment_id"].as_str().unwrap().to_owned());
        }
        // A sentinel after them: nothing came twice before it.
        let sentinel = a.cancelled_invoice(1000).await;
        let last = receiver.next().await.verified(&secret);
        assert_eq!(last["invoice"]["payment_id"], sentinel.as_str());
        seen.sort();
        paid.sort();
        assert_eq!(seen, paid);
        event_ids.sort();
        event_ids.dedup();
        assert_eq!(event_ids.len(), 6);
    }
}

mod crash {
    use super::*;
    use crate::helpers::empty_database;
    use crate::shutdown::Server;

    /// `cashier serve` killed (SIGKILL) while a delivery is in flight: after the restart the
    /// event is delivered (again; the receiver drops duplicates by event id).
    async fn killed_mid_delivery_delivers_after_restart(backend: Backend) {
        let (database_url, _dir) = empty_database(backend);
        let mut receiver = Receiver::start().await;
        receiver.set(Mode::Hang);
        let flags = [
            "--webhook-allow-private",
            "--webhook-timeout",
            "30",
            "--webhook-first-retry-ms",
            "50",
        ];
        let mut server = Server::start_with(&database_url, &flags).await;
        let key = server.key_create(&database_url);
        let base = format!("http://{}", server.addr);
        let client = crate::helpers::http_client();
        let r = client
            .post(format!("{base}/api/jpp/webhooks"))
            .header("X-Api-Key", &key)
            .json(&json!({"url": receiver.url()}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let secret = r.json::<Value>().await.unwrap()["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = client
            .post(format!("{base}/api/jpp/invoices"))
            .header("X-Api-Key", &key)
            .json(&json!({"outputs": [{"address": crate::helpers::TestWallet::new().address, "amount": 5000}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let id = r.json::<Value>().await.unwrap()["payment_id"]
            .as_str()
            .unwrap()
            .to_owned();
        // Paid as a wallet pays: `cashier dev pay`, over HTTP.
        let paid = std::process::Command::new(env!("CARGO_BIN_EXE_cashier"))
            .args(["dev", "pay", &format!("{base}/api/jpp/invoices/{id}/")])
            .output()
            .unwrap();
        assert!(
            paid.status.success(),
            "{}",
            String::from_utf8_lossy(&paid.stderr)
        );
        // The delivery is in flight, held by the receiver.
        let held = receiver.next().await;
        assert_eq!(held.answered, Mode::Hang);
        server.child.kill().unwrap();
        server.child.wait().unwrap();

        receiver.set(Mode::Ok);
        let restarted = Server::start_with(&database_url, &flags).await;
        let hit = receiver.next_delivered().await;
        let body = hit.verified(&secret);
        assert_eq!(body["invoice"]["payment_id"], id.as_str());
        assert_eq!(
            hit.headers["cashier-event-id"],
            held.headers["cashier-event-id"]
        );
        drop(restarted);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        killed_mid_delivery_delivers_after_restart(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        killed_mid_delivery_delivers_after_restart(Backend::Postgres).await
    }
}

mod examples {
    use std::process::{Command, Stdio};

    use super::*;
    use crate::examples::{lines_of, wait_for};

    on_both_backends!(["--webhook-allow-private"] => the_example_receivers_check_sign_and_dedupe);

    /// `examples/webhooks/receiver.py` and `receiver.js`, run as shipped: they print a real
    /// delivery, refuse an old timestamp and a wrong signature, and drop a duplicate.
    async fn the_example_receivers_check_sign_and_dedupe(app: TestApp) {
        for (interpreter, script) in [("python3", "receiver.py"), ("node", "receiver.js")] {
            run(&app, interpreter, script).await;
        }
    }

    async fn run(app: &TestApp, interpreter: &str, script: &str) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/");
        let (hook, secret) = register(app, &url, None).await;
        let mut child = Command::new(interpreter)
            .arg(script)
            .args(["--port", &port.to_string()])
            .env("CASHIER_WEBHOOK_SECRET", &secret)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/webhooks"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {interpreter}: {e}"));
        let mut lines = lines_of(&mut child);
        let mut seen = Vec::new();
        wait_for(&mut lines, &mut seen, "Listening on", script).await;

        let id = paid_invoice(app).await;
        wait_for(
            &mut lines,
            &mut seen,
            &format!("payment_received invoice={id} status=paid"),
            script,
        )
        .await;
        let log = log_when(app, hook, |log| {
            log.first().is_some_and(|d| d["state"] == "delivered")
        })
        .await;
        let event_id = log[0]["event_id"].as_i64().unwrap();

        let client = crate::helpers::http_client();
        let post = |body: String, header: String| {
            let client = client.clone();
            let url = url.clone();
            async move {
                client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header(sign::SIGNATURE_HEADER, header)
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        let now = cashier::units::now_ms() / 1000;
        let body = json!({"event_id": event_id + 1000, "type": "payment_received"}).to_string();
        // A captured delivery replayed ten minutes later: refused for its timestamp.
        let stale = sign::signature(&secret, now - 600, body.as_bytes());
        assert_eq!(post(body.clone(), stale).await, 400, "{script}");
        wait_for(&mut lines, &mut seen, "refused: stale timestamp", script).await;
        // Signed with another secret, or the body changed after signing.
        let forged = sign::signature("whsec_not_the_secret", now, body.as_bytes());
        assert_eq!(post(body.clone(), forged).await, 401, "{script}");
        wait_for(&mut lines, &mut seen, "refused: bad signature", script).await;
        let signed = sign::signature(&secret, now, body.as_bytes());
        assert_eq!(
            post(
                body.replace("payment_received", "invoice_cancelled"),
                signed
            )
            .await,
            401
        );
        wait_for(&mut lines, &mut seen, "refused: bad signature", script).await;
        // The delivered event again, validly signed: dropped as a duplicate.
        let again = json!({"event_id": event_id, "type": "payment_received"}).to_string();
        let signed = sign::signature(&secret, now, again.as_bytes());
        assert_eq!(post(again, signed).await, 200, "{script}");
        wait_for(
            &mut lines,
            &mut seen,
            &format!("duplicate event {event_id}, ignored"),
            script,
        )
        .await;
        assert_eq!(
            seen.iter().filter(|l| l.starts_with("event ")).count(),
            1,
            "{script}: {seen:?}"
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}
