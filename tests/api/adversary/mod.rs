//! The attacks an adversary tries in an afternoon, each as a test: the refusal, and that nothing
//! changed (balances, invoice states, events). Every test runs on SQLite and PostgreSQL.

mod impostor;
mod lightning;
mod limits;
mod refusals;
mod tenancy;
