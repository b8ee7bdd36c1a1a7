//! Payments that cannot be accepted, sent to cost the server work: thousands of made-up inputs,
//! a real first input followed by made-up ones, garbage and odd-length hex, a megabyte body.
//! Each is refused with the code the pay flow gives it, and nothing changes: the invoice stays
//! open, no event, no payment row, nothing broadcast, no coin spent.
//!
//! How fast the refusals are is measured by the benchmark (B6), never asserted here.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use cashier::chain::{Input, OutPoint, Output, Tx, Txid, MAX_TX_SIZE};
use cashier::store::dev_chain;

use crate::helpers::{invoice_outputs, TestApp, TestWallet};
use crate::on_both_backends;

on_both_backends!(
    thousands_of_fake_inputs_are_refused_and_change_nothing,
    a_real_first_input_then_fake_ones_is_refused_and_spends_nothing,
    garbage_and_odd_length_hex_are_refused,
    a_megabyte_body_is_refused_with_413,
    coin_lookups_keep_order_and_stop_at_the_first_missing,
);

/// As many made-up inputs as fit in the largest payment with one output (41 bytes each).
const FAKE_INPUTS: usize = 2_400;

fn random_outpoint() -> OutPoint {
    OutPoint {
        txid: Txid(rand::random()),
        vout: rand::random::<u32>() % 4,
    }
}

/// An unsigned input spending `prevout`.
fn input(prevout: OutPoint) -> Input {
    Input {
        prevout,
        script_sig: Vec::new(),
        sequence: u32::MAX,
    }
}

/// A transaction paying `outputs` from `real` (if any) and then made-up coins, `FAKE_INPUTS`
/// inputs in all.
fn fake_inputs_tx(real: Option<OutPoint>, outputs: Vec<Output>) -> Vec<u8> {
    let inputs = real
        .into_iter()
        .chain(std::iter::repeat_with(random_outpoint))
        .take(FAKE_INPUTS)
        .map(input)
        .collect();
    let raw = Tx {
        version: 2,
        inputs,
        outputs,
        lock_time: 0,
    }
    .serialize();
    assert!(raw.len() <= MAX_TX_SIZE, "{} bytes", raw.len());
    assert!(raw.len() > MAX_TX_SIZE * 9 / 10, "{} bytes", raw.len());
    raw
}

/// Posts `body` to the invoice's watchtower `endpoint` (`pay` or `verify`).
async fn post(app: &TestApp, id: &str, endpoint: &str, body: &Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url(&format!("/jpp/invoices/{id}/{endpoint}/")))
        .json(body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("JSON body"))
}

fn broadcasts(app: &TestApp) -> u64 {
    app.payments
        .node()
        .dev()
        .expect("the tests run on the dev chain")
        .broadcast_calls()
}

/// The invoice is still open, with no event and no payment, and nothing was broadcast since
/// `broadcasts_before`.
async fn nothing_changed(app: &TestApp, id: &str, broadcasts_before: u64) {
    let (status, invoice) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
    assert_eq!(status, 200, "{invoice}");
    assert_eq!(invoice["status"], "open", "{invoice}");
    assert!(app.events(&format!("invoice:{id}")).await.is_empty());
    let owned = id.to_owned();
    let payment = app
        .store
        .read(move |c| cashier::store::payments::for_invoice(c, &owned))
        .await
        .expect("payment lookup");
    assert!(payment.is_none(), "{payment:?}");
    assert_eq!(broadcasts(app), broadcasts_before);
}

/// Both endpoints refuse `raw` with `status` and `code`.
async fn refused_by_pay_and_verify(app: &TestApp, id: &str, raw: &[u8], status: u16, code: &str) {
    let body = json!({"raw_tx_hex": hex::encode(raw)});
    let (got, answer) = post(app, id, "verify", &body).await;
    assert_eq!((got, &answer["code"]), (status, &json!(code)), "{answer}");
    assert_eq!(answer["valid"], false, "{answer}");
    let (got, answer) = post(app, id, "pay", &body).await;
    assert_eq!((got, &answer["code"]), (status, &json!(code)), "{answer}");
}

