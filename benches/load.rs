//! The benchmarks of spec/quality.md: B1 (invoice create), B2 (invoice read), B3 (pay on the
//! dev chain), B3n (pay on a BCHN stub with the node's latency injected: `load/node.rs`), B4a
//! (one event to many sockets), B4b (commit -> socket under steady payments), B5 (slow sockets
//! and churn: the server's RSS each second, the healthy sockets' delays with and without the
//! slow ones), B6 (abuse: the traffic kept during attacks, and the cost of a refusal), B7
//! (internal Lightning payments), B8 (cost as the data grows: each operation's p50/p99 on a
//! database seeded with 1k, 100k, 1M rows a table), B9 (the chain watcher) and B10 (webhooks
//! to a local receiver).
//!
//! Starts the real `cashier serve` binary (release build) on a fresh database, drives it over
//! loopback with a minimal keep-alive HTTP/1.1 client (so the client costs the shared CPU as
//! little as possible), prints one line per figure and writes a JSON report.
//!
//!   cargo bench --bench load -- [--db sqlite|postgres|both]
//!       [--only b1,b2,b3,b3n,b4a,b4b,b5,b6,b7,b8,b9,b10] [--seconds 5] [--runs 3]
//!       [--connections 64] [--rate 5000] [--payments 2000] [--watched 10000] [--pay-rate 100]
//!       [--node-stub-latency-ms 0.7] [--node-stub-gettxout-ms MS] [--node-stub-send-ms MS]
//!       [--b3n-inputs 1,10] [--b3n-concurrency 1,16]
//!       [--b5-sockets 1000] [--b5-slow 100] [--b5-topics 10] [--b5-rate 100] [--b5-churn 200]
//!       [--b5-seconds 30] [--b8-rows 1000,100000,1000000] [--b8-requests 300]
//!       [--b9-watched 1000,100000] [--b9-rate 200] [--b9-txs 2000] [--b10-events 3000]
//!       [--b10-rate 200,1000] [--b10-concurrency N] [--lnbits URL,PID] [--report bench-report.json]
//!
//! The default `--only` is every benchmark but B8 and B9, which seed their databases by the
//! hundred thousand (B8 takes minutes a size at 1M rows).
//!
//! PostgreSQL needs CASHIER_TEST_POSTGRES_URL (a server where the user may CREATE DATABASE);
//! `./scripts/bench` starts a throwaway one.

// Test code: a panic is a failed check, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "load/abuse.rs"]
mod abuse;
#[path = "load/chain.rs"]
mod chain;
#[path = "load/growth.rs"]
mod growth;
#[path = "load/lightning.rs"]
mod lightning;
#[path = "load/node.rs"]
mod node;
#[path = "load/slow.rs"]
mod slow;
#[path = "load/sockets.rs"]
mod sockets;
#[path = "load/webhooks.rs"]
mod webhooks;

const ADDR: &str = "bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvs";
const READ_IDS: usize = 10_000;

struct Options {
    dbs: Vec<String>,
    /// Which benchmarks: b1, b2, b3, b3n, b4a, b4b, b5, b6, b7, b8, b9, b10.
    only: Vec<String>,
    /// Payments B3 makes (one invoice and one transaction each).
    payments: usize,
    seconds: u64,
    runs: usize,
    connections: usize,
    rate: u64,
    report: String,
    /// A running LNbits (`http://host:port`) and its process id, for B4a side by side.
    lnbits: Option<(String, u32)>,
    /// B7: internal Lightning payments made.
    ln_payments: usize,
    /// B4b: invoices watched, and payments per second among them.
    watched: usize,
    pay_rate: u64,
    /// B9: open invoices watched (each size is a run), transactions a second, transactions.
    b9_watched: Vec<usize>,
    b9_rate: u64,
    b9_txs: usize,
    /// B10: events generated per run, at each of these rates a second (each rate is a run);
    /// the server's `--webhook-concurrency` (its default when not given).
    b10_events: usize,
    b10_rates: Vec<u64>,
    b10_concurrency: Option<u64>,
    /// B8: rows already stored in each table (each size is a run), and requests timed per
    /// operation.
    b8_rows: Vec<usize>,
    b8_requests: usize,
    /// B5: sockets, how many never read, invoices they watch, events a second over those,
    /// new sockets a second, and seconds.
    b5_sockets: usize,
    b5_slow: usize,
    b5_topics: usize,
    b5_rate: u64,
    b5_churn: u64,
    b5_seconds: u64,
    /// B3n: the node stub's latency by method; payments of each of these input counts, sent
    /// over each of these numbers of connections (each pair is a row).
    node_latency: node::Latency,
    b3n_inputs: Vec<usize>,
    b3n_concurrency: Vec<usize>,
}

/// The benchmarks that share one server per database (B3n, B5, B8, B9 and B10 start their
/// own).
const ON_SHARED_SERVER: [&str; 7] = ["b1", "b2", "b3", "b4a", "b4b", "b6", "b7"];

