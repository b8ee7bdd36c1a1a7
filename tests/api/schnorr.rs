//! Schnorr-signed payments, as Paytaca, Cashonize and every libauth wallet sign them
//! (SIGHASH_ALL|FORKID and SIGHASH_ALL|UTXOS|FORKID), through every payment dialect; and
//! forged Schnorr signatures refused with nothing written.

use prost::Message;
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

use cashier::chain::sighash::{sign_p2pkh_with, SignWith};
use cashier::chain::{txid_of, OutPoint, Output, Tx};
use cashier::jpp::bip70;

use crate::helpers::{invoice_outputs, TestApp, TestWallet};
use crate::on_both_backends;

on_both_backends!(
    schnorr_payments_are_accepted_in_every_dialect,
    forged_schnorr_signatures_are_refused_and_change_nothing,
    dev_pay_signs_with_schnorr_unless_told_ecdsa,
);

/// The ways a wallet posts a payment to the one payment URL.
#[derive(Debug, Clone, Copy)]
enum Dialect {
    /// Paytaca's watchtower JSON to `pay/`.
    Watchtower,
    /// JSON Payment Protocol v1 (BitPay, Paytaca's default).
    JppV1,
    /// JSON Payment Protocol v2 (`x-paypro-version: 2`).
    JppV2,
    /// BIP70 protobuf (Electron Cash).
    Bip70,
}

const DIALECTS: [Dialect; 4] = [
    Dialect::Watchtower,
    Dialect::JppV1,
    Dialect::JppV2,
    Dialect::Bip70,
];

/// What the server answered: status, content type, body.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn post(app: &TestApp, id: &str, dialect: Dialect, raw: &[u8]) -> Answer {
    let url = app.url(&format!("/api/jpp/invoices/{id}/"));
    let tx = hex::encode(raw);
    let request = match dialect {
        Dialect::Watchtower => app
            .client
            .post(format!("{url}pay/"))
            .json(&json!({"raw_tx_hex": tx})),
        Dialect::JppV1 => app
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/payment")
            .body(json!({"currency": "BCH", "transactions": [tx]}).to_string()),
        Dialect::JppV2 => app
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/payment")
            .header("x-paypro-version", "2")
            .body(
                json!({"chain": "BCH", "currency": "BCH",
                       "transactions": [{"tx": tx, "weightedSize": raw.len()}]})
                .to_string(),
            ),
        Dialect::Bip70 => app
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/bitcoincash-payment")
            .body(
                bip70::Payment {
                    transactions: vec![raw.to_vec()],
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
    };
    let r = request.send().await.expect("POST");
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Answer {
        status,
        content_type,
        body: r.bytes().await.expect("body").to_vec(),
    }
}

/// The unlocking signature of input `index`: `<sig>` of `<sig> <pubkey>`.
fn signature_of(raw: &[u8], index: usize) -> Vec<u8> {
    let tx = Tx::decode(raw).unwrap();
    let script_sig = &tx.inputs[index].script_sig;
    script_sig[1..1 + usize::from(script_sig[0])].to_vec()
}

fn broadcasts(app: &TestApp) -> u64 {
    app.payments
        .node()
        .dev()
        .expect("dev chain")
        .broadcast_calls()
}

async fn invoice_status(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("/api/jpp/invoices/{id}/")).await.1
}

/// An open invoice for 4000 sats, and a wallet coin that can pay it.
async fn invoice_and_coin(app: &TestApp, wallet: &TestWallet) -> (Value, (OutPoint, Output)) {
    let invoice = app.create_simple(4000).await;
    let coin = wallet.fund(app, 20_000, None).await;
    (invoice, coin)
}

