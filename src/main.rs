use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cashier::app::Application;
use cashier::config::{
    Cli, Command, DatabaseSettings, DevCommand, InvoiceCommand, KeyCommand, PublicAddress,
    Settings, StoreCommand, WalletCommand, WebhookCommand, WebhookTargets,
};

use serde_json::json;

use cashier::auth::Scopes;
use cashier::chain::Network;
use cashier::jpp::{InvoiceId, InvoiceView};
use cashier::lightning::{Funding, FundingKind};
use cashier::service::Lightning;
use cashier::store::{self, Store, StoreError};
use cashier::units::{iso_millis, now_ms};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(settings) => serve(settings).await,
        Command::Key { command, database } => key(command, database).await,
        Command::Webhook {
            command,
            database,
            targets,
        } => webhooks(command, database, targets).await,
        Command::Store { command, database } => stores(command, database).await,
        Command::Wallet { command, database } => wallet(command, database).await,
        Command::Invoice {
            command: InvoiceCommand::Uri { id },
            database,
            address,
        } => invoice_uri(&id, database, address).await,
        Command::Dev {
            command:
                DevCommand::Pay {
                    payment_url,
                    to_address,
                    amount,
                    url,
                    memo,
                    ecdsa,
                },
        } => {
            let how = if ecdsa {
                cashier::chain::sighash::SignWith::ECDSA
            } else {
                cashier::chain::sighash::SignWith::SCHNORR
            };
            let direct = match (&to_address, amount, &payment_url) {
                (Some(address), Some(sats), _) => Some((address.clone(), sats)),
                (_, _, Some(target)) => cashier::dev_pay::address_target(target),
                _ => None,
            };
            match (direct, payment_url) {
                (Some((address, sats)), _) => dev_pay_address(&url, &address, sats).await,
                (None, Some(target)) => dev_pay(&target, memo.as_deref(), how).await,
                (None, None) => Err("give a payment URL, or --to-address with --amount".into()),
            }
        }
        Command::Dev {
            command: DevCommand::Mine { blocks, server },
        } => {
            dev_post(
                &server.url,
                "/dev/mine",
                json!({"blocks": blocks}),
                "height",
            )
            .await
        }
        Command::Dev {
            command: DevCommand::DoubleSpend { txid, server },
        } => {
            dev_post(
                &server.url,
                "/dev/double-spend",
                json!({"txid": txid}),
                "proof_id",
            )
            .await
        }
        Command::Dev {
            command:
                DevCommand::Reorg {
                    depth,
                    drop,
                    replace,
                    server,
                },
        } => {
            let body = json!({"depth": depth, "drop": drop, "replace": replace});
            dev_post(&server.url, "/dev/reorg", body, "height").await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_new(&settings.log)
                .map_err(|e| format!("--log {:?}: {e}", settings.log))?
                // The socket library traces request paths, and a wallet socket's path holds
                // its key: never below info, whatever --log asks.
                .add_directive("tungstenite=info".parse().map_err(|e| format!("{e}"))?)
                .add_directive(
                    "tokio_tungstenite=info"
                        .parse()
                        .map_err(|e| format!("{e}"))?,
                ),
        )
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    if settings.public_invoices {
        tracing::warn!(
            "--public-invoices is on: anyone who can reach this server can create invoices"
        );
    }
    let app = Application::build(&settings)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        database = %app.store().backend().as_str(),
        "Cashier listening on {}; invoices at {}/api/jpp/invoices/",
        settings.address.listen.ip().to_string() + ":" + &app.port().to_string(),
        app.public_url(),
    );
    let handle = app.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: closing sockets, finishing requests in flight");
        handle.stop(true).await;
    });
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn dev_pay_address(server: &str, address: &str, sats: u64) -> Result<(), String> {
    let txid = cashier::dev_pay::pay_address(server, address, sats).await?;
    eprintln!("Sent {sats} sats to {address} (the server's chain watcher finds it). Transaction:");
    println!("{txid}");
    Ok(())
}

async fn dev_pay(
    payment_url: &str,
    memo: Option<&str>,
    how: cashier::chain::sighash::SignWith,
) -> Result<(), String> {
    let paid = cashier::dev_pay::pay_with(payment_url, memo, how).await?;
    eprintln!("Paid: the invoice is {}. Transaction:", paid.status);
    println!("{}", paid.txid);
    Ok(())
}

