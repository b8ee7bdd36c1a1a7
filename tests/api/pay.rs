//! Paying invoices on the dev chain with real signed transactions: exactly once, never twice,
//! never a replay; every refusal says why and writes nothing.

use futures_util::future::join_all;
use serde_json::{json, Value};

use cashier::chain::node::Node;
use cashier::chain::{txid_of, OutPoint, Output, Txid};

use crate::helpers::{invoice_outputs, TestApp, TestWallet, ADDR, ADDR_TOKEN};
use crate::on_both_backends;

on_both_backends!(
    a_payment_is_accepted_broadcast_and_recorded_once,
    twenty_identical_posts_get_one_broadcast_and_twenty_identical_answers,
    fifty_different_payments_at_once_only_one_wins_and_only_it_is_broadcast,
    a_transaction_that_paid_one_invoice_cannot_pay_another,
    refused_payments_say_why_and_change_nothing,
    invoices_that_are_not_open_refuse_payments,
    verify_checks_without_writing,
    a_claimed_payment_is_finished_after_a_restart,
    a_broadcast_payment_is_settled_after_a_restart_without_a_second_broadcast,
    a_wallet_that_broadcast_in_the_invoices_second_pays_above_the_floor,
    a_broadcast_transaction_below_the_invoices_rate_is_refused,
    a_transaction_the_node_saw_before_the_invoices_second_is_a_replay,
    a_double_spend_is_named_as_one_and_changes_nothing,
    a_transaction_broadcast_twice_at_once_is_accepted_both_times,
    payments_racing_the_reconciler_are_each_paid_once,
    a_periodic_reconcile_leaves_a_claim_younger_than_its_cutoff_alone,
    junk_signed_payments_racing_an_honest_one_never_take_the_invoice,
    the_dev_chains_coins_and_check_answer_as_the_two_questions_do,
);

mod node_down {
    use super::*;
    use crate::helpers::Backend;

