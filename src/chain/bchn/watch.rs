//! The calls watching the chain makes ([`crate::chain::watch::ChainSource`]): the tip, headers
//! by hash, raw blocks, the mempool and double-spend proofs. One public method per question,
//! BCHN's answers read in `answers.rs`.
//!
//! What it relies on, from BCHN's `rpc/blockchain.cpp`, `rpc/rawtransaction.cpp` and
//! `rpc/dsproof.cpp`:
//! - `getblockheader` and `getblock` answer -5 `Block not found` for a hash the node does not
//!   know; a known block off the main chain has `confirmations` -1.
//! - `getblock <hash> 0` answers -1 `Block not found on disk` while the node has the header
//!   but not yet the block, and -1 `Block not available (pruned data)` once it has pruned it.
//! - `getrawtransaction <txid> false` finds a confirmed transaction too (with `-txindex`, or
//!   while it has unspent outputs), so membership of the mempool is asked of
//!   `getmempoolentry` (-5 `Transaction not in mempool`) in the same batch.
//! - `getdsproof` answers JSON null when there is no proof, and -90 when the node runs with
//!   `-doublespendproof=0`.

use serde_json::json;

use super::answers::{block_hash, hex_result, parse_txid, DsProofReply, HeaderReply};
use super::rpc::{
    decode, expect_ok, unexpected, Reply, RpcError, RPC_INVALID_ADDRESS_OR_KEY,
    RPC_METHOD_DISABLED, RPC_MISC_ERROR,
};
use super::transport::MAX_BODY_BYTES;
use super::BchnClient;
use crate::chain::block::{MAX_BLOCK_SIZE, MAX_CONSENSUS_TX_SIZE};
use crate::chain::node::NodeError;
use crate::chain::watch::{Block, BlockHash, ChainTx, DsProof, Header};
use crate::chain::{txid_of, Tx, Txid};

/// Times [`BchnClient::tip`] asks again when the tip it was told of left the main chain before
/// its header was read (a reorg between the two calls).
const TIP_TRIES: usize = 3;

/// The answer to a batch of `getblockheader` and `getblock <hash> 0`: the block's hex (two
/// characters a byte), its header and the envelope around both.
const MAX_BLOCK_ANSWER: usize = 2 * MAX_BLOCK_SIZE + MAX_BODY_BYTES;

impl BchnClient {
    /// The main chain's tip (`getbestblockhash`, then `getblockheader` of it). Two round trips:
    /// the second call needs the first one's answer, so they cannot share a batch.
    pub async fn tip(&self) -> Result<Header, NodeError> {
        const METHOD: &str = "getbestblockhash";
        for _ in 0..TIP_TRIES {
            let reply = self.call(METHOD, json!([])).await?;
            let text: String = decode(METHOD, expect_ok(METHOD, reply)?)?;
            let best = block_hash(METHOD, &text)?;
            if let Some(header) = self.header(best).await? {
                return Ok(header);
            }
            // The tip was replaced by a reorg between the two calls: ask again.
        }
        Err(NodeError::Unavailable(format!(
            "the node's tip left its main chain {TIP_TRIES} times while it was being read; \
             retry once the chain settles"
        )))
    }

    /// The header of a block on the main chain (`getblockheader <hash> true`); `None` when the
    /// node does not know the block or it is not on the main chain.
    pub async fn header(&self, hash: BlockHash) -> Result<Option<Header>, NodeError> {
        const METHOD: &str = "getblockheader";
        let reply = self.call(METHOD, json!([hash.to_hex(), true])).await?;
        header_of(hash, reply)
    }

    /// A block on the main chain with every transaction in it: `getblockheader` (for the
    /// height, and whether it is on the main chain) and `getblock <hash> 0` in one batch, the
    /// raw block decoded and checked against the hash asked for. `None` when the node does not
    /// know the block or it is not on the main chain.
    pub async fn block(&self, hash: BlockHash) -> Result<Option<Block>, NodeError> {
        const METHOD: &str = "getblock";
        let calls = vec![
            ("getblockheader", json!([hash.to_hex(), true])),
            (METHOD, json!([hash.to_hex(), 0])),
        ];
        let [header, raw] = pair(self.batch_within(calls, MAX_BLOCK_ANSWER).await?)?;
        let Some(header) = header_of(hash, header)? else {
            return Ok(None);
        };
        let result = match raw {
            Ok(result) => result,
            Err(e) if e.code == RPC_INVALID_ADDRESS_OR_KEY => return Ok(None),
            Err(e) => return Err(block_error(hash, e)),
        };
        let bytes = hex_result(METHOD, result.as_deref())?;
        let block = Block::decode(&bytes, header.height)
            .map_err(|e| NodeError::Protocol(format!("{METHOD} {hash}: {e}")))?;
        if block.header != header {
            return Err(NodeError::Protocol(format!(
                "{METHOD} {hash}: the block's bytes are of {} after {:?}, not of the block asked \
                 for",
                block.header.hash, block.header.prev
            )));
        }
        Ok(Some(block))
    }

    /// The txids in the mempool (`getrawmempool false`), in the node's order.
    pub async fn mempool(&self) -> Result<Vec<Txid>, NodeError> {
        const METHOD: &str = "getrawmempool";
        let reply = self.call(METHOD, json!([false])).await?;
        let texts: Vec<String> = decode(METHOD, expect_ok(METHOD, reply)?)?;
        texts.iter().map(|t| parse_txid(METHOD, t)).collect()
    }

