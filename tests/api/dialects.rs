//! Every wallet dialect on one payment URL: GET negotiated by Accept, POST dispatched by
//! Content-Type, each with the exact headers and bodies real wallets send (research §2–§6),
//! and each refusal in the words that dialect's wallets read (§7.4). Paytaca's sequences, per
//! host, are in `paytaca.rs`.

use prost::Message;
use reqwest::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use serde_json::{json, Value};

use cashier::chain::node::Node;
use cashier::chain::{txid_of, Address, Network, OutPoint, Output};
use cashier::jpp::bip70;

use crate::helpers::{invoice_outputs, Backend, TestApp, TestWallet};
use crate::on_both_backends;

on_both_backends!(
    get_is_negotiated_by_accept,
    an_electron_cash_payment_is_acknowledged_and_its_own_broadcast_tolerated,
    refusals_are_in_each_dialects_words,
    fetches_of_invoices_not_open_are_refused_in_words_both_clients_read,
    a_wallets_weighted_size_neither_raises_nor_lowers_the_size_verified,
);

const BIP70_REQUEST: &str = "application/bitcoincash-paymentrequest";

/// A fresh invoice, and a wallet with a coin that can pay it.
async fn invoice_and_wallet(app: &TestApp) -> (Value, TestWallet, (OutPoint, Output)) {
    let invoice = app.create_simple(4000).await;
    let wallet = TestWallet::new();
    let coin = wallet.fund(app, 20_000, None).await;
    (invoice, wallet, coin)
}

fn content_type(r: &reqwest::Response) -> String {
    r.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn get_with(app: &TestApp, path: &str, accept: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    request.send().await.expect("GET")
}

/// A POST as a wallet sends it: the exact Content-Type, extra headers, raw bytes.
async fn post_raw(
    app: &TestApp,
    url: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(url)
        .header(CONTENT_TYPE, content_type)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("POST")
}

/// A BIP70 Payment posted as a wallet posts it.
async fn post_bip70(app: &TestApp, url: &str, payment: &bip70::Payment) -> reqwest::Response {
    post_raw(
        app,
        url,
        "application/bitcoincash-payment",
        &[],
        payment.encode_to_vec(),
    )
    .await
}

/// A JSON body under a payment protocol's own content type.
async fn post_json(
    app: &TestApp,
    url: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> reqwest::Response {
    post_raw(
        app,
        url,
        content_type,
        headers,
        body.to_string().into_bytes(),
    )
    .await
}

async fn invoice_status(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("/api/jpp/invoices/{id}/")).await.1
}

/// A refusal's words as its readers get them, and how it carries them: "json" (`msg`, with
/// `message` the same), "form" (`msg=<text>`, percent-decoded as a form decoder does) or
/// "text".
async fn refusal_text(r: reqwest::Response) -> (&'static str, String) {
    let kind = content_type(&r);
    let body = r.text().await.unwrap();
    if kind.starts_with("application/json") {
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["msg"], v["message"], "{v}");
        ("json", v["msg"].as_str().unwrap_or_default().to_owned())
    } else if kind == "application/x-www-form-urlencoded" {
        let msg = form_field(&body, "msg").unwrap_or_else(|| panic!("no msg in {body:?}"));
        ("form", msg)
    } else {
        assert!(kind.starts_with("text/plain"), "{kind}");
        ("text", body)
    }
}

/// A field of a form body (`a=b&c=d`), `+` as a space and `%XX` decoded.
fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(&value.replace('+', " ")))
    })
}

