//! The create request (`POST /jpp/invoices/`): the watchtower body plus our extensions, checked
//! field by field so a merchant learns every mistake at once.

use serde_json::{Map, Value};

use crate::chain::{
    dust_threshold, Address, Network, Nft, NftCapability, TokenData, MAX_COMMITMENT_LEN,
    MAX_MONEY_SATS,
};

use super::{InvoiceOutput, NewInvoice};

pub const MAX_OUTPUTS: usize = 100;
pub const MAX_MEMO_BYTES: usize = 4096;
pub const MAX_DESCRIPTION_BYTES: usize = 4096;
pub const MIN_EXPIRES_IN_SECS: u64 = 60;
pub const MAX_EXPIRES_IN_SECS: u64 = 30 * 24 * 3600;
/// BCHN's relay floor, 1 sat/byte.
pub const MIN_FEE_PER_KB: u64 = 1000;
pub const MAX_FEE_PER_KB: u64 = 1_000_000;
/// The most confirmations an invoice may wait for: a day of blocks is more than any merchant
/// needs, and it bounds how long the watcher follows a payment.
pub const MAX_CONFIRMATIONS: u64 = 144;

/// What the server decides about every create request.
#[derive(Debug, Clone, Copy)]
pub struct CreateLimits {
    pub network: Network,
    pub default_expires_in_secs: u32,
    pub default_fee_per_kb: u64,
    /// Tokens only to token-aware (`z…`/`r…`) addresses: a wallet that honours the address type
    /// cannot pay an invoice that asks otherwise. The dev faucet, which pays any script, does
    /// not hold its requests to this.
    pub token_aware_addresses: bool,
}

/// One problem with one field, named by its JSON path (`outputs[2].token.category`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

const TOP_FIELDS: &[&str] = &[
    "outputs",
    "memo",
    "merchant_data",
    "expires_in",
    "required_fee_per_byte",
    "network",
    "currency",
    "confirmations",
    "amount",
];
const OUTPUT_FIELDS: &[&str] = &["address", "amount", "description", "token"];
const TOKEN_FIELDS: &[&str] = &["category", "amount", "nft"];
const NFT_FIELDS: &[&str] = &["capability", "commitment"];

/// Collects field errors while walking the body.
struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    fn object<'a>(&mut self, field: &str, value: &'a Value) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            _ => {
                self.fail(field, format!("must be a JSON object, got {}", kind(value)));
                None
            }
        }
    }

    fn unknown_fields(&mut self, path: &str, map: &Map<String, Value>, allowed: &[&str]) {
        for key in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
            self.fail(
                join(path, key),
                format!("is not a known field (accepted: {})", allowed.join(", ")),
            );
        }
    }

    /// A string no longer than `max_bytes`; null and absent mean none.
    fn optional_text(
        &mut self,
        field: &str,
        value: Option<&Value>,
        max_bytes: usize,
    ) -> Option<String> {
        match value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.len() <= max_bytes => Some(s.clone()),
            Some(Value::String(s)) => {
                self.fail(
                    field,
                    format!("must be at most {max_bytes} bytes, got {}", s.len()),
                );
                None
            }
            Some(other) => {
                self.fail(field, format!("must be a string, got {}", kind(other)));
                None
            }
        }
    }

    /// A whole number within `min..=max`.
    fn integer(
        &mut self,
        field: &str,
        value: &Value,
        min: u64,
        max: u64,
        unit: &str,
    ) -> Option<u64> {
        let n = match value {
            Value::Number(n) => n,
            other => {
                self.fail(
                    field,
                    format!("must be a whole number of {unit}, got {}", kind(other)),
                );
                return None;
            }
        };
        match n.as_u64() {
            Some(v) if (min..=max).contains(&v) => Some(v),
            Some(_) => {
                self.fail(field, format!("must be between {min} and {max} {unit}"));
                None
            }
            None if n.as_i64().is_some() => {
                self.fail(field, format!("must be between {min} and {max} {unit}"));
                None
            }
            None => {
                self.fail(field, format!("must be a whole number of {unit}, got {n}"));
                None
            }
        }
    }
}

