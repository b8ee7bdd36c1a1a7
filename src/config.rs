//! Every setting once: its flag, its `CASHIER_*` environment variable, its default and one doc
//! line. `cashier serve --help` prints them all; `.env.example` lists the variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::chain::Network;
use crate::lightning::FundingKind;
use crate::store::{DatabaseTarget, StoreError, StoreOptions};

#[derive(Debug, Parser)]
#[command(
    name = "cashier",
    version,
    about = "Cashier: a self-hosted Bitcoin Cash payment server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// `Serve` holds every setting; the command line is parsed once at start, so its size costs
// nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the payment server.
    Serve(Settings),
    /// Tools for the built-in dev chain.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// Look at invoices from the command line.
    Invoice {
        #[command(subcommand)]
        command: InvoiceCommand,
        #[command(flatten)]
        database: DatabaseSettings,
        #[command(flatten)]
        address: PublicAddress,
    },
    /// Manage Lightning wallets (the LNbits-compatible path).
    Wallet {
        #[command(subcommand)]
        command: WalletCommand,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Manage stores: one merchant each, owning its keys and invoices.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Manage a store's webhooks: where its invoices' events are POSTed, signed.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
        #[command(flatten)]
        database: DatabaseSettings,
        #[command(flatten)]
        targets: WebhookTargets,
    },
    /// Manage merchant API keys (needed to create invoices).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Pay an open invoice on a server running the dev chain, as a wallet would: faucet coins,
    /// a signed transaction, posted to the invoice. Prints the txid.
    Pay {
        /// The invoice's payment URL, its bchreg:?r=… URI, or its plain address URI
        /// (bchreg:<address>?amount=<BCH>), which pays the address as a wallet without the
        /// payment protocol does.
        #[arg(required_unless_present = "to_address")]
        payment_url: Option<String>,
        /// Pay this address directly instead (with --amount), as a wallet that does not speak
        /// the payment protocol: the server's chain watcher finds the payment.
        #[arg(long, requires = "amount", conflicts_with = "payment_url")]
        to_address: Option<String>,
        /// Sats to send with --to-address.
        #[arg(long)]
        amount: Option<u64>,
        /// The server, for --to-address.
        #[arg(
            long,
            env = "CASHIER_PUBLIC_URL",
            default_value = "http://127.0.0.1:8000"
        )]
        url: String,
        /// A memo to send with the payment.
        #[arg(long)]
        memo: Option<String>,
        /// Sign with ECDSA. Without it the payment is signed with Schnorr, as most wallets sign.
        #[arg(long)]
        ecdsa: bool,
    },
    /// Mine blocks on a running server's dev chain (the first takes the mempool).
    Mine {
        #[arg(long, default_value_t = 1)]
        blocks: u32,
        #[command(flatten)]
        server: DevServer,
    },
    /// Rehearse a double spend: a conflicting transaction for TXID (unmined) is refused and
    /// the chain makes a double-spend proof, as BCHN does. Prints the proof's id.
    DoubleSpend {
        txid: String,
        #[command(flatten)]
        server: DevServer,
    },
    /// Rehearse a reorg: the newest DEPTH blocks are replaced by DEPTH + 1 new ones holding
    /// the same transactions in the last, except --drop (gone) or --replace (its double spend
    /// mined instead). Prints the new height.
    Reorg {
        #[arg(long, default_value_t = 1)]
        depth: u32,
        /// A transaction that leaves the chain (as if evicted).
        #[arg(long)]
        drop: Option<String>,
        /// A transaction whose double spend is mined in its place.
        #[arg(long)]
        replace: Option<String>,
        #[command(flatten)]
        server: DevServer,
    },
}

/// The running server a dev command talks to.
#[derive(Debug, Args)]
pub struct DevServer {
    /// The server's base URL.
    #[arg(
        long,
        env = "CASHIER_PUBLIC_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    pub url: String,
}