async fn get_is_negotiated_by_accept(app: TestApp) {
    let invoice = app.create_simple(4000).await;
    let id = invoice["payment_id"].as_str().unwrap();
    let path = format!("/api/jpp/invoices/{id}/");
    for accept in [None, Some("*/*"), Some("application/json")] {
        let r = get_with(&app, &path, accept).await;
        assert_eq!(r.status(), 200, "{accept:?}");
        assert!(content_type(&r).starts_with("application/json"));
        assert_eq!(r.json::<Value>().await.unwrap()["payment_id"], id);
    }
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let r = get_with(&app, &format!("/i/{id}"), Some(browser)).await;
    assert_eq!(r.status(), 200);
    assert!(content_type(&r).starts_with("text/html"));
    assert!(r.text().await.unwrap().contains(id));

    let r = get_with(&app, &path, Some("application/payment-request")).await;
    assert_eq!(content_type(&r), "application/json");
    let v1: Value = r.json().await.unwrap();
    assert_eq!(v1["paymentId"], id);
    assert_eq!(v1["currency"], "BCH");
    assert_eq!(v1["network"], "regtest");
    assert_eq!(v1["requiredFeeRate"], 1.0);
    assert_eq!(v1["requiredFeePerByte"], 1.0);
    assert_eq!(v1["outputs"][0]["amount"], 4000);
    assert_eq!(
        v1["outputs"][0]["address"],
        invoice["outputs"][0]["address"]
    );
    assert_eq!(v1["paymentUrl"], invoice["payment_url"]);
    assert!(v1["time"].as_str().unwrap().ends_with('Z'));

    let r = get_with(&app, &path, Some("application/payment-options")).await;
    assert_eq!(content_type(&r), "application/json");
    let options: Value = r.json().await.unwrap();
    let option = &options["paymentOptions"][0];
    assert_eq!(option["chain"], "BCH");
    assert_eq!(option["estimatedAmount"], 4000);
    assert_eq!(option["decimals"], 8);

    let r = get_with(&app, &path, Some(BIP70_REQUEST)).await;
    assert_eq!(content_type(&r), BIP70_REQUEST, "exactly, with no charset");
    let request = bip70::PaymentRequest::decode(r.bytes().await.unwrap()).unwrap();
    assert_eq!(request.payment_details_version, Some(1));
    assert_eq!(request.pki_type.as_deref(), Some("none"));
    let details = bip70::PaymentDetails::decode(&request.serialized_payment_details[..]).unwrap();
    assert_eq!(details.network.as_deref(), Some("regtest"));
    assert_eq!(
        details.payment_url.as_deref(),
        invoice["payment_url"].as_str()
    );
    let wanted = invoice_outputs(&invoice);
    assert_eq!(details.outputs.len(), 1);
    assert_eq!(details.outputs[0].amount, Some(4000));
    assert_eq!(details.outputs[0].script, wanted[0].locking_bytecode);
    assert!(details.expires.unwrap() > details.time);

    // Only types it cannot serve: 406, saying which it can.
    let r = get_with(&app, &path, Some("image/png")).await;
    assert_eq!(r.status(), 406);
    assert!(r.text().await.unwrap().contains("application/json"));
    // A CORS preflight is answered, and every answer allows any origin.
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url(&path))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

