//! Lightning: an invoice that borrows the payment hash of one a wallet here issued. Anyone can
//! sign a BOLT11 with any hash they have seen; paying such a forgery must never settle the
//! real invoice, move money, reach the funding source or leave a row behind. Each refusal is
//! checked against a snapshot of everything an attacker could hope to change.

use std::time::Duration;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use diesel::prelude::*;
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use serde_json::{json, Value};

use crate::helpers::{LnWallet, TestApp};
use crate::on_both_backends;

on_both_backends!(
    another_payee_key_is_refused,
    another_amount_is_refused,
    our_own_key_cannot_change_what_we_issued,
    another_description_is_refused,
    an_amountless_copy_is_refused,
    an_expired_invoice_is_refused,
    the_stored_expiry_decides,
    a_paid_invoice_is_not_paid_again,
    a_forged_local_hash_never_reaches_the_funding_source,
    a_wallet_cannot_forge_its_own_invoice,
    the_genuine_invoice_moves_the_stored_amount,
    amounts_at_the_edges_are_refused_and_change_nothing,
);

/// The invoice every attack goes after: 100,000 sats to the merchant.
const SATS: u64 = 100_000;
const MSAT: u64 = SATS * 1000;
const MISMATCH: &str = "Invoice does not match the one issued for this payment hash.";

enum Description {
    Text(&'static str),
    Hash([u8; 32]),
}

/// A BOLT11 with `hash`, signed by `key`: what an attacker can make from a hash alone.
fn forge(
    hash: &str,
    amount_msat: Option<u64>,
    description: Description,
    key: &SecretKey,
) -> String {
    let hash: [u8; 32] = hex::decode(hash).unwrap().try_into().unwrap();
    let mut builder = InvoiceBuilder::new(Currency::Bitcoin)
        .payment_hash(sha256::Hash::from_byte_array(hash))
        .payment_secret(PaymentSecret(rand::random()))
        .current_timestamp()
        .min_final_cltv_expiry_delta(144)
        .expiry_time(Duration::from_secs(3600));
    if let Some(msat) = amount_msat {
        builder = builder.amount_milli_satoshis(msat);
    }
    let secp = Secp256k1::signing_only();
    let sign = |m: &bitcoin::secp256k1::Message| secp.sign_ecdsa_recoverable(m, key);
    match description {
        Description::Text(t) => builder.description(t.into()).build_signed(sign),
        Description::Hash(h) => builder
            .description_hash(sha256::Hash::from_byte_array(h))
            .build_signed(sign),
    }
    .unwrap()
    .to_string()
}

fn random_key() -> SecretKey {
    SecretKey::from_slice(&rand::random::<[u8; 32]>()).unwrap()
}

/// The key the fake funding source signs with, derived as the server derives it from
/// --fake-wallet-secret (default "cashier-fake").
fn our_key() -> SecretKey {
    let secret =
        std::env::var("CASHIER_FAKE_WALLET_SECRET").unwrap_or_else(|_| "cashier-fake".into());
    let digest = sha256::Hash::hash(format!("cashier fake funding source: {secret}").as_bytes());
    SecretKey::from_slice(digest.as_byte_array()).unwrap()
}

async fn get(app: &TestApp, key: &str, path: &str) -> Value {
    let r = app
        .client
        .get(app.url(path))
        .header("X-Api-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

async fn pay(app: &TestApp, payer: &LnWallet, bolt11: &str) -> (u16, Value) {
    app.ln_payments_post(&payer.adminkey, json!({"out": true, "bolt11": bolt11}))
        .await
}

/// Everything a refused payment must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    balances: Vec<i64>,
    /// Each wallet's kept balance and the sum of its payment rows (always equal).
    kept_and_summed: Vec<(i64, i64)>,
    payments: Vec<Value>,
    events: Vec<Vec<(i64, String, String)>>,
    /// The attacked invoice as its payee sees it.
    invoice: Value,
}

/// The wallets in play and the invoice under attack.
struct Scene<'a> {
    app: &'a TestApp,
    wallets: Vec<&'a LnWallet>,
    payee: &'a LnWallet,
    hash: String,
}

impl Scene<'_> {
    async fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot {
            balances: vec![],
            kept_and_summed: vec![],
            payments: vec![],
            events: vec![],
            invoice: get(
                self.app,
                &self.payee.inkey,
                &format!("/api/v1/payments/{}", self.hash),
            )
            .await,
        };
        for w in &self.wallets {
            let wallet = get(self.app, &w.inkey, "/api/v1/wallet").await;
            s.balances.push(wallet["balance"].as_i64().unwrap());
            s.payments
                .push(get(self.app, &w.inkey, "/api/v1/payments?limit=200").await);
            s.events
                .push(self.app.events(&format!("wallet:{}", w.id)).await);
            let id = w.id.clone();
            let checked = self
                .app
                .store
                .read(move |c| cashier::store::lightning::check_balances(c, Some(&id)))
                .await
                .unwrap();
            let kept_and_summed = (checked[0].running_msat, checked[0].summed_msat);
            assert!(checked[0].agrees(), "{checked:?}");
            s.kept_and_summed.push(kept_and_summed);
        }
        s
    }

    /// `payer` pays `bolt11`: refused with `status` and `detail`, and nothing changed.
    async fn refused(&self, payer: &LnWallet, bolt11: &str, status: u16, detail: &str) {
        let before = self.snapshot().await;
        let (s, body) = pay(self.app, payer, bolt11).await;
        assert_eq!(s, status, "{body}");
        assert_eq!(body["detail"], detail, "{body}");
        if status == 520 {
            assert_eq!(body["status"], "failed", "{body}");
        }
        assert_eq!(self.snapshot().await, before, "a refusal changed something");
    }

    async fn assert_pending(&self) {
        let invoice = self.snapshot().await.invoice;
        assert_eq!(invoice["paid"], false, "{invoice}");
        assert_eq!(invoice["status"], "pending", "{invoice}");
    }
}

