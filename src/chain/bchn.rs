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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::node::{
    network_of_chain, Acceptance, Broadcast, Coin, NodeError, RejectKind, Rejection, TxStatus,
};
use super::{
    txid_of, Network, Nft, NftCapability, OutPoint, Output, TokenData, Txid, MAX_MONEY_SATS,
};

/// BCHN's `rpcworkqueue` default: more calls in flight than this and it answers "Work queue
/// depth exceeded" instead of queueing them.
pub const DEFAULT_MAX_CONCURRENT: usize = 16;

/// Largest answer read from the node. A verbose `getrawtransaction` of a 100 kB transaction
/// is a few MB; anything far larger is not BCHN and must not fill memory.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Outpoints asked about in one batch request, so one huge transaction makes a few bounded
/// requests rather than one unbounded one.
const MAX_BATCH: usize = 500;

/// Idle keep-alive connections are dropped after this. BCHN closes idle RPC connections after
/// `-rpcservertimeout` (30 s by default); reusing one it is closing would turn a harmless call
/// into an ambiguous failure, so ours give up first.
const POOL_IDLE: Duration = Duration::from_secs(15);

/// Common BCHN RPC error codes (`src/rpc/protocol.h`).
const RPC_INVALID_ADDRESS_OR_KEY: i64 = -5;
const RPC_CLIENT_NOT_CONNECTED: i64 = -9;
const RPC_CLIENT_IN_INITIAL_DOWNLOAD: i64 = -10;
const RPC_DESERIALIZATION_ERROR: i64 = -22;
const RPC_VERIFY_ERROR: i64 = -25;
const RPC_VERIFY_REJECTED: i64 = -26;
const RPC_VERIFY_ALREADY_IN_CHAIN: i64 = -27;
const RPC_IN_WARMUP: i64 = -28;
const RPC_METHOD_NOT_FOUND: i64 = -32601;

/// A BCHN node reached over JSON-RPC. Cheap to clone: clones share the connection pool and
/// the bound on concurrent calls.
#[derive(Clone)]
pub struct BchnClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The RPC URL with the user and password taken out, so it can go into messages.
    url: Url,
    /// HTTP basic credentials from the URL, percent-decoded.
    user: Option<String>,
    password: Option<String>,
    /// Bounds calls in flight: BCHN refuses work beyond its queue rather than waiting.
    permits: Semaphore,
    max_concurrent: usize,
    timeout: Duration,
    next_id: AtomicU64,
}

impl std::fmt::Debug for BchnClient {
    // By hand, so the password can never reach a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BchnClient")
            .field("url", &self.inner.url.as_str())
            .field("max_concurrent", &self.inner.max_concurrent)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

/// An error object of a JSON-RPC reply.
#[derive(Debug, Clone, Deserialize)]
struct RpcError {
    code: i64,
    message: String,
}

/// One call's outcome as the node reported it: the raw `result` (`None` for JSON null), or
/// its error object.
type Reply = Result<Option<Box<RawValue>>, RpcError>;

/// A JSON-RPC 1.0 reply object as BCHN writes it.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<RpcError>,
    #[serde(default)]
    id: Value,
}

impl Envelope {
    fn into_reply(self) -> Reply {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.result),
        }
    }
}

/// A body that parsed as JSON-RPC: one reply or a batch of them.
enum Body {
    Single(Envelope),
    Batch(Vec<Envelope>),
}

