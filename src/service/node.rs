//! The node Cashier talks to: the built-in dev chain or a real BCHN. An enum over the two (the
//! set is ours), so calls stay static and need no boxing.

use crate::chain::bchn::BchnClient;
use crate::chain::node::{
    Acceptance, Broadcast, Coin, CoinsAndAcceptance, Node, NodeError, TxStatus,
};
use crate::chain::watch::{Block, BlockHash, ChainSource, ChainTx, DsProof, Header};
use crate::chain::{OutPoint, Txid};

use super::DevChain;

#[derive(Debug, Clone)]
pub enum NodeClient {
    Dev(DevChain),
    Bchn(BchnClient),
}

impl Node for NodeClient {
    async fn coins(&self, outpoints: &[OutPoint]) -> Result<Vec<Option<Coin>>, NodeError> {
        match self {
            NodeClient::Dev(d) => d.coins(outpoints).await,
            NodeClient::Bchn(b) => b.coins(outpoints).await,
        }
    }

    async fn test_accept(&self, raw: &[u8]) -> Result<Acceptance, NodeError> {
        match self {
            NodeClient::Dev(d) => d.test_accept(raw).await,
            NodeClient::Bchn(b) => b.test_accept(raw).await,
        }
    }

    async fn coins_and_acceptance(
        &self,
        outpoints: &[OutPoint],
        raw: &[u8],
    ) -> Result<CoinsAndAcceptance, NodeError> {
        match self {
            NodeClient::Dev(d) => d.coins_and_acceptance(outpoints, raw).await,
            NodeClient::Bchn(b) => b.coins_and_acceptance(outpoints, raw).await,
        }
    }

    async fn broadcast(&self, raw: &[u8]) -> Result<Broadcast, NodeError> {
        match self {
            NodeClient::Dev(d) => d.broadcast(raw).await,
            NodeClient::Bchn(b) => b.broadcast(raw).await,
        }
    }

    async fn tx_status(&self, txid: Txid) -> Result<TxStatus, NodeError> {
        match self {
            NodeClient::Dev(d) => d.tx_status(txid).await,
            NodeClient::Bchn(b) => b.tx_status(txid).await,
        }
    }
}

impl ChainSource for NodeClient {
    async fn tip(&self) -> Result<Header, NodeError> {
        match self {
            NodeClient::Dev(d) => d.tip().await,
            NodeClient::Bchn(b) => b.tip().await,
        }
    }

    async fn header(&self, hash: BlockHash) -> Result<Option<Header>, NodeError> {
        match self {
            NodeClient::Dev(d) => d.header(hash).await,
            NodeClient::Bchn(b) => b.header(hash).await,
        }
    }

    async fn block(&self, hash: BlockHash) -> Result<Option<Block>, NodeError> {
        match self {
            NodeClient::Dev(d) => d.block(hash).await,
            NodeClient::Bchn(b) => b.block(hash).await,
        }
    }

    async fn mempool(&self) -> Result<Vec<Txid>, NodeError> {
        match self {
            NodeClient::Dev(d) => d.mempool().await,
            NodeClient::Bchn(b) => b.mempool().await,
        }
    }

    async fn mempool_tx(&self, txid: Txid) -> Result<Option<ChainTx>, NodeError> {
        match self {
            NodeClient::Dev(d) => d.mempool_tx(txid).await,
            NodeClient::Bchn(b) => b.mempool_tx(txid).await,
        }
    }

    async fn double_spend_proofs(&self, txids: &[Txid]) -> Result<Vec<Option<DsProof>>, NodeError> {
        match self {
            NodeClient::Dev(d) => d.double_spend_proofs(txids).await,
            NodeClient::Bchn(b) => b.double_spend_proofs(txids).await,
        }
    }
}

impl NodeClient {
    /// The dev chain, when that is the node.
    pub fn dev(&self) -> Option<&DevChain> {
        match self {
            NodeClient::Dev(d) => Some(d),
            NodeClient::Bchn(_) => None,
        }
    }
}