/// A merchant with the 100,000-sat invoice (memo "coffee") and an attacker with `funds` sats.
async fn setup(app: &TestApp, funds: u64) -> (LnWallet, LnWallet, Value) {
    let (m, a) = (
        app.ln_account("merchant").await,
        app.ln_account("attacker").await,
    );
    if funds > 0 {
        app.lightning.top_up(&a.id, funds).await.unwrap();
    }
    let invoice = app.ln_invoice(&m, SATS, "coffee").await;
    (m, a, invoice)
}

fn hash_of(invoice: &Value) -> String {
    invoice["payment_hash"].as_str().unwrap().to_owned()
}

/// The reported hole: a wallet with nothing in it signs the merchant's hash with its own key.
async fn another_payee_key_is_refused(app: TestApp) {
    let (m, a, invoice) = setup(&app, 0).await;
    let hash = hash_of(&invoice);
    let scene = Scene {
        app: &app,
        wallets: vec![&m, &a],
        payee: &m,
        hash: hash.clone(),
    };
    let forged = forge(
        &hash,
        Some(MSAT),
        Description::Text("coffee"),
        &random_key(),
    );
    scene.refused(&a, &forged, 520, MISMATCH).await;
    // In any spelling.
    let shouted = format!("LIGHTNING:{}", forged.to_uppercase());
    scene.refused(&a, &shouted, 520, MISMATCH).await;
    scene.assert_pending().await;
}

async fn another_amount_is_refused(app: TestApp) {
    let (m, a, invoice) = setup(&app, 0).await;
    let hash = hash_of(&invoice);
    let scene = Scene {
        app: &app,
        wallets: vec![&m, &a],
        payee: &m,
        hash: hash.clone(),
    };
    let amounts = [0, 1, 1000, MSAT - 1000, MSAT + 1000];
    for msat in amounts {
        let forged = forge(
            &hash,
            Some(msat),
            Description::Text("coffee"),
            &random_key(),
        );
        scene.refused(&a, &forged, 520, MISMATCH).await;
    }
    // Money in the attacker's wallet changes nothing: the refusal is not about the balance.
    app.lightning.top_up(&a.id, 2 * SATS).await.unwrap();
    for msat in amounts {
        let forged = forge(
            &hash,
            Some(msat),
            Description::Text("coffee"),
            &random_key(),
        );
        scene.refused(&a, &forged, 520, MISMATCH).await;
    }
    scene.assert_pending().await;
}

