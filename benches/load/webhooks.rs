//! B10: webhooks. Events are generated at a steady offered rate through the real API (each
//! `POST …/invoices/{id}/cancel` commits one `invoice_cancelled`; the invoices are created
//! before the clock starts) while a receiver in this process, on 127.0.0.1, takes the signed
//! POSTs the server's webhook sender makes. Two modes, each on a fresh server:
//!
//! - healthy: every request is answered 200;
//! - failing half: a request for an odd event id is answered 500 the first
//!   [`REFUSALS_PER_ODD_EVENT`] times, and 200 after; an even one is answered 200 at once. So
//!   exactly half of all requests fail (two refused for every two accepted), half the events
//!   are delivered on their third attempt after two back-offs, and every event is delivered
//!   within a bounded time.
//!
//! Commit time is the outbox row's `created_ms`: the server's clock, stamped inside the
//! committing transaction (so the latency includes the commit itself) in whole milliseconds
//! (so it reads up to 1 ms high). Arrival is when the receiver has read a request's whole body
//! (the same machine's clock, µs). Latency = first accepted arrival − commit, per event.
//! Delivered per second (sustained) = events first accepted during the last three quarters of
//! the time events were being made, over that time: the offered rate when the sender keeps up,
//! its ceiling when it does not (then the events left at the last commit, and how long they
//! took to go, say by how much). Every request the receiver read is checked after the run:
//! HMAC-SHA256 over `"<t>.<body>"` with the endpoint's secret (computed here, not with the
//! server's code), `t` within 5 s of arrival, and the event and delivery id headers equal to
//! the body's.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{cpu_ms, find, median, post, start_server_with, Conn, Options, Server, ADDR};

/// Failing mode: how often a request for an odd event id is refused before one is accepted.
const REFUSALS_PER_ODD_EVENT: u32 = 2;
/// The server's first back-off (`--webhook-first-retry-ms`): short, so the failing mode's
/// retries end within the run.
const FIRST_RETRY_MS: &str = "100";
/// Connections the invoices are created and cancelled over.
const CONNECTIONS: usize = 8;
/// Longest wait for the last deliveries once the last event has been generated.
const PATIENCE: Duration = Duration::from_secs(60);
/// Once every event has been accepted, how long the receiver still listens for duplicates.
const GRACE: Duration = Duration::from_millis(500);
/// Most a signature's `t` may differ from the arrival time.
const TOLERANCE_SECS: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Healthy,
    FailingHalf,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Healthy => "healthy",
            Mode::FailingHalf => "failing half",
        }
    }
}

/// One request the receiver read.
struct Hit {
    at_us: i64,
    event_id: i64,
    accepted: bool,
    signature: String,
    delivery_id: String,
    body: Vec<u8>,
}

#[derive(Default)]
struct Received {
    hits: Vec<Hit>,
    /// Requests read per event id.
    seen: HashMap<i64, u32>,
    /// The first accepted arrival of each event (µs since the epoch).
    first_accepted: HashMap<i64, i64>,
    connections: usize,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as i64
}