fn options() -> Options {
    if let Some(i) = std::env::args().position(|a| a == "--floor-writer") {
        let n = std::env::args()
            .nth(i + 1)
            .and_then(|v| v.parse().ok())
            .expect("--floor-writer N");
        sockets::floor_writer(n);
        std::process::exit(0);
    }
    let mut o = Options {
        dbs: vec!["sqlite".into(), "postgres".into()],
        only: [
            "b1", "b2", "b3", "b3n", "b4a", "b4b", "b5", "b6", "b7", "b10",
        ]
        .map(String::from)
        .to_vec(),
        payments: 2000,
        seconds: 5,
        runs: 3,
        connections: 64,
        rate: 5000,
        report: "bench-report.json".into(),
        lnbits: None,
        ln_payments: 2000,
        watched: 10_000,
        pay_rate: 100,
        b9_watched: vec![1000, 100_000],
        b9_rate: 200,
        b9_txs: 2000,
        b10_events: 3000,
        b10_rates: vec![200, 1000],
        b10_concurrency: None,
        b8_rows: vec![1000, 100_000, 1_000_000],
        b8_requests: 300,
        b5_sockets: 1000,
        b5_slow: 100,
        b5_topics: 10,
        b5_rate: 100,
        b5_churn: 200,
        b5_seconds: 30,
        node_latency: node::Latency {
            gettxout: Duration::from_micros(700),
            send: Duration::from_micros(700),
            other: Duration::from_micros(700),
        },
        b3n_inputs: vec![1, 10],
        b3n_concurrency: vec![1, 16],
    };
    let millis = |v: &str, flag: &str| {
        let ms: f64 = v.parse().unwrap_or_else(|_| panic!("{flag} MS (e.g. 0.7)"));
        Duration::from_secs_f64(ms / 1000.0)
    };
    // Every call of the stub takes `base`, unless its method is given a latency of its own.
    let (mut base, mut gettxout, mut send) = (o.node_latency.other, None, None);
    let list = |v: &str, flag: &str| -> Vec<usize> {
        v.split(',')
            .map(|n| n.parse().unwrap_or_else(|_| panic!("{flag} N,N")))
            .collect()
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--db" if value == "both" => {}
            "--db" => o.dbs = vec![value],
            "--seconds" => o.seconds = value.parse().expect("--seconds N"),
            "--runs" => o.runs = value.parse().expect("--runs N"),
            "--connections" => o.connections = value.parse().expect("--connections N"),
            "--rate" => o.rate = value.parse().expect("--rate N"),
            "--report" => o.report = value,
            "--only" => o.only = value.split(',').map(str::to_owned).collect(),
            "--payments" => o.payments = value.parse().expect("--payments N"),
            "--ln-payments" => o.ln_payments = value.parse().expect("--ln-payments N"),
            "--watched" => o.watched = value.parse().expect("--watched N"),
            "--pay-rate" => o.pay_rate = value.parse().expect("--pay-rate N"),
            "--b9-watched" => {
                o.b9_watched = value
                    .split(',')
                    .map(|n| n.parse().expect("--b9-watched N,N"))
                    .collect()
            }
            "--b9-rate" => o.b9_rate = value.parse().expect("--b9-rate N"),
            "--b9-txs" => o.b9_txs = value.parse().expect("--b9-txs N"),
            "--b10-events" => o.b10_events = value.parse().expect("--b10-events N"),
            "--b10-rate" => {
                o.b10_rates = value
                    .split(',')
                    .map(|n| n.parse().expect("--b10-rate N,N"))
                    .collect()
            }
            "--b10-concurrency" => {
                o.b10_concurrency = Some(value.parse().expect("--b10-concurrency N"))
            }
            "--b8-rows" => {
                o.b8_rows = value
                    .split(',')
                    .map(|n| n.parse().expect("--b8-rows N,N"))
                    .collect()
            }
            "--b8-requests" => o.b8_requests = value.parse().expect("--b8-requests N"),
            "--b5-sockets" => o.b5_sockets = value.parse().expect("--b5-sockets N"),
            "--b5-slow" => o.b5_slow = value.parse().expect("--b5-slow N"),
            "--b5-topics" => o.b5_topics = value.parse().expect("--b5-topics N"),
            "--b5-rate" => o.b5_rate = value.parse().expect("--b5-rate N"),
            "--b5-churn" => o.b5_churn = value.parse().expect("--b5-churn N"),
            "--b5-seconds" => o.b5_seconds = value.parse().expect("--b5-seconds N"),
            "--node-stub-latency-ms" => base = millis(&value, "--node-stub-latency-ms"),
            "--node-stub-gettxout-ms" => gettxout = Some(millis(&value, "--node-stub-gettxout-ms")),
            "--node-stub-send-ms" => send = Some(millis(&value, "--node-stub-send-ms")),
            "--b3n-inputs" => o.b3n_inputs = list(&value, "--b3n-inputs"),
            "--b3n-concurrency" => o.b3n_concurrency = list(&value, "--b3n-concurrency"),
            "--lnbits" => {
                let (url, pid) = value.split_once(',').expect("--lnbits URL,PID");
                o.lnbits = Some((url.to_owned(), pid.parse().expect("--lnbits URL,PID")));
            }
            // cargo bench passes --bench; anything else unknown is ignored the same way.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o.node_latency = node::Latency {
        gettxout: gettxout.unwrap_or(base),
        send: send.unwrap_or(base),
        other: base,
    };
    o
}