async fn thousands_of_fake_inputs_are_refused_and_change_nothing(app: TestApp) {
    let invoice = app.create_simple(4000).await;
    let id = invoice["payment_id"].as_str().expect("id");
    let before = broadcasts(&app);
    let raw = fake_inputs_tx(None, invoice_outputs(&invoice));
    refused_by_pay_and_verify(&app, id, &raw, 422, "inputs_missing").await;
    // Sent again, the same answer: the refusal left nothing behind that changes it.
    refused_by_pay_and_verify(&app, id, &raw, 422, "inputs_missing").await;
    nothing_changed(&app, id, before).await;
}

async fn a_real_first_input_then_fake_ones_is_refused_and_spends_nothing(app: TestApp) {
    let invoice = app.create_simple(4000).await;
    let id = invoice["payment_id"].as_str().expect("id");
    let wallet = TestWallet::new();
    let coin = wallet.fund(&app, 20_000, None).await;
    let before = broadcasts(&app);
    let raw = fake_inputs_tx(Some(coin.0), invoice_outputs(&invoice));
    refused_by_pay_and_verify(&app, id, &raw, 422, "inputs_missing").await;
    nothing_changed(&app, id, before).await;

    // The real coin is untouched: it still pays the invoice.
    app.pay(id, &wallet.pay(&[coin], invoice_outputs(&invoice)))
        .await;
    let (_, paid) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
    assert_eq!(paid["status"], "paid", "{paid}");
}

async fn garbage_and_odd_length_hex_are_refused(app: TestApp) {
    let invoice = app.create_simple(4000).await;
    let id = invoice["payment_id"].as_str().expect("id");
    let before = broadcasts(&app);
    let cases = [
        ("garbage", json!({"raw_tx_hex": "this is not hex at all"})),
        ("odd length", json!({"raw_tx_hex": "0a1"})),
        (
            "odd length, long",
            json!({"raw_tx_hex": "ab".repeat(40_000) + "c"}),
        ),
        ("not a string", json!({"raw_tx_hex": 12})),
        (
            "hex of no transaction",
            json!({"raw_tx_hex": "00".repeat(200)}),
        ),
    ];
    for (name, body) in &cases {
        for endpoint in ["verify", "pay"] {
            let (status, answer) = post(&app, id, endpoint, body).await;
            assert_eq!(status, 400, "{name} to {endpoint}/: {answer}");
            assert_eq!(
                answer["code"], "invalid_transaction",
                "{name} to {endpoint}/: {answer}"
            );
        }
    }
    nothing_changed(&app, id, before).await;
}

