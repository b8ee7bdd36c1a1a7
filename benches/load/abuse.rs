//! B6 (abuse): how much of its normal throughput the server keeps while it is attacked, and
//! what each refusal costs it.
//!
//! The normal traffic (invoice creates and reads, alternately, over a few keep-alive
//! connections) is measured during each attack, and alone just before and just after it; its
//! share is against the mean of those two. Each attack runs on a thread and runtime of its own,
//! so its client work does not stall the traffic's client (they still share the machine's cores
//! with the server, as an attacker on the same host would). Attacks:
//! (a) slowloris headers, (b) slowloris bodies, (c) 1 MB bodies to pay and create, (d) garbage
//! hex to pay, (e) transactions of made-up inputs to pay, (f) sockets to unknown invoice ids.
//! Each is bounded in count and in time, and all stay on loopback.
//!
//! For (c), (d) and (e), the cost of one refusal is also measured with nothing else running:
//! the server process's CPU time (user + system, from /proc) over a short slice of refusals,
//! divided by their count; the median of a few slices is reported, with the client's median
//! latency.
//!
//! B6 makes one pass per database whatever `--runs` says, to stay under a minute with the
//! default `--seconds 5`; the per-refusal cost is itself a median over slices.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use futures_util::StreamExt;

use super::*;

/// Keep-alive connections carrying the normal traffic.
const TRAFFIC_CONNECTIONS: usize = 8;
/// Connections each request flood uses, each sending its next request once answered.
const FLOOD_CONNECTIONS: usize = 4;
/// Most requests one flood sends in one window.
const FLOOD_CAP: u64 = 20_000;
/// Connections each slowloris attack holds.
const SLOW_CONNECTIONS: usize = 500;
/// Sockets to unknown ids, and how many are being opened at once.
const UNKNOWN_SOCKETS: u64 = 10_000;
const SOCKETS_IN_FLIGHT: usize = 200;
/// Sockets opened with nothing else running, to price one refusal.
const SOCKETS_ALONE: u64 = 2_000;
/// The refusal-cost slices: how many, and how long each.
const COST_SLICES: usize = 5;
const COST_SLICE: Duration = Duration::from_millis(400);
/// Made-up inputs in the fake-input transactions: about 100 kB, the largest payment.
const FAKE_INPUTS: usize = 2_400;
/// Distinct fake-input transactions sent in turn: the pay flow serialises requests for one
/// txid, and an attacker would not send the same one over and over.
const FAKE_TXS: usize = 8;
/// The body size of attack (c).
const MEGABYTE: usize = 1024 * 1024;
/// No single attack request waits longer than this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The normal traffic's requests.
struct Traffic {
    addr: String,
    key: String,
    create: Load,
    read: Load,
}

