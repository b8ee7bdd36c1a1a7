//! The balance kept on a wallet's row (issue 15: a payment reads one row, not the wallet's
//! history) against the truth, the sum of its payment rows: after every kind of write that
//! moves money, the two agree, and the API answers the same figure.

use std::time::Duration;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use futures_util::future::join_all;
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use serde_json::{json, Value};

use cashier::lightning::funding::Settled;
use cashier::lightning::{LnPayment, PayStatus};
use cashier::store::lightning as db;

use crate::helpers::{LnWallet, TestApp};
use crate::on_both_backends;

on_both_backends!(
    the_kept_balance_equals_the_payments_after_every_step,
    wallets_paying_each_other_at_once_neither_deadlock_nor_drift,
);

/// Asserts that `wallet`'s kept balance, the sum of its payment rows and `GET /api/v1/wallet`
/// all say `msat`. `step` names the moment for the failure message.
async fn exact(app: &TestApp, wallet: &LnWallet, msat: i64, step: &str) {
    let id = wallet.id.clone();
    let checked = app
        .store
        .read(move |c| db::check_balances(c, Some(&id)))
        .await
        .unwrap();
    assert_eq!(checked.len(), 1, "{step}");
    let check = &checked[0];
    assert_eq!(
        (check.running_msat, check.summed_msat),
        (msat, msat),
        "{step}: kept, summed"
    );
    let r = app
        .client
        .get(app.url("/api/v1/wallet"))
        .header("X-Api-Key", &wallet.inkey)
        .send()
        .await
        .unwrap();
    let answered = r.json::<Value>().await.unwrap()["balance"].as_i64();
    assert_eq!(answered, Some(msat), "{step}: GET /api/v1/wallet");
}

/// An invoice for a hash nobody here issued, signed by a stranger's key: the fake funding
/// source refuses to pay it, after the payer was debited.
fn foreign_invoice(msat: u64) -> String {
    let key = SecretKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
    let secp = Secp256k1::signing_only();
    InvoiceBuilder::new(Currency::Bitcoin)
        .payment_hash(sha256::Hash::from_byte_array(rand::random()))
        .payment_secret(PaymentSecret(rand::random()))
        .current_timestamp()
        .min_final_cltv_expiry_delta(144)
        .expiry_time(Duration::from_secs(3600))
        .amount_milli_satoshis(msat)
        .description("elsewhere".into())
        .build_signed(|m| secp.sign_ecdsa_recoverable(m, &key))
        .unwrap()
        .to_string()
}

/// An outgoing payment of `msat` from `wallet` waiting for the funding source, written as the
/// pay flow writes it (the fake source answers at once, so the test writes the row itself).
async fn pending_debit(app: &TestApp, wallet: &LnWallet, msat: i64) -> String {
    let now = cashier::units::now_ms();
    let payment = LnPayment {
        checking_id: hex::encode(rand::random::<[u8; 32]>()),
        payment_hash: hex::encode(rand::random::<[u8; 32]>()),
        wallet_id: wallet.id.clone(),
        amount_msat: -msat,
        fee_msat: 0,
        bolt11: String::new(),
        memo: Some("in flight".into()),
        status: PayStatus::Pending,
        preimage: None,
        expiry_ms: None,
        extra: json!({}),
        webhook: None,
        webhook_status: None,
        created_ms: now,
        updated_ms: now,
    };
    let id = payment.checking_id.clone();
    app.store
        .write(move |c| db::insert_payment(c, &payment))
        .await
        .unwrap();
    id
}