/// A webhook receiver on 127.0.0.1: HTTP/1.1 with keep-alive, Content-Length bodies.
struct Receiver {
    url: String,
    state: Arc<Mutex<Received>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(mode: Mode) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://127.0.0.1:{}/hook",
            listener.local_addr().expect("address").port()
        );
        let state = Arc::new(Mutex::new(Received::default()));
        let shared = state.clone();
        let accepting = tokio::spawn(async move {
            // Dropped (aborting every connection) when the accepting task is aborted.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((socket, _)) = listener.accept().await {
                shared.lock().expect("receiver state").connections += 1;
                connections.spawn(serve(socket, mode, shared.clone()));
                while connections.try_join_next().is_some() {}
            }
        });
        Receiver {
            url,
            state,
            accepting,
        }
    }

    fn accepted(&self) -> usize {
        self.state
            .lock()
            .expect("receiver state")
            .first_accepted
            .len()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Answers requests on one connection until the sender closes it.
async fn serve(mut socket: TcpStream, mode: Mode, state: Arc<Mutex<Received>>) {
    let _ = socket.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = [0u8; 16384];
    loop {
        let head_end = loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                break end;
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length: usize = header(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let end = head_end + 4 + length;
        while buf.len() < end {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let at_us = now_us();
        let event_id: i64 = header(&head, "cashier-event-id")
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1);
        let accepted = {
            let mut s = state.lock().expect("receiver state");
            let seen = s.seen.entry(event_id).or_default();
            *seen += 1;
            let accepted = match mode {
                Mode::Healthy => true,
                Mode::FailingHalf => event_id % 2 == 0 || *seen > REFUSALS_PER_ODD_EVENT,
            };
            if accepted {
                s.first_accepted.entry(event_id).or_insert(at_us);
            }
            s.hits.push(Hit {
                at_us,
                event_id,
                accepted,
                signature: header(&head, "cashier-signature")
                    .unwrap_or_default()
                    .to_owned(),
                delivery_id: header(&head, "cashier-delivery-id")
                    .unwrap_or_default()
                    .to_owned(),
                body: buf[head_end + 4..end].to_vec(),
            });
            accepted
        };
        let answer: &[u8] = if accepted {
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        } else {
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
        };
        if socket.write_all(answer).await.is_err() {
            return;
        }
        buf.drain(..end);
    }
}

/// Whether `hit` is a genuine delivery: the signature checks with `secret` (HMAC-SHA256 over
/// `"<t>.<body>"`), `t` is near the arrival, and the id headers are the body's. Why not, if not.
fn check(hit: &Hit, secret: &str) -> Result<Value, String> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in hit.signature.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1.push(v.to_owned()),
            _ => {}
        }
    }
    let t = t.ok_or_else(|| format!("no t in {:?}", hit.signature))?;
    if (t - hit.at_us / 1_000_000).abs() > TOLERANCE_SECS {
        return Err(format!(
            "t={t} is not within {TOLERANCE_SECS} s of the arrival"
        ));
    }
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(&hit.body);
    let expected = hex::encode(mac.finalize().into_bytes());
    if !v1.contains(&expected) {
        return Err(format!("signature {:?} does not check", hit.signature));
    }
    let body: Value = serde_json::from_slice(&hit.body).map_err(|e| format!("body: {e}"))?;
    if body["event_id"].as_i64() != Some(hit.event_id) {
        return Err(format!(
            "event id header {} is not the body's",
            hit.event_id
        ));
    }
    if body["delivery_id"].as_str() != Some(hit.delivery_id.as_str()) {
        return Err("delivery id header is not the body's".into());
    }
    if body["type"] != "invoice_cancelled" || body["store_id"].as_i64().is_none() {
        return Err(format!("unexpected body {body}"));
    }
    Ok(body)
}

/// One run's figures.
pub struct Run {
    pub events: usize,
    pub offered_per_s: f64,
    pub delivered: usize,
    /// First accepted arrivals per second over the last three quarters of the generation.
    pub delivered_per_s: f64,
    /// Commit → first accepted arrival, ms, sorted.
    pub latency_ms: Vec<f64>,
    /// p50, p99 and count of the events accepted at their first request, and of the others.
    pub first_try_ms: (f64, f64, usize),
    pub retried_ms: (f64, f64, usize),
    pub missing: usize,
    pub duplicates: usize,
    pub requests: usize,
    pub refused: usize,
    pub verified: usize,
    /// Attempts the server logged, and how many of them it logged as answered 500.
    pub logged_attempts: usize,
    pub logged_500: usize,
    pub connections: usize,
    /// Events not yet delivered when the last one committed, and how long they took to go.
    pub backlog: usize,
    pub drain_ms: f64,
    /// Where the time goes, per event, p50 and p99 (ms): commit → delivery row (fan-out),
    /// delivery row → first attempt started, that attempt's start → its arrival here.
    pub fan_out_ms: (f64, f64),
    pub queued_ms: (f64, f64),
    pub send_ms: (f64, f64),
    pub server_cpu_ms: u64,
    pub bench_cpu_ms: u64,
    pub wall_ms: f64,
}

