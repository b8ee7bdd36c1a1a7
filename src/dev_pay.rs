//! `cashier dev pay <payment-url>`: pays an open invoice on a server running the dev chain the
//! way a wallet would, so a new user sees the whole flow with no wallet and no node. It asks the
//! faucet for coins (tokens included, when the invoice wants them), builds and signs a real
//! transaction (Schnorr, as wallets sign, or ECDSA when asked), and posts it to the invoice's
//! watchtower `pay/` endpoint.

use bitcoin::hashes::{hash160, Hash};
use bitcoin::secp256k1::Secp256k1;
use serde_json::{json, Value};

use crate::chain::sighash::SignWith;
use crate::chain::wallet::{build_payment_with, random_key};
use crate::chain::{Address, Network, Nft, NftCapability, OutPoint, Output, TokenData, Txid};
use crate::outbound::Outbound;

/// What the payment did.
#[derive(Debug)]
pub struct Paid {
    pub txid: String,
    pub status: String,
}

/// Pays the invoice at `target` (its payment URL, or a `bchreg:?r=<url>` URI), signing with
/// Schnorr and SIGHASH_ALL|FORKID.
pub async fn pay(target: &str, memo: Option<&str>) -> Result<Paid, String> {
    pay_with(target, memo, SignWith::default()).await
}