/// An attacker who knows the fake source's secret signs as we do; still, an invoice that
/// differs from the one we issued (amount, description) is not ours.
async fn our_own_key_cannot_change_what_we_issued(app: TestApp) {
    let (m, a, invoice) = setup(&app, 2 * SATS).await;
    let hash = hash_of(&invoice);
    let r = app
        .client
        .post(app.url("/api/v1/payments/decode"))
        .body(json!({"data": invoice["bolt11"]}).to_string())
        .send()
        .await
        .unwrap();
    let decoded: Value = r.json().await.unwrap();
    let key = our_key();
    assert_eq!(
        decoded["payee"],
        key.public_key(&Secp256k1::new()).to_string(),
        "the test signs with the server's own key"
    );
    let scene = Scene {
        app: &app,
        wallets: vec![&m, &a],
        payee: &m,
        hash: hash.clone(),
    };
    for msat in [1, 1000, MSAT + 1000] {
        let forged = forge(&hash, Some(msat), Description::Text("coffee"), &key);
        scene.refused(&a, &forged, 520, MISMATCH).await;
    }
    for description in [
        Description::Text("tea"),
        Description::Hash(*sha256::Hash::hash(b"coffee").as_byte_array()),
    ] {
        let forged = forge(&hash, Some(MSAT), description, &key);
        scene.refused(&a, &forged, 520, MISMATCH).await;
    }

    // The same with an invoice issued for a description hash.
    let ours = *sha256::Hash::hash(b"the real order").as_byte_array();
    let (status, hashed) = app
        .ln_payments_post(
            &m.inkey,
            json!({"out": false, "amount": SATS, "description_hash": hex::encode(ours)}),
        )
        .await;
    assert_eq!(status, 201, "{hashed}");
    let scene = Scene {
        hash: hash_of(&hashed),
        ..scene
    };
    let other = *sha256::Hash::hash(b"another order").as_byte_array();
    for description in [Description::Hash(other), Description::Text("")] {
        let forged = forge(&scene.hash, Some(MSAT), description, &key);
        scene.refused(&a, &forged, 520, MISMATCH).await;
    }
    let cheaper = forge(&scene.hash, Some(1000), Description::Hash(ours), &key);
    scene.refused(&a, &cheaper, 520, MISMATCH).await;
    scene.assert_pending().await;
}

async fn another_description_is_refused(app: TestApp) {
    let (m, a, invoice) = setup(&app, 2 * SATS).await;
    let hash = hash_of(&invoice);
    let scene = Scene {
        app: &app,
        wallets: vec![&m, &a],
        payee: &m,
        hash: hash.clone(),
    };
    for description in [
        Description::Hash(*sha256::Hash::hash(b"coffee").as_byte_array()),
        Description::Hash([7; 32]),
        Description::Text("tea"),
    ] {
        let forged = forge(&hash, Some(MSAT), description, &random_key());
        scene.refused(&a, &forged, 520, MISMATCH).await;
    }
    scene.assert_pending().await;
}

/// Without an amount there is nothing to match; refused as LNbits refuses it.
async fn an_amountless_copy_is_refused(app: TestApp) {
    let (m, a, invoice) = setup(&app, 2 * SATS).await;
    let hash = hash_of(&invoice);
    let scene = Scene {
        app: &app,
        wallets: vec![&m, &a],
        payee: &m,
        hash: hash.clone(),
    };
    for key in [random_key(), our_key()] {
        let forged = forge(&hash, None, Description::Text("coffee"), &key);
        scene
            .refused(&a, &forged, 400, "Amountless invoices not supported.")
            .await;
    }
    scene.assert_pending().await;
}

