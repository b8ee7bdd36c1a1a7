//! What paying needs from a BCH node, and the answers it gives, in BCHN's terms
//! (`reference/anchors.md` §2.1): the coins a transaction spends, the node's acceptance check
//! (alone, or asked with the coins in one round trip), broadcast, and a transaction's status.

use std::future::Future;

use super::{Network, OutPoint, Output, Txid};

/// BCHN's default relay fee floor (`minrelaytxfee`), 1 sat/byte: a node refuses less, so an
/// invoice asks for at least this.
pub const RELAY_FEE_PER_KB: u64 = 1000;

/// An unspent coin as the node sees it (`gettxout` with the mempool included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    pub output: Output,
    /// 0 while in the mempool.
    pub confirmations: u32,
}

/// Why a node refused a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// An input is unknown or already spent (`missing-inputs`, -25).
    MissingInputs,
    /// It conflicts with a transaction in the mempool (`txn-mempool-conflict`).
    Conflict,
    /// Anything else: fee, dust, size, script, token rules.
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub kind: RejectKind,
    /// The node's own words, e.g. `min relay fee not met` or `dust`.
    pub reason: String,
}

/// The answer to `testmempoolaccept`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    Allowed,
    /// The node already has it (`txn-already-in-mempool` / `txn-already-known`); when it
    /// first saw it, if the node can say.
    AlreadyKnown {
        first_seen_ms: Option<i64>,
    },
    Rejected(Rejection),
}

/// The coins a transaction spends and the node's acceptance check of it, asked together
/// ([`Node::coins_and_acceptance`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoinsAndAcceptance {
    /// Every coin is there, in the order asked, and this is what the acceptance check says.
    Found {
        coins: Vec<Coin>,
        acceptance: Acceptance,
    },
    /// A coin is unknown or spent. The acceptance check is not given: the caller asks the
    /// node why a coin is gone (`tx_status`, then `test_accept`), as it would have without it.
    Missing,
}

/// The answer to `sendrawtransaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broadcast {
    /// In the mempool now (new, or already there: BCHN answers the txid either way).
    Accepted,
    /// Already in a block (-27 `transaction already in block chain`).
    AlreadyConfirmed,
    Rejected(Rejection),
}

/// What the node knows of a transaction (`getrawtransaction` / `getmempoolentry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    Unknown,
    /// In the mempool. Each field is `None` when the node cannot say (the entry left the
    /// mempool between two calls).
    Mempool {
        /// When the node first saw it. BCHN keeps whole seconds, so this is a multiple of
        /// 1000.
        first_seen_ms: Option<i64>,
        /// The fee it pays, in sats (`getmempoolentry`'s `fees.base`): a transaction that
        /// reached the node before it was posted to an invoice can still be judged by it.
        fee_sats: Option<u64>,
        /// Its size in bytes, as the node counts it for the fee rate.
        size: Option<u64>,
    },
    Confirmed {
        confirmations: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// Nothing was done: connection refused, work queue full, the node is starting. Safe to
    /// retry later.
    #[error("the BCH node is unavailable: {0}")]
    Unavailable(String),
    /// The request may or may not have taken effect (timeout or reset mid-call).
    #[error("the BCH node did not answer in time: {0}")]
    Timeout(String),
    /// An answer that does not fit BCHN's documented replies.
    #[error("the BCH node answered unexpectedly: {0}")]
    Protocol(String),
}

/// The network a node serves, from `getblockchaininfo`'s `chain`.
pub fn network_of_chain(chain: &str) -> Option<Network> {
    match chain {
        "main" => Some(Network::Main),
        "test" | "test4" | "chip" | "scale" => Some(Network::Test),
        "regtest" => Some(Network::Regtest),
        _ => None,
    }
}

/// What paying needs from a BCH node. The dev chain and the BCHN client implement it; the
/// server holds a [`NodeClient`], which is one of them.
pub trait Node: Send + Sync {
    /// The unspent coin behind each outpoint (`None`: unknown or spent), mempool included.
    fn coins(
        &self,
        outpoints: &[OutPoint],
    ) -> impl Future<Output = Result<Vec<Option<Coin>>, NodeError>> + Send;
    /// The node's own acceptance check (`testmempoolaccept`).
    fn test_accept(&self, raw: &[u8])
        -> impl Future<Output = Result<Acceptance, NodeError>> + Send;
    /// [`Node::coins`] of `outpoints` (the inputs of `raw`, in order) and [`Node::test_accept`]
    /// of `raw`, in one round trip to the node: what paying asks before it claims an invoice.
    /// Both are read-only, so asking the acceptance check before the coins are judged costs
    /// nothing but the node's work on a transaction the caller may refuse anyway.
    fn coins_and_acceptance(
        &self,
        outpoints: &[OutPoint],
        raw: &[u8],
    ) -> impl Future<Output = Result<CoinsAndAcceptance, NodeError>> + Send;
    /// `sendrawtransaction`.
    fn broadcast(&self, raw: &[u8]) -> impl Future<Output = Result<Broadcast, NodeError>> + Send;
    /// What the node knows of a transaction.
    fn tx_status(&self, txid: Txid) -> impl Future<Output = Result<TxStatus, NodeError>> + Send;
}

/// Forwards each call of [`Node`] to the inherent method of the same name.
macro_rules! node_by_inherent_methods {
    ($type:ty) => {
        impl Node for $type {
            async fn coins(&self, outpoints: &[OutPoint]) -> Result<Vec<Option<Coin>>, NodeError> {
                <$type>::coins(self, outpoints).await
            }
            async fn test_accept(&self, raw: &[u8]) -> Result<Acceptance, NodeError> {
                <$type>::test_accept(self, raw).await
            }
            async fn coins_and_acceptance(
                &self,
                outpoints: &[OutPoint],
                raw: &[u8],
            ) -> Result<CoinsAndAcceptance, NodeError> {
                <$type>::coins_and_acceptance(self, outpoints, raw).await
            }
            async fn broadcast(&self, raw: &[u8]) -> Result<Broadcast, NodeError> {
                <$type>::broadcast(self, raw).await
            }
            async fn tx_status(&self, txid: Txid) -> Result<TxStatus, NodeError> {
                <$type>::tx_status(self, txid).await
            }
        }
    };
}

node_by_inherent_methods!(super::bchn::BchnClient);