/// What Electron Cash sends to any host but BitPay's (research §4.4, §6.1).
async fn an_electron_cash_payment_is_acknowledged_and_its_own_broadcast_tolerated(app: TestApp) {
    let (invoice, wallet, coin) = invoice_and_wallet(&app).await;
    let r = app
        .client
        .get(
            invoice["payment_uri"]
                .as_str()
                .unwrap()
                .split("?r=")
                .nth(1)
                .map(percent_decode)
                .unwrap(),
        )
        .header(ACCEPT, BIP70_REQUEST)
        .header(USER_AGENT, "Electron-Cash")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), BIP70_REQUEST);
    let request = bip70::PaymentRequest::decode(r.bytes().await.unwrap()).unwrap();
    let details = bip70::PaymentDetails::decode(&request.serialized_payment_details[..]).unwrap();
    let outputs: Vec<Output> = details
        .outputs
        .iter()
        .map(|o| Output {
            value: o.amount.unwrap(),
            token: None,
            locking_bytecode: o.script.clone(),
        })
        .collect();
    let raw = wallet.pay(&[coin], outputs);
    let refund = Address::parse(&wallet.address, Network::Regtest)
        .unwrap()
        .locking_bytecode();
    let payment = bip70::Payment {
        merchant_data: details.merchant_data.clone(),
        transactions: vec![raw.clone()],
        refund_to: vec![bip70::Output {
            amount: None,
            script: refund.clone(),
        }],
        memo: Some("Paid using Electron Cash".into()),
    };
    let r = post_raw(
        &app,
        details.payment_url.as_deref().unwrap(),
        "application/bitcoincash-payment",
        &[
            ("Accept", "application/bitcoincash-paymentack"),
            ("User-Agent", "Electron-Cash"),
        ],
        payment.encode_to_vec(),
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(content_type(&r), "application/bitcoincash-paymentack");
    let ack = bip70::PaymentAck::decode(r.bytes().await.unwrap()).unwrap();
    assert_eq!(ack.payment, payment, "the ACK echoes the Payment");
    assert!(ack.memo.is_some());
    // Electron Cash then broadcasts the transaction itself: the node already has it.
    let again = app.payments.node().broadcast(&raw).await;
    assert!(again.is_ok(), "{again:?}");
    let id = invoice["payment_id"].as_str().unwrap();
    let paid = invoice_status(&app, id).await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["payment"]["txid"], txid_of(&raw).to_hex());
    assert_eq!(paid["payment"]["memo"], "Paid using Electron Cash");
    assert_eq!(paid["payment"]["refund_to"][0]["address"], wallet.address);
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Paid, expired, a wrong content type, a bad transaction, a token invoice on BIP70, an
/// unknown invoice: each dialect answers in its wallets' words (research §7.4).
async fn refusals_are_in_each_dialects_words(app: TestApp) {
    let bitpay_error = |r: Value| r["msg"].as_str().unwrap_or_default().to_owned();
    // Paid, then another transaction.
    let (id, raw) = app.invoice_and_payment().await;
    app.pay(&id, &raw).await;
    let url = app.url(&format!("/api/jpp/invoices/{id}/"));
    let (other_invoice, wallet, coin) = invoice_and_wallet(&app).await;
    let other = wallet.pay(&[coin], invoice_outputs(&other_invoice));
    let v1 = json!({"currency": "BCH", "transactions": [hex::encode(&other)]});
    let r = post_json(&app, &url, "application/payment", &[], &v1).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        bitpay_error(body.clone()).starts_with("Invoice no longer accepting payments"),
        "{body}"
    );
    assert_eq!(body["msg"], body["message"]);
    let payment = bip70::Payment {
        transactions: vec![other.clone()],
        ..Default::default()
    };
    let r = post_bip70(&app, &url, &payment).await;
    assert_eq!(r.status(), 400);
    assert!(content_type(&r).starts_with("text/plain"));
    assert!(r
        .text()
        .await
        .unwrap()
        .starts_with("Invoice no longer accepting payments"));
    // The paying transaction again: the same success in every dialect.
    let same = bip70::Payment {
        transactions: vec![raw.clone()],
        ..Default::default()
    };
    let r = post_bip70(&app, &url, &same).await;
    assert_eq!(r.status(), 200);

    // Expired: the BitPay dialects refuse even the fetch (in words each client reads: see
    // `fetches_of_invoices_not_open_are_refused_in_words_both_clients_read`); BIP70 refuses
    // the payment.
    let expired = app.insert_expired_invoice(4000).await;
    let expired_path = format!("/api/jpp/invoices/{expired}/");
    for accept in ["application/payment-request", "application/payment-options"] {
        let r = get_with(&app, &expired_path, Some(accept)).await;
        assert_eq!(r.status(), 400, "{accept}");
        let (_, said) = refusal_text(r).await;
        assert!(
            said.starts_with("Invoice no longer accepting payments"),
            "{said}"
        );
    }
    let r = post_bip70(&app, &app.url(&expired_path), &payment).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("no longer accepting"));

    // A content type no dialect uses.
    let open = app.create_simple(4000).await;
    let open_url = open["payment_url"].as_str().unwrap().to_owned();
    let r = post_raw(&app, &open_url, "text/plain", &[], b"hello".to_vec()).await;
    assert_eq!(r.status(), 400);
    assert!(
        bitpay_error(r.json().await.unwrap()).starts_with("Unsupported Content-Type for payment")
    );
    // A bad transaction: not hex, not a transaction, not one transaction.
    for (body, phrase) in [
        (
            json!({"currency": "BCH", "transactions": ["zz"]}),
            "it must be a hexadecimal string",
        ),
        (
            json!({"currency": "BCH", "transactions": ["00ff"]}),
            "We were unable to parse the transaction",
        ),
        (
            json!({"currency": "BCH", "transactions": []}),
            "exactly one (1) transaction",
        ),
        (
            json!({"currency": "BCH"}),
            "We were unable to parse your payment",
        ),
    ] {
        let r = post_json(&app, &open_url, "application/payment", &[], &body).await;
        assert_eq!(r.status(), 400, "{body}");
        let msg = bitpay_error(r.json().await.unwrap());
        assert!(msg.contains(phrase), "{body}: {msg}");
    }
    let r = post_raw(
        &app,
        &open_url,
        "application/bitcoincash-payment",
        &[],
        vec![0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("We were unable to parse your payment"));
    // A v2 body for another chain.
    let r = post_raw(
        &app,
        &open_url,
        "application/payment-request",
        &[("x-paypro-version", "2")],
        br#"{"chain":"BTC"}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status(), 400);
    let (reader, said) = refusal_text(r).await;
    assert_eq!(reader, "form");
    assert!(said.contains("priced in BCH, not BTC"), "{said}");

    // A token invoice cannot be expressed in BIP70.
    let token = app
        .create(
            &json!({"outputs": [{"address": crate::helpers::ADDR_TOKEN, "amount": 1000,
            "token": {"category": "aa".repeat(32), "amount": 5}}]}),
        )
        .await;
    assert_eq!(token.0, 201, "{}", token.1);
    let token_path = format!(
        "/api/jpp/invoices/{}/",
        token.1["payment_id"].as_str().unwrap()
    );
    let r = get_with(&app, &token_path, Some(BIP70_REQUEST)).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("requires CashTokens"));
    // ...but the JSON dialects carry it.
    let r = get_with(&app, &token_path, Some("application/payment-request")).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["outputs"][0]["token"]["amount"],
        5
    );

    // Unknown invoices: 404 in each dialect's shape.
    let unknown = format!("/api/jpp/invoices/{}/", "0".repeat(32));
    let r = get_with(&app, &unknown, Some("application/payment-options")).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        refusal_text(r).await,
        (
            "text",
            "This invoice was not found or has been archived".to_owned()
        )
    );
    let r = post_bip70(&app, &app.url(&unknown), &payment).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.text().await.unwrap(),
        "This invoice was not found or has been archived"
    );
}

