//! Building and signing a payment from P2PKH coins of one key: what `cashier dev pay` and the
//! tests use to pay invoices on the dev chain the way a wallet does.

use bitcoin::secp256k1::{Secp256k1, SecretKey, Signing};

use super::sighash::{p2pkh_locking_bytecode, sign_p2pkh, SighashError};
use super::{dust_threshold, Input, OutPoint, Output, Tx};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the coins hold {have} sats; the outputs and fee need {need}")]
    Insufficient { have: u64, need: u64 },
    #[error(transparent)]
    Sign(#[from] SighashError),
}

/// Spends every coin in `coins` (P2PKH coins of `key`) to `outputs`, returning change to the
/// key when it is above dust, with a fee of at least `fee_per_kb` sats per 1000 bytes.
pub fn build_payment<C: Signing>(
    secp: &Secp256k1<C>,
    key: &SecretKey,
    coins: &[(OutPoint, Output)],
    outputs: Vec<Output>,
    fee_per_kb: u64,
) -> Result<Tx, BuildError> {
    let have: u64 = coins.iter().map(|(_, o)| o.value).sum();
    let pay: u64 = outputs.iter().map(|o| o.value).sum();
    let change = Output {
        value: 0,
        token: None,
        locking_bytecode: p2pkh_locking_bytecode(&key.public_key(secp)),
    };
    let spent: Vec<Output> = coins.iter().map(|(_, o)| o.clone()).collect();
    let mut tx = Tx {
        version: 2,
        inputs: coins
            .iter()
            .map(|(prevout, _)| Input {
                prevout: *prevout,
                script_sig: Vec::new(),
                sequence: u32::MAX,
            })
            .collect(),
        outputs: outputs.clone(),
        lock_time: 0,
    };
    // Sign once with a change output to learn the size; DER signatures vary by a byte or two,
    // so allow two bytes per input.
    tx.outputs.push(Output {
        value: have.saturating_sub(pay),
        ..change.clone()
    });
    sign_p2pkh(secp, &mut tx, &spent, key)?;
    let size = tx.serialize().len() + 2 * tx.inputs.len();
    let fee = (fee_per_kb * size as u64).div_ceil(1000);
    let need = pay + fee;
    if have < need {
        return Err(BuildError::Insufficient { have, need });
    }
    let change_value = have - need;
    tx.outputs = outputs;
    if change_value >= dust_threshold(change.locking_bytecode.len()) {
        tx.outputs.push(Output {
            value: change_value,
            ..change
        });
    }
    sign_p2pkh(secp, &mut tx, &spent, key)?;
    Ok(tx)
}

/// A fresh random private key.
pub fn random_key() -> SecretKey {
    loop {
        // Almost every 32-byte string is a valid key; the loop only guards the rare one that
        // is not (zero, or not below the curve order).
        if let Ok(key) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
            return key;
        }
    }
}