/// The merchant's genuine invoice, once its time is up.
async fn an_expired_invoice_is_refused(app: TestApp) {
    let (m, a) = (
        app.ln_account("merchant").await,
        app.ln_account("payer").await,
    );
    let probe = app.ln_account("probe").await;
    app.lightning.top_up(&a.id, 2 * SATS).await.unwrap();
    let (status, invoice) = app
        .ln_payments_post(
            &m.inkey,
            json!({"out": false, "amount": SATS, "memo": "soon gone", "expiry": 1}),
        )
        .await;
    assert_eq!(status, 201, "{invoice}");
    let bolt11 = invoice["bolt11"].as_str().unwrap();
    let scene = Scene {
        app: &app,
        wallets: vec![&m, &a, &probe],
        payee: &m,
        hash: hash_of(&invoice),
    };
    let before = scene.snapshot().await;
    // An empty wallet asks until the server itself says the invoice expired: until then it is
    // refused for the balance, which writes nothing either.
    let mut expired = false;
    for _ in 0..100 {
        let (s, body) = pay(&app, &probe, bolt11).await;
        if body["detail"] == "Invoice expired." {
            assert_eq!(s, 400, "{body}");
            expired = true;
            break;
        }
        assert_eq!(body["detail"], "Insufficient balance.", "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(expired, "the 1-second invoice never expired");
    assert_eq!(scene.snapshot().await, before);
    scene.refused(&a, bolt11, 400, "Invoice expired.").await;
    scene.assert_pending().await;
}

/// The stored expiry is what counts, even while the invoice's own text says it is still good.
async fn the_stored_expiry_decides(app: TestApp) {
    use cashier::store::schema::ln_payments;
    let (m, a, invoice) = setup(&app, 2 * SATS).await;
    let hash = hash_of(&invoice);
    let (h, past) = (hash.clone(), cashier::units::now_ms() - 1000);
    app.store
        .write(move |c| {
            diesel::update(
                ln_payments::table
                    .filter(ln_payments::payment_hash.eq(&h))
                    .filter(ln_payments::amount_msat.gt(0)),
            )
            .set(ln_payments::expiry_ms.eq(past))
            .execute(c)
            .map_err(Into::into)
        })
        .await
        .unwrap();
    let scene = Scene {
        app: &app,
        wallets: vec![&m, &a],
        payee: &m,
        hash,
    };
    let bolt11 = invoice["bolt11"].as_str().unwrap();
    scene.refused(&a, bolt11, 400, "Invoice expired.").await;
    scene.assert_pending().await;
}

/// Paid once by A; neither A nor B can pay it again.
async fn a_paid_invoice_is_not_paid_again(app: TestApp) {
    let (m, a, invoice) = setup(&app, 3 * SATS).await;
    let b = app.ln_account("another payer").await;
    app.lightning.top_up(&b.id, 3 * SATS).await.unwrap();
    let bolt11 = invoice["bolt11"].as_str().unwrap();
    let (status, body) = pay(&app, &a, bolt11).await;
    assert_eq!(status, 201, "{body}");
    let scene = Scene {
        app: &app,
        wallets: vec![&m, &a, &b],
        payee: &m,
        hash: hash_of(&invoice),
    };
    let after_first = scene.snapshot().await;
    assert_eq!(after_first.invoice["paid"], true);
    assert_eq!(
        after_first.balances,
        vec![MSAT as i64, (2 * MSAT) as i64, (3 * MSAT) as i64]
    );
    for payer in [&a, &b] {
        scene
            .refused(payer, bolt11, 520, "Internal invoice already paid.")
            .await;
        let forged = forge(
            &scene.hash,
            Some(1000),
            Description::Text("coffee"),
            &random_key(),
        );
        scene.refused(payer, &forged, 520, MISMATCH).await;
    }
    assert_eq!(scene.snapshot().await, after_first);
}

/// A funded wallet signs the merchant's hash with its own key: refused before the funding
/// source is asked (which would leave a failed row and answer "Payment failed: ...").
async fn a_forged_local_hash_never_reaches_the_funding_source(app: TestApp) {
    let (m, a, invoice) = setup(&app, 2 * SATS).await;
    let hash = hash_of(&invoice);
    let scene = Scene {
        app: &app,
        wallets: vec![&m, &a],
        payee: &m,
        hash: hash.clone(),
    };
    let forged = forge(
        &hash,
        Some(MSAT),
        Description::Text("coffee"),
        &random_key(),
    );
    scene.refused(&a, &forged, 520, MISMATCH).await;
    scene.assert_pending().await;

    // The contrast: a hash nobody here issued does go to the funding source, and leaves a row.
    let unknown = hex::encode(rand::random::<[u8; 32]>());
    let elsewhere = forge(
        &unknown,
        Some(MSAT),
        Description::Text("coffee"),
        &random_key(),
    );
    let (status, body) = pay(&app, &a, &elsewhere).await;
    assert_eq!(status, 520, "{body}");
    assert_eq!(
        body["detail"],
        "Payment failed: Only internal invoices can be used!"
    );
    let list = get(&app, &a.inkey, "/api/v1/payments?limit=200").await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["payment_hash"] == unknown.as_str() && p["status"] == "failed"),
        "{list}"
    );
}

