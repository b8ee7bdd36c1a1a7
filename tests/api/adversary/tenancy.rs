//! Stores and scopes: a key sees and touches only its own store's invoices, and only as far as
//! its scopes allow. Another store's invoice answers exactly like one that does not exist.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{TestApp, ADDR};
use crate::on_both_backends;

on_both_backends!(
    another_stores_invoice_is_not_there,
    a_create_only_key_creates_and_nothing_else,
    a_read_only_key_cannot_create_or_cancel,
    merchant_data_is_for_the_merchant,
);

/// Sends `method path` with `key` (and a JSON body for POST); returns status and JSON.
async fn call(app: &TestApp, method: Method, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut request = app.client.request(method.clone(), app.url(path));
    if let Some(key) = key {
        request = request.header("X-Api-Key", key);
    }
    if method == Method::POST {
        request = request.json(&json!({"outputs": [{"address": ADDR, "amount": 1000}]}));
    }
    let r = request.send().await.expect("request");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The invoice's status as anyone reads it, and how many events it has.
async fn state_of(app: &TestApp, id: &str) -> (String, usize) {
    let (status, body) = call(app, Method::GET, &format!("/jpp/invoices/{id}/"), None).await;
    assert_eq!(status, 200, "{body}");
    let events = app.events(&format!("invoice:{id}")).await.len();
    (body["status"].as_str().expect("status").to_owned(), events)
}

fn ids(page: &Value) -> Vec<&str> {
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|i| i["payment_id"].as_str().expect("id"))
        .collect()
}

async fn another_stores_invoice_is_not_there(app: TestApp) {
    let b = app.make_store("shop b").await;
    let key_b = app.make_key(b, "all").await;
    let ours = app.create_simple(1000).await;
    let id = ours["payment_id"].as_str().unwrap();
    let theirs = call(&app, Method::POST, "/jpp/invoices/", Some(&key_b))
        .await
        .1;
    let their_id = theirs["payment_id"].as_str().unwrap();
    let before = state_of(&app, id).await;

    // Lists: each key sees its own store's invoice only.
    let (_, page_b) = call(&app, Method::GET, "/jpp/invoices/", Some(&key_b)).await;
    assert_eq!(ids(&page_b), [their_id]);
    let (_, page_a) = call(&app, Method::GET, "/jpp/invoices/", Some(&app.key)).await;
    assert_eq!(ids(&page_a), [id]);
    for status in ["open", "expired", "cancelled"] {
        let path = format!("/jpp/invoices/?status={status}");
        let (_, page) = call(&app, Method::GET, &path, Some(&key_b)).await;
        assert!(!ids(&page).contains(&id), "{status}: {page}");
    }

    // Every merchant endpoint answers B about A's invoice as about an id that does not exist:
    // the same status and the same body.
    let unknown = "0123456789abcdef0123456789abcdef";
    for (method, path) in [
        (Method::POST, "/jpp/invoices/{}/cancel/"),
        (Method::POST, "/api/jpp/invoices/{}/cancel"),
        (Method::GET, "/jpp/invoices/{}/"),
        (Method::GET, "/api/jpp/invoices/{}/"),
    ] {
        let foreign = call(&app, method.clone(), &path.replace("{}", id), Some(&key_b)).await;
        let missing = call(
            &app,
            method.clone(),
            &path.replace("{}", unknown),
            Some(&key_b),
        )
        .await;
        assert_eq!(foreign.0, 404, "{method} {path}: {}", foreign.1);
        assert_eq!(foreign, missing, "{method} {path}");
    }
    assert_eq!(state_of(&app, id).await, before, "nothing changed");
    assert_eq!(before, ("open".to_owned(), 0));

    // Its own store's invoice B may cancel.
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/jpp/invoices/{their_id}/cancel/"),
        Some(&key_b),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(state_of(&app, their_id).await, ("cancelled".to_owned(), 1));
}

async fn a_create_only_key_creates_and_nothing_else(app: TestApp) {
    let till = app.make_key(1, "invoices:create").await;
    let (status, created) = call(&app, Method::POST, "/jpp/invoices/", Some(&till)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["payment_id"].as_str().unwrap();
    let before = state_of(&app, id).await;
    let invoices_before = app.count_invoices().await;

    for (method, path) in [
        (Method::GET, "/jpp/invoices/".to_owned()),
        (Method::GET, format!("/jpp/invoices/{id}/")),
        (Method::POST, format!("/jpp/invoices/{id}/cancel/")),
    ] {
        let (status, body) = call(&app, method.clone(), &path, Some(&till)).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert_eq!(body["code"], "insufficient_scope", "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("invoices:create"),
            "the refusal says what the key holds: {body}"
        );
    }
    assert_eq!(state_of(&app, id).await, before, "nothing changed");
    assert_eq!(app.count_invoices().await, invoices_before);
}

async fn a_read_only_key_cannot_create_or_cancel(app: TestApp) {
    let reader = app.make_key(1, "invoices:read").await;
    let invoice = app.create_simple(1000).await;
    let id = invoice["payment_id"].as_str().unwrap();
    let invoices_before = app.count_invoices().await;

    let (status, body) = call(&app, Method::POST, "/jpp/invoices/", Some(&reader)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("insufficient_scope"))
    );
    let cancel = format!("/jpp/invoices/{id}/cancel/");
    let (status, _) = call(&app, Method::POST, &cancel, Some(&reader)).await;
    assert_eq!(status, 403);
    assert_eq!(
        app.count_invoices().await,
        invoices_before,
        "nothing created"
    );
    assert_eq!(state_of(&app, id).await, ("open".to_owned(), 0));

    // What it may do, it does.
    let (status, page) = call(&app, Method::GET, "/jpp/invoices/", Some(&reader)).await;
    assert_eq!(status, 200);
    assert!(ids(&page).contains(&id));
}

async fn merchant_data_is_for_the_merchant(app: TestApp) {
    let (status, created) = app
        .create(&json!({"outputs": [{"address": ADDR, "amount": 5000}],
                        "merchant_data": {"customer": "alice@example.com"}}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(created["merchant_data"]["customer"], "alice@example.com");
    let id = created["payment_id"].as_str().unwrap();
    let path = format!("/jpp/invoices/{id}/");

    // Anyone with the id reads the invoice, without the merchant's data.
    let (status, public) = call(&app, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert!(public.get("merchant_data").is_none(), "{public}");
    // The merchant's read key gets it.
    let (status, private) = call(&app, Method::GET, &path, Some(&app.key)).await;
    assert_eq!(status, 200);
    assert_eq!(private["merchant_data"]["customer"], "alice@example.com");
    // A key that is not valid is refused rather than ignored.
    let (status, _) = call(&app, Method::GET, &path, Some("ck_nope")).await;
    assert_eq!(status, 403);

    // Nor does the wallet that pays it learn the merchant's data.
    let raw = pay_raw(&app, &created).await;
    let (status, wallet_view) = app.post_tx(id, "pay", &raw).await;
    assert_eq!(status, 200, "{wallet_view}");
    assert_eq!(wallet_view["status"], "paid");
    assert!(wallet_view.get("merchant_data").is_none(), "{wallet_view}");
}

/// A signed transaction paying `invoice` from fresh faucet coins.
async fn pay_raw(app: &TestApp, invoice: &Value) -> Vec<u8> {
    let wallet = crate::helpers::TestWallet::new();
    let coin = wallet.fund(app, 20_000, None).await;
    wallet.pay(&[coin], crate::helpers::invoice_outputs(invoice))
}
