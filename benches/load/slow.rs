//! B5: slow sockets and churn. `--b5-sockets` sockets watch `--b5-topics` open invoices, and
//! `--b5-slow` of them never read (a small receive buffer, so theirs fills within seconds).
//! Events arrive at `--b5-rate` a second, round-robin over the topics: each is a real
//! transaction paying part of a watched invoice to its address (`POST /dev/broadcast`), so the
//! chain watcher records it and appends `invoice_paid_partial`, as a wallet paying in parts
//! would. Meanwhile `--b5-churn` new sockets a second open on invoices that are already
//! finished (each its own, as checkout pages reloaded after the fact), hear the outcome the
//! server sends first, and close. For `--b5-seconds` the server's RSS and open files are read
//! every second (`/proc`), and every healthy socket times each frame from the payment's
//! `paid_at` (stamped in the transaction that commits it; millisecond precision, so up to
//! 1 ms high) to its arrival. The run is made twice on a fresh server, without and with the
//! slow sockets, and the healthy sockets' figures are compared.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use cashier::chain::{wallet, Output};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as Frame;

use super::*;

/// What one B5 run measured.
pub struct Run {
    pub slow: usize,
    /// (seconds since the start, RSS KiB, open files) once a second.
    pub timeline: Vec<(u64, u64, u64)>,
    /// Healthy sockets' commit -> frame delays after the warm-up, µs.
    pub healthy: Sample,
    /// Frames the healthy sockets should have had (events sent x healthy sockets on the
    /// event's topic) and had.
    pub expected: u64,
    pub received: u64,
    pub events_sent: u64,
    /// Churn sockets that heard their invoice's outcome, and those that did not.
    pub churn_ok: u64,
    pub churn_failed: u64,
    pub warm_up: u64,
    /// Close codes of the healthy sockets the server closed during the run.
    pub healthy_closed: Vec<u16>,
}

impl Run {
    /// RSS at the end of the warm-up, and the largest after it, KiB.
    pub fn rss_after_warm_up(&self) -> (u64, u64) {
        let at = self
            .timeline
            .iter()
            .find(|(s, _, _)| *s >= self.warm_up)
            .map_or(0, |t| t.1);
        let top = self
            .timeline
            .iter()
            .filter(|(s, _, _)| *s >= self.warm_up)
            .map(|t| t.1)
            .max()
            .unwrap_or(0);
        (at, top)
    }
}

fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// A socket that will never be read: its receive buffer is made small before connecting.
async fn slow_socket(addr: &str, path: &str) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket
        .connect(addr.parse().expect("address"))
        .await
        .expect("connect");
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://{addr}{path}"),
        stream,
        Some(socket_config()),
    )
    .await
    .expect("handshake");
    ws
}

async fn healthy_socket(addr: &str, path: &str) -> Ws {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://{addr}{path}"),
        stream,
        Some(socket_config()),
    )
    .await
    .expect("handshake");
    ws
}

/// The frame's `paid_at`, found without parsing the whole message.
fn paid_at(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let rest = text.split("\"paid_at\":\"").nth(1)?;
    let stamp = rest.split('"').next()?;
    chrono::DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.to_utc())
}

