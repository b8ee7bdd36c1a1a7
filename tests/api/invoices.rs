//! Creating, reading, listing and cancelling invoices.

use serde_json::{json, Value};

use crate::helpers::{TestApp, ADDR, ADDR_TOKEN};
use crate::on_both_backends;

on_both_backends!(
    create_then_read_everywhere,
    outputs_are_normalised,
    list_pages_and_filters,
    cancel_is_conditional_and_writes_one_event,
    expiry_is_recorded_on_first_read,
    unknown_and_malformed_ids_are_404,
    health_reports_the_database,
);

fn is_iso_millis(s: &Value) -> bool {
    let s = s.as_str().unwrap_or("");
    s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T' && s.as_bytes()[19] == b'.'
}

async fn create_then_read_everywhere(app: TestApp) {
    let created = app.create_simple(1000).await;
    let id = created["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(created["status"], "open");
    assert_eq!(created["network"], "regtest");
    assert_eq!(created["currency"], "BCH");
    assert_eq!(created["payment"], Value::Null);
    assert_eq!(created["required_fee_per_byte"], 1.0);
    assert_eq!(
        created["payment_url"],
        format!("{}/api/jpp/invoices/{id}/", app.base)
    );
    assert!(created["payment_uri"]
        .as_str()
        .unwrap()
        .starts_with("bchreg:?r=http%3A%2F%2F127.0.0.1"));
    assert!(
        is_iso_millis(&created["time"]) && is_iso_millis(&created["expires"]),
        "{created}"
    );
    let time = chrono::DateTime::parse_from_rfc3339(created["time"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(created["expires"].as_str().unwrap()).unwrap();
    assert_eq!((expires - time).num_seconds(), 1800);

    let dashed = format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..]
    );
    let paths = [
        format!("/jpp/invoices/{id}/"),
        format!("/jpp/invoices/{id}"),
        format!("/api/jpp/invoices/{id}/"),
        format!("/api/jpp/invoices/{}", id.to_uppercase()),
        format!("/jpp/invoices/{dashed}/"),
        format!("/jpp/i/{id}/"),
        format!("/api/jpp/i/bitpay/{id}/"),
        format!("/i/{id}"),
    ];
    for path in &paths {
        for accept in [
            None,
            Some("*/*"),
            Some("application/json"),
            // A browser's Accept gets the checkout page (tests/api/checkout.rs).
        ] {
            let mut req = app.client.get(app.url(path));
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200, "{path} {accept:?}");
            assert_eq!(r.headers()["content-type"], "application/json");
            let read: Value = r.json().await.unwrap();
            assert_eq!(read, public_view(&created), "{path} {accept:?}");
        }
    }
}