async fn schnorr_payments_are_accepted_in_every_dialect(app: TestApp) {
    let wallet = TestWallet::new();
    let mut paid = 0;
    for how in [
        SignWith::Schnorr { hash_type: 0x41 },
        SignWith::Schnorr { hash_type: 0x61 },
        SignWith::Schnorr { hash_type: 0xc1 },
        // ECDSA stays accepted beside it.
        SignWith::Ecdsa { hash_type: 0x41 },
        SignWith::Ecdsa { hash_type: 0x61 },
    ] {
        for dialect in DIALECTS {
            let (invoice, coin) = invoice_and_coin(&app, &wallet).await;
            let id = invoice["payment_id"].as_str().unwrap();
            // Two coins, so SIGHASH_UTXOS covers more than the input it signs.
            let extra = wallet.fund(&app, 1_000, None).await;
            let raw = wallet.pay_with(&[coin, extra], invoice_outputs(&invoice), 1000, how);
            for index in 0..2 {
                let sig = signature_of(&raw, index);
                assert_eq!(sig.last(), Some(&(how.hash_type() as u8)));
                if let SignWith::Schnorr { .. } = how {
                    assert_eq!(sig.len(), 65, "a Schnorr signature and its hash type");
                } else {
                    assert_eq!(sig[0], 0x30, "DER");
                }
            }

            let answer = post(&app, id, dialect, &raw).await;
            assert_eq!(
                answer.status,
                200,
                "{how:?} via {dialect:?}: {}",
                answer.text()
            );
            let now = invoice_status(&app, id).await;
            assert_eq!(now["status"], "paid", "{how:?} via {dialect:?}");
            assert_eq!(now["payment"]["txid"], txid_of(&raw).to_hex());
            let events = app.events(&format!("invoice:{id}")).await;
            assert_eq!(events.len(), 1, "{how:?} via {dialect:?}: {events:?}");
            assert_eq!(events[0].1, "payment_received");
            paid += 1;
        }
    }
    assert_eq!(paid, 20);
    assert_eq!(broadcasts(&app), 20);
}

/// The same payment with its first signature forged in each way a wallet bug or an attacker
/// could: one bit of s or r, another key's signature, the hash type byte changed afterwards.
fn forgeries(
    wallet: &TestWallet,
    raw: &[u8],
    coins: &[(OutPoint, Output)],
) -> Vec<(String, Vec<u8>)> {
    let tx = Tx::decode(raw).unwrap();
    let hash_type = u32::from(*signature_of(raw, 0).last().unwrap());
    let forge = |what: &str, change: &dyn Fn(&mut Vec<u8>)| {
        let mut forged = tx.clone();
        change(&mut forged.inputs[0].script_sig);
        (
            format!("{what} (hash type {hash_type:#x})"),
            forged.serialize(),
        )
    };
    // The script_sig is [65] r(32) s(32) type [33] key(33).
    let mut out = vec![
        forge("a bit of s flipped", &|s| s[1 + 32 + 7] ^= 0x04),
        forge("a bit of r flipped", &|s| s[1 + 3] ^= 0x10),
        forge("the hash type changed after signing", &|s| {
            s[65] = if hash_type == 0x41 { 0x61 } else { 0x41 }
        }),
    ];
    // Another key signs this very transaction (same digest); the script keeps our key.
    let other = TestWallet::new();
    let spent: Vec<Output> = coins.iter().map(|(_, o)| o.clone()).collect();
    let mut theirs = tx.clone();
    sign_p2pkh_with(
        &wallet.secp,
        &mut theirs,
        &spent,
        &other.key,
        SignWith::Schnorr { hash_type },
    )
    .unwrap();
    out.push(forge("another key's signature", &|s| {
        s[..66].copy_from_slice(&theirs.inputs[0].script_sig[..66])
    }));
    out
}