impl Traffic {
    /// Closed loop until `until` or `stop`: each connection alternates a create and a read.
    async fn run(&self, until: Instant, stop: Arc<AtomicBool>) -> Sample {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..TRAFFIC_CONNECTIONS {
            let (addr, key, stop) = (self.addr.clone(), self.key.clone(), stop.clone());
            let (create, read) = (self.create.clone(), self.read.clone());
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::open(&addr).await;
                let mut sample = Sample::default();
                let mut n = c * 7919;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    let load = if n % 2 == 0 { &create } else { &read };
                    let request = with_key(load.request(n / 2, &addr), &key);
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
}

/// What an attack did, from the attacker's side.
#[derive(Default)]
struct Outcome {
    /// Requests (or sockets) refused as expected, with their latencies.
    refused: Sample,
    /// Slowloris: connections held at once, and how many the server closed on us.
    held: u64,
    cut: u64,
}

/// A request flood: pre-encoded requests sent in turn, each answered with `expected`.
#[derive(Clone)]
struct Flood {
    requests: Arc<Vec<Vec<u8>>>,
    expected: u16,
    /// A new connection per request: for bodies the server refuses before reading them, after
    /// which the connection cannot carry another request.
    fresh_connections: bool,
}

impl Flood {
    /// Sends requests until `until`, `stop` or `cap` requests.
    async fn run(&self, addr: &str, until: Instant, stop: Arc<AtomicBool>, cap: u64) -> Sample {
        let start = Instant::now();
        let sent = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for c in 0..FLOOD_CONNECTIONS {
            let (flood, addr, stop, sent) =
                (self.clone(), addr.to_owned(), stop.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                let mut sample = Sample::default();
                let mut conn = None;
                let mut i = c;
                while Instant::now() < until
                    && !stop.load(Ordering::Relaxed)
                    && sent.fetch_add(1, Ordering::Relaxed) < cap
                {
                    let request = &flood.requests[i % flood.requests.len()];
                    i += FLOOD_CONNECTIONS;
                    let t = Instant::now();
                    let status = if flood.fresh_connections {
                        tokio::time::timeout(REQUEST_TIMEOUT, refused_before_read(&addr, request))
                            .await
                    } else {
                        tokio::time::timeout(REQUEST_TIMEOUT, async {
                            let open = match &mut conn {
                                Some(open) => open,
                                None => conn.insert(try_open(&addr).await?),
                            };
                            open.call(request).await
                        })
                        .await
                    };
                    match status {
                        Ok(Ok(s)) if s == flood.expected => {
                            sample.ok += 1;
                            sample.latencies_us.push(t.elapsed().as_micros() as u64);
                        }
                        Ok(Ok(_)) => sample.errors += 1,
                        _ => {
                            sample.errors += 1;
                            conn = None;
                        }
                    }
                }
                sample
            }));
        }
        Sample::gather(tasks, start).await
    }
}

/// A keep-alive connection, or why there is none (the harness's own `Conn::open` panics, and
/// under attack a refused connection is a figure, not a failure of the benchmark).
async fn try_open(addr: &str) -> std::io::Result<Conn> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(Conn {
        stream,
        buf: Vec::with_capacity(8192),
        addr: addr.to_owned(),
    })
}

/// Sends `request` on a new connection while reading the answer, and returns its status as
/// soon as the head is in: the server may answer (and close) before the body is all sent.
async fn refused_before_read(addr: &str, request: &[u8]) -> std::io::Result<u16> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = stream.into_split();
    let write = async {
        // A failed write means the server has answered and closed: the read tells.
        let _ = writer.write_all(request).await;
        std::future::pending::<()>().await
    };
    let read = async {
        let mut head = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            if find(&head, b"\r\n\r\n").is_some() || head.len() >= 12 {
                let status = std::str::from_utf8(&head)
                    .ok()
                    .and_then(|h| h.get(9..12))
                    .and_then(|s| s.parse().ok());
                if let Some(status) = status {
                    return Ok(status);
                }
            }
            let n = reader.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            head.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::select! {
        status = read => status,
        () = write => unreachable!("the write future never ends"),
    }
}

