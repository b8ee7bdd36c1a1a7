//! Integration tests: the real server on port 0, real HTTP, SQLite and PostgreSQL.

// Test code: a panic is a failed check, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod chain;
mod helpers;
// The tests' own CA and TLS proxy, shared with tests/bchn.rs.
#[path = "../common/tls.rs"]
mod tls;
// Merchant keys, shared with tests/bchn.rs.
#[path = "../common/keys.rs"]
mod keys;

mod adversary;
mod bad_input;
mod checkout;
mod cli;
mod dialects;
mod examples;
mod invoices;
mod lightning;
mod lightning_balance;
mod lightning_examples;
mod lnbits_funding;
mod pay;
mod paytaca;
mod schnorr;
mod shutdown;
mod store;
mod wallets;
mod webhooks;
mod ws;
mod xpub;
