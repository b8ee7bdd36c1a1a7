//! BCH transactions: parsed from and written to the wire with `bitcoin`'s consensus encoding,
//! viewed with each output's CashToken prefix split off.

use bitcoin::consensus::encode::deserialize_partial;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;

use super::{TokenData, TokenError};

/// BCHN's `MAX_STANDARD_TX_SIZE`: a payment larger than this is not relayed.
pub const MAX_TX_SIZE: usize = 100_000;
/// The smallest transaction consensus allows since Upgrade 9.
pub const MIN_TX_SIZE: usize = 65;
/// The fewest bytes an input takes: its 36-byte outpoint, the one-byte length of an empty
/// unlocking bytecode and its 4-byte sequence.
pub const MIN_INPUT_SIZE: usize = 41;
/// The most inputs a payment can have: no more than this many fit in [`MAX_TX_SIZE`] bytes
/// (2,439), so every input of a payment `Tx::parse` accepts can be looked up in one request.
pub const MAX_INPUTS: usize = MAX_TX_SIZE / MIN_INPUT_SIZE;

/// A transaction id in display order (as explorers, wallets and RPC write it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Txid(pub [u8; 32]);

impl Txid {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Txid> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).ok()?;
        Some(Txid(bytes))
    }

    fn from_bitcoin(txid: bitcoin::Txid) -> Txid {
        let mut bytes = txid.to_byte_array();
        bytes.reverse();
        Txid(bytes)
    }

    fn to_bitcoin(self) -> bitcoin::Txid {
        let mut bytes = self.0;
        bytes.reverse();
        bitcoin::Txid::from_byte_array(bytes)
    }

    /// The bytes as they appear inside a transaction (reversed display order).
    pub fn wire_bytes(&self) -> [u8; 32] {
        let mut bytes = self.0;
        bytes.reverse();
        bytes
    }
}

impl std::fmt::Display for Txid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutPoint {
    pub txid: Txid,
    pub vout: u32,
}

impl OutPoint {
    /// The outpoint a coinbase input names.
    pub fn is_null(&self) -> bool {
        self.txid.0 == [0; 32] && self.vout == u32::MAX
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub prevout: OutPoint,
    pub script_sig: Vec<u8>,
    pub sequence: u32,
}

/// An output, or a coin being spent: satoshis, tokens, and the locking bytecode after the
/// token prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub value: u64,
    pub token: Option<TokenData>,
    pub locking_bytecode: Vec<u8>,
}

impl Output {
    /// The whole locking bytecode field as it is on the wire: token prefix, then the script.
    pub fn script_field(&self) -> Vec<u8> {
        let mut field = self
            .token
            .as_ref()
            .map(TokenData::prefix_bytes)
            .unwrap_or_default();
        field.extend_from_slice(&self.locking_bytecode);
        field
    }

    /// The output serialised as in a transaction (value, length, field).
    pub fn serialize(&self) -> Vec<u8> {
        let field = self.script_field();
        let mut out = Vec::with_capacity(9 + field.len() + 8);
        out.extend_from_slice(&self.value.to_le_bytes());
        super::write_compact_size(&mut out, field.len() as u64);
        out.extend_from_slice(&field);
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tx {
    pub version: i32,
    pub inputs: Vec<Input>,
    pub outputs: Vec<Output>,
    pub lock_time: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("transaction is {0} bytes; the most a payment may be is {MAX_TX_SIZE}")]
    TooLarge(usize),
    #[error("transaction is {0} bytes; the least consensus allows is {MIN_TX_SIZE}")]
    TooSmall(usize),
    #[error("transaction cannot be decoded: {0}")]
    Malformed(String),
    #[error("transaction encoding is not canonical (trailing bytes or a non-BCH format)")]
    NotCanonical,
    #[error("transaction has no inputs")]
    NoInputs,
    #[error("transaction has no outputs")]
    NoOutputs,
    #[error("output {index}: {source}")]
    Token { index: usize, source: TokenError },
    #[error("output values exceed 21 million BCH")]
    ValueOutOfRange,
    #[error("transaction spends the same coin twice")]
    DuplicateInput,
    #[error("input {0} spends the null outpoint, which only a coinbase may")]
    NullPrevout(usize),
    #[error("coinbase unlocking bytecode must be 2 to 100 bytes")]
    BadCoinbase,
}

impl Tx {
    /// Decodes a payment: size bounds first (which bound every count inside), then the wire
    /// format and token prefixes, then the context-free consensus checks.
    pub fn parse(raw: &[u8]) -> Result<Tx, TxError> {
        if raw.len() > MAX_TX_SIZE {
            return Err(TxError::TooLarge(raw.len()));
        }
        if raw.len() < MIN_TX_SIZE {
            return Err(TxError::TooSmall(raw.len()));
        }
        let tx = Tx::decode(raw)?;
        tx.check()?;
        Ok(tx)
    }