/// One request kind, pre-encoded.
#[derive(Clone)]
enum Load {
    Create { body: Arc<[u8]> },
    Read { paths: Arc<Vec<String>> },
}

impl Load {
    fn request(&self, n: usize, host: &str) -> Vec<u8> {
        match self {
            Load::Create { body } => {
                let mut r = format!(
                    "POST /api/jpp/invoices/ HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                    body.len()
                )
                .into_bytes();
                r.extend_from_slice(b"\r\n");
                r.extend_from_slice(body);
                r
            }
            Load::Read { paths } => format!(
                "GET {} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n",
                paths[n % paths.len()]
            )
            .into_bytes(),
        }
    }

    fn expected_status(&self) -> u16 {
        match self {
            Load::Create { .. } => 201,
            Load::Read { .. } => 200,
        }
    }
}

/// A keep-alive connection that sends one request and reads one response at a time.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    addr: String,
}

impl Conn {
    async fn open(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::with_capacity(8192),
            addr: addr.to_owned(),
        }
    }

    /// Sends `request`, returns the response status.
    async fn call(&mut self, request: &[u8]) -> std::io::Result<u16> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).unwrap_or("");
                let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while self.buf.len() < end + 4 + length {
                    self.read_more().await?;
                }
                return Ok(status);
            }
            self.read_more().await?;
        }
    }

    /// The body of the last response.
    fn body(&self) -> &[u8] {
        find(&self.buf, b"\r\n\r\n").map_or(&[], |end| &self.buf[end + 4..])
    }

    async fn read_more(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Default)]
struct Sample {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u64>,
    elapsed: Duration,
}

impl Sample {
    /// Counts one answer: a success (with its latency from `since`) when it has the expected
    /// status. A failed connection is replaced.
    async fn record(&mut self, conn: &mut Conn, request: &[u8], expected: u16, since: Instant) {
        match conn.call(request).await {
            Ok(status) if status == expected => {
                self.ok += 1;
                self.latencies_us.push(since.elapsed().as_micros() as u64);
            }
            Ok(_) => self.errors += 1,
            Err(_) => {
                self.errors += 1;
                *conn = Conn::open(&conn.addr).await;
            }
        }
    }

    /// Adds up the samples of every client task, over the time since `start`.
    async fn gather(tasks: Vec<tokio::task::JoinHandle<Sample>>, start: Instant) -> Sample {
        let mut total = Sample::default();
        for t in tasks {
            total.merge(t.await.expect("client task"));
        }
        total.elapsed = start.elapsed();
        total
    }

    fn merge(&mut self, other: Sample) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
    }

    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// p50, p99 and the slowest, in ms.
    fn spread(&mut self) -> (f64, f64, f64) {
        (
            self.percentile_ms(0.5),
            self.percentile_ms(0.99),
            self.percentile_ms(1.0),
        )
    }

    fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        self.latencies_us.sort_unstable();
        let idx = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[idx] as f64 / 1000.0
    }
}

/// Closed loop: `connections` clients, each sending its next request when the last answered.
async fn closed_loop(
    addr: &str,
    host: &str,
    load: &Load,
    connections: usize,
    duration: Duration,
    key: &str,
) -> Sample {
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (addr, host, load, key) = (
            addr.to_owned(),
            host.to_owned(),
            load.clone(),
            key.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await;
            let mut sample = Sample::default();
            let mut n = c * 7919;
            while Instant::now() < deadline {
                let request = with_key(load.request(n, &host), &key);
                n += 1;
                sample
                    .record(&mut conn, &request, load.expected_status(), Instant::now())
                    .await;
            }
            sample
        }));
    }
    Sample::gather(tasks, start).await
}

