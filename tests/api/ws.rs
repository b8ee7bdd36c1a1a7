//! The invoice socket: live events after commit, catch-up for late subscribers, replay by
//! event id, and nothing a client sends ever reaches another client.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use cashier::chain::txid_of;

use crate::helpers::{connect, next_text, Socket, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_payment_reaches_the_socket,
    a_late_subscriber_hears_the_outcome_at_once,
    since_replays_exactly_the_events_after_it,
    a_snapshot_comes_first_when_asked,
    unknown_invoices_are_refused,
    a_client_frame_is_never_relayed,
    an_open_socket_hears_the_expiry,
    a_slow_socket_is_dropped_and_never_slows_a_healthy_one,
    an_event_committed_before_a_crash_is_delivered_after_the_restart,
);
on_both_backends!(["--sockets-per-address", "3"] =>
    a_socket_that_stopped_reading_keeps_its_place_until_its_connection_ends,
);
on_both_backends!(["--sockets-per-address", "1", "--ws-ping-secs", "1"] =>
    a_peer_that_never_answers_a_close_does_not_keep_its_place,
);

/// Every text message until the server answers our close: what it sent before.
async fn rest(mut socket: Socket) -> Vec<Value> {
    socket.send(Message::Close(None)).await.expect("close");
    let mut texts = Vec::new();
    while let Some(Ok(frame)) = socket.next().await {
        match frame {
            Message::Text(text) => texts.push(serde_json::from_str(&text).expect("JSON")),
            Message::Close(_) => break,
            _ => {}
        }
    }
    texts
}

async fn a_payment_reaches_the_socket(app: TestApp) {
    let (id, raw) = app.invoice_and_payment().await;
    let mut socket = connect(&app, &format!("/ws/jpp/invoice/{id}/")).await;
    app.pay(&id, &raw).await;
    let event = next_text(&mut socket).await;
    assert_eq!(event["type"], "payment_received");
    assert_eq!(event["txid"], txid_of(&raw).to_hex());
    assert!(event["event_id"].as_i64().unwrap() > 0);
    assert_eq!(event["invoice"]["payment_id"], id.as_str());
    assert_eq!(event["invoice"]["status"], "paid");
    assert_eq!(
        event["invoice"]["payment_url"],
        format!("{}/api/jpp/invoices/{id}/", app.base)
    );
    assert!(event["paid_at"].as_str().unwrap().ends_with('Z'));
    assert!(event["invoice"].get("merchant_data").is_none());
    // Exactly one event for one payment.
    assert_eq!(rest(socket).await, Vec::<Value>::new());
}

async fn a_late_subscriber_hears_the_outcome_at_once(app: TestApp) {
    let (id, raw) = app.invoice_and_payment().await;
    app.pay(&id, &raw).await;
    let mut socket = connect(&app, &format!("/api/ws/jpp/invoice/{id}")).await;
    let event = next_text(&mut socket).await;
    assert_eq!(event["type"], "payment_received");
    assert_eq!(event["txid"], txid_of(&raw).to_hex());

    // Expired and cancelled invoices say so at once too.
    let expired = app.insert_expired_invoice(1000).await;
    let mut socket = connect(&app, &format!("/ws/jpp/invoice/{expired}/")).await;
    assert_eq!(next_text(&mut socket).await["type"], "invoice_expired");
    let cancelled = app.cancelled_invoice(1000).await;
    let mut socket = connect(&app, &format!("/ws/jpp/invoice/{cancelled}/")).await;
    assert_eq!(next_text(&mut socket).await["type"], "invoice_cancelled");
}

async fn since_replays_exactly_the_events_after_it(app: TestApp) {
    let (id, raw) = app.invoice_and_payment().await;
    app.pay(&id, &raw).await;
    let all = rest(connect(&app, &format!("/ws/jpp/invoice/{id}/?since=0")).await).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let event_id = all[0]["event_id"].as_i64().unwrap();
    let after = rest(connect(&app, &format!("/ws/jpp/invoice/{id}/?since={event_id}")).await).await;
    assert_eq!(after, Vec::<Value>::new());
    let before = rest(
        connect(
            &app,
            &format!("/ws/jpp/invoice/{id}/?since={}", event_id - 1),
        )
        .await,
    )
    .await;
    assert_eq!(before, all);
}

