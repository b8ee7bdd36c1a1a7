//! Paytaca paying invoices, replayed request for request from its own client code
//! (paytaca-app `src/wallet/payment-uri.js`, `JSONPaymentProtocol`, and
//! `src/utils/send-page-utils.js`, HEAD 7a39ab38; research §6.2). Paytaca cannot run headless,
//! so this file does what its code does: the same URLs, methods, header names in its casing,
//! bodies in its field order, the same reading of answers and errors, and transactions built
//! as cashscript builds them (Schnorr, SIGHASH_ALL|UTXOS|FORKID, the fee exactly the rate
//! times the signed size).
//!
//! Paytaca picks its dialect from the host of the payment URL (`JPPSourceTypes.resolve`):
//! `127.0.0.1` → BitPay JPP v2, `localhost` → watchtower JSON, any other host → JPP v1; and it
//! picks again from the `paymentUrl` of the invoice it fetched. Each host class gets a server
//! whose `--public-url` has that host; the test client resolves the names to the server.
//!
//! What is not replayed: Paytaca's own refusals of regtest (`bchreg:` addresses, network not
//! "main"), which are checks of the wallet, not requests to the server.

use std::net::SocketAddr;

use reqwest::Url;
use serde_json::{json, Value};

use cashier::chain::sighash::SignWith;
use cashier::chain::{txid_of, OutPoint, Output, Tx};

use crate::helpers::{invoice_outputs, TestApp, TestWallet, ADDR, ADDR_TOKEN};
use crate::on_both_backends;

on_both_backends!(
    a_127_0_0_1_host_is_paid_over_jpp_v2_at_exactly_the_rate,
    a_localhost_uri_naming_127_0_0_1_switches_to_v2_and_pays,
);
on_both_backends!(["--public-url", "http://localhost"] =>
    a_localhost_host_is_paid_over_watchtower_json_at_exactly_the_rate,
);
on_both_backends!(["--public-url", "http://shop.example"] =>
    a_public_host_is_paid_over_jpp_v1_at_exactly_the_rate,
);

/// Where Paytaca sends an invoice's requests (`JPPSourceTypes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// JPP v1: any host it does not know.
    Default,
    BitPay,
    Watchtower,
    /// bitcoin.com and anypay hosts, proxied through watchtower.cash: never ours.
    Proxied,
}

/// `JPPSourceTypes.resolve`: substrings of the URL's `host`, which includes the port.
fn resolve(url: &Url) -> Source {
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_owned(),
    };
    let has = |s: &str| host.contains(s);
    if has("127.0.0.1") {
        Source::BitPay
    } else if has("bitcoin.com") {
        Source::Proxied
    } else if has("bitpay") {
        Source::BitPay
    } else if has("watchtower.cash") {
        Source::Watchtower
    } else if has("paymenthub.paytaca.com") {
        Source::BitPay
    } else if has("localhost") {
        Source::Watchtower
    } else if has("anypay") {
        Source::Proxied
    } else {
        Source::Default
    }
}

/// What axios (0.21, Paytaca's) makes of a body: parsed as JSON if it parses, whatever its
/// type (`transitional.forcedJSONParsing`), else the text.
fn axios_data(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
}

/// What Paytaca shows for a failed fetch (`handleJpp`): the server's words only when axios
/// left the body a string; a text mentioning expiry as its own phrase.
fn shown_for_failed_fetch(body: &str) -> String {
    match axios_data(body) {
        Value::String(text) if text.contains("expired") => "Invoice is expired".into(),
        Value::String(text) if text.encode_utf16().count() <= 1000 => text,
        _ => "Failed to fetch invoice data".into(),
    }
}

/// An answer: status and body text (axios reads no content type).
struct Answer {
    status: u16,
    text: String,
}

/// The invoice as `JSONPaymentProtocol` holds it after a fetch (`parsed`).
#[derive(Debug, Clone)]
struct Jpp {
    /// The dialect the fetch spoke.
    fetched_as: Source,
    /// The dialect verify and pay speak: resolved again from `payment_url`.
    source: Source,
    chain: String,
    currency: String,
    required_fee_per_byte: f64,
    outputs: Vec<Value>,
    payment_url: String,
    payment: Option<Value>,
    expires: String,
}