/// Open loop at a fixed rate: latency counts from when each request was due, so a stall is
/// charged to every request that waited behind it (no coordinated omission).
async fn open_loop(
    addr: &str,
    host: &str,
    load: &Load,
    connections: usize,
    rate: u64,
    duration: Duration,
    key: &str,
) -> Sample {
    let total_requests = rate * duration.as_secs();
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let (tx, rx) = async_channel(total_requests as usize);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (addr, host, load, key, rx) = (
            addr.to_owned(),
            host.to_owned(),
            load.clone(),
            key.to_owned(),
            rx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await;
            let mut sample = Sample::default();
            while let Some((n, due)) = rx.recv().await {
                // A request picked up late (every connection was busy) is charged from when it
                // was due. One picked up early waits for its time, and is charged from when it is
                // sent: the timer wakes up to a millisecond late, and that is the client's slack,
                // not the server's.
                let start = if due > tokio::time::Instant::now() {
                    tokio::time::sleep_until(due).await;
                    tokio::time::Instant::now()
                } else {
                    due
                };
                let request = with_key(load.request(n, &host), &key);
                sample
                    .record(
                        &mut conn,
                        &request,
                        load.expected_status(),
                        start.into_std(),
                    )
                    .await;
            }
            sample
        }));
    }
    let t0 = tokio::time::Instant::now();
    for n in 0..total_requests as usize {
        tx.send((n, t0 + interval * n as u32)).await;
    }
    tx.close();
    Sample::gather(tasks, start).await
}

/// A multi-consumer queue of due times, from tokio's primitives.
fn async_channel(cap: usize) -> (Sender, Receiver) {
    let (tx, rx) = tokio::sync::mpsc::channel(cap.max(1));
    (
        Sender(Some(tx)),
        Receiver(Arc::new(tokio::sync::Mutex::new(rx))),
    )
}

struct Sender(Option<tokio::sync::mpsc::Sender<(usize, tokio::time::Instant)>>);
impl Sender {
    async fn send(&self, item: (usize, tokio::time::Instant)) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(item).await;
        }
    }
    fn close(mut self) {
        self.0.take();
    }
}

#[derive(Clone)]
struct Receiver(
    Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<(usize, tokio::time::Instant)>>>,
);
impl Receiver {
    async fn recv(&self) -> Option<(usize, tokio::time::Instant)> {
        self.0.lock().await.recv().await
    }
}

fn with_key(mut request: Vec<u8>, key: &str) -> Vec<u8> {
    // Insert the key header right after the request line.
    if let Some(pos) = find(&request, b"\r\n") {
        let header = format!("\r\nX-Api-Key: {key}");
        request.splice(pos..pos, header.into_bytes());
    }
    request
}