/// A wallet's own invoice, rewritten by that wallet for less: not the invoice it issued.
async fn a_wallet_cannot_forge_its_own_invoice(app: TestApp) {
    let a = app.ln_account("self").await;
    app.lightning.top_up(&a.id, 2 * SATS).await.unwrap();
    let invoice = app.ln_invoice(&a, SATS, "mine").await;
    let hash = hash_of(&invoice);
    let scene = Scene {
        app: &app,
        wallets: vec![&a],
        payee: &a,
        hash: hash.clone(),
    };
    for key in [random_key(), our_key()] {
        let forged = forge(&hash, Some(1), Description::Text("mine"), &key);
        scene.refused(&a, &forged, 520, MISMATCH).await;
    }
    scene.assert_pending().await;
}

/// The genuine invoice, in any spelling, moves exactly the stored amount.
async fn the_genuine_invoice_moves_the_stored_amount(app: TestApp) {
    let (m, a, invoice) = setup(&app, 3 * SATS).await;
    let scene = Scene {
        app: &app,
        wallets: vec![&m, &a],
        payee: &m,
        hash: hash_of(&invoice),
    };
    let before = scene.snapshot().await;
    let spelled = format!(
        "LIGHTNING:{}",
        invoice["bolt11"].as_str().unwrap().to_uppercase()
    );
    let (status, paid) = pay(&app, &a, &spelled).await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["amount"], -(MSAT as i64));
    assert_eq!(paid["status"], "success");
    let after = scene.snapshot().await;
    assert_eq!(after.balances[0] - before.balances[0], MSAT as i64);
    assert_eq!(before.balances[1] - after.balances[1], MSAT as i64);
    assert_eq!(after.invoice["paid"], true);
    assert_eq!(after.invoice["details"]["amount"], MSAT as i64);
    // One event each side.
    assert_eq!(after.events[0].len(), before.events[0].len() + 1);
    assert_eq!(after.events[1].len(), before.events[1].len() + 1);
}

/// Amounts at the edges: none, less than none, more than a balance (an i64 of msat) holds.
/// Each is refused and changes nothing; a refused internal payment leaves neither side moved.
async fn amounts_at_the_edges_are_refused_and_change_nothing(app: TestApp) {
    let (m, a, invoice) = setup(&app, 2 * SATS).await;
    let scene = Scene {
        app: &app,
        wallets: vec![&m, &a],
        payee: &m,
        hash: hash_of(&invoice),
    };
    for amount in [
        json!(0),
        json!(-1),
        json!(-0.0),
        json!(i64::MIN),
        json!(10_000_001),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1e30),
    ] {
        let before = scene.snapshot().await;
        let (status, body) = app
            .ln_payments_post(&m.inkey, json!({"out": false, "amount": amount}))
            .await;
        assert_eq!(status, 400, "{amount}: {body}");
        assert_eq!(scene.snapshot().await, before, "{amount}");
    }
    // A zero-amount invoice from elsewhere is no payment: refused before the funding source
    // is asked (which would leave a failed row).
    let nowhere = hex::encode(rand::random::<[u8; 32]>());
    let zero = forge(
        &nowhere,
        Some(0),
        Description::Text("nothing"),
        &random_key(),
    );
    scene
        .refused(&a, &zero, 400, "Amountless invoices not supported.")
        .await;

    // A balance never passes i64::MAX msat: a credit that would is refused whole.
    let full = u64::try_from(i64::MAX / 1000).unwrap();
    let rich = app.ln_account("rich").await;
    app.lightning.top_up(&rich.id, full).await.unwrap();
    let to_rich = app.ln_invoice(&rich, 1, "one sat too many").await;
    let scene = Scene {
        app: &app,
        wallets: vec![&m, &a, &rich],
        payee: &rich,
        hash: hash_of(&to_rich),
    };
    let before = scene.snapshot().await;
    assert_eq!(before.balances[2], i64::MAX / 1000 * 1000);
    for sats in [1, full, u64::MAX] {
        let refused = app.lightning.top_up(&rich.id, sats).await;
        assert!(
            matches!(refused, Err(cashier::lightning::LnError::Invalid(_))),
            "{sats}: {refused:?}"
        );
        assert_eq!(scene.snapshot().await, before, "top-up of {sats}");
    }
    // Paid from another wallet, the payee's credit would overflow: the payer is not debited,
    // the invoice stays open, no row and no event on either side.
    let overflow = format!(
        "A wallet's balance cannot move by 1000 msat: it would go below zero or past {} msat.",
        i64::MAX
    );
    let bolt11 = to_rich["bolt11"].as_str().unwrap();
    scene.refused(&a, bolt11, 400, &overflow).await;
    scene.assert_pending().await;
}