async fn a_snapshot_comes_first_when_asked(app: TestApp) {
    let invoice = app.create_simple(2500).await;
    let id = invoice["payment_id"].as_str().unwrap();
    let mut socket = connect(&app, &format!("/ws/jpp/invoice/{id}/?snapshot=1")).await;
    let snapshot = next_text(&mut socket).await;
    assert_eq!(snapshot["type"], "invoice_state");
    assert_eq!(snapshot["invoice"]["status"], "open");
    assert_eq!(snapshot["invoice"]["outputs"], invoice["outputs"]);
    assert!(snapshot["invoice"].get("merchant_data").is_none());
}

async fn unknown_invoices_are_refused(app: TestApp) {
    for id in ["00000000000000000000000000000000", "not-an-id"] {
        let mut socket = connect(&app, &format!("/ws/jpp/invoice/{id}/")).await;
        match socket.next().await {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::Policy, "{id}")
            }
            other => panic!("{id}: expected a close frame, got {other:?}"),
        }
    }
}

async fn a_client_frame_is_never_relayed(app: TestApp) {
    let (id, raw) = app.invoice_and_payment().await;
    let path = format!("/ws/jpp/invoice/{id}/");
    let mut mallory = connect(&app, &path).await;
    let mut page = connect(&app, &path).await;
    let fake =
        json!({"type": "payment_received", "txid": "00".repeat(32), "invoice": {"status": "paid"}});
    mallory.send(Message::text(fake.to_string())).await.unwrap();
    mallory.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    app.pay(&id, &raw).await;
    // The page's first message is the real payment: nothing Mallory sent came before it.
    let first = next_text(&mut page).await;
    assert_eq!(first["txid"], txid_of(&raw).to_hex());
    assert!(first["event_id"].is_i64());
    // And Mallory hears only the real event too.
    assert_eq!(next_text(&mut mallory).await, first);
    // An oversized frame closes the sender's socket.
    mallory
        .send(Message::text("x".repeat(8 * 1024)))
        .await
        .unwrap();
    loop {
        match mallory.next().await {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::Size);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close for the oversized frame, got {other:?}"),
        }
    }
}

async fn an_open_socket_hears_the_expiry(app: TestApp) {
    // Nobody reads this invoice: the sweeper records its expiry and the socket hears it.
    let id = app.insert_invoice_expiring_in(1000, 1_000).await;
    let mut socket = connect(&app, &format!("/ws/jpp/invoice/{id}/?snapshot=1")).await;
    assert_eq!(next_text(&mut socket).await["invoice"]["status"], "open");
    let event = tokio::time::timeout(std::time::Duration::from_secs(30), next_text(&mut socket))
        .await
        .expect("the expiry event within the sweeper's period");
    assert_eq!(event["type"], "invoice_expired");
    assert_eq!(event["invoice"]["status"], "expired");
    assert_eq!(app.events(&format!("invoice:{id}")).await.len(), 1);
}

async fn a_slow_socket_is_dropped_and_never_slows_a_healthy_one(app: TestApp) {
    let id = app.create_simple(1000).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/ws/jpp/invoice/{id}/");
    let mut healthy = connect(&app, &path).await;
    let slow = connect(&app, &path).await; // never reads until the end
    let topic = cashier::notify::Topic::parse(&format!("invoice:{id}"));
    let pad = "x".repeat(64 * 1024);
    const TOTAL: usize = 400; // 25 MiB: more than any socket buffer holds
    for batch in 0..TOTAL / 8 {
        for i in 0..8 {
            let n = batch * 8 + i;
            app.hub.publish(
                &topic,
                cashier::notify::Message::unnumbered(
                    json!({"type": "test", "n": n, "pad": pad}).to_string(),
                ),
            );
        }
        // The healthy page gets every message, in order, while the slow one reads nothing.
        for i in 0..8 {
            assert_eq!(next_text(&mut healthy).await["n"], batch * 8 + i);
        }
    }
    // The slow socket was dropped: what it can still read ends before the last message.
    // It fell more than its queue behind, so it was closed with 1013 ("try again"), after the
    // messages it had buffered, and told how to resume.
    let mut slow = slow;
    let mut received = 0;
    let close = loop {
        match slow.next().await {
            Some(Ok(Message::Text(_))) => received += 1,
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("expected a close frame after {received} messages, got {other:?}"),
        }
    };
    let close = close.expect("a close reason");
    assert_eq!(close.code, CloseCode::Again);
    assert!(close.reason.contains("since"), "{close:?}");
    assert!(
        received < TOTAL,
        "the slow socket got all {received} messages"
    );
}

/// The address sockets come from, and another one (any of 127.0.0.0/8 reaches the server).
const HOME: [u8; 4] = [127, 0, 0, 1];
const ELSEWHERE: [u8; 4] = [127, 0, 0, 2];

