//! B7: Lightning internal payments between two wallets, each announced on both wallets'
//! sockets. Throughput of the payments, and the delay from each pay request to its frame on
//! the payer's and on the payee's socket.

use std::collections::HashMap;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::*;

/// What one B7 run measured.
pub struct Internal {
    /// Pay requests, answered 201 (latency: request to answer).
    pub payments: Sample,
    /// Request to frame, on both sockets (two per payment).
    pub frames: Sample,
}

/// Credits a wallet (by id) with this many sats.
pub type TopUp<'a> = Box<dyn Fn(&str, u64) + 'a>;

/// Readies a new wallet (by admin key) before the run.
pub type Prepare<'a> = Box<dyn Fn(&str) + 'a>;

/// An LNbits-compatible server under test: where it is and how to credit a wallet.
pub struct Target<'a> {
    pub host: String,
    pub top_up: TopUp<'a>,
    pub prepare: Prepare<'a>,
}

/// JSON request with an optional key, as LNbits clients send it.
fn request(method: &str, path: &str, host: &str, key: Option<&str>, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    let key = key
        .map(|k| format!("X-Api-Key: {k}\r\n"))
        .unwrap_or_default();
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{key}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body.as_bytes());
    r
}

async fn call(conn: &mut Conn, request: &[u8], expected: u16) -> Value {
    let status = conn.call(request).await.expect("request");
    let body: Value = serde_json::from_slice(conn.body()).unwrap_or(Value::Null);
    assert_eq!(status, expected, "{body}");
    body
}

struct Wallet {
    id: String,
    inkey: String,
    adminkey: String,
}

async fn account(conn: &mut Conn, host: &str, name: &str) -> Wallet {
    let w = call(
        conn,
        &request(
            "POST",
            "/api/v1/account",
            host,
            None,
            &json!({"name": name}),
        ),
        200,
    )
    .await;
    let text = |k: &str| w[k].as_str().expect("wallet field").to_owned();
    Wallet {
        id: text("id"),
        inkey: text("inkey"),
        adminkey: text("adminkey"),
    }
}