struct Server {
    child: Child,
    addr: String,
    database_url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(db: &str) -> (Server, String) {
    start_server_with(db, &[])
}

/// A server on a fresh database, with `extra` serve flags.
fn start_server_with(db: &str, extra: &[&str]) -> (Server, String) {
    let fresh = fresh_database(db);
    let key = fresh.key.clone();
    (serve(fresh, extra), key)
}

/// A new empty database (migrated) and a merchant key for it, before any server runs on it.
struct Fresh {
    dir: tempfile::TempDir,
    /// The URL `cashier serve` takes.
    url: String,
    key: String,
}

fn fresh_database(db: &str) -> Fresh {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match db {
        "sqlite" => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.sqlite").display()
        ),
        _ => postgres_database(),
    };
    let key_out = Command::new(env!("CARGO_BIN_EXE_cashier"))
        .args(["key", "create", "--database-url", &url])
        .output()
        .expect("cashier key create");
    assert!(
        key_out.status.success(),
        "{}",
        String::from_utf8_lossy(&key_out.stderr)
    );
    let key = String::from_utf8(key_out.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    Fresh {
        dir,
        url: url.replace("?mode=rwc", ""),
        key,
    }
}

/// Starts `cashier serve` on `fresh`, with `extra` serve flags; returns once it listens.
fn serve(fresh: Fresh, extra: &[&str]) -> Server {
    let Fresh { dir, url, .. } = fresh;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cashier"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &url,
            "--log",
            "warn,cashier=info",
            // Every benchmark socket comes from 127.0.0.1.
            "--sockets-per-address",
            "100000",
            "--sockets-total",
            "100000",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cashier serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("server exited").expect("log line");
        if let Some(rest) = line.split("Cashier listening on ").nth(1) {
            break rest.split(';').next().expect("address").trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        addr,
        database_url: url,
        _dir: dir,
    }
}

fn postgres_database() -> String {
    use diesel::{Connection, RunQueryDsl};
    let admin = std::env::var("CASHIER_TEST_POSTGRES_URL")
        .expect("CASHIER_TEST_POSTGRES_URL is not set: run ./scripts/bench, or use --db sqlite");
    let name = format!("cashier_bench_{}", hex::encode(rand::random::<[u8; 4]>()));
    let mut conn = diesel::PgConnection::establish(&admin).expect("connect to PostgreSQL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create database");
    let (head, _) = admin.split_at(admin.rfind('/').expect("URL with a database"));
    format!("{head}/{name}")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU time (user + system) the process has used, in milliseconds.
fn cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15, in clock ticks.
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 1000 / clock_ticks()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on nearly every Linux).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Figures {
    rps: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    errors: u64,
}

impl Figures {
    fn new() -> Self {
        Figures {
            rps: vec![],
            p50: vec![],
            p99: vec![],
            errors: 0,
        }
    }
    fn add(&mut self, mut s: Sample) {
        self.rps.push(s.rps());
        self.p50.push(s.percentile_ms(0.50));
        self.p99.push(s.percentile_ms(0.99));
        self.errors += s.errors;
    }
    fn report(&self, id: &str, what: &str, db: &str) -> Value {
        let (rps, p50, p99) = (
            median(self.rps.clone()),
            median(self.p50.clone()),
            median(self.p99.clone()),
        );
        println!(
            "{id} {what:<24} {db:<8} {rps:>9.0} req/s   p50 {p50:>6.2} ms   p99 {p99:>6.2} ms   errors {}   (median of {})",
            self.errors,
            self.rps.len()
        );
        json!({"id": id, "what": what, "db": db, "rps": rps, "p50_ms": p50, "p99_ms": p99,
               "errors": self.errors, "runs": {"rps": self.rps, "p50_ms": self.p50, "p99_ms": self.p99}})
    }
}

fn main() {
    let o = options();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "machine: {cores} cores; build: release; client and server share the cores; {} runs of {} s each, median reported",
        o.runs, o.seconds
    );
    let mut figures = Vec::new();
    let duration = Duration::from_secs(o.seconds);
    let body: Arc<[u8]> = json!({"outputs": [{"address": ADDR, "amount": 10000}], "memo": "bench", "expires_in": 1800})
        .to_string()
        .into_bytes()
        .into();
    for db in &o.dbs {
        // B9 seeds invoices by the hundred thousand: each size gets a server of its own.
        if o.only.iter().any(|b| b == "b9") {
            for &m in &o.b9_watched {
                let (server, key) = start_server(db);
                let r = runtime.block_on(chain::b9(&server, &key, m, o.b9_rate, o.b9_txs));
                let pct = |p: f64| {
                    r.latency_ms
                        .get(((r.latency_ms.len() as f64 - 1.0) * p).round() as usize)
                        .copied()
                        .unwrap_or(f64::NAN)
                };
                println!(
                    "B9 watcher, {m:>8} open invoices, {} tx/s offered  {db:<8} matched {}/{} at {:.0}/s   broadcast->event p50 {:.1} ms p99 {:.1} ms",
                    o.b9_rate, r.matched, r.sent / 2, r.matched_per_s, pct(0.5), pct(0.99)
                );
                figures.push(
                    json!({"id": "B9", "db": db, "watched": r.watched, "offered_per_s": o.b9_rate,
                    "sent": r.sent, "matched": r.matched, "matched_per_s": r.matched_per_s,
                    "p50_ms": pct(0.5), "p99_ms": pct(0.99)}),
                );
            }
        }
        if o.only.iter().any(|b| b == "b10") {
            webhooks::b10(&o, &runtime, db, &mut figures);
        }
        // Its own server, on a BCHN stub instead of the dev chain.
        if o.only.iter().any(|b| b == "b3n") {
            node::b3n(&o, &runtime, db, &mut figures);
        }
        // B8 seeds up to a million rows a table, B5 makes its own slow sockets: a server each.
        if o.only.iter().any(|b| b == "b8") {
            growth::b8(&o, &runtime, db, &mut figures);
        }
        if o.only.iter().any(|b| b == "b5") {
            slow::b5(&o, &runtime, db, &mut figures);
        }
        if !o
            .only
            .iter()
            .any(|b| ON_SHARED_SERVER.contains(&b.as_str()))
        {
            continue;
        }
        let (server, key) = start_server(db);
        let host = server.addr.clone();
        let create = Load::Create { body: body.clone() };
        runtime.block_on(async {
            // Warm up, and make the ids B2 reads.
            closed_loop(
                &server.addr,
                &host,
                &create,
                o.connections,
                Duration::from_secs(1),
                &key,
            )
            .await;

            if o.only.iter().any(|b| b == "b1" || b == "b2") {
                b1_b2(&o, &server, &host, &create, &key, db, duration, &mut figures).await;
            }
            if o.only.iter().any(|b| b == "b4a") {
                b4a(&o, &server, &key, db, &mut figures).await;
            }
            if o.only.iter().any(|b| b == "b4b") {
                let mut r = sockets::steady(&server, &key, o.watched, o.pay_rate, o.seconds).await;
                let c = &mut r.commit_to_socket;
                let (c50, c99) = (c.percentile_ms(0.5), c.percentile_ms(0.99));
                let q = &mut r.request_to_socket;
                let (q50, q99) = (q.percentile_ms(0.5), q.percentile_ms(0.99));
                println!(
                    "B4b {} sockets on as many invoices, {}/s paid for {} s  {db:<8} commit->socket p50 {c50:.2} ms p99 {c99:.2} ms (paid_at has ms precision: up to 1 ms high)   pay request->socket p50 {q50:.2} ms p99 {q99:.2} ms   missed {}",
                    o.watched, o.pay_rate, o.seconds, c.errors
                );
                figures.push(json!({"id": "B4b", "db": db, "watched": o.watched, "payments_per_s": o.pay_rate,
                    "commit_to_socket_p50_ms": c50, "commit_to_socket_p99_ms": c99,
                    "request_to_socket_p50_ms": q50, "request_to_socket_p99_ms": q99, "missed": c.errors}));
            }
            if o.only.iter().any(|b| b == "b7") {
                let target = lightning::Target {
                    host: server.addr.clone(),
                    top_up: Box::new(lightning::cashier_top_up(&server)),
                    prepare: Box::new(|_| {}),
                };
                let r = lightning::internal(&target, o.ln_payments, 16, None).await;
                let ours = b7_line(db, r);
                // The frame delay below saturation: half the throughput target, paced.
                let paced = lightning::internal(&target, o.ln_payments / 2, 16, Some(750)).await;
                figures.push(b7_line(&format!("{db} @750/s"), paced));
                if let (Some((url, _)), Ok(file)) = (&o.lnbits, std::env::var("LNBITS_TOKEN_FILE")) {
                    let token = std::fs::read_to_string(file).expect("LNbits token").trim().to_owned();
                    let target = lightning::lnbits_target(url, token);
                    // LNbits manages about a dozen a second: fewer payments, same shape.
                    let r = lightning::internal(&target, o.ln_payments.min(200), 16, None).await;
                    let theirs = b7_line("LNbits", r);
                    let ratio = ours["payments_per_s"].as_f64().unwrap_or(f64::NAN)
                        / theirs["payments_per_s"].as_f64().unwrap_or(f64::NAN);
                    println!("    -> Cashier makes {ratio:.0}x the internal payments per second of LNbits");
                    figures.push(json!({"id": "B7", "what": "ratio", "db": db, "throughput_ratio": ratio}));
                    figures.push(theirs);
                }
                figures.push(ours);
            }
            if o.only.iter().any(|b| b == "b6") {
                abuse::b6(&o, &server, &create, &key, db, &mut figures).await;
            }
            // Last: its paid invoices would otherwise be among the ones B2 reads.
            if o.only.iter().any(|b| b == "b3") {
                let mut b3 = Figures::new();
                let mut base = Figures::new();
                for _ in 0..o.runs {
                    let requests = Arc::new(prepare_payments(&server.addr, &key, o.payments).await);
                    b3.add(each_once(&server.addr, requests, 16).await);
                    base.add(node_baseline(db, o.payments, 16).await);
                }
                let pay = b3.report("B3", "pay end to end", db);
                let node = base.report("B3", "dev chain accept+send", db);
                let overhead = pay["p50_ms"].as_f64().unwrap_or(f64::NAN) / node["p50_ms"].as_f64().unwrap_or(f64::NAN) - 1.0;
                let throughput = pay["rps"].as_f64().unwrap_or(f64::NAN) / node["rps"].as_f64().unwrap_or(f64::NAN);
                println!(
                    "B3 server overhead over the dev chain's own accept+broadcast ({db}): p50 latency +{:.0}%, throughput {:.0}% of it",
                    overhead * 100.0,
                    throughput * 100.0
                );
                figures.push(pay);
                figures.push(node);
                figures.push(json!({"id": "B3", "what": "overhead", "db": db, "p50_latency_overhead": overhead, "throughput_ratio": throughput}));
            }
        });
        let rss = rss_kib(server.child.id());
        println!("   server RSS after the {db} runs: {} MiB", rss / 1024);
        figures.push(json!({"id": "rss", "db": db, "server_rss_kib": rss}));
    }
    let report = json!({
        "machine": {"cores": cores, "profile": "release", "shared_cpu": true},
        "settings": {"seconds": o.seconds, "runs": o.runs, "connections": o.connections, "rate": o.rate},
        "figures": figures,
    });
    std::fs::write(
        &o.report,
        serde_json::to_string_pretty(&report).expect("JSON"),
    )
    .expect("write report");
    println!("report: {}", o.report);
}