async fn the_kept_balance_equals_the_payments_after_every_step(app: TestApp) {
    let (a, b) = (app.ln_account("a").await, app.ln_account("b").await);
    exact(&app, &a, 0, "a new wallet").await;

    app.lightning.top_up(&a.id, 10_000).await.unwrap();
    exact(&app, &a, 10_000_000, "top-up").await;

    let invoice = app.ln_invoice(&b, 1234, "to b").await;
    exact(&app, &b, 0, "an open invoice is not money yet").await;

    let (status, paid) = app
        .ln_payments_post(
            &a.adminkey,
            json!({"out": true, "bolt11": invoice["bolt11"]}),
        )
        .await;
    assert_eq!(status, 201, "{paid}");
    exact(&app, &a, 8_766_000, "internal payment, payer").await;
    exact(&app, &b, 1_234_000, "internal payment, payee").await;

    // Paying itself: both of its rows move the one balance, by nothing.
    let own = app.ln_invoice(&a, 500, "to itself").await;
    let (status, paid) = app
        .ln_payments_post(&a.adminkey, json!({"out": true, "bolt11": own["bolt11"]}))
        .await;
    assert_eq!(status, 201, "{paid}");
    exact(&app, &a, 8_766_000, "a wallet paying itself").await;

    // Debited while the funding source is asked, credited back when it refuses; the same
    // invoice tried again (its failed row makes way) does the same.
    let elsewhere = foreign_invoice(2_000_000);
    for attempt in ["first", "again"] {
        let (status, failed) = app
            .ln_payments_post(&a.adminkey, json!({"out": true, "bolt11": elsewhere}))
            .await;
        assert_eq!(status, 520, "{failed}");
        assert_eq!(
            failed["detail"], "Payment failed: Only internal invoices can be used!",
            "{failed}"
        );
        exact(&app, &a, 8_766_000, &format!("a failed payment, {attempt}")).await;
    }

    // Settled as the funding source's listener settles a paid invoice, then reported again.
    let from_outside = app.ln_invoice(&b, 777, "from outside").await;
    let checking_id = from_outside["checking_id"].as_str().unwrap().to_owned();
    let settled = Settled {
        preimage: None,
        fee_msat: 0,
    };
    for report in ["settled", "reported twice"] {
        let p = app
            .lightning
            .settle(&checking_id, settled.clone())
            .await
            .unwrap();
        assert_eq!(p.status, PayStatus::Success);
        exact(&app, &b, 2_011_000, &format!("funding source: {report}")).await;
    }

    // An outgoing payment still in flight is spoken for; settling it moves nothing more.
    let in_flight = pending_debit(&app, &a, 1_000_000).await;
    exact(&app, &a, 7_766_000, "a pending debit").await;
    app.lightning
        .settle(&in_flight, settled.clone())
        .await
        .unwrap();
    exact(&app, &a, 7_766_000, "the pending debit settled").await;

    // One that fails later gives back exactly what it took.
    let failing = pending_debit(&app, &a, 3_000_000).await;
    exact(&app, &a, 4_766_000, "another pending debit").await;
    let (id, wallet) = (failing.clone(), a.id.clone());
    let moved = app
        .store
        .write(move |c| {
            db::lock_wallet(c, &wallet)?;
            db::fail(c, &id, cashier::units::now_ms())
        })
        .await
        .unwrap();
    assert!(moved);
    exact(&app, &a, 7_766_000, "the pending debit failed").await;
    // Failed once is failed: a second report moves nothing.
    let (id, wallet) = (failing.clone(), a.id.clone());
    let again = app
        .store
        .write(move |c| {
            db::lock_wallet(c, &wallet)?;
            db::fail(c, &id, cashier::units::now_ms())
        })
        .await
        .unwrap();
    assert!(!again);
    exact(&app, &a, 7_766_000, "failed twice").await;
    exact(&app, &b, 2_011_000, "the payee at the end").await;
}

/// Two wallets paying each other twenty times at once: every payment goes through (each
/// locks both wallets, in one order), and both balances end where they began.
async fn wallets_paying_each_other_at_once_neither_deadlock_nor_drift(app: TestApp) {
    let (a, b) = (app.ln_account("a").await, app.ln_account("b").await);
    app.lightning.top_up(&a.id, 5_000).await.unwrap();
    app.lightning.top_up(&b.id, 5_000).await.unwrap();
    let mut payments = Vec::new();
    for i in 0..10 {
        let to_b = app.ln_invoice(&b, 100, &format!("to b {i}")).await;
        let to_a = app.ln_invoice(&a, 100, &format!("to a {i}")).await;
        payments.push((a.adminkey.clone(), to_b["bolt11"].clone()));
        payments.push((b.adminkey.clone(), to_a["bolt11"].clone()));
    }
    let outcomes =
        join_all(payments.iter().map(|(key, bolt11)| {
            app.ln_payments_post(key, json!({"out": true, "bolt11": bolt11}))
        }))
        .await;
    assert!(
        outcomes.iter().all(|(status, _)| *status == 201),
        "{outcomes:?}"
    );
    exact(&app, &a, 5_000_000, "after paying each other").await;
    exact(&app, &b, 5_000_000, "after paying each other").await;
}