#[derive(Debug, Subcommand)]
pub enum InvoiceCommand {
    /// Print the invoice's payment URI (`bitcoincash:?r=<payment URL>`), what its QR code holds.
    Uri {
        /// The invoice id (32 hex digits, or the dashed form).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Create a wallet and print its id, invoice key and admin key (shown this once).
    Create {
        #[arg(long, default_value = "My wallet")]
        name: String,
    },
    /// List wallets with their balances (never their keys).
    List,
    /// Credit a wallet, as an incoming payment with the memo "Admin credit".
    Topup {
        /// The wallet's id (`wallet list` shows it).
        wallet_id: String,
        /// Sats to credit.
        sats: u64,
    },
    /// Compare each wallet's kept balance with the sum of its payments (the truth), one line
    /// per wallet; exits non-zero if any differ. Safe on a running server.
    Check {
        /// Check only this wallet (its id).
        #[arg(long)]
        wallet: Option<String>,
        /// Set each kept balance that differs to its payments' sum, all in one transaction;
        /// then exits zero.
        #[arg(long)]
        repair: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create a store and print its id.
    Create {
        /// Its name, unique on this server.
        name: String,
    },
    /// List stores.
    List,
    /// Give a store an account xpub (`none` removes it): invoices made with an amount then get
    /// the next receiving address derived from it. Only the public key: never a private key
    /// or seed.
    Xpub {
        /// The store's name or id.
        store: String,
        /// The account's extended public key (xpub… on mainnet, tpub… on test networks), or
        /// `none`.
        key: String,
    },
    /// Set the confirmations a store's new invoices wait for (0: paid is final), or `default`
    /// for the server's --confirmations.
    Confirmations {
        /// The store's name or id.
        store: String,
        /// A number of blocks (0 to 144), or `default`.
        count: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Register an endpoint and print its signing secret (shown this once).
    Add {
        /// Where to POST, http:// or https://.
        url: String,
        /// The store (name or id) whose events it gets.
        #[arg(long, default_value = "default")]
        store: String,
        /// Event kinds it wants (repeat or separate with commas); every kind when not given.
        #[arg(long = "event", value_delimiter = ',')]
        events: Vec<String>,
    },
    /// List endpoints (ids, stores, URLs, kinds, on or off; never the secrets).
    List {
        /// Only this store's (name or id).
        #[arg(long)]
        store: Option<String>,
    },
    /// Remove an endpoint, with its deliveries and their log.
    Remove { id: i64 },
    /// Turn an endpoint on again (what waits for it is sent at once).
    Enable { id: i64 },
    /// Turn an endpoint off: events wait until it is on again.
    Disable { id: i64 },
    /// An endpoint's delivery log: newest events first, each attempt's time, HTTP status,
    /// error and latency, and the next try.
    Log {
        id: i64,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Send events to an endpoint again: one (--event) or it and every later one (--since).
    Redeliver {
        id: i64,
        #[arg(long, conflicts_with = "since", required_unless_present = "since")]
        event: Option<i64>,
        #[arg(long)]
        since: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key and print it. It is shown this once; only its hash is stored.
    Create {
        /// A note to tell keys apart, such as the shop or till it is for.
        #[arg(long)]
        label: Option<String>,
        /// The store (name or id) whose invoices the key works on.
        #[arg(long, default_value = "default")]
        store: String,
        /// What the key may do: invoices:create (all a point-of-sale terminal needs),
        /// invoices:read, invoices:cancel, webhooks:manage, or all. Repeat or separate with
        /// commas.
        #[arg(long = "scope", value_delimiter = ',', default_value = "all")]
        scopes: Vec<String>,
    },
    /// List keys (ids, stores, scopes, labels, dates; never the keys themselves).
    List,
    /// Revoke a key by the id `key list` shows.
    Revoke { id: i64 },
}

/// Where the server listens and the URL the world reaches it at; shared by the server and
/// the commands that print its URLs.
#[derive(Debug, Clone, Args)]
pub struct PublicAddress {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(
        long,
        global = true,
        env = "CASHIER_LISTEN",
        default_value = "127.0.0.1:8000"
    )]
    pub listen: SocketAddr,

    /// Public base URL used in every URL the server emits (payment URLs, QR codes).
    /// Default: http://<listen address>, i.e. http://127.0.0.1:8000.
    #[arg(long, global = true, env = "CASHIER_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
}

impl PublicAddress {
    /// The public base URL, given the address actually bound.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }
}

/// Where webhooks may go; shared by the server (which sends) and `cashier webhook add`
/// (which checks the URL when it is registered).
#[derive(Debug, Clone, Copy, Args)]
pub struct WebhookTargets {
    /// Let webhooks go to loopback, private and link-local addresses (a receiver on this
    /// machine or the local network). Off, only public addresses are called, so a webhook URL
    /// cannot reach into the server's own network.
    #[arg(long, global = true, env = "CASHIER_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
}

/// Where the data lives; shared by the server and the commands that touch the database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// Folder for the default SQLite database (created if missing).
    #[arg(
        long,
        global = true,
        env = "CASHIER_DATA_DIR",
        default_value = "./cashier-data"
    )]
    pub data_dir: PathBuf,

    /// Database URL: sqlite://PATH (add ?mode=rwc to create a new file) or
    /// postgres://USER:PASSWORD@HOST/DB. Default: sqlite://<data-dir>/cashier.sqlite.
    #[arg(
        long,
        global = true,
        env = "CASHIER_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Pooled database connections for reads.
    #[arg(
        long,
        global = true,
        env = "CASHIER_DB_CONNECTIONS",
        default_value_t = 8
    )]
    pub db_connections: u32,

    /// Writer connections on PostgreSQL (SQLite always uses one writer).
    #[arg(long, global = true, env = "CASHIER_DB_WRITERS", default_value_t = 4)]
    pub db_writers: usize,
}

