//! The service layer: the types that hold a store, a node or a funding source, between the
//! pure domain folders (`chain`, `jpp`, `lightning`) and `http`.
//!
//! Each operation reads and writes through the store, and appends its event with the change
//! in one transaction (`notify::append`); the store wakes the dispatcher after the commit.
//! Handlers call these types and nothing below them.

mod dev_chain;
mod invoices;
mod node;
mod payments;
mod reconcile;
mod wallets;
mod watcher;
pub mod webhooks;

pub use dev_chain::{DevChain, FaucetError, RehearsalError, MAX_REORG_DEPTH};
pub use invoices::{AddressRules, Invoices};
pub use node::NodeClient;
pub use payments::Payments;
pub use wallets::Lightning;
pub use watcher::{WatchError, Watcher};
pub use webhooks::Webhooks;

use crate::jpp::pay::PayError;
use crate::jpp::InvoiceError;
use crate::lightning::LnError;
use crate::store::StoreError;

// The domain errors carry a storage failure as an opaque cause, so that the domain folders
// need not know the store: the conversions live here, where both meet.
impl From<StoreError> for PayError {
    fn from(e: StoreError) -> Self {
        PayError::Storage(Box::new(e))
    }
}

impl From<StoreError> for InvoiceError {
    fn from(e: StoreError) -> Self {
        InvoiceError::Storage(Box::new(e))
    }
}

impl From<StoreError> for LnError {
    fn from(e: StoreError) -> Self {
        match e {
            // An amount a balance cannot hold is refused (nothing was written), not a failure.
            StoreError::OutOfRange(why) => LnError::Invalid(why),
            e => LnError::Storage(Box::new(e)),
        }
    }
}
