//! BCHN's answers turned into our types: refusals (RPC errors and reject reasons) into
//! [`Rejection`]s, `getmempoolentry` into a mempool entry, `gettxout` into a [`Coin`], and BCH
//! amounts read exactly from their decimal text. Nothing here talks to the node.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::rpc::{RpcError, RPC_DESERIALIZATION_ERROR, RPC_VERIFY_ERROR, RPC_VERIFY_REJECTED};
use crate::chain::node::{Coin, NodeError, RejectKind, Rejection};
use crate::chain::{Nft, NftCapability, OutPoint, Output, TokenData, MAX_MONEY_SATS};

/// The refusal an RPC error stands for, when it is one: -22 (the bytes are not a
/// transaction), -26 (rejected by mempool policy or consensus) and -25 (BCHN's "Missing
/// inputs", or another failure to accept, sorted by its text).
pub(super) fn rejection(e: &RpcError) -> Option<Rejection> {
    match e.code {
        RPC_DESERIALIZATION_ERROR => Some(Rejection {
            kind: RejectKind::Invalid,
            reason: e.message.clone(),
        }),
        RPC_VERIFY_ERROR | RPC_VERIFY_REJECTED => {
            let reason = node_reason(&e.message);
            Some(Rejection {
                kind: reject_kind(reason),
                reason: reason.to_string(),
            })
        }
        _ => None,
    }
}

/// The node's reason without its numeric reject code, which the two calls write differently:
/// `18: txn-mempool-conflict` (testmempoolaccept) and `txn-mempool-conflict (code 18)`
/// (sendrawtransaction). The same refusal then reads the same whichever call made it.
pub(super) fn node_reason(text: &str) -> &str {
    let mut reason = text.trim();
    if let Some((code, rest)) = reason.split_once(": ") {
        if !code.is_empty() && is_digits(code) {
            reason = rest;
        }
    }
    if let Some((head, code)) = reason
        .strip_suffix(')')
        .and_then(|r| r.rsplit_once(" (code "))
    {
        if !code.is_empty() && is_digits(code) {
            reason = head;
        }
    }
    reason
}

pub(super) fn reject_kind(reason: &str) -> RejectKind {
    // Prefix matches: BCHN may append details after the reason (`reason, details`).
    if reason.starts_with("missing-inputs")
        || reason.starts_with("bad-txns-inputs-missingorspent")
        || reason.eq_ignore_ascii_case("missing inputs")
    {
        RejectKind::MissingInputs
    } else if reason.starts_with("txn-mempool-conflict") {
        RejectKind::Conflict
    } else {
        RejectKind::Invalid
    }
}