/// Checks a create body and turns it into a [`NewInvoice`], or lists every problem found.
pub fn parse_create_request(
    body: &Value,
    limits: &CreateLimits,
) -> Result<NewInvoice, Vec<FieldError>> {
    let mut c = Checker { errors: Vec::new() };
    let Some(map) = c.object("body", body) else {
        return Err(c.errors);
    };
    c.unknown_fields("", map, TOP_FIELDS);

    if let Some(network) = map.get("network") {
        if network.as_str() != Some(limits.network.as_str()) {
            c.fail(
                "network",
                format!("this server creates invoices on `{}` only", limits.network),
            );
        }
    }
    if let Some(currency) = map.get("currency") {
        if currency.as_str() != Some("BCH") {
            c.fail("currency", "must be \"BCH\"");
        }
    }

    // `amount` alone asks for a fresh address of the store's xpub (P2PKH, so its dust floor).
    let to_next_address = match map.get("amount") {
        None | Some(Value::Null) => None,
        Some(v) => c.integer("amount", v, dust_threshold(25), MAX_MONEY_SATS, "sats"),
    };
    let has_outputs = !matches!(map.get("outputs"), None | Some(Value::Null));
    if has_outputs && map.get("amount").is_some_and(|v| !v.is_null()) {
        c.fail(
            "amount",
            "give outputs or amount (a fresh address of the store's xpub), not both",
        );
    }
    let outputs = match map.get("outputs") {
        None | Some(Value::Null) if to_next_address.is_some() => Vec::new(),
        None | Some(Value::Null) => {
            c.fail(
                "outputs",
                "is required: a list of 1 to 100 outputs, each {address, amount} (or, for a store with an xpub, amount alone)",
            );
            Vec::new()
        }
        Some(Value::Array(items)) if items.is_empty() => {
            c.fail("outputs", "must have at least 1 output");
            Vec::new()
        }
        Some(Value::Array(items)) if items.len() > MAX_OUTPUTS => {
            c.fail(
                "outputs",
                format!(
                    "must have at most {MAX_OUTPUTS} outputs, got {}",
                    items.len()
                ),
            );
            Vec::new()
        }
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| parse_output(&mut c, &format!("outputs[{i}]"), item, limits))
            .collect(),
        Some(other) => {
            c.fail("outputs", format!("must be a list, got {}", kind(other)));
            Vec::new()
        }
    };
    let total: u64 = outputs.iter().map(|o: &InvoiceOutput| o.amount).sum();
    if total > MAX_MONEY_SATS {
        c.fail(
            "outputs",
            format!("total amount must be at most {MAX_MONEY_SATS} sats, got {total}"),
        );
    }

    let memo = c.optional_text("memo", map.get("memo"), MAX_MEMO_BYTES);
    let merchant_data = map.get("merchant_data").filter(|v| !v.is_null()).cloned();

    let expires_in_secs = match map.get("expires_in") {
        None | Some(Value::Null) => Some(u64::from(limits.default_expires_in_secs)),
        Some(v) => c.integer(
            "expires_in",
            v,
            MIN_EXPIRES_IN_SECS,
            MAX_EXPIRES_IN_SECS,
            "seconds",
        ),
    };
    let fee_per_kb = match map.get("required_fee_per_byte") {
        None | Some(Value::Null) => Some(limits.default_fee_per_kb),
        Some(v) => fee_rate(&mut c, v),
    };

    let confirmations = match map.get("confirmations") {
        None | Some(Value::Null) => None,
        Some(v) => c
            .integer("confirmations", v, 0, MAX_CONFIRMATIONS, "blocks")
            // Bounded above, so it fits.
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
    };

    match (expires_in_secs, fee_per_kb) {
        (Some(expires_in_secs), Some(fee_per_kb)) if c.errors.is_empty() => Ok(NewInvoice {
            confirmations,
            to_next_address,
            outputs,
            memo,
            merchant_data,
            // Bounded by MAX_EXPIRES_IN_SECS above, so it fits.
            expires_in_secs: u32::try_from(expires_in_secs).unwrap_or(u32::MAX),
            fee_per_kb,
        }),
        _ => Err(c.errors),
    }
}

fn parse_output(
    c: &mut Checker,
    path: &str,
    item: &Value,
    limits: &CreateLimits,
) -> Option<InvoiceOutput> {
    let map = c.object(path, item)?;
    c.unknown_fields(path, map, OUTPUT_FIELDS);
    let errors_before = c.errors.len();

    let address = match map.get("address") {
        Some(Value::String(s)) => match Address::parse_written(s, limits.network) {
            Ok(a) => Some(a),
            Err(e) => {
                c.fail(join(path, "address"), format!("{s:?} {e}"));
                None
            }
        },
        None | Some(Value::Null) => {
            c.fail(join(path, "address"), "is required");
            None
        }
        Some(other) => {
            c.fail(
                join(path, "address"),
                format!("must be a string, got {}", kind(other)),
            );
            None
        }
    };
    let amount = match map.get("amount") {
        None | Some(Value::Null) => {
            c.fail(join(path, "amount"), "is required (satoshis)");
            None
        }
        Some(v) => c.integer(&join(path, "amount"), v, 1, MAX_MONEY_SATS, "satoshis"),
    };
    let description = c.optional_text(
        &join(path, "description"),
        map.get("description"),
        MAX_DESCRIPTION_BYTES,
    );
    let token = match map.get("token") {
        None | Some(Value::Null) => None,
        Some(v) => parse_token(c, &join(path, "token"), v),
    };

    let (address, token_aware) = address?;
    let output = InvoiceOutput {
        address,
        amount: amount?,
        description,
        token,
    };
    if c.errors.len() != errors_before {
        return None;
    }
    if output.token.is_some() && !token_aware && limits.token_aware_addresses {
        c.fail(
            join(path, "address"),
            format!(
                "is not a token-aware address, and wallets send tokens only to those; write it as {}",
                output.address_string()
            ),
        );
        return None;
    }
    let dust = dust_threshold(output.locking_bytecode().len());
    if output.amount < dust {
        let what = if output.token.is_some() {
            "this token output"
        } else {
            "this output"
        };
        c.fail(
            join(path, "amount"),
            format!(
                "{} sats is below the dust limit of {what} ({dust} sats); wallets cannot pay it",
                output.amount
            ),
        );
        return None;
    }
    Some(output)
}

