//! The shutdown contract, on the real `cashier serve` process: a SIGTERM during load ends with
//! every accepted request answered, every socket closed with 1001 and the process gone within
//! the bound, and nothing a client was told was created (201) is lost.
//!
//! Load clients speak HTTP/1.1 over raw TCP, so that each answer is judged byte by byte: a
//! complete 201, nothing at all (the connection was refused, or ended before a byte of an
//! answer), or a truncated answer, which must never happen.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use cashier::store::{invoices, Store};

use crate::helpers::{empty_database, Backend, ADDR};

/// Invoice sockets held open through the shutdown.
const SOCKETS: usize = 20;
/// Invoices those sockets watch.
const WATCHED: usize = 4;
/// Clients creating invoices in a loop.
const CLIENTS: usize = 8;
/// Invoices the clients have created (201) before the signal: the load is under way.
const CREATED_BEFORE_SIGNAL: usize = 100;
/// The contract's bound from SIGTERM to the process gone: DRAIN_WITHIN (10 s) + duties (5 s)
/// + flush (5 s) is about 20 s. A bound, not a speed measurement.
const EXIT_WITHIN: Duration = Duration::from_secs(30);
/// Longest wait for anything else the test waits on (start-up, the load, the sockets).
const PATIENCE: Duration = Duration::from_secs(60);
/// What the server tells its sockets as it goes (src/http/ws.rs).
const SHUTDOWN_REASON: &str = "the server is shutting down";

mod sigterm_during_load {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        super::sigterm_during_load(super::Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        super::sigterm_during_load(super::Backend::Postgres).await
    }
}