    async fn node_down_is_503_and_writes_nothing(backend: Backend) {
        // A port nothing listens on: BCHN is down.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://cashier:secret@127.0.0.1:{port}");
        let app = TestApp::spawn_with(
            backend,
            &["--node", "bchn", "--node-url", &url, "--network", "regtest"],
        )
        .await;
        assert!(app.payments.node().dev().is_none());
        let invoice = create(
            &app,
            json!({"outputs": [{"address": ADDR, "amount": 5000}]}),
        )
        .await;
        let id = id_of(&invoice);
        // A well-formed, signed payment; its coin is one the node would have to look up.
        let wallet = TestWallet::new();
        let coin = (
            OutPoint {
                txid: Txid([9; 32]),
                vout: 0,
            },
            Output {
                value: 20_000,
                token: None,
                locking_bytecode: cashier::chain::sighash::p2pkh_locking_bytecode(
                    &wallet.key.public_key(&wallet.secp),
                ),
            },
        );
        let raw = wallet.pay(&[coin], invoice_outputs(&invoice));
        for path in ["pay", "verify"] {
            let r = app
                .client
                .post(app.url(&format!("/jpp/invoices/{id}/{path}/")))
                .json(&json!({"raw_tx_hex": hex::encode(&raw)}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 503, "{path}");
            assert!(r.headers().contains_key("retry-after"), "{path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["code"], "node_unavailable", "{path}: {body}");
            assert!(
                !body.to_string().contains("secret"),
                "the node password leaked: {body}"
            );
        }
        let (_, now) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
        assert_eq!(now["status"], "open", "the invoice stays payable");
        assert!(app.payment_of(&raw).await.is_none());
        // Without the dev chain there is no faucet.
        let r = app
            .client
            .post(app.url("/dev/faucet"))
            .json(&json!({"address": ADDR, "amount": 1000}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        node_down_is_503_and_writes_nothing(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        node_down_is_503_and_writes_nothing(Backend::Postgres).await
    }
}

const P2SH32: &str = "bchreg:pw46h2at4w46h2at4w46h2at4w46h2at4w46h2at4w46h2at4w46knct4ntry";

fn dev_broadcasts(app: &TestApp) -> u64 {
    app.payments
        .node()
        .dev()
        .expect("dev chain")
        .broadcast_calls()
}

async fn create(app: &TestApp, body: Value) -> Value {
    let (status, invoice) = app.create(&body).await;
    assert_eq!(status, 201, "{invoice}");
    invoice
}

fn id_of(invoice: &Value) -> String {
    invoice["payment_id"].as_str().unwrap().to_owned()
}

/// A wallet with one coin big enough for `sats` plus fees, and the transaction paying
/// `invoice` from it.
async fn funded_payment(app: &TestApp, invoice: &Value) -> (TestWallet, Vec<u8>) {
    let wallet = TestWallet::new();
    let outputs = invoice_outputs(invoice);
    let total: u64 = outputs.iter().map(|o| o.value).sum();
    let coin = wallet.fund(app, total + 10_000, None).await;
    let raw = wallet.pay(&[coin], outputs);
    (wallet, raw)
}

async fn a_payment_is_accepted_broadcast_and_recorded_once(app: TestApp) {
    let category = "cd".repeat(32);
    let token = json!({"category": category, "amount": 25, "nft": {"capability": "none", "commitment": "0a0b"}});
    let invoice = create(
        &app,
        json!({"outputs": [{"address": ADDR, "amount": 12_345},
                           {"address": crate::helpers::ADDR_TOKEN, "amount": 1000, "token": token}],
               "memo": "Order #7", "merchant_data": {"secret": 1}}),
    )
    .await;
    let id = id_of(&invoice);
    let wallet = TestWallet::new();
    let bch = wallet.fund(&app, 50_000, None).await;
    let tokens = wallet.fund(&app, 1000, Some(token.clone())).await;
    let raw = wallet.pay(&[bch, tokens], invoice_outputs(&invoice));
    let txid = txid_of(&raw).to_hex();

    let (status, paid) = app.post_tx(&id, "pay", &raw).await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["payment"]["txid"], txid.as_str());
    assert_eq!(paid["payment"]["refund_to"], json!([]));
    assert!(paid["payment"]["paid_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(paid["outputs"], invoice["outputs"]);
    assert_eq!(dev_broadcasts(&app), 1);

    let (_, read) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
    assert_eq!(read, paid);
    // The node has it in its mempool.
    let status = app
        .payments
        .node()
        .tx_status(Txid::from_hex(&txid).unwrap())
        .await
        .unwrap();
    assert!(
        matches!(status, cashier::chain::node::TxStatus::Mempool { .. }),
        "{status:?}"
    );

    // One event, after commit, with the public invoice.
    let events = app.events(&format!("invoice:{id}")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].1, "payment_received");
    let event: Value = serde_json::from_str(&events[0].2).unwrap();
    assert_eq!(event["txid"], txid.as_str());
    assert_eq!(event["memo"], "Order #7");
    assert_eq!(event["invoice"]["status"], "paid");
    assert!(event["invoice"].get("merchant_data").is_none());

    // The same transaction again: the same answer, no second broadcast, no second event.
    let (status, again) = app.post_tx(&id, "pay", &raw).await;
    assert_eq!((status, &again), (200, &paid));
    assert_eq!(dev_broadcasts(&app), 1);
    assert_eq!(app.events(&format!("invoice:{id}")).await.len(), 1);
}

async fn twenty_identical_posts_get_one_broadcast_and_twenty_identical_answers(app: TestApp) {
    let invoice = create(
        &app,
        json!({"outputs": [{"address": ADDR, "amount": 5000}]}),
    )
    .await;
    let id = id_of(&invoice);
    let (_, raw) = funded_payment(&app, &invoice).await;
    let answers = join_all((0..20).map(|_| app.post_tx(&id, "pay", &raw))).await;
    let first = &answers[0];
    assert_eq!(first.0, 200, "{}", first.1);
    for answer in &answers {
        assert_eq!(answer, first);
    }
    assert_eq!(dev_broadcasts(&app), 1);
    assert_eq!(app.events(&format!("invoice:{id}")).await.len(), 1);
}

async fn fifty_different_payments_at_once_only_one_wins_and_only_it_is_broadcast(app: TestApp) {
    let invoice = create(
        &app,
        json!({"outputs": [{"address": ADDR, "amount": 5000}]}),
    )
    .await;
    let id = id_of(&invoice);
    let mut txs = Vec::new();
    for _ in 0..50 {
        txs.push(funded_payment(&app, &invoice).await.1);
    }
    let answers = join_all(txs.iter().map(|raw| app.post_tx(&id, "pay", raw))).await;
    let winners: Vec<usize> = (0..50).filter(|&i| answers[i].0 == 200).collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    for (i, (status, body)) in answers.iter().enumerate() {
        if i != winners[0] {
            assert_eq!(*status, 400, "{body}");
            assert_eq!(body["code"], "invoice_not_accepting", "{body}");
            assert!(body["non_field_errors"][0]
                .as_str()
                .unwrap()
                .starts_with("Invoice no longer accepting payments"));
        }
    }
    // The losers lost before their coins moved: only the winner reached the node.
    assert_eq!(dev_broadcasts(&app), 1);
    let node = app.payments.node();
    for (i, raw) in txs.iter().enumerate() {
        let known = !matches!(
            node.tx_status(txid_of(raw)).await.unwrap(),
            cashier::chain::node::TxStatus::Unknown
        );
        assert_eq!(known, i == winners[0]);
    }
    assert_eq!(
        answers[winners[0]].1["payment"]["txid"],
        txid_of(&txs[winners[0]]).to_hex()
    );
}

/// Junk-signed payments racing an honest one for the same invoice: the node's check (asked with
/// the coins, before the claim) refuses each before it can claim the invoice, so the honest one
/// pays whatever the order, and only it reaches the broadcast and the node.
async fn junk_signed_payments_racing_an_honest_one_never_take_the_invoice(app: TestApp) {
    let invoice = create(
        &app,
        json!({"outputs": [{"address": ADDR, "amount": 5000}]}),
    )
    .await;
    let id = id_of(&invoice);
    let (_, honest) = funded_payment(&app, &invoice).await;
    let mut junk = Vec::new();
    for _ in 0..20 {
        let (_, raw) = funded_payment(&app, &invoice).await;
        let mut tx = cashier::chain::Tx::decode(&raw).unwrap();
        tx.inputs[0].script_sig[10] ^= 0x01;
        junk.push(tx.serialize());
    }
    // The honest payment in the middle of the junk.
    let mut txs = junk.clone();
    txs.insert(10, honest.clone());
    let answers = join_all(txs.iter().map(|raw| app.post_tx(&id, "pay", raw))).await;
    for (raw, (status, body)) in txs.iter().zip(&answers) {
        if *raw == honest {
            assert_eq!(*status, 200, "the honest payment: {body}");
            assert_eq!(body["payment"]["txid"], txid_of(&honest).to_hex());
        } else {
            // Refused for its signature; or, once the honest one holds the invoice, for that.
            assert_eq!(*status, 400, "{body}");
            assert!(
                body["code"] == "rejected_by_network" || body["code"] == "invoice_not_accepting",
                "{body}"
            );
            if body["code"] == "rejected_by_network" {
                assert!(
                    body["detail"]
                        .as_str()
                        .unwrap()
                        .contains("mandatory-script-verify-flag-failed"),
                    "{body}"
                );
            }
        }
    }
    assert_eq!(
        dev_broadcasts(&app),
        1,
        "only the honest payment was broadcast"
    );
    for raw in &junk {
        assert!(matches!(
            app.payments.node().tx_status(txid_of(raw)).await.unwrap(),
            cashier::chain::node::TxStatus::Unknown
        ));
        assert!(app.payment_of(raw).await.is_none());
    }
    let events = app.events(&format!("invoice:{id}")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event: Value = serde_json::from_str(&events[0].2).unwrap();
    assert_eq!(event["txid"], txid_of(&honest).to_hex());
}

/// The dev chain's one read for the coins and the check answers what `coins` and `test_accept`
/// answer apart: every coin and the verdict (allowed, or the signature or dust refusal), or
/// `Missing` as soon as a coin is unknown or spent.
async fn the_dev_chains_coins_and_check_answer_as_the_two_questions_do(app: TestApp) {
    use cashier::chain::node::{Acceptance, CoinsAndAcceptance};
    let invoice = create(
        &app,
        json!({"outputs": [{"address": ADDR, "amount": 5000}]}),
    )
    .await;
    let wallet = TestWallet::new();
    let a = wallet.fund(&app, 20_000, None).await;
    let b = wallet.fund(&app, 30_000, None).await;
    let unknown = (
        OutPoint {
            txid: Txid([7; 32]),
            vout: 0,
        },
        a.1.clone(),
    );
    let good = wallet.pay(&[a.clone(), b.clone()], invoice_outputs(&invoice));
    let mut bad = cashier::chain::Tx::decode(&good).unwrap();
    bad.inputs[1].script_sig[10] ^= 0x01;
    let bad = bad.serialize();
    let dust = wallet.pay(
        &[a.clone(), b.clone()],
        [
            invoice_outputs(&invoice),
            vec![Output {
                value: 100,
                ..invoice_outputs(&invoice)[0].clone()
            }],
        ]
        .concat(),
    );
    let missing = wallet.pay(&[a.clone(), unknown], invoice_outputs(&invoice));
    let node = app.payments.node();
    let outpoints = |raw: &[u8]| -> Vec<OutPoint> {
        cashier::chain::Tx::decode(raw)
            .unwrap()
            .inputs
            .iter()
            .map(|i| i.prevout)
            .collect()
    };
    for (name, raw) in [
        ("good", &good),
        ("bad", &bad),
        ("dust", &dust),
        ("missing", &missing),
    ] {
        let both = node
            .coins_and_acceptance(&outpoints(raw), raw)
            .await
            .unwrap();
        let coins = node.coins(&outpoints(raw)).await.unwrap();
        let alone = node.test_accept(raw).await.unwrap();
        match both {
            CoinsAndAcceptance::Found {
                coins: found,
                acceptance,
            } => {
                assert_eq!(Some(found), coins.into_iter().collect(), "{name}");
                assert_eq!(acceptance, alone, "{name}");
                assert_eq!(name == "good", acceptance == Acceptance::Allowed, "{name}");
            }
            CoinsAndAcceptance::Missing => {
                assert_eq!(name, "missing");
                assert!(coins.iter().any(Option::is_none));
            }
        }
    }
    // Once the good one is in the mempool, its coins are spent: missing for every spender.
    let (status, body) = app.post_tx(&id_of(&invoice), "pay", &good).await;
    assert_eq!(status, 200, "{body}");
    for raw in [&good, &bad] {
        assert_eq!(
            node.coins_and_acceptance(&outpoints(raw), raw)
                .await
                .unwrap(),
            CoinsAndAcceptance::Missing
        );
    }
}

async fn a_transaction_that_paid_one_invoice_cannot_pay_another(app: TestApp) {
    let body = json!({"outputs": [{"address": ADDR, "amount": 7000}]});
    let a = create(&app, body.clone()).await;
    let b = create(&app, body).await;
    let (_, raw) = funded_payment(&app, &a).await;
    assert_eq!(app.post_tx(&id_of(&a), "pay", &raw).await.0, 200);
    let (status, refused) = app.post_tx(&id_of(&b), "pay", &raw).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["code"], "transaction_used");
    assert_eq!(
        refused["detail"],
        "Transaction already used for another invoice"
    );
    let (_, b_now) = app.get_json(&format!("/jpp/invoices/{}/", id_of(&b))).await;
    assert_eq!(b_now["status"], "open");
    assert_eq!(dev_broadcasts(&app), 1);

    // Mined first, then offered to a third invoice: still refused.
    app.client.post(app.url("/dev/mine")).send().await.unwrap();
    let c = create(
        &app,
        json!({"outputs": [{"address": ADDR, "amount": 7000}]}),
    )
    .await;
    assert_eq!(
        app.post_tx(&id_of(&c), "pay", &raw).await.1["code"],
        "transaction_used"
    );
}

async fn refused_payments_say_why_and_change_nothing(app: TestApp) {
    let category = "ef".repeat(32);
    let token = json!({"category": category, "amount": 50, "nft": {"capability": "mutable", "commitment": "cafe"}});
    let invoice = create(
        &app,
        // Two different destinations, so a missing one cannot be mistaken for the other.
        json!({"outputs": [{"address": P2SH32, "amount": 20_000}, {"address": ADDR_TOKEN, "amount": 1000, "token": token}],
               "required_fee_per_byte": 2}),
    )
    .await;
    let id = id_of(&invoice);
    let wanted = invoice_outputs(&invoice);
    let wallet = TestWallet::new();
    let other = TestWallet::new();

    // Coins: enough BCH, and one token coin per token variant the cases spend.
    let mut bch = Vec::new();
    for _ in 0..13 {
        bch.push(wallet.fund(&app, 100_000, None).await);
    }
    let token_coin = |t: Value| {
        let wallet = &wallet;
        let app = &app;
        async move { wallet.fund(app, 1000, Some(t)).await }
    };
    let right = token_coin(token.clone()).await;
    let wrong_category = token_coin(json!({"category": "ab".repeat(32), "amount": 50, "nft": {"capability": "mutable", "commitment": "cafe"}})).await;
    let wrong_amount = token_coin(json!({"category": category, "amount": 49, "nft": {"capability": "mutable", "commitment": "cafe"}})).await;
    let wrong_commitment = token_coin(json!({"category": category, "amount": 50, "nft": {"capability": "mutable", "commitment": "beef"}})).await;
    let with_token = |out: &Output, from: &(OutPoint, Output)| {
        let mut o = out.clone();
        o.token = from.1.token.clone();
        o
    };
    let bch_out = wanted[0].clone();
    let unknown = (
        OutPoint {
            txid: Txid([7; 32]),
            vout: 0,
        },
        bch[0].1.clone(),
    );
    let others_coin = other.fund(&app, 100_000, None).await;
    // A coin spent for good (by a mined transaction), and one spent by a transaction still in
    // the node's mempool: paying with that one again is a double spend.
    let spend = |coin: &(OutPoint, Output)| {
        wallet.pay(
            std::slice::from_ref(coin),
            vec![Output {
                value: 5000,
                ..bch_out.clone()
            }],
        )
    };
    let spent_coin = bch[11].clone();
    let double_spent_coin = bch[12].clone();
    for (spender, mine) in [
        (spend(&spent_coin), true),
        (spend(&double_spent_coin), false),
    ] {
        assert!(matches!(
            app.payments.node().broadcast(&spender).await.unwrap(),
            cashier::chain::node::Broadcast::Accepted
        ));
        if mine {
            let r = app.client.post(app.url("/dev/mine")).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    }

    let pay_fee = 2000;
    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        (
            "underpaid",
            wallet.pay_at(
                &[bch[1].clone(), right.clone()],
                vec![
                    Output {
                        value: 19_999,
                        ..bch_out.clone()
                    },
                    wanted[1].clone(),
                ],
                pay_fee,
            ),
            400,
            "wrong_amount",
            "(0.00019999 BCH) does not match the amount requested (0.00020000 BCH)",
        ),
        (
            "overpaid",
            wallet.pay_at(
                &[bch[2].clone(), right.clone()],
                vec![
                    Output {
                        value: 20_001,
                        ..bch_out.clone()
                    },
                    wanted[1].clone(),
                ],
                pay_fee,
            ),
            400,
            "wrong_amount",
            "does not match the amount requested",
        ),
        (
            "missing output",
            wallet.pay_at(
                &[bch[3].clone(), right.clone()],
                vec![wanted[1].clone()],
                pay_fee,
            ),
            400,
            "output_missing",
            "does not have any output to the bitcoin address on the invoice",
        ),
        (
            "wrong token category",
            wallet.pay_at(
                &[bch[4].clone(), wrong_category.clone()],
                vec![bch_out.clone(), with_token(&wanted[1], &wrong_category)],
                pay_fee,
            ),
            400,
            "wrong_tokens",
            "category abab",
        ),
        (
            "wrong token amount",
            wallet.pay_at(
                &[bch[5].clone(), wrong_amount.clone()],
                vec![bch_out.clone(), with_token(&wanted[1], &wrong_amount)],
                pay_fee,
            ),
            400,
            "wrong_tokens",
            "fungible amount 49 instead of 50",
        ),
        (
            "wrong commitment",
            wallet.pay_at(
                &[bch[6].clone(), wrong_commitment.clone()],
                vec![bch_out.clone(), with_token(&wanted[1], &wrong_commitment)],
                pay_fee,
            ),
            400,
            "wrong_tokens",
            "NFT commitment beef instead of cafe",
        ),
        (
            "fee below the invoice's rate",
            wallet.pay_at(&[bch[7].clone(), right.clone()], wanted.clone(), 1000),
            400,
            "fee_too_low",
            "is below the current minimum threshold (2000 sat/kb)",
        ),
        (
            "unknown input",
            wallet.pay_at(&[unknown, right.clone()], wanted.clone(), pay_fee),
            422,
            "inputs_missing",
            "were not found on the blockchain",
        ),
        (
            "spent input",
            wallet.pay_at(&[spent_coin, right.clone()], wanted.clone(), pay_fee),
            422,
            "inputs_missing",
            "were not found on the blockchain",
        ),
        (
            "input spent by a transaction in the mempool",
            wallet.pay_at(&[double_spent_coin, right.clone()], wanted.clone(), pay_fee),
            422,
            "double_spend",
            "is a double spend",
        ),
        (
            "dust change",
            wallet.pay_at(
                &[bch[8].clone(), right.clone()],
                [
                    wanted.clone(),
                    vec![Output {
                        value: 100,
                        ..bch_out.clone()
                    }],
                ]
                .concat(),
                pay_fee,
            ),
            400,
            "rejected_by_network",
            "Transaction rejected by network: dust",
        ),
        (
            "signed with another key",
            wallet.pay_at(&[others_coin, right.clone()], wanted.clone(), pay_fee),
            400,
            "rejected_by_network",
            "mandatory-script-verify-flag-failed",
        ),
        (
            "unsigned",
            {
                let mut tx = cashier::chain::Tx::decode(&wallet.pay_at(
                    &[bch[9].clone(), right.clone()],
                    wanted.clone(),
                    pay_fee,
                ))
                .unwrap();
                tx.inputs[0].script_sig.clear();
                tx.serialize()
            },
            400,
            "rejected_by_network",
            "mandatory-script-verify-flag-failed",
        ),
        (
            "badly signed",
            {
                let mut tx = cashier::chain::Tx::decode(&wallet.pay_at(
                    &[bch[10].clone(), right.clone()],
                    wanted.clone(),
                    pay_fee,
                ))
                .unwrap();
                let sig = &mut tx.inputs[0].script_sig;
                sig[10] ^= 0x01;
                tx.serialize()
            },
            400,
            "rejected_by_network",
            "mandatory-script-verify-flag-failed",
        ),
        (
            "not a transaction",
            b"hello, this is not a transaction at all; it is long enough though!".to_vec(),
            400,
            "invalid_transaction",
            "We were unable to parse the transaction",
        ),
    ];
    let broadcasts_before = dev_broadcasts(&app);
    for (name, raw, status, code, says) in cases {
        let (got, body) = app.post_tx(&id, "pay", &raw).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["code"], code, "{name}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains(says),
            "{name}: {detail:?} should say {says:?}"
        );
        assert_eq!(body["non_field_errors"][0], detail, "{name}");
        let recorded = app.payment_of(&raw).await;
        assert!(recorded.is_none(), "{name} recorded a payment");
        // Refused before the claim, so before the broadcast: the node holds none of them.
        assert!(
            matches!(
                app.payments.node().tx_status(txid_of(&raw)).await.unwrap(),
                cashier::chain::node::TxStatus::Unknown
            ),
            "{name} reached the node"
        );
    }
    // Not hex at all.
    let r = app
        .client
        .post(app.url(&format!("/jpp/invoices/{id}/pay/")))
        .json(&json!({"raw_tx_hex": "zz"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "invalid_transaction"
    );

    assert_eq!(
        dev_broadcasts(&app),
        broadcasts_before,
        "a refused payment reached the node's broadcast"
    );
    let (_, now) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
    assert_eq!(now["status"], "open");
    assert_eq!(now["payment"], Value::Null);
    assert!(app.events(&format!("invoice:{id}")).await.is_empty());

    // And the invoice is still payable by a good transaction.
    let good = wallet.pay_at(&[bch[1].clone(), right], wanted, pay_fee);
    let (status, body) = app.post_tx(&id, "pay", &good).await;
    assert_eq!(status, 200, "{body}");
}

async fn invoices_that_are_not_open_refuse_payments(app: TestApp) {
    let body = json!({"outputs": [{"address": ADDR, "amount": 3000}]});
    // Paid.
    let paid = create(&app, body.clone()).await;
    let (wallet, raw) = funded_payment(&app, &paid).await;
    assert_eq!(app.post_tx(&id_of(&paid), "pay", &raw).await.0, 200);
    let coin = wallet.fund(&app, 20_000, None).await;
    let second = wallet.pay(&[coin], invoice_outputs(&paid));
    let (status, refused) = app.post_tx(&id_of(&paid), "pay", &second).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("invoice_not_accepting"))
    );
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("(the invoice is paid)"),
        "{refused}"
    );
    // Cancelled.
    let cancelled = create(&app, body.clone()).await;
    let r = app
        .client
        .post(app.url(&format!("/jpp/invoices/{}/cancel/", id_of(&cancelled))))
        .header("X-Api-Key", &app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, raw) = funded_payment(&app, &cancelled).await;
    let (status, refused) = app.post_tx(&id_of(&cancelled), "pay", &raw).await;
    assert_eq!(status, 400);
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("(the invoice is cancelled)"),
        "{refused}"
    );
    // Expired: written with its time already up.
    let expired = app.insert_expired_invoice(3000).await;
    let (_, raw) = funded_payment(
        &app,
        &json!({"outputs": [{"address": ADDR, "amount": 3000}]}),
    )
    .await;
    let (status, refused) = app.post_tx(&expired, "pay", &raw).await;
    assert_eq!(status, 400);
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("(the invoice is expired)"),
        "{refused}"
    );
    // Unknown invoice.
    let (status, _) = app
        .post_tx("00000000000000000000000000000000", "pay", &raw)
        .await;
    assert_eq!(status, 404);
    assert_eq!(dev_broadcasts(&app), 1);
}

async fn verify_checks_without_writing(app: TestApp) {
    let invoice = create(
        &app,
        json!({"outputs": [{"address": ADDR, "amount": 4000}]}),
    )
    .await;
    let id = id_of(&invoice);
    let (_, raw) = funded_payment(&app, &invoice).await;
    let verify = |raw: Vec<u8>| {
        let (app, id) = (&app, id.clone());
        async move { app.post_tx(&id, "verify", &raw).await }
    };
    assert_eq!(verify(raw.clone()).await, (200, json!({"valid": true})));
    // Unsigned: the size is estimated, the signatures are not checked.
    let mut unsigned = cashier::chain::Tx::decode(&raw).unwrap();
    for input in &mut unsigned.inputs {
        input.script_sig.clear();
    }
    assert_eq!(
        verify(unsigned.serialize()).await,
        (200, json!({"valid": true}))
    );
    // Wrong amount: valid false, with the reason.
    let wallet = TestWallet::new();
    let coin = wallet.fund(&app, 20_000, None).await;
    let mut outputs = invoice_outputs(&invoice);
    outputs[0].value += 1;
    let (status, body) = verify(wallet.pay(&[coin], outputs)).await;
    assert_eq!(status, 400);
    assert_eq!(body["valid"], false);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("does not match the amount requested"),
        "{body}"
    );
    // Nothing was written or broadcast.
    let (_, now) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
    assert_eq!(now["status"], "open");
    assert_eq!(dev_broadcasts(&app), 0);
}