pub fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn spread(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (pct(&v, 0.5), pct(&v, 0.99))
}

/// `n` open invoices made through the API over [`CONNECTIONS`] connections; their ids.
async fn create_invoices(addr: &str, key: &str, n: usize) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (addr, key, next) = (addr.to_owned(), key.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await;
            let body = json!({"outputs": [{"address": ADDR, "amount": 10_000}], "memo": "b10", "expires_in": 3600});
            let request = post("/api/jpp/invoices/", &addr, &key, &body);
            let mut ids = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                assert_eq!(conn.call(&request).await.expect("create"), 201);
                let invoice: Value = serde_json::from_slice(conn.body()).expect("invoice JSON");
                ids.push(invoice["payment_id"].as_str().expect("id").to_owned());
            }
            ids
        }));
    }
    let mut ids = Vec::with_capacity(n);
    for t in tasks {
        ids.extend(t.await.expect("create task"));
    }
    ids
}

/// Cancels every invoice, the i-th when `i / rate` seconds have passed (or as soon as a
/// connection is free, when all are busy), over [`CONNECTIONS`] connections.
async fn cancel_paced(addr: &str, key: &str, ids: Vec<String>, rate: u64) {
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        ids.iter()
            .map(|id| {
                post(
                    &format!("/api/jpp/invoices/{id}/cancel"),
                    addr,
                    key,
                    &json!({}),
                )
            })
            .collect(),
    );
    let gap = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (addr, requests, next) = (addr.to_owned(), requests.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    break;
                };
                tokio::time::sleep_until(t0 + gap * i as u32).await;
                assert_eq!(conn.call(request).await.expect("cancel"), 200, "cancel");
            }
        }));
    }
    for t in tasks {
        t.await.expect("cancel task");
    }
}

/// The stored rows the run made: outbox events (id, created_ms); deliveries (id, event id,
/// created_ms); attempts (delivery id, at_ms, status), in order.
type Rows = (
    Vec<(i64, i64)>,
    Vec<(String, i64, i64)>,
    Vec<(String, i64, Option<i32>)>,
);

async fn stored_rows(server: &Server) -> Rows {
    let store = super::chain::store_of(server);
    store
        .read(|c| {
            use cashier::store::schema::{events, webhook_attempts, webhook_deliveries};
            use diesel::prelude::*;
            let events = events::table
                .filter(events::kind.eq("invoice_cancelled"))
                .select((events::id, events::created_ms))
                .load(c)?;
            let deliveries = webhook_deliveries::table
                .select((
                    webhook_deliveries::id,
                    webhook_deliveries::event_id,
                    webhook_deliveries::created_ms,
                ))
                .load(c)?;
            let attempts = webhook_attempts::table
                .order(webhook_attempts::id)
                .select((
                    webhook_attempts::delivery_id,
                    webhook_attempts::at_ms,
                    webhook_attempts::status,
                ))
                .load(c)?;
            Ok((events, deliveries, attempts))
        })
        .await
        .expect("stored rows")
}

