//! The checkout page a payer's browser gets from the payment URL (`Accept: text/html`).
//! (Placeholder: the page is being written.)

use super::InvoiceView;

/// The whole page, self-contained: no external scripts, styles or fonts.
pub fn page(view: &InvoiceView<'_>) -> String {
    format!(
        "<!doctype html><title>Invoice {}</title><p>{}</p>",
        view.payment_id, view.payment_uri
    )
}