/// The fetches of BitPay's dialects refuse every invoice that is not open (paid, expired,
/// cancelled), as BitPay's spec says, and write the refusal so both wallets that make them
/// read it: BitPay's client (superagent) reads `msg` from a JSON or form body, Paytaca
/// (axios) shows the body only if it did not parse as JSON. The v2 fetches answer a form
/// body, `msg=<text>`; the v1 fetch plain text (BWC v1 reads only the status). Nothing about
/// the invoice changes, and the JSON invoice still shows it.
async fn fetches_of_invoices_not_open_are_refused_in_words_both_clients_read(app: TestApp) {
    let (paid, raw) = app.invoice_and_payment().await;
    app.pay(&paid, &raw).await;
    let expired = app.insert_expired_invoice(4000).await;
    let cancelled = app.cancelled_invoice(4000).await;

    for (status, id) in [
        ("paid", &paid),
        ("expired", &expired),
        ("cancelled", &cancelled),
    ] {
        let path = format!("/api/jpp/invoices/{id}/");
        let (_, before) = app.get_json(&path).await;
        assert_eq!(before["status"], status);
        let words = format!("Invoice no longer accepting payments (the invoice is {status})");
        let v2 = [("X-Paypro-Version", "2")];
        let options = app
            .client
            .get(app.url(&path))
            .header(ACCEPT, "application/payment-options")
            .header("X-Paypro-Version", "2")
            .send()
            .await
            .unwrap();
        let request = post_json(
            &app,
            &app.url(&path),
            "application/payment-request",
            &v2,
            &json!({"chain": "BCH", "currency": "BCH"}),
        )
        .await;
        for (step, r) in [("options", options), ("request", request)] {
            assert_eq!(r.status(), 400, "{status} {step}");
            let kind = content_type(&r);
            let body = r.text().await.unwrap();
            assert_eq!(kind, "application/x-www-form-urlencoded", "{status} {step}");
            // BWC: `msg`, which it maps to "invoice expired" by BitPay's phrase.
            assert_eq!(form_field(&body, "msg").as_deref(), Some(words.as_str()));
            // Paytaca: not JSON, so axios leaves it a string, which it shows.
            assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
            assert_eq!(body, format!("msg={words}"));
        }
        let r = get_with(&app, &path, Some("application/payment-request")).await;
        assert_eq!(r.status(), 400, "{status} v1");
        assert_eq!(refusal_text(r).await, ("text", words.clone()));
        // The JSON invoice is the invoice, whatever its state.
        let (code, after) = app.get_json(&path).await;
        assert_eq!(
            (code, &after),
            (200, &before),
            "{status}: a refused fetch changed it"
        );
    }
    // No payment came of them (the sweeper may have announced the expiry meanwhile).
    assert_eq!(app.events(&format!("invoice:{paid}")).await.len(), 1);
    for id in [&expired, &cancelled] {
        let events = app.events(&format!("invoice:{id}")).await;
        assert!(
            events.iter().all(|(_, kind, _)| kind != "payment_received"),
            "{events:?}"
        );
    }
    // Unknown: 404, which BWC reads by its status; the words for Paytaca.
    let unknown = format!("/api/jpp/invoices/{}/", "0".repeat(32));
    let r = post_json(
        &app,
        &app.url(&unknown),
        "application/payment-request",
        &[("X-Paypro-Version", "2")],
        &json!({"chain": "BCH"}),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        refusal_text(r).await,
        (
            "text",
            "This invoice was not found or has been archived".to_owned()
        )
    );
}