/// Opens a socket, then reads its frames, sending (payment hash, arrival) for each payment.
async fn watch(url: String, arrivals: mpsc::UnboundedSender<(String, Instant)>) {
    let (mut socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("socket");
    tokio::spawn(async move {
        while let Some(Ok(frame)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
                let at = Instant::now();
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(hash) = v["payment"]["payment_hash"].as_str() {
                    if arrivals.send((hash.to_owned(), at)).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// B7: `n` internal payments from one wallet to another over `connections` connections: as
/// fast as they are answered (closed loop), or with `rate`, one every 1/rate s (open loop,
/// below saturation, so the delays are the server's and not a queue's).
pub async fn internal(
    target: &Target<'_>,
    n: usize,
    connections: usize,
    rate: Option<u64>,
) -> Internal {
    let host = target.host.clone();
    let mut conn = Conn::open(&host).await;
    let payer = account(&mut conn, &host, "payer").await;
    let payee = account(&mut conn, &host, "payee").await;
    (target.prepare)(&payer.adminkey);
    (target.prepare)(&payee.adminkey);
    (target.top_up)(&payer.id, n as u64 * 10 + 1000);
    let mut bolt11s = Vec::with_capacity(n);
    for i in 0..n {
        let invoice = call(
            &mut conn,
            &request(
                "POST",
                "/api/v1/payments",
                &host,
                Some(&payee.inkey),
                &json!({"out": false, "amount": 10, "memo": format!("b7 {i}")}),
            ),
            201,
        )
        .await;
        bolt11s.push((
            invoice["payment_hash"].as_str().expect("hash").to_owned(),
            invoice["bolt11"].as_str().expect("bolt11").to_owned(),
        ));
    }
    let (sender, mut arrivals) = mpsc::unbounded_channel();
    for key in [&payer.inkey, &payee.inkey] {
        watch(format!("ws://{host}/api/v1/ws/{key}"), sender.clone()).await;
    }
    drop(sender);

    let requests: Arc<Vec<(String, Vec<u8>)>> = Arc::new(
        bolt11s
            .into_iter()
            .map(|(hash, bolt11)| {
                let body = json!({"out": true, "bolt11": bolt11});
                let r = request(
                    "POST",
                    "/api/v1/payments",
                    &host,
                    Some(&payer.adminkey),
                    &body,
                );
                (hash, r)
            })
            .collect(),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let paced = tokio::time::Instant::now();
    let every = rate.map(|r| Duration::from_secs(1) / r.max(1) as u32);
    let lanes: Vec<_> = (0..connections)
        .map(|_| {
            let (requests, next, host) = (requests.clone(), next.clone(), host.clone());
            tokio::spawn(async move {
                let mut conn = Conn::open(&host).await;
                let mut sample = Sample::default();
                let mut sent = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((hash, r)) = requests.get(i) else {
                        break;
                    };
                    if let Some(every) = every {
                        tokio::time::sleep_until(paced + every * i as u32).await;
                    }
                    let t = Instant::now();
                    sent.push((hash.clone(), t));
                    match conn.call(r).await {
                        Ok(201) => {
                            sample.ok += 1;
                            sample.latencies_us.push(t.elapsed().as_micros() as u64);
                        }
                        _ => sample.errors += 1,
                    }
                }
                (sample, sent)
            })
        })
        .collect();
    let mut payments = Sample::default();
    let mut sent_at = HashMap::new();
    for lane in lanes {
        let (s, sent) = lane.await.expect("lane");
        payments.ok += s.ok;
        payments.errors += s.errors;
        payments.latencies_us.extend(s.latencies_us);
        sent_at.extend(sent);
    }
    payments.elapsed = start.elapsed();
    let mut frames = Sample::default();
    let wanted = 2 * payments.ok as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while frames.latencies_us.len() < wanted {
        match tokio::time::timeout_at(deadline, arrivals.recv()).await {
            Ok(Some((hash, at))) => {
                if let Some(sent) = sent_at.get(&hash) {
                    frames.ok += 1;
                    frames
                        .latencies_us
                        .push(at.saturating_duration_since(*sent).as_micros() as u64);
                }
            }
            _ => break,
        }
    }
    frames.errors = (wanted - frames.latencies_us.len()) as u64;
    Internal { payments, frames }
}

/// Credits a Cashier wallet through the command line, as an operator would.
pub fn cashier_top_up(server: &Server) -> impl Fn(&str, u64) + '_ {
    move |wallet_id, sats| {
        let out = Command::new(env!("CARGO_BIN_EXE_cashier"))
            .args(["wallet", "topup", wallet_id, &sats.to_string()])
            .args(["--database-url", &server.database_url])
            .output()
            .expect("cashier wallet topup");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One request on a fresh blocking connection (the top-ups happen outside the timed part).
fn blocking_call(host: &str, request: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    stream.write_all(request).expect("send");
    // `Connection: close` is in the request: the answer ends with the connection.
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

fn closing(method: &str, path: &str, host: &str, header: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{header}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A real LNbits: top-ups through its super user (`PUT /users/api/v1/balance`, the bearer
/// token its first install gave), and wallets set to no fiat currency, as LNbits' own
/// reference run does (otherwise each payment waits on an exchange-rate lookup that cannot
/// succeed offline).
pub fn lnbits_target(base: &str, token: String) -> Target<'static> {
    let host = base.trim_start_matches("http://").to_owned();
    let (h1, h2) = (host.clone(), host.clone());
    Target {
        host,
        top_up: Box::new(move |wallet_id, sats| {
            let (status, body) = blocking_call(
                &h1,
                &closing(
                    "PUT",
                    "/users/api/v1/balance",
                    &h1,
                    &format!("Authorization: Bearer {token}"),
                    &json!({"id": wallet_id, "amount": sats}),
                ),
            );
            assert_eq!(status, 200, "LNbits top-up: {body}");
        }),
        prepare: Box::new(move |adminkey| {
            let (status, body) = blocking_call(
                &h2,
                &closing(
                    "PATCH",
                    "/api/v1/wallet",
                    &h2,
                    &format!("X-Api-Key: {adminkey}"),
                    &json!({"currency": ""}),
                ),
            );
            assert_eq!(status, 200, "LNbits wallet settings: {body}");
        }),
    }
}