/// How each dialect words a refusal by the node, for `what` (the reason must reach wallets
/// that show text, and BitPay wallets read `msg`).
fn assert_node_refusal(dialect: Dialect, answer: &Answer, what: &str) {
    assert_eq!(
        answer.status,
        400,
        "{what} via {dialect:?}: {}",
        answer.text()
    );
    let said = match dialect {
        Dialect::Watchtower => {
            let body = answer.json();
            assert_eq!(body["code"], "rejected_by_network", "{what}: {body}");
            body["detail"].as_str().unwrap_or_default().to_owned()
        }
        Dialect::JppV1 | Dialect::JppV2 => {
            let body = answer.json();
            assert_eq!(body["msg"], body["message"], "{what}: {body}");
            body["msg"].as_str().unwrap_or_default().to_owned()
        }
        Dialect::Bip70 => {
            assert!(answer.content_type.starts_with("text/plain"), "{what}");
            answer.text()
        }
    };
    assert!(
        said.contains("mandatory-script-verify-flag-failed"),
        "{what} via {dialect:?}: {said:?}"
    );
}

async fn forged_schnorr_signatures_are_refused_and_change_nothing(app: TestApp) {
    let wallet = TestWallet::new();
    let mut refused = 0;
    for hash_type in [0x41, 0x61] {
        let (invoice, coin) = invoice_and_coin(&app, &wallet).await;
        let id = invoice["payment_id"].as_str().unwrap();
        let extra = wallet.fund(&app, 1_000, None).await;
        let coins = [coin, extra];
        let how = SignWith::Schnorr { hash_type };
        let genuine = wallet.pay_with(&coins, invoice_outputs(&invoice), 1000, how);
        let before = broadcasts(&app);
        for (what, raw) in forgeries(&wallet, &genuine, &coins) {
            for dialect in DIALECTS {
                let answer = post(&app, id, dialect, &raw).await;
                assert_node_refusal(dialect, &answer, &what);
                let recorded = app.payment_of(&raw).await;
                assert!(recorded.is_none(), "{what} via {dialect:?} was recorded");
                refused += 1;
            }
        }
        assert_eq!(broadcasts(&app), before, "a forgery reached the broadcast");
        let now = invoice_status(&app, id).await;
        assert_eq!(now["status"], "open");
        assert_eq!(now["payment"], Value::Null);
        assert!(app.events(&format!("invoice:{id}")).await.is_empty());

        // The genuine transaction still pays it.
        let answer = post(&app, id, Dialect::Watchtower, &genuine).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(invoice_status(&app, id).await["status"], "paid");
        assert_eq!(app.events(&format!("invoice:{id}")).await.len(), 1);
    }
    assert_eq!(refused, 2 * 4 * DIALECTS.len());
}

/// `cashier dev pay` signs as wallets do (Schnorr) unless given `--ecdsa`.
async fn dev_pay_signs_with_schnorr_unless_told_ecdsa(app: TestApp) {
    for (flags, schnorr) in [(&[][..], true), (&["--ecdsa"][..], false)] {
        let invoice = app.create_simple(4000).await;
        let url = invoice["payment_url"].as_str().unwrap().to_owned();
        let args: Vec<String> = ["dev", "pay", &url]
            .iter()
            .chain(flags)
            .map(|s| s.to_string())
            .collect();
        let out = tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cashier"));
            for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CASHIER_")) {
                cmd.env_remove(key);
            }
            cmd.args(&args).output().unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let txid = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let id = invoice["payment_id"].as_str().unwrap();
        let now = invoice_status(&app, id).await;
        assert_eq!(now["status"], "paid");
        assert_eq!(now["payment"]["txid"], txid.as_str());
        let txid = cashier::chain::Txid::from_hex(&txid).unwrap();
        let row = app
            .store
            .read(move |c| cashier::store::payments::by_txid(c, txid))
            .await
            .unwrap()
            .expect("the payment row");
        let tx = Tx::decode(&row.raw_tx).unwrap();
        for index in 0..tx.inputs.len() {
            let sig = signature_of(&row.raw_tx, index);
            assert_eq!(sig.last(), Some(&0x41), "{flags:?}");
            if schnorr {
                assert_eq!(sig.len(), 65, "input {index}");
            } else {
                assert_eq!(sig[0], 0x30, "DER, input {index}");
            }
        }
    }
}