async fn a_claimed_payment_is_finished_after_a_restart(app: TestApp) {
    let invoice = create(
        &app,
        json!({"outputs": [{"address": ADDR, "amount": 6000}]}),
    )
    .await;
    let id = id_of(&invoice);
    let (_, raw) = funded_payment(&app, &invoice).await;
    let txid = txid_of(&raw);
    // What a server killed between its claim and its broadcast leaves behind.
    let claim = cashier::store::payments::Claim {
        invoice: id.parse().unwrap(),
        txid,
        raw_tx: raw.clone(),
        memo: None,
        refund_to: None,
        arrival_ms: cashier::units::now_ms(),
    };
    let claimed = app
        .store
        .write(move |c| cashier::store::payments::claim(c, &claim, cashier::units::now_ms()))
        .await
        .unwrap();
    assert!(claimed);
    let (_, before) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
    assert_eq!(before["status"], "paying");
    assert_eq!(dev_broadcasts(&app), 0);

    let app = app.restart().await;
    let (_, after) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
    assert_eq!(after["status"], "paid", "{after}");
    assert_eq!(after["payment"]["txid"], txid.to_hex());
    assert_eq!(app.events(&format!("invoice:{id}")).await.len(), 1);
    assert!(!matches!(
        app.payments.node().tx_status(txid).await.unwrap(),
        cashier::chain::node::TxStatus::Unknown
    ));
    // The wallet's retry now gets the paid invoice.
    let (status, body) = app.post_tx(&id, "pay", &raw).await;
    assert_eq!((status, &body), (200, &after));
}

