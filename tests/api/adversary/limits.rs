//! What one client may cost the server: slow requests are cut by the deadline, keyless writes
//! meet a per-address rate, sockets are capped in all, socket messages are limited as wholes,
//! and the small refusals (wrong method, oversize or ambiguous bodies) change nothing.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, ADDR};
use crate::on_both_backends;

on_both_backends!(
    wrong_methods_and_ambiguous_bodies_change_nothing,
    the_checkout_page_cannot_be_framed,
    socket_messages_are_limited_as_wholes,
);
on_both_backends!(["--request-timeout", "2"] => slow_bodies_are_cut_and_others_are_served_meanwhile);
on_both_backends!(["--request-timeout", "1"] => slow_headers_are_cut);
on_both_backends!(["--public-invoices", "--public-write-limit", "3"] => keyless_writes_meet_a_rate_per_address);
on_both_backends!(["--sockets-total", "2", "--sockets-per-address", "100"] => sockets_are_capped_in_all);
on_both_backends!(["--frame-ancestors", "https://shop.example"] => an_operator_may_allow_one_embedding_origin);

/// The longest any refusal here may take to arrive before the test fails (never a means of
/// synchronising: every wait ends on the server's own answer).
const GIVE_UP: Duration = Duration::from_secs(30);

fn host_of(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Sends `head` (and `body`) on a raw connection and reads until the server closes it;
/// returns what it answered.
async fn answer_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(GIVE_UP, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// A client that announces a body and then sends it a byte at a time, too slowly.
async fn slow_body(app: &TestApp, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(host_of(app)).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nX-Api-Key: {}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{",
        app.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

async fn slow_bodies_are_cut_and_others_are_served_meanwhile(app: TestApp) {
    let before = app.count_invoices().await;
    // A flood of connections that each hold a body open (bounded: 200, on loopback).
    let mut slow = Vec::new();
    for path in ["/jpp/invoices/", "/jpp/i/0123/cancel"]
        .iter()
        .cycle()
        .take(200)
    {
        slow.push(slow_body(&app, path).await);
    }
    // Meanwhile the server answers everyone else.
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    app.create_simple(1000).await;

    // Each slow client gets 408 and its connection is closed.
    for mut stream in slow {
        let answer = answer_until_closed(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
    }
    assert_eq!(
        app.count_invoices().await,
        before + 1,
        "only the real invoice"
    );
}

async fn slow_headers_are_cut(app: TestApp) {
    let mut stream = TcpStream::connect(host_of(&app)).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let answer = answer_until_closed(&mut stream).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

async fn keyless_writes_meet_a_rate_per_address(app: TestApp) {
    let body = json!({"outputs": [{"address": ADDR, "amount": 1000}]});
    let keyless = || {
        app.client
            .post(app.url("/jpp/invoices/"))
            .json(&body)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(keyless().await.unwrap().status(), 201);
    }
    let before = app.count_invoices().await;
    let refused = keyless().await.unwrap();
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    let body_of: Value = refused.json().await.unwrap();
    assert_eq!(body_of["code"], "rate_limited");
    assert_eq!(app.count_invoices().await, before, "nothing created");
    // A merchant's key is not held to the keyless rate.
    app.create_simple(1000).await;

    // Wallet accounts share the same per-address rate.
    let account = || {
        app.client
            .post(app.url("/api/v1/account"))
            .json(&json!({"name": "flood"}))
            .send()
    };
    let wallets_before = app.lightning.wallets().await.unwrap().len();
    let refused = account().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(app.lightning.wallets().await.unwrap().len(), wallets_before);
}

async fn sockets_are_capped_in_all(app: TestApp) {
    let invoice = app.create_simple(1000).await;
    let url = format!(
        "{}/ws/jpp/invoice/{}/",
        app.base.replacen("http://", "ws://", 1),
        invoice["payment_id"].as_str().unwrap()
    );
    let first = tokio_tungstenite::connect_async(&url).await.unwrap().0;
    let _second = tokio_tungstenite::connect_async(&url).await.unwrap().0;
    let refused = tokio_tungstenite::connect_async(&url).await.unwrap_err();
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 429),
        other => panic!("expected 429, got {other:?}"),
    }
    // A closed socket frees its place.
    drop(first);
    let mut wait = Duration::from_millis(10);
    let deadline = std::time::Instant::now() + GIVE_UP;
    while tokio_tungstenite::connect_async(&url).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the place is never freed"
        );
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(200));
    }
}

/// The close code the server ends a socket with, after `frames` are sent.
async fn close_after(app: &TestApp, frames: Vec<Frame>) -> Option<CloseCode> {
    let invoice = app.create_simple(1000).await;
    let url = format!(
        "{}/ws/jpp/invoice/{}/",
        app.base.replacen("http://", "ws://", 1),
        invoice["payment_id"].as_str().unwrap()
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    for frame in frames {
        if socket.send(Message::Frame(frame)).await.is_err() {
            break;
        }
    }
    tokio::time::timeout(GIVE_UP, async {
        while let Some(Ok(m)) = socket.next().await {
            if let Message::Close(c) = m {
                return c.map(|c| c.code);
            }
        }
        None
    })
    .await
    .expect("the server closes the socket")
}

fn piece(first: bool, fin: bool, len: usize) -> Frame {
    let opcode = if first {
        OpCode::Data(Data::Text)
    } else {
        OpCode::Data(Data::Continue)
    };
    // The client masks it on the way out, as every client frame must be.
    Frame::message(vec![b'a'; len], opcode, fin)
}

async fn socket_messages_are_limited_as_wholes(app: TestApp) {
    // Five 1 KiB pieces of one message: 5 KiB, though no frame is over 4 KiB.
    let mut frames = vec![piece(true, false, 1024)];
    frames.extend((0..4).map(|_| piece(false, false, 1024)));
    assert_eq!(close_after(&app, frames).await, Some(CloseCode::Size));
    // A message that never ends, in empty pieces.
    let mut frames = vec![piece(true, false, 0)];
    frames.extend((0..100).map(|_| piece(false, false, 0)));
    assert_eq!(close_after(&app, frames).await, Some(CloseCode::Size));
}

async fn wrong_methods_and_ambiguous_bodies_change_nothing(app: TestApp) {
    let r = app.client.post(app.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = app
        .client
        .delete(app.url("/jpp/invoices/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);

    let invoice = app.create_simple(1000).await;
    let id = invoice["payment_id"].as_str().unwrap();
    let topic = format!("invoice:{id}");
    // A cancel carries no body worth reading: a large one is refused, and the invoice stays open.
    for size in [2 * 1024, 1024 * 1024] {
        let r = app
            .client
            .post(app.url(&format!("/jpp/invoices/{id}/cancel/")))
            .header("X-Api-Key", &app.key)
            .body(vec![b' '; size])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{size} bytes");
    }
    let (_, read) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
    assert_eq!(read["status"], "open");
    assert!(app.events(&topic).await.is_empty());

    // A field given twice: which one counts would depend on who reads the body.
    let before = app.count_invoices().await;
    let r = app
        .client
        .post(app.url("/jpp/invoices/"))
        .header("X-Api-Key", &app.key)
        .header("Content-Type", "application/json")
        .body(format!(
            r#"{{"outputs": [{{"address": "{ADDR}", "amount": 1000, "amount": 100000000}}], "memo": "a"}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "duplicate_field");
    assert_eq!(
        body["fields"],
        json!({"outputs[0].amount": ["appears more than once"]})
    );
    // Tokens to an address whose owner's wallet would not send them there.
    let (status, body) = app
        .create(&json!({"outputs": [{"address": ADDR, "amount": 1000,
                                     "token": {"category": "ab".repeat(32), "amount": 1}}]}))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["fields"]["outputs[0].address"][0]
            .as_str()
            .unwrap()
            .contains("token-aware"),
        "{body}"
    );
    assert_eq!(app.count_invoices().await, before, "nothing created");
}

/// A new invoice's checkout page, as a browser asks for it.
async fn checkout_page(app: &TestApp) -> reqwest::Response {
    let invoice = app.create_simple(1000).await;
    app.client
        .get(invoice["payment_url"].as_str().unwrap())
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap()
}

async fn the_checkout_page_cannot_be_framed(app: TestApp) {
    let page = checkout_page(&app).await;
    assert_eq!(page.status(), 200);
    let h = page.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    // Every answer is marked not to be sniffed, refusals included.
    let r = app.client.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

async fn an_operator_may_allow_one_embedding_origin(app: TestApp) {
    let page = checkout_page(&app).await;
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.ends_with("frame-ancestors https://shop.example"),
        "{csp}"
    );
    assert!(!page.headers().contains_key("x-frame-options"));
}
