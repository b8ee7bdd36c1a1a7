//! The chain watcher on the dev chain: confirmations by block hash, reorgs that walk them back
//! or take the transaction away, double spends under each policy, and the rehearsal endpoints'
//! refusals. Each test pays a real signed transaction and waits for the events on the
//! invoice's socket.

use serde_json::{json, Value};

use cashier::chain::txid_of;

use crate::helpers::{connect, next_text, Socket, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_payment_is_confirmed_after_its_confirmations,
    paid_stays_final_at_zero_confirmations_and_counts_them,
    a_reorg_walks_a_confirmation_back,
    a_reorg_that_drops_the_transaction_invalidates_the_invoice,
    a_mined_double_spend_invalidates_and_nothing_else_moves,
    a_double_spend_proof_invalidates_until_ours_is_mined,
    rehearsals_refuse_what_cannot_happen_and_change_nothing,
    a_wallet_paying_the_address_pays_the_invoice,
    partial_payments_add_up_and_overpayment_is_recorded,
    money_after_expiry_or_cancel_is_paid_late,
    a_payment_first_seen_in_a_block_counts,
    a_payment_to_another_address_or_of_the_wrong_kind_moves_nothing,
);

on_both_backends!(["--double-spend-policy", "flag"] => a_flagged_double_spend_keeps_the_invoice_paid);

/// An invoice of 4000 sats waiting for `confirmations`, paid by a fresh wallet, with a socket
/// that has heard the `payment_received`: (id, raw transaction, socket).
async fn paid_invoice(app: &TestApp, confirmations: u32) -> (String, Vec<u8>, Socket) {
    let (status, invoice) = app
        .create(&json!({
            "outputs": [{"address": crate::helpers::ADDR, "amount": 4000}],
            "confirmations": confirmations,
        }))
        .await;
    assert_eq!(status, 201, "{invoice}");
    assert_eq!(invoice["confirmations_required"], confirmations);
    let id = invoice["payment_id"].as_str().unwrap().to_owned();
    let wallet = crate::helpers::TestWallet::new();
    let coin = wallet.fund(app, 20_000, None).await;
    let raw = wallet.pay(&[coin], crate::helpers::invoice_outputs(&invoice));
    let mut socket = connect(app, &format!("/ws/jpp/invoice/{id}/")).await;
    app.pay(&id, &raw).await;
    assert_eq!(next_text(&mut socket).await["type"], "payment_received");
    (id, raw, socket)
}

/// An invoice of `amount` sats to an address of its own (as an xpub store gives), with a
/// socket on it: (id, address, invoice JSON, socket).
async fn fresh_invoice(
    app: &TestApp,
    amount: u64,
    extra: Value,
) -> (String, String, Value, Socket) {
    let address = crate::helpers::TestWallet::new().address;
    let mut body = json!({"outputs": [{"address": address, "amount": amount}]});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let (status, invoice) = app.create(&body).await;
    assert_eq!(status, 201, "{invoice}");
    let id = invoice["payment_id"].as_str().unwrap().to_owned();
    let socket = connect(app, &format!("/ws/jpp/invoice/{id}/")).await;
    (id, address, invoice, socket)
}