/// An open invoice for `amount` sats at ADDR asking `fee_per_kb`, recorded as created at
/// `created_ms` (written directly, so a test can place it at a chosen point of a second).
async fn invoice_created_at(app: &TestApp, amount: u64, fee_per_kb: u64, created_ms: i64) -> Value {
    let id = app
        .insert_invoice(amount, fee_per_kb, created_ms, created_ms + 1_800_000)
        .await;
    let (status, read) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
    assert_eq!(status, 200, "{read}");
    read
}

/// A payment of 8000 sats to ADDR at `fee_per_kb`, broadcast by its wallet straight to the
/// node; and the whole second (in ms) the node records as its arrival, as BCHN does.
async fn broadcast_by_the_wallet(app: &TestApp, fee_per_kb: u64) -> (Vec<u8>, i64) {
    use cashier::chain::node::{Broadcast, TxStatus};
    let wallet = TestWallet::new();
    let coin = wallet.fund(app, 30_000, None).await;
    let template = json!({"outputs": [{"address": ADDR, "amount": 8000}]});
    let raw = wallet.pay_at(&[coin], invoice_outputs(&template), fee_per_kb);
    let node = app.payments.node();
    assert_eq!(node.broadcast(&raw).await.unwrap(), Broadcast::Accepted);
    match node.tx_status(txid_of(&raw)).await.unwrap() {
        TxStatus::Mempool {
            first_seen_ms: Some(seen),
            fee_sats: Some(fee),
            size: Some(size),
        } => {
            assert_eq!(seen % 1000, 0, "whole seconds, as BCHN keeps them");
            assert_eq!(size, raw.len() as u64);
            assert_eq!(
                fee,
                (fee_per_kb * size).div_ceil(1000),
                "the fee the wallet paid"
            );
            (raw, seen)
        }
        other => panic!("{other:?}"),
    }
}

