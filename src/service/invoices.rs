//! What the merchant API does with invoices: create, read, list, cancel, and the expiry
//! sweep. Each state change and its event are written in one transaction.

use crate::chain::hd::AccountKey;
use crate::chain::Network;
use crate::jpp::receiving::{pick_index, Holder, Pick};
use crate::jpp::InvoiceOutput;
use crate::jpp::{
    parse_create_request, CreateLimits, Invoice, InvoiceError, InvoiceId, InvoiceStatus,
    InvoiceView,
};
use crate::notify::{self, Event};
use crate::store::{invoices, Conn, InvoicePage, ListFilter, Store, StoreError};
use crate::units::now_ms;

/// Invoice operations over one store, on one network, under one public URL.
#[derive(Debug, Clone)]
pub struct Invoices {
    store: Store,
    network: Network,
    public_url: String,
    limits: CreateLimits,
    /// Confirmations an invoice waits for when neither it nor its store says (`--confirmations`).
    confirmations: u32,
    /// How xpub addresses are handed out (`--gap-limit`, `--address-reuse-after`).
    addresses: AddressRules,
}

/// How a store's xpub addresses are handed out.
#[derive(Debug, Clone, Copy)]
pub struct AddressRules {
    pub gap_limit: u32,
    /// How long after an invoice expired unpaid its address may serve another.
    pub reuse_after_ms: i64,
}

impl Invoices {
    pub fn new(
        store: Store,
        network: Network,
        public_url: String,
        default_expires_in_secs: u32,
        confirmations: u32,
        addresses: AddressRules,
    ) -> Self {
        Invoices {
            store,
            network,
            public_url,
            confirmations,
            addresses,
            limits: CreateLimits {
                network,
                default_expires_in_secs,
                default_fee_per_kb: 1000,
                token_aware_addresses: true,
            },
        }
    }