fn open_files(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// Invoices created and cancelled, for the churn to open sockets on: `n`, over 8 connections.
async fn finished_invoices(addr: &str, key: &str, n: usize) -> Vec<String> {
    let lanes: Vec<_> = (0..8)
        .map(|lane| {
            let (addr, key) = (addr.to_owned(), key.to_owned());
            tokio::spawn(async move {
                let mut conn = Conn::open(&addr).await;
                let body = json!({"outputs": [{"address": ADDR, "amount": 1000}]});
                let mut ids = Vec::new();
                for _ in (lane..n).step_by(8) {
                    let create = post("/api/jpp/invoices/", &addr, &key, &body);
                    assert_eq!(conn.call(&create).await.expect("create"), 201);
                    let invoice: Value = serde_json::from_slice(conn.body()).expect("JSON");
                    let id = invoice["payment_id"].as_str().expect("id").to_owned();
                    let cancel = format!(
                        "POST /api/jpp/invoices/{id}/cancel/ HTTP/1.1\r\nHost: {addr}\r\nX-Api-Key: {key}\r\nContent-Length: 0\r\n\r\n"
                    );
                    assert_eq!(conn.call(cancel.as_bytes()).await.expect("cancel"), 200);
                    ids.push(id);
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(n);
    for lane in lanes {
        ids.extend(lane.await.expect("lane"));
    }
    ids
}

/// One run of B5 with `slow` sockets that never read.
pub async fn run(server: &Server, key: &str, o: &Options, slow: usize) -> Run {
    let addr = server.addr.clone();
    let pid = server.child.id();
    let topics = o.b5_topics.max(1);
    let events = (o.b5_rate * o.b5_seconds) as usize;
    let mut conn = Conn::open(&addr).await;

    // The watched invoices, each to an address of its own, asking far more than the run pays.
    let mut watched = Vec::with_capacity(topics);
    for _ in 0..topics {
        let address = chain::random_address();
        let body = json!({"outputs": [{"address": address.to_cashaddr(false), "amount": 1_000_000_000u64}],
            "expires_in": 3600});
        assert_eq!(
            conn.call(&post("/api/jpp/invoices/", &addr, key, &body))
                .await
                .expect("create"),
            201
        );
        let invoice: Value = serde_json::from_slice(conn.body()).expect("JSON");
        let id = invoice["payment_id"].as_str().expect("id").to_owned();
        watched.push((id, address));
    }
    // Every payment signed before the clock starts: one coin each, 1000 sats to an invoice.
    let funded = chain::fund(&mut conn, server, key, events, 3000).await;
    let payments: Vec<Vec<u8>> = funded
        .coins
        .into_iter()
        .enumerate()
        .map(|(i, coin)| {
            let out = Output {
                value: 1000,
                token: None,
                locking_bytecode: watched[i % topics].1.locking_bytecode(),
            };
            let tx = wallet::build_payment(&funded.secp, &funded.key, &[coin], vec![out], 1000)
                .expect("tx");
            post(
                "/dev/broadcast",
                &addr,
                key,
                &json!({"raw_tx_hex": hex::encode(tx.serialize())}),
            )
        })
        .collect();
    let churn_ids = finished_invoices(&addr, key, (o.b5_churn * o.b5_seconds) as usize).await;

    // The sockets: socket s watches topic s % topics; on each topic, every (sockets / slow)-th
    // never reads.
    let sockets = o.b5_sockets;
    let every = sockets.checked_div(slow).unwrap_or(usize::MAX).max(1);
    let warm_up = (o.b5_seconds / 4).clamp(1, 5);
    let measuring = Arc::new(AtomicBool::new(false));
    let delays: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
    let received = Arc::new(AtomicU64::new(0));
    let dropped: Arc<Mutex<Vec<u16>>> = Arc::new(Mutex::new(Vec::new()));
    let mut healthy_on = vec![0u64; topics];
    let mut stalled = Vec::with_capacity(slow);
    let mut readers = Vec::with_capacity(sockets);
    for s in 0..sockets {
        let path = format!("/ws/jpp/invoice/{}/", watched[s % topics].0);
        if (s / topics).is_multiple_of(every) && stalled.len() < slow {
            stalled.push(slow_socket(&addr, &path).await);
            continue;
        }
        healthy_on[s % topics] += 1;
        let mut ws = healthy_socket(&addr, &path).await;
        let (measuring, delays, received) = (measuring.clone(), delays.clone(), received.clone());
        let dropped = dropped.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(frame)) = ws.next().await {
                if let Frame::Close(close) = &frame {
                    // Closed by the server before the run ended: counted, with the reason.
                    let code = close.as_ref().map_or(0, |c| u16::from(c.code));
                    dropped.lock().expect("dropped").push(code);
                    break;
                }
                if let Frame::Text(text) = frame {
                    let now = chrono::Utc::now();
                    if !measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    received.fetch_add(1, Ordering::Relaxed);
                    if let Some(paid) = paid_at(&text) {
                        let delay = (now - paid).num_microseconds().unwrap_or(0).max(0);
                        delays.lock().expect("delays").push(delay as u64);
                    }
                }
            }
        }));
    }
    println!(
        "   B5 setup ({} slow): {} sockets open on {topics} invoices, {} events and {} finished invoices ready",
        slow,
        sockets,
        payments.len(),
        churn_ids.len()
    );

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    // RSS and open files, once a second.
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut timeline = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let t0 = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                timeline.push((t0.elapsed().as_secs(), rss_kib(pid), open_files(pid)));
            }
            timeline
        })
    };
    // Churn: each connect on a task of its own, so a slow handshake does not hold the pace.
    let churn_ok = Arc::new(AtomicU64::new(0));
    let churn_failed = Arc::new(AtomicU64::new(0));
    let churn = {
        let (addr, stop) = (addr.clone(), stop.clone());
        let (ok, failed) = (churn_ok.clone(), churn_failed.clone());
        let gap = Duration::from_secs(1) / o.b5_churn.max(1) as u32;
        tokio::spawn(async move {
            let t0 = tokio::time::Instant::now();
            let mut visits = Vec::new();
            for (i, id) in churn_ids.into_iter().enumerate() {
                tokio::time::sleep_until(t0 + gap * i as u32).await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let url = format!("ws://{addr}/ws/jpp/invoice/{id}/");
                let (ok, failed) = (ok.clone(), failed.clone());
                visits.push(tokio::spawn(async move {
                    let heard = match tokio_tungstenite::connect_async(&url).await {
                        Ok((mut ws, _)) => {
                            let mut heard = false;
                            while let Some(Ok(frame)) = ws.next().await {
                                if frame.is_text() {
                                    heard = true;
                                    break;
                                }
                            }
                            let _ = ws.close(None).await;
                            heard
                        }
                        Err(_) => false,
                    };
                    let counter = if heard { &ok } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }));
            }
            for v in visits {
                let _ = v.await;
            }
        })
    };
    // The events, paced on one connection: a new one, since the setup's has been idle for
    // longer than the server keeps one open; replaced if the server closes it.
    let mut conn = Conn::open(&addr).await;
    let gap = Duration::from_secs(1) / o.b5_rate.max(1) as u32;
    let t0 = tokio::time::Instant::now();
    let mut sent = 0u64;
    let mut sent_by_topic = vec![0u64; topics];
    for (i, request) in payments.iter().enumerate() {
        tokio::time::sleep_until(t0 + gap * i as u32).await;
        let measured = start.elapsed().as_secs() >= warm_up;
        if measured && !measuring.load(Ordering::Relaxed) {
            measuring.store(true, Ordering::Relaxed);
        }
        let accepted = match conn.call(request).await {
            Ok(status) => status == 200,
            Err(_) => {
                conn = Conn::open(&addr).await;
                false
            }
        };
        if accepted && measured {
            sent += 1;
            sent_by_topic[i % topics] += 1;
        }
    }
    // What is still on its way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let timeline = sampler.await.expect("sampler");
    churn.await.expect("churn");
    for r in &readers {
        r.abort();
    }
    drop(stalled);
    let expected = sent_by_topic
        .iter()
        .zip(&healthy_on)
        .map(|(e, h)| e * h)
        .sum();
    let latencies_us = std::mem::take(&mut *delays.lock().expect("delays"));
    let healthy_closed = std::mem::take(&mut *dropped.lock().expect("dropped"));
    Run {
        slow,
        timeline,
        healthy: Sample {
            ok: latencies_us.len() as u64,
            errors: 0,
            latencies_us,
            elapsed: start.elapsed(),
        },
        expected,
        received: received.load(Ordering::Relaxed),
        events_sent: sent,
        churn_ok: churn_ok.load(Ordering::Relaxed),
        churn_failed: churn_failed.load(Ordering::Relaxed),
        warm_up,
        healthy_closed,
    }
}