/// The invoice is open, with no payment and no event, and `raw` is recorded nowhere.
async fn still_open(app: &TestApp, id: &str, raw: &[u8]) {
    let (_, now) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
    assert_eq!(now["status"], "open", "{now}");
    assert_eq!(now["payment"], Value::Null);
    assert!(app.events(&format!("invoice:{id}")).await.is_empty());
    assert!(app.payment_of(raw).await.is_none());
}

async fn a_wallet_that_broadcast_in_the_invoices_second_pays_above_the_floor(app: TestApp) {
    // Some wallets broadcast before posting (and Electron Cash after): the node then knows the
    // transaction, which reached it after the invoice existed. The node records that arrival
    // in whole seconds; the invoice here was made in the last millisecond of that second, so
    // only a comparison at the node's granularity finds the broadcast no earlier than the
    // invoice. The invoice asks twice BCHN's floor, which the node's own acceptance does not
    // show; the fee the node reports does.
    let (raw, seen) = broadcast_by_the_wallet(&app, 2000).await;
    let invoice = invoice_created_at(&app, 8000, 2000, seen + 999).await;
    let id = id_of(&invoice);
    assert_eq!(
        app.post_tx(&id, "verify", &raw).await,
        (200, json!({"valid": true}))
    );
    let before = dev_broadcasts(&app);
    let (status, body) = app.post_tx(&id, "pay", &raw).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "paid");
    assert_eq!(body["payment"]["txid"], txid_of(&raw).to_hex());
    assert_eq!(app.events(&format!("invoice:{id}")).await.len(), 1);
    // The broadcast the flow makes finds the transaction already there.
    assert_eq!(dev_broadcasts(&app), before + 1);
    // And posted again: the same answer.
    assert_eq!(app.post_tx(&id, "pay", &raw).await, (200, body));
}