impl DatabaseSettings {
    /// The database to open. The default SQLite file (and its folder) is created on first use;
    /// a URL given explicitly must name an existing database.
    pub fn target(&self) -> Result<DatabaseTarget, StoreError> {
        self.target_with(true)
    }

    /// The database a command other than `serve` works on: it must exist already, so that a
    /// mistyped `--data-dir` is an error rather than an empty database the command then reports
    /// on (a key "revoked" in a database the server does not use).
    pub fn existing_target(&self) -> Result<DatabaseTarget, StoreError> {
        self.target_with(false)
    }

    fn target_with(&self, create_default: bool) -> Result<DatabaseTarget, StoreError> {
        match &self.database_url {
            Some(url) => DatabaseTarget::parse(url),
            None if !create_default => Ok(DatabaseTarget::existing_in(&self.data_dir)),
            None => {
                std::fs::create_dir_all(&self.data_dir).map_err(|e| {
                    StoreError::Config(format!(
                        "cannot create data folder {}: {e}",
                        self.data_dir.display()
                    ))
                })?;
                Ok(DatabaseTarget::default_in(&self.data_dir))
            }
        }
    }

    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            read_connections: self.db_connections,
            postgres_writers: self.db_writers,
        }
    }
}

#[derive(Debug, Clone, Parser)]
#[command(name = "cashier serve")]
pub struct Settings {
    #[command(flatten)]
    pub address: PublicAddress,

    #[command(flatten)]
    pub database: DatabaseSettings,

    /// BCH network invoices are on: main, test (chipnet/testnet) or regtest. Default: the
    /// node's (regtest for the dev chain).
    #[arg(long, env = "CASHIER_NETWORK", value_parser = parse_network)]
    pub network: Option<Network>,

    /// BCH node: dev (the built-in development chain: regtest, no real money) or bchn
    /// (Bitcoin Cash Node over JSON-RPC at --node-url).
    #[arg(long, env = "CASHIER_NODE", value_enum, default_value_t = NodeKind::Dev)]
    pub node: NodeKind,

    /// BCHN JSON-RPC URL with its credentials, e.g. http://user:pass@127.0.0.1:8332 (https://
    /// for a node behind a TLS-terminating proxy).
    #[arg(long, env = "CASHIER_NODE_URL", hide_env_values = true)]
    pub node_url: Option<String>,

    /// Private key (64 hex digits) that signs JSON Payment Protocol responses (`digest`,
    /// `signature`, `x-identity` headers) for wallets set up to trust it; its public key is
    /// served at /signingKeys/paymentProtocol.json. Prefer the environment variable (command
    /// lines are visible to other users). Default: responses are not signed.
    #[arg(long, env = "CASHIER_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,

    /// Where Lightning invoices come from and payments go: fake (real BOLT11 invoices that
    /// only this server's wallets pay, for development), void (no Lightning) or lnbits (a
    /// wallet on a remote LNbits or Cashier: --lnbits-url, --lnbits-key).
    #[arg(long, env = "CASHIER_FUNDING_SOURCE", value_enum, default_value_t = FundingKind::Fake)]
    pub funding_source: FundingKind,