async fn sigterm_during_load(backend: Backend) {
    let (database_url, _dir) = empty_database(backend);
    let mut server = Server::start(&database_url).await;
    let key = server.key_create(&database_url);
    let addr = server.addr.clone();

    // 1. A few invoices, each watched by sockets that keep reading.
    let client = crate::helpers::http_client();
    let mut acknowledged: Vec<Created> = Vec::new();
    for n in 0..WATCHED {
        let memo = format!("watched {n}");
        let r = client
            .post(format!("http://{addr}/api/jpp/invoices/"))
            .header("X-Api-Key", &key)
            .json(&invoice_body(&memo))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let invoice: Value = r.json().await.unwrap();
        let id = invoice["payment_id"].as_str().unwrap().to_owned();
        acknowledged.push(Created { id, memo });
    }
    let mut sockets = Vec::new();
    for n in 0..SOCKETS {
        let id = &acknowledged[n % WATCHED].id;
        let url = format!("ws://{addr}/ws/jpp/invoice/{id}/");
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        sockets.push(tokio::spawn(until_closed(socket)));
    }

    // 2. Load: clients creating invoices in a loop, on keep-alive connections, until the server
    // refuses to connect.
    let (created, mut created_rx) = tokio::sync::watch::channel(0usize);
    let created = Arc::new(created);
    let loads: Vec<JoinHandle<Load>> = (0..CLIENTS)
        .map(|n| tokio::spawn(load_client(n, addr.clone(), key.clone(), created.clone())))
        .collect();
    tokio::time::timeout(
        PATIENCE,
        created_rx.wait_for(|n| *n >= CREATED_BEFORE_SIGNAL),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the load never reached {CREATED_BEFORE_SIGNAL} invoices\n{}",
            server.log()
        )
    })
    .unwrap();

    // 3. One request certainly in flight at the signal: its head is in the server's hands (it
    // said 100 Continue, which it does once a worker has parsed the head and called the
    // service), half its body too, and the rest comes only after the shutdown began.
    let held_memo = "in flight at the signal";
    let held_body = invoice_body(held_memo).to_string();
    let (first_half, second_half) = held_body.split_at(held_body.len() / 2);
    let mut held = Http::new(TcpStream::connect(&addr).await.unwrap());
    held.tcp
        .write_all(create_head(&addr, &key, held_body.len(), true).as_bytes())
        .await
        .unwrap();
    match held.read_response().await {
        Reply::Complete(r) if r.status == 100 => {}
        other => panic!("expected 100 Continue, got {other:?}"),
    }
    held.tcp.write_all(first_half.as_bytes()).await.unwrap();
    // And one that stalls: half its body, then nothing ever again. It must not hold the
    // process past the bound, and it must not create anything.
    let stalled_memo = "stalled mid-body at the signal";
    let stalled_body = invoice_body(stalled_memo).to_string();
    let mut stalled = Http::new(TcpStream::connect(&addr).await.unwrap());
    stalled
        .tcp
        .write_all(create_head(&addr, &key, stalled_body.len(), true).as_bytes())
        .await
        .unwrap();
    match stalled.read_response().await {
        Reply::Complete(r) if r.status == 100 => {}
        other => panic!("expected 100 Continue, got {other:?}"),
    }
    stalled
        .tcp
        .write_all(&stalled_body.as_bytes()[..stalled_body.len() / 2])
        .await
        .unwrap();

    for (n, socket) in sockets.iter().enumerate() {
        assert!(
            !socket.is_finished(),
            "socket {n} ended before the signal: {:?}",
            socket
        );
    }
    let loads_before_signal = *created_rx.borrow();
    let signalled = server.sigterm();

    // The shutdown has begun: every socket is told (1001) ...
    let mut closes = Vec::new();
    for socket in sockets {
        let end = tokio::time::timeout(PATIENCE, socket)
            .await
            .unwrap_or_else(|_| panic!("a socket was never closed\n{}", server.log()))
            .unwrap();
        closes.push(end);
    }
    let sockets_closed_after = signalled.elapsed();
    // ... and the listener is gone: every load client ends on a refused connection.
    let mut load = Vec::new();
    for client in loads {
        let report = tokio::time::timeout(PATIENCE, client)
            .await
            .unwrap_or_else(|_| panic!("a load client never finished\n{}", server.log()))
            .unwrap();
        load.push(report);
    }
    let listener_gone_after = signalled.elapsed();

    // Only now does the rest of the held request's body arrive: it is answered in full.
    held.tcp.write_all(second_half.as_bytes()).await.unwrap();
    let held_reply = tokio::time::timeout(PATIENCE, held.read_response())
        .await
        .unwrap_or_else(|_| panic!("the held request was never answered\n{}", server.log()));
    drop(held);

    // 4. The process ends, cleanly, within the bound.
    let exit = server.wait_for_exit(signalled, EXIT_WITHIN).await;
    let exited_after = signalled.elapsed();
    let log = server.log();
    eprintln!(
        "[{backend:?}] {loads_before_signal} invoices created before SIGTERM; sockets closed \
         after {sockets_closed_after:?}, listener gone after {listener_gone_after:?}, process \
         exited after {exited_after:?}\n{log}"
    );
    let exit = exit.unwrap_or_else(|| {
        panic!("the process was still running {EXIT_WITHIN:?} after SIGTERM\n{log}")
    });
    assert!(exit.success(), "exit status after SIGTERM: {exit}\n{log}");

    // Every socket got a close frame (no reset) saying 1001 and why.
    for (n, end) in closes.iter().enumerate() {
        match end {
            Ok((code, reason)) => {
                assert_eq!(*code, CloseCode::Away, "socket {n}: {reason}\n{log}");
                assert_eq!(reason, SHUTDOWN_REASON, "socket {n}\n{log}");
            }
            Err(e) => panic!("socket {n}: {e}\n{log}"),
        }
    }

    // The stalled request was cut (a 408, or the connection closed), never answered 201.
    let stalled_reply = tokio::time::timeout(PATIENCE, stalled.read_response())
        .await
        .unwrap_or_else(|_| panic!("the stalled connection was never closed\n{log}"));
    match &stalled_reply {
        Reply::Nothing(_) => {}
        Reply::Complete(r) if r.status == 408 => {}
        other => panic!("the stalled request got {other:?}\n{log}"),
    }

    // The held request got a complete 201 for its invoice.
    match held_reply {
        Reply::Complete(r) if r.status == 201 => {
            let invoice: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(invoice["memo"], held_memo, "{invoice}");
            let id = invoice["payment_id"].as_str().unwrap().to_owned();
            acknowledged.push(Created {
                id,
                memo: held_memo.to_owned(),
            });
        }
        other => panic!("the request in flight at the signal got {other:?}\n{log}"),
    }

    // Load requests failed only at connect time or were never answered: no truncated 201, no
    // other status; and no client was refused before the signal.
    let mut unanswered = Vec::new();
    for (n, report) in load.iter().enumerate() {
        assert!(
            report.failures.is_empty(),
            "client {n}: {:?}\n{log}",
            report.failures
        );
        match &report.refused {
            Some((at, _)) => assert!(
                *at >= signalled,
                "client {n} was refused {:?} before the signal\n{log}",
                signalled - *at
            ),
            None => panic!("client {n} never saw the listener go\n{log}"),
        }
        unanswered.extend(report.unanswered.iter().map(String::as_str));
        acknowledged.extend(report.created.iter().cloned());
    }
    let from_load = acknowledged.len() - WATCHED - 1;
    assert!(from_load >= CREATED_BEFORE_SIGNAL, "{from_load}");
    eprintln!(
        "[{backend:?}] load: {from_load} created (201), {} never answered ({:?}), {CLIENTS} \
         clients refused at connect ({:?})",
        unanswered.len(),
        unanswered.iter().collect::<std::collections::BTreeSet<_>>(),
        load.iter()
            .filter_map(|r| r.refused.as_ref().map(|(_, e)| e.as_str()))
            .collect::<std::collections::BTreeSet<_>>()
    );

    // Nothing acknowledged is lost: every invoice a client was told exists is in the database,
    // as it was asked for.
    let store = crate::helpers::open_store(&database_url).await;
    let missing = stored_invoices_missing(&store, acknowledged.clone()).await;
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged invoices are not in the database: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
    // And the stalled half-request made nothing.
    let memos = stored_memos(&store).await;
    assert!(memos.len() >= acknowledged.len(), "{}", memos.len());
    assert!(
        !memos.iter().any(|m| m == stalled_memo),
        "the stalled request created an invoice"
    );
}

