//! # Cashier
//!
//! A self-hosted Bitcoin Cash payment server. `main.rs` is a thin binary over this library, so
//! tests start the real application on port 0.
//!
//! ## Layout
//!
//! - [`config`]: every setting once (flag, `CASHIER_*` variable, default, doc line).
//! - [`app`]: builds the server from the settings; [`http`] holds the one route table, the
//!   handlers and the per-client limits.
//! - [`auth`]: merchant keys, their stores and scopes.
//! - [`service`]: what holds a store, a node or a funding source: invoices, the pay flow and
//!   its reconciler, the Lightning wallets, the dev chain's state.
//! - [`jpp`]: BCH invoices (model, validation, views, the wallet dialects, the rules a payment
//!   is judged by). Pure, like `chain` and `lightning`.
//! - [`chain`]: Bitcoin Cash itself (networks, addresses, CashTokens, transactions,
//!   signatures), the `Node` trait, the BCHN client and the dev chain's rules.
//! - [`lightning`]: the LNbits-compatible wallet model, BOLT11, and the funding sources.
//! - [`notify`]: the notification core: typed topics and events, the outbox dispatcher, the
//!   socket hub and catch-up, the PostgreSQL bridge.
//! - [`store`]: diesel, one code path for SQLite and PostgreSQL.
//! - [`supervisor`]: the background duties, restarted on failure and stopped in order.
//! - [`outbound`]: TLS for every call out (the roots, `--extra-ca-file`), one setup that
//!   the BCHN client, the lnbits funding source and `dev pay` build their clients from.
//! - [`dev_pay`]: `cashier dev pay`, a wallet for the dev chain.
//! - [`units`]: time and money as every layer writes them.
//!
//! `ARCHITECTURE.md` at the top of the repository walks a payment and an event through them.
//!
//! ## Errors, by layer
//!
//! Domain code returns its own error enums ([`chain::AddressError`], [`jpp::InvoiceError`],
//! [`jpp::pay::PayError`], [`lightning::LnError`]), storage returns [`store::StoreError`]
//! (which reaches the domain errors as an opaque cause, converted in [`service`]), and only
//! `http/error.rs` knows statuses and the stable `code` strings clients see, one mapping per
//! dialect family.

pub mod app;
pub mod auth;
pub mod chain;
pub mod config;
pub mod dev_pay;
pub mod http;
pub mod jpp;
pub mod lightning;
pub mod notify;
pub mod outbound;
pub mod service;
pub mod store;
pub mod supervisor;
pub mod units;
