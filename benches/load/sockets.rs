//! Socket benchmarks: B4a (one event to N sockets on one topic), the same against a real LNbits
//! and against bare loopback sockets (this machine's floor), and B4b (commit → socket while
//! 10k invoices are watched and 100 payments a second arrive).

use std::future::Future;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::*;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `n` sockets on `url`, one after another.
async fn open(url: &str, n: usize) -> Vec<Socket> {
    // tungstenite's default 128 KiB read buffer per socket would make the client, not the
    // server, the thing measured: a checkout page's message fits in 4 KiB.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .expect("socket");
        sockets.push(socket);
    }
    sockets
}

/// The first text frame's text and the moment it arrived, or None if the socket ended first.
async fn first_text(socket: &mut Socket) -> Option<(String, Instant)> {
    while let Some(Ok(frame)) = socket.next().await {
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            return Some((text.to_string(), Instant::now()));
        }
    }
    None
}

/// Runs `push`, then waits for the first text frame on every socket: the delays from the start
/// of `push` to each receipt.
async fn receipts(sockets: Vec<Socket>, push: impl Future<Output = ()>) -> Sample {
    let sent = Instant::now();
    let waiting: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let receipt = first_text(&mut socket).await.map(|(_, at)| at);
                // Kept open until every receipt is in: closing now would load the server
                // while others still wait.
                (receipt, socket)
            })
        })
        .collect();
    push.await;
    let mut sample = Sample::default();
    let mut kept = Vec::with_capacity(waiting.len());
    for w in waiting {
        let (receipt, socket) = w.await.expect("socket task");
        kept.push(socket);
        match receipt {
            Some(at) => {
                sample.ok += 1;
                sample.latencies_us.push((at - sent).as_micros() as u64);
            }
            None => sample.errors += 1,
        }
    }
    sample.elapsed = sent.elapsed();
    sample
}

/// The invoice id in a pay request's path.
fn invoice_of(pay: &[u8]) -> String {
    String::from_utf8_lossy(pay)
        .split("/api/jpp/invoices/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("invoice id")
        .to_owned()
}

/// What one B4a run measured.
pub struct FanOut {
    pub sample: Sample,
    /// Server RSS growth per open socket, KiB.
    pub rss_per_socket: f64,
    /// Server CPU used from the push to the last receipt, ms.
    pub server_cpu_ms: u64,
}

/// B4a on Cashier: `n` sockets on one invoice, which is then paid. Delays count from the pay
/// request, so they include the payment itself.
pub async fn cashier(server: &Server, key: &str, n: usize) -> FanOut {
    let pay = prepare_payments(&server.addr, key, 1).await.remove(0);
    let url = format!("ws://{}/ws/jpp/invoice/{}/", server.addr, invoice_of(&pay));
    let pid = server.child.id();
    let mut conn = Conn::open(&server.addr).await;
    measure(pid, &url, n, async move {
        assert_eq!(conn.call(&pay).await.expect("pay"), 200);
    })
    .await
}

/// B4a on LNbits: `n` sockets on one id of its `/api/v1/ws/<id>` endpoint, and one push through
/// its `POST /api/v1/ws/<id>?data=` endpoint carrying a message the size of ours.
pub async fn lnbits(base: &str, pid: u32, n: usize) -> FanOut {
    let host = base.trim_start_matches("http://").to_owned();
    let id = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let url = format!("ws://{host}/api/v1/ws/{id}");
    let data = "x".repeat(600);
    let push = format!(
        "POST /api/v1/ws/{id}?data={data} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"
    );
    let mut conn = Conn::open(&host).await;
    measure(pid, &url, n, async move {
        assert_eq!(conn.call(push.as_bytes()).await.expect("push"), 200);
    })
    .await
}

async fn measure(pid: u32, url: &str, n: usize, push: impl Future<Output = ()>) -> FanOut {
    let before = rss_kib(pid);
    let sockets = open(url, n).await;
    let rss_per_socket = rss_kib(pid).saturating_sub(before) as f64 / n as f64;
    let cpu = cpu_ms(pid);
    let sample = receipts(sockets, push).await;
    FanOut {
        sample,
        rss_per_socket,
        server_cpu_ms: cpu_ms(pid) - cpu,
    }
}

/// This machine's floor for B4a: the same number of bare loopback TCP connections, and two
/// threads (one per core, like the server's workers) writing one 600-byte buffer to each.
/// No HTTP, no WebSocket framing, no runtime: what the kernel alone costs. The writing side is
/// a second process (this one, with `--floor-writer N`), as the server is: one process may not
/// hold both ends of 10k connections under the usual open-file limit.
pub async fn floor(n: usize) -> Sample {
    use std::io::{BufRead, Write};
    let mut writer = Command::new(std::env::current_exe().expect("this program"))
        .args(["--floor-writer", &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("floor writer");
    let mut out = BufReader::new(writer.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("writer's address");
    let addr = line.trim().to_owned();
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let client = TcpStream::connect(&addr).await.expect("connect");
        client.set_nodelay(true).expect("nodelay");
        clients.push(client);
    }
    line.clear();
    out.read_line(&mut line).expect("writer ready");
    let sent = Instant::now();
    let waiting: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut buf = [0u8; 600];
                client
                    .read_exact(&mut buf)
                    .await
                    .ok()
                    .map(|_| sent.elapsed())
            })
        })
        .collect();
    let mut go = writer.stdin.take().expect("stdin");
    go.write_all(b"go\n").expect("go");
    let mut sample = Sample::default();
    for w in waiting {
        match w.await.expect("reader") {
            Some(d) => {
                sample.ok += 1;
                sample.latencies_us.push(d.as_micros() as u64);
            }
            None => sample.errors += 1,
        }
    }
    sample.elapsed = sent.elapsed();
    drop(go);
    let _ = writer.wait();
    sample
}