/// A wallet's signed transaction paying `sats` to `address` (and change to itself), handed to
/// the node directly: the raw transaction.
pub async fn send_to(app: &TestApp, address: &str, sats: u64) -> Vec<u8> {
    let wallet = crate::helpers::TestWallet::new();
    let coin = wallet.fund(app, sats + 10_000, None).await;
    let out = crate::helpers::output_of(&json!({"address": address, "amount": sats}));
    let raw = wallet.pay(&[coin], vec![out]);
    let (status, body) = app
        .dev("/dev/broadcast", json!({"raw_tx_hex": hex::encode(&raw)}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["txid"], txid_of(&raw).to_hex());
    raw
}

/// Kinds of the events stored for invoice `id`, oldest first.
async fn kinds(app: &TestApp, id: &str) -> Vec<String> {
    app.events(&format!("invoice:{id}"))
        .await
        .into_iter()
        .map(|(_, kind, _)| kind)
        .collect()
}

async fn a_payment_is_confirmed_after_its_confirmations(app: TestApp) {
    let (id, raw, mut socket) = paid_invoice(&app, 2).await;
    app.mine(1).await;
    let one = app.invoice_when(&id, |i| i["confirmations"] == 1).await;
    assert_eq!(
        one["status"], "paid",
        "one of two confirmations is not enough"
    );
    let block = one["payment"]["block_hash"].as_str().unwrap().to_owned();

    app.mine(1).await;
    let event = next_text(&mut socket).await;
    assert_eq!(event["type"], "payment_confirmed");
    assert_eq!(event["confirmations"], 2);
    assert_eq!(event["txid"], txid_of(&raw).to_hex());
    assert_eq!(
        event["block_hash"],
        block.as_str(),
        "counted from the block it is in"
    );
    assert_eq!(event["block_height"], one["payment"]["block_height"]);
    assert_eq!(event["invoice"]["status"], "confirmed");
    assert!(event["invoice"].get("merchant_data").is_none());
    let (_, now) = app.get_json(&format!("/api/jpp/invoices/{id}")).await;
    assert_eq!(now["status"], "confirmed");

    // More blocks count on in the view but move nothing: one event per transition.
    app.mine(1).await;
    app.invoice_when(&id, |i| i["confirmations"] == 3).await;
    assert_eq!(
        kinds(&app, &id).await,
        ["payment_received", "payment_confirmed"]
    );
}

async fn paid_stays_final_at_zero_confirmations_and_counts_them(app: TestApp) {
    let (id, _, _socket) = paid_invoice(&app, 0).await;
    let (_, paid) = app.get_json(&format!("/api/jpp/invoices/{id}")).await;
    assert_eq!(paid["confirmations"], 0, "in the mempool");
    assert!(paid["payment"]["block_hash"].is_null());
    app.mine(2).await;
    let mined = app.invoice_when(&id, |i| i["confirmations"] == 2).await;
    assert_eq!(
        mined["status"], "paid",
        "0 confirmations asked: paid is final"
    );
    assert_eq!(kinds(&app, &id).await, ["payment_received"]);
}

async fn a_reorg_walks_a_confirmation_back(app: TestApp) {
    let (_id, raw, mut socket) = paid_invoice(&app, 2).await;
    app.mine(2).await;
    let first = next_text(&mut socket).await;
    assert_eq!(first["type"], "payment_confirmed");

    // The two blocks are replaced by three; the transaction lands in the last: one
    // confirmation, in a block of another hash.
    let (status, body) = app.dev("/dev/reorg", json!({"depth": 2})).await;
    assert_eq!(status, 200, "{body}");
    let back = next_text(&mut socket).await;
    assert_eq!(back["type"], "payment_unconfirmed");
    assert_eq!(back["reason"], "reorg");
    assert_eq!(back["confirmations"], 1);
    assert_eq!(back["invoice"]["status"], "paid");
    assert_ne!(back["block_hash"], first["block_hash"]);

    app.mine(1).await;
    let again = next_text(&mut socket).await;
    assert_eq!(again["type"], "payment_confirmed");
    assert_eq!(again["confirmations"], 2);
    assert_eq!(again["txid"], txid_of(&raw).to_hex());
    assert_eq!(again["block_hash"], back["block_hash"]);
}

async fn a_reorg_that_drops_the_transaction_invalidates_the_invoice(app: TestApp) {
    let (id, raw, mut socket) = paid_invoice(&app, 1).await;
    app.mine(1).await;
    assert_eq!(next_text(&mut socket).await["type"], "payment_confirmed");
    let txid = txid_of(&raw).to_hex();
    let (status, body) = app
        .dev("/dev/reorg", json!({"depth": 1, "drop": txid}))
        .await;
    assert_eq!(status, 200, "{body}");
    let event = next_text(&mut socket).await;
    assert_eq!(event["type"], "payment_invalidated");
    assert_eq!(event["reason"], "dropped");
    assert_eq!(event["invoice"]["status"], "invalid");
    let (_, now) = app.get_json(&format!("/api/jpp/invoices/{id}")).await;
    assert_eq!(now["status"], "invalid");
    assert_eq!(now["invalid_reason"], "dropped");
    assert_eq!(now["confirmations"], 0);
}

async fn a_mined_double_spend_invalidates_and_nothing_else_moves(app: TestApp) {
    let (_id, raw, mut socket) = paid_invoice(&app, 1).await;
    // A bystander: paid and confirmed in the same block, untouched by the reorg's conflict.
    let (other, other_raw, mut other_socket) = paid_invoice(&app, 1).await;
    app.mine(1).await;
    assert_eq!(next_text(&mut socket).await["type"], "payment_confirmed");
    assert_eq!(
        next_text(&mut other_socket).await["type"],
        "payment_confirmed"
    );

    let (status, body) = app
        .dev(
            "/dev/reorg",
            json!({"depth": 1, "replace": txid_of(&raw).to_hex()}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let event = next_text(&mut socket).await;
    assert_eq!(event["type"], "payment_invalidated");
    assert_eq!(event["reason"], "double_spend_mined");
    assert_eq!(event["invoice"]["status"], "invalid");

    // The bystander was re-mined in the new chain: still confirmed, no event beyond its own.
    let bystander = app
        .invoice_when(&other, |i| {
            i["payment"]["block_height"].as_i64() > Some(0) && i["confirmations"] == 1
        })
        .await;
    assert_eq!(bystander["status"], "confirmed");
    assert_eq!(
        bystander["payment"]["txid"],
        txid_of(&other_raw).to_hex().as_str()
    );
    assert_eq!(
        kinds(&app, &other).await,
        ["payment_received", "payment_confirmed"]
    );
}

async fn a_double_spend_proof_invalidates_until_ours_is_mined(app: TestApp) {
    let (id, raw, mut socket) = paid_invoice(&app, 0).await;
    let txid = txid_of(&raw).to_hex();
    let (status, proof) = app.dev("/dev/double-spend", json!({"txid": txid})).await;
    assert_eq!(status, 200, "{proof}");
    let detected = next_text(&mut socket).await;
    assert_eq!(detected["type"], "double_spend_detected");
    assert_eq!(detected["proof_id"], proof["proof_id"]);
    assert_eq!(detected["policy"], "invalidate");
    let invalid = next_text(&mut socket).await;
    assert_eq!(invalid["type"], "payment_invalidated");
    assert_eq!(invalid["reason"], "double_spend_proof");
    let (_, now) = app.get_json(&format!("/api/jpp/invoices/{id}")).await;
    assert_eq!(now["status"], "invalid");
    assert_eq!(now["payment"]["double_spend_proof"], proof["proof_id"]);

    // Asking again makes the same proof and no new event.
    let (_, again) = app.dev("/dev/double-spend", json!({"txid": txid})).await;
    assert_eq!(again["proof_id"], proof["proof_id"]);

    // The first seen wins the block after all: confirmed.
    app.mine(1).await;
    let confirmed = next_text(&mut socket).await;
    assert_eq!(confirmed["type"], "payment_confirmed");
    assert_eq!(confirmed["invoice"]["status"], "confirmed");
    assert!(confirmed["invoice"].get("invalid_reason").is_none());
    assert_eq!(
        kinds(&app, &id).await,
        [
            "payment_received",
            "double_spend_detected",
            "payment_invalidated",
            "payment_confirmed"
        ]
    );
}

async fn a_flagged_double_spend_keeps_the_invoice_paid(app: TestApp) {
    let (id, raw, mut socket) = paid_invoice(&app, 0).await;
    let (status, proof) = app
        .dev("/dev/double-spend", json!({"txid": txid_of(&raw).to_hex()}))
        .await;
    assert_eq!(status, 200, "{proof}");
    let detected = next_text(&mut socket).await;
    assert_eq!(detected["type"], "double_spend_detected");
    assert_eq!(detected["policy"], "flag");
    assert_eq!(detected["invoice"]["status"], "paid");
    let (_, now) = app.get_json(&format!("/api/jpp/invoices/{id}")).await;
    assert_eq!(now["status"], "paid");
    assert_eq!(now["payment"]["double_spend_proof"], proof["proof_id"]);
    assert_eq!(
        kinds(&app, &id).await,
        ["payment_received", "double_spend_detected"]
    );
}

async fn rehearsals_refuse_what_cannot_happen_and_change_nothing(app: TestApp) {
    let (id, raw, _socket) = paid_invoice(&app, 0).await;
    let txid = txid_of(&raw).to_hex();
    let before: Vec<Value> = vec![app.get_json(&format!("/api/jpp/invoices/{id}")).await.1];
    let unknown = "ab".repeat(32);
    for (path, body, want) in [
        ("/dev/double-spend", json!({"txid": unknown}), 409),
        ("/dev/double-spend", json!({"txid": "not-a-txid"}), 400),
        ("/dev/double-spend", json!({}), 400),
        ("/dev/reorg", json!({"depth": 0}), 400),
        ("/dev/reorg", json!({"depth": 101}), 400),
        ("/dev/reorg", json!({"depth": 10_000}), 400),
        ("/dev/reorg", json!({"depth": "1"}), 400),
        ("/dev/reorg", json!({"depth": 1, "drop": unknown}), 409),
        (
            "/dev/reorg",
            json!({"depth": 1, "drop": txid, "replace": txid}),
            400,
        ),
    ] {
        let (status, answer) = app.dev(path, body.clone()).await;
        assert_eq!(status, want, "{path} {body}: {answer}");
        assert!(answer["detail"].as_str().is_some(), "{answer}");
    }
    // Mined, then a reorg shallower than its block cannot drop it.
    app.mine(3).await;
    let (status, answer) = app
        .dev("/dev/reorg", json!({"depth": 1, "drop": txid}))
        .await;
    assert_eq!(status, 409, "{answer}");
    // And a mined transaction cannot be double-spent without a reorg.
    let (status, _) = app.dev("/dev/double-spend", json!({"txid": txid})).await;
    assert_eq!(status, 409);
    let after = app.invoice_when(&id, |i| i["confirmations"] == 3).await;
    assert_eq!(after["status"], before[0]["status"]);
    assert_eq!(kinds(&app, &id).await, ["payment_received"]);
}

/// Two `serve` processes on one PostgreSQL: one watches (the advisory lock), so each move of
/// the invoice is one event, whichever process saw the block.
mod one_watcher {
    use super::*;
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_servers_make_one_event_per_transition() {
        let fast = ["--chain-poll-every", "1"];
        let a = TestApp::spawn_with(Backend::Postgres, &fast).await;
        let b = a.another_on_the_same_database_with(&fast).await;
        let (id, raw, mut socket) = paid_invoice(&a, 1).await;
        // Blocks mined through each process in turn: whichever watches hears one at once and
        // the other at its next poll.
        b.mine(1).await;
        assert_eq!(next_text(&mut socket).await["type"], "payment_confirmed");
        let (status, body) = a
            .dev(
                "/dev/reorg",
                json!({"depth": 1, "drop": txid_of(&raw).to_hex()}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(next_text(&mut socket).await["type"], "payment_invalidated");
        // A second invoice paid through the other process, confirmed by a block mined through
        // the first.
        let (other, _, mut other_socket) = paid_invoice(&b, 1).await;
        a.mine(1).await;
        let confirmed = next_text(&mut other_socket).await;
        assert_eq!(confirmed["type"], "payment_confirmed");
        // A block through each more: once the view has counted both, no event came twice.
        a.mine(1).await;
        b.mine(1).await;
        a.invoice_when(&other, |i| i["confirmations"] == 3).await;
        assert_eq!(
            kinds(&a, &id).await,
            [
                "payment_received",
                "payment_confirmed",
                "payment_invalidated"
            ]
        );
        assert_eq!(
            kinds(&b, &other).await,
            ["payment_received", "payment_confirmed"]
        );
    }
}

async fn a_wallet_paying_the_address_pays_the_invoice(app: TestApp) {
    let (id, address, invoice, mut socket) = fresh_invoice(&app, 4000, json!({})).await;
    assert_eq!(
        invoice["address_uri"],
        format!("{address}?amount=0.00004").as_str(),
        "a plain BIP21 URI beside the payment URI"
    );
    assert_eq!(invoice["amount_due"], 4000);
    let raw = send_to(&app, &address, 4000).await;
    let event = next_text(&mut socket).await;
    assert_eq!(event["type"], "payment_received");
    assert_eq!(event["via"], "chain");
    assert_eq!(event["txid"], txid_of(&raw).to_hex());
    assert_eq!(event["amount"], 4000);
    assert_eq!(event["amount_due"], 0);
    assert_eq!(event["invoice"]["status"], "paid");
    let (_, now) = app.get_json(&format!("/api/jpp/invoices/{id}")).await;
    assert_eq!(now["payment"]["via"], "chain");
    assert_eq!(now["amount_paid"], 4000);
    assert_eq!(now["confirmations"], 0);

    // The same transaction posted afterwards through the protocol gets the same answer, and
    // is not a second payment.
    let (status, answer) = app.post_tx(&id, "pay", &raw).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "paid");
    // The chain goes on for it as for any payment.
    app.mine(1).await;
    app.invoice_when(&id, |i| i["confirmations"] == 1).await;
    assert_eq!(kinds(&app, &id).await, ["payment_received"]);
}

async fn partial_payments_add_up_and_overpayment_is_recorded(app: TestApp) {
    let (id, address, _, mut socket) = fresh_invoice(&app, 5000, json!({})).await;
    send_to(&app, &address, 2000).await;
    let part = next_text(&mut socket).await;
    assert_eq!(part["type"], "invoice_paid_partial");
    assert_eq!(part["amount"], 2000);
    assert_eq!(part["amount_paid"], 2000);
    assert_eq!(part["amount_due"], 3000);
    assert_eq!(part["invoice"]["status"], "paid_partial");
    let (_, now) = app.get_json(&format!("/api/jpp/invoices/{id}")).await;
    assert!(
        now["address_uri"]
            .as_str()
            .unwrap()
            .ends_with("?amount=0.00003"),
        "the URI asks for the rest: {now}"
    );

    send_to(&app, &address, 3000).await;
    let rest = next_text(&mut socket).await;
    assert_eq!(rest["type"], "payment_received");
    assert_eq!(rest["amount_paid"], 5000);
    assert_eq!(rest["invoice"]["status"], "paid");

    // More than asked: recorded, never lost; the invoice stays paid.
    send_to(&app, &address, 1000).await;
    let over = next_text(&mut socket).await;
    assert_eq!(over["type"], "payment_received");
    assert_eq!(over["amount_paid"], 6000);
    assert_eq!(over["amount_due"], 0);
    let (_, now) = app.get_json(&format!("/api/jpp/invoices/{id}")).await;
    assert_eq!(now["status"], "paid");
    assert_eq!(now["amount_paid"], 6000);
    assert_eq!(
        kinds(&app, &id).await,
        [
            "invoice_paid_partial",
            "payment_received",
            "payment_received"
        ]
    );
}

async fn money_after_expiry_or_cancel_is_paid_late(app: TestApp) {
    // Expired (by the clock, not yet recorded) and cancelled: the money still counts.
    let expired = app.insert_expired_invoice(3000).await;
    let mut socket = connect(&app, &format!("/ws/jpp/invoice/{expired}/")).await;
    send_to(&app, crate::helpers::ADDR, 3000).await;
    let event = loop {
        let e = next_text(&mut socket).await;
        if e["type"] != "invoice_expired" {
            break e;
        }
    };
    assert_eq!(event["type"], "invoice_paid_late");
    assert_eq!(event["amount"], 3000);
    assert_eq!(event["invoice"]["status"], "paid_late");

    let (cancelled, address, _, mut socket) = fresh_invoice(&app, 2500, json!({})).await;
    assert_eq!(app.cancel(&cancelled).await, 200);
    assert_eq!(next_text(&mut socket).await["type"], "invoice_cancelled");
    send_to(&app, &address, 1000).await;
    let late = next_text(&mut socket).await;
    assert_eq!(late["type"], "invoice_paid_late");
    assert_eq!(late["amount_paid"], 1000);
    let (_, now) = app
        .get_json(&format!("/api/jpp/invoices/{cancelled}"))
        .await;
    assert_eq!(now["status"], "paid_late");
    // A late invoice is not open to the payment protocol.
    let wallet = crate::helpers::TestWallet::new();
    let coin = wallet.fund(&app, 20_000, None).await;
    let raw = wallet.pay(&[coin], crate::helpers::invoice_outputs(&now));
    let (status, _) = app.post_tx(&cancelled, "pay", &raw).await;
    assert_eq!(status, 400);
}

async fn a_payment_first_seen_in_a_block_counts(app: TestApp) {
    let (id, address, _, mut socket) = fresh_invoice(&app, 4000, json!({"confirmations": 1})).await;
    // The faucet's transaction is mined at once: the watcher meets it in a block.
    let (status, coin) = app
        .dev("/dev/faucet", json!({"address": address, "amount": 4000}))
        .await;
    assert_eq!(status, 201, "{coin}");
    let event = next_text(&mut socket).await;
    assert_eq!(event["type"], "payment_received");
    assert_eq!(event["txid"], coin["txid"]);
    let confirmed = next_text(&mut socket).await;
    assert_eq!(confirmed["type"], "payment_confirmed");
    assert_eq!(confirmed["block_height"], coin["height"]);
    assert_eq!(
        kinds(&app, &id).await,
        ["payment_received", "payment_confirmed"]
    );
}

async fn a_payment_to_another_address_or_of_the_wrong_kind_moves_nothing(app: TestApp) {
    let (id, address, _, _socket) = fresh_invoice(&app, 4000, json!({})).await;
    // Another address; and two outputs of an invoice that asks for two, paid only in part.
    send_to(&app, &crate::helpers::TestWallet::new().address, 4000).await;
    let other = crate::helpers::TestWallet::new().address;
    let (status, two) = app
        .create(&json!({"outputs": [
            {"address": address, "amount": 1000},
            {"address": other, "amount": 2000}]}))
        .await;
    assert_eq!(status, 201);
    assert!(two["address_uri"].is_null(), "no plain URI for two outputs");
    let two_id = two["payment_id"].as_str().unwrap().to_owned();
    send_to(&app, &other, 2000).await;
    // A control paid in the same block: once the watcher has counted its confirmation, it
    // has looked at every transaction of that block.
    let (control, control_address, _, _) = fresh_invoice(&app, 1000, json!({})).await;
    send_to(&app, &control_address, 1000).await;
    app.mine(1).await;
    app.invoice_when(&control, |i| i["confirmations"] == 1)
        .await;
    for invoice in [&id, &two_id] {
        let (_, now) = app.get_json(&format!("/api/jpp/invoices/{invoice}")).await;
        assert_eq!(now["status"], "open", "{now}");
        assert_eq!(now["amount_paid"], 0);
    }
    assert!(kinds(&app, &id).await.is_empty());
    assert!(kinds(&app, &two_id).await.is_empty());
    // Garbage to the broadcast endpoint is refused and changes nothing.
    let (status, _) = app.dev("/dev/broadcast", json!({"raw_tx_hex": "zz"})).await;
    assert_eq!(status, 400);
    let (status, _) = app
        .dev("/dev/broadcast", json!({"raw_tx_hex": "00".repeat(70)}))
        .await;
    assert_eq!(status, 422);
}