/// Verification judges an unsigned transaction's fee at the smallest size it can have signed
/// (Schnorr P2PKH inputs), whatever `weightedSize` the wallet sends: BitPay means the signed
/// size by it, which a wallet estimates (Paytaca sends the unsigned size, BWC its ECDSA-signed
/// size). A large claim must not refuse what the pay step accepts; a small one must not pass
/// what no signature can make pay enough.
async fn a_wallets_weighted_size_neither_raises_nor_lowers_the_size_verified(app: TestApp) {
    use cashier::chain::sighash::SignWith;
    let wallet = TestWallet::new();
    let unsigned = |raw: &[u8]| {
        let mut tx = cashier::chain::Tx::decode(raw).unwrap();
        for input in &mut tx.inputs {
            input.script_sig.clear();
        }
        tx.serialize()
    };
    let verify = |url: String, v2: bool, tx: Vec<u8>, weighted: usize| {
        let app = &app;
        async move {
            let (media, body) = if v2 {
                (
                    "application/payment-verification",
                    json!({"chain": "BCH", "currency": "BCH",
                           "transactions": [{"tx": hex::encode(&tx), "weightedSize": weighted}]}),
                )
            } else {
                (
                    "application/verify-payment",
                    json!({"currency": "BCH", "unsignedTransaction": hex::encode(&tx),
                           "weightedSize": weighted}),
                )
            };
            let headers: &[(&str, &str)] = if v2 {
                &[("x-paypro-version", "2")]
            } else {
                &[]
            };
            let r = post_json(app, &url, media, headers, &body).await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    for v2 in [false, true] {
        // Exactly 1 sat/byte, Schnorr-signed: its wallet may claim the ECDSA size, or more.
        let (invoice, coin) = (
            app.create_simple(4000).await,
            wallet.fund(&app, 20_000, None).await,
        );
        let url = invoice["payment_url"].as_str().unwrap().to_owned();
        let raw = wallet.pay_with(&[coin], invoice_outputs(&invoice), 1000, SignWith::SCHNORR);
        let bare = unsigned(&raw);
        for weighted in [bare.len(), bare.len() + 107, 10_000] {
            let (status, body) = verify(url.clone(), v2, bare.clone(), weighted).await;
            assert_eq!(status, 200, "v2 {v2}, weightedSize {weighted}: {body}");
        }
        let pay = if v2 {
            json!({"chain": "BCH", "currency": "BCH", "transactions": [{"tx": hex::encode(&raw)}]})
        } else {
            json!({"currency": "BCH", "transactions": [hex::encode(&raw)]})
        };
        let r = post_json(&app, &url, "application/payment", &[], &pay).await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);

        // 10% short of the rate even at the Schnorr size: refused, whatever size is claimed.
        let (invoice, coin) = (
            app.create_simple(4000).await,
            wallet.fund(&app, 20_000, None).await,
        );
        let url = invoice["payment_url"].as_str().unwrap().to_owned();
        let raw = wallet.pay_with(&[coin], invoice_outputs(&invoice), 900, SignWith::SCHNORR);
        let bare = unsigned(&raw);
        for weighted in [1, bare.len(), raw.len() * 9 / 10] {
            let (status, body) = verify(url.clone(), v2, bare.clone(), weighted).await;
            assert_eq!(status, 400, "v2 {v2}, weightedSize {weighted}: {body}");
            assert_eq!(body["code"], "fee_too_low", "{body}");
        }
        let id = invoice["payment_id"].as_str().unwrap();
        assert_eq!(invoice_status(&app, id).await["status"], "open");
    }
}

/// BitPay's own client, bitcore-wallet-client (tests/compat/bwc.js, `refusals`), fetching
/// invoices the server refuses: it must hand the wallet BitPay's "invoice expired" error for
/// a paid, expired and cancelled invoice, and "not available" for an unknown one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bwc_reads_every_fetch_refusal() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let compat = format!("{}/tests/compat", env!("CARGO_MANIFEST_DIR"));
    assert!(
        std::path::Path::new(&format!("{compat}/node_modules/bitcore-wallet-client")).is_dir(),
        "bitcore-wallet-client is not installed: run ./scripts/test, or `npm ci` in tests/compat"
    );
    let (paid, raw) = app.invoice_and_payment().await;
    app.pay(&paid, &raw).await;
    let expired = app.insert_expired_invoice(4000).await;
    let cancelled = app.cancelled_invoice(4000).await;
    let unknown = "0".repeat(32);

    let mut cmd = std::process::Command::new("node");
    cmd.args(["bwc.js", &app.base, &app.key, "refusals"])
        .args([&paid, &expired, &cancelled, &unknown])
        .current_dir(&compat);
    let run = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    println!("--- bwc.js refusals ---\n{stdout}{stderr}--- end ---");
    assert!(run.status.success(), "{stdout}{stderr}");
    assert!(stdout.lines().any(|l| l == "DONE"), "{stdout}");
    let said = |id: &str, step: &str| {
        let tag = format!("REFUSED {id} {step} ");
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(tag.as_str()))
            .unwrap_or_else(|| panic!("no `{tag}` line:\n{stdout}"))
            .to_owned()
    };
    for id in [&paid, &expired, &cancelled] {
        for step in ["options", "request"] {
            assert!(
                said(id, step).starts_with("bwc.ErrorINVOICE_EXPIRED "),
                "{id} {step}: {}",
                said(id, step)
            );
        }
        // v1 hands on the HTTP error: the status is what it reads.
        assert!(said(id, "v1").contains("Bad Request"), "{}", said(id, "v1"));
    }
    for step in ["options", "request"] {
        assert!(
            said(&unknown, step).starts_with("bwc.ErrorINVOICE_NOT_AVAILABLE "),
            "{}",
            said(&unknown, step)
        );
    }
    // Nothing changed.
    for (id, status) in [
        (&paid, "paid"),
        (&expired, "expired"),
        (&cancelled, "cancelled"),
    ] {
        let (_, now) = app.get_json(&format!("/api/jpp/invoices/{id}/")).await;
        assert_eq!(now["status"], status);
    }
    assert_eq!(app.events(&format!("invoice:{paid}")).await.len(), 1);
}