/// Slowloris: `SLOW_CONNECTIONS` connections each sending `prefix`, then one byte a second,
/// until `until` or `stop`; a connection the server closes is opened again, as an attacker
/// would. Signals `ready` once every connection is open.
async fn slowloris(
    addr: String,
    prefix: Arc<Vec<u8>>,
    until: Instant,
    stop: Arc<AtomicBool>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> Outcome {
    let open = Arc::new(AtomicUsize::new(0));
    let cut = Arc::new(AtomicU64::new(0));
    let opened = Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = Vec::with_capacity(SLOW_CONNECTIONS);
    for c in 0..SLOW_CONNECTIONS {
        let (addr, prefix, stop) = (addr.clone(), prefix.clone(), stop.clone());
        let (open, cut, opened) = (open.clone(), cut.clone(), opened.clone());
        tasks.push(tokio::spawn(async move {
            // Spread over the second, so the bytes trickle in rather than arrive together.
            let offset = Duration::from_millis((c * 1000 / SLOW_CONNECTIONS) as u64);
            let mut first = true;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                let Ok(mut stream) = TcpStream::connect(&addr).await else {
                    cut.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if stream.write_all(&prefix).await.is_err() {
                    cut.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                open.fetch_add(1, Ordering::Relaxed);
                if std::mem::take(&mut first) {
                    opened.add_permits(1);
                }
                let mut tick = tokio::time::interval_at(
                    tokio::time::Instant::now() + offset,
                    Duration::from_secs(1),
                );
                let mut answer = [0u8; 1024];
                let closed = loop {
                    if Instant::now() >= until || stop.load(Ordering::Relaxed) {
                        break false;
                    }
                    let remaining = until.saturating_duration_since(Instant::now());
                    tokio::select! {
                        // Any answer (a 408, say) or a close means the server gave up on us.
                        _ = stream.read(&mut answer) => break true,
                        _ = tick.tick() => {
                            if stream.write_all(b"a").await.is_err() {
                                break true;
                            }
                        }
                        () = tokio::time::sleep(remaining) => break false,
                    }
                };
                open.fetch_sub(1, Ordering::Relaxed);
                if closed {
                    cut.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Every connection has been opened once (or the window ended first).
    let all = opened.acquire_many(SLOW_CONNECTIONS as u32);
    let _ = tokio::time::timeout(until.saturating_duration_since(Instant::now()), all).await;
    let held = open.load(Ordering::Relaxed) as u64;
    let _ = ready.send(());
    for t in tasks {
        let _ = t.await;
    }
    Outcome {
        held,
        cut: cut.load(Ordering::Relaxed),
        ..Outcome::default()
    }
}

/// Sockets to random (unknown) invoice ids, `SOCKETS_IN_FLIGHT` at a time, until `cap` or
/// `until` or `stop`. A refusal is the server's close with 1008 after the handshake, or an
/// HTTP refusal of the handshake; its latency runs from connect to that answer.
async fn unknown_sockets(addr: String, until: Instant, stop: Arc<AtomicBool>, cap: u64) -> Sample {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    use tokio_tungstenite::tungstenite::{Error, Message};

    let start = Instant::now();
    let started = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..SOCKETS_IN_FLIGHT {
        let (addr, stop, started) = (addr.clone(), stop.clone(), started.clone());
        tasks.push(tokio::spawn(async move {
            let config = WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(0);
            let mut sample = Sample::default();
            while Instant::now() < until
                && !stop.load(Ordering::Relaxed)
                && started.fetch_add(1, Ordering::Relaxed) < cap
            {
                let url = format!(
                    "ws://{addr}/ws/jpp/invoice/{}/",
                    cashier::jpp::InvoiceId::random()
                );
                let t = Instant::now();
                let attempt = async {
                    match tokio_tungstenite::connect_async_with_config(&url, Some(config), true)
                        .await
                    {
                        Ok((mut socket, _)) => loop {
                            match socket.next().await {
                                Some(Ok(Message::Close(Some(frame)))) => {
                                    break frame.code == CloseCode::Policy
                                }
                                Some(Ok(_)) => continue,
                                _ => break false,
                            }
                        },
                        Err(Error::Http(response)) => response.status().is_client_error(),
                        Err(_) => false,
                    }
                };
                match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
                    Ok(true) => {
                        sample.ok += 1;
                        sample.latencies_us.push(t.elapsed().as_micros() as u64);
                    }
                    _ => sample.errors += 1,
                }
            }
            sample
        }));
    }
    Sample::gather(tasks, start).await
}

/// One attack, to be started on its own thread.
#[derive(Clone)]
enum Attack {
    Slowloris(Arc<Vec<u8>>),
    Flood(Flood),
    UnknownSockets,
}

impl Attack {
    /// Runs until `until` or `stop` (or its count bound); `ready` once it is in full swing.
    async fn run(
        self,
        addr: String,
        until: Instant,
        stop: Arc<AtomicBool>,
        ready: tokio::sync::oneshot::Sender<()>,
    ) -> Outcome {
        match self {
            Attack::Slowloris(prefix) => slowloris(addr, prefix, until, stop, ready).await,
            Attack::Flood(flood) => {
                let _ = ready.send(());
                Outcome {
                    refused: flood.run(&addr, until, stop, FLOOD_CAP).await,
                    ..Outcome::default()
                }
            }
            Attack::UnknownSockets => {
                let _ = ready.send(());
                Outcome {
                    refused: unknown_sockets(addr, until, stop, UNKNOWN_SOCKETS).await,
                    ..Outcome::default()
                }
            }
        }
    }
}

/// The normal traffic during `attack`: the attack starts on its own thread; once it is in full
/// swing the traffic runs for `seconds`, or until the attack ends (its count bound reached),
/// so every request measured met the attack.
async fn during(
    traffic: &Traffic,
    attack: Attack,
    seconds: u64,
    slack: Duration,
) -> (Sample, Outcome) {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    // The attack's own bound: the window, plus time to get going.
    let attack_until = Instant::now() + slack + Duration::from_secs(seconds);
    let (addr, attack_stop) = (traffic.addr.clone(), stop.clone());
    let attacker = std::thread::spawn(move || {
        let outcome = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("attacker runtime")
            .block_on(attack.run(addr, attack_until, attack_stop.clone(), ready_tx));
        // The traffic stops when the attack does.
        attack_stop.store(true, Ordering::Relaxed);
        outcome
    });
    let _ = ready_rx.await;
    let until = Instant::now() + Duration::from_secs(seconds);
    let sample = traffic.run(until.min(attack_until), stop.clone()).await;
    stop.store(true, Ordering::Relaxed);
    let outcome = tokio::task::spawn_blocking(move || attacker.join().expect("attacker thread"))
        .await
        .expect("join attacker");
    (sample, outcome)
}

/// The cost of one refusal: `COST_SLICES` slices of the flood alone, each's server CPU over its
/// refusals; the median slice, and every refusal's latency.
async fn refusal_cost(pid: u32, addr: &str, flood: &Flood) -> (f64, Sample) {
    let mut per_refusal = Vec::with_capacity(COST_SLICES);
    let mut all = Sample::default();
    let never = Arc::new(AtomicBool::new(false));
    for _ in 0..COST_SLICES {
        let before = cpu_ms(pid);
        let slice = flood
            .run(addr, Instant::now() + COST_SLICE, never.clone(), FLOOD_CAP)
            .await;
        let used = cpu_ms(pid).saturating_sub(before);
        if slice.ok > 0 {
            per_refusal.push(used as f64 / slice.ok as f64);
        }
        all.merge(slice);
    }
    let cost = if per_refusal.is_empty() {
        f64::NAN
    } else {
        median(per_refusal)
    };
    (cost, all)
}

/// A pay request (no key: anyone may pay) carrying `body`.
fn pay_request(addr: &str, invoice: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /api/jpp/invoices/{invoice}/pay/ HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A transaction paying `outputs` from `FAKE_INPUTS` coins that never existed, unsigned.
fn fake_inputs_tx(outputs: &[cashier::chain::Output]) -> Vec<u8> {
    use cashier::chain::{Input, OutPoint, Tx, Txid};
    let inputs = (0..FAKE_INPUTS)
        .map(|_| Input {
            prevout: OutPoint {
                txid: Txid(rand::random()),
                vout: rand::random::<u32>() % 4,
            },
            script_sig: Vec::new(),
            sequence: u32::MAX,
        })
        .collect();
    Tx {
        version: 2,
        inputs,
        outputs: outputs.to_vec(),
        lock_time: 0,
    }
    .serialize()
}

/// A one-output invoice for 10,000 sats to ADDR; its id.
async fn open_invoice(addr: &str, key: &str) -> String {
    let mut conn = Conn::open(addr).await;
    let body = json!({"outputs": [{"address": ADDR, "amount": 10_000}], "memo": "B6"});
    assert_eq!(
        conn.call(&post("/api/jpp/invoices/", addr, key, &body))
            .await
            .expect("create"),
        201
    );
    let invoice: Value = serde_json::from_slice(conn.body()).expect("invoice JSON");
    invoice["payment_id"].as_str().expect("id").to_owned()
}

/// The floods of (c), (d) and (e): name, what, flood.
async fn floods(addr: &str, key: &str) -> Vec<(&'static str, String, Flood)> {
    let invoice = open_invoice(addr, key).await;
    let megabyte = format!("{{\"raw_tx_hex\": \"{}\"}}", "ab".repeat(MEGABYTE / 2)).into_bytes();
    let oversize_create = {
        let mut r = format!(
            "POST /api/jpp/invoices/ HTTP/1.1\r\nHost: {addr}\r\nX-Api-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            megabyte.len()
        )
        .into_bytes();
        r.extend_from_slice(&megabyte);
        r
    };
    // The worst garbage: hex all the way to the last pair, at the largest length accepted.
    let garbage_hex = "ab".repeat(cashier::chain::MAX_TX_SIZE - 1) + "zz";
    let garbage = json!({ "raw_tx_hex": garbage_hex }).to_string();
    let pay_to = cashier::chain::Output {
        value: 10_000,
        token: None,
        locking_bytecode: cashier::chain::Address::parse(ADDR, cashier::chain::Network::Regtest)
            .expect("address")
            .locking_bytecode(),
    };
    let fakes: Vec<Vec<u8>> = (0..FAKE_TXS)
        .map(|_| {
            let body =
                json!({ "raw_tx_hex": hex::encode(fake_inputs_tx(std::slice::from_ref(&pay_to))) });
            pay_request(addr, &invoice, body.to_string().as_bytes())
        })
        .collect();
    let flood = |requests: Vec<Vec<u8>>, expected, fresh_connections| Flood {
        requests: Arc::new(requests),
        expected,
        fresh_connections,
    };
    vec![
        (
            "c",
            "1 MB bodies to pay/".to_owned(),
            flood(vec![pay_request(addr, &invoice, &megabyte)], 413, true),
        ),
        (
            "c",
            "1 MB bodies to create".to_owned(),
            flood(vec![oversize_create], 413, true),
        ),
        (
            "d",
            "garbage hex to pay/".to_owned(),
            flood(
                vec![pay_request(addr, &invoice, garbage.as_bytes())],
                400,
                false,
            ),
        ),
        (
            "e",
            format!("{FAKE_INPUTS} fake inputs to pay/"),
            flood(fakes, 422, false),
        ),
    ]
}

/// The traffic alone for `window`.
async fn alone(traffic: &Traffic, window: Duration) -> Sample {
    let never = Arc::new(AtomicBool::new(false));
    traffic.run(Instant::now() + window, never).await
}

/// The line and JSON of the traffic during one attack, against `reference` req/s alone.
fn traffic_line(what: &str, db: &str, sample: &mut Sample, reference: f64) -> Value {
    let rps = sample.rps();
    let (p50, p99) = (sample.percentile_ms(0.5), sample.percentile_ms(0.99));
    let share = rps / reference;
    println!(
        "B6 traffic {what:<34} {db:<8} {rps:>7.0} req/s = {:>4.0}% of alone ({reference:.0})   p50 {p50:>6.2} ms   p99 {p99:>7.2} ms   errors {}",
        share * 100.0,
        sample.errors
    );
    json!({"id": "B6", "what": format!("traffic {what}"), "db": db, "rps": rps, "share_of_alone": share,
           "alone_rps": reference, "p50_ms": p50, "p99_ms": p99, "errors": sample.errors,
           "seconds": sample.elapsed.as_secs_f64()})
}

/// The attacker's side of one window, printed under its traffic line.
fn attacker_line(attack: &Attack, outcome: &mut Outcome) -> Value {
    let r = &mut outcome.refused;
    match attack {
        Attack::Slowloris(_) => {
            println!(
                "    attacker: {} connections held (1 byte/s each), {} closed by the server during the window",
                outcome.held, outcome.cut
            );
            json!({"connections": SLOW_CONNECTIONS, "held": outcome.held, "closed_by_server": outcome.cut})
        }
        Attack::Flood(flood) => {
            println!(
                "    attacker: {} refused with {} ({:.0}/s), {} other answers or failures",
                r.ok,
                flood.expected,
                r.rps(),
                r.errors
            );
            json!({"refused": r.ok, "status": flood.expected, "refused_per_s": r.rps(), "other": r.errors})
        }
        Attack::UnknownSockets => {
            let p50 = r.percentile_ms(0.5);
            println!(
                "    attacker: {} sockets refused in {:.1} s ({:.0}/s), connect -> refusal p50 {p50:.2} ms, {} other",
                r.ok,
                r.elapsed.as_secs_f64(),
                r.rps(),
                r.errors
            );
            json!({"refused": r.ok, "seconds": r.elapsed.as_secs_f64(), "refused_per_s": r.rps(),
                   "client_p50_ms": p50, "other": r.errors})
        }
    }
}

/// B6 on one server. Each attack window is bracketed by windows of the traffic alone (half as
/// long), and its share is against their mean: on a shared machine the background load drifts,
/// and one baseline at the start would charge that drift to the attacks.
pub async fn b6(
    o: &Options,
    server: &Server,
    create: &Load,
    key: &str,
    db: &str,
    figures: &mut Vec<Value>,
) {
    let addr = server.addr.clone();
    let pid = server.child.id();
    let traffic = Traffic {
        addr: addr.clone(),
        key: key.to_owned(),
        create: create.clone(),
        read: Load::Read {
            paths: Arc::new(read_ids(&addr, key).await),
        },
    };
    let window = Duration::from_millis(o.seconds * 500).max(Duration::from_secs(1));

    let slow_head = format!("GET /jpp/invoices/ HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ").into_bytes();
    let slow_body = format!(
        "POST /jpp/invoices/ HTTP/1.1\r\nHost: {addr}\r\nX-Api-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{"
    )
    .into_bytes();
    let floods = floods(&addr, key).await;
    // (c) goes to both endpoints during one window, alternately.
    let oversize = Flood {
        requests: Arc::new(
            floods
                .iter()
                .filter(|(name, _, _)| *name == "c")
                .flat_map(|(_, _, f)| f.requests.iter().cloned())
                .collect(),
        ),
        expected: 413,
        fresh_connections: true,
    };
    let flood_of = |name: &str| {
        floods
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, what, f)| (what.clone(), f.clone()))
            .expect("flood")
    };
    let (garbage_what, garbage) = flood_of("d");
    let (fake_what, fake) = flood_of("e");
    // Opening 500 slow connections takes well under a second; the slack bounds it.
    let slack = Duration::from_secs(5);
    let attacks = [
        (
            "a",
            "slowloris headers".to_owned(),
            Attack::Slowloris(Arc::new(slow_head)),
            slack,
        ),
        (
            "b",
            "slowloris bodies (POST create)".to_owned(),
            Attack::Slowloris(Arc::new(slow_body)),
            slack,
        ),
        (
            "c",
            "1 MB bodies to pay/ and create".to_owned(),
            Attack::Flood(oversize),
            Duration::ZERO,
        ),
        ("d", garbage_what, Attack::Flood(garbage), Duration::ZERO),
        ("e", fake_what, Attack::Flood(fake), Duration::ZERO),
        (
            "f",
            format!("{UNKNOWN_SOCKETS} sockets to unknown ids"),
            Attack::UnknownSockets,
            Duration::ZERO,
        ),
    ];

    let mut before = alone(&traffic, window).await;
    let mut alone_rps = vec![before.rps()];
    let mut alone_errors = before.errors;
    let mut alone_latencies = std::mem::take(&mut before.latencies_us);
    for (name, what, attack, slack) in attacks {
        let (mut sample, mut outcome) = during(&traffic, attack.clone(), o.seconds, slack).await;
        let mut after = alone(&traffic, window).await;
        let reference = (before.rps() + after.rps()) / 2.0;
        let mut figure = traffic_line(&format!("({name}) {what}"), db, &mut sample, reference);
        figure["attack"] = attacker_line(&attack, &mut outcome);
        figure["attack"]["name"] = json!(name);
        figures.push(figure);
        alone_rps.push(after.rps());
        alone_errors += after.errors;
        alone_latencies.append(&mut after.latencies_us);
        before = after;
    }
    let mut all_alone = Sample {
        latencies_us: alone_latencies,
        ..Sample::default()
    };
    let (p50, p99) = (all_alone.percentile_ms(0.5), all_alone.percentile_ms(0.99));
    let rps = median(alone_rps.clone());
    println!(
        "B6 traffic alone ({TRAFFIC_CONNECTIONS} connections, create+read) {db:<8} {rps:>7.0} req/s (median of {} windows of {:.1} s: min {:.0}, max {:.0})   p50 {p50:>6.2} ms   p99 {p99:>7.2} ms   errors {alone_errors}",
        alone_rps.len(),
        window.as_secs_f64(),
        alone_rps.iter().copied().fold(f64::INFINITY, f64::min),
        alone_rps.iter().copied().fold(0.0, f64::max),
    );
    figures.push(
        json!({"id": "B6", "what": "traffic alone", "db": db, "rps": rps, "windows_rps": alone_rps,
        "p50_ms": p50, "p99_ms": p99, "errors": alone_errors, "connections": TRAFFIC_CONNECTIONS}),
    );

    // The cost of one refusal, with nothing else running.
    for (name, what, flood) in &floods {
        let (cpu, mut sample) = refusal_cost(pid, &addr, flood).await;
        let p50 = sample.percentile_ms(0.5);
        println!(
            "B6 refusal ({name}) {what:<32} {db:<8} server CPU {cpu:>6.3} ms/refusal (median of {COST_SLICES} slices)   client p50 {p50:>6.2} ms   {} refused with {}, {} other",
            sample.ok, flood.expected, sample.errors
        );
        figures.push(
            json!({"id": "B6", "what": format!("refusal {what}"), "db": db,
            "server_cpu_ms_per_refusal": cpu, "client_p50_ms": p50, "refused": sample.ok,
            "status": flood.expected, "other": sample.errors}),
        );
    }
    let cpu_before = cpu_ms(pid);
    let mut sockets = unknown_sockets(
        addr.clone(),
        Instant::now() + Duration::from_secs(2),
        Arc::new(AtomicBool::new(false)),
        SOCKETS_ALONE,
    )
    .await;
    let cpu = cpu_ms(pid).saturating_sub(cpu_before) as f64 / sockets.ok.max(1) as f64;
    let p50 = sockets.percentile_ms(0.5);
    println!(
        "B6 refusal (f) socket to an unknown id           {db:<8} server CPU {cpu:>6.3} ms/refusal ({SOCKETS_IN_FLIGHT} at a time)   client p50 {p50:>6.2} ms   {} refused, {} other",
        sockets.ok, sockets.errors
    );
    figures.push(
        json!({"id": "B6", "what": "refusal socket to an unknown id", "db": db,
        "server_cpu_ms_per_refusal": cpu, "client_p50_ms": p50, "refused": sockets.ok,
        "other": sockets.errors}),
    );
}