fn parse_token(c: &mut Checker, path: &str, value: &Value) -> Option<TokenData> {
    let map = c.object(path, value)?;
    c.unknown_fields(path, map, TOKEN_FIELDS);
    let errors_before = c.errors.len();

    let category = match map.get("category") {
        Some(Value::String(s)) => {
            let mut bytes = [0u8; 32];
            match hex::decode_to_slice(s, &mut bytes) {
                Ok(()) => Some(bytes),
                Err(_) => {
                    c.fail(
                        join(path, "category"),
                        "must be a token category id: 64 hex digits",
                    );
                    None
                }
            }
        }
        None | Some(Value::Null) => {
            c.fail(
                join(path, "category"),
                "is required: the token category id (64 hex digits)",
            );
            None
        }
        Some(other) => {
            c.fail(
                join(path, "category"),
                format!("must be a string of 64 hex digits, got {}", kind(other)),
            );
            None
        }
    };
    // Fungible amounts go up to 2^63-1, more than a JSON double holds exactly, so BCHN and
    // some wallets write them as decimal strings; accept both.
    let amount_path = join(path, "amount");
    let amount = match map.get("amount") {
        None | Some(Value::Null) => Some(0),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            match s.parse::<u64>() {
                Ok(v) if v <= crate::chain::MAX_FT_AMOUNT => Some(v),
                _ => {
                    c.fail(
                        &amount_path,
                        format!("must be at most {}", crate::chain::MAX_FT_AMOUNT),
                    );
                    None
                }
            }
        }
        Some(v) => c.integer(
            &amount_path,
            v,
            0,
            crate::chain::MAX_FT_AMOUNT,
            "token units",
        ),
    };
    let nft = match map.get("nft") {
        None | Some(Value::Null) => None,
        Some(v) => parse_nft(c, &join(path, "nft"), v),
    };
    if c.errors.len() != errors_before {
        return None;
    }
    match TokenData::new(category?, amount?, nft) {
        Ok(t) => Some(t),
        Err(e) => {
            c.fail(path, e.to_string());
            None
        }
    }
}

fn parse_nft(c: &mut Checker, path: &str, value: &Value) -> Option<Nft> {
    let map = c.object(path, value)?;
    c.unknown_fields(path, map, NFT_FIELDS);
    let capability = match map.get("capability") {
        Some(Value::String(s)) => NftCapability::parse(s).or_else(|| {
            c.fail(
                join(path, "capability"),
                format!("{s:?} is not one of none, mutable, minting"),
            );
            None
        }),
        None | Some(Value::Null) => {
            c.fail(
                join(path, "capability"),
                "is required: none, mutable or minting",
            );
            None
        }
        Some(other) => {
            c.fail(
                join(path, "capability"),
                format!("must be a string, got {}", kind(other)),
            );
            None
        }
    };
    let commitment = match map.get("commitment") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::String(s)) => {
            match hex::decode(s) {
                Ok(bytes) if bytes.len() <= MAX_COMMITMENT_LEN => Some(bytes),
                Ok(bytes) => {
                    c.fail(
                    join(path, "commitment"),
                    format!("must be at most {MAX_COMMITMENT_LEN} bytes ({} hex digits), got {} bytes", 2 * MAX_COMMITMENT_LEN, bytes.len()),
                );
                    None
                }
                Err(_) => {
                    c.fail(
                        join(path, "commitment"),
                        "must be hex (an even number of 0-9a-f digits; empty is allowed)",
                    );
                    None
                }
            }
        }
        Some(other) => {
            c.fail(
                join(path, "commitment"),
                format!("must be a hex string, got {}", kind(other)),
            );
            None
        }
    };
    Some(Nft {
        capability: capability?,
        commitment: commitment?,
    })
}

