//! Building and signing a payment from P2PKH coins of one key: what `cashier dev pay` and the
//! tests use to pay invoices on the dev chain the way a wallet does.

use bitcoin::secp256k1::{Secp256k1, SecretKey, Signing};

use super::sighash::{p2pkh_locking_bytecode, sign_p2pkh_with, SighashError, SignWith};
use super::{dust_threshold, Input, OutPoint, Output, Tx};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the coins hold {have} sats; the outputs and fee need {need}")]
    Insufficient { have: u64, need: u64 },
    #[error(transparent)]
    Sign(#[from] SighashError),
}

/// Spends every coin in `coins` (P2PKH coins of `key`) to `outputs`, returning change to the
/// key when it is above dust, with a fee of at least `fee_per_kb` sats per 1000 bytes, signed
/// as wallets sign today: Schnorr, SIGHASH_ALL|FORKID.
pub fn build_payment<C: Signing>(
    secp: &Secp256k1<C>,
    key: &SecretKey,
    coins: &[(OutPoint, Output)],
    outputs: Vec<Output>,
    fee_per_kb: u64,
) -> Result<Tx, BuildError> {
    build_payment_with(secp, key, coins, outputs, fee_per_kb, SignWith::default())
}

/// [`build_payment`] with the signature scheme and hash type chosen.
pub fn build_payment_with<C: Signing>(
    secp: &Secp256k1<C>,
    key: &SecretKey,
    coins: &[(OutPoint, Output)],
    outputs: Vec<Output>,
    fee_per_kb: u64,
    how: SignWith,
) -> Result<Tx, BuildError> {
    let have: u64 = coins.iter().map(|(_, o)| o.value).sum();
    let pay: u64 = outputs.iter().map(|o| o.value).sum();
    let change_script = p2pkh_locking_bytecode(&key.public_key(secp));
    let dust = dust_threshold(change_script.len());
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
        outputs: Vec::new(),
        lock_time: 0,
    };
    // The fee is charged on the size of the transaction as signed. A Schnorr signature is
    // always 64 bytes, so the second pass settles it; a DER signature can change length when
    // the change value (and so the digest) changes, so this repeats until the fee paid covers
    // the size signed. Each repeat raises the fee, which the coins bound.
    let mut fee = 0u64;
    loop {
        let left = have
            .checked_sub(pay)
            .and_then(|spare| spare.checked_sub(fee));
        let change = left.filter(|&value| value >= dust);
        tx.outputs.clone_from(&outputs);
        if let Some(value) = change {
            tx.outputs.push(Output {
                value,
                token: None,
                locking_bytecode: change_script.clone(),
            });
        }
        sign_p2pkh_with(secp, &mut tx, &spent, key, how)?;
        let size = tx.serialize().len() as u64;
        let needed = (fee_per_kb.saturating_mul(size)).div_ceil(1000);
        let paid = have.saturating_sub(pay).saturating_sub(change.unwrap_or(0));
        if have >= pay && paid >= needed {
            return Ok(tx);
        }
        if change.is_none() {
            // Without change this is the smallest transaction these coins make.
            return Err(BuildError::Insufficient {
                have,
                need: pay.saturating_add(needed),
            });
        }
        fee = needed;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::sighash::verify_p2pkh;
    use crate::chain::Txid;

    fn coins(key: &SecretKey, values: &[u64]) -> Vec<(OutPoint, Output)> {
        let locking = p2pkh_locking_bytecode(&key.public_key(&Secp256k1::new()));
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| {
                (
                    OutPoint {
                        txid: Txid([i as u8 + 1; 32]),
                        vout: 0,
                    },
                    Output {
                        value,
                        token: None,
                        locking_bytecode: locking.clone(),
                    },
                )
            })
            .collect()
    }

    fn pay_to(value: u64) -> Vec<Output> {
        vec![Output {
            value,
            token: None,
            locking_bytecode: vec![
                0x76, 0xa9, 0x14, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0x88,
                0xac,
            ],
        }]
    }

    /// Sats paid in fee, after checking every input's signature.
    fn fee_of(tx: &Tx, coins: &[(OutPoint, Output)]) -> u64 {
        let spent: Vec<Output> = coins.iter().map(|(_, o)| o.clone()).collect();
        for i in 0..tx.inputs.len() {
            verify_p2pkh(&Secp256k1::new(), tx, i, &spent).unwrap();
        }
        spent.iter().map(|o| o.value).sum::<u64>() - tx.outputs.iter().map(|o| o.value).sum::<u64>()
    }

    #[test]
    fn the_fee_is_the_rate_times_the_signed_size() {
        let secp = Secp256k1::new();
        let key = random_key();
        for rate in [0, 1000, 1001, 2500, 10_000] {
            for how in [
                SignWith::SCHNORR,
                SignWith::Schnorr { hash_type: 0x61 },
                SignWith::ECDSA,
                SignWith::Ecdsa { hash_type: 0x61 },
            ] {
                let coins = coins(&key, &[30_000, 12_345, 9_999]);
                let tx =
                    build_payment_with(&secp, &key, &coins, pay_to(20_000), rate, how).unwrap();
                assert_eq!(tx.outputs.len(), 2, "with change");
                let needed = (rate * tx.serialize().len() as u64).div_ceil(1000);
                let fee = fee_of(&tx, &coins);
                match how {
                    // 64-byte signatures: the size is known exactly, so the fee is too.
                    SignWith::Schnorr { .. } => assert_eq!(fee, needed, "{how:?} at {rate}"),
                    // A DER signature may come out a byte or two shorter on the last signing
                    // (three inputs here); never too little.
                    SignWith::Ecdsa { .. } => assert!(
                        fee >= needed && fee - needed <= (6 * rate).div_ceil(1000) + 1,
                        "{how:?} at {rate}: {fee} for {needed}"
                    ),
                }
            }
        }
    }

    #[test]
    fn schnorr_by_default() {
        let secp = Secp256k1::new();
        let key = random_key();
        let coins = coins(&key, &[30_000]);
        let tx = build_payment(&secp, &key, &coins, pay_to(20_000), 1000).unwrap();
        // <65-byte signature> <33-byte key>, each after its push byte.
        assert_eq!(tx.inputs[0].script_sig.len(), 100);
        assert_eq!(tx.inputs[0].script_sig[65], 0x41);
        assert_eq!(fee_of(&tx, &coins), tx.serialize().len() as u64);
    }

    #[test]
    fn change_below_dust_goes_to_the_fee_and_too_little_is_refused() {
        let secp = Secp256k1::new();
        let key = random_key();
        // Spare of 600 sats: above dust before the fee, below it after.
        let coins_ = coins(&key, &[20_600]);
        let tx = build_payment(&secp, &key, &coins_, pay_to(20_000), 1000).unwrap();
        assert_eq!(tx.outputs.len(), 1);
        assert_eq!(fee_of(&tx, &coins_), 600);
        // 150 sats spare cannot pay for ~190 bytes.
        let coins_ = coins(&key, &[20_150]);
        match build_payment(&secp, &key, &coins_, pay_to(20_000), 1000) {
            Err(BuildError::Insufficient { have, need }) => {
                assert_eq!(have, 20_150);
                assert!(need > 20_150, "{need}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            build_payment(&secp, &key, &coins_, pay_to(30_000), 1000),
            Err(BuildError::Insufficient { have: 20_150, .. })
        ));
    }
}
