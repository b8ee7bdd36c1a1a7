//! BCHN's answers turned into our types: refusals (RPC errors and reject reasons) into
//! [`Rejection`]s, `getmempoolentry` into a mempool entry, `gettxout` into a [`Coin`], BCH
//! amounts read exactly from their decimal text, and what watching the chain reads (block
//! hashes, `getblockheader`, hex blobs, `getdsproof`). Nothing here talks to the node.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::rpc::{RpcError, RPC_DESERIALIZATION_ERROR, RPC_VERIFY_ERROR, RPC_VERIFY_REJECTED};
use crate::chain::node::{Coin, NodeError, RejectKind, Rejection};
use crate::chain::watch::{BlockHash, DsProof, Header};
use crate::chain::{Nft, NftCapability, OutPoint, Output, TokenData, Txid, MAX_MONEY_SATS};

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

/// A block hash as BCHN writes it (64 hex digits, display order).
pub(super) fn block_hash(method: &str, text: &str) -> Result<BlockHash, NodeError> {
    BlockHash::from_hex(text)
        .ok_or_else(|| NodeError::Protocol(format!("{method}: {text:?} is not a block hash")))
}

/// A txid as BCHN writes it.
pub(super) fn parse_txid(method: &str, text: &str) -> Result<Txid, NodeError> {
    Txid::from_hex(text)
        .ok_or_else(|| NodeError::Protocol(format!("{method}: {text:?} is not a txid")))
}

/// The bytes of a result that is one JSON string of hex (`getblock <hash> 0`,
/// `getrawtransaction <txid> false`), decoded straight from the answer's text: a block's hex
/// can be hundreds of MB, and a copy as a `String` first would double that.
pub(super) fn hex_result(method: &str, result: Option<&RawValue>) -> Result<Vec<u8>, NodeError> {
    let text = result.map_or("null", RawValue::get);
    // Hex needs no JSON escapes, so the string's text between its quotes is the hex itself.
    let hex = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(|| {
            NodeError::Protocol(format!(
                "{method}: expected a hex string, got {}",
                super::transport::snippet(text.as_bytes())
            ))
        })?;
    hex::decode(hex).map_err(|e| NodeError::Protocol(format!("{method}: the hex is bad ({e})")))
}

/// `getblockheader <hash> true`, the parts read. BCHN writes `confirmations` -1 for a block
/// it knows that is not on its main chain, and leaves `previousblockhash` out for the
/// genesis block alone.
#[derive(Deserialize)]
pub(super) struct HeaderReply {
    hash: String,
    confirmations: i64,
    height: i64,
    #[serde(rename = "previousblockhash", default)]
    prev: Option<String>,
}

impl HeaderReply {
    /// The header in our terms when the block is on the main chain; `None` when it is not.
    /// The node must answer for the block asked about.
    pub(super) fn into_header(self, asked: BlockHash) -> Result<Option<Header>, NodeError> {
        const METHOD: &str = "getblockheader";
        let hash = block_hash(METHOD, &self.hash)?;
        if hash != asked {
            return Err(NodeError::Protocol(format!(
                "{METHOD}: asked for {asked}, answered for {hash}"
            )));
        }
        if self.confirmations == -1 {
            return Ok(None);
        }
        if self.confirmations < 1 || self.height < 0 {
            return Err(NodeError::Protocol(format!(
                "{METHOD} {hash}: {} confirmations at height {} is not an answer BCHN gives",
                self.confirmations, self.height
            )));
        }
        let prev = self
            .prev
            .as_deref()
            .map(|p| block_hash(METHOD, p))
            .transpose()?;
        if prev.is_none() != (self.height == 0) {
            return Err(NodeError::Protocol(format!(
                "{METHOD} {hash}: only the genesis block (height 0) has no previous block; \
                 this one is at height {} and {} one",
                self.height,
                if prev.is_some() { "has" } else { "lacks" }
            )));
        }
        Ok(Some(Header {
            hash,
            height: self.height,
            prev,
        }))
    }
}

/// `getdsproof <txid> 2 true`, the parts read: the proof's id, and the transaction it proves
/// was double-spent (with the recursive search, the asked-about one or an unconfirmed
/// ancestor of it). `txid` is null only for an orphan proof, whose transaction the node has
/// not seen; a lookup by txid cannot find one.
#[derive(Deserialize)]
pub(super) struct DsProofReply {
    dspid: String,
    #[serde(default)]
    txid: Option<String>,
}

impl DsProofReply {
    pub(super) fn into_proof(self, asked: Txid) -> Result<DsProof, NodeError> {
        const METHOD: &str = "getdsproof";
        let mut id = [0u8; 32];
        hex::decode_to_slice(&self.dspid, &mut id).map_err(|_| {
            NodeError::Protocol(format!("{METHOD}: {:?} is not a proof id", self.dspid))
        })?;
        let text = self.txid.ok_or_else(|| {
            NodeError::Protocol(format!(
                "{METHOD} {asked}: answered an orphan proof (no transaction), which a lookup by \
                 txid cannot find"
            ))
        })?;
        Ok(DsProof {
            id: self.dspid.to_ascii_lowercase(),
            txid: parse_txid(METHOD, &text)?,
        })
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