/// Posts a rehearsal to the server's dev chain and prints `field` of its answer (or the
/// server's own words when it refuses).
async fn dev_post(
    base: &str,
    path: &str,
    body: serde_json::Value,
    field: &str,
) -> Result<(), String> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let answer = cashier::dev_pay::client()?
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e} (is `cashier serve` running there?)"))?;
    let status = answer.status();
    let json: serde_json::Value = answer
        .json()
        .await
        .map_err(|e| format!("{url} answered {status} without JSON: {e}"))?;
    if !status.is_success() {
        let detail = json["detail"].as_str().unwrap_or("no detail");
        return Err(format!("{url} refused ({status}): {detail}"));
    }
    match &json[field] {
        serde_json::Value::String(text) => println!("{text}"),
        other => println!("{other}"),
    }
    Ok(())
}

/// Opens the database a command works on; unlike `serve`, a command never creates one.
async fn open_store(database: DatabaseSettings) -> Result<Store, String> {
    let target = database.existing_target().map_err(|e| e.to_string())?;
    if database.database_url.is_none() && !database.data_dir.join("cashier.sqlite").is_file() {
        return Err(format!(
            "there is no Cashier database in {}: pass the --data-dir (or --database-url) the server uses, or start `cashier serve` once to create it",
            database.data_dir.display()
        ));
    }
    let options = database.store_options();
    tokio::task::spawn_blocking(move || Store::open(&target, &options))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// `cashier invoice uri <id>`: the URI the checkout page's QR code holds.
async fn invoice_uri(
    id: &str,
    database: DatabaseSettings,
    address: PublicAddress,
) -> Result<(), String> {
    let id: InvoiceId = id
        .parse()
        .map_err(|()| format!("{id:?} is not an invoice id (32 hex digits)"))?;
    let store = open_store(database).await?;
    let invoice = store
        .read(move |c| store::invoices::get(c, id))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no invoice {id} in this database"))?;
    // The invoice's network is its addresses'.
    let network = invoice
        .outputs
        .first()
        .map(|o| o.address.network())
        .ok_or("the invoice has no outputs")?;
    let base = address.base_url(address.listen);
    println!(
        "{}",
        InvoiceView::new(&invoice, network, &base, now_ms()).payment_uri
    );
    Ok(())
}

/// `cashier wallet …`: the operator's side of the Lightning wallets. Changes go through the
/// same service as the API, so a top-up's event reaches the wallet's sockets on a running
/// server (through the shared outbox).
async fn wallet(command: WalletCommand, database: DatabaseSettings) -> Result<(), String> {
    let store = open_store(database).await?;
    // Wallet management never reaches a funding source.
    let lightning = Lightning::new(store, Funding::new(FundingKind::Void, ""));
    match command {
        WalletCommand::Create { name } => {
            let (w, inkey, adminkey) = lightning
                .create_wallet(&name)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "Created wallet {:?}. Its keys are shown only now; keep them safe:",
                w.name
            );
            println!("id:       {}", w.id);
            println!("inkey:    {inkey}");
            println!("adminkey: {adminkey}");
        }
        WalletCommand::List => {
            let wallets = lightning.wallets().await.map_err(|e| e.to_string())?;
            println!(
                "{:<32} {:>14} {:<24} name",
                "id", "balance (sat)", "created"
            );
            for (w, msat) in wallets {
                println!(
                    "{:<32} {:>14} {:<24} {}",
                    w.id,
                    msat / 1000,
                    iso_millis(w.created_ms),
                    w.name
                );
            }
        }
        WalletCommand::Topup { wallet_id, sats } => {
            let p = lightning
                .top_up(&wallet_id, sats)
                .await
                .map_err(|e| e.to_string())?;
            let balance = lightning
                .balance_msat(&wallet_id)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "credited {sats} sat ({}); balance {} sat",
                p.checking_id,
                balance / 1000
            );
        }
        WalletCommand::Check { wallet, repair } => {
            let checked = lightning
                .check_balances(wallet.as_deref(), repair)
                .await
                .map_err(|e| e.to_string())?;
            if let (Some(id), true) = (&wallet, checked.is_empty()) {
                return Err(format!("no wallet {id} in this database"));
            }
            let mut differ = Vec::new();
            for c in &checked {
                if c.agrees() {
                    println!(
                        "ok        {} {} msat  {}",
                        c.wallet_id, c.summed_msat, c.name
                    );
                    continue;
                }
                let figures = format!(
                    "kept {} msat, payments sum to {} msat",
                    c.running_msat, c.summed_msat
                );
                if repair {
                    println!(
                        "repaired  {} {figures}; now {}  {}",
                        c.wallet_id, c.summed_msat, c.name
                    );
                } else {
                    println!("DIFFERS   {} {figures}  {}", c.wallet_id, c.name);
                    differ.push(format!("{} ({figures})", c.wallet_id));
                }
            }
            if !differ.is_empty() {
                return Err(format!(
                    "{} of {} wallets differ from their payments: {}. The payments are the truth: `cashier wallet check --repair` sets each balance to their sum",
                    differ.len(),
                    checked.len(),
                    differ.join("; ")
                ));
            }
        }
    }
    Ok(())
}