/// `getmempoolentry`'s answer, the parts read. BCHN (v28) writes `size`, `time` (whole
/// seconds) and `fees: {base, modified}` in BCH; nodes before the `fees` object wrote `fee`.
#[derive(Deserialize)]
pub(super) struct EntryReply {
    time: i64,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    fees: Option<FeesReply>,
    /// Kept as text: see [`sats_from_bch_text`].
    #[serde(default)]
    fee: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct FeesReply {
    base: Box<RawValue>,
}

/// A mempool entry in our terms.
pub(super) struct MempoolEntry {
    pub(super) first_seen_ms: i64,
    pub(super) fee_sats: Option<u64>,
    pub(super) size: Option<u64>,
}

impl EntryReply {
    pub(super) fn into_entry(self) -> Result<MempoolEntry, NodeError> {
        let first_seen_ms = self.time.checked_mul(1000).ok_or_else(|| {
            NodeError::Protocol(format!(
                "getmempoolentry: time {} is out of range",
                self.time
            ))
        })?;
        let fee_text = self.fees.map(|f| f.base).or(self.fee);
        let fee_sats = fee_text
            .map(|text| {
                sats_from_bch_text(text.get()).ok_or_else(|| {
                    NodeError::Protocol(format!(
                        "getmempoolentry: fee {} is not a satoshi amount",
                        text.get()
                    ))
                })
            })
            .transpose()?;
        Ok(MempoolEntry {
            first_seen_ms,
            fee_sats,
            size: self.size,
        })
    }
}

/// `gettxout`'s answer for an unspent coin.
#[derive(Deserialize)]
pub(super) struct TxOutReply {
    confirmations: u32,
    /// Kept as text: see [`sats_from_bch_text`].
    value: Box<RawValue>,
    #[serde(rename = "scriptPubKey")]
    script_pub_key: ScriptReply,
    #[serde(rename = "tokenData", default)]
    token_data: Option<TokenReply>,
}

#[derive(Deserialize)]
struct ScriptReply {
    /// The locking bytecode after the token prefix: BCHN reports tokens in `tokenData`.
    hex: String,
}

#[derive(Deserialize)]
struct TokenReply {
    category: String,
    /// A decimal string: the amount can exceed what a JSON number holds exactly.
    amount: String,
    #[serde(default)]
    nft: Option<NftReply>,
}

#[derive(Deserialize)]
struct NftReply {
    capability: String,
    commitment: String,
}

impl TxOutReply {
    pub(super) fn into_coin(self, op: &OutPoint) -> Result<Coin, NodeError> {
        let bad =
            |what: String| NodeError::Protocol(format!("gettxout {}:{}: {what}", op.txid, op.vout));
        let value = sats_from_bch_text(self.value.get()).ok_or_else(|| {
            bad(format!(
                "value {} is not a satoshi amount",
                self.value.get()
            ))
        })?;
        let locking_bytecode = hex::decode(&self.script_pub_key.hex)
            .map_err(|e| bad(format!("scriptPubKey.hex is not hex ({e})")))?;
        let token = self
            .token_data
            .map(|t| t.into_token_data().map_err(bad))
            .transpose()?;
        Ok(Coin {
            output: Output {
                value,
                token,
                locking_bytecode,
            },
            confirmations: self.confirmations,
        })
    }
}

impl TokenReply {
    fn into_token_data(self) -> Result<TokenData, String> {
        let mut category = [0u8; 32];
        hex::decode_to_slice(&self.category, &mut category)
            .map_err(|_| format!("token category {:?} is not 32 bytes of hex", self.category))?;
        let amount = parse_decimal_u64(&self.amount)
            .ok_or_else(|| format!("token amount {:?} is not a whole number", self.amount))?;
        let nft = self
            .nft
            .map(|n| {
                let capability = NftCapability::parse(&n.capability)
                    .ok_or_else(|| format!("unknown NFT capability {:?}", n.capability))?;
                let commitment = hex::decode(&n.commitment)
                    .map_err(|_| format!("NFT commitment {:?} is not hex", n.commitment))?;
                Ok::<_, String>(Nft {
                    capability,
                    commitment,
                })
            })
            .transpose()?;
        TokenData::new(category, amount, nft).map_err(|e| format!("token data: {e}"))
    }
}

/// Satoshis from the decimal text of a BCH amount as BCHN prints it (`0.00012345`),
/// exactly. Exponents (`1e-8`) are read too, though BCHN prints none. `None` for text that
/// is not a number, is negative, is not a whole number of satoshis or exceeds 21 million BCH.
pub fn sats_from_bch_text(text: &str) -> Option<u64> {
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((_, "")) => return None,
        Some((int, frac)) => (int, frac),
        None => (mantissa, ""),
    };
    if int.is_empty() || !is_digits(int) || !(frac.is_empty() || is_digits(frac)) {
        return None;
    }
    // The number is `digits × 10^-frac.len() × 10^exponent` BCH, and 1 BCH is 10^8 sats.
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    let shift = 8 + i64::from(exponent) - frac.len() as i64;
    let (digits, shift) = if shift < 0 {
        // Below one satoshi: only zeros may be cut off.
        let cut = usize::try_from(-shift).ok()?;
        let keep = digits.len().checked_sub(cut)?;
        let (kept, dropped) = digits.split_at(keep);
        if kept.is_empty() || dropped.bytes().any(|b| b != b'0') {
            return None;
        }
        (kept, 0)
    } else {
        (digits, shift)
    };
    // MAX_MONEY_SATS has 16 digits; more cannot be an amount (and could overflow).
    if digits.len() as i64 + shift > 16 {
        return None;
    }
    let sats = digits
        .parse::<u64>()
        .ok()?
        .checked_mul(10u64.checked_pow(u32::try_from(shift).ok()?)?)?;
    (sats <= MAX_MONEY_SATS).then_some(sats)
}

fn is_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// A whole number written in decimal digits only (`str::parse` would also take a `+`).
fn parse_decimal_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !is_digits(s) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_lose_their_codes_only() {
        assert_eq!(
            node_reason("18: txn-mempool-conflict"),
            "txn-mempool-conflict"
        );
        assert_eq!(
            node_reason("txn-mempool-conflict (code 18)"),
            "txn-mempool-conflict"
        );
        assert_eq!(node_reason("missing-inputs"), "missing-inputs");
        assert_eq!(node_reason("TX decode failed"), "TX decode failed");
        assert_eq!(node_reason("x: y (code z)"), "x: y (code z)");
    }
}
