//! Builds the server from [`Settings`]: opens the store, binds the listener, wires the routes.
//! Tests build it on port 0 and talk to it over real sockets.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{from_fn, DefaultHeaders, NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpServer};

use crate::chain::bchn::BchnClient;
use crate::chain::Network;
use crate::config::{NodeKind, Settings};
use crate::http::limits::{read_body_in_time, PublicWrites};
use crate::http::{routes, AppState};
use crate::jpp::signing::Signer;
use crate::lightning::{Funding, FundingSettings};
use crate::notify::webhook::{Guard, Sender, WebhookSettings};
use crate::notify::{bridge, ConnectionLimit, Dispatcher};
use crate::outbound::Outbound;
use crate::service::{
    AddressRules, DevChain, Invoices, Lightning, NodeClient, Payments, Watcher, Webhooks,
};
use crate::store::{events, webhooks, Backend, Store, StoreError};
use crate::supervisor::{self, Signal, Supervisor};
use crate::units::now_ms;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("reconciling payments at start-up failed: {0}")]
    Reconcile(String),
}

pub struct Application {
    server: Server,
    port: u16,
    public_url: String,
    store: Store,
    payments: Payments,
    dispatcher: Dispatcher,
    invoices: Invoices,
    lightning: Lightning,
    watcher: Watcher,
    webhook_sender: Sender,
    /// The TLS every call out uses (the node, the funding source, webhooks).
    outbound: Outbound,
    reconcile_every: std::time::Duration,
    /// How old a claim must be before a periodic pass touches it: a live request's broadcast
    /// (here or in another process) ends within the node's timeout.
    reconcile_grace: std::time::Duration,
    event_retention: std::time::Duration,
    /// Closes the sockets (1001) when shutdown begins.
    sockets_stop: Signal,
}

/// Stops the server in order: no new connections, sockets closed with 1001 ("going away"),
/// requests in flight answered (for at most [`DRAIN_WITHIN`]). [`Application::run_until_stopped`]
/// then stops the background duties and flushes the database before it returns.
#[derive(Clone)]
pub struct Shutdown {
    server: ServerHandle,
    sockets: Signal,
}

impl Shutdown {
    /// Begins the shutdown at once; the future resolves when the HTTP server has stopped.
    /// `graceful: false` drops requests in flight (a crash, for tests).
    pub fn stop(&self, graceful: bool) -> impl std::future::Future<Output = ()> {
        self.sockets.stop();
        self.server.stop(graceful)
    }
}

