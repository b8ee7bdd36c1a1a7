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

use super::node::{
    network_of_chain, Acceptance, Broadcast, Coin, CoinsAndAcceptance, NodeError, Rejection,
    TxStatus,
};
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
        let mut coins = Vec::with_capacity(outpoints.len());
        // One batch request per chunk rather than one request per outpoint; a payment's
        // outpoints fit in one chunk.
        for chunk in outpoints.chunks(MAX_BATCH) {
            let calls = coin_calls(chunk);
            let replies = if calls.is_empty() {
                Vec::new()
            } else {
                self.batch(calls).await?
            };
            read_coins(chunk, replies.into_iter(), &mut coins)?;
        }
        Ok(coins)
    }

    /// Would the node accept this transaction into its mempool (`testmempoolaccept`)?
    pub async fn test_accept(&self, raw: &[u8]) -> Result<Acceptance, NodeError> {
        let reply = self.call(TEST_ACCEPT, test_accept_params(raw)).await?;
        self.acceptance(raw, verdict(reply)?).await
    }

    /// [`BchnClient::coins`] and [`BchnClient::test_accept`] in one batch request:
    /// `[gettxout…, testmempoolaccept]`. BCHN runs a batch's calls in turn and both are
    /// read-only, so the answer is the one the two requests would have had, a round trip
    /// sooner. Outpoint lists longer than a batch (no payment has one) are split as
    /// [`BchnClient::coins`] splits them, the acceptance check riding with the last chunk.
    /// The replies are placed by id, whatever order they come in; a `testmempoolaccept` that
    /// errors inside the batch is read as it is alone (a refusal, or the node's failure), and
    /// is not read at all when a coin is missing.
    pub async fn coins_and_acceptance(
        &self,
        outpoints: &[OutPoint],
        raw: &[u8],
    ) -> Result<CoinsAndAcceptance, NodeError> {
        let mut coins = Vec::with_capacity(outpoints.len());
        let mut chunks = outpoints.chunks(MAX_BATCH).peekable();
        let mut tested = None;
        // A transaction has inputs; with none, the acceptance check goes alone.
        if chunks.peek().is_none() {
            tested = Some(verdict(
                self.call(TEST_ACCEPT, test_accept_params(raw)).await?,
            ));
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            let mut calls = coin_calls(chunk);
            if last {
                calls.push((TEST_ACCEPT, test_accept_params(raw)));
            }
            let mut replies = self.batch(calls).await?;
            if last {
                // The batch answers every call, the acceptance check last (placed by id).
                let reply = replies.pop().ok_or_else(|| {
                    NodeError::Protocol(format!("{TEST_ACCEPT}: no reply in the batch"))
                })?;
                tested = Some(verdict(reply));
            }
            read_coins(chunk, replies.into_iter(), &mut coins)?;
            if coins.iter().any(Option::is_none) {
                // The caller asks why; the rest of the lookup would be work for nobody.
                return Ok(CoinsAndAcceptance::Missing);
            }
        }
        let checked = tested.ok_or_else(|| {
            NodeError::Protocol(format!("{TEST_ACCEPT}: the batch was not asked"))
        })??;
        Ok(CoinsAndAcceptance::Found {
            coins: coins.into_iter().flatten().collect(),
            acceptance: self.acceptance(raw, checked).await?,
        })
    }

    /// An [`Acceptance`] from `testmempoolaccept`'s verdict: a transaction already in the
    /// mempool is asked when the node first saw it.
    async fn acceptance(&self, raw: &[u8], verdict: Verdict) -> Result<Acceptance, NodeError> {
        Ok(match verdict {
            Verdict::Allowed => Acceptance::Allowed,
            Verdict::InMempool => {
                // When it was first seen tells a replay from a payment that reached the node
                // over P2P first; a failure here only loses that hint, so it is not an error.
                let first_seen_ms = self.mempool_first_seen(txid_of(raw)).await.unwrap_or(None);
                Acceptance::AlreadyKnown { first_seen_ms }
            }
            // Its outputs are in the UTXO set: confirmed, so the mempool has no entry to ask.
            Verdict::Confirmed => Acceptance::AlreadyKnown {
                first_seen_ms: None,
            },
            Verdict::Rejected(r) => Acceptance::Rejected(r),
        })
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

const GETTXOUT: &str = "gettxout";
const TEST_ACCEPT: &str = "testmempoolaccept";

/// The `gettxout` calls for `chunk`. BCHN reads `n` as a signed 32-bit int and errors above
/// that; no transaction has 2^31 outputs, so such a coin cannot exist and is not asked for.
fn coin_calls(chunk: &[OutPoint]) -> Vec<(&'static str, serde_json::Value)> {
    chunk
        .iter()
        .filter(|op| i32::try_from(op.vout).is_ok())
        .map(|op| (GETTXOUT, json!([op.txid.to_hex(), op.vout, true])))
        .collect()
}

/// Reads the replies to [`coin_calls`] of `chunk` (in its order) onto `coins`.
fn read_coins(
    chunk: &[OutPoint],
    mut replies: impl Iterator<Item = rpc::Reply>,
    coins: &mut Vec<Option<Coin>>,
) -> Result<(), NodeError> {
    for op in chunk {
        if i32::try_from(op.vout).is_err() {
            coins.push(None);
            continue;
        }
        let reply = replies
            .next()
            .ok_or_else(|| NodeError::Protocol(format!("{GETTXOUT}: fewer replies than calls")))?;
        let txout: Option<TxOutReply> = decode(GETTXOUT, expect_ok(GETTXOUT, reply)?)?;
        coins.push(txout.map(|t| t.into_coin(op)).transpose()?);
    }
    Ok(())
}

fn test_accept_params(raw: &[u8]) -> serde_json::Value {
    json!([[hex::encode(raw)]])
}

/// What `testmempoolaccept` said, before a transaction already in the mempool is asked when it
/// arrived.
enum Verdict {
    Allowed,
    InMempool,
    Confirmed,
    Rejected(Rejection),
}

/// Reads one `testmempoolaccept` reply, alone or from a batch: a verdict, or an RPC error that
/// is a refusal (-22, -25, -26); any other error is the node's failure.
fn verdict(reply: rpc::Reply) -> Result<Verdict, NodeError> {
    #[derive(Deserialize)]
    struct Answer {
        allowed: bool,
        #[serde(rename = "reject-reason", default)]
        reject_reason: Option<String>,
    }
    let answers: Vec<Answer> = match reply {
        Ok(result) => decode(TEST_ACCEPT, result)?,
        Err(e) => {
            return match rejection(&e) {
                Some(r) => Ok(Verdict::Rejected(r)),
                None => Err(unexpected(TEST_ACCEPT, e)),
            }
        }
    };
    let [answer] = <[Answer; 1]>::try_from(answers).map_err(|v| {
        NodeError::Protocol(format!(
            "{TEST_ACCEPT}: {} results for one transaction",
            v.len()
        ))
    })?;
    if answer.allowed {
        return Ok(Verdict::Allowed);
    }
    let text = answer.reject_reason.ok_or_else(|| {
        NodeError::Protocol(format!("{TEST_ACCEPT}: refused without a reject-reason"))
    })?;
    let reason = node_reason(&text);
    if reason.starts_with("txn-already-in-mempool") {
        return Ok(Verdict::InMempool);
    }
    if reason.starts_with("txn-already-known") {
        return Ok(Verdict::Confirmed);
    }
    Ok(Verdict::Rejected(Rejection {
        kind: reject_kind(reason),
        reason: reason.to_string(),
    }))
}