/// Asks for a socket to `path` by hand, from the local address `from`: the status of the answer
/// (whose head is read byte by byte, so no frame bytes are taken), its body when it is not 101,
/// and the connection. Nothing reads from it or answers the server's pings unless the test does.
async fn handshake(app: &TestApp, path: &str, from: [u8; 4]) -> (u16, String, TcpStream) {
    let host = app.base.trim_start_matches("http://").to_owned();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind((std::net::Ipv4Addr::from(from), 0).into())
        .unwrap();
    let mut tcp = socket
        .connect(host.parse().unwrap())
        .await
        .expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("handshake");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.expect("handshake answer"));
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    let status = head[9..12].parse().expect("a status");
    let mut body = Vec::new();
    if status != 101 {
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |n| n.trim().parse().expect("a length"));
        body.resize(length, 0);
        tcp.read_exact(&mut body).await.expect("the answer's body");
    }
    (status, String::from_utf8_lossy(&body).into_owned(), tcp)
}

/// A socket to `path` from `from`, opened by hand (see [`handshake`]).
async fn raw_socket(app: &TestApp, path: &str, from: [u8; 4]) -> TcpStream {
    let (status, body, tcp) = handshake(app, path, from).await;
    assert_eq!(status, 101, "{body}");
    tcp
}

/// Asserts that a socket to `path` from `from` is refused as one too many.
async fn refused(app: &TestApp, path: &str, from: [u8; 4]) {
    let (status, body, _) = handshake(app, path, from).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("too_many_sockets"), "{body}");
}

/// A socket to `path` from `from` once the server has given back the place of one it has let
/// go (which it does as it drops the connection, just before or after the peer can tell).
async fn accepted_again(app: &TestApp, path: &str, from: [u8; 4]) -> TcpStream {
    for _ in 0..100 {
        let (status, body, tcp) = handshake(app, path, from).await;
        match status {
            101 => return tcp,
            429 => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            _ => panic!("{status}: {body}"),
        }
    }
    panic!("the place was never given back");
}

/// One server frame: opcode and payload (server frames are never masked).
async fn frame(tcp: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let first = tcp.read_u8().await.ok()?;
    let len = match tcp.read_u8().await.ok()? & 0x7f {
        126 => tcp.read_u16().await.ok()? as usize,
        127 => tcp.read_u64().await.ok()? as usize,
        n => n as usize,
    };
    let mut payload = vec![0; len];
    tcp.read_exact(&mut payload).await.ok()?;
    Some((first & 0x0f, payload))
}