async fn a_broadcast_transaction_below_the_invoices_rate_is_refused(app: TestApp) {
    // BCHN's floor is met (the node took it), the invoice's 2 sat/byte is not.
    let (raw, seen) = broadcast_by_the_wallet(&app, 1000).await;
    let invoice = invoice_created_at(&app, 8000, 2000, seen + 999).await;
    let id = id_of(&invoice);
    let before = dev_broadcasts(&app);
    let (status, body) = app.post_tx(&id, "verify", &raw).await;
    assert_eq!(
        (status, &body["code"]),
        (400, &json!("fee_too_low")),
        "{body}"
    );
    let (status, body) = app.post_tx(&id, "pay", &raw).await;
    assert_eq!(
        (status, &body["code"]),
        (400, &json!("fee_too_low")),
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("(1000 sat/kb) is below the current minimum threshold (2000 sat/kb)"),
        "{body}"
    );
    assert_eq!(dev_broadcasts(&app), before);
    still_open(&app, &id, &raw).await;
}

async fn a_transaction_the_node_saw_before_the_invoices_second_is_a_replay(app: TestApp) {
    // Seen by the node in a second before the invoice's: it cannot have been made for it,
    // even with the same outputs and no invoice holding it.
    let (raw, seen) = broadcast_by_the_wallet(&app, 1000).await;
    let invoice = invoice_created_at(&app, 8000, 1000, seen + 1000).await;
    let id = id_of(&invoice);
    let before = dev_broadcasts(&app);
    for (status, body) in [
        app.post_tx(&id, "verify", &raw).await,
        app.post_tx(&id, "pay", &raw).await,
    ] {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "transaction_replayed", "{body}");
    }
    assert_eq!(dev_broadcasts(&app), before);
    still_open(&app, &id, &raw).await;

    // Mined, it is a replay too: when it first appeared is not known any more.
    let r = app.client.post(app.url("/dev/mine")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let later = create(
        &app,
        json!({"outputs": [{"address": ADDR, "amount": 8000}]}),
    )
    .await;
    let (status, body) = app.post_tx(&id_of(&later), "pay", &raw).await;
    assert_eq!(
        (status, &body["code"]),
        (400, &json!("transaction_replayed")),
        "{body}"
    );
    still_open(&app, &id_of(&later), &raw).await;
}