    /// Secret the fake funding source derives its invoice-signing key from.
    #[arg(
        long,
        env = "CASHIER_FAKE_WALLET_SECRET",
        hide_env_values = true,
        default_value = "cashier-fake"
    )]
    pub fake_wallet_secret: String,

    /// Base URL of the LNbits (or Cashier) whose wallet funds --funding-source lnbits, e.g.
    /// https://lnbits.example or http://127.0.0.1:5000.
    #[arg(long, env = "CASHIER_LNBITS_URL")]
    pub lnbits_url: Option<String>,

    /// That wallet's admin key (its invoice key makes the source receive-only). Prefer the
    /// environment variable (command lines are visible to other users).
    #[arg(long, env = "CASHIER_LNBITS_KEY", hide_env_values = true)]
    pub lnbits_key: Option<String>,

    /// PEM file of CA certificates to trust for calls out (BCHN, LNbits), besides the
    /// compiled-in and the system's roots: for private CAs, e.g. a LNbits or node behind your
    /// own TLS proxy. Default: none.
    #[arg(long, env = "CASHIER_EXTRA_CA_FILE")]
    pub extra_ca_file: Option<PathBuf>,

    /// Refuse `POST /api/v1/account` (wallets are then made with `cashier wallet create`).
    #[arg(long, env = "CASHIER_NO_PUBLIC_ACCOUNTS")]
    pub no_public_accounts: bool,

    /// Seconds a call to BCHN may take before its outcome counts as unknown.
    #[arg(long, env = "CASHIER_NODE_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub node_timeout: u64,

    /// Most calls in flight to BCHN at once (its own work queue holds 16 by default).
    #[arg(long, env = "CASHIER_NODE_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub node_connections: u64,

    /// Seconds between passes of the reconciler, which settles payments whose broadcast
    /// outcome was unknown (a timeout, a crash).
    #[arg(long, env = "CASHIER_RECONCILE_EVERY", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub reconcile_every: u64,

    /// Confirmations that turn a paid invoice `confirmed`, unless its store or the invoice
    /// itself says otherwise; 0 keeps `paid` final (the chain is still watched for double
    /// spends and reorgs).
    #[arg(long, env = "CASHIER_CONFIRMATIONS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=144))]
    pub confirmations: u32,

    /// What a double-spend proof for a paid invoice's transaction does: invalidate (the
    /// invoice becomes `invalid`, and `confirmed` again if the transaction is mined after
    /// all) or flag (the invoice stays `paid`; the event and the view say so).
    #[arg(long, env = "CASHIER_DOUBLE_SPEND_POLICY", value_enum,
          default_value_t = DoubleSpendPolicy::Invalidate)]
    pub double_spend_policy: DoubleSpendPolicy,

    /// Seconds between the chain watcher's reconciliation passes (blocks walked by hash from
    /// the last one processed, the mempool and double-spend proofs re-read), whatever the
    /// node pushes.
    #[arg(long, env = "CASHIER_CHAIN_POLL_EVERY", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub chain_poll_every: u64,

    /// Most unused addresses in a row a store's xpub may hand out: a wallet restored from the
    /// xpub stops looking after this many (20 for BIP44 wallets and Electron Cash).
    #[arg(long, env = "CASHIER_GAP_LIMIT", default_value_t = crate::chain::hd::DEFAULT_GAP_LIMIT,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub gap_limit: u32,

    /// Seconds after an xpub invoice expired unpaid before its address may serve a new invoice
    /// (once the gap limit is reached). Money sent to it later is still recorded.
    #[arg(long, env = "CASHIER_ADDRESS_REUSE_AFTER", default_value_t = 86_400)]
    pub address_reuse_after: u64,

    /// BCHN's ZMQ publisher (its -zmqpubhashblock, -zmqpubrawtx and -zmqpubhashds address),
    /// e.g. tcp://127.0.0.1:28332: blocks, transactions and double spends are seen at once
    /// instead of at the next poll.
    #[arg(long, env = "CASHIER_NODE_ZMQ")]
    pub node_zmq: Option<String>,

    #[command(flatten)]
    pub webhook_targets: WebhookTargets,

    /// Seconds a webhook delivery may take, connect to answer, before it counts as failed.
    #[arg(long, env = "CASHIER_WEBHOOK_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub webhook_timeout: u64,

    /// Most webhook deliveries in flight at once (one slow receiver holds only its own).
    #[arg(long, env = "CASHIER_WEBHOOK_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub webhook_concurrency: u64,

    /// Milliseconds before a failed webhook delivery is tried again; each further attempt
    /// waits twice as long (at most three hours), plus up to a quarter at random.
    #[arg(long, env = "CASHIER_WEBHOOK_FIRST_RETRY_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub webhook_first_retry_ms: u64,

    /// Attempts before a webhook delivery is given up and its endpoint turned off (until
    /// `cashier webhook enable`); the default spans more than a day.
    #[arg(long, env = "CASHIER_WEBHOOK_MAX_ATTEMPTS", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub webhook_max_attempts: u32,

    /// Let anyone create invoices without a merchant API key (point-of-sale setups).
    #[arg(long, env = "CASHIER_PUBLIC_INVOICES")]
    pub public_invoices: bool,

    /// Seconds an invoice stays payable when the create request gives no expires_in.
    #[arg(long, env = "CASHIER_DEFAULT_EXPIRES_IN", default_value_t = 1800,
          value_parser = clap::value_parser!(u32).range(60..=2_592_000))]
    pub default_expires_in: u32,

    /// Days events are kept for replay (`?since=`) before the pruning job deletes them.
    #[arg(long, env = "CASHIER_EVENT_RETENTION_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub event_retention_days: u32,

    /// Most sockets one client address may hold open (behind a reverse proxy every client
    /// shares the proxy's address: raise it there).
    #[arg(long, env = "CASHIER_SOCKETS_PER_ADDRESS", default_value_t = 256)]
    pub sockets_per_address: usize,

    /// Most sockets open at once from all addresses together; more are refused with 429.
    #[arg(long, env = "CASHIER_SOCKETS_TOTAL", default_value_t = 20_000)]
    pub sockets_total: usize,

    /// Seconds a client has to send a whole request, headers and body; a slower one gets 408
    /// and its connection is closed.
    #[arg(long, env = "CASHIER_REQUEST_TIMEOUT", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub request_timeout: u64,

    /// Writes one client address may make per minute without a key (wallet accounts, and
    /// invoices with --public-invoices); more get 429 with Retry-After. Behind a reverse proxy
    /// every client shares the proxy's address: raise it there.
    #[arg(long, env = "CASHIER_PUBLIC_WRITE_LIMIT", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub public_write_limit: u32,

    /// Who may show the checkout page in a frame (CSP frame-ancestors): 'none', or the
    /// origins of the shop pages that embed it, e.g. "https://shop.example".
    #[arg(long, env = "CASHIER_FRAME_ANCESTORS", default_value = "'none'",
          value_parser = parse_frame_ancestors)]
    pub frame_ancestors: String,

    /// Seconds between the pings the server sends on each socket; a peer silent for two and a
    /// half of these is closed as dead.
    #[arg(long, env = "CASHIER_WS_PING_SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ws_ping_secs: u64,

    /// HTTP worker threads. Default: one per CPU core.
    #[arg(long, env = "CASHIER_WORKERS")]
    pub workers: Option<usize>,

    /// Log filter (tracing syntax), e.g. info or cashier=debug.
    #[arg(long, env = "CASHIER_LOG", default_value = "info")]
    pub log: String,
}

pub use crate::jpp::DoubleSpendPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NodeKind {
    /// The built-in development chain.
    Dev,
    /// Bitcoin Cash Node over JSON-RPC.
    Bchn,
}

fn parse_network(s: &str) -> Result<Network, String> {
    Network::parse(s).ok_or_else(|| format!("unknown network {s:?}: use main, test or regtest"))
}

fn parse_frame_ancestors(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() || s.contains([';', ',', '\n', '\r', '"']) {
        return Err(format!(
            "{s:?} must be 'none', 'self' or origins separated by spaces, e.g. \"https://shop.example\""
        ));
    }
    Ok(s.to_owned())
}

fn parse_public_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("{s:?} must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(format!(
            "{s:?} must be a plain base URL such as https://pay.example.com"
        ));
    }
    Ok(s.trim_end_matches('/').to_owned())
}