/// Paytaca's HTTP, as its webview sends it: header names as Paytaca writes them, and the
/// host names of the test servers resolved to `server`.
struct Paytaca {
    http: reqwest::Client,
}

impl Paytaca {
    fn new(server: &str) -> Paytaca {
        let addr: SocketAddr = server
            .trim_start_matches("http://")
            .parse()
            .expect("server address");
        let http = crate::helpers::http_builder()
            .http1_title_case_headers()
            .resolve("localhost", addr)
            .resolve("shop.example", addr)
            .no_proxy()
            .build()
            .expect("client");
        Paytaca { http }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let r = request.send().await.expect("request");
        let status = r.status().as_u16();
        Answer {
            status,
            text: r.text().await.expect("body"),
        }
    }

    /// `JSONPaymentProtocol.fetch(uri)`; on failure, what the wallet shows.
    async fn fetch(&self, uri: &str) -> Result<Jpp, String> {
        let uri = Url::parse(uri).expect("a payment URI");
        let r = uri
            .query_pairs()
            .find(|(k, _)| k == "r")
            .map(|(_, v)| v.into_owned())
            .expect("an r= parameter");
        let link = Url::parse(&r).expect("the r= URL");
        let fetched_as = resolve(&link);
        let parsed = match fetched_as {
            Source::BitPay => {
                let options = self
                    .send(
                        self.http
                            .get(link.clone())
                            .header("Accept", "application/payment-options")
                            .header("X-Paypro-Version", "2"),
                    )
                    .await;
                if options.status != 200 {
                    return Err(shown_for_failed_fetch(&options.text));
                }
                // The option is posted back as it came (the whole object, its own key order).
                #[derive(serde::Deserialize)]
                struct Options<'a> {
                    #[serde(rename = "paymentOptions", borrow)]
                    payment_options: Vec<&'a serde_json::value::RawValue>,
                }
                let listed: Options = serde_json::from_str(&options.text).expect("options");
                let option = listed
                    .payment_options
                    .into_iter()
                    .find(|o| {
                        let v: Value = serde_json::from_str(o.get()).unwrap_or_default();
                        v["chain"] == "BCH" && v["currency"] == "BCH"
                    })
                    .expect("Invoice does not accept BCH");
                let currency = serde_json::from_str::<Value>(option.get()).unwrap()["currency"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                // Accept is stripped by an interceptor; the webview then sends its own */*.
                let request = self
                    .send(
                        self.http
                            .post(link.clone())
                            .header("Content-Type", "application/payment-request")
                            .header("X-Paypro-Version", "2")
                            .body(option.get().to_owned()),
                    )
                    .await;
                if request.status != 200 {
                    return Err(shown_for_failed_fetch(&request.text));
                }
                // `parseBitpayRequestData`.
                let data: Value = axios_data(&request.text);
                let instruction = data["instructions"]
                    .as_array()
                    .and_then(|i| i.iter().find(|i| i["type"] == "transaction"))
                    .cloned()
                    .unwrap_or_default();
                json!({
                    "chain": data["chain"], "network": data["network"], "currency": currency,
                    "requiredFeePerByte": instruction["requiredFeeRate"],
                    "outputs": instruction["outputs"], "time": data["time"],
                    "expires": data["expires"], "memo": data["memo"],
                    "paymentUrl": data["paymentUrl"], "paymentId": data["paymentId"],
                })
            }
            Source::Watchtower | Source::Default => {
                let accept = if fetched_as == Source::Watchtower {
                    "application/json"
                } else {
                    "application/payment-request"
                };
                let answer = self
                    .send(self.http.get(link.clone()).header("Accept", accept))
                    .await;
                if answer.status != 200 {
                    return Err(shown_for_failed_fetch(&answer.text));
                }
                let mut data = axios_data(&answer.text);
                data["paymentUrl"] = data
                    .get("payment_url")
                    .filter(|v| v.is_string())
                    .or(data.get("paymentUrl"))
                    .cloned()
                    .unwrap_or_default();
                data["requiredFeePerByte"] = data
                    .get("required_fee_per_byte")
                    .filter(|v| v.as_f64().is_some_and(|f| f != 0.0))
                    .or(data.get("requiredFeePerByte"))
                    .cloned()
                    .unwrap_or_default();
                data
            }
            Source::Proxied => panic!("{link} would go through watchtower.cash"),
        };
        // `parsed`: missing fields become empty, outputs without address or amount drop out.
        let text = |k: &str| parsed[k].as_str().unwrap_or("").to_owned();
        let payment_url = text("paymentUrl");
        Ok(Jpp {
            fetched_as,
            source: resolve(&Url::parse(&payment_url).expect("paymentUrl")),
            chain: text("chain"),
            currency: text("currency"),
            required_fee_per_byte: parsed["requiredFeePerByte"].as_f64().unwrap_or(0.0),
            outputs: parsed["outputs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|o| {
                    o["address"].as_str().is_some_and(|a| !a.is_empty())
                        && o["amount"].as_u64().is_some_and(|a| a > 0)
                })
                .collect(),
            payment_url,
            payment: parsed.get("payment").filter(|p| !p.is_null()).cloned(),
            expires: text("expires"),
        })
    }

    /// `verifyPayment()`: the unsigned transaction; on failure, the words Paytaca shows.
    async fn verify(&self, jpp: &Jpp, unsigned: &[u8]) -> Result<(), String> {
        let tx = hex::encode(unsigned);
        let size = unsigned.len();
        // axios's own Accept, kept on these requests.
        let accept = "application/json, text/plain, */*";
        let request = match jpp.source {
            Source::Default => self
                .http
                .post(&jpp.payment_url)
                .header("Accept", accept)
                .header("Content-Type", "application/verify-payment")
                .body(format!(
                    r#"{{"currency":{},"unsignedTransaction":"{tx}","weightedSize":{size}}}"#,
                    json!(jpp.currency)
                )),
            Source::BitPay => self
                .http
                .post(&jpp.payment_url)
                .header("Accept", accept)
                .header("Content-Type", "application/payment-verification")
                .header("X-Paypro-Version", "2")
                .body(format!(
                    r#"{{"chain":{},"transactions":[{{"tx":"{tx}","weightedSize":{size}}}],"currency":{}}}"#,
                    json!(jpp.chain),
                    json!(jpp.currency)
                )),
            Source::Watchtower => self
                .http
                .post(format!("{}verify/", slashed(&jpp.payment_url)))
                .header("Accept", accept)
                .header("Content-Type", "application/json")
                .body(format!(r#"{{"raw_tx_hex":"{tx}"}}"#)),
            Source::Proxied => unreachable!(),
        };
        let answer = self.send(request).await;
        if (200..300).contains(&answer.status) {
            return Ok(());
        }
        // A string body, else `error`, else `msg`.
        let data = axios_data(&answer.text);
        Err(match &data {
            Value::String(text) => text.clone(),
            _ => data["error"]
                .as_str()
                .or(data["msg"].as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("(unreadable: {} {})", answer.status, answer.text)),
        })
    }

    /// `pay()`: the signed transaction; the memo shown, or the words of the failure.
    async fn pay(&self, jpp: &Jpp, signed: &[u8]) -> Result<String, String> {
        let tx = hex::encode(signed);
        let size = signed.len();
        let accept = "application/json, text/plain, */*";
        let request = match jpp.source {
            Source::Default => self
                .http
                .post(&jpp.payment_url)
                .header("Accept", accept)
                .header("Content-Type", "application/payment")
                .body(format!(
                    r#"{{"currency":{},"transactions":["{tx}"]}}"#,
                    json!(jpp.currency)
                )),
            Source::BitPay => self
                .http
                .post(&jpp.payment_url)
                .header("Accept", accept)
                .header("Content-Type", "application/payment")
                .header("X-Paypro-Version", "2")
                .body(format!(
                    r#"{{"chain":{},"currency":{},"transactions":[{{"tx":"{tx}","weightedSize":{size}}}]}}"#,
                    json!(jpp.chain),
                    json!(jpp.currency)
                )),
            Source::Watchtower => self
                .http
                .post(format!("{}pay/", slashed(&jpp.payment_url)))
                .header("Accept", accept)
                .header("Content-Type", "application/json")
                .body(format!(r#"{{"raw_tx_hex":"{tx}"}}"#)),
            Source::Proxied => unreachable!(),
        };
        let answer = self.send(request).await;
        let data = axios_data(&answer.text);
        if (200..300).contains(&answer.status) {
            return Ok(data["memo"]
                .as_str()
                .or(data["message"].as_str())
                .unwrap_or("")
                .to_owned());
        }
        // A string body, else `message`, else `non_field_errors[0]`.
        Err(match &data {
            Value::String(text) => text.clone(),
            _ => data["message"]
                .as_str()
                .or(data["non_field_errors"][0].as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("(unreadable: {} {})", answer.status, answer.text)),
        })
    }
}

fn slashed(url: &str) -> String {
    if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    }
}

/// The same transaction with every unlocking script emptied: what Paytaca verifies.
fn unsigned(raw: &[u8]) -> Vec<u8> {
    let mut tx = Tx::decode(raw).expect("tx");
    for input in &mut tx.inputs {
        input.script_sig.clear();
    }
    tx.serialize()
}

/// An invoice Paytaca is to pay: one BCH output, or a BCH output and two token outputs (a
/// fungible amount and an NFT), with the coins a wallet needs for it.
async fn invoice_and_coins(
    app: &TestApp,
    wallet: &TestWallet,
    tokens: bool,
) -> (Value, Vec<(OutPoint, Output)>) {
    let mut outputs = vec![json!({"address": ADDR, "amount": 4000})];
    let mut coins = vec![wallet.fund(app, 20_000, None).await];
    if tokens {
        let ft = json!({"category": "5a".repeat(32), "amount": 700});
        let nft = json!({"category": "5b".repeat(32), "amount": 0,
                         "nft": {"capability": "mutable", "commitment": "c0ffee"}});
        for token in [ft, nft] {
            outputs.push(json!({"address": ADDR_TOKEN, "amount": 1000, "token": token}));
            coins.push(wallet.fund(app, 1000, Some(token)).await);
        }
    }
    let (status, invoice) = app
        .create(&json!({"outputs": outputs, "memo": "Paytaca"}))
        .await;
    assert_eq!(status, 201, "{invoice}");
    (invoice, coins)
}

/// Fetch, verify, pay as Paytaca does, expecting `fetched_as` then `paid_as`. The
/// transaction pays exactly the rate the invoice published; returns it.
async fn paytaca_pays(
    app: &TestApp,
    paytaca: &Paytaca,
    uri: &str,
    coins: &[(OutPoint, Output)],
    wallet: &TestWallet,
    (fetched_as, paid_as): (Source, Source),
    edit: impl FnOnce(&mut Jpp),
) -> Vec<u8> {
    let mut jpp = paytaca.fetch(uri).await.expect("fetched");
    assert_eq!(
        (jpp.fetched_as, jpp.source),
        (fetched_as, paid_as),
        "{jpp:?}"
    );
    assert!(jpp.payment.is_none(), "an open invoice has no payment");
    assert!(!jpp.expires.is_empty());
    edit(&mut jpp);
    let fee_per_kb = (jpp.required_fee_per_byte * 1000.0).round() as u64;
    assert_eq!(fee_per_kb, 1000, "the invoice's rate, published");
    let outputs = invoice_outputs(&json!({"outputs": jpp.outputs}));
    let raw = wallet.pay_with(
        coins,
        outputs,
        fee_per_kb,
        SignWith::Schnorr { hash_type: 0x61 },
    );
    // Exactly the rate: one sat a byte of the signed transaction, as cashscript pays it.
    let paid_in: u64 = coins.iter().map(|(_, o)| o.value).sum();
    let tx = Tx::decode(&raw).unwrap();
    let fee = paid_in - tx.outputs.iter().map(|o| o.value).sum::<u64>();
    assert_eq!(fee, raw.len() as u64, "a fee of exactly 1 sat/byte");
    for input in &tx.inputs {
        // <65-byte Schnorr signature> <33-byte key>: 141-byte inputs.
        assert_eq!(input.script_sig.len(), 100);
        assert_eq!(input.script_sig[65], 0x61);
    }
    // Sized as if ECDSA signatures (107 bytes an input) would fill it, this fee read as below
    // the rate: the refusal of issue #11.
    let unsigned = unsigned(&raw);
    let ecdsa_estimate = unsigned.len() + 107 * tx.inputs.len();
    assert!(fee * 1000 < 1000 * ecdsa_estimate as u64);

    paytaca
        .verify(&jpp, &unsigned)
        .await
        .unwrap_or_else(|shown| panic!("verify via {paid_as:?} refused: {shown}"));
    let memo = paytaca
        .pay(&jpp, &raw)
        .await
        .unwrap_or_else(|shown| panic!("pay via {paid_as:?} refused: {shown}"));
    if paid_as != Source::Watchtower {
        assert!(!memo.is_empty(), "a memo to show");
    }
    let id = app_id(uri);
    let (_, now) = app.get_json(&format!("/api/jpp/invoices/{id}/")).await;
    assert_eq!(now["status"], "paid", "{now}");
    assert_eq!(now["payment"]["txid"], txid_of(&raw).to_hex());
    assert_eq!(app.events(&format!("invoice:{id}")).await.len(), 1);
    raw
}

/// The invoice id in a payment URI.
fn app_id(uri: &str) -> String {
    let url = Url::parse(uri).unwrap();
    let r = url.query_pairs().find(|(k, _)| k == "r").unwrap().1;
    r.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// A paid, an expired and a cancelled invoice, by their payment URIs: `paid` is given.
async fn dead_invoices(app: &TestApp, paid: &Value) -> Vec<(&'static str, String)> {
    let expired = app.insert_expired_invoice(4000).await;
    let (_, expired) = app.get_json(&format!("/api/jpp/invoices/{expired}/")).await;
    let cancelled = app.create_simple(4000).await;
    let r = app
        .client
        .post(app.url(&format!(
            "/jpp/invoices/{}/cancel/",
            cancelled["payment_id"].as_str().unwrap()
        )))
        .header("X-Api-Key", &app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    [
        ("paid", paid),
        ("expired", &expired),
        ("cancelled", &cancelled),
    ]
    .into_iter()
    .map(|(what, inv)| (what, inv["payment_uri"].as_str().unwrap().to_owned()))
    .collect()
}

/// In the BitPay dialects a paid, expired or cancelled invoice refuses the fetch, in words
/// Paytaca shows (after `prefix`: the v2 refusal is a form body, `msg=<text>`, which BWC
/// also reads); nothing about it changes.
async fn fetches_of_dead_invoices_are_refused_readably(
    app: &TestApp,
    paytaca: &Paytaca,
    paid: &Value,
    prefix: &str,
) {
    for (what, uri) in dead_invoices(app, paid).await {
        let id = app_id(&uri);
        let (_, before) = app.get_json(&format!("/api/jpp/invoices/{id}/")).await;
        let shown = paytaca.fetch(&uri).await.expect_err(what);
        let expected = if what == "expired" {
            // Paytaca's own phrase for any text that mentions expiry.
            "Invoice is expired".to_owned()
        } else {
            format!("{prefix}Invoice no longer accepting payments (the invoice is {what})")
        };
        assert_eq!(shown, expected, "{what}: what Paytaca shows");
        let (_, after) = app.get_json(&format!("/api/jpp/invoices/{id}/")).await;
        assert_eq!(before, after, "{what}: a refused fetch changed the invoice");
    }
}

/// Paytaca pays a BCH invoice and a token invoice of a server whose payment URI names
/// `host`, speaking `source`, each at exactly the published rate; returns the last invoice.
async fn pays_both_kinds(app: &TestApp, paytaca: &Paytaca, host: &str, source: Source) -> Value {
    let wallet = TestWallet::new();
    let mut paid = Value::Null;
    for tokens in [false, true] {
        let (invoice, coins) = invoice_and_coins(app, &wallet, tokens).await;
        let uri = invoice["payment_uri"].as_str().unwrap();
        assert!(uri.contains(host), "{uri}");
        paytaca_pays(app, paytaca, uri, &coins, &wallet, (source, source), |_| {}).await;
        paid = invoice;
    }
    paid
}

async fn a_127_0_0_1_host_is_paid_over_jpp_v2_at_exactly_the_rate(app: TestApp) {
    let paytaca = Paytaca::new(&app.base);
    let paid = pays_both_kinds(&app, &paytaca, "127.0.0.1", Source::BitPay).await;
    fetches_of_dead_invoices_are_refused_readably(&app, &paytaca, &paid, "msg=").await;
}

async fn a_localhost_host_is_paid_over_watchtower_json_at_exactly_the_rate(app: TestApp) {
    let paytaca = Paytaca::new(&app.base);
    let paid = pays_both_kinds(&app, &paytaca, "localhost", Source::Watchtower).await;
    // The watchtower JSON is the invoice itself, whatever its state (merchants read it too);
    // Paytaca reads the state from it: a payment, an expiry in the past. A cancelled invoice
    // it would offer to pay is refused at verification, in the `error` Paytaca shows.
    for (what, uri) in dead_invoices(&app, &paid).await {
        let jpp = paytaca.fetch(&uri).await.expect(what);
        match what {
            "paid" => assert!(jpp.payment.as_ref().is_some_and(|p| p["txid"].is_string())),
            "expired" => {
                let expires = chrono::DateTime::parse_from_rfc3339(&jpp.expires).unwrap();
                assert!(expires.timestamp_millis() < cashier::units::now_ms());
            }
            _ => {
                let wallet = TestWallet::new();
                let coin = wallet.fund(&app, 20_000, None).await;
                let raw = wallet.pay_with(
                    &[coin],
                    invoice_outputs(&json!({"outputs": jpp.outputs})),
                    1000,
                    SignWith::Schnorr { hash_type: 0x61 },
                );
                let shown = paytaca.verify(&jpp, &unsigned(&raw)).await.expect_err(what);
                assert_eq!(
                    shown,
                    "Invoice no longer accepting payments (the invoice is cancelled)"
                );
                let shown = paytaca.pay(&jpp, &raw).await.expect_err(what);
                assert_eq!(
                    shown,
                    "Invoice no longer accepting payments (the invoice is cancelled)"
                );
                let id = app_id(&uri);
                let (_, now) = app.get_json(&format!("/api/jpp/invoices/{id}/")).await;
                assert_eq!(now["status"], "cancelled");
                assert_eq!(now["payment"], Value::Null);
            }
        }
    }
}

async fn a_public_host_is_paid_over_jpp_v1_at_exactly_the_rate(app: TestApp) {
    let paytaca = Paytaca::new(&app.base);
    let paid = pays_both_kinds(&app, &paytaca, "shop.example", Source::Default).await;
    fetches_of_dead_invoices_are_refused_readably(&app, &paytaca, &paid, "").await;
}

/// A merchant hands out a `localhost` URI while the server's public URL is the default
/// `127.0.0.1`: Paytaca fetches watchtower JSON, then finds `127.0.0.1` in `payment_url` and
/// verifies and pays over v2, posting the `chain` it read from the JSON, or `""` from an
/// invoice that has none (what it posted before the JSON carried `chain`).
async fn a_localhost_uri_naming_127_0_0_1_switches_to_v2_and_pays(app: TestApp) {
    let paytaca = Paytaca::new(&app.base);
    let wallet = TestWallet::new();
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    for (tokens, blank_chain) in [(false, false), (true, false), (false, true)] {
        let (invoice, coins) = invoice_and_coins(&app, &wallet, tokens).await;
        assert_eq!(invoice["chain"], "BCH");
        let id = invoice["payment_id"].as_str().unwrap();
        let mut uri = Url::parse("bitcoincash:").unwrap();
        uri.query_pairs_mut().append_pair(
            "r",
            &format!("http://localhost:{port}/api/jpp/invoices/{id}/"),
        );
        let uri = uri.to_string();
        paytaca_pays(
            &app,
            &paytaca,
            &uri,
            &coins,
            &wallet,
            (Source::Watchtower, Source::BitPay),
            |jpp| {
                assert_eq!(jpp.chain, "BCH", "read from the JSON invoice");
                if blank_chain {
                    jpp.chain.clear();
                }
            },
        )
        .await;
    }
}