/// [`pay`] with the signature scheme and hash type chosen.
pub async fn pay_with(target: &str, memo: Option<&str>, how: SignWith) -> Result<Paid, String> {
    let payment_url = payment_url(target)?;
    let base = base_of(&payment_url)?;
    let http = client()?;
    let invoice: Value = http
        .get(&payment_url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("cannot reach {payment_url}: {e}"))?
        .error_for_status()
        .map_err(|e| format!("reading the invoice failed: {e}"))?
        .json()
        .await
        .map_err(|e| format!("the invoice is not JSON: {e}"))?;
    let status = invoice["status"].as_str().unwrap_or("unknown");
    if status != "open" {
        return Err(format!(
            "the invoice is {status}; only open invoices can be paid"
        ));
    }
    let network = invoice["network"]
        .as_str()
        .and_then(Network::parse)
        .ok_or("the invoice names no known network")?;
    let outputs = invoice["outputs"]
        .as_array()
        .ok_or("the invoice has no outputs")?
        .iter()
        .map(|o| output_of(o, network))
        .collect::<Result<Vec<_>, _>>()?;
    let fee_per_kb = invoice["required_fee_per_byte"]
        .as_f64()
        .map_or(1000, |rate| (rate * 1000.0).round() as u64);

    // A throwaway key; the faucet funds it.
    let secp = Secp256k1::new();
    let key = random_key();
    let key_hash = hash160::Hash::hash(&key.public_key(&secp).serialize()).to_byte_array();
    let address = Address::p2pkh(network, key_hash).to_cashaddr(false);

    let mut coins = Vec::new();
    for o in outputs.iter().filter(|o| o.token.is_some()) {
        coins.push(faucet(&http, &base, &address, o.value, o.token.as_ref()).await?);
    }
    let bch: u64 = outputs
        .iter()
        .filter(|o| o.token.is_none())
        .map(|o| o.value)
        .sum();
    // Enough for the outputs and any fee a 100 kB payment could need at the invoice's rate.
    let margin = fee_per_kb.saturating_mul(20).max(10_000);
    coins.push(faucet(&http, &base, &address, bch + margin, None).await?);

    let tx = build_payment_with(&secp, &key, &coins, outputs, fee_per_kb, how)
        .map_err(|e| e.to_string())?;
    let raw = tx.serialize();
    let mut body = json!({"raw_tx_hex": hex::encode(&raw)});
    if let Some(memo) = memo {
        body["memo"] = json!(memo);
    }
    let url = format!("{}pay/", with_slash(&payment_url));
    let answer = post_json(&http, &url, &body, "the server refused the payment").await?;
    Ok(Paid {
        txid: answer["payment"]["txid"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        status: answer["status"].as_str().unwrap_or_default().to_owned(),
    })
}

/// Pays `amount` sats to `address` the way a wallet without the payment protocol does: a
/// signed transaction handed to the node (`POST /dev/broadcast`), which the server's chain
/// watcher then sees. `server` is the server's base URL. Returns the txid.
pub async fn pay_address(server: &str, address: &str, amount: u64) -> Result<String, String> {
    let base = server.trim_end_matches('/');
    let to = Address::parse(address, Network::Regtest)
        .map_err(|e| format!("{address:?} is not a dev chain (bchreg:) address: {e}"))?;
    let http = client()?;
    let secp = Secp256k1::new();
    let key = random_key();
    let key_hash = hash160::Hash::hash(&key.public_key(&secp).serialize()).to_byte_array();
    let own = Address::p2pkh(Network::Regtest, key_hash).to_cashaddr(false);
    let coin = faucet(&http, base, &own, amount.saturating_add(10_000), None).await?;
    let output = Output {
        value: amount,
        token: None,
        locking_bytecode: to.locking_bytecode(),
    };
    let tx = build_payment_with(
        &secp,
        &key,
        &[coin],
        vec![output],
        1000,
        SignWith::default(),
    )
    .map_err(|e| e.to_string())?;
    let body = json!({"raw_tx_hex": hex::encode(tx.serialize())});
    let url = format!("{base}/dev/broadcast");
    let answer = post_json(&http, &url, &body, "the dev chain refused the transaction").await?;
    Ok(answer["txid"].as_str().unwrap_or_default().to_owned())
}

/// An HTTP client with the server's TLS roots, for a dev server behind https:// too.
pub fn client() -> Result<reqwest::Client, String> {
    Outbound::new(None)?
        .http()
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

/// Posts `body` to `url` and reads the JSON answer; a refusal is `refused` with the server's
/// own words.
async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    refused: &str,
) -> Result<Value, String> {
    let response = http
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let code = response.status();
    let answer: Value = response
        .json()
        .await
        .map_err(|e| format!("the server's answer ({code}) is not JSON: {e}"))?;
    if !code.is_success() {
        return Err(format!(
            "{refused} ({code}): {}",
            answer["detail"].as_str().unwrap_or("no detail")
        ));
    }
    Ok(answer)
}

/// The address and sats of a BIP21 `bchreg:<address>?amount=<BCH>` URI; `None` for any other
/// target (a payment URL, or a `?r=` URI).
pub fn address_target(target: &str) -> Option<(String, u64)> {
    let (address, query) = target.split_once('?')?;
    if address.ends_with(':') || query.starts_with("r=") {
        return None;
    }
    let amount = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("amount="))
        .and_then(crate::chain::bchn::sats_from_bch_text)?;
    Some((address.to_owned(), amount))
}

/// Asks the dev faucet for a coin for `address`.
async fn faucet(
    http: &reqwest::Client,
    base: &str,
    address: &str,
    amount: u64,
    token: Option<&TokenData>,
) -> Result<(OutPoint, Output), String> {
    let mut body = json!({"address": address, "amount": amount});
    if let Some(t) = token {
        body["token"] = json!({
            "category": hex::encode(t.category),
            "amount": t.amount,
            "nft": t.nft.as_ref().map(|n| json!({"capability": n.capability.as_str(), "commitment": hex::encode(&n.commitment)})),
        });
    }
    let response = http
        .post(format!("{base}/dev/faucet"))
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("cannot reach the faucet: {e}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(
            "this server does not run the dev chain (no faucet); dev pay works only there".into(),
        );
    }
    let code = response.status();
    let coin: Value = response
        .json()
        .await
        .map_err(|e| format!("faucet answer: {e}"))?;
    if !code.is_success() {
        return Err(format!(
            "the faucet refused ({code}): {}",
            coin["detail"].as_str().unwrap_or("")
        ));
    }
    let txid = coin["txid"]
        .as_str()
        .and_then(Txid::from_hex)
        .ok_or("the faucet answered no txid")?;
    let address = Address::parse(address, Network::Regtest).map_err(|e| e.to_string())?;
    Ok((
        OutPoint {
            txid,
            vout: coin["vout"].as_u64().unwrap_or(0) as u32,
        },
        Output {
            value: amount,
            token: token.cloned(),
            locking_bytecode: address.locking_bytecode(),
        },
    ))
}