/// Sends `head` and then `body`, reading the answer while the body goes out (the server may
/// answer before it has read it all); returns the answer's head and body text.
async fn raw_exchange(app: &TestApp, head: String, body: Vec<u8>) -> String {
    let stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let sending = tokio::spawn(async move {
        // The server may close once it has answered: a failed write is expected then.
        if writer.write_all(head.as_bytes()).await.is_ok() {
            let _ = writer.write_all(&body).await;
        }
        writer
    });
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains('}') {
        let n = reader.read(&mut chunk).await.expect("read the answer");
        assert!(
            n > 0,
            "closed before an answer: {}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&chunk[..n]);
    }
    // Keeps the write half until the answer is in, so the connection is not half-closed early.
    drop(sending.await);
    String::from_utf8_lossy(&response).into_owned()
}

async fn a_megabyte_body_is_refused_with_413(app: TestApp) {
    let invoice = app.create_simple(4000).await;
    let id = invoice["payment_id"].as_str().expect("id");
    let before = broadcasts(&app);
    // A JSON body of 1 MB whose hex would otherwise be read: the limit is met first.
    let body = format!("{{\"raw_tx_hex\": \"{}\"}}", "ab".repeat(512 * 1024)).into_bytes();
    for endpoint in ["pay", "verify"] {
        let head = format!(
            "POST /jpp/invoices/{id}/{endpoint}/ HTTP/1.1\r\nHost: test\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let response = raw_exchange(&app, head, body.clone()).await;
        assert!(
            response.starts_with("HTTP/1.1 413"),
            "{endpoint}/: {response}"
        );
        assert!(
            response.contains("body_too_large"),
            "{endpoint}/: {response}"
        );
    }
    nothing_changed(&app, id, before).await;
}

/// The store's batched lookups answer exactly what one query per outpoint answered: in the
/// order asked, duplicates included, spent coins found (with their spender) and unknown ones
/// `None`; the dev chain's node answer hides spent ones; the lookup a refusal uses ends at the
/// first missing coin.
async fn coin_lookups_keep_order_and_stop_at_the_first_missing(app: TestApp) {
    let invoice = app.create_simple(4000).await;
    let id = invoice["payment_id"].as_str().expect("id").to_owned();
    let wallet = TestWallet::new();
    let mut coins = Vec::new();
    for amount in [10_000, 20_000, 30_000] {
        coins.push(wallet.fund(&app, amount, None).await);
    }
    let paying = wallet.pay(&[coins[2].clone()], invoice_outputs(&invoice));
    app.pay(&id, &paying).await;
    let spent = coins[2].0;
    // The payment's change, its second output.
    let change = OutPoint {
        txid: cashier::chain::txid_of(&paying),
        vout: 1,
    };
    let change_value = Tx::parse(&paying).expect("payment").outputs[1].value as i64;
    let unknown = random_outpoint();
    let no_such_vout = OutPoint {
        txid: coins[0].0.txid,
        vout: u32::MAX,
    };

    // Past the size a lookup answers in one query for sure, with the answers known.
    let mut asked = vec![
        coins[1].0,
        spent,
        coins[0].0,
        unknown,
        change,
        coins[1].0,
        no_such_vout,
    ];
    asked.extend(std::iter::repeat_with(random_outpoint).take(20));
    asked.push(coins[0].0);

    let query = asked.clone();
    let rows = app
        .store
        .read(move |c| dev_chain::coins(c, &query))
        .await
        .expect("coins");
    let summary: Vec<Option<(i64, bool)>> = rows
        .iter()
        .map(|r| r.as_ref().map(|r| (r.value, r.spent_by.is_some())))
        .collect();
    let mut expected = vec![
        Some((20_000, false)),
        Some((30_000, true)),
        Some((10_000, false)),
        None,
        Some((change_value, false)),
        Some((20_000, false)),
        None,
    ];
    expected.extend(std::iter::repeat_n(None, 20));
    expected.push(Some((10_000, false)));
    assert_eq!(summary, expected);
    assert_eq!(
        rows[1].as_ref().and_then(|r| r.spent_by.clone()),
        Some(cashier::chain::txid_of(&paying).to_hex())
    );
    // The change is in the mempool, the faucet coins in blocks.
    assert_eq!(rows[4].as_ref().map(|r| r.height), Some(None));
    assert!(rows[0].as_ref().is_some_and(|r| r.height.is_some()));

    // What the node answers: spent coins are gone.
    let dev = app.payments.node().dev().expect("dev chain").clone();
    let node_coins = dev.coins(&asked).await.expect("node coins");
    let values: Vec<Option<u64>> = node_coins
        .iter()
        .map(|c| c.as_ref().map(|c| c.output.value))
        .collect();
    let expected_values: Vec<Option<u64>> = expected
        .iter()
        .map(|e| e.filter(|(_, spent)| !spent).map(|(v, _)| v as u64))
        .collect();
    assert_eq!(values, expected_values);
    assert_eq!(node_coins[4].as_ref().map(|c| c.confirmations), Some(0));
    assert!(node_coins[0].as_ref().is_some_and(|c| c.confirmations >= 1));

    // Ending at the first missing coin: the spent one before it is still answered.
    let query = asked.clone();
    let until = app
        .store
        .read(move |c| dev_chain::coins_until_missing(c, &query))
        .await
        .expect("coins");
    assert_eq!(until.len(), 4);
    assert!(until[3].is_none());
    assert!(until[1].as_ref().is_some_and(|r| r.spent_by.is_some()));
    // A made-up first coin ends it at once; with none missing, every coin is answered.
    for (query, len) in [
        ([vec![unknown], asked.clone()].concat(), 1),
        (vec![coins[0].0; 40], 40),
        (vec![], 0),
    ] {
        let rows = app
            .store
            .read(move |c| dev_chain::coins_until_missing(c, &query))
            .await
            .expect("coins");
        assert_eq!(rows.len(), len);
    }
}
