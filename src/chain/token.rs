//! CashToken output data and the prefix (`0xef …`) it takes inside an output's locking bytecode.

use super::{compact_size_len, read_compact_size, write_compact_size};

/// Longest NFT commitment consensus allows (BCHN `MAX_CONSENSUS_COMMITMENT_LENGTH`).
pub const MAX_COMMITMENT_LEN: usize = 40;
/// Largest fungible amount of one category in one output (BCHN: `INT64_MAX`).
pub const MAX_FT_AMOUNT: u64 = i64::MAX as u64;

/// The byte that opens a token prefix in an output's locking bytecode field.
pub const PREFIX_TOKEN: u8 = 0xef;

const HAS_COMMITMENT_LENGTH: u8 = 0x40;
const HAS_NFT: u8 = 0x20;
const HAS_AMOUNT: u8 = 0x10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NftCapability {
    None,
    Mutable,
    Minting,
}

impl NftCapability {
    pub fn as_str(self) -> &'static str {
        match self {
            NftCapability::None => "none",
            NftCapability::Mutable => "mutable",
            NftCapability::Minting => "minting",
        }
    }

    pub fn parse(s: &str) -> Option<NftCapability> {
        match s {
            "none" => Some(NftCapability::None),
            "mutable" => Some(NftCapability::Mutable),
            "minting" => Some(NftCapability::Minting),
            _ => None,
        }
    }

    fn bits(self) -> u8 {
        match self {
            NftCapability::None => 0,
            NftCapability::Mutable => 1,
            NftCapability::Minting => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nft {
    pub capability: NftCapability,
    pub commitment: Vec<u8>,
}

/// Tokens an output carries. `category` is in display order (as BCHN's JSON and wallets write
/// it); on the wire the bytes are reversed, like a txid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenData {
    pub category: [u8; 32],
    /// Fungible amount; 0 when the output holds only an NFT.
    pub amount: u64,
    pub nft: Option<Nft>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a token output must carry an NFT or a fungible amount above 0")]
    Empty,
    #[error("fungible amount must be at most {MAX_FT_AMOUNT}")]
    AmountTooLarge,
    #[error("NFT commitment must be at most {MAX_COMMITMENT_LEN} bytes, got {0}")]
    CommitmentTooLong(usize),
    #[error("invalid token prefix: {0}")]
    BadPrefix(&'static str),
}

impl TokenData {
    pub fn new(category: [u8; 32], amount: u64, nft: Option<Nft>) -> Result<TokenData, TokenError> {
        if amount == 0 && nft.is_none() {
            return Err(TokenError::Empty);
        }
        if amount > MAX_FT_AMOUNT {
            return Err(TokenError::AmountTooLarge);
        }
        if let Some(nft) = &nft {
            if nft.commitment.len() > MAX_COMMITMENT_LEN {
                return Err(TokenError::CommitmentTooLong(nft.commitment.len()));
            }
        }
        Ok(TokenData {
            category,
            amount,
            nft,
        })
    }

    /// The prefix as it appears on the wire, before the locking bytecode.
    pub fn prefix_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix_len());
        out.push(PREFIX_TOKEN);
        out.extend(self.category.iter().rev());
        let mut bitfield = 0u8;
        if let Some(nft) = &self.nft {
            bitfield |= HAS_NFT | nft.capability.bits();
            if !nft.commitment.is_empty() {
                bitfield |= HAS_COMMITMENT_LENGTH;
            }
        }
        if self.amount > 0 {
            bitfield |= HAS_AMOUNT;
        }
        out.push(bitfield);
        if let Some(nft) = self.nft.as_ref().filter(|n| !n.commitment.is_empty()) {
            write_compact_size(&mut out, nft.commitment.len() as u64);
            out.extend_from_slice(&nft.commitment);
        }
        if self.amount > 0 {
            write_compact_size(&mut out, self.amount);
        }
        out
    }

    /// Splits a locking bytecode field into its token prefix (if it starts with `0xef`) and the
    /// locking bytecode after it, by BCHN's rules (`token::SafeUnwrap` and the CHIP): every
    /// malformed prefix is an error. Commitment length is not limited here; consensus limits
    /// it separately (see [`MAX_COMMITMENT_LEN`]).
    pub fn split_prefix(field: &[u8]) -> Result<(Option<TokenData>, &[u8]), TokenError> {
        let Some((&PREFIX_TOKEN, rest)) = field.split_first() else {
            return Ok((None, field));
        };
        if rest.len() < 33 {
            return Err(TokenError::BadPrefix("insufficient length"));
        }
        let mut category = [0u8; 32];
        for (dst, src) in category.iter_mut().zip(rest[..32].iter().rev()) {
            *dst = *src;
        }
        let bitfield = rest[32];
        let mut rest = &rest[33..];
        if bitfield & 0x80 != 0 {
            return Err(TokenError::BadPrefix("reserved bit is set"));
        }
        let capability = match bitfield & 0x0f {
            0 => NftCapability::None,
            1 => NftCapability::Mutable,
            2 => NftCapability::Minting,
            _ => return Err(TokenError::BadPrefix("unknown NFT capability")),
        };
        let (has_nft, has_amount) = (bitfield & HAS_NFT != 0, bitfield & HAS_AMOUNT != 0);
        if !has_nft && !has_amount {
            return Err(TokenError::BadPrefix("must encode at least one token"));
        }
        if !has_nft && bitfield & 0x0f != 0 {
            return Err(TokenError::BadPrefix("capability requires an NFT"));
        }
        if !has_nft && bitfield & HAS_COMMITMENT_LENGTH != 0 {
            return Err(TokenError::BadPrefix("commitment requires an NFT"));
        }
        let nft = if has_nft {
            let commitment = if bitfield & HAS_COMMITMENT_LENGTH != 0 {
                let len = read_compact_size(&mut rest)
                    .ok_or(TokenError::BadPrefix("invalid NFT commitment length"))?;
                if len == 0 {
                    return Err(TokenError::BadPrefix("commitment length must be above 0"));
                }
                let len = usize::try_from(len)
                    .ok()
                    .filter(|l| *l <= rest.len())
                    .ok_or(TokenError::BadPrefix("commitment is cut short"))?;
                let (c, r) = rest.split_at(len);
                rest = r;
                c.to_vec()
            } else {
                Vec::new()
            };
            Some(Nft {
                capability,
                commitment,
            })
        } else {
            None
        };
        let amount = if has_amount {
            let a = read_compact_size(&mut rest)
                .ok_or(TokenError::BadPrefix("invalid fungible amount encoding"))?;
            if a == 0 {
                return Err(TokenError::BadPrefix("fungible amount must be above 0"));
            }
            if a > MAX_FT_AMOUNT {
                return Err(TokenError::AmountTooLarge);
            }
            a
        } else {
            0
        };
        Ok((
            Some(TokenData {
                category,
                amount,
                nft,
            }),
            rest,
        ))
    }

    /// Length of [`Self::prefix_bytes`] without building it.
    pub fn prefix_len(&self) -> usize {
        let commitment = match self.nft.as_ref().map(|n| n.commitment.len()) {
            Some(0) | None => 0,
            Some(len) => compact_size_len(len as u64) + len,
        };
        let amount = if self.amount > 0 {
            compact_size_len(self.amount)
        } else {
            0
        };
        1 + 32 + 1 + commitment + amount
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::dust_threshold;

    fn nft(commitment: Vec<u8>) -> Option<Nft> {
        Some(Nft {
            capability: NftCapability::None,
            commitment,
        })
    }

    #[test]
    fn token_dust_matches_the_reference_figures() {
        // A P2PKH output with a small fungible amount: 69 bytes on the wire, 651 sats dust.
        let small = TokenData::new([7; 32], 5, None).unwrap();
        assert_eq!(dust_threshold(small.prefix_len() + 25), 651);
        // A 40-byte commitment and a 9-byte amount: 118 bytes, 798 sats.
        let big = TokenData::new([7; 32], 1 << 40, nft(vec![1; 40])).unwrap();
        assert_eq!(big.prefix_len(), big.prefix_bytes().len());
        assert_eq!(dust_threshold(big.prefix_len() + 25), 798);
    }

    #[test]
    fn prefix_reverses_the_category_and_sets_the_bitfield() {
        let mut category = [0u8; 32];
        category[0] = 0xaa;
        let t = TokenData::new(category, 0, nft(vec![])).unwrap();
        let bytes = t.prefix_bytes();
        assert_eq!(bytes[0], PREFIX_TOKEN);
        assert_eq!(bytes[32], 0xaa);
        assert_eq!(bytes[33], HAS_NFT);
        assert_eq!(bytes.len(), 34);
    }

    #[test]
    fn refuses_empty_and_oversized_tokens() {
        assert_eq!(TokenData::new([0; 32], 0, None), Err(TokenError::Empty));
        assert_eq!(
            TokenData::new([0; 32], 0, nft(vec![0; 41])),
            Err(TokenError::CommitmentTooLong(41))
        );
        assert_eq!(
            TokenData::new([0; 32], MAX_FT_AMOUNT + 1, None),
            Err(TokenError::AmountTooLarge)
        );
    }
}