/// The writing side of [`floor`]: accepts `n` connections, says so, and on "go" writes one
/// buffer to each from two threads; exits when its input closes.
pub fn floor_writer(n: usize) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("{}", listener.local_addr().expect("address"));
    let mut accepted: Vec<_> = (0..n)
        .map(|_| {
            let s = listener.accept().expect("accept").0;
            s.set_nodelay(true).expect("nodelay");
            s
        })
        .collect();
    println!("ready");
    let go = Arc::new(std::sync::Barrier::new(3));
    let writers: Vec<_> = [accepted.split_off(n / 2), accepted]
        .into_iter()
        .map(|mut half| {
            let go = go.clone();
            std::thread::spawn(move || {
                let frame = [b'x'; 600];
                go.wait();
                for s in &mut half {
                    s.write_all(&frame).expect("write");
                }
                half
            })
        })
        .collect();
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line).expect("go");
    go.wait();
    let open: Vec<_> = writers
        .into_iter()
        .map(|w| w.join().expect("writer"))
        .collect();
    // Hold the connections until the reader is done.
    let _ = stdin.read_line(&mut line);
    drop(open);
}

/// What B4b measured.
pub struct Steady {
    /// From `paid_at` (stamped just before the payment's transaction) to the frame, µs: an
    /// upper bound of commit → socket. `paid_at` has millisecond precision, so each figure may
    /// be up to 1 ms high.
    pub commit_to_socket: Sample,
    /// From sending the pay request to the frame.
    pub request_to_socket: Sample,
}

/// B4b: `watched` sockets on as many invoices; `rate` of those invoices paid per second for
/// `seconds`, each payment sent on schedule (open loop).
pub async fn steady(server: &Server, key: &str, watched: usize, rate: u64, seconds: u64) -> Steady {
    let payments = (rate * seconds) as usize;
    let pays = prepare_payments(&server.addr, key, payments).await;
    let mut conn = Conn::open(&server.addr).await;
    let body = json!({"outputs": [{"address": ADDR, "amount": 1000}]});
    let mut idle_ids = Vec::new();
    for _ in payments..watched {
        let create = post("/api/jpp/invoices/", &server.addr, key, &body);
        assert_eq!(conn.call(&create).await.expect("create"), 201);
        let invoice: Value = serde_json::from_slice(conn.body()).expect("invoice JSON");
        idle_ids.push(invoice["payment_id"].as_str().expect("id").to_owned());
    }
    let ws = |id: &str| format!("ws://{}/ws/jpp/invoice/{id}/", server.addr);
    let mut idle = Vec::with_capacity(idle_ids.len());
    for id in &idle_ids {
        idle.extend(open(&ws(id), 1).await);
    }
    let mut watching = Vec::with_capacity(payments);
    for pay in &pays {
        let mut socket = open(&ws(&invoice_of(pay)), 1).await.remove(0);
        watching.push(tokio::spawn(async move {
            let (text, at) = first_text(&mut socket).await?;
            let received = chrono::Utc::now();
            let frame: Value = serde_json::from_str(&text).ok()?;
            let paid = chrono::DateTime::parse_from_rfc3339(frame["paid_at"].as_str()?).ok()?;
            let delay = (received - paid.to_utc()).num_microseconds()?;
            Some((delay.max(0) as u64, at, socket))
        }));
    }
    // Open loop over a few connections: payment i leaves at start + i / rate.
    const LANES: usize = 8;
    let pays = Arc::new(pays);
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let every = Duration::from_secs(1) / rate as u32;
    let lanes: Vec<_> = (0..LANES)
        .map(|lane| {
            let (pays, addr) = (pays.clone(), server.addr.clone());
            tokio::spawn(async move {
                let mut conn = Conn::open(&addr).await;
                let mut sent = Vec::new();
                for i in (lane..pays.len()).step_by(LANES) {
                    tokio::time::sleep_until(start + every * i as u32).await;
                    sent.push((i, Instant::now()));
                    assert_eq!(conn.call(&pays[i]).await.expect("pay"), 200);
                }
                sent
            })
        })
        .collect();
    let mut sent_at = vec![None; pays.len()];
    for lane in lanes {
        for (i, at) in lane.await.expect("lane") {
            sent_at[i] = Some(at);
        }
    }
    let mut result = Steady {
        commit_to_socket: Sample::default(),
        request_to_socket: Sample::default(),
    };
    let mut kept = idle;
    for (i, w) in watching.into_iter().enumerate() {
        match (w.await.expect("socket task"), sent_at[i]) {
            (Some((delay, at, socket)), Some(sent)) => {
                kept.push(socket);
                result.commit_to_socket.ok += 1;
                result.commit_to_socket.latencies_us.push(delay);
                result.request_to_socket.ok += 1;
                result
                    .request_to_socket
                    .latencies_us
                    .push(at.saturating_duration_since(sent).as_micros() as u64);
            }
            _ => {
                result.commit_to_socket.errors += 1;
                result.request_to_socket.errors += 1;
            }
        }
    }
    result
}