fn b7_line(who: &str, mut r: lightning::Internal) -> Value {
    let rate = r.payments.ok as f64 / r.payments.elapsed.as_secs_f64();
    let (p50, p99, _) = r.payments.spread();
    let (f50, f99, _) = r.frames.spread();
    println!(
        "B7 internal Lightning payments  {who:<8} {rate:>8.0}/s   pay p50 {p50:.2} ms p99 {p99:.2} ms   frame (request -> both sockets) p50 {f50:.2} ms p99 {f99:.2} ms   failed {}   frames missed {}",
        r.payments.errors, r.frames.errors
    );
    json!({"id": "B7", "who": who, "payments_per_s": rate, "pay_p50_ms": p50, "pay_p99_ms": p99,
           "frame_p50_ms": f50, "frame_p99_ms": f99, "failed": r.payments.errors, "frames_missed": r.frames.errors})
}

/// B4a at 1k, 5k and 10k sockets; beside it, when given, LNbits at the same sizes, and the
/// machine's floor (bare loopback sockets).
async fn b4a(o: &Options, server: &Server, key: &str, db: &str, figures: &mut Vec<Value>) {
    for n in [1000, 5000, 10_000] {
        let mut f = sockets::cashier(server, key, n).await;
        let (p50, p99, last) = f.sample.spread();
        println!(
            "B4a one event to {n:>5} sockets  {db:<8} p50 {p50:>7.2} ms   p99 {p99:>7.2} ms   last {last:>7.2} ms   missed {}   server CPU {} ms   RSS {:.1} KiB/socket",
            f.sample.errors, f.server_cpu_ms, f.rss_per_socket
        );
        let mut figure = json!({"id": "B4a", "sockets": n, "db": db, "p50_ms": p50, "p99_ms": p99,
            "last_ms": last, "missed": f.sample.errors, "server_cpu_ms": f.server_cpu_ms,
            "rss_kib_per_socket": f.rss_per_socket});
        if let Some((url, pid)) = &o.lnbits {
            let mut l = sockets::lnbits(url, *pid, n).await;
            let (l50, l99, llast) = l.sample.spread();
            println!(
                "B4a one event to {n:>5} sockets  LNbits   p50 {l50:>7.2} ms   p99 {l99:>7.2} ms   last {llast:>7.2} ms   missed {}   server CPU {} ms   RSS {:.1} KiB/socket   -> Cashier's p99 is {:.1}x faster, {:.1}x less memory per socket",
                l.sample.errors, l.server_cpu_ms, l.rss_per_socket, l99 / p99, l.rss_per_socket / f.rss_per_socket
            );
            figure["lnbits"] = json!({"p50_ms": l50, "p99_ms": l99, "last_ms": llast, "missed": l.sample.errors,
                "server_cpu_ms": l.server_cpu_ms, "rss_kib_per_socket": l.rss_per_socket,
                "p99_ratio": l99 / p99, "rss_ratio": l.rss_per_socket / f.rss_per_socket});
        }
        let mut floor = sockets::floor(n).await;
        let (f50, f99, _) = floor.spread();
        println!("    floor: {n:>5} bare loopback sockets, one 600-byte write each from 2 threads: p50 {f50:.2} ms   p99 {f99:.2} ms");
        figure["floor"] = json!({"p50_ms": f50, "p99_ms": f99});
        figures.push(figure);
    }
}