/// One run on a server started for it: register the receiver, make `n` invoices, cancel them
/// at `rate` a second, wait for the deliveries, then measure and check.
pub async fn run(server: &Server, key: &str, mode: Mode, n: usize, rate: u64) -> Run {
    let receiver = Receiver::start(mode).await;
    let mut conn = Conn::open(&server.addr).await;
    let add = json!({"url": receiver.url, "events": ["invoice_cancelled"]});
    assert_eq!(
        conn.call(&post("/api/jpp/webhooks", &server.addr, key, &add))
            .await
            .expect("add webhook"),
        201
    );
    let endpoint: Value = serde_json::from_slice(conn.body()).expect("webhook JSON");
    let secret = endpoint["secret"].as_str().expect("secret").to_owned();
    let ids = create_invoices(&server.addr, key, n).await;
    let ours: HashSet<String> = ids.iter().cloned().collect();

    let (server_cpu0, bench_cpu0) = (cpu_ms(server.child.id()), cpu_ms(std::process::id()));
    let start = Instant::now();
    cancel_paced(&server.addr, key, ids, rate).await;
    let deadline = Instant::now() + PATIENCE;
    while receiver.accepted() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wall_ms = start.elapsed().as_secs_f64() * 1000.0;
    let server_cpu_ms = cpu_ms(server.child.id()) - server_cpu0;
    let bench_cpu_ms = cpu_ms(std::process::id()) - bench_cpu0;
    tokio::time::sleep(GRACE).await;
    receiver.accepting.abort();
    let received = std::mem::take(&mut *receiver.state.lock().expect("receiver state"));

    // Every request read was a genuine, signed delivery of one of this run's cancellations.
    for hit in &received.hits {
        let body = check(hit, &secret).unwrap_or_else(|e| panic!("B10 delivery refused: {e}"));
        let invoice = body["invoice"]["payment_id"].as_str().unwrap_or_default();
        assert!(ours.contains(invoice), "a delivery for another invoice");
    }

    let (events, deliveries, attempts) = stored_rows(server).await;
    assert_eq!(events.len(), n, "one invoice_cancelled per cancel");
    let committed: HashMap<i64, i64> = events.iter().copied().collect();
    let first_commit = events.iter().map(|e| e.1).min().unwrap_or(0);
    let last_commit = events.iter().map(|e| e.1).max().unwrap_or(0);
    let mut latency_ms = Vec::new();
    // Split by whether the event's first request was accepted or it needed retries.
    let (mut first_try, mut retried) = (Vec::new(), Vec::new());
    let mut missing = 0;
    let mut last_arrival_us = first_commit * 1000;
    let mut backlog = 0;
    for (event, created) in &events {
        match received.first_accepted.get(event) {
            Some(&at) => {
                let ms = (at - created * 1000) as f64 / 1000.0;
                latency_ms.push(ms);
                if received.seen.get(event).copied().unwrap_or(0) > 1 {
                    retried.push(ms);
                } else {
                    first_try.push(ms);
                }
                last_arrival_us = last_arrival_us.max(at);
                if at > last_commit * 1000 {
                    backlog += 1;
                }
            }
            None => missing += 1,
        }
    }
    latency_ms.sort_by(f64::total_cmp);
    let accepted_requests = received.hits.iter().filter(|h| h.accepted).count();
    let refused = received.hits.len() - accepted_requests;
    let delivered = latency_ms.len();
    let unknown = received
        .first_accepted
        .keys()
        .filter(|e| !committed.contains_key(e))
        .count();
    assert_eq!(unknown, 0, "deliveries of events not in the outbox");

    // Where the time goes, from the server's own rows: the delivery row's creation, and the
    // start of each event's first attempt (whose arrival here is the first hit for it).
    let mut first_hit: HashMap<i64, i64> = HashMap::new();
    for hit in &received.hits {
        first_hit.entry(hit.event_id).or_insert(hit.at_us);
    }
    let mut first_attempt: HashMap<&str, i64> = HashMap::new();
    for (delivery, at, _) in &attempts {
        first_attempt.entry(delivery.as_str()).or_insert(*at);
    }
    let (mut fan_out, mut queued, mut send) = (Vec::new(), Vec::new(), Vec::new());
    for (delivery, event, created) in &deliveries {
        if let Some(commit) = committed.get(event) {
            fan_out.push((created - commit) as f64);
        }
        if let Some(at) = first_attempt.get(delivery.as_str()) {
            queued.push((at - created) as f64);
            if let Some(arrived) = first_hit.get(event) {
                send.push((arrived - at * 1000) as f64 / 1000.0);
            }
        }
    }
    // Sustained: events first accepted while events were still being made, past the first
    // quarter of that time (the pipeline full, retries included), per second of that window.
    let window = (
        (first_commit + (last_commit - first_commit) / 4) * 1000,
        last_commit * 1000,
    );
    let in_window = received
        .first_accepted
        .values()
        .filter(|&&at| at > window.0 && at <= window.1)
        .count();
    Run {
        events: n,
        offered_per_s: (events.len().saturating_sub(1)) as f64
            / ((last_commit - first_commit) as f64 / 1000.0).max(0.001),
        delivered,
        delivered_per_s: in_window as f64 / ((window.1 - window.0) as f64 / 1e6).max(0.001),
        latency_ms,
        first_try_ms: {
            let n = first_try.len();
            let (p50, p99) = spread(first_try);
            (p50, p99, n)
        },
        retried_ms: {
            let n = retried.len();
            let (p50, p99) = spread(retried);
            (p50, p99, n)
        },
        missing,
        duplicates: accepted_requests - delivered,
        requests: received.hits.len(),
        refused,
        verified: received.hits.len(),
        logged_attempts: attempts.len(),
        logged_500: attempts.iter().filter(|a| a.2 == Some(500)).count(),
        connections: received.connections,
        backlog,
        drain_ms: (last_arrival_us - last_commit * 1000) as f64 / 1000.0,
        fan_out_ms: spread(fan_out),
        queued_ms: spread(queued),
        send_ms: spread(send),
        server_cpu_ms,
        bench_cpu_ms,
        wall_ms,
    }
}

