//! A store's xpub: each invoice made with an amount gets the next receiving address, never so
//! far ahead that a wallet restored from the xpub (gap limit 20) would miss a payment; past
//! the limit, an address that expired unpaid is handed out again, or the merchant is told.
//! The addresses are checked against a second derivation: from the private key, the way the
//! wallet that owns the account derives them.

use bitcoin::bip32::{DerivationPath, Xpriv, Xpub};
use bitcoin::hashes::{hash160, Hash};
use bitcoin::secp256k1::Secp256k1;
use bitcoin::NetworkKind;
use serde_json::{json, Value};

use crate::helpers::{next_text, TestApp};
use crate::on_both_backends;

on_both_backends!(an_xpub_store_hands_out_addresses_a_restored_wallet_finds);
on_both_backends!(["--gap-limit", "3", "--address-reuse-after", "0"] => an_address_that_expired_unpaid_serves_again_at_the_gap_limit);

/// A test account: its tpub (m/44'/145'/0') and the account's private key.
fn account() -> (String, Xpriv) {
    let secp = Secp256k1::new();
    let seed: [u8; 32] = rand::random();
    let master = Xpriv::new_master(NetworkKind::Test, &seed).unwrap();
    let path: DerivationPath = "m/44'/145'/0'".parse().unwrap();
    let account = master.derive_priv(&secp, &path).unwrap();
    (Xpub::from_priv(&secp, &account).to_string(), account)
}

/// The account's receiving address `index`, derived from the private key.
fn owned_address(account: &Xpriv, index: u32) -> String {
    let secp = Secp256k1::new();
    let path: DerivationPath = format!("m/0/{index}").parse().unwrap();
    let key = account.derive_priv(&secp, &path).unwrap();
    let public = key.private_key.public_key(&secp).serialize();
    let hash = hash160::Hash::hash(&public).to_byte_array();
    bitcoincash::address::cashaddr::encode("bchreg", 0, &hash).unwrap()
}

async fn set_xpub(app: &TestApp, tpub: &str) {
    let tpub = tpub.to_owned();
    let set = app
        .store
        .write(move |c| cashier::store::api_keys::set_store_xpub(c, "1", Some(&tpub)))
        .await
        .unwrap();
    assert!(set);
}

/// Moves invoice `id`'s expiry to a moment ago, as if its time had run out.
async fn expire_now(app: &TestApp, id: &str) {
    use cashier::store::schema::invoices;
    use diesel::prelude::*;
    let id = id.to_owned();
    app.store
        .write(move |c| {
            diesel::update(invoices::table.filter(invoices::id.eq(&id)))
                .set(invoices::expires_ms.eq(cashier::units::now_ms() - 1))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
}

async fn create_for(app: &TestApp, sats: u64) -> (u16, Value) {
    app.create(&json!({"amount": sats})).await
}

async fn paid(app: &TestApp, id: &str) {
    app.invoice_when(id, |i| i["status"] == "paid").await;
}

async fn an_xpub_store_hands_out_addresses_a_restored_wallet_finds(app: TestApp) {
    // Without an xpub, an amount alone is refused and nothing is made.
    let (status, body) = create_for(&app, 1000).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["fields"]["amount"].is_array(), "{body}");
    assert_eq!(app.count_invoices().await, 0);

    let (tpub, owner) = account();
    set_xpub(&app, &tpub).await;
    let mut invoices = Vec::new();
    for index in 0..20u32 {
        let (status, invoice) = create_for(&app, 1000 + u64::from(index)).await;
        assert_eq!(status, 201, "{invoice}");
        assert_eq!(
            invoice["outputs"][0]["address"],
            owned_address(&owner, index).as_str()
        );
        invoices.push(invoice);
    }
    // Twenty unused in a row: a restoring wallet would look no further.
    let (status, body) = create_for(&app, 1000).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "gap_limit_reached");
    assert_eq!(app.count_invoices().await, 20);

    // Amount and outputs together, or an amount below dust: refused.
    let address = owned_address(&owner, 0);
    for bad in [
        json!({"amount": 1000, "outputs": [{"address": address, "amount": 1000}]}),
        json!({"amount": 545}),
        json!({"amount": -1}),
        json!({"amount": "1000"}),
    ] {
        let (status, body) = app.create(&bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // A payment at index 7 lets the series go on to 27, and no further.
    let pay = |invoice: &Value| {
        (
            invoice["payment_id"].as_str().unwrap().to_owned(),
            invoice["outputs"][0]["address"]
                .as_str()
                .unwrap()
                .to_owned(),
            invoice["amount"].as_u64().unwrap(),
        )
    };
    let (id, address, amount) = pay(&invoices[7]);
    let mut socket = crate::helpers::connect(&app, &format!("/ws/jpp/invoice/{id}/")).await;
    crate::chain::send_to(&app, &address, amount).await;
    assert_eq!(next_text(&mut socket).await["type"], "payment_received");
    for index in 20..=27u32 {
        let (status, invoice) = create_for(&app, 1000).await;
        assert_eq!(status, 201, "{invoice}");
        assert_eq!(
            invoice["outputs"][0]["address"],
            owned_address(&owner, index).as_str()
        );
        invoices.push(invoice);
    }
    let (status, _) = create_for(&app, 1000).await;
    assert_eq!(status, 409);

    // The farthest one paid: a wallet restored with gap limit 20 must still find it.
    let (id, address, amount) = pay(&invoices[27]);
    crate::chain::send_to(&app, &address, amount).await;
    paid(&app, &id).await;
    let used: Vec<String> = [7usize, 27]
        .iter()
        .map(|&i| {
            invoices[i]["outputs"][0]["address"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut found = Vec::new();
    let (mut index, mut unused_run) = (0u32, 0u32);
    while unused_run < 20 {
        let address = owned_address(&owner, index);
        if used.contains(&address) {
            found.push(address);
            unused_run = 0;
        } else {
            unused_run += 1;
        }
        index += 1;
    }
    assert_eq!(found, used, "the restored wallet finds every payment");
}

async fn an_address_that_expired_unpaid_serves_again_at_the_gap_limit(app: TestApp) {
    let (tpub, owner) = account();
    set_xpub(&app, &tpub).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, invoice) = create_for(&app, 2000).await;
        assert_eq!(status, 201);
        ids.push(invoice["payment_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(create_for(&app, 2000).await.0, 409);
    // Index 1 is given up (cancelled unpaid) and its time is up; with no wait set, its
    // address serves again. (A cancelled invoice's address waits for its expiry: the payer
    // may still have it open.)
    assert_eq!(app.cancel(&ids[1]).await, 200);
    assert_eq!(create_for(&app, 2000).await.0, 409, "not before its expiry");
    expire_now(&app, &ids[1]).await;
    let (status, again) = create_for(&app, 2500).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(
        again["outputs"][0]["address"],
        owned_address(&owner, 1).as_str()
    );
    // Money sent there now goes to the invoice waiting for it, and is recorded there.
    let id = again["payment_id"].as_str().unwrap().to_owned();
    crate::chain::send_to(&app, &owned_address(&owner, 1), 2500).await;
    paid(&app, &id).await;
    let (_, old) = app.get_json(&format!("/api/jpp/invoices/{}", ids[1])).await;
    assert_eq!(old["status"], "cancelled");
    // Index 1 is used now; the run after it allows a new index again.
    let (status, next) = create_for(&app, 1000).await;
    assert_eq!(status, 201, "{next}");
    assert_eq!(
        next["outputs"][0]["address"],
        owned_address(&owner, 3).as_str()
    );
}