mod signing {
    use super::*;
    use bitcoin::hashes::{hash160, Hash};
    use bitcoin::secp256k1::{ecdsa::Signature, Message as Digest, PublicKey, Secp256k1};
    use sha2::Digest as _;

    /// With `--signing-key`, every BitPay-dialect answer carries a signature of its exact
    /// bytes by the key published at /signingKeys/paymentProtocol.json.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_are_signed_by_the_published_key() {
        let app = TestApp::spawn_with(Backend::Sqlite, &["--signing-key", &"42".repeat(32)]).await;
        let keys = app.get_json("/signingKeys/paymentProtocol.json").await;
        assert_eq!(keys.0, 200);
        assert_eq!(keys.1["validDomains"][0], "127.0.0.1");
        let public =
            PublicKey::from_slice(&hex::decode(keys.1["publicKeys"][0].as_str().unwrap()).unwrap())
                .unwrap();
        let invoice = app.create_simple(4000).await;
        let path = format!(
            "/api/jpp/invoices/{}/",
            invoice["payment_id"].as_str().unwrap()
        );
        for accept in ["application/payment-options", "application/payment-request"] {
            let r = get_with(&app, &path, Some(accept)).await;
            let header = |name: &str| r.headers()[name].to_str().unwrap().to_owned();
            let (digest, signature, identity) =
                (header("digest"), header("signature"), header("x-identity"));
            assert_eq!(header("x-signature-type"), "ecc");
            let body = r.bytes().await.unwrap();
            let hash: [u8; 32] = sha2::Sha256::digest(&body).into();
            assert_eq!(digest, format!("SHA-256={}", hex::encode(hash)));
            let signature = Signature::from_compact(&hex::decode(&signature).unwrap()).unwrap();
            Secp256k1::verification_only()
                .verify_ecdsa(&Digest::from_digest(hash), &signature, &public)
                .expect("the signature verifies with the published key");
            let mut payload = vec![0x6f];
            payload.extend(hash160::Hash::hash(&public.serialize()).to_byte_array());
            assert_eq!(identity, bitcoin::base58::encode_check(&payload));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_a_key_nothing_is_signed_and_no_key_is_published() {
        let app = TestApp::spawn(Backend::Sqlite).await;
        assert_eq!(
            app.get_json("/signingKeys/paymentProtocol.json").await.0,
            404
        );
        let invoice = app.create_simple(4000).await;
        let path = format!(
            "/api/jpp/invoices/{}/",
            invoice["payment_id"].as_str().unwrap()
        );
        let r = get_with(&app, &path, Some("application/payment-options")).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("signature").is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_malformed_key_stops_the_start_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let db = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("c.sqlite").display()
        );
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cashier"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &db,
                "--signing-key",
                "nothex",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--signing-key"), "{stderr}");
        assert!(
            !stderr.contains("nothex"),
            "the key itself is never echoed: {stderr}"
        );
    }
}
