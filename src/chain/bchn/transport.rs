//! The HTTP side of the BCHN client: the reqwest client and its pool (TLS from [`Outbound`]
//! for https://), the node URL with its credentials taken out, timeouts, the bound on calls in
//! flight, and posting one request body and reading the answer. Everything that knows it is
//! HTTP is here, so the JSON-RPC layer above sees a parsed reply or a [`NodeError`] already
//! sorted by what the caller may assume.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use tokio::sync::Semaphore;

use super::rpc::{Body, Envelope};
use super::BchnClient;
use crate::chain::node::NodeError;
use crate::outbound::{tls_failure, Outbound};

/// Largest answer read from the node for most calls. A verbose `getrawtransaction` of a
/// 100 kB transaction is a few MB; anything far larger is not BCHN and must not fill memory.
/// A raw block is the exception and brings its own bound (see `BchnClient::block`).
pub(super) const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Idle keep-alive connections are dropped after this. BCHN closes idle RPC connections after
/// `-rpcservertimeout` (30 s by default); reusing one it is closing would turn a harmless call
/// into an ambiguous failure, so ours give up first.
const POOL_IDLE: Duration = Duration::from_secs(15);

/// The HTTP connection to one node.
pub(super) struct Transport {
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
}

impl std::fmt::Debug for BchnClient {
    // By hand, so the password can never reach a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BchnClient")
            .field("url", &self.inner.transport.url.as_str())
            .field("max_concurrent", &self.inner.transport.max_concurrent)
            .field("timeout", &self.inner.transport.timeout)
            .finish()
    }
}

impl Transport {
    /// Checks the URL and limits and sets up the HTTP client; see [`BchnClient::new`].
    pub(super) fn new(
        url: &str,
        max_concurrent: usize,
        timeout: Duration,
        outbound: &Outbound,
    ) -> Result<Transport, NodeError> {
        // Parse errors name the problem, never the input: the input holds the password.
        let mut url = Url::parse(url).map_err(|e| {
            NodeError::Protocol(format!(
                "invalid node URL ({e}): expected http://USER:PASSWORD@HOST:PORT in --node-url"
            ))
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(NodeError::Protocol(format!(
                "the node URL must start with http:// or https://, not {}://; BCHN's RPC \
                 server speaks plain HTTP, so https:// is for a TLS-terminating proxy in front \
                 of it (or reach a remote node through an SSH tunnel)",
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

        let http = outbound
            .http()
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

        Ok(Transport {
            http,
            url,
            user,
            password,
            permits: Semaphore::new(max_concurrent),
            max_concurrent,
            timeout,
        })
    }

    /// The node's RPC URL without the user and password, for logs and messages.
    pub(super) fn endpoint(&self) -> &str {
        self.url.as_str()
    }

    /// Sends one request body and reads an answer of at most `max_answer` bytes, within the
    /// concurrency bound.
    pub(super) async fn post(
        &self,
        method: &str,
        body: Vec<u8>,
        max_answer: usize,
    ) -> Result<Body, NodeError> {
        // Held until the whole answer is read: the node's worker is busy until then.
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| NodeError::Unavailable("the node client has been shut down".into()))?;
        let mut request = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(user) = &self.user {
            request = request.basic_auth(user, self.password.as_deref());
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
            if bytes.len() + chunk.len() > max_answer {
                return Err(NodeError::Protocol(format!(
                    "{method}: the answer from {} is larger than {max_answer} bytes",
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
            return Err(NodeError::Unavailable(if self.user.is_some() {
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
        if let Some(why) = tls_failure(&e).filter(|_| e.is_connect()) {
            // The handshake comes before the request: nothing reached the node.
            NodeError::Unavailable(format!("cannot connect to the node at {endpoint}: {why}"))
        } else if e.is_connect() {
            NodeError::Unavailable(format!(
                "cannot connect to the node at {endpoint} ({cause}): check that bitcoind is \
                 running with -server=1 and that --node-url names its -rpcbind address and \
                 -rpcport"
            ))
        } else if e.is_timeout() {
            NodeError::Timeout(format!(
                "no answer to {method} from {endpoint} within {:?}; it may still have taken \
                 effect",
                self.timeout
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
pub(super) fn snippet(bytes: &[u8]) -> String {
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
    fn percent_decoding() {
        assert_eq!(
            percent_decode("p%40ss%3a", "password").ok(),
            Some("p@ss:".into())
        );
        assert!(percent_decode("bad%4", "password").is_err());
        assert!(percent_decode("bad%zz", "password").is_err());
    }
}
