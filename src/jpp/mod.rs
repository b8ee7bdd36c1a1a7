//! BCH invoices over the JSON Payment Protocol family: the invoice model and its states, the
//! create request and its validation, and the JSON views wallets and merchants read.
//!
//! Pure domain code: it imports no layer above the domain and no framework; the list is
//! enforced by `scripts/check-layers`. The stateful halves live in `service`.

pub mod bip70;
pub mod bitpay;
mod create;
pub mod direct;
mod invoice;
pub mod pay;
pub mod receiving;
pub mod signing;
mod view;

pub use create::{parse_create_request, CreateLimits, FieldError, MAX_CONFIRMATIONS};
pub use invoice::{
    ChainStanding, DoubleSpendPolicy, InvalidReason, Invoice, InvoiceError, InvoiceId,
    InvoiceOutput, InvoiceStatus, NewInvoice, Payment, Via,
};
pub use view::{payment_uri, InvoiceView, OutputView};