    pub fn network(&self) -> Network {
        self.network
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The rules create requests are checked by.
    pub fn limits(&self) -> CreateLimits {
        self.limits
    }

    pub fn view<'a>(&self, invoice: &'a Invoice, now_ms: i64) -> InvoiceView<'a> {
        InvoiceView::new(invoice, self.network, &self.public_url, now_ms)
    }

    /// Validates the body and stores the invoice for `store_id` (made with `api_key_id`, or
    /// keyless); nothing is written when the body is wrong.
    pub async fn create(
        &self,
        body: &serde_json::Value,
        store_id: i64,
        api_key_id: Option<i64>,
    ) -> Result<Invoice, InvoiceError> {
        let new = parse_create_request(body, &self.limits).map_err(InvoiceError::Invalid)?;
        let asked = new.confirmations;
        let to_next_address = new.to_next_address;
        let (network, rules) = (self.network, self.addresses);
        let invoice = Invoice::new(
            InvoiceId::random(),
            new,
            store_id,
            self.confirmations,
            now_ms(),
        );
        // The request's count, else the store's (read in the same transaction), else the
        // server's.
        let made = self
            .store
            .write(move |c| {
                let mut invoice = invoice.clone();
                if asked.is_none() {
                    if let Some(n) = invoices::store_confirmations(c, store_id)? {
                        invoice.confirmations_required = n;
                    }
                }
                if let Some(amount) = to_next_address {
                    if let Err(refused) = give_address(c, &mut invoice, amount, network, rules)? {
                        return Ok(Err(refused));
                    }
                }
                invoices::insert(c, &invoice, api_key_id)?;
                Ok(Ok(invoice))
            })
            .await?;
        made
    }

    /// Reads an invoice. An open invoice found past its expiry is recorded as expired (with its
    /// event) the first time anyone looks.
    pub async fn get(&self, id: InvoiceId) -> Result<Invoice, InvoiceError> {
        let now = now_ms();
        let invoice = self
            .store
            .read(move |c| invoices::get(c, id))
            .await?
            .ok_or(InvoiceError::NotFound)?;
        if invoice.status_at(now) == InvoiceStatus::Expired && invoice.status == InvoiceStatus::Open
        {
            return self
                .transition(id, None, InvoiceStatus::Expired, now)
                .await
                .map(|(inv, _)| inv);
        }
        Ok(invoice)
    }

    pub async fn list(&self, filter: ListFilter) -> Result<InvoicePage, InvoiceError> {
        let now = now_ms();
        Ok(self
            .store
            .read(move |c| invoices::list(c, &filter, now))
            .await?)
    }

    /// Records every open invoice whose time is up as expired, each with its event (once, even
    /// with several processes sweeping: the UPDATE is conditional). Returns how many moved.
    pub async fn sweep_expired(&self) -> Result<usize, InvoiceError> {
        let now = now_ms();
        let overdue = self
            .store
            .read(move |c| invoices::overdue(c, now, 500))
            .await?;
        let mut moved = 0;
        for id in overdue {
            if let (_, true) = self
                .transition(id, None, InvoiceStatus::Expired, now)
                .await?
            {
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Cancels an open invoice of `store_id` (another store's is not found); cancelling a
    /// cancelled one again is a no-op.
    pub async fn cancel(&self, id: InvoiceId, store_id: i64) -> Result<Invoice, InvoiceError> {
        let (invoice, _) = self
            .transition(id, Some(store_id), InvoiceStatus::Cancelled, now_ms())
            .await?;
        match invoice.status_at(now_ms()) {
            InvoiceStatus::Cancelled => Ok(invoice),
            other => Err(InvoiceError::NotOpen(other)),
        }
    }

    async fn transition(
        &self,
        id: InvoiceId,
        store_id: Option<i64>,
        to: InvoiceStatus,
        now: i64,
    ) -> Result<(Invoice, bool), InvoiceError> {
        let (network, public_url) = (self.network, self.public_url.clone());
        let result = self
            .store
            .write(move |c| {
                let moved = invoices::transition(c, id, store_id, to, now)?;
                if let Some((invoice, true)) = &moved {
                    let view = InvoiceView::new(invoice, network, &public_url, now);
                    notify::append(c, &Event::invoice_closed(invoice, view), now)?;
                }
                Ok(moved)
            })
            .await?;
        result.ok_or(InvoiceError::NotFound)
    }
}

/// Gives `invoice` one output of `amount` sats to a receiving address of its store's xpub
/// (see `jpp::receiving`), taking the index in the same transaction.
fn give_address(
    c: &mut Conn,
    invoice: &mut Invoice,
    amount: u64,
    network: Network,
    rules: AddressRules,
) -> Result<Result<(), InvoiceError>, StoreError> {
    // Another process may take the next index between the read and the conditional UPDATE;
    // each statement sees what committed before it, so reading again finds the one after.
    let mut attempts = 0;
    let (key, index) = loop {
        let Some((xpub, next)) = invoices::store_xpub(c, invoice.store_id)? else {
            return Ok(Err(InvoiceError::NoXpub));
        };
        let key = AccountKey::parse(&xpub, network)
            .map_err(|e| StoreError::Corrupt(format!("store {}'s xpub: {e}", invoice.store_id)))?;
        let last_used = invoices::last_used_index(c, invoice.store_id)?;
        let holders = invoices::indexes_above(c, invoice.store_id, last_used)?
            .into_iter()
            .filter_map(|(index, status, expires_ms, paid)| {
                Some(Holder {
                    index: u32::try_from(index).ok()?,
                    status: InvoiceStatus::parse(&status)?,
                    expires_ms,
                    amount_paid: paid.and_then(|p| u64::try_from(p).ok()),
                })
            })
            .collect::<Vec<_>>();
        let next = u32::try_from(next).unwrap_or(u32::MAX);
        match pick_index(
            last_used,
            next,
            rules.gap_limit,
            &holders,
            invoice.created_ms,
            rules.reuse_after_ms,
        ) {
            Some(Pick::Next(index)) => {
                if invoices::take_index(c, invoice.store_id, i64::from(index))? {
                    break (key, index);
                }
                attempts += 1;
                if attempts >= 3 {
                    return Err(StoreError::Conflict(
                        "the store's next address kept being taken".into(),
                    ));
                }
            }
            Some(Pick::Reuse(index)) => break (key, index),
            None => {
                return Ok(Err(InvoiceError::GapLimit {
                    gap_limit: rules.gap_limit,
                }))
            }
        }
    };
    let address = key
        .receive_address(index)
        .map_err(|e| StoreError::Corrupt(format!("receiving address {index}: {e}")))?;
    invoice.outputs = vec![InvoiceOutput {
        address,
        amount,
        description: None,
        token: None,
    }];
    invoice.address_index = Some(index);
    Ok(Ok(()))
}
