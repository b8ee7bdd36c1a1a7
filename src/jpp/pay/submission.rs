//! What a wallet submits, in any dialect: the transaction's bytes, a memo and refund outputs,
//! each checked before anything else happens.

use serde_json::json;

use super::PayError;
use crate::chain::{Address, Network, TxError};

/// Most hex characters a payment can be: twice [`crate::chain::MAX_TX_SIZE`].
pub const MAX_TX_HEX: usize = 2 * crate::chain::MAX_TX_SIZE;
/// Most refund outputs a wallet may name.
const MAX_REFUNDS: usize = 10;

/// What a wallet submits, in any dialect.
#[derive(Debug, Clone)]
pub struct Submission {
    pub raw_tx: Vec<u8>,
    pub memo: Option<String>,
    pub refund_to: Option<serde_json::Value>,
}

impl Submission {
    /// From the hex a wallet sent.
    pub fn from_hex(hex_tx: &str) -> Result<Vec<u8>, PayError> {
        let hex_tx = hex_tx.trim();
        if hex_tx.len() > MAX_TX_HEX {
            return Err(PayError::BadTx(TxError::TooLarge(hex_tx.len() / 2)));
        }
        decode_hex(hex_tx).ok_or(PayError::NotHex)
    }
}

/// Hex digits to bytes through a lookup table. A 100 kB transaction arrives as 200 kB of hex,
/// and a flood of them is refused at the cost of reading them: the `hex` crate's
/// per-character `match` made decoding half of that cost.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    const BAD: u8 = 0xff;
    const TABLE: [u8; 256] = {
        let mut table = [BAD; 256];
        let mut i = 0;
        while i < 10 {
            table[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            table[b'a' as usize + i] = 10 + i as u8;
            table[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        table
    };
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let mut bytes = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks_exact(2) {
        let (high, low) = (TABLE[usize::from(pair[0])], TABLE[usize::from(pair[1])]);
        // Every digit is below 16; BAD is not.
        if (high | low) > 0x0f {
            return None;
        }
        bytes.push(high << 4 | low);
    }
    Some(bytes)
}

/// The memo a wallet sent, if it is within the size an invoice's own memo may have.
pub fn check_memo(memo: Option<&str>) -> Result<(), PayError> {
    if memo.is_some_and(|m| m.len() > crate::jpp::create::MAX_MEMO_BYTES) {
        return Err(PayError::Invalid("memo must be at most 4096 bytes".into()));
    }
    Ok(())
}

/// `refund_to` as a wallet sent it, checked and written the one way Cashier stores it: a list
/// of `{amount, address}` with each address in CashAddr form.
pub fn check_refunds(
    refund_to: Option<serde_json::Value>,
    network: Network,
) -> Result<Option<serde_json::Value>, PayError> {
    let Some(value) = refund_to.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let list = value
        .as_array()
        .ok_or_else(|| PayError::Invalid("refund_to must be a list of {amount, address}".into()))?;
    if list.len() > MAX_REFUNDS {
        return Err(PayError::Invalid(format!(
            "refund_to may have at most {MAX_REFUNDS} entries"
        )));
    }
    let mut normalised = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let amount = entry["amount"].as_u64().ok_or_else(|| {
            PayError::Invalid(format!(
                "refund_to[{i}].amount must be a whole number of sats"
            ))
        })?;
        let address = entry["address"]
            .as_str()
            .ok_or_else(|| PayError::Invalid(format!("refund_to[{i}].address is required")))?;
        let address = Address::parse(address, network)
            .map_err(|e| PayError::Invalid(format!("refund_to[{i}].address {e}")))?;
        normalised.push(json!({"amount": amount, "address": address.to_cashaddr(false)}));
    }
    Ok(Some(serde_json::Value::Array(normalised)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decodes_as_the_hex_crate_does() {
        let bytes: Vec<u8> = (0..=255).collect();
        for text in [
            hex::encode(&bytes),
            hex::encode_upper(&bytes),
            String::new(),
        ] {
            assert_eq!(decode_hex(&text), Some(hex::decode(&text).unwrap()));
        }
        for bad in ["0", "0g", "g0", "0 ", "-1", "é0", "0\u{0}"] {
            assert_eq!(decode_hex(bad), None, "{bad:?}");
        }
    }
}