/// `required_fee_per_byte` as sats per 1000 bytes, kept integral. More than three decimals
/// would be a fraction of a millisat per byte, which no wallet can honour.
fn fee_rate(c: &mut Checker, value: &Value) -> Option<u64> {
    let rate = match value {
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    let range = format!("{} and {}", MIN_FEE_PER_KB / 1000, MAX_FEE_PER_KB / 1000);
    let Some(rate) = rate.filter(|r| r.is_finite()) else {
        c.fail(
            "required_fee_per_byte",
            format!("must be a number of sats per byte, between {range}"),
        );
        return None;
    };
    let per_kb = (rate * 1000.0).round();
    if (rate * 1000.0 - per_kb).abs() > 1e-6 {
        c.fail(
            "required_fee_per_byte",
            "must have at most 3 decimal places",
        );
        return None;
    }
    if !(MIN_FEE_PER_KB as f64..=MAX_FEE_PER_KB as f64).contains(&per_kb) {
        c.fail(
            "required_fee_per_byte",
            format!("must be between {range} sats per byte"),
        );
        return None;
    }
    Some(per_kb as u64)
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: CreateLimits = CreateLimits {
        network: Network::Main,
        default_expires_in_secs: 1800,
        default_fee_per_kb: 1000,
        token_aware_addresses: true,
    };
    const ADDR: &str = "bitcoincash:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2";
    /// The same key, token-aware.
    const ADDR_TOKEN: &str = "bitcoincash:zr6m7j9njldwwzlg9v7v53unlr4jkmx6eycnjehshe";

    fn errors(body: Value) -> Vec<String> {
        parse_create_request(&body, &LIMITS)
            .unwrap_err()
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    }

    #[test]
    fn accepts_the_watchtower_example() {
        let cat = "ab".repeat(32);
        let inv = parse_create_request(
            &json!({"memo": "Order #42", "merchant_data": {"order": 42}, "outputs": [
                {"address": ADDR, "amount": 10000, "description": "coffee"},
                {"address": ADDR_TOKEN, "amount": 1000, "token": {"category": cat, "amount": 500}},
                {"address": ADDR_TOKEN, "amount": 1000, "token": {"category": cat, "amount": 0,
                    "nft": {"capability": "none", "commitment": ""}}}]}),
            &LIMITS,
        )
        .unwrap();
        assert_eq!(inv.outputs.len(), 3);
        assert_eq!(inv.expires_in_secs, 1800);
        assert_eq!(inv.fee_per_kb, 1000);
        assert!(inv.outputs[1].address_string().starts_with("bitcoincash:z"));
    }

    #[test]
    fn tokens_go_only_to_token_aware_addresses() {
        let cat = "ab".repeat(32);
        let token = |address: &str| {
            errors(json!({"outputs": [
                {"address": address, "amount": 1000, "token": {"category": cat, "amount": 5}}]}))
        };
        assert_eq!(
            token(ADDR),
            [format!("outputs[0].address: is not a token-aware address, and wallets send tokens only to those; write it as {ADDR_TOKEN}")]
        );
        // Legacy addresses predate tokens.
        let legacy = token("1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu");
        assert_eq!(legacy.len(), 1, "{legacy:?}");
        assert!(
            legacy[0].starts_with("outputs[0].address: is not a token-aware address"),
            "{legacy:?}"
        );
        // The token-aware form is fine for plain BCH too.
        assert!(parse_create_request(
            &json!({"outputs": [{"address": ADDR_TOKEN, "amount": 1000}]}),
            &LIMITS
        )
        .is_ok());
    }

    #[test]
    fn fee_rates_are_kept_as_integers() {
        let body = |r: Value| json!({"outputs": [{"address": ADDR, "amount": 1000}], "required_fee_per_byte": r});
        assert_eq!(
            parse_create_request(&body(json!(1.1)), &LIMITS)
                .unwrap()
                .fee_per_kb,
            1100
        );
        assert_eq!(
            parse_create_request(&body(json!(2)), &LIMITS)
                .unwrap()
                .fee_per_kb,
            2000
        );
        assert_eq!(
            errors(body(json!(1.0001))),
            ["required_fee_per_byte: must have at most 3 decimal places"]
        );
        assert_eq!(errors(body(json!(0.5))).len(), 1);
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let e = errors(
            json!({"outputs": [{"address": "nope", "amount": 1.5}, {"amount": 100, "x": 1}], "memo": 7}),
        );
        assert_eq!(e.len(), 5, "{e:?}");
        assert!(
            e[0].starts_with("outputs[0].address: \"nope\" is not a valid"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("outputs[0].amount: must be a whole number"),
            "{e:?}"
        );
        assert!(
            e[2].starts_with("outputs[1].x: is not a known field"),
            "{e:?}"
        );
        assert_eq!(e[3], "outputs[1].address: is required");
        assert!(e[4].starts_with("memo: must be a string"), "{e:?}");
    }
}