/// An invoice output (watchtower JSON) as a transaction output.
fn output_of(o: &Value, network: Network) -> Result<Output, String> {
    let address = o["address"].as_str().ok_or("an output has no address")?;
    let address = Address::parse(address, network).map_err(|e| format!("output address {e}"))?;
    let token = match o.get("token").filter(|t| !t.is_null()) {
        None => None,
        Some(t) => {
            let mut category = [0u8; 32];
            hex::decode_to_slice(t["category"].as_str().unwrap_or(""), &mut category)
                .map_err(|_| "a token category is not 64 hex digits")?;
            let nft = match t.get("nft").filter(|n| !n.is_null()) {
                None => None,
                Some(n) => Some(Nft {
                    capability: NftCapability::parse(n["capability"].as_str().unwrap_or(""))
                        .ok_or("unknown NFT capability")?,
                    commitment: hex::decode(n["commitment"].as_str().unwrap_or(""))
                        .map_err(|_| "an NFT commitment is not hex")?,
                }),
            };
            let amount = t["amount"].as_u64().unwrap_or(0);
            Some(TokenData::new(category, amount, nft).map_err(|e| e.to_string())?)
        }
    };
    Ok(Output {
        value: o["amount"].as_u64().ok_or("an output has no amount")?,
        token,
        locking_bytecode: address.locking_bytecode(),
    })
}

/// The payment URL inside a `bitcoincash:?r=<url>` URI, or the URL itself.
fn payment_url(target: &str) -> Result<String, String> {
    let Some((_, encoded)) = target.split_once("?r=") else {
        return Ok(target.to_owned());
    };
    let encoded = encoded.split('&').next().unwrap_or("");
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' && tail.len() >= 2 {
            let hex_pair = std::str::from_utf8(&tail[..2]).map_err(|_| "bad percent-encoding")?;
            bytes.push(u8::from_str_radix(hex_pair, 16).map_err(|_| "bad percent-encoding")?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| "the r= URL is not UTF-8".into())
}

/// `scheme://host:port` of a URL.
fn base_of(url: &str) -> Result<String, String> {
    let start = url
        .find("://")
        .ok_or_else(|| format!("{url:?} is not an http(s) URL"))?
        + 3;
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    Ok(url[..end].to_owned())
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_address_uris() {
        assert_eq!(
            address_target("bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvs?amount=0.00004"),
            Some((
                "bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvs".into(),
                4000
            ))
        );
        assert_eq!(address_target("bchreg:?r=http%3A%2F%2Fx"), None);
        assert_eq!(address_target("http://x/api/jpp/invoices/ab/"), None);
        assert_eq!(address_target("bchreg:qr6m?amount=-1"), None);
    }

    #[test]
    fn reads_the_url_out_of_a_payment_uri() {
        assert_eq!(
            payment_url("bchreg:?r=http%3A%2F%2F127.0.0.1%3A8000%2Fapi%2Fjpp%2Finvoices%2Fab%2F")
                .unwrap(),
            "http://127.0.0.1:8000/api/jpp/invoices/ab/"
        );
        assert_eq!(payment_url("http://x/y/").unwrap(), "http://x/y/");
        assert_eq!(
            base_of("http://127.0.0.1:8000/api/jpp/invoices/ab/").unwrap(),
            "http://127.0.0.1:8000"
        );
    }
}