    /// Decodes the wire format and each output's token prefix. The bytes must be exactly what
    /// the result serialises to.
    pub fn decode(raw: &[u8]) -> Result<Tx, TxError> {
        let btc: bitcoin::Transaction =
            deserialize(raw).map_err(|e| TxError::Malformed(e.to_string()))?;
        Tx::from_wire(btc, raw)
    }

    /// Decodes the one transaction at the front of `input` (as in a block, where transactions
    /// follow each other with no length between them) and says how many bytes it took: the
    /// txid is the hash of exactly those bytes. No size bound applies beyond `input`'s length,
    /// which bounds every count inside.
    pub fn decode_prefix(input: &[u8]) -> Result<(Tx, usize), TxError> {
        let (btc, len): (bitcoin::Transaction, usize) =
            deserialize_partial(input).map_err(|e| TxError::Malformed(e.to_string()))?;
        let raw = input
            .get(..len)
            .ok_or_else(|| TxError::Malformed("read past the end of the input".into()))?;
        Ok((Tx::from_wire(btc, raw)?, len))
    }

    /// Our view of a decoded transaction, refused unless `raw` is exactly its encoding.
    fn from_wire(btc: bitcoin::Transaction, raw: &[u8]) -> Result<Tx, TxError> {
        // `bitcoin` also reads the segwit layout (a zero input count then a flag); BCH has no
        // such thing, and a witness would make the txid differ from the hash of these bytes.
        if btc.input.iter().any(|i| !i.witness.is_empty()) || serialize(&btc) != raw {
            return Err(TxError::NotCanonical);
        }
        let outputs = btc
            .output
            .iter()
            .enumerate()
            .map(|(index, o)| {
                let (token, script) = TokenData::split_prefix(o.script_pubkey.as_bytes())
                    .map_err(|source| TxError::Token { index, source })?;
                Ok(Output {
                    value: o.value.to_sat(),
                    token,
                    locking_bytecode: script.to_vec(),
                })
            })
            .collect::<Result<Vec<_>, TxError>>()?;
        Ok(Tx {
            version: btc.version.0,
            inputs: btc
                .input
                .iter()
                .map(|i| Input {
                    prevout: OutPoint {
                        txid: Txid::from_bitcoin(i.previous_output.txid),
                        vout: i.previous_output.vout,
                    },
                    script_sig: i.script_sig.to_bytes(),
                    sequence: i.sequence.0,
                })
                .collect(),
            outputs,
            lock_time: btc.lock_time.to_consensus_u32(),
        })
    }

    /// BCHN's context-free checks (`CheckRegularTransaction` / `CheckCoinbase`): inputs and
    /// outputs present, amounts in range, no coin spent twice, commitments within bounds.
    pub fn check(&self) -> Result<(), TxError> {
        if self.inputs.is_empty() {
            return Err(TxError::NoInputs);
        }
        if self.outputs.is_empty() {
            return Err(TxError::NoOutputs);
        }
        let mut total = 0u64;
        for (index, o) in self.outputs.iter().enumerate() {
            total = total.checked_add(o.value).ok_or(TxError::ValueOutOfRange)?;
            if o.value > super::MAX_MONEY_SATS || total > super::MAX_MONEY_SATS {
                return Err(TxError::ValueOutOfRange);
            }
            if let Some(nft) = o.token.as_ref().and_then(|t| t.nft.as_ref()) {
                if nft.commitment.len() > super::MAX_COMMITMENT_LEN {
                    return Err(TxError::Token {
                        index,
                        source: TokenError::CommitmentTooLong(nft.commitment.len()),
                    });
                }
            }
        }
        if self.is_coinbase() {
            let len = self.inputs[0].script_sig.len();
            return if (2..=100).contains(&len) {
                Ok(())
            } else {
                Err(TxError::BadCoinbase)
            };
        }
        let mut seen = std::collections::HashSet::with_capacity(self.inputs.len());
        for (index, input) in self.inputs.iter().enumerate() {
            if input.prevout.is_null() {
                return Err(TxError::NullPrevout(index));
            }
            if !seen.insert(input.prevout) {
                return Err(TxError::DuplicateInput);
            }
        }
        Ok(())
    }

