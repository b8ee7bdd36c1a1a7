//! The hints BCHN pushes over ZeroMQ (`-zmqpubhashblock`, `-zmqpubrawtx`, `-zmqpubhashds`),
//! read by a SUB socket and turned into [`Notice`]s.
//!
//! What it relies on, from BCHN's `zmq/zmqpublishnotifier.cpp` and `doc/zmq.md`:
//! - Every message has three frames: the topic (no terminator), the body, and a 4-byte
//!   little-endian sequence number that each topic counts on its own, from 0 when the node
//!   starts, wrapping at 2^32.
//! - `hashblock` carries the new tip's hash (32 bytes, display order); only the tip is
//!   announced, a reorg's blocks below it are not.
//! - `rawtx` carries a transaction's bytes, for each one entering the mempool and for each one
//!   in a block connected or disconnected.
//! - `hashds` carries the txid (32 bytes, display order) of the mempool transaction a
//!   double-spend proof was made for: the first-seen one, which the proof is attached to; the
//!   conflicting spend never entered the mempool.
//! - The PUB socket keeps no messages for a subscriber that is not connected, and drops them
//!   when one falls behind.
//!
//! So a hint is never the whole story: [`Notice::Lost`] tells the watcher to reconcile, and
//! comes after every (re)connection, on every gap in a topic's sequence numbers, and for every
//! message of a watched topic that cannot be read (its hint is gone). The subscriber never
//! ends: it reconnects with back-off and logs why.
//!
//! The `Lost` of a connection comes once the subscriptions have been sent. What the node
//! publishes before it has applied them is never delivered; the reconciliation that `Lost`
//! starts reads the node after that in practice (applying a subscription is quicker than
//! answering an RPC call), and the watcher's periodic reconciliation covers the rest.
//!
//! ZeroMQ has no authentication here, and the SUB socket reserves a frame's length as the
//! sender declares it: like BCHN's own notes say, the port must only be reachable from trusted
//! hosts.

use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use tokio::time::Instant;
use zeromq::{Endpoint, Socket, SocketEvent, SocketOptions, SocketRecv, SubSocket, ZmqMessage};

use crate::chain::block::MAX_CONSENSUS_TX_SIZE;
use crate::chain::node::NodeError;
use crate::chain::watch::{BlockHash, ChainTx, Notice};
use crate::chain::{txid_of, Tx, Txid};

/// The first wait before connecting again; doubled after each failure up to
/// [`MAX_BACKOFF`], and back to this once a connection delivers a message.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long one connection attempt (TCP and the ZMTP handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection that carries nothing for this long is replaced. Neither BCHN nor the SUB
/// socket sends heartbeats, so a connection whose other end vanished without closing it (a
/// host powered off, a NAT entry expired) would otherwise look quiet forever. A quiet chain
/// costs one reconnection and one reconciliation per period.
const IDLE_RECONNECT: Duration = Duration::from_secs(300);

/// The topics read, in the order of [`Session::next_seq`].
const TOPICS: [&str; 3] = ["hashblock", "rawtx", "hashds"];

/// A subscriber to a BCHN node's ZMQ hints. Create it with [`ZmqHints::connect`], then call
/// [`ZmqHints::next`] for ever.
pub struct ZmqHints {
    endpoint: String,
    session: Option<Session>,
    backoff: Duration,
    /// No connection attempt before this (after a failure or a lost connection).
    retry_at: Option<Instant>,
    /// A notice held back behind the [`Notice::Lost`] returned before it.
    pending: Option<Notice>,
}

/// One connection's socket and what it has seen.
struct Session {
    socket: SubSocket,
    events: BoxStream<'static, SocketEvent>,
    sequences: Sequences,
    delivered: bool,
}

/// The sequence number each topic's next message should carry, in the order of [`TOPICS`];
/// `None` until its first message on this connection (the PUB socket dropped what it sent
/// before the subscription reached it, and the [`Notice::Lost`] of the connection covers
/// that).
#[derive(Default)]
struct Sequences([Option<u32>; 3]);

impl std::fmt::Debug for ZmqHints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZmqHints")
            .field("endpoint", &self.endpoint)
            .field("connected", &self.session.is_some())
            .finish()
    }
}

