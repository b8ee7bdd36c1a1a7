//! The node Cashier talks to: the built-in dev chain or a real BCHN. An enum over the two (the
//! set is ours), so calls stay static and need no boxing.

use crate::chain::bchn::BchnClient;
use crate::chain::node::{Acceptance, Broadcast, Coin, Node, NodeError, TxStatus};
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

impl NodeClient {
    /// The dev chain, when that is the node.
    pub fn dev(&self) -> Option<&DevChain> {
        match self {
            NodeClient::Dev(d) => Some(d),
            NodeClient::Bchn(_) => None,
        }
    }
}
