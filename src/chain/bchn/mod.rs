//! A client for Bitcoin Cash Node's JSON-RPC over HTTP that answers in the terms of
//! [`super::node`]: coins, the acceptance check, broadcast and a transaction's status.
//!
//! What it relies on, from BCHN's source and `reference/anchors.md` §2.1:
//! - JSON-RPC errors come back as HTTP 500 (404 for an unknown method) with a JSON body
//!   `{"result": null, "error": {"code", "message"}, "id"}`, so the body is read whatever the
//!   status; only a body that is not JSON-RPC is judged by the status.
//! - A full RPC work queue is HTTP 500 with the plain text `Work queue depth exceeded`, sent
//!   before the call runs; a bad user or password is HTTP 401 with an empty body.
//! - Amounts are JSON numbers printed as `%d.%08d` BCH; they are read from their text, never
//!   through `f64`, which cannot hold every satoshi amount.
//!
//! Failures are sorted by what the caller may assume: [`NodeError::Unavailable`] when the node
//! did nothing (retry later), [`NodeError::Timeout`] when the request left and no answer came
//! back (it may have taken effect), [`NodeError::Protocol`] for answers BCHN does not give.
//!
//! The parts: `transport.rs` is HTTP (the connection pool, the URL and its credentials,
//! timeouts, the bound on calls in flight, reading an answer, sorting HTTP failures);
//! `rpc.rs` is JSON-RPC on top of it (request ids, batches, the error object and what an
//! unexpected one means); `answers.rs` turns BCHN's answers into our types. This file holds
//! the client and the calls paying makes, one public method per question; `watch.rs` the
//! calls watching the chain makes; `zmq.rs` the subscriber to the hints BCHN pushes.

mod answers;
mod rpc;
mod transport;
mod watch;
mod zmq;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::node::{network_of_chain, Acceptance, Broadcast, Coin, NodeError, Rejection, TxStatus};
use super::{txid_of, Network, OutPoint, Txid, MAX_INPUTS};
use crate::outbound::Outbound;
use answers::{node_reason, reject_kind, rejection, EntryReply, MempoolEntry, TxOutReply};
use rpc::{decode, expect_ok, unexpected, RPC_INVALID_ADDRESS_OR_KEY, RPC_VERIFY_ALREADY_IN_CHAIN};
use transport::Transport;

pub use answers::sats_from_bch_text;
pub use zmq::ZmqHints;

/// BCHN's `rpcworkqueue` default: more calls in flight than this and it answers "Work queue
/// depth exceeded" instead of queueing them.
pub const DEFAULT_MAX_CONCURRENT: usize = 16;

/// Outpoints asked about in one batch request: every input of the largest payment
/// ([`MAX_INPUTS`]), so a payment's coins are one request, one round trip and one slot of the
/// node's work queue, whatever its size. The bound stays for longer lists (no payment has
/// one), so no request grows past about 300 kB asked and 1 MB answered (BCHN takes bodies of
/// up to 32 MB).
const MAX_BATCH: usize = MAX_INPUTS;

/// A BCHN node reached over JSON-RPC. Cheap to clone: clones share the connection pool and
/// the bound on concurrent calls.
#[derive(Clone)]
pub struct BchnClient {
    inner: Arc<Inner>,
}

// Its `Debug` is written by hand in `transport.rs`, beside the password it keeps out of logs.

struct Inner {
    transport: Transport,
    /// The next JSON-RPC request id; a batch takes a run of them.
    next_id: AtomicU64,
}