impl ZmqHints {
    /// A subscriber to `endpoint` (`tcp://HOST:PORT`, the address of the node's
    /// `-zmqpubhashblock`, `-zmqpubrawtx` and `-zmqpubhashds`, which must be the same). Only
    /// the address is checked here; the first [`ZmqHints::next`] connects.
    pub fn connect(endpoint: &str) -> Result<ZmqHints, NodeError> {
        // The messages name the problem, never the input: a URL pasted here by mistake could
        // hold the node's RPC password.
        let bad = |why: String| {
            NodeError::Protocol(format!(
                "invalid ZMQ endpoint ({why}): expected tcp://HOST:PORT in --node-zmq, the \
                 address of the node's -zmqpubhashblock"
            ))
        };
        if endpoint.contains('@') {
            return Err(bad("ZMQ endpoints carry no user or password".into()));
        }
        match endpoint.parse::<Endpoint>() {
            Ok(Endpoint::Tcp(_, 0)) => Err(bad("port 0 cannot be connected to".into())),
            Ok(Endpoint::Tcp(..)) => Ok(ZmqHints {
                endpoint: endpoint.to_string(),
                session: None,
                backoff: MIN_BACKOFF,
                retry_at: None,
                pending: None,
            }),
            Ok(other) => Err(bad(format!("{} is not supported", other.transport()))),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// The address subscribed to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The next hint. Waits as long as it takes: while the node cannot be reached it retries
    /// with back-off, and after each connection the first notice is [`Notice::Lost`].
    ///
    /// Cancel-safe: a call dropped before it returns loses no message (one dropped while
    /// connecting starts that connection again).
    pub async fn next(&mut self) -> Notice {
        if let Some(notice) = self.pending.take() {
            return notice;
        }
        loop {
            let Some(session) = self.session.as_mut() else {
                self.session = Some(self.open().await);
                return Notice::Lost;
            };
            match session.receive().await {
                Ok(message) => {
                    if !session.delivered {
                        session.delivered = true;
                        self.backoff = MIN_BACKOFF;
                    }
                    let frames: Vec<&[u8]> = message.iter().map(|f| f.as_ref()).collect();
                    match session.sequences.read(&frames) {
                        Read::Notice(notice) => return notice,
                        Read::Gap {
                            notice,
                            topic,
                            expected,
                            got,
                        } => {
                            tracing::warn!(
                                endpoint = %self.endpoint,
                                "ZMQ hints were lost: {topic} #{got} came where #{expected} \
                                 was due; reconciling with the node"
                            );
                            self.pending = Some(notice);
                            return Notice::Lost;
                        }
                        Read::Malformed(why) => {
                            tracing::warn!(
                                endpoint = %self.endpoint,
                                "skipped a ZMQ message that cannot be read ({why}); \
                                 reconciling with the node"
                            );
                            return Notice::Lost;
                        }
                        Read::Ignored(why) => {
                            tracing::warn!(endpoint = %self.endpoint, "skipped a ZMQ message ({why})");
                        }
                    }
                }
                Err(why) => {
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        "lost the ZMQ connection to the node ({why}); reconnecting in {:?}",
                        self.backoff
                    );
                    self.session = None;
                    self.retry_later();
                }
            }
        }
    }

    /// Connects, retrying with back-off until it succeeds.
    async fn open(&mut self) -> Session {
        loop {
            if let Some(at) = self.retry_at {
                tokio::time::sleep_until(at).await;
            }
            match Session::open(&self.endpoint).await {
                Ok(session) => {
                    self.retry_at = None;
                    tracing::info!(endpoint = %self.endpoint, "subscribed to the node's ZMQ hints");
                    return session;
                }
                Err(why) => {
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        "cannot subscribe to the node's ZMQ hints ({why}); retrying in {:?}; \
                         check that the node runs with -zmqpubhashblock, -zmqpubrawtx and \
                         -zmqpubhashds at this address",
                        self.backoff
                    );
                    self.retry_later();
                }
            }
        }
    }