/// B10 on `db`: `--runs` runs of each mode, each on a fresh server; one line per run, then
/// the medians.
pub fn b10(o: &Options, runtime: &tokio::runtime::Runtime, db: &str, figures: &mut Vec<Value>) {
    let concurrency = o.b10_concurrency.map(|c| c.to_string());
    let mut flags = vec![
        "--webhook-allow-private",
        "--webhook-first-retry-ms",
        FIRST_RETRY_MS,
    ];
    if let Some(c) = &concurrency {
        flags.extend(["--webhook-concurrency", c]);
    }
    for (&rate, mode) in o
        .b10_rates
        .iter()
        .flat_map(|r| [(r, Mode::Healthy), (r, Mode::FailingHalf)])
    {
        let mut runs = Vec::new();
        for _ in 0..o.runs.max(1) {
            let (server, key) = start_server_with(db, &flags);
            let r = runtime.block_on(run(&server, &key, mode, o.b10_events, rate));
            drop(server);
            runs.push(run_line(db, mode, &r));
        }
        let median_of = |name: &str| {
            median(
                runs.iter()
                    .map(|r| r[name].as_f64().unwrap_or(f64::NAN))
                    .collect(),
            )
        };
        let total = |name: &str| {
            runs.iter()
                .map(|r| r[name].as_u64().unwrap_or(0))
                .sum::<u64>()
        };
        let split = match mode {
            Mode::Healthy => String::new(),
            Mode::FailingHalf => format!(
                "   accepted at once p50 {:.1} ms p99 {:.1} ms, refused {REFUSALS_PER_ODD_EVENT}x first p50 {:.1} ms p99 {:.1} ms",
                median_of("first_try_p50_ms"),
                median_of("first_try_p99_ms"),
                median_of("retried_p50_ms"),
                median_of("retried_p99_ms")
            ),
        };
        println!(
            "B10 webhooks, receiver {:<12} {db:<8} {:>5.0} events/s delivered, sustained ({} offered/s)   commit->receiver p50 {:.1} ms p99 {:.1} ms{split}   missing {} duplicates {}   requests {} refused {}, signatures checked   (median of {}, {} events each)",
            mode.name(),
            median_of("delivered_per_s"),
            rate,
            median_of("p50_ms"),
            median_of("p99_ms"),
            total("missing"),
            total("duplicates"),
            total("requests"),
            total("refused"),
            runs.len(),
            o.b10_events,
        );
        figures.push(json!({
            "id": "B10", "db": db, "receiver": mode.name(), "offered_per_s": rate,
            "events": o.b10_events, "webhook_concurrency": o.b10_concurrency,
            "first_retry_ms": FIRST_RETRY_MS, "commit_time": "outbox created_ms",
            "failing": format!("odd event ids refused {REFUSALS_PER_ODD_EVENT} times, then accepted; even ones accepted at once"),
            "delivered_per_s": median_of("delivered_per_s"), "p50_ms": median_of("p50_ms"),
            "p99_ms": median_of("p99_ms"), "missing": total("missing"),
            "duplicates": total("duplicates"), "runs": runs,
        }));
    }
}