/// The next text frame's JSON, past pings (left unanswered).
async fn text(tcp: &mut TcpStream) -> Value {
    loop {
        match frame(tcp).await {
            Some((0x1, payload)) => return serde_json::from_slice(&payload).expect("JSON"),
            Some((0x9, _)) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Waits, at most 120 s, until the server has ended `tcp` (`STALLED_PEER` after it stalled), without reading from it: reading
/// would let the server write what it holds and close politely, which a peer that stopped
/// reading never allows. Its connection gone, the server answers the client's keepalive probe
/// with a reset.
async fn ended_without_reading(tcp: &TcpStream) {
    let second = std::time::Duration::from_secs(1);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(second)
        .with_interval(second);
    socket2::SockRef::from(tcp)
        .set_tcp_keepalive(&keepalive)
        .unwrap();
    let ready = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tcp.ready(tokio::io::Interest::ERROR),
    )
    .await
    .expect("the server ends the connection of a peer that stopped reading")
    .unwrap();
    assert!(ready.is_error());
    let error = socket2::SockRef::from(tcp).take_error().unwrap();
    assert!(error.is_some(), "the connection ended with an error");
}

/// Sockets that never read, flooded until the server stops serving them, keep their places
/// while their connections stay open (the server cannot end them politely: their buffers are
/// full); the server then ends those connections itself, and the places come back.
async fn a_socket_that_stopped_reading_keeps_its_place_until_its_connection_ends(app: TestApp) {
    const CAP: usize = 3;
    let id = app.create_simple(1000).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/ws/jpp/invoice/{id}/");
    let topic = cashier::notify::Topic::parse(&format!("invoice:{id}"));
    // A page from another address reads everything: it paces the flood.
    let mut healthy = raw_socket(&app, &path, ELSEWHERE).await;
    let mut stalled = Vec::new();
    for _ in 0..CAP {
        stalled.push(raw_socket(&app, &path, HOME).await);
    }
    refused(&app, &path, HOME).await;
    let pad = "x".repeat(64 * 1024);
    const TOTAL: usize = 400; // 25 MiB: more than any socket buffer holds
    for batch in 0..TOTAL / 8 {
        for i in 0..8 {
            let n = batch * 8 + i;
            app.hub.publish(
                &topic,
                cashier::notify::Message::unnumbered(
                    json!({"type": "test", "n": n, "pad": pad}).to_string(),
                ),
            );
        }
        for i in 0..8 {
            assert_eq!(text(&mut healthy).await["n"], batch * 8 + i);
        }
    }
    // The server stops serving the stalled sockets (they fell behind, or a message could not be
    // handed to them in time): only the healthy page is left subscribed.
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while app.hub.subscribers(&topic) > 1 {
            // A pause between looks, not a wait for anything: the loop ends on the count.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stalled sockets are let go");
    assert_eq!(app.hub.subscribers(&topic), 1);
    // Their connections are still open, so they still count: one more is refused.
    refused(&app, &path, HOME).await;
    // The server ends each of them, though the peer never reads.
    for tcp in &stalled {
        ended_without_reading(tcp).await;
    }
    // Their places are back, and only theirs: the cap is what it was.
    let mut again = vec![accepted_again(&app, &path, HOME).await];
    for _ in 1..CAP {
        again.push(raw_socket(&app, &path, HOME).await);
    }
    refused(&app, &path, HOME).await;
    // The healthy page, from another address, was never touched.
    app.hub.publish(
        &topic,
        cashier::notify::Message::unnumbered(json!({"type": "test", "n": "last"}).to_string()),
    );
    assert_eq!(text(&mut healthy).await["n"], "last");
}

/// A peer that reads but never answers the server's close (here: after pings it never
/// answered) is not waited for: its connection ends and its place comes back.
async fn a_peer_that_never_answers_a_close_does_not_keep_its_place(app: TestApp) {
    let id = app.create_simple(1000).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // An unknown invoice is closed at once (1008), and not waited for either.
    for (path, known) in [
        (format!("/ws/jpp/invoice/{id}/"), true),
        (
            "/ws/jpp/invoice/00000000000000000000000000000000/".to_owned(),
            false,
        ),
    ] {
        let mut silent = accepted_again(&app, &path, HOME).await;
        if known {
            // Open until pings go unanswered: it holds the only place.
            refused(&app, &path, HOME).await;
        }
        let close = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            loop {
                match frame(&mut silent).await {
                    Some((0x8, payload)) => break payload,
                    Some((0x9, _)) => continue,
                    other => panic!("expected pings then a close, got {other:?}"),
                }
            }
        })
        .await
        .expect("the server closes the socket");
        let code = u16::from_be_bytes([close[0], close[1]]);
        assert!(code == 1001 || code == 1008, "{path}: {code}");
        let end = tokio::time::timeout(std::time::Duration::from_secs(30), frame(&mut silent))
            .await
            .expect("the connection ends without an answer to the close");
        assert!(end.is_none(), "{path}: {end:?}");
        // The place is back, and the cap is what it was.
        let _again = accepted_again(&app, &path, HOME).await;
        if known {
            refused(&app, &path, HOME).await;
        }
    }
}

mod per_address_cap {
    use super::*;
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_address_cannot_hold_more_sockets_than_the_cap() {
        let app = TestApp::spawn_with(Backend::Sqlite, &["--sockets-per-address", "2"]).await;
        let id = app.create_simple(1000).await["payment_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/ws/jpp/invoice/{id}/");
        let first = connect(&app, &path).await;
        let _second = connect(&app, &path).await;
        let url = format!("{}{path}", app.base.replacen("http://", "ws://", 1));
        match tokio_tungstenite::connect_async(&url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 429)
            }
            other => panic!(
                "a third socket must be refused, got {:?}",
                other.map(|_| ())
            ),
        }
        // Closing one frees its place (once the server has finished with it).
        assert_eq!(rest(first).await, Vec::<Value>::new());
        let mut wait = std::time::Duration::from_millis(10);
        for attempt in 0.. {
            match tokio_tungstenite::connect_async(&url).await {
                Ok(_) => break,
                Err(_) if attempt < 50 => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_millis(200));
                }
                Err(e) => panic!("the freed place was never given back: {e}"),
            }
        }
    }
}

mod scale_out {
    use super::*;
    use crate::helpers::Backend;