async fn outputs_are_normalised(app: TestApp) {
    let category = "ab".repeat(32);
    let (status, body) = app
        .create(&json!({
            "outputs": [
                // Legacy (testnet/regtest version byte) in, CashAddr out.
                {"address": "mo9ncXisMeAoXwqcV5EWuyncbmCcQN4rVs", "amount": 546, "description": "legacy"},
                // Token-aware in, plain out when no tokens are asked for.
                {"address": ADDR_TOKEN, "amount": 600},
                // Tokens go to a token-aware address (any case); FT amount as a string.
                {"address": ADDR_TOKEN, "amount": 1000, "token": {"category": category, "amount": "9223372036854775807"}},
                {"address": ADDR_TOKEN.to_uppercase(), "amount": 1000,
                 "token": {"category": category.to_uppercase(), "nft": {"capability": "minting", "commitment": ""}}},
                // P2SH32 with its own dust limit (576).
                {"address": "bchreg:pw46h2at4w46h2at4w46h2at4w46h2at4w46h2at4w46h2at4w46knct4ntry", "amount": 576}
            ],
            "expires_in": 60,
            "required_fee_per_byte": 1.1,
            "merchant_data": {"order": [1, 2, {"x": null}]}
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    let outputs = body["outputs"].as_array().unwrap();
    assert!(
        outputs[0]["address"]
            .as_str()
            .unwrap()
            .starts_with("bchreg:q"),
        "{body}"
    );
    assert_eq!(outputs[0]["description"], "legacy");
    assert_eq!(outputs[1]["address"], ADDR);
    assert!(outputs[1].get("description").is_none() && outputs[1].get("token").is_none());
    assert_eq!(outputs[2]["address"], ADDR_TOKEN);
    assert_eq!(
        outputs[2]["token"],
        json!({"category": category, "amount": 9223372036854775807u64})
    );
    assert_eq!(
        outputs[3]["token"],
        json!({"category": category, "amount": 0, "nft": {"capability": "minting", "commitment": ""}})
    );
    assert!(outputs[4]["address"]
        .as_str()
        .unwrap()
        .starts_with("bchreg:p"));
    assert_eq!(body["required_fee_per_byte"], 1.1);
    assert_eq!(body["merchant_data"], json!({"order": [1, 2, {"x": null}]}));

    let (status, read) = app
        .get_json(&format!(
            "/jpp/invoices/{}/",
            body["payment_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(read, public_view(&body));
}

async fn list_pages_and_filters(app: TestApp) {
    let mut ids = Vec::new();
    for amount in 1000..1005 {
        ids.push(
            app.create_simple(amount).await["payment_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let r = app
        .client
        .post(app.url(&format!("/jpp/invoices/{}/cancel/", ids[1])))
        .header("X-Api-Key", &app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let list = |query: String| {
        let req = app
            .client
            .get(app.url(&format!("/api/jpp/invoices/{query}")))
            .bearer_auth(&app.key);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    // Newest first, two at a time, following the cursor to the end.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("?limit=2&cursor={c}"),
            None => "?limit=2".into(),
        };
        let (status, page) = list(q).await;
        assert_eq!(status, 200, "{page}");
        let results = page["results"].as_array().unwrap();
        assert!(results.len() <= 2);
        seen.extend(
            results
                .iter()
                .map(|r| r["payment_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let (_, cancelled) = list("?status=cancelled".into()).await;
    let cancelled = cancelled["results"].as_array().unwrap();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["payment_id"], ids[1].as_str());
    assert_eq!(cancelled[0]["status"], "cancelled");
    let (_, open) = list("?status=open&limit=100".into()).await;
    assert_eq!(open["results"].as_array().unwrap().len(), 4);
    let (_, paid) = list("?status=paid".into()).await;
    assert_eq!(paid["results"], json!([]));

    for (query, needle) in [
        ("?status=bogus", "status \"bogus\" is unknown"),
        ("?limit=0", "limit must be"),
        ("?limit=101", "limit must be"),
        ("?cursor=abc", "cursor is not one"),
    ] {
        let (status, body) = list(query.into()).await;
        assert_eq!(status, 400, "{query}");
        assert!(
            body["detail"].as_str().unwrap().contains(needle),
            "{query}: {body}"
        );
    }
    let r = app
        .client
        .get(app.url("/jpp/invoices/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(app.url("/jpp/invoices/"))
        .header("X-Api-Key", "ck_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

async fn cancel_is_conditional_and_writes_one_event(app: TestApp) {
    let id = app.create_simple(1000).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancel = |key: Option<&str>| {
        let mut req = app
            .client
            .post(app.url(&format!("/jpp/invoices/{id}/cancel/")));
        if let Some(k) = key {
            req = req.header("X-Api-Key", k);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(cancel(None).await.0, 401);
    assert_eq!(cancel(Some("ck_wrong")).await.0, 403);
    assert!(app.events(&format!("invoice:{id}")).await.is_empty());

    let (status, body) = cancel(Some(&app.key)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")));
    let (status, again) = cancel(Some(&app.key)).await;
    assert_eq!((status, again["status"].as_str()), (200, Some("cancelled")));
    let (_, read) = app.get_json(&format!("/jpp/invoices/{id}")).await;
    assert_eq!(read["status"], "cancelled");

    let events = app.events(&format!("invoice:{id}")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].1, "invoice_cancelled");
    let payload: Value = serde_json::from_str(&events[0].2).unwrap();
    assert_eq!(payload["type"], "invoice_cancelled");
    assert_eq!(payload["invoice"]["status"], "cancelled");
    assert!(
        payload["invoice"].get("merchant_data").is_none(),
        "private data on a public channel: {payload}"
    );

    let r = app
        .client
        .post(app.url("/jpp/invoices/00000000000000000000000000000000/cancel"))
        .header("X-Api-Key", &app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

async fn expiry_is_recorded_on_first_read(app: TestApp) {
    let id = app.insert_expired_invoice(1000).await;
    let live = app.create_simple(1000).await;

    let list = |status: &str| {
        let req = app
            .client
            .get(app.url(&format!("/jpp/invoices/?status={status}")))
            .header("X-Api-Key", &app.key);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // Listing computes expiry from the clock before anything is recorded.
    let expired = list("expired").await;
    assert_eq!(expired["results"].as_array().unwrap().len(), 1);
    assert_eq!(expired["results"][0]["payment_id"], id.to_string());
    assert_eq!(expired["results"][0]["status"], "expired");
    let open = list("open").await;
    assert_eq!(open["results"].as_array().unwrap().len(), 1);
    assert_eq!(open["results"][0]["payment_id"], live["payment_id"]);

    for _ in 0..3 {
        let (status, read) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
        assert_eq!((status, read["status"].as_str()), (200, Some("expired")));
    }
    let events = app.events(&format!("invoice:{id}")).await;
    assert_eq!(events.len(), 1, "expiry is recorded once: {events:?}");
    assert_eq!(events[0].1, "invoice_expired");

    // An expired invoice cannot be cancelled.
    let r = app
        .client
        .post(app.url(&format!("/jpp/invoices/{id}/cancel/")))
        .header("X-Api-Key", &app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invoice_not_open");
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
}

async fn unknown_and_malformed_ids_are_404(app: TestApp) {
    for path in [
        "/jpp/invoices/00000000000000000000000000000000/",
        "/jpp/invoices/not-an-id/",
        "/api/jpp/invoices/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        "/jpp/i/1234/",
        "/i/%00%ff",
        "/jpp/invoices/00000000-0000-0000-0000-00000000000g/",
    ] {
        let (status, body) = app.get_json(path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["code"], "not_found", "{path}");
    }
}

async fn health_reports_the_database(app: TestApp) {
    let (status, body) = app.get_json("/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    let expected = if app.database_url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(body["database"], expected);
}

mod public_invoices {
    use super::*;
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn create_needs_no_key_but_a_wrong_key_is_still_refused() {
        let app = TestApp::spawn_with(Backend::Sqlite, &["--public-invoices"]).await;
        let body = json!({"outputs": [{"address": ADDR, "amount": 1000}]});
        let r = app
            .client
            .post(app.url("/jpp/invoices"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r = app
            .client
            .post(app.url("/jpp/invoices"))
            .header("X-Api-Key", "ck_bad")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        // Listing stays private.
        let r = app
            .client
            .get(app.url("/jpp/invoices"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
}

/// What anyone with the id reads: the invoice without the merchant's `merchant_data`.
fn public_view(created: &Value) -> Value {
    let mut public = created.clone();
    public.as_object_mut().unwrap().remove("merchant_data");
    public
}
