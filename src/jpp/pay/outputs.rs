//! Whether a transaction pays an invoice's outputs, and if not, which one it misses and how.

use super::PayError;
use crate::chain::Tx;
use crate::jpp::InvoiceOutput;
use crate::units::bch;

/// Each invoice output must be paid by a distinct transaction output: same locking bytecode,
/// exactly the sats asked, exactly the tokens asked. Other outputs (change) are allowed.
pub fn match_outputs(tx: &Tx, wanted: &[InvoiceOutput]) -> Result<(), PayError> {
    let mut used = vec![false; tx.outputs.len()];
    for (index, want) in wanted.iter().enumerate() {
        let script = want.address.locking_bytecode();
        let candidates: Vec<usize> = (0..tx.outputs.len())
            .filter(|&i| !used[i] && tx.outputs[i].locking_bytecode == script)
            .collect();
        let exact = candidates
            .iter()
            .copied()
            .find(|&i| tx.outputs[i].value == want.amount && tx.outputs[i].token == want.token);
        match exact {
            Some(i) => used[i] = true,
            None => {
                let Some(&first) = candidates.first() else {
                    return Err(PayError::MissingOutput {
                        index,
                        address: want.address_string(),
                    });
                };
                let near = candidates
                    .iter()
                    .copied()
                    .find(|&i| tx.outputs[i].value == want.amount)
                    .unwrap_or(first);
                let got = &tx.outputs[near];
                if got.value != want.amount {
                    return Err(PayError::WrongAmount {
                        paid: bch(got.value),
                        asked: bch(want.amount),
                    });
                }
                return Err(PayError::WrongTokens {
                    index,
                    detail: token_difference(want.token.as_ref(), got.token.as_ref()),
                });
            }
        }
    }
    Ok(())
}

fn token_difference(
    want: Option<&crate::chain::TokenData>,
    got: Option<&crate::chain::TokenData>,
) -> String {
    match (want, got) {
        (None, Some(_)) => "the output carries tokens the invoice does not ask for".into(),
        (Some(_), None) => "the output carries no tokens".into(),
        (Some(w), Some(g)) if w.category != g.category => format!(
            "category {} instead of {}",
            hex::encode(g.category),
            hex::encode(w.category)
        ),
        (Some(w), Some(g)) if w.amount != g.amount => {
            format!("fungible amount {} instead of {}", g.amount, w.amount)
        }
        (Some(w), Some(g)) => match (&w.nft, &g.nft) {
            (Some(wn), Some(gn)) if wn.capability != gn.capability => {
                format!(
                    "NFT capability {} instead of {}",
                    gn.capability.as_str(),
                    wn.capability.as_str()
                )
            }
            (Some(wn), Some(gn)) if wn.commitment != gn.commitment => {
                format!(
                    "NFT commitment {} instead of {}",
                    hex::encode(&gn.commitment),
                    hex::encode(&wn.commitment)
                )
            }
            (Some(_), None) => "the NFT is missing".into(),
            (None, Some(_)) => "an NFT the invoice does not ask for".into(),
            _ => "token data differs".into(),
        },
        (None, None) => "token data differs".into(),
    }
}