/// Up to READ_IDS invoice paths, newest first, through the list endpoint.
async fn read_ids(addr: &str, key: &str) -> Vec<String> {
    let mut conn = Conn::open(addr).await;
    let mut paths = Vec::new();
    let mut cursor = String::new();
    while paths.len() < READ_IDS {
        let request =
            format!("GET /api/jpp/invoices/?limit=100{cursor} HTTP/1.1\r\nHost: {addr}\r\n\r\n")
                .into_bytes();
        let status = conn.call(&with_key(request, key)).await.expect("list");
        assert_eq!(status, 200);
        let end = find(&conn.buf, b"\r\n\r\n").expect("head") + 4;
        let page: Value = serde_json::from_slice(&conn.buf[end..]).expect("list JSON");
        for inv in page["results"].as_array().expect("results") {
            paths.push(format!(
                "/api/jpp/invoices/{}/",
                inv["payment_id"].as_str().expect("id")
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    paths
}

/// B1 (create, at full speed and at a fixed rate) and B2 (read the invoices B1 made).
#[allow(clippy::too_many_arguments)]
async fn b1_b2(
    o: &Options,
    server: &Server,
    host: &str,
    create: &Load,
    key: &str,
    db: &str,
    duration: Duration,
    figures: &mut Vec<Value>,
) {
    let mut b1 = Figures::new();
    for _ in 0..o.runs {
        b1.add(closed_loop(&server.addr, host, create, o.connections, duration, key).await);
    }
    figures.push(b1.report("B1", "create, max rate", db));

    let mut b1_rate = Figures::new();
    for _ in 0..o.runs {
        b1_rate.add(
            open_loop(
                &server.addr,
                host,
                create,
                o.connections,
                o.rate,
                duration,
                key,
            )
            .await,
        );
    }
    figures.push(b1_rate.report("B1", &format!("create at {}/s", o.rate), db));

    let paths = Arc::new(read_ids(&server.addr, key).await);
    let read = Load::Read { paths };
    let mut b2 = Figures::new();
    for _ in 0..o.runs {
        b2.add(closed_loop(&server.addr, host, &read, o.connections * 2, duration, key).await);
    }
    figures.push(b2.report("B2", "read JSON, max rate", db));
}

/// A JSON POST, pre-encoded.
fn post(path: &str, host: &str, key: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nX-Api-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body.as_bytes());
    r
}

/// B3's material: `k` invoices, and for each a real signed transaction from a faucet coin.
async fn prepare_payments(addr: &str, key: &str, k: usize) -> Vec<Vec<u8>> {
    use cashier::chain::{wallet, Address, Network, OutPoint, Output, Txid};
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let wallet_key = wallet::random_key();
    let script = cashier::chain::sighash::p2pkh_locking_bytecode(&wallet_key.public_key(&secp));
    let mut hash = [0u8; 20];
    hash.copy_from_slice(&script[3..23]);
    let own = Address::p2pkh(Network::Regtest, hash).to_cashaddr(false);
    let pay_to = Address::parse(ADDR, Network::Regtest)
        .expect("address")
        .locking_bytecode();
    let mut conn = Conn::open(addr).await;
    let mut requests = Vec::with_capacity(k);
    for _ in 0..k {
        let body = json!({"outputs": [{"address": ADDR, "amount": 10_000}], "memo": "bench"});
        assert_eq!(
            conn.call(&post("/api/jpp/invoices/", addr, key, &body))
                .await
                .expect("create"),
            201
        );
        let invoice: Value = serde_json::from_slice(conn.body()).expect("invoice JSON");
        let id = invoice["payment_id"].as_str().expect("id").to_owned();
        let faucet = json!({"address": own, "amount": 20_000});
        assert_eq!(
            conn.call(&post("/dev/faucet", addr, key, &faucet))
                .await
                .expect("faucet"),
            201
        );
        let coin: Value = serde_json::from_slice(conn.body()).expect("faucet JSON");
        let outpoint = OutPoint {
            txid: Txid::from_hex(coin["txid"].as_str().expect("txid")).expect("txid hex"),
            vout: 0,
        };
        let spent = Output {
            value: 20_000,
            token: None,
            locking_bytecode: script.clone(),
        };
        let pay = Output {
            value: 10_000,
            token: None,
            locking_bytecode: pay_to.clone(),
        };
        let tx = wallet::build_payment(&secp, &wallet_key, &[(outpoint, spent)], vec![pay], 1000)
            .expect("tx");
        let body = json!({"raw_tx_hex": hex::encode(tx.serialize())});
        requests.push(post(
            &format!("/api/jpp/invoices/{id}/pay/"),
            addr,
            key,
            &body,
        ));
    }
    requests
}

/// Sends each request once over `connections` connections; 200 counts as success.
async fn each_once(addr: &str, requests: Arc<Vec<Vec<u8>>>, connections: usize) -> Sample {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (addr, requests, next) = (addr.to_owned(), requests.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await;
            let mut sample = Sample::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    break;
                };
                sample.record(&mut conn, request, 200, Instant::now()).await;
            }
            sample
        }));
    }
    Sample::gather(tasks, start).await
}