/// B5 on one database: a run with no slow socket, then one with `--b5-slow`, each on a fresh
/// server; the healthy sockets' p99 compared.
pub fn b5(o: &Options, runtime: &tokio::runtime::Runtime, db: &str, figures: &mut Vec<Value>) {
    let mut p99s = Vec::new();
    for slow in [0, o.b5_slow] {
        let (server, key) = start_server(db);
        let mut r = runtime.block_on(run(&server, &key, o, slow));
        let (p50, p99) = (r.healthy.percentile_ms(0.5), r.healthy.percentile_ms(0.99));
        let (rss_at, rss_top) = r.rss_after_warm_up();
        let rss: Vec<String> = r
            .timeline
            .iter()
            .map(|(_, kib, _)| format!("{}", kib / 1024))
            .collect();
        let files: Vec<String> = r.timeline.iter().map(|(_, _, f)| f.to_string()).collect();
        println!(
            "B5 {db:<8} {} sockets ({} never read), {} events/s on {} invoices, {} connects/s, {} s: healthy commit->frame p50 {p50:.2} ms p99 {p99:.2} ms (paid_at: up to 1 ms high), frames {}/{}, healthy sockets closed by the server {:?}; churn {} heard, {} failed; RSS after {} s warm-up {:.1} MiB, highest after {:.1} MiB ({:+.1} MiB)",
            o.b5_sockets,
            r.slow,
            o.b5_rate,
            o.b5_topics,
            o.b5_churn,
            o.b5_seconds,
            r.received,
            r.expected,
            r.healthy_closed,
            r.churn_ok,
            r.churn_failed,
            r.warm_up,
            rss_at as f64 / 1024.0,
            rss_top as f64 / 1024.0,
            (rss_top as f64 - rss_at as f64) / 1024.0,
        );
        println!("    RSS MiB each second: {}", rss.join(" "));
        println!("    open files each second: {}", files.join(" "));
        figures.push(json!({"id": "B5", "db": db, "sockets": o.b5_sockets, "slow": r.slow,
            "events_per_s": o.b5_rate, "topics": o.b5_topics, "connects_per_s": o.b5_churn,
            "seconds": o.b5_seconds, "healthy_p50_ms": p50, "healthy_p99_ms": p99,
            "frames_expected": r.expected, "frames_received": r.received, "events_sent": r.events_sent,
            "churn_heard": r.churn_ok, "churn_failed": r.churn_failed, "healthy_closed": r.healthy_closed,
            "rss_kib_after_warm_up": rss_at, "rss_kib_highest_after": rss_top,
            "timeline": r.timeline}));
        p99s.push(p99);
    }
    if let [without, with] = p99s[..] {
        println!(
            "B5 {db:<8} healthy p99 with {} slow sockets is {:.2}x the p99 with none",
            o.b5_slow,
            with / without
        );
        figures.push(
            json!({"id": "B5", "db": db, "what": "ratio", "healthy_p99_ratio": with / without}),
        );
    }
}