impl BchnClient {
    /// A client for the node at `url` (`http://USER:PASSWORD@HOST:PORT`, or https:// through
    /// a TLS-terminating proxy, trusted as `outbound` says). At most `max_concurrent` calls
    /// are in flight at once (see [`DEFAULT_MAX_CONCURRENT`]); each call, from connecting to
    /// the last byte of the answer, gets `timeout`. Waiting for a free slot is not part of it:
    /// nothing has been sent yet.
    pub fn new(
        url: &str,
        max_concurrent: usize,
        timeout: Duration,
        outbound: &Outbound,
    ) -> Result<BchnClient, NodeError> {
        Ok(BchnClient {
            inner: Arc::new(Inner {
                transport: Transport::new(url, max_concurrent, timeout, outbound)?,
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// The node's RPC URL without the user and password, for logs and messages.
    pub fn endpoint(&self) -> &str {
        self.inner.transport.endpoint()
    }

    /// The network the node serves (`getblockchaininfo`'s `chain`).
    pub async fn network(&self) -> Result<Network, NodeError> {
        #[derive(Deserialize)]
        struct ChainInfo {
            chain: String,
        }
        const METHOD: &str = "getblockchaininfo";
        let reply = self.call(METHOD, json!([])).await?;
        let info: ChainInfo = decode(METHOD, expect_ok(METHOD, reply)?)?;
        network_of_chain(&info.chain).ok_or_else(|| {
            NodeError::Protocol(format!(
                "the node serves the chain {:?}, which Cashier does not know",
                info.chain
            ))
        })
    }

    /// The unspent coin behind each outpoint, mempool included (`gettxout <txid> <n> true`),
    /// in the order asked; `None` when it is unknown or spent.
    pub async fn coins(&self, outpoints: &[OutPoint]) -> Result<Vec<Option<Coin>>, NodeError> {
        const METHOD: &str = "gettxout";
        let mut coins = Vec::with_capacity(outpoints.len());
        // One batch request per chunk rather than one request per outpoint; a payment's
        // outpoints fit in one chunk.
        for chunk in outpoints.chunks(MAX_BATCH) {
            // BCHN reads `n` as a signed 32-bit int and errors above that; no transaction
            // has 2^31 outputs, so such a coin cannot exist and the node need not be asked.
            let asked: Vec<&OutPoint> = chunk
                .iter()
                .filter(|op| i32::try_from(op.vout).is_ok())
                .collect();
            let calls = asked
                .iter()
                .map(|op| (METHOD, json!([op.txid.to_hex(), op.vout, true])))
                .collect::<Vec<_>>();
            let mut replies = if calls.is_empty() {
                Vec::new()
            } else {
                self.batch(calls).await?
            }
            .into_iter();
            for op in chunk {
                if i32::try_from(op.vout).is_err() {
                    coins.push(None);
                    continue;
                }
                let reply = replies.next().ok_or_else(|| {
                    NodeError::Protocol(format!("{METHOD}: fewer replies than calls"))
                })?;
                let txout: Option<TxOutReply> = decode(METHOD, expect_ok(METHOD, reply)?)?;
                coins.push(txout.map(|t| t.into_coin(op)).transpose()?);
            }
        }
        Ok(coins)
    }

    /// Would the node accept this transaction into its mempool (`testmempoolaccept`)?
    pub async fn test_accept(&self, raw: &[u8]) -> Result<Acceptance, NodeError> {
        #[derive(Deserialize)]
        struct Verdict {
            allowed: bool,
            #[serde(rename = "reject-reason", default)]
            reject_reason: Option<String>,
        }
        const METHOD: &str = "testmempoolaccept";
        let verdicts: Vec<Verdict> = match self.call(METHOD, json!([[hex::encode(raw)]])).await? {
            Ok(result) => decode(METHOD, result)?,
            Err(e) => {
                return match rejection(&e) {
                    Some(r) => Ok(Acceptance::Rejected(r)),
                    None => Err(unexpected(METHOD, e)),
                }
            }
        };
        let [verdict] = <[Verdict; 1]>::try_from(verdicts).map_err(|v| {
            NodeError::Protocol(format!("{METHOD}: {} results for one transaction", v.len()))
        })?;
        if verdict.allowed {
            return Ok(Acceptance::Allowed);
        }
        let text = verdict.reject_reason.ok_or_else(|| {
            NodeError::Protocol(format!("{METHOD}: refused without a reject-reason"))
        })?;
        let reason = node_reason(&text);
        if reason.starts_with("txn-already-in-mempool") {
            // When it was first seen tells a replay from a payment that reached the node over
            // P2P first; a failure here only loses that hint, so it is not an error.
            let first_seen_ms = self.mempool_first_seen(txid_of(raw)).await.unwrap_or(None);
            return Ok(Acceptance::AlreadyKnown { first_seen_ms });
        }
        if reason.starts_with("txn-already-known") {
            // Its outputs are in the UTXO set: confirmed, so the mempool has no entry to ask.
            return Ok(Acceptance::AlreadyKnown {
                first_seen_ms: None,
            });
        }
        Ok(Acceptance::Rejected(Rejection {
            kind: reject_kind(reason),
            reason: reason.to_string(),
        }))
    }

    /// Hands the transaction to the node (`sendrawtransaction`).
    pub async fn broadcast(&self, raw: &[u8]) -> Result<Broadcast, NodeError> {
        const METHOD: &str = "sendrawtransaction";
        match self.call(METHOD, json!([hex::encode(raw)])).await? {
            // BCHN answers the txid for a new transaction and for one already in its mempool.
            Ok(result) => {
                let txid: String = decode(METHOD, result)?;
                Txid::from_hex(&txid).ok_or_else(|| {
                    NodeError::Protocol(format!("{METHOD}: {txid:?} is not a txid"))
                })?;
                Ok(Broadcast::Accepted)
            }
            Err(e) if e.code == RPC_VERIFY_ALREADY_IN_CHAIN => Ok(Broadcast::AlreadyConfirmed),
            Err(e) => match rejection(&e) {
                Some(r) => Ok(Broadcast::Rejected(r)),
                None => Err(unexpected(METHOD, e)),
            },
        }
    }

    /// What the node knows of a transaction (`getrawtransaction <txid> true`, and for one in
    /// the mempool `getmempoolentry`, which alone says when it arrived and what it pays).
    /// Without `-txindex`, BCHN finds confirmed transactions only while they have unspent
    /// outputs; the others read as [`TxStatus::Unknown`].
    pub async fn tx_status(&self, txid: Txid) -> Result<TxStatus, NodeError> {
        #[derive(Deserialize)]
        struct TxInfo {
            #[serde(default)]
            confirmations: Option<i64>,
        }
        const METHOD: &str = "getrawtransaction";
        let info: TxInfo = match self.call(METHOD, json!([txid.to_hex(), true])).await? {
            Ok(result) => decode(METHOD, result)?,
            Err(e) if e.code == RPC_INVALID_ADDRESS_OR_KEY => return Ok(TxStatus::Unknown),
            Err(e) => return Err(unexpected(METHOD, e)),
        };
        match info.confirmations {
            Some(n) if n > 0 => Ok(TxStatus::Confirmed {
                confirmations: u32::try_from(n).map_err(|_| {
                    NodeError::Protocol(format!("{METHOD}: {n} confirmations is out of range"))
                })?,
            }),
            _ => {
                // The entry is a hint (when it arrived, what it pays): without it the caller
                // judges more strictly, so failing to read it is not an error.
                let entry = self.mempool_entry(txid).await.unwrap_or(None);
                Ok(TxStatus::Mempool {
                    first_seen_ms: entry.as_ref().map(|e| e.first_seen_ms),
                    fee_sats: entry.as_ref().and_then(|e| e.fee_sats),
                    size: entry.as_ref().and_then(|e| e.size),
                })
            }
        }
    }

    /// `getmempoolentry` for `txid`; `None` when it is not in the mempool.
    async fn mempool_entry(&self, txid: Txid) -> Result<Option<MempoolEntry>, NodeError> {
        const METHOD: &str = "getmempoolentry";
        match self.call(METHOD, json!([txid.to_hex()])).await? {
            Ok(result) => {
                let reply: EntryReply = decode(METHOD, result)?;
                reply.into_entry().map(Some)
            }
            Err(e) if e.code == RPC_INVALID_ADDRESS_OR_KEY => Ok(None),
            Err(e) => Err(unexpected(METHOD, e)),
        }
    }

    /// When the node's mempool first saw `txid`, in ms; `None` when it is not in the mempool.
    async fn mempool_first_seen(&self, txid: Txid) -> Result<Option<i64>, NodeError> {
        Ok(self.mempool_entry(txid).await?.map(|e| e.first_seen_ms))
    }
}