async fn key(command: KeyCommand, database: DatabaseSettings) -> Result<(), String> {
    let store = open_store(database).await?;
    let now = now_ms();
    match command {
        KeyCommand::Create {
            label,
            store: store_name,
            scopes,
        } => {
            let scopes = Scopes::parse(&scopes.join(" "))?;
            if scopes == Scopes::default() {
                return Err("a key needs at least one --scope".into());
            }
            let found = find_store(&store, &store_name).await?;
            let key = cashier::auth::generate_key();
            let hash = cashier::auth::key_hash(&key);
            let store_id = found.id;
            let id = store
                .write(move |c| {
                    store::api_keys::insert(c, &hash, label.as_deref(), store_id, scopes, now)
                })
                .await
                .map_err(|e: StoreError| e.to_string())?;
            eprintln!(
                "Created API key {id} for store {:?} ({scopes}). It is shown only now; keep it somewhere safe:",
                found.name
            );
            println!("{key}");
        }
        KeyCommand::List => {
            let (keys, stores) = store
                .read(|c| Ok((store::api_keys::list(c)?, store::api_keys::list_stores(c)?)))
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{:<6} {:<16} {:<24} {:<26} {:<46} label",
                "id", "store", "created", "revoked", "scopes"
            );
            for k in keys {
                let store_name = stores
                    .iter()
                    .find(|s| s.id == k.store_id)
                    .map_or_else(|| k.store_id.to_string(), |s| s.name.clone());
                println!(
                    "{:<6} {:<16} {:<24} {:<26} {:<46} {}",
                    k.id,
                    store_name,
                    iso_millis(k.created_ms),
                    k.revoked_ms.map(iso_millis).unwrap_or_else(|| "-".into()),
                    k.merchant().scopes,
                    k.label.unwrap_or_default()
                );
            }
        }
        KeyCommand::Revoke { id } => {
            let revoked = store
                .write(move |c| store::api_keys::revoke(c, id, now))
                .await
                .map_err(|e| e.to_string())?;
            if !revoked {
                return Err(format!(
                    "no active key with id {id} (see `cashier key list`)"
                ));
            }
            println!("Revoked key {id}.");
        }
    }
    Ok(())
}

/// The store with this name or id, or an error that says how to find one.
async fn find_store(store: &Store, name: &str) -> Result<store::api_keys::StoreRow, String> {
    let wanted = name.to_owned();
    store
        .read(move |c| store::api_keys::find_store(c, &wanted))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!("no store {name:?} (see `cashier store list`, or `cashier store create`)")
        })
}

/// `cashier webhook …`: a store's endpoints and their delivery log.
async fn webhooks(
    command: WebhookCommand,
    database: DatabaseSettings,
    targets: WebhookTargets,
) -> Result<(), String> {
    use cashier::notify::webhook::Guard;
    use cashier::service::webhooks::Webhooks;
    let store = open_store(database).await?;
    let hooks = Webhooks::new(
        store.clone(),
        Guard {
            allow_private: targets.webhook_allow_private,
        },
    );
    match command {
        WebhookCommand::Add {
            url,
            store: name,
            events,
        } => {
            let found = find_store(&store, &name).await?;
            let endpoint = hooks
                .add(found.id, &url, &events)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "Added webhook {} for store {:?}: {} ({}). Its signing secret is shown only now:",
                endpoint.id, found.name, endpoint.url, endpoint.kinds
            );
            println!("{}", endpoint.secret);
        }
        WebhookCommand::List { store: name } => {
            let store_id = match name {
                Some(name) => Some(find_store(&store, &name).await?.id),
                None => None,
            };
            let list = hooks.list(store_id).await.map_err(|e| e.to_string())?;
            println!(
                "{:<6} {:<6} {:<4} {:<40} url",
                "id", "store", "on", "events"
            );
            for e in list {
                println!(
                    "{:<6} {:<6} {:<4} {:<40} {}{}",
                    e.id,
                    e.store_id,
                    if e.enabled { "yes" } else { "no" },
                    e.kinds,
                    e.url,
                    e.disabled_reason
                        .map(|r| format!("  (off: {r})"))
                        .unwrap_or_default()
                );
            }
        }
        WebhookCommand::Remove { id } => {
            hooks.remove(id, None).await.map_err(|e| e.to_string())?;
            println!("Removed webhook {id}.");
        }
        WebhookCommand::Enable { id } | WebhookCommand::Disable { id } => {
            let on = matches!(command, WebhookCommand::Enable { .. });
            hooks
                .set_enabled(id, None, on)
                .await
                .map_err(|e| e.to_string())?;
            println!("Webhook {id} is {}.", if on { "on" } else { "off" });
        }
        WebhookCommand::Log { id, limit } => {
            let log = hooks
                .log(id, None, limit)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{:<9} {:<24} {:<10} {:<8} {:<24} last answer",
                "event", "kind", "state", "attempts", "next try"
            );
            for (d, attempts) in log {
                let last = attempts.last().map_or_else(
                    || "-".to_owned(),
                    |a| match (&a.status, &a.error) {
                        (Some(s), _) => format!("HTTP {s} in {} ms", a.latency_ms),
                        (None, Some(e)) => format!("{e} ({} ms)", a.latency_ms),
                        (None, None) => "-".into(),
                    },
                );
                let next = if d.state == store::webhooks::PENDING {
                    iso_millis(d.next_try_ms)
                } else {
                    "-".into()
                };
                println!(
                    "{:<9} {:<24} {:<10} {:<8} {:<24} {}",
                    d.event_id, d.kind, d.state, d.attempts, next, last
                );
            }
        }
        WebhookCommand::Redeliver { id, event, since } => {
            let (from, to) = match (event, since) {
                (Some(one), _) => (one, Some(one)),
                (None, Some(since)) => (since, None),
                (None, None) => return Err("give --event <id> or --since <id>".into()),
            };
            let queued = hooks
                .redeliver(id, None, from, to)
                .await
                .map_err(|e| e.to_string())?;
            println!("Queued {queued} deliveries for webhook {id}; a running server sends them.");
        }
    }
    Ok(())
}

