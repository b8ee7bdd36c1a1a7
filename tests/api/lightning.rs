//! The LNbits-compatible wallet path: REST as LNbits' clients call it, internal payments
//! settled for both sides at once, one socket frame per side, no overdraft under concurrency,
//! and pushes only with the wallet's admin key.

use futures_util::future::join_all;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    an_internal_payment_reaches_both_sockets_once,
    concurrent_payments_cannot_overdraw,
    a_push_needs_the_wallets_admin_key,
    mistakes_get_lnbits_answers,
);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(app: &TestApp, key: &str) -> Socket {
    let url = format!(
        "{}/api/v1/ws/{key}",
        app.base.replacen("http://", "ws://", 1)
    );
    tokio_tungstenite::connect_async(url)
        .await
        .expect("socket")
        .0
}

async fn next_text(socket: &mut Socket) -> String {
    loop {
        match socket.next().await.expect("a frame").expect("a frame") {
            Message::Text(t) => return t.to_string(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

async fn balance(app: &TestApp, key: &str) -> i64 {
    let r = app
        .client
        .get(app.url("/api/v1/wallet"))
        .header("X-Api-Key", key)
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["balance"]
        .as_i64()
        .unwrap()
}

async fn push(app: &TestApp, target: &str, data: &str, key: Option<&str>) -> u16 {
    let mut r = app
        .client
        .get(app.url(&format!("/api/v1/ws/{target}/{data}")));
    if let Some(key) = key {
        r = r.header("X-Api-Key", key);
    }
    r.send().await.unwrap().status().as_u16()
}

async fn an_internal_payment_reaches_both_sockets_once(app: TestApp) {
    let (a, b) = (app.ln_account("payer").await, app.ln_account("payee").await);
    app.lightning.top_up(&a.id, 10_000).await.unwrap();
    let mut on_a = socket(&app, &a.inkey).await;
    let mut on_b = socket(&app, &b.id).await;
    let created = app.ln_invoice(&b, 1234, "ref test").await;
    assert_eq!(created["status"], "pending");
    assert_eq!(created["amount"], 1_234_000);
    assert_eq!(created["bolt11"], created["payment_request"]);
    let hash = created["payment_hash"].as_str().unwrap().to_owned();
    assert_eq!(created["checking_id"], hash.as_str());

    let (status, paid) = app
        .ln_payments_post(
            &a.adminkey,
            json!({"out": true, "bolt11": created["bolt11"]}),
        )
        .await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["amount"], -1_234_000);
    assert_eq!(paid["status"], "success");
    assert_eq!(paid["checking_id"], format!("internal_{hash}"));
    assert_eq!(paid["fee"], 0);

    // The top-up, committed just before the socket opened, may still be on its way to it.
    let mut sent: Value = serde_json::from_str(&next_text(&mut on_a).await).unwrap();
    if sent["memo"] == "Admin credit" {
        sent = serde_json::from_str(&next_text(&mut on_a).await).unwrap();
    }
    assert_eq!(sent["event"], "payment_sent");
    assert_eq!(sent["wallet_balance"], 10_000 - 1234);
    assert_eq!(sent["payment"]["amount"], -1_234_000);
    assert_eq!(sent["payment"]["payment_hash"], hash.as_str());
    assert_eq!(sent["amount"], -1234);
    assert_eq!(sent["status"], "success");
    assert_eq!(sent["memo"], "ref test");
    assert!(sent["event_id"].as_i64().is_some());
    let received: Value = serde_json::from_str(&next_text(&mut on_b).await).unwrap();
    assert_eq!(received["type"], "payment");
    assert_eq!(received["event"], "payment_received");
    assert_eq!(received["wallet_balance"], 1234);
    assert_eq!(received["payment"]["amount"], 1_234_000);
    assert_eq!(received["payment"]["status"], "success");
    assert_eq!(received["payment_hash"], hash.as_str());
    assert_eq!(received["amount"], 1234);
    assert!(received["payment"]["preimage"].as_str().is_some());

    // Exactly one frame each: the next thing either socket hears is a marker pushed now.
    assert_eq!(push(&app, &a.id, "marker-a", Some(&a.adminkey)).await, 200);
    assert_eq!(push(&app, &b.id, "marker-b", Some(&b.adminkey)).await, 200);
    assert_eq!(next_text(&mut on_a).await, "marker-a");
    assert_eq!(next_text(&mut on_b).await, "marker-b");

    assert_eq!(balance(&app, &a.inkey).await, 8_766_000);
    assert_eq!(balance(&app, &b.inkey).await, 1_234_000);
    // An internal invoice is paid once.
    let (status, again) = app
        .ln_payments_post(
            &a.adminkey,
            json!({"out": true, "bolt11": created["bolt11"]}),
        )
        .await;
    assert_eq!(status, 520);
    assert_eq!(again["detail"], "Internal invoice already paid.");
    assert_eq!(again["status"], "failed");
    assert_eq!(balance(&app, &a.inkey).await, 8_766_000);

    // The payee's view, by hash; without a key only whether it is paid.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/payments/{hash}")))
        .header("X-Api-Key", &b.inkey)
        .send()
        .await
        .unwrap();
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["paid"], true);
    assert!(view["preimage"].as_str().is_some());
    assert_eq!(view["details"]["amount"], 1_234_000);
    let open: Value = app
        .client
        .get(app.url(&format!("/api/v1/payments/{hash}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(open["paid"], true);
    assert!(open.get("preimage").is_none(), "{open}");
    // A late socket resumes with ?since= and gets the payment it missed.
    let since = received["event_id"].as_i64().unwrap() - 1;
    let mut late = socket(&app, &format!("{}?since={since}", b.inkey)).await;
    let replayed: Value = serde_json::from_str(&next_text(&mut late).await).unwrap();
    assert_eq!(replayed["event_id"], received["event_id"]);
}

async fn concurrent_payments_cannot_overdraw(app: TestApp) {
    let (a, b) = (app.ln_account("payer").await, app.ln_account("payee").await);
    app.lightning.top_up(&a.id, 5000).await.unwrap();
    let mut bolt11s = Vec::new();
    for i in 0..10 {
        bolt11s.push(app.ln_invoice(&b, 1000, &format!("n{i}")).await["bolt11"].clone());
    }
    let outcomes =
        join_all(bolt11s.iter().map(|bolt11| {
            app.ln_payments_post(&a.adminkey, json!({"out": true, "bolt11": bolt11}))
        }))
        .await;
    let paid = outcomes.iter().filter(|(s, _)| *s == 201).count();
    let refused: Vec<_> = outcomes.iter().filter(|(s, _)| *s == 520).collect();
    assert_eq!(paid, 5, "{outcomes:?}");
    assert_eq!(refused.len(), 5, "{outcomes:?}");
    assert!(refused
        .iter()
        .all(|(_, b)| b["detail"] == "Insufficient balance."));
    assert_eq!(balance(&app, &a.inkey).await, 0);
    assert_eq!(balance(&app, &b.inkey).await, 5_000_000);
    // The balances kept on the wallets' rows are what their payment rows add up to.
    let checked = app
        .store
        .read(|c| cashier::store::lightning::check_balances(c, None))
        .await
        .unwrap();
    assert_eq!(checked.len(), 2);
    assert!(checked.iter().all(|c| c.agrees()), "{checked:?}");
}

async fn a_push_needs_the_wallets_admin_key(app: TestApp) {
    let (a, b) = (app.ln_account("a").await, app.ln_account("b").await);
    let mut on_a = socket(&app, &a.inkey).await;
    assert_eq!(push(&app, &a.inkey, "forged", None).await, 401);
    assert_eq!(push(&app, &a.inkey, "forged", Some(&a.inkey)).await, 401);
    assert_eq!(push(&app, &a.inkey, "forged", Some(&b.adminkey)).await, 401);
    let r = app
        .client
        .post(app.url(&format!("/api/v1/ws/{}?data=forged", a.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // With the admin key it is delivered, and it is the first thing the socket hears: none
    // of the refused pushes reached it.
    let r = app
        .client
        .post(app.url(&format!("/api/v1/ws/{}?data=real", a.inkey)))
        .header("X-Api-Key", &a.adminkey)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"sent": true, "data": "real"})
    );
    assert_eq!(next_text(&mut on_a).await, "real");
}

async fn mistakes_get_lnbits_answers(app: TestApp) {
    let a = app.ln_account("a").await;
    let r = app
        .client
        .get(app.url("/api/v1/wallet"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "No Api Key provided."
    );
    let r = app
        .client
        .get(app.url("/api/v1/wallet?api-key=nosuchkey"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "Wallet not found."
    );
    // The admin key shows the id; the invoice key does not.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/wallet?api-key={}", a.adminkey)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["id"], a.id.as_str());
    let r = app
        .client
        .get(app.url(&format!("/api/v1/wallet?api-key={}", a.inkey)))
        .send()
        .await
        .unwrap();
    assert!(r.json::<Value>().await.unwrap().get("id").is_none());

    let inv = app.ln_invoice(&a, 10, "x").await;
    for (key, body, status, detail) in [
        (
            &a.inkey,
            json!({"bolt11": inv["bolt11"]}),
            403,
            "Invoice (or Admin) key required.",
        ),
        (
            &a.adminkey,
            json!({"out": true}),
            400,
            "Missing BOLT11 invoice",
        ),
        (
            &a.adminkey,
            json!({"out": true, "bolt11": "lnbc1nonsense"}),
            400,
            "Invalid BOLT11",
        ),
        (
            &a.inkey,
            json!({"out": false, "amount": 0}),
            400,
            "Amountless invoices not supported.",
        ),
        (&a.inkey, json!({"out": false, "amount": 1.5}), 400, "whole"),
        (
            &a.inkey,
            json!({"out": false, "amount": 5, "unit": "USD"}),
            400,
            "sat",
        ),
        (
            &a.adminkey,
            json!({"out": true, "bolt11": inv["bolt11"]}),
            520,
            "Insufficient balance.",
        ),
    ] {
        let (s, b) = app.ln_payments_post(key, body.clone()).await;
        assert_eq!(s, status, "{body}: {b}");
        assert!(
            b["detail"].as_str().unwrap().contains(detail),
            "{body}: {b}"
        );
    }
    let r = app
        .client
        .post(app.url("/api/v1/payments/decode"))
        .body(json!({"data": inv["bolt11"]}).to_string())
        .send()
        .await
        .unwrap();
    let decoded: Value = r.json().await.unwrap();
    assert_eq!(decoded["amount_msat"], 10_000);
    assert_eq!(decoded["payment_hash"], inv["payment_hash"]);
    assert_eq!(decoded["description"], "x");
    // The wallet's list, newest first.
    let list: Value = app
        .client
        .get(app.url("/api/v1/payments?limit=5"))
        .header("X-Api-Key", &a.inkey)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["payment_hash"], inv["payment_hash"]);
    // A socket on a key nobody has is closed with 1008.
    let mut nobody = socket(&app, "no-such-key").await;
    match nobody.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Policy),
        other => panic!("expected a policy close, got {other:?}"),
    }
}

mod scale_out {
    use super::*;
    use crate::helpers::Backend;

    /// Two servers on one PostgreSQL: a push through A reaches the wallet's socket on B, and
    /// so does a payment settled on A.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pushes_and_payments_reach_sockets_on_every_server() {
        let a = TestApp::spawn(Backend::Postgres).await;
        let b = a.another_on_the_same_database().await;
        let (payer, payee) = (a.ln_account("payer").await, a.ln_account("payee").await);
        let mut on_b = socket(&b, &payee.inkey).await;
        assert_eq!(
            push(&a, &payee.id, "through-a", Some(&payee.adminkey)).await,
            200
        );
        assert_eq!(next_text(&mut on_b).await, "through-a");
        a.lightning.top_up(&payer.id, 100).await.unwrap();
        let invoice = a.ln_invoice(&payee, 21, "across").await;
        let (status, _) = a
            .ln_payments_post(
                &payer.adminkey,
                json!({"out": true, "bolt11": invoice["bolt11"]}),
            )
            .await;
        assert_eq!(status, 201);
        let frame: Value = serde_json::from_str(&next_text(&mut on_b).await).unwrap();
        assert_eq!(frame["event"], "payment_received");
        assert_eq!(frame["amount"], 21);
    }
}