/// An invoice the server answered 201 for.
#[derive(Debug, Clone)]
struct Created {
    id: String,
    memo: String,
}

fn invoice_body(memo: &str) -> Value {
    json!({"outputs": [{"address": ADDR, "amount": 1000}], "memo": memo})
}

/// The head of `POST /api/jpp/invoices/` with a body of `length` bytes to follow.
fn create_head(host: &str, key: &str, length: usize, expect_continue: bool) -> String {
    let expect = if expect_continue {
        "Expect: 100-continue\r\n"
    } else {
        ""
    };
    format!(
        "POST /api/jpp/invoices/ HTTP/1.1\r\nHost: {host}\r\nX-Api-Key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n{expect}\r\n"
    )
}

/// Reads a socket until it ends: the close frame's code and reason, or how it ended without
/// one. Reading also answers the server's pings.
async fn until_closed(
    mut socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Result<(CloseCode, String), String> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Close(Some(frame)))) => {
                return Ok((frame.code, frame.reason.to_string()))
            }
            Some(Ok(Message::Close(None))) => return Err("a close frame without a code".into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("the socket failed before a close frame: {e}")),
            None => return Err("the connection ended without a close frame".into()),
        }
    }
}

/// What one load client saw.
#[derive(Debug, Default)]
struct Load {
    /// Every invoice answered with a complete 201.
    created: Vec<Created>,
    /// Requests that got not one byte of an answer: why (the connection ended or failed first).
    unanswered: Vec<String>,
    /// When, and how, a connection was refused (the end of this client).
    refused: Option<(Instant, String)>,
    /// Answers that break the contract: truncated, or another status than 201.
    failures: Vec<String>,
}