async fn a_double_spend_is_named_as_one_and_changes_nothing(app: TestApp) {
    let invoice = create(
        &app,
        json!({"outputs": [{"address": ADDR, "amount": 8000}]}),
    )
    .await;
    let id = id_of(&invoice);
    let wallet = TestWallet::new();
    let coin = wallet.fund(&app, 30_000, None).await;
    // The wallet first spends the coin elsewhere (to itself), then pays the invoice with it.
    let elsewhere = wallet.pay(
        std::slice::from_ref(&coin),
        vec![Output {
            value: 10_000,
            ..invoice_outputs(&json!({"outputs": [{"address": wallet.address, "amount": 1}]}))[0]
                .clone()
        }],
    );
    assert_eq!(
        app.payments.node().broadcast(&elsewhere).await.unwrap(),
        cashier::chain::node::Broadcast::Accepted
    );
    let raw = wallet.pay(&[coin], invoice_outputs(&invoice));
    let mut unsigned = cashier::chain::Tx::decode(&raw).unwrap();
    for input in &mut unsigned.inputs {
        input.script_sig.clear();
    }
    let before = dev_broadcasts(&app);
    for (what, (status, body)) in [
        (
            "verify, unsigned",
            app.post_tx(&id, "verify", &unsigned.serialize()).await,
        ),
        ("verify, signed", app.post_tx(&id, "verify", &raw).await),
        ("pay", app.post_tx(&id, "pay", &raw).await),
    ] {
        assert_eq!(status, 422, "{what}: {body}");
        assert_eq!(body["code"], "double_spend", "{what}: {body}");
        let said = body["error"].as_str().or(body["detail"].as_str()).unwrap();
        assert!(said.contains("double spend"), "{what}: {said}");
        assert!(!said.contains("unconfirmed change"), "{what}: {said}");
    }
    // In BitPay's dialects too, in the field each client reads.
    let url = invoice["payment_url"].as_str().unwrap();
    let r = app
        .client
        .post(url)
        .header("Content-Type", "application/payment")
        .header("x-paypro-version", "2")
        .body(
            json!({"chain": "BCH", "currency": "BCH", "transactions": [{"tx": hex::encode(&raw)}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "double_spend", "{body}");
    assert_eq!(body["msg"], body["message"]);
    assert_eq!(
        dev_broadcasts(&app),
        before,
        "a double spend reached the broadcast"
    );
    still_open(&app, &id, &raw).await;
}

async fn a_broadcast_payment_is_settled_after_a_restart_without_a_second_broadcast(app: TestApp) {
    let invoice = create(
        &app,
        json!({"outputs": [{"address": ADDR, "amount": 6000}]}),
    )
    .await;
    let id = id_of(&invoice);
    let (_, raw) = funded_payment(&app, &invoice).await;
    let txid = txid_of(&raw);
    // What a server killed after its broadcast but before its commit leaves behind: the claim
    // recorded, and the transaction on the network.
    let claim = cashier::store::payments::Claim {
        invoice: id.parse().unwrap(),
        txid,
        raw_tx: raw.clone(),
        memo: Some("from the wallet".into()),
        refund_to: None,
        arrival_ms: cashier::units::now_ms(),
    };
    assert!(app
        .store
        .write(move |c| cashier::store::payments::claim(c, &claim, cashier::units::now_ms()))
        .await
        .unwrap());
    assert_eq!(
        app.payments.node().broadcast(&raw).await.unwrap(),
        cashier::chain::node::Broadcast::Accepted
    );

    let app = app.restart().await;
    let (_, after) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
    assert_eq!(after["status"], "paid", "{after}");
    assert_eq!(after["payment"]["memo"], "from the wallet");
    // The node already had it: settled from its status, not broadcast again.
    assert_eq!(dev_broadcasts(&app), 0);
    let events = app.events(&format!("invoice:{id}")).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&events[0].2).unwrap()["memo"],
        "from the wallet"
    );
}

/// Two broadcasts of one transaction at once (a request and a reconciler, here or in another
/// process): BCHN answers the second "already in the mempool", never a conflict with itself,
/// and so must the dev chain that plays it in the tests.
async fn a_transaction_broadcast_twice_at_once_is_accepted_both_times(app: TestApp) {
    use cashier::chain::node::{Broadcast, TxStatus};
    let invoice = create(
        &app,
        json!({"outputs": [{"address": ADDR, "amount": 6000}]}),
    )
    .await;
    let mut raws = Vec::new();
    for _ in 0..20 {
        raws.push(funded_payment(&app, &invoice).await.1);
    }
    let node = app.payments.node();
    let answers = join_all(
        raws.iter()
            .flat_map(|raw| [node.broadcast(raw), node.broadcast(raw)]),
    )
    .await;
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.unwrap(), Broadcast::Accepted, "broadcast {i}");
    }
    for raw in &raws {
        assert!(matches!(
            node.tx_status(txid_of(raw)).await.unwrap(),
            TxStatus::Mempool { .. }
        ));
    }
}