    /// A block reward: one input spending the null outpoint.
    pub fn is_coinbase(&self) -> bool {
        self.inputs.len() == 1 && self.inputs[0].prevout.is_null()
    }

    fn to_bitcoin(&self) -> bitcoin::Transaction {
        bitcoin::Transaction {
            version: bitcoin::transaction::Version(self.version),
            lock_time: bitcoin::absolute::LockTime::from_consensus(self.lock_time),
            input: self
                .inputs
                .iter()
                .map(|i| bitcoin::TxIn {
                    previous_output: bitcoin::OutPoint {
                        txid: i.prevout.txid.to_bitcoin(),
                        vout: i.prevout.vout,
                    },
                    script_sig: bitcoin::ScriptBuf::from_bytes(i.script_sig.clone()),
                    sequence: bitcoin::Sequence(i.sequence),
                    witness: bitcoin::Witness::new(),
                })
                .collect(),
            output: self
                .outputs
                .iter()
                .map(|o| bitcoin::TxOut {
                    value: bitcoin::Amount::from_sat(o.value),
                    script_pubkey: bitcoin::ScriptBuf::from_bytes(o.script_field()),
                })
                .collect(),
        }
    }

    /// The wire bytes. (Only meaningful for a transaction with at least one input: with none,
    /// the encoding is ambiguous with the segwit layout.)
    pub fn serialize(&self) -> Vec<u8> {
        serialize(&self.to_bitcoin())
    }

    /// Double SHA-256 of the wire bytes, in display order.
    pub fn txid(&self) -> Txid {
        txid_of(&self.serialize())
    }
}

/// The txid of raw transaction bytes: double SHA-256, in display order.
pub fn txid_of(raw: &[u8]) -> Txid {
    let mut bytes = bitcoin::hashes::sha256d::Hash::hash(raw).to_byte_array();
    bytes.reverse();
    Txid(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(tag: u8) -> Tx {
        Tx {
            version: 2,
            inputs: vec![Input {
                prevout: OutPoint {
                    txid: Txid([tag; 32]),
                    vout: 1,
                },
                script_sig: vec![tag; 3],
                sequence: u32::MAX,
            }],
            outputs: vec![Output {
                value: 1000,
                token: None,
                locking_bytecode: vec![0x51],
            }],
            lock_time: 0,
        }
    }

    #[test]
    fn a_prefix_decodes_one_transaction_and_its_length() {
        let (a, b) = (tx(1).serialize(), tx(2).serialize());
        let both = [a.clone(), b.clone()].concat();
        let (first, len) = Tx::decode_prefix(&both).unwrap();
        assert_eq!((first, len), (tx(1), a.len()));
        assert_eq!(Tx::decode_prefix(&both[len..]).unwrap(), (tx(2), b.len()));
        // The whole-transaction decoder still refuses what follows a transaction.
        assert!(Tx::decode(&both).is_err());
        for cut in 0..a.len() {
            assert!(Tx::decode_prefix(&a[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn no_payment_has_more_than_max_inputs() {
        // The smallest inputs there are (empty unlocking bytecode), one more than the bound,
        // and the smallest output: too large to be a payment.
        let mut smallest = tx(1);
        smallest.outputs[0].locking_bytecode.clear();
        let input = Input {
            script_sig: Vec::new(),
            ..smallest.inputs[0].clone()
        };
        smallest.inputs = (0..=MAX_INPUTS)
            .map(|n| Input {
                prevout: OutPoint {
                    txid: Txid([1; 32]),
                    vout: n as u32,
                },
                ..input.clone()
            })
            .collect();
        let raw = smallest.serialize();
        assert_eq!(
            raw.len(),
            (MAX_INPUTS + 1) * MIN_INPUT_SIZE + 4 + 3 + 1 + 9 + 4,
            "each input is the smallest"
        );
        assert!(matches!(Tx::parse(&raw), Err(TxError::TooLarge(_))));
    }
}
