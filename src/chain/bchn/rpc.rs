//! JSON-RPC 1.0 as BCHN speaks it, over the HTTP transport: request ids, single calls and
//! batches (with replies placed by id), the reply envelope and its error object, and what an
//! error the caller has no meaning for says about the node (starting, syncing, not BCHN).

use std::sync::atomic::Ordering;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::transport::{snippet, MAX_BODY_BYTES};
use super::BchnClient;
use crate::chain::node::NodeError;

/// Common BCHN RPC error codes (`src/rpc/protocol.h`).
pub(super) const RPC_MISC_ERROR: i64 = -1;
pub(super) const RPC_INVALID_ADDRESS_OR_KEY: i64 = -5;
pub(super) const RPC_CLIENT_NOT_CONNECTED: i64 = -9;
pub(super) const RPC_CLIENT_IN_INITIAL_DOWNLOAD: i64 = -10;
pub(super) const RPC_DESERIALIZATION_ERROR: i64 = -22;
pub(super) const RPC_VERIFY_ERROR: i64 = -25;
pub(super) const RPC_VERIFY_REJECTED: i64 = -26;
pub(super) const RPC_VERIFY_ALREADY_IN_CHAIN: i64 = -27;
pub(super) const RPC_IN_WARMUP: i64 = -28;
pub(super) const RPC_METHOD_DISABLED: i64 = -90;
pub(super) const RPC_METHOD_NOT_FOUND: i64 = -32601;

/// An error object of a JSON-RPC reply.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct RpcError {
    pub(super) code: i64,
    pub(super) message: String,
}

/// One call's outcome as the node reported it: the raw `result` (`None` for JSON null), or
/// its error object.
pub(super) type Reply = Result<Option<Box<RawValue>>, RpcError>;

/// A JSON-RPC 1.0 reply object as BCHN writes it.
#[derive(Deserialize)]
pub(super) struct Envelope {
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
pub(super) enum Body {
    Single(Envelope),
    Batch(Vec<Envelope>),
}

impl BchnClient {
    /// One JSON-RPC call.
    pub(super) async fn call(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<Reply, NodeError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let body = request(id, method, params).to_string().into_bytes();
        match self
            .inner
            .transport
            .post(method, body, MAX_BODY_BYTES)
            .await?
        {
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
    pub(super) async fn batch(
        &self,
        calls: Vec<(&'static str, Value)>,
    ) -> Result<Vec<Reply>, NodeError> {
        self.batch_within(calls, MAX_BODY_BYTES).await
    }

    /// [`BchnClient::batch`] for calls whose answers may together reach `max_answer` bytes.
    pub(super) async fn batch_within(
        &self,
        calls: Vec<(&'static str, Value)>,
        max_answer: usize,
    ) -> Result<Vec<Reply>, NodeError> {
        let method = calls.first().map_or("batch", |(m, _)| *m);
        let count = calls.len() as u64;
        let first = self.inner.next_id.fetch_add(count, Ordering::Relaxed);
        let requests: Vec<Value> = calls
            .into_iter()
            .zip(first..)
            .map(|((m, params), id)| request(id, m, params))
            .collect();
        let body = serde_json::to_vec(&requests).map_err(|e| {
            NodeError::Protocol(format!("{method}: cannot encode the request: {e}"))
        })?;
        let envelopes = match self.inner.transport.post(method, body, max_answer).await? {
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
}

/// One request object. Single calls and batches both build theirs here.
fn request(id: u64, method: &str, params: Value) -> Value {
    // `jsonrpc: "1.0"` is what bitcoin-cli speaks, and BCHN answers every 1.0 error with a
    // JSON body.
    json!({"jsonrpc": "1.0", "id": id, "method": method, "params": params})
}

/// The result of a call that must not fail; other outcomes become a [`NodeError`].
pub(super) fn expect_ok(method: &str, reply: Reply) -> Result<Option<Box<RawValue>>, NodeError> {
    reply.map_err(|e| unexpected(method, e))
}

/// Decodes a result (`None` is JSON null).
pub(super) fn decode<T: DeserializeOwned>(
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
pub(super) fn unexpected(method: &str, e: RpcError) -> NodeError {
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