/// The reconciler runs while wallets pay: it never takes a payment away from the request that
/// is broadcasting it, so each is paid once, with one event, and every wallet hears 200.
async fn payments_racing_the_reconciler_are_each_paid_once(app: TestApp) {
    let mut payments = Vec::new();
    for _ in 0..24 {
        let invoice = create(
            &app,
            json!({"outputs": [{"address": ADDR, "amount": 6000}]}),
        )
        .await;
        let raw = funded_payment(&app, &invoice).await.1;
        payments.push((id_of(&invoice), raw));
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    let reconciling = async {
        let mut passes = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) || passes == 0 {
            app.payments.reconcile(None).await.unwrap();
            passes += 1;
            tokio::task::yield_now().await;
        }
    };
    let paying = async {
        let answers = join_all(payments.iter().map(|(id, raw)| app.post_tx(id, "pay", raw))).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        answers
    };
    let (answers, ()) = tokio::join!(paying, reconciling);
    for ((id, raw), (status, body)) in payments.iter().zip(answers) {
        assert_eq!(status, 200, "{id}: {body}");
        assert_eq!(body["status"], "paid");
        assert_eq!(body["payment"]["txid"], txid_of(raw).to_hex());
        assert_eq!(app.events(&format!("invoice:{id}")).await.len(), 1, "{id}");
    }
}

/// A claim younger than the periodic pass's cutoff may be a request's (of this process or
/// another) still waiting on its broadcast: the pass leaves it; an older one it finishes.
async fn a_periodic_reconcile_leaves_a_claim_younger_than_its_cutoff_alone(app: TestApp) {
    let invoice = create(
        &app,
        json!({"outputs": [{"address": ADDR, "amount": 6000}]}),
    )
    .await;
    let id = id_of(&invoice);
    let raw = funded_payment(&app, &invoice).await.1;
    let txid = txid_of(&raw);
    let claimed_ms = cashier::units::now_ms();
    let claim = cashier::store::payments::Claim {
        invoice: id.parse().unwrap(),
        txid,
        raw_tx: raw.clone(),
        memo: None,
        refund_to: None,
        arrival_ms: claimed_ms,
    };
    assert!(app
        .store
        .write(move |c| cashier::store::payments::claim(c, &claim, claimed_ms))
        .await
        .unwrap());

    assert_eq!(app.payments.reconcile(Some(claimed_ms)).await.unwrap(), 0);
    let (_, still) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
    assert_eq!(still["status"], "paying");
    assert_eq!(dev_broadcasts(&app), 0);
    assert!(app.events(&format!("invoice:{id}")).await.is_empty());

    assert_eq!(
        app.payments.reconcile(Some(claimed_ms + 1)).await.unwrap(),
        1
    );
    let (_, after) = app.get_json(&format!("/jpp/invoices/{id}/")).await;
    assert_eq!(after["status"], "paid", "{after}");
    assert_eq!(dev_broadcasts(&app), 1);
    assert_eq!(app.events(&format!("invoice:{id}")).await.len(), 1);
}