    fn retry_later(&mut self) {
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

/// What one message means.
enum Read {
    Notice(Notice),
    /// A readable message after a gap in its topic's sequence: [`Notice::Lost`], then this.
    Gap {
        notice: Notice,
        topic: &'static str,
        expected: u32,
        got: u32,
    },
    /// A message of a watched topic that cannot be read.
    Malformed(String),
    /// A message of a topic not watched (the subscriptions are prefixes, so `hashblockx`
    /// would pass them).
    Ignored(String),
}

impl Session {
    async fn open(endpoint: &str) -> Result<Session, String> {
        let mut options = SocketOptions::default();
        options.connect_timeout(CONNECT_TIMEOUT);
        let mut socket = SubSocket::with_options(options);
        let events = socket.monitor().boxed();
        // Subscribed before connecting: the socket sends its subscriptions as it connects.
        for topic in TOPICS {
            socket.subscribe(topic).await.map_err(|e| e.to_string())?;
        }
        tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(endpoint))
            .await
            .map_err(|_| format!("no connection within {CONNECT_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
        Ok(Session {
            socket,
            events,
            sequences: Sequences::default(),
            delivered: false,
        })
    }

    /// The next message; `Err` when the connection is gone (closed, broken or idle too
    /// long).
    async fn receive(&mut self) -> Result<ZmqMessage, String> {
        loop {
            tokio::select! {
                // The socket reports a closed connection here, not as an error of `recv`.
                biased;
                event = self.events.next() => match event {
                    Some(SocketEvent::Disconnected(_)) => {
                        return Err("the node closed the connection".into())
                    }
                    Some(_) => {}
                    None => return Err("the socket stopped reporting its state".into()),
                },
                message = self.socket.recv() => {
                    return message.map_err(|e| e.to_string());
                }
                () = tokio::time::sleep(IDLE_RECONNECT) => {
                    return Err(format!("nothing received for {IDLE_RECONNECT:?}"));
                }
            }
        }
    }
}

impl Sequences {
    /// What a message (its frames) means, and its sequence number noted.
    fn read(&mut self, frames: &[&[u8]]) -> Read {
        let Some(topic) = frames.first() else {
            return Read::Ignored("no frames".into());
        };
        let Some(index) = TOPICS.iter().position(|t| t.as_bytes() == *topic) else {
            return Read::Ignored(format!(
                "topic {:?}",
                String::from_utf8_lossy(&topic[..topic.len().min(32)])
            ));
        };
        let name = TOPICS[index];
        let [_, body, seq] = frames[..] else {
            // Without a sequence number to go on, the next message sets it again.
            self.0[index] = None;
            return Read::Malformed(format!("{name} with {} frames, not 3", frames.len()));
        };
        let Ok(got) = <[u8; 4]>::try_from(seq).map(u32::from_le_bytes) else {
            self.0[index] = None;
            return Read::Malformed(format!("{name} with a {}-byte sequence number", seq.len()));
        };
        let due = self.0[index].replace(got.wrapping_add(1));
        match notice_of(name, body) {
            Ok(notice) => match due {
                Some(expected) if expected != got => Read::Gap {
                    notice,
                    topic: name,
                    expected,
                    got,
                },
                _ => Read::Notice(notice),
            },
            Err(why) => Read::Malformed(format!("{name} #{got}: {why}")),
        }
    }
}

/// The notice a message's body makes.
fn notice_of(topic: &str, body: &[u8]) -> Result<Notice, String> {
    let hash =
        || <[u8; 32]>::try_from(body).map_err(|_| format!("a {}-byte body, not 32", body.len()));
    match topic {
        "hashblock" => Ok(Notice::Block(BlockHash(hash()?))),
        "hashds" => Ok(Notice::DoubleSpend(Txid(hash()?))),
        _ => {
            if body.len() > MAX_CONSENSUS_TX_SIZE {
                return Err(format!(
                    "a {}-byte transaction, above the consensus limit",
                    body.len()
                ));
            }
            let tx = Tx::decode(body).map_err(|e| e.to_string())?;
            Ok(Notice::Tx {
                tx: ChainTx {
                    txid: txid_of(body),
                    tx,
                },
                seen_ms: crate::units::now_ms(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_tcp_with_a_port() {
        assert!(ZmqHints::connect("tcp://127.0.0.1:28332").is_ok());
        assert!(ZmqHints::connect("tcp://node.internal:28332").is_ok());
        for bad in [
            "",
            "127.0.0.1:28332",
            "http://127.0.0.1:28332",
            "ipc:///tmp/bchn.sock",
            "tcp://127.0.0.1",
            "tcp://127.0.0.1:0",
            "tcp://user:s3cret@127.0.0.1:28332",
        ] {
            match ZmqHints::connect(bad) {
                Err(NodeError::Protocol(text)) => assert!(!text.contains("s3cret"), "{text}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    fn message<'a>(topic: &'a str, body: &'a [u8], seq: &'a [u8]) -> [&'a [u8]; 3] {
        [topic.as_bytes(), body, seq]
    }

    #[test]
    fn each_topic_counts_on_its_own_and_a_gap_is_lost() {
        let mut seqs = Sequences::default();
        let block = [1u8; 32];
        let ds = [2u8; 32];
        let read = |seqs: &mut Sequences, topic: &str, body: &[u8], n: u32| {
            seqs.read(&message(topic, body, &n.to_le_bytes()))
        };
        // The first message of a topic sets its count, whatever it is.
        assert!(matches!(
            read(&mut seqs, "hashblock", &block, 41),
            Read::Notice(_)
        ));
        assert!(matches!(read(&mut seqs, "hashds", &ds, 0), Read::Notice(_)));
        assert!(matches!(
            read(&mut seqs, "hashblock", &block, 42),
            Read::Notice(_)
        ));
        match read(&mut seqs, "hashblock", &block, 44) {
            Read::Gap {
                notice,
                topic,
                expected,
                got,
            } => {
                assert_eq!(notice, Notice::Block(BlockHash(block)));
                assert_eq!((topic, expected, got), ("hashblock", 43, 44));
            }
            _ => panic!("expected a gap"),
        }
        assert!(matches!(
            read(&mut seqs, "hashblock", &block, 45),
            Read::Notice(_)
        ));
        // The other topic's count was not disturbed.
        assert!(matches!(read(&mut seqs, "hashds", &ds, 1), Read::Notice(_)));
        // A restarted node counts from 0 again: a gap.
        assert!(matches!(
            read(&mut seqs, "hashds", &ds, 0),
            Read::Gap { .. }
        ));
    }

    #[test]
    fn counts_wrap_at_two_to_the_32() {
        let mut seqs = Sequences::default();
        let block = [3u8; 32];
        let read = |seqs: &mut Sequences, n: u32| {
            seqs.read(&message("hashblock", &block, &n.to_le_bytes()))
        };
        assert!(matches!(read(&mut seqs, u32::MAX), Read::Notice(_)));
        assert!(matches!(read(&mut seqs, 0), Read::Notice(_)));
    }

    #[test]
    fn unreadable_messages_are_named_and_other_topics_ignored() {
        let mut seqs = Sequences::default();
        let block = [4u8; 32];
        assert!(matches!(
            seqs.read(&message("hashblock", &block[..31], &[0; 4])),
            Read::Malformed(_)
        ));
        // A malformed body still counted: the next one is no gap.
        assert!(matches!(
            seqs.read(&message("hashblock", &block, &[1, 0, 0, 0])),
            Read::Notice(_)
        ));
        assert!(matches!(
            seqs.read(&message("hashblock", &block, &[2, 0, 0])),
            Read::Malformed(_)
        ));
        assert!(matches!(
            seqs.read(&[b"hashblock".as_slice(), block.as_slice()]),
            Read::Malformed(_)
        ));
        // After an unreadable count, the next message sets it again.
        assert!(matches!(
            seqs.read(&message("hashblock", &block, &[9, 0, 0, 0])),
            Read::Notice(_)
        ));
        assert!(matches!(
            seqs.read(&message("rawtx", &[0xde, 0xad], &[0; 4])),
            Read::Malformed(_)
        ));
        assert!(matches!(
            seqs.read(&message("hashtx", &block, &[0; 4])),
            Read::Ignored(_)
        ));
        assert!(matches!(
            seqs.read(&message("hashblockx", &block, &[0; 4])),
            Read::Ignored(_)
        ));
        assert!(matches!(seqs.read(&[]), Read::Ignored(_)));
    }

    #[test]
    fn bodies_become_notices() {
        let hash = [7u8; 32];
        assert_eq!(
            notice_of("hashblock", &hash),
            Ok(Notice::Block(BlockHash(hash)))
        );
        assert_eq!(
            notice_of("hashds", &hash),
            Ok(Notice::DoubleSpend(Txid(hash)))
        );
        assert!(notice_of("hashblock", &hash[..31]).is_err());
        assert!(notice_of("hashds", &[0; 33]).is_err());
        assert!(notice_of("rawtx", &[0xde, 0xad]).is_err());
        assert!(notice_of("rawtx", &vec![0; MAX_CONSENSUS_TX_SIZE + 1]).is_err());
    }
}
