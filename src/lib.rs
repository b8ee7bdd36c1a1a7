//! # Cashier
//!
//! A self-hosted Bitcoin Cash payment server. `main.rs` is a thin binary over this library, so
//! tests start the real application on port 0.
//!
//! ## Layout
//!
//! - [`config`]: every setting once (flag, `CASHIER_*` variable, default, doc line).
//! - [`app`]: builds the server from the settings; [`http`] holds the one route table.
//! - [`jpp`]: BCH invoices (model, validation, views, the invoice operations).
//! - [`chain`]: Bitcoin Cash itself (networks, addresses, CashTokens).
//! - [`store`]: diesel, one code path for SQLite and PostgreSQL.
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
pub mod store;