/// Longest wait for requests in flight once shutdown begins.
pub const DRAIN_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);
/// A peer that has kept its receive window shut (it stopped reading) or acknowledged nothing for
/// this long is gone: the kernel ends its connection, and actix then drops it. Actix itself never
/// would: a connection whose write buffer is full waits for the peer however long that takes
/// (actix-http's h1 dispatcher has no write deadline), and a peer that acknowledges the kernel's
/// window probes without reading keeps it open for good, holding a file descriptor and, for a
/// socket, its place under `--sockets-per-address` (http/ws.rs).
/// Long enough for a phone's checkout page to ride out a short loss of signal.
pub const STALLED_PEER: std::time::Duration = std::time::Duration::from_secs(30);
/// Longest wait for the background duties to stop, after the HTTP server has.
const DUTIES_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);
/// Longest wait for queued writes to commit, last of all.
const FLUSH_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// How often events past their retention are deleted.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// How often open invoices past their time are recorded as expired (and their sockets told).
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Application {
    /// Opens the database (running migrations) and binds the listener; the server runs once
    /// [`Application::run_until_stopped`] is awaited.
    pub async fn build(settings: &Settings) -> Result<Application, StartError> {
        let target = settings.database.target()?;
        let options = settings.database.store_options();
        let store = tokio::task::spawn_blocking(move || Store::open(&target, &options))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;

        // Before anything calls out: the node is asked its network below.
        let outbound =
            Outbound::new(settings.extra_ca_file.as_deref()).map_err(StartError::Config)?;
        let (node, network) = connect_node(settings, &store, &outbound).await?;
        let signer = match &settings.signing_key {
            Some(key) => {
                Some(Arc::new(Signer::from_hex(key, network).map_err(|e| {
                    StartError::Config(format!("--signing-key: {e}"))
                })?))
            }
            None => None,
        };

        let listener =
            TcpListener::bind(settings.address.listen).map_err(|source| StartError::Bind {
                addr: settings.address.listen,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| StartError::Bind {
            addr: settings.address.listen,
            source,
        })?;
        let public_url = settings.address.base_url(local);

        let guard = Guard {
            allow_private: settings.webhook_targets.webhook_allow_private,
        };
        let webhook_sender = Sender::new(
            store.clone(),
            WebhookSettings {
                guard,
                timeout: std::time::Duration::from_secs(settings.webhook_timeout),
                concurrency: usize::try_from(settings.webhook_concurrency).unwrap_or(16),
                first_retry: std::time::Duration::from_millis(settings.webhook_first_retry_ms),
                max_attempts: settings.webhook_max_attempts,
            },
            outbound.http(),
        )
        .map_err(StartError::Config)?;
        let dispatcher = Dispatcher::new(store.clone()).with_consumer(webhook_sender.consumer());
        let payments = Payments::new(store.clone(), node, network, public_url.clone());
        // A crash or an unknown broadcast outcome may have left payments claimed but not
        // settled: finish them before taking new ones.
        let settled = payments
            .reconcile(None)
            .await
            .map_err(|e| StartError::Reconcile(e.to_string()))?;
        if settled > 0 {
            tracing::info!(settled, "payments left in flight were settled");
        }
        let invoices = Invoices::new(
            store.clone(),
            network,
            public_url.clone(),
            settings.default_expires_in,
            settings.confirmations,
            AddressRules {
                gap_limit: settings.gap_limit,
                reuse_after_ms: i64::try_from(settings.address_reuse_after)
                    .unwrap_or(i64::MAX / 1000)
                    .saturating_mul(1000),
            },
        );
        let funding = Funding::from_settings(FundingSettings {
            kind: settings.funding_source,
            fake_wallet_secret: &settings.fake_wallet_secret,
            lnbits_url: settings.lnbits_url.as_deref(),
            lnbits_key: settings.lnbits_key.as_deref(),
            outbound: &outbound,
        })
        .map_err(StartError::Config)?;
        let lightning = Lightning::new(store.clone(), funding);
        let watcher = Watcher::new(
            store.clone(),
            payments.node().clone(),
            invoices.clone(),
            settings.double_spend_policy,
            std::time::Duration::from_secs(settings.chain_poll_every),
            zmq_endpoint(settings)?,
        );
        let (sockets_stop, stopping) = supervisor::signal();
        let state = web::Data::new(AppState {
            payments: payments.clone(),
            store: store.clone(),
            dispatcher: dispatcher.clone(),
            invoices: invoices.clone(),
            lightning: lightning.clone(),
            webhooks: Webhooks::new(store.clone(), guard),
            public_accounts: !settings.no_public_accounts,
            public_invoices: settings.public_invoices,
            keys: Default::default(),
            sockets: ConnectionLimit::new(settings.sockets_per_address, settings.sockets_total),
            ping_every: std::time::Duration::from_secs(settings.ws_ping_secs),
            signer,
            request_timeout: std::time::Duration::from_secs(settings.request_timeout),
            public_writes: Arc::new(PublicWrites::per_minute(settings.public_write_limit)),
            frame_ancestors: settings.frame_ancestors.clone(),
            stopping,
        });
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                // Innermost: the body is read in time before any handler sees the request.
                .wrap(from_fn(read_body_in_time))
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                // Browser wallets and checkout pages on other origins (research §7.1).
                .wrap(
                    DefaultHeaders::new()
                        .add(("Access-Control-Allow-Origin", "*"))
                        .add(("Access-Control-Allow-Methods", "GET, POST, OPTIONS"))
                        .add((
                            "Access-Control-Allow-Headers",
                            "Content-Type, Accept, X-Api-Key, Authorization, x-paypro-version, BP_PARTNER, BP_PARTNER_VERSION",
                        ))
                        .add((
                            "Access-Control-Expose-Headers",
                            "digest, signature, x-signature, x-signature-type, x-identity",
                        ))
                        // No answer is ever to be read as another type than it says.
                        .add(("X-Content-Type-Options", "nosniff")),
                )
                .configure(routes)
        })
        // Small writes leave at once: with Nagle's algorithm a socket's second message in a row
        // waits for the peer's delayed ACK (tens of milliseconds).
        .on_connect(|io, _| {
            if let Some(tcp) = io.downcast_ref::<actix_web::rt::net::TcpStream>() {
                let _ = tcp.set_nodelay(true);
                #[cfg(target_os = "linux")]
                let _ = socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(STALLED_PEER));
            }
        })
        // Slow headers are cut by this deadline; slow bodies by `read_body_in_time`.
        .client_request_timeout(std::time::Duration::from_secs(settings.request_timeout))
        // Signals are ours (see main and `Shutdown`): stop accepting, close sockets, finish
        // requests in flight, then stop the duties and flush the database.
        .disable_signals()
        .shutdown_timeout(DRAIN_WITHIN.as_secs());
        if let Some(workers) = settings.workers {
            server = server.workers(workers.max(1));
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartError::Bind {
                addr: settings.address.listen,
                source,
            })?
            .run();
        Ok(Application {
            server,
            port: local.port(),
            public_url,
            store,
            payments,
            dispatcher,
            invoices,
            lightning,
            watcher,
            webhook_sender,
            outbound,
            reconcile_every: std::time::Duration::from_secs(settings.reconcile_every),
            reconcile_grace: std::time::Duration::from_secs(2 * settings.node_timeout),
            event_retention: std::time::Duration::from_secs(
                u64::from(settings.event_retention_days) * 86_400,
            ),
            sockets_stop,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A handle that shuts the server down (see [`Shutdown`]).
    pub fn handle(&self) -> Shutdown {
        Shutdown {
            server: self.server.handle(),
            sockets: self.sockets_stop.clone(),
        }
    }

    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    pub fn lightning(&self) -> &Lightning {
        &self.lightning
    }

    pub fn payments(&self) -> &Payments {
        &self.payments
    }

    /// The TLS setup for calls out, built once from the settings.
    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// Serves until [`Shutdown::stop`]; the background duties run beside the server under one
    /// supervisor. After the server stopped, the duties stop (newest first), then the writes
    /// still queued are committed: every answered request is on disk when this returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let duties = self.start_duties();
        let result = self.server.await;
        // Whatever ended the server, the sockets go now.
        self.sockets_stop.stop();
        tracing::info!("HTTP stopped; stopping background duties");
        duties.stop(DUTIES_WITHIN).await;
        match tokio::time::timeout(FLUSH_WITHIN, self.store.flush()).await {
            Ok(Ok(())) => tracing::info!("database flushed; stopped"),
            Ok(Err(e)) => tracing::error!(error = %e, "flushing the database failed"),
            Err(_) => tracing::error!("flushing the database did not finish in time"),
        }
        result
    }

    /// The background duties, in the order they start. They stop in reverse, so the duties
    /// that write events (reconciler, chain watcher, sweeper, funding listener) stop before the dispatcher
    /// that delivers them, and the bridge that wakes it stops last.
    fn start_duties(&self) -> Supervisor {
        let mut duties = Supervisor::default();
        if self.store.backend() == Backend::Postgres {
            let (store, hub) = (self.store.clone(), self.dispatcher.hub().clone());
            duties.spawn("postgres-bridge", move |stopping| {
                bridge::run(store.clone(), hub.clone(), stopping)
            });
        }
        let dispatcher = self.dispatcher.clone();
        duties.spawn("dispatcher", move |stopping| {
            dispatcher.clone().run(stopping)
        });
        let sender = self.webhook_sender.clone();
        duties.spawn("webhook-sender", move |stopping| {
            sender.clone().run(stopping)
        });
        let (payments, grace) = (
            self.payments.clone(),
            self.reconcile_grace.as_millis() as i64,
        );
        duties.every(
            "reconciler",
            self.reconcile_every,
            self.reconcile_every,
            move || {
                let payments = payments.clone();
                async move {
                    payments
                        .reconcile(Some(crate::units::now_ms() - grace))
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
            },
        );
        let watcher = self.watcher.clone();
        duties.spawn("chain-watcher", move |stopping| {
            watcher.clone().run(stopping)
        });
        let invoices = self.invoices.clone();
        duties.every(
            "expiry-sweeper",
            std::time::Duration::ZERO,
            SWEEP_EVERY,
            move || {
                let invoices = invoices.clone();
                async move {
                    invoices
                        .sweep_expired()
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
            },
        );
        let (store, retention) = (self.store.clone(), self.event_retention);
        duties.every(
            "event-pruner",
            std::time::Duration::ZERO,
            PRUNE_EVERY,
            move || {
                let store = store.clone();
                async move {
                    let before = now_ms() - retention.as_millis() as i64;
                    // Deleting what is already deleted does nothing, so any number of processes
                    // may prune side by side.
                    let pruned = store.write(move |c| {
                        Ok(events::prune(c, before)? + webhooks::prune(c, before)?)
                    });
                    match pruned.await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(pruned = n, "old events pruned"),
                        Err(e) => return Err(e.to_string()),
                    }
                    Ok(())
                }
            },
        );
        let lightning = self.lightning.clone();
        duties.spawn("funding-listener", move |stopping| {
            lightning.clone().listen_for_paid_invoices(stopping)
        });
        duties
    }
}

/// `--node-zmq`, checked: an endpoint BCHN's publisher can have, and only with a real node.
fn zmq_endpoint(settings: &Settings) -> Result<Option<String>, StartError> {
    let Some(endpoint) = &settings.node_zmq else {
        return Ok(None);
    };
    if settings.node != NodeKind::Bchn {
        return Err(StartError::Config(
            "--node-zmq is for --node bchn; the dev chain tells its watcher itself".into(),
        ));
    }
    crate::chain::bchn::ZmqHints::connect(endpoint)
        .map_err(|e| StartError::Config(e.to_string()))?;
    Ok(Some(endpoint.clone()))
}

/// The node from the settings, and the network invoices are on.
async fn connect_node(
    settings: &Settings,
    store: &Store,
    outbound: &Outbound,
) -> Result<(NodeClient, Network), StartError> {
    match settings.node {
        NodeKind::Dev => {
            if settings.node_url.is_some() {
                return Err(StartError::Config(
                    "--node-url is for --node bchn; the dev chain needs none".into(),
                ));
            }
            let network = settings.network.unwrap_or(Network::Regtest);
            if network != Network::Regtest {
                return Err(StartError::Config(format!(
                    "the dev chain is a regtest chain, but --network is {network}: use --network regtest, or a real node with --node bchn"
                )));
            }
            tracing::warn!("BCH node: the built-in dev chain (regtest). No real money: coins come from POST /dev/faucet");
            Ok((NodeClient::Dev(DevChain::new(store.clone())), network))
        }
        NodeKind::Bchn => {
            let url = settings.node_url.as_deref().ok_or_else(|| {
                StartError::Config(
                    "--node bchn needs --node-url http://USER:PASSWORD@HOST:PORT".into(),
                )
            })?;
            let client = BchnClient::new(
                url,
                settings.node_connections as usize,
                std::time::Duration::from_secs(settings.node_timeout),
                outbound,
            )
            .map_err(|e| StartError::Config(e.to_string()))?;
            let network = match (client.network().await, settings.network) {
                (Ok(node), Some(asked)) if node != asked => {
                    return Err(StartError::Config(format!(
                        "the node at {} is on {node}, but --network is {asked}",
                        client.endpoint()
                    )))
                }
                (Ok(node), _) => node,
                // The node may be down for a while; payments answer 503 until it is back.
                (Err(e), Some(asked)) => {
                    tracing::warn!(error = %e, "cannot reach the node now; starting on --network {asked}");
                    asked
                }
                (Err(e), None) => {
                    return Err(StartError::Config(format!(
                        "cannot learn the network from the node ({e}); pass --network to start without it"
                    )))
                }
            };
            tracing::info!(node = %client.endpoint(), %network, "BCH node: BCHN");
            Ok((NodeClient::Bchn(client), network))
        }
    }
}