    /// A transaction in the mempool; `None` when it is not there (never yet, or no longer:
    /// confirmed, replaced or evicted). `getmempoolentry` says whether it is in the mempool
    /// and `getrawtransaction <txid> false` gives its bytes, in one batch.
    pub async fn mempool_tx(&self, txid: Txid) -> Result<Option<ChainTx>, NodeError> {
        const METHOD: &str = "getrawtransaction";
        let calls = vec![
            ("getmempoolentry", json!([txid.to_hex()])),
            (METHOD, json!([txid.to_hex(), false])),
        ];
        let [entry, raw] = pair(self.batch(calls).await?)?;
        match entry {
            Ok(_) => {}
            Err(e) if e.code == RPC_INVALID_ADDRESS_OR_KEY => return Ok(None),
            Err(e) => return Err(unexpected("getmempoolentry", e)),
        }
        let result = match raw {
            Ok(result) => result,
            // It left the mempool between the two calls.
            Err(e) if e.code == RPC_INVALID_ADDRESS_OR_KEY => return Ok(None),
            Err(e) => return Err(unexpected(METHOD, e)),
        };
        let bytes = hex_result(METHOD, result.as_deref())?;
        if bytes.len() > MAX_CONSENSUS_TX_SIZE {
            return Err(NodeError::Protocol(format!(
                "{METHOD} {txid}: {} bytes is more than a transaction may be",
                bytes.len()
            )));
        }
        if txid_of(&bytes) != txid {
            return Err(NodeError::Protocol(format!(
                "{METHOD} {txid}: the bytes are of {}, not of the transaction asked for",
                txid_of(&bytes)
            )));
        }
        let tx =
            Tx::decode(&bytes).map_err(|e| NodeError::Protocol(format!("{METHOD} {txid}: {e}")))?;
        Ok(Some(ChainTx { txid, tx }))
    }

    /// The double-spend proof for each mempool transaction or one of its unconfirmed
    /// ancestors (`getdsproof <txid> 2 true`: the recursive search, since a double-spent
    /// parent takes its children with it), in the order asked; `None` where the node has none.
    /// One batch request per [`MAX_BATCH`](super::MAX_BATCH) transactions, so a pass over
    /// many unmined payments costs the node one round trip, not one per payment.
    pub async fn double_spend_proofs(
        &self,
        txids: &[Txid],
    ) -> Result<Vec<Option<DsProof>>, NodeError> {
        const METHOD: &str = "getdsproof";
        let mut proofs = Vec::with_capacity(txids.len());
        for chunk in txids.chunks(super::MAX_BATCH) {
            let calls = chunk
                .iter()
                .map(|txid| (METHOD, json!([txid.to_hex(), 2, true])))
                .collect();
            let replies = self.batch(calls).await?;
            if replies.len() != chunk.len() {
                return Err(NodeError::Protocol(format!(
                    "{METHOD}: {} replies to {} calls",
                    replies.len(),
                    chunk.len()
                )));
            }
            for (&txid, reply) in chunk.iter().zip(replies) {
                proofs.push(match reply {
                    Ok(result) => {
                        let reply: Option<DsProofReply> = decode(METHOD, result)?;
                        reply.map(|r| r.into_proof(txid)).transpose()?
                    }
                    Err(e) if e.code == RPC_METHOD_DISABLED => {
                        return Err(NodeError::Protocol(format!(
                            "the node does not make double-spend proofs ({}): restart it \
                             without -doublespendproof=0 so Cashier can see double spends",
                            e.message
                        )))
                    }
                    Err(e) => return Err(unexpected(METHOD, e)),
                });
            }
        }
        Ok(proofs)
    }
}

/// `getblockheader`'s reply in our terms: -5 (unknown) and a block off the main chain are
/// both `None`.
fn header_of(hash: BlockHash, reply: Reply) -> Result<Option<Header>, NodeError> {
    const METHOD: &str = "getblockheader";
    match reply {
        Ok(result) => decode::<HeaderReply>(METHOD, result)?.into_header(hash),
        Err(e) if e.code == RPC_INVALID_ADDRESS_OR_KEY => Ok(None),
        Err(e) => Err(unexpected(METHOD, e)),
    }
}

/// The two replies of a two-call batch.
fn pair(replies: Vec<Reply>) -> Result<[Reply; 2], NodeError> {
    <[Reply; 2]>::try_from(replies)
        .map_err(|r| NodeError::Protocol(format!("{} replies to a batch of two calls", r.len())))
}

/// `getblock`'s -1 errors, told apart by their text: a block not yet downloaded will come
/// (retry), a pruned one never will.
fn block_error(hash: BlockHash, e: RpcError) -> NodeError {
    if e.code == RPC_MISC_ERROR && e.message.contains("pruned") {
        NodeError::Protocol(format!(
            "the node has pruned block {hash} ({}); Cashier reads every block since the last \
             one it saw: run the node with a larger -prune or without it",
            e.message
        ))
    } else if e.code == RPC_MISC_ERROR && e.message.contains("not found on disk") {
        NodeError::Unavailable(format!(
            "the node has the header of block {hash} but not the block yet ({}); retry once it \
             has downloaded it",
            e.message
        ))
    } else {
        unexpected("getblock", e)
    }
}