impl BchnClient {
    /// A client for the node at `url` (`http://USER:PASSWORD@HOST:PORT`). At most
    /// `max_concurrent` calls are in flight at once (see [`DEFAULT_MAX_CONCURRENT`]); each
    /// call, from connecting to the last byte of the answer, gets `timeout`. Waiting for a
    /// free slot is not part of it: nothing has been sent yet.
    pub fn new(
        url: &str,
        max_concurrent: usize,
        timeout: Duration,
    ) -> Result<BchnClient, NodeError> {
        // Parse errors name the problem, never the input: the input holds the password.
        let mut url = Url::parse(url).map_err(|e| {
            NodeError::Protocol(format!(
                "invalid node URL ({e}): expected http://USER:PASSWORD@HOST:PORT in --node-url"
            ))
        })?;
        if url.scheme() != "http" {
            return Err(NodeError::Protocol(format!(
                "the node URL must start with http:// (BCHN's RPC server speaks plain HTTP), \
                 not {}://; reach a remote node through an SSH tunnel or a TLS-terminating proxy",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(NodeError::Protocol(
                "the node URL has no host: expected http://USER:PASSWORD@HOST:PORT in --node-url"
                    .into(),
            ));
        }
        if max_concurrent == 0 || max_concurrent > Semaphore::MAX_PERMITS {
            return Err(NodeError::Protocol(format!(
                "the node concurrency must be between 1 and {}, got {max_concurrent}",
                Semaphore::MAX_PERMITS
            )));
        }
        if timeout.is_zero() {
            return Err(NodeError::Protocol(
                "the node timeout must be above zero".into(),
            ));
        }

        let user = percent_decode(url.username(), "user")?;
        let password = url
            .password()
            .map(|p| percent_decode(p, "password"))
            .transpose()?;
        let user = (!user.is_empty() || password.is_some()).then_some(user);
        // Keep the credentials out of the URL, which reqwest puts into its errors and we put
        // into ours; they go in the Authorization header instead.
        if url.set_username("").is_err() || url.set_password(None).is_err() {
            return Err(NodeError::Protocol(
                "the node URL cannot carry a user and password: expected \
                 http://USER:PASSWORD@HOST:PORT in --node-url"
                    .into(),
            ));
        }

        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A connect timeout of its own marks a node that never accepted the connection as
            // a connect error: nothing was sent, so the call is safe to retry.
            .connect_timeout(timeout)
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(max_concurrent)
            // The node is a fixed, usually local address: an HTTP(S)_PROXY meant for the
            // internet must not see our RPC credentials.
            .no_proxy()
            .build()
            .map_err(|e| NodeError::Protocol(format!("cannot set up the HTTP client: {e}")))?;

        Ok(BchnClient {
            inner: Arc::new(Inner {
                http,
                url,
                user,
                password,
                permits: Semaphore::new(max_concurrent),
                max_concurrent,
                timeout,
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// The node's RPC URL without the user and password, for logs and messages.
    pub fn endpoint(&self) -> &str {
        self.inner.url.as_str()
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
        // One batch request per chunk rather than one request per outpoint: one round trip
        // and one slot of the node's work queue, however many inputs a payment has.
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

    /// One JSON-RPC call.
    async fn call(&self, method: &'static str, params: Value) -> Result<Reply, NodeError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let body = request_body(id, method, params);
        match self.post(method, body).await? {
            Body::Single(envelope) => {
                // An error object may carry a null id (BCHN could not read ours); a result
                // must answer our id, or it is some other call's.
                if envelope.error.is_none() && envelope.id != json!(id) {
                    return Err(NodeError::Protocol(format!(
                        "{method}: the reply is for id {}, not {id}",
                        envelope.id
                    )));
                }
                Ok(envelope.into_reply())
            }
            Body::Batch(_) => Err(NodeError::Protocol(format!(
                "{method}: a batch reply to a single call"
            ))),
        }
    }

    /// Several calls in one HTTP request; the replies in the order of `calls`.
    async fn batch(&self, calls: Vec<(&'static str, Value)>) -> Result<Vec<Reply>, NodeError> {
        let method = calls.first().map_or("batch", |(m, _)| *m);
        let count = calls.len() as u64;
        let first = self.inner.next_id.fetch_add(count, Ordering::Relaxed);
        let requests: Vec<Value> = calls
            .into_iter()
            .zip(first..)
            .map(|((m, params), id)| json!({"jsonrpc": "1.0", "id": id, "method": m, "params": params}))
            .collect();
        let body = serde_json::to_vec(&requests).map_err(|e| {
            NodeError::Protocol(format!("{method}: cannot encode the request: {e}"))
        })?;
        let envelopes = match self.post(method, body).await? {
            Body::Batch(envelopes) => envelopes,
            // BCHN answers a batch it cannot run at all with one error object.
            Body::Single(envelope) => {
                return Err(match envelope.into_reply() {
                    Err(e) => unexpected(method, e),
                    Ok(_) => NodeError::Protocol(format!("{method}: a single reply to a batch")),
                })
            }
        };
        // JSON-RPC does not promise batch replies in order: place each by its id.
        let mut replies: Vec<Option<Reply>> = (0..count).map(|_| None).collect();
        for envelope in envelopes {
            let slot = envelope
                .id
                .as_u64()
                .and_then(|id| id.checked_sub(first))
                .and_then(|i| replies.get_mut(usize::try_from(i).ok()?));
            match slot {
                Some(slot @ None) => *slot = Some(envelope.into_reply()),
                _ => {
                    return Err(NodeError::Protocol(format!(
                        "{method}: a batch reply with an unknown or repeated id {}",
                        envelope.id
                    )))
                }
            }
        }
        replies
            .into_iter()
            .map(|r| {
                r.ok_or_else(|| NodeError::Protocol(format!("{method}: a batch reply is missing")))
            })
            .collect()
    }

    /// Sends one request body and reads the answer, within the concurrency bound.
    async fn post(&self, method: &str, body: Vec<u8>) -> Result<Body, NodeError> {
        let inner = &*self.inner;
        // Held until the whole answer is read: the node's worker is busy until then.
        let _permit = inner
            .permits
            .acquire()
            .await
            .map_err(|_| NodeError::Unavailable("the node client has been shut down".into()))?;
        let mut request = inner
            .http
            .post(inner.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(user) = &inner.user {
            request = request.basic_auth(user, inner.password.as_deref());
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| self.transport_error(method, e))?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(method, e))?
        {
            if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(NodeError::Protocol(format!(
                    "{method}: the answer from {} is larger than {MAX_BODY_BYTES} bytes",
                    self.endpoint()
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        self.read_body(method, status, &bytes)
    }

    /// Judges an HTTP answer: JSON-RPC whatever the status, else by the status.
    fn read_body(&self, method: &str, status: StatusCode, bytes: &[u8]) -> Result<Body, NodeError> {
        let endpoint = self.endpoint();
        if status == StatusCode::UNAUTHORIZED {
            return Err(NodeError::Unavailable(if self.inner.user.is_some() {
                format!(
                    "authentication failed at {endpoint} (HTTP 401): check the user and password \
                     in --node-url against the node's rpcuser/rpcpassword or -rpcauth"
                )
            } else {
                format!(
                    "the node at {endpoint} asks for a user and password (HTTP 401): put them in \
                     --node-url as http://USER:PASSWORD@HOST:PORT"
                )
            }));
        }
        if status == StatusCode::FORBIDDEN {
            return Err(NodeError::Unavailable(format!(
                "the node at {endpoint} refused {method} (HTTP 403): allow this host with \
                 -rpcallowip, and the method for this user in -rpcwhitelist"
            )));
        }
        let json = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => serde_json::from_slice::<Envelope>(bytes)
                .map(Body::Single)
                .ok(),
            Some(b'[') => serde_json::from_slice::<Vec<Envelope>>(bytes)
                .map(Body::Batch)
                .ok(),
            _ => None,
        };
        if let Some(body) = json {
            return Ok(body);
        }
        let text = snippet(bytes);
        if status.is_server_error() {
            // BCHN sends these before running the call, so nothing happened.
            return Err(NodeError::Unavailable(
                if text.contains("Work queue depth exceeded") {
                    format!(
                    "the node at {endpoint} is busy: its RPC work queue is full (HTTP {status}); \
                     retry shortly, or raise the node's -rpcworkqueue or lower Cashier's node \
                     concurrency"
                )
                } else {
                    format!("the node at {endpoint} answered {method} with HTTP {status}: {text}")
                },
            ));
        }
        Err(NodeError::Protocol(format!(
            "{endpoint} answered {method} with HTTP {status} and no JSON-RPC reply ({text}): \
             check that --node-url points at BCHN's RPC port"
        )))
    }

    /// Sorts a transport failure by whether the request can have reached the node.
    fn transport_error(&self, method: &str, e: reqwest::Error) -> NodeError {
        let endpoint = self.endpoint();
        // Our URL holds no credentials, but keep reqwest's copy out all the same.
        let e = e.without_url();
        let cause = root_cause(&e);
        if e.is_connect() {
            NodeError::Unavailable(format!(
                "cannot connect to the node at {endpoint} ({cause}): check that bitcoind is \
                 running with -server=1 and that --node-url names its -rpcbind address and \
                 -rpcport"
            ))
        } else if e.is_timeout() {
            NodeError::Timeout(format!(
                "no answer to {method} from {endpoint} within {:?}; it may still have taken \
                 effect",
                self.inner.timeout
            ))
        } else if e.is_builder() {
            NodeError::Protocol(format!("cannot build the {method} request: {cause}"))
        } else {
            // Connected and sent, then the connection broke: the node may have run the call.
            NodeError::Timeout(format!(
                "the connection to {endpoint} broke during {method} ({cause}); it may still \
                 have taken effect"
            ))
        }
    }
}

/// `getmempoolentry`'s answer, the parts read. BCHN (v28) writes `size`, `time` (whole
/// seconds) and `fees: {base, modified}` in BCH; nodes before the `fees` object wrote `fee`.
#[derive(Deserialize)]
struct EntryReply {
    time: i64,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    fees: Option<FeesReply>,
    /// Kept as text: see [`sats_from_bch_text`].
    #[serde(default)]
    fee: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct FeesReply {
    base: Box<RawValue>,
}

/// A mempool entry in our terms.
struct MempoolEntry {
    first_seen_ms: i64,
    fee_sats: Option<u64>,
    size: Option<u64>,
}

impl EntryReply {
    fn into_entry(self) -> Result<MempoolEntry, NodeError> {
        let first_seen_ms = self.time.checked_mul(1000).ok_or_else(|| {
            NodeError::Protocol(format!(
                "getmempoolentry: time {} is out of range",
                self.time
            ))
        })?;
        let fee_text = self.fees.map(|f| f.base).or(self.fee);
        let fee_sats = fee_text
            .map(|text| {
                sats_from_bch_text(text.get()).ok_or_else(|| {
                    NodeError::Protocol(format!(
                        "getmempoolentry: fee {} is not a satoshi amount",
                        text.get()
                    ))
                })
            })
            .transpose()?;
        Ok(MempoolEntry {
            first_seen_ms,
            fee_sats,
            size: self.size,
        })
    }
}

/// `gettxout`'s answer for an unspent coin.
#[derive(Deserialize)]
struct TxOutReply {
    confirmations: u32,
    /// Kept as text: see [`sats_from_bch_text`].
    value: Box<RawValue>,
    #[serde(rename = "scriptPubKey")]
    script_pub_key: ScriptReply,
    #[serde(rename = "tokenData", default)]
    token_data: Option<TokenReply>,
}

#[derive(Deserialize)]
struct ScriptReply {
    /// The locking bytecode after the token prefix: BCHN reports tokens in `tokenData`.
    hex: String,
}

#[derive(Deserialize)]
struct TokenReply {
    category: String,
    /// A decimal string: the amount can exceed what a JSON number holds exactly.
    amount: String,
    #[serde(default)]
    nft: Option<NftReply>,
}

#[derive(Deserialize)]
struct NftReply {
    capability: String,
    commitment: String,
}

impl TxOutReply {
    fn into_coin(self, op: &OutPoint) -> Result<Coin, NodeError> {
        let bad =
            |what: String| NodeError::Protocol(format!("gettxout {}:{}: {what}", op.txid, op.vout));
        let value = sats_from_bch_text(self.value.get()).ok_or_else(|| {
            bad(format!(
                "value {} is not a satoshi amount",
                self.value.get()
            ))
        })?;
        let locking_bytecode = hex::decode(&self.script_pub_key.hex)
            .map_err(|e| bad(format!("scriptPubKey.hex is not hex ({e})")))?;
        let token = self
            .token_data
            .map(|t| t.into_token_data().map_err(bad))
            .transpose()?;
        Ok(Coin {
            output: Output {
                value,
                token,
                locking_bytecode,
            },
            confirmations: self.confirmations,
        })
    }
}

impl TokenReply {
    fn into_token_data(self) -> Result<TokenData, String> {
        let mut category = [0u8; 32];
        hex::decode_to_slice(&self.category, &mut category)
            .map_err(|_| format!("token category {:?} is not 32 bytes of hex", self.category))?;
        let amount = parse_decimal_u64(&self.amount)
            .ok_or_else(|| format!("token amount {:?} is not a whole number", self.amount))?;
        let nft = self
            .nft
            .map(|n| {
                let capability = NftCapability::parse(&n.capability)
                    .ok_or_else(|| format!("unknown NFT capability {:?}", n.capability))?;
                let commitment = hex::decode(&n.commitment)
                    .map_err(|_| format!("NFT commitment {:?} is not hex", n.commitment))?;
                Ok::<_, String>(Nft {
                    capability,
                    commitment,
                })
            })
            .transpose()?;
        TokenData::new(category, amount, nft).map_err(|e| format!("token data: {e}"))
    }
}

/// Satoshis from the decimal text of a BCH amount as BCHN prints it (`0.00012345`),
/// exactly. Exponents (`1e-8`) are read too, though BCHN prints none. `None` for text that
/// is not a number, is negative, is not a whole number of satoshis or exceeds 21 million BCH.
pub fn sats_from_bch_text(text: &str) -> Option<u64> {
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((_, "")) => return None,
        Some((int, frac)) => (int, frac),
        None => (mantissa, ""),
    };
    if int.is_empty() || !is_digits(int) || !(frac.is_empty() || is_digits(frac)) {
        return None;
    }
    // The number is `digits × 10^-frac.len() × 10^exponent` BCH, and 1 BCH is 10^8 sats.
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    let shift = 8 + i64::from(exponent) - frac.len() as i64;
    let (digits, shift) = if shift < 0 {
        // Below one satoshi: only zeros may be cut off.
        let cut = usize::try_from(-shift).ok()?;
        let keep = digits.len().checked_sub(cut)?;
        let (kept, dropped) = digits.split_at(keep);
        if kept.is_empty() || dropped.bytes().any(|b| b != b'0') {
            return None;
        }
        (kept, 0)
    } else {
        (digits, shift)
    };
    // MAX_MONEY_SATS has 16 digits; more cannot be an amount (and could overflow).
    if digits.len() as i64 + shift > 16 {
        return None;
    }
    let sats = digits
        .parse::<u64>()
        .ok()?
        .checked_mul(10u64.checked_pow(u32::try_from(shift).ok()?)?)?;
    (sats <= MAX_MONEY_SATS).then_some(sats)
}

fn is_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// A whole number written in decimal digits only (`str::parse` would also take a `+`).
fn parse_decimal_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !is_digits(s) {
        return None;
    }
    s.parse().ok()
}

fn request_body(id: u64, method: &str, params: Value) -> Vec<u8> {
    // `jsonrpc: "1.0"` is what bitcoin-cli speaks, and BCHN answers every 1.0 error with a
    // JSON body.
    json!({"jsonrpc": "1.0", "id": id, "method": method, "params": params})
        .to_string()
        .into_bytes()
}

/// The result of a call that must not fail; other outcomes become a [`NodeError`].
fn expect_ok(method: &str, reply: Reply) -> Result<Option<Box<RawValue>>, NodeError> {
    reply.map_err(|e| unexpected(method, e))
}

/// Decodes a result (`None` is JSON null).
fn decode<T: DeserializeOwned>(
    method: &str,
    result: Option<Box<RawValue>>,
) -> Result<T, NodeError> {
    let text = result.as_deref().map_or("null", RawValue::get);
    serde_json::from_str(text).map_err(|e| {
        NodeError::Protocol(format!(
            "{method}: unexpected result ({e}): {}",
            snippet(text.as_bytes())
        ))
    })
}

/// An RPC error the call has no meaning for.
fn unexpected(method: &str, e: RpcError) -> NodeError {
    let message = snippet(e.message.as_bytes());
    match e.code {
        RPC_IN_WARMUP => NodeError::Unavailable(format!(
            "the node is starting up ({message}); retry once it has loaded"
        )),
        RPC_CLIENT_NOT_CONNECTED | RPC_CLIENT_IN_INITIAL_DOWNLOAD => NodeError::Unavailable(
            format!("the node cannot serve {method} yet ({message}); retry once it has synced"),
        ),
        RPC_METHOD_NOT_FOUND => NodeError::Protocol(format!(
            "the node does not know the method {method}: check that --node-url points at \
             Bitcoin Cash Node"
        )),
        code => NodeError::Protocol(format!("{method} failed with RPC error {code}: {message}")),
    }
}

/// The refusal an RPC error stands for, when it is one: -22 (the bytes are not a
/// transaction), -26 (rejected by mempool policy or consensus) and -25 (BCHN's "Missing
/// inputs", or another failure to accept, sorted by its text).
fn rejection(e: &RpcError) -> Option<Rejection> {
    match e.code {
        RPC_DESERIALIZATION_ERROR => Some(Rejection {
            kind: RejectKind::Invalid,
            reason: e.message.clone(),
        }),
        RPC_VERIFY_ERROR | RPC_VERIFY_REJECTED => {
            let reason = node_reason(&e.message);
            Some(Rejection {
                kind: reject_kind(reason),
                reason: reason.to_string(),
            })
        }
        _ => None,
    }
}

/// The node's reason without its numeric reject code, which the two calls write differently:
/// `18: txn-mempool-conflict` (testmempoolaccept) and `txn-mempool-conflict (code 18)`
/// (sendrawtransaction). The same refusal then reads the same whichever call made it.
fn node_reason(text: &str) -> &str {
    let mut reason = text.trim();
    if let Some((code, rest)) = reason.split_once(": ") {
        if !code.is_empty() && is_digits(code) {
            reason = rest;
        }
    }
    if let Some((head, code)) = reason
        .strip_suffix(')')
        .and_then(|r| r.rsplit_once(" (code "))
    {
        if !code.is_empty() && is_digits(code) {
            reason = head;
        }
    }
    reason
}

fn reject_kind(reason: &str) -> RejectKind {
    // Prefix matches: BCHN may append details after the reason (`reason, details`).
    if reason.starts_with("missing-inputs")
        || reason.starts_with("bad-txns-inputs-missingorspent")
        || reason.eq_ignore_ascii_case("missing inputs")
    {
        RejectKind::MissingInputs
    } else if reason.starts_with("txn-mempool-conflict") {
        RejectKind::Conflict
    } else {
        RejectKind::Invalid
    }
}

/// Percent-decodes one part of the URL's user info (`p%40ss` is `p@ss`).
fn percent_decode(s: &str, what: &str) -> Result<String, NodeError> {
    let invalid = || {
        NodeError::Protocol(format!(
            "the {what} in the node URL has an invalid %-escape or is not UTF-8"
        ))
    };
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(|c| (c as char).to_digit(16));
            let lo = bytes.next().and_then(|c| (c as char).to_digit(16));
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                _ => return Err(invalid()),
            }
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).map_err(|_| invalid())
}

/// The innermost cause of an error (e.g. "Connection refused (os error 111)").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A short, printable excerpt of a body for messages.
fn snippet(bytes: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    if out.is_empty() {
        out.push_str("empty body");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_lose_their_codes_only() {
        assert_eq!(
            node_reason("18: txn-mempool-conflict"),
            "txn-mempool-conflict"
        );
        assert_eq!(
            node_reason("txn-mempool-conflict (code 18)"),
            "txn-mempool-conflict"
        );
        assert_eq!(node_reason("missing-inputs"), "missing-inputs");
        assert_eq!(node_reason("TX decode failed"), "TX decode failed");
        assert_eq!(node_reason("x: y (code z)"), "x: y (code z)");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("p%40ss%3a", "password").ok(),
            Some("p@ss:".into())
        );
        assert!(percent_decode("bad%4", "password").is_err());
        assert!(percent_decode("bad%zz", "password").is_err());
    }
}
