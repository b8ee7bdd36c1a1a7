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
//! - [`jpp`]: BCH invoices (model, validation, views, the wallet dialects, the pay flow).
//! - [`chain`]: Bitcoin Cash itself (networks, addresses, CashTokens, transactions,
//!   signatures) and the nodes: the built-in dev chain and the BCHN client.
//! - [`lightning`]: the LNbits-compatible wallets and their funding sources.
//! - [`notify`]: the outbox dispatcher and the socket fan-out both paths share.
//! - [`store`]: diesel, one code path for SQLite and PostgreSQL.
//! - [`dev_pay`]: `cashier dev pay`, a wallet for the dev chain.
//! - [`units`]: time and money as every layer writes them.
//!
//! `ARCHITECTURE.md` at the top of the repository walks a payment and an event through them.
//!
//! ## Errors, by layer
//!
//! Domain code returns its own error enums ([`chain::AddressError`], [`jpp::InvoiceError`]),
//! storage returns [`store::StoreError`], and only [`http::ApiError`] knows statuses and the
//! stable `code` strings clients see. Each layer converts the one below with `From`.

pub mod app;
pub mod auth;
pub mod chain;
pub mod config;
pub mod dev_pay;
pub mod http;
pub mod jpp;
pub mod lightning;
pub mod notify;
pub mod service;
pub mod store;
pub mod supervisor;
pub mod units;