/// Prints one run's line; its figures.
fn run_line(db: &str, mode: Mode, r: &Run) -> Value {
    let (p50, p99, max) = (
        pct(&r.latency_ms, 0.5),
        pct(&r.latency_ms, 0.99),
        pct(&r.latency_ms, 1.0),
    );
    let cpu = |ms: u64| ms as f64 * 100.0 / r.wall_ms;
    println!(
        "    B10 run {db:<8} {:<12} {}/{} delivered at {:.0}/s (offered {:.0}/s)   commit->receiver p50 {p50:.1} ms p99 {p99:.1} ms max {max:.1} ms   requests {} refused {} (server's log: {} attempts, {} got 500) over {} connections   left at the last commit {}, gone {:.0} ms later   per event p50/p99: commit->delivery row {:.0}/{:.0} ms, ->attempt {:.0}/{:.0} ms, ->arrival {:.1}/{:.1} ms   CPU server {:.0}% bench {:.0}%",
        mode.name(), r.delivered, r.events, r.delivered_per_s, r.offered_per_s,
        r.requests, r.refused, r.logged_attempts, r.logged_500, r.connections, r.backlog, r.drain_ms,
        r.fan_out_ms.0, r.fan_out_ms.1, r.queued_ms.0, r.queued_ms.1, r.send_ms.0, r.send_ms.1,
        cpu(r.server_cpu_ms), cpu(r.bench_cpu_ms),
    );
    json!({
        "events": r.events, "offered_per_s": r.offered_per_s, "delivered": r.delivered,
        "delivered_per_s": r.delivered_per_s, "p50_ms": p50, "p99_ms": p99, "max_ms": max,
        "first_try_p50_ms": r.first_try_ms.0, "first_try_p99_ms": r.first_try_ms.1,
        "first_try_events": r.first_try_ms.2, "retried_p50_ms": r.retried_ms.0,
        "retried_p99_ms": r.retried_ms.1, "retried_events": r.retried_ms.2,
        "missing": r.missing, "duplicates": r.duplicates, "requests": r.requests,
        "refused": r.refused, "signatures_verified": r.verified,
        "server_logged_attempts": r.logged_attempts, "server_logged_500": r.logged_500, "connections": r.connections,
        "backlog_at_last_commit": r.backlog, "drain_ms": r.drain_ms,
        "commit_to_delivery_row_p50_ms": r.fan_out_ms.0, "commit_to_delivery_row_p99_ms": r.fan_out_ms.1,
        "delivery_row_to_attempt_p50_ms": r.queued_ms.0, "delivery_row_to_attempt_p99_ms": r.queued_ms.1,
        "attempt_to_arrival_p50_ms": r.send_ms.0, "attempt_to_arrival_p99_ms": r.send_ms.1,
        "server_cpu_ms": r.server_cpu_ms, "bench_cpu_ms": r.bench_cpu_ms, "wall_ms": r.wall_ms,
    })
}