/// The dev chain's own accept + broadcast of `k` payments, in this process, with no HTTP and
/// no invoice work: what the server's pay path is measured against.
async fn node_baseline(db: &str, k: usize, concurrency: usize) -> Sample {
    use cashier::chain::{wallet, Address, Network, Output};
    use cashier::service::DevChain;
    use cashier::store::{DatabaseTarget, Store, StoreOptions};
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match db {
        "sqlite" => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("node.sqlite").display()
        ),
        _ => postgres_database(),
    };
    let target = DatabaseTarget::parse(&url).expect("target");
    let store = Store::open(
        &target,
        &StoreOptions {
            read_connections: 8,
            postgres_writers: 4,
        },
    )
    .expect("store");
    let chain = DevChain::new(store);
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let key = wallet::random_key();
    let script = cashier::chain::sighash::p2pkh_locking_bytecode(&key.public_key(&secp));
    let mut hash = [0u8; 20];
    hash.copy_from_slice(&script[3..23]);
    let own = Address::p2pkh(Network::Regtest, hash);
    let pay_to = Address::parse(ADDR, Network::Regtest)
        .expect("address")
        .locking_bytecode();
    let mut txs = Vec::with_capacity(k);
    for _ in 0..k {
        let coin = chain.faucet(&own, 20_000, None).await.expect("faucet");
        let pay = Output {
            value: 10_000,
            token: None,
            locking_bytecode: pay_to.clone(),
        };
        let tx = wallet::build_payment(
            &secp,
            &key,
            &[(coin.outpoint, coin.output)],
            vec![pay],
            1000,
        )
        .expect("tx");
        txs.push(tx.serialize());
    }
    let txs = Arc::new(txs);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (chain, txs, next) = (chain.clone(), txs.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut sample = Sample::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(raw) = txs.get(i) else { break };
                let t = Instant::now();
                let accepted = matches!(
                    chain.test_accept(raw).await,
                    Ok(cashier::chain::node::Acceptance::Allowed)
                ) && matches!(
                    chain.broadcast(raw).await,
                    Ok(cashier::chain::node::Broadcast::Accepted)
                );
                if accepted {
                    sample.ok += 1;
                    sample.latencies_us.push(t.elapsed().as_micros() as u64);
                } else {
                    sample.errors += 1;
                }
            }
            sample
        }));
    }
    Sample::gather(tasks, start).await
}
