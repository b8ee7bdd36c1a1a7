//! What watching the chain needs from a node: its tip, block headers (to walk back to a fork
//! by hash), blocks with their transactions, the mempool, and double-spend proofs; and the
//! hints a node pushes (BCHN's ZMQ `rawtx`, `hashblock`, `hashds`), which only say "look now".
//!
//! Hints are lossy (ZMQ drops messages, a socket reconnects), so nothing is decided on a hint
//! alone: the watcher reconciles from the last block it processed, by hash, on every hint and
//! on a timer (`reference/anchors.md` §2.3).

use std::future::Future;

use super::node::NodeError;
use super::{Tx, Txid};

/// A block hash in display order (as RPC and explorers write it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockHash(pub [u8; 32]);

impl BlockHash {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<BlockHash> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).ok()?;
        Some(BlockHash(bytes))
    }
}

impl std::fmt::Display for BlockHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A block on the node's main chain: `getblockheader`'s `hash`, `height`,
/// `previousblockhash` (`None` only for the genesis block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub hash: BlockHash,
    pub height: i64,
    pub prev: Option<BlockHash>,
}

/// A transaction with its id, as the chain carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTx {
    pub txid: Txid,
    pub tx: Tx,
}

/// A block and every transaction in it, in block order (coinbase first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub header: Header,
    pub txs: Vec<ChainTx>,
}

/// A double-spend proof the node holds for one of its mempool transactions (the first seen of
/// two that spend the same coin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsProof {
    /// The proof's id (`dspid`), hex.
    pub id: String,
    /// The transaction it proves was double-spent.
    pub txid: Txid,
}

/// What a node pushes. Each is a hint to look now; the watcher's reconciliation is what
/// decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A transaction entered the mempool (`rawtx`). BCHN publishes `rawtx` also for every
    /// transaction of a block it connects or disconnects, so it may already be confirmed.
    Tx {
        tx: ChainTx,
        /// When the hint was made (the node sent it, or the dev chain took the transaction),
        /// in ms: a transaction's arrival known finer than the node's whole seconds.
        seen_ms: i64,
    },
    /// The tip moved (`hashblock`): connected, or a reorg's new tip.
    Block(BlockHash),
    /// A double-spend proof was made for this transaction (`hashds`).
    DoubleSpend(Txid),
    /// Messages may have been lost (a gap in a topic's sequence numbers, or a reconnect):
    /// reconcile everything.
    Lost,
}

/// What the chain watcher asks a node. The dev chain and the BCHN client implement it.
pub trait ChainSource: Send + Sync {
    /// The main chain's tip (`getbestblockhash`, then its header).
    fn tip(&self) -> impl Future<Output = Result<Header, NodeError>> + Send;
    /// The header of a block on the main chain; `None` when the node does not know it or it
    /// is not on the main chain (`getblockheader`'s `confirmations` is -1).
    fn header(
        &self,
        hash: BlockHash,
    ) -> impl Future<Output = Result<Option<Header>, NodeError>> + Send;
    /// A block with all its transactions (`getblock <hash> 0`); `None` when unknown or not
    /// on the main chain, as for [`ChainSource::header`].
    fn block(
        &self,
        hash: BlockHash,
    ) -> impl Future<Output = Result<Option<Block>, NodeError>> + Send;
    /// The txids in the mempool (`getrawmempool`).
    fn mempool(&self) -> impl Future<Output = Result<Vec<Txid>, NodeError>> + Send;
    /// A mempool transaction (`getrawtransaction <txid> 0`); `None` when it is not there.
    fn mempool_tx(
        &self,
        txid: Txid,
    ) -> impl Future<Output = Result<Option<ChainTx>, NodeError>> + Send;
    /// The double-spend proof of each mempool transaction, in the order asked, where the node
    /// has one (`getdsproof <txid>`, many in one request).
    fn double_spend_proofs(
        &self,
        txids: &[Txid],
    ) -> impl Future<Output = Result<Vec<Option<DsProof>>, NodeError>> + Send;
}

/// Forwards each call of [`ChainSource`] to the inherent method of the same name.
macro_rules! chain_source_by_inherent_methods {
    ($type:ty) => {
        impl ChainSource for $type {
            async fn tip(&self) -> Result<Header, NodeError> {
                <$type>::tip(self).await
            }
            async fn header(&self, hash: BlockHash) -> Result<Option<Header>, NodeError> {
                <$type>::header(self, hash).await
            }
            async fn block(&self, hash: BlockHash) -> Result<Option<Block>, NodeError> {
                <$type>::block(self, hash).await
            }
            async fn mempool(&self) -> Result<Vec<Txid>, NodeError> {
                <$type>::mempool(self).await
            }
            async fn mempool_tx(&self, txid: Txid) -> Result<Option<ChainTx>, NodeError> {
                <$type>::mempool_tx(self, txid).await
            }
            async fn double_spend_proofs(
                &self,
                txids: &[Txid],
            ) -> Result<Vec<Option<DsProof>>, NodeError> {
                <$type>::double_spend_proofs(self, txids).await
            }
        }
    };
}

chain_source_by_inherent_methods!(super::bchn::BchnClient);