/// Creates invoices one after another on a keep-alive connection (a new one when the server
/// closes it), until a connection is refused.
async fn load_client(
    n: usize,
    addr: String,
    key: String,
    created: Arc<tokio::sync::watch::Sender<usize>>,
) -> Load {
    let mut load = Load::default();
    let mut open: Option<Http> = None;
    let give_up = Instant::now() + PATIENCE * 2;
    for i in 0.. {
        if Instant::now() > give_up {
            load.failures
                .push("the server still accepted connections long after the signal".into());
            break;
        }
        let mut http = match open.take() {
            Some(http) => http,
            None => match TcpStream::connect(&addr).await {
                Ok(tcp) => Http::new(tcp),
                Err(e) => {
                    load.refused = Some((Instant::now(), e.kind().to_string()));
                    break;
                }
            },
        };
        let memo = format!("load {n}.{i}");
        let body = invoice_body(&memo).to_string();
        let request = create_head(&addr, &key, body.len(), false) + &body;
        if let Err(e) = http.tcp.write_all(request.as_bytes()).await {
            load.unanswered.push(format!("sending: {e}"));
            continue;
        }
        match http.read_response().await {
            Reply::Nothing(why) => load.unanswered.push(why),
            Reply::Truncated(bytes) => load.failures.push(format!(
                "{memo}: a truncated answer: {:?}",
                String::from_utf8_lossy(&bytes)
            )),
            Reply::Complete(r) if r.status == 201 => {
                let invoice: Value = match serde_json::from_slice(&r.body) {
                    Ok(v) => v,
                    Err(e) => {
                        load.failures.push(format!("{memo}: 201 without JSON: {e}"));
                        continue;
                    }
                };
                match invoice["payment_id"].as_str() {
                    Some(id) if invoice["memo"] == memo.as_str() => load.created.push(Created {
                        id: id.to_owned(),
                        memo,
                    }),
                    _ => load
                        .failures
                        .push(format!("{memo}: 201 for another invoice: {invoice}")),
                }
                created.send_modify(|c| *c += 1);
                if !r.closes() {
                    open = Some(http);
                }
            }
            Reply::Complete(r) => load.failures.push(format!(
                "{memo}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )),
        }
    }
    load
}

/// One HTTP/1.1 connection, read by hand.
struct Http {
    tcp: TcpStream,
    /// Bytes read and not yet part of an answer.
    buf: Vec<u8>,
}

#[derive(Debug)]
enum Reply {
    /// Not one byte of an answer: the connection ended or failed first.
    Nothing(String),
    /// Part of an answer, then the connection ended.
    Truncated(Vec<u8>),
    Complete(Response),
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the server closes the connection after this answer.
    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

impl Http {
    fn new(tcp: TcpStream) -> Http {
        Http {
            tcp,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes; false when the connection ended or failed (with why).
    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 8192];
        match self.tcp.read(&mut chunk).await {
            Ok(0) => Err("the connection ended".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// The next answer (an interim 100 Continue is one), framed by its Content-Length.
    async fn read_response(&mut self) -> Reply {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if let Err(why) = self.fill().await {
                return self.cut_short(why);
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse::<u16>().ok());
        let Some(status) = status else {
            return Reply::Truncated(std::mem::take(&mut self.buf));
        };
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        let length = if status < 200 {
            0
        } else {
            assert!(
                response.header("transfer-encoding").is_none(),
                "this client reads Content-Length answers only: {head}"
            );
            match response.header("content-length").map(str::parse::<usize>) {
                Some(Ok(n)) => n,
                _ => panic!("an answer without a Content-Length: {head}"),
            }
        };
        while self.buf.len() < head_end + length {
            if let Err(why) = self.fill().await {
                return self.cut_short(why);
            }
        }
        let rest = self.buf.split_off(head_end + length);
        response.body = std::mem::replace(&mut self.buf, rest).split_off(head_end);
        Reply::Complete(response)
    }

    fn cut_short(&mut self, why: String) -> Reply {
        if self.buf.is_empty() {
            Reply::Nothing(why)
        } else {
            Reply::Truncated(std::mem::take(&mut self.buf))
        }
    }
}

/// `cashier serve` as a child process, its log kept; killed if the test ends before it does.
pub(crate) struct Server {
    pub(crate) child: Child,
    /// host:port it listens on.
    pub(crate) addr: String,
    log: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn cashier() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cashier"));
    // The test chooses every setting itself.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CASHIER_")) {
        cmd.env_remove(key);
    }
    cmd
}

impl Server {
    async fn start(database_url: &str) -> Server {
        Server::start_with(database_url, &[]).await
    }

    /// `cashier serve` on `database_url` with `extra` flags.
    pub(crate) async fn start_with(database_url: &str, extra: &[&str]) -> Server {
        let mut child = cashier()
            .args(["serve", "--listen", "127.0.0.1:0", "--workers", "2"])
            .args(["--database-url", database_url])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (listening, addr) = tokio::sync::oneshot::channel();
        let stdout = child.stdout.take().unwrap();
        let stdout_log = log.clone();
        let out = std::thread::spawn(move || {
            let mut listening = Some(listening);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("Cashier listening on ").nth(1) {
                    let addr = rest.split(';').next().unwrap_or_default().trim().to_owned();
                    if let Some(tx) = listening.take() {
                        let _ = tx.send(addr);
                    }
                }
                stdout_log.lock().unwrap().push(line);
            }
        });
        let stderr = child.stderr.take().unwrap();
        let stderr_log = log.clone();
        let err = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                stderr_log.lock().unwrap().push(format!("stderr: {line}"));
            }
        });
        let mut server = Server {
            child,
            addr: String::new(),
            log,
            readers: vec![out, err],
        };
        match tokio::time::timeout(PATIENCE, addr).await {
            Ok(Ok(addr)) => server.addr = addr,
            _ => panic!("the server did not start\n{}", server.log()),
        }
        server
    }

    /// `cashier key create` on the server's database: a key with every scope.
    pub(crate) fn key_create(&self, database_url: &str) -> String {
        let out = cashier()
            .args(["key", "create", "--database-url", database_url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Sends SIGTERM; returns an instant before it can have arrived (`kill` is a process of its
    /// own: the server may act on the signal before `kill` has exited).
    fn sigterm(&self) -> Instant {
        let before = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        before
    }

    /// The exit status, if the process ended within `bound` of `since`.
    async fn wait_for_exit(&mut self, since: Instant, bound: Duration) -> Option<ExitStatus> {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The log is complete once the process's pipes are drained.
                for reader in self.readers.drain(..) {
                    reader.join().unwrap();
                }
                return Some(status);
            }
            if since.elapsed() > bound {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn log(&self) -> String {
        let lines = self.log.lock().map(|l| l.join("\n")).unwrap_or_default();
        format!("--- server log ---\n{lines}\n--- end of log ---")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The memo of every invoice of the default store.
async fn stored_memos(store: &Store) -> Vec<String> {
    let filter = cashier::store::ListFilter {
        store_id: cashier::auth::DEFAULT_STORE_ID,
        status: None,
        limit: 100_000,
        after: None,
    };
    let now = cashier::units::now_ms();
    store
        .read(move |c| invoices::list(c, &filter, now))
        .await
        .unwrap()
        .invoices
        .into_iter()
        .filter_map(|i| i.memo)
        .collect()
}

async fn stored_invoices_missing(store: &Store, wanted: Vec<Created>) -> Vec<String> {
    store
        .read(move |c| {
            let mut missing = Vec::new();
            for created in &wanted {
                let id = created.id.parse().unwrap();
                match invoices::get(c, id)? {
                    Some(invoice) if invoice.memo.as_deref() == Some(created.memo.as_str()) => {}
                    other => missing.push(format!("{created:?}: {other:?}")),
                }
            }
            Ok(missing)
        })
        .await
        .unwrap()
}