/// `cashier store …`: the merchants this server serves.
async fn stores(command: StoreCommand, database: DatabaseSettings) -> Result<(), String> {
    let store = open_store(database).await?;
    match command {
        StoreCommand::Create { name } => {
            let name = name.trim().to_owned();
            if name.is_empty() || name.len() > 100 {
                return Err("a store's name must be 1 to 100 characters".into());
            }
            let now = now_ms();
            let wanted = name.clone();
            let id = store
                .write(move |c| store::api_keys::insert_store(c, &wanted, now))
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("a store named {name:?} exists already"))?;
            eprintln!(
                "Created store {name:?}. Make its keys with `cashier key create --store {name}`."
            );
            println!("{id}");
        }
        StoreCommand::Xpub { store: name, key } => {
            let key = key.trim().to_owned();
            let xpub = if key == "none" {
                None
            } else {
                // The server's network is not known here: a key valid for any is kept, and
                // the server checks it against its own when it derives an address.
                let parsed = Network::ALL
                    .into_iter()
                    .map(|n| cashier::chain::hd::AccountKey::parse(&key, n))
                    .find(Result::is_ok)
                    .unwrap_or_else(|| cashier::chain::hd::AccountKey::parse(&key, Network::Main));
                Some(parsed.map_err(|e| e.to_string())?.to_string())
            };
            let wanted = name.clone();
            let set = store
                .write(move |c| store::api_keys::set_store_xpub(c, &wanted, xpub.as_deref()))
                .await
                .map_err(|e| e.to_string())?;
            if !set {
                return Err(format!("no store named {name:?} (`cashier store list`)"));
            }
            eprintln!("Invoices of {name:?} made with an amount now get addresses of this key.");
        }
        StoreCommand::Confirmations { store: name, count } => {
            let count = match count.trim() {
                "default" => None,
                n => Some(
                    n.parse::<u32>()
                        .ok()
                        .filter(|n| u64::from(*n) <= cashier::jpp::MAX_CONFIRMATIONS)
                        .ok_or_else(|| {
                            format!(
                                "{n:?}: give a number of blocks from 0 to {}, or `default`",
                                cashier::jpp::MAX_CONFIRMATIONS
                            )
                        })?,
                ),
            };
            let wanted = name.clone();
            let set = store
                .write(move |c| store::api_keys::set_store_confirmations(c, &wanted, count))
                .await
                .map_err(|e| e.to_string())?;
            if !set {
                return Err(format!("no store named {name:?} (`cashier store list`)"));
            }
            match count {
                Some(n) => eprintln!("New invoices of {name:?} wait for {n} confirmation(s)."),
                None => {
                    eprintln!("New invoices of {name:?} wait for the server's --confirmations.")
                }
            }
        }
        StoreCommand::List => {
            let stores = store
                .read(store::api_keys::list_stores)
                .await
                .map_err(|e| e.to_string())?;
            println!("{:<6} {:<24} name", "id", "created");
            for s in stores {
                println!("{:<6} {:<24} {}", s.id, iso_millis(s.created_ms), s.name);
            }
        }
    }
    Ok(())
}