    /// Two servers on one PostgreSQL: a payment accepted by A is heard on a socket held by B.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_payment_through_one_server_reaches_a_socket_on_another() {
        let a = TestApp::spawn(Backend::Postgres).await;
        let b = a.another_on_the_same_database().await;
        let (id, raw) = a.invoice_and_payment().await;
        let mut on_b = connect(&b, &format!("/ws/jpp/invoice/{id}/")).await;
        a.pay(&id, &raw).await;
        let event = tokio::time::timeout(std::time::Duration::from_secs(30), next_text(&mut on_b))
            .await
            .expect("the event reaches the other server");
        assert_eq!(event["type"], "payment_received");
        assert_eq!(event["txid"], txid_of(&raw).to_hex());
        // And only once on each server.
        assert_eq!(rest(on_b).await, Vec::<Value>::new());
    }
}

async fn an_event_committed_before_a_crash_is_delivered_after_the_restart(app: TestApp) {
    use cashier::store::payments;
    let (id, raw) = app.invoice_and_payment().await;
    let txid = txid_of(&raw);
    // The server dies right after committing a payment, before any socket heard of it: the
    // claim, the broadcast and the commit are made here with no server (and so no dispatcher)
    // running. The claim comes first, as in the pay flow: the chain watcher may still be
    // stopping, and a transaction it saw paying an open invoice's address would pay it.
    app.stop_server().await;
    let invoice_id: cashier::jpp::InvoiceId = id.parse().unwrap();
    let claim = payments::Claim {
        invoice: invoice_id,
        txid,
        raw_tx: raw.clone(),
        memo: None,
        refund_to: None,
        arrival_ms: cashier::units::now_ms(),
    };
    let claimed = app
        .store
        .write(move |c| payments::claim(c, &claim, cashier::units::now_ms()))
        .await
        .unwrap();
    assert!(claimed);
    use cashier::chain::node::Node;
    assert_eq!(
        app.payments.node().broadcast(&raw).await.unwrap(),
        cashier::chain::node::Broadcast::Accepted
    );
    let base = app.base.clone();
    app.store
        .write(move |c| {
            let now = cashier::units::now_ms();
            // What the pay flow commits: the paid invoice and its event, in one transaction.
            let (invoice, moved) = payments::settle(c, invoice_id, txid, now)?;
            let invoice = invoice.expect("the invoice exists");
            assert!(moved);
            let view = cashier::jpp::InvoiceView::new(
                &invoice,
                cashier::chain::Network::Regtest,
                &base,
                now,
            );
            cashier::notify::append(
                c,
                &cashier::notify::Event::payment_received(&invoice, view),
                now,
            )
        })
        .await
        .unwrap();
    let app = app.restart().await;
    // A page that had seen nothing (since=0) gets exactly that event, by its id.
    let got = rest(connect(&app, &format!("/ws/jpp/invoice/{id}/?since=0")).await).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["type"], "payment_received");
    assert_eq!(got[0]["txid"], txid.to_hex());
    let stored = app.events(&format!("invoice:{id}")).await;
    assert_eq!(got[0]["event_id"], stored[0].0);
}

mod keep_alive {
    use super::*;
    use crate::helpers::Backend;

    /// A peer that never answers is pinged, then closed as gone (1001), and the connection
    /// ends; a peer that answers stays open through the same stretch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_peer_is_closed_and_a_live_one_kept() {
        let app = TestApp::spawn_with(Backend::Sqlite, &["--ws-ping-secs", "1"]).await;
        let id = app.create_simple(1000).await["payment_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut live = connect(&app, &format!("/ws/jpp/invoice/{id}/")).await;
        // Reading is what makes the client library answer pings.
        let live = tokio::spawn(async move { next_text(&mut live).await });
        let mut dead = raw_socket(&app, &format!("/ws/jpp/invoice/{id}/"), HOME).await;
        let mut pings = 0;
        let closed = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            loop {
                match frame(&mut dead).await {
                    Some((0x9, _)) => pings += 1,
                    Some((0x8, payload)) => break payload,
                    other => panic!("expected pings then a close, got {other:?}"),
                }
            }
        });
        let close = closed.await.expect("a silent peer is closed");
        assert!(pings >= 2, "closed after {pings} pings");
        assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1001);
        assert!(String::from_utf8_lossy(&close[2..]).contains("ping"));
        assert!(
            frame(&mut dead).await.is_none(),
            "the connection ends after the close"
        );

        // The live socket, which answers every ping (the client library does), has lived as
        // long and still gets its events.
        app.hub.publish(
            &cashier::notify::Topic::parse(&format!("invoice:{id}")),
            cashier::notify::Message::unnumbered(json!({"type": "test"}).to_string()),
        );
        assert_eq!(live.await.expect("live socket")["type"], "test");
    }
}
