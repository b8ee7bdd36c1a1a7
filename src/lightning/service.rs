//! Wallet operations over one store and one funding source. Every change of a payment's state
//! and its socket event are written in one transaction; a wallet is debited only inside the
//! transaction that checked its balance, so concurrent payments cannot overdraw it.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::hashes::Hash;
use lightning_invoice::SignedRawBolt11Invoice;
use serde_json::{json, Value};

use super::funding::{Funding, FundingSource, InvoiceRequest, Outcome, Settled};
use super::{payment_event, LnPayment, PayStatus, Wallet};
use crate::auth::key_hash;
use crate::notify::Dispatcher;
use crate::store::{events, lightning as db, Conn, Store, StoreError};
use crate::units::now_ms;

/// Largest invoice, in sats (LNbits' default limit).
const MAX_INVOICE_SATS: u64 = 10_000_000;
/// Longest memo (LNbits' limit).
const MAX_MEMO: usize = 640;
const DEFAULT_EXPIRY_SECS: u64 = 3600;
const MAX_EXPIRY_SECS: u64 = 30 * 24 * 3600;

/// Why a wallet operation was refused. The texts are LNbits' where clients match on them.
#[derive(Debug, thiserror::Error)]
pub enum LnError {
    #[error("Wallet not found.")]
    WalletNotFound,
    #[error("Payment does not exist.")]
    PaymentNotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("Invoice (or Admin) key required.")]
    AdminKeyRequired,
    /// Definite failures of a payment: LNbits answers these with 520 and `status: failed`.
    #[error("Insufficient balance.")]
    InsufficientBalance,
    #[error("Internal invoice already paid.")]
    AlreadyPaid,
    #[error("This invoice was already paid, or is being paid, from this server.")]
    PaidBefore,
    /// The invoice names the payment hash of an invoice a wallet here issued, but is not that
    /// invoice (another amount, payee or description): paying it would settle ours.
    #[error("Invoice does not match the one issued for this payment hash.")]
    NotIssued,
    #[error("Invoice expired.")]
    Expired,
    #[error("Payment failed: {0}")]
    PaymentFailed(String),
    #[error("{0}")]
    Funding(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An invoice a wallet asks for.
#[derive(Debug, Clone, Default)]
pub struct NewInvoice {
    pub amount_sats: u64,
    pub memo: Option<String>,
    pub expiry_secs: Option<u64>,
    pub description_hash: Option<[u8; 32]>,
    pub extra: Option<Value>,
    pub webhook: Option<String>,
}

/// The Lightning wallets.
#[derive(Debug, Clone)]
pub struct Lightning {
    store: Store,
    dispatcher: Dispatcher,
    funding: Arc<Funding>,
}

fn random_hex<const N: usize>() -> String {
    hex::encode(rand::random::<[u8; N]>())
}

impl Lightning {
    pub fn new(store: Store, dispatcher: Dispatcher, funding: Funding) -> Lightning {
        Lightning {
            store,
            dispatcher,
            funding: Arc::new(funding),
        }
    }

    /// A new wallet and its invoice and admin keys (shown this once).
    pub async fn create_wallet(&self, name: &str) -> Result<(Wallet, String, String), LnError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(LnError::Invalid("name must be 1 to 100 characters".into()));
        }
        let wallet = Wallet {
            id: random_hex::<16>(),
            name: name.to_owned(),
            created_ms: now_ms(),
        };
        let (inkey, adminkey) = (random_hex::<16>(), random_hex::<16>());
        let (w, i, a) = (wallet.clone(), key_hash(&inkey), key_hash(&adminkey));
        self.store
            .write(move |c| db::insert_wallet(c, &w, &i, &a))
            .await?;
        Ok((wallet, inkey, adminkey))
    }

    /// The wallet a key opens, and whether the key is its admin key.
    pub async fn wallet_for_key(&self, key: &str) -> Result<(Wallet, bool), LnError> {
        let hash = key_hash(key);
        self.store
            .read(move |c| db::wallet_by_key(c, &hash))
            .await?
            .ok_or(LnError::WalletNotFound)
    }

    /// The wallet a socket names: by id, invoice key or admin key.
    pub async fn wallet_for_socket(&self, name: &str) -> Result<Option<Wallet>, LnError> {
        let (id, hash) = (name.to_owned(), key_hash(name));
        Ok(self
            .store
            .read(move |c| match db::wallet_by_id(c, &id)? {
                Some(w) => Ok(Some(w)),
                None => Ok(db::wallet_by_key(c, &hash)?.map(|(w, _)| w)),
            })
            .await?)
    }

    pub async fn wallets(&self) -> Result<Vec<(Wallet, i64)>, LnError> {
        Ok(self
            .store
            .read(|c| {
                db::list_wallets(c)?
                    .into_iter()
                    .map(|w| {
                        let balance = db::balance_msat(c, &w.id)?;
                        Ok((w, balance))
                    })
                    .collect()
            })
            .await?)
    }

    pub async fn balance_msat(&self, wallet_id: &str) -> Result<i64, LnError> {
        let id = wallet_id.to_owned();
        Ok(self.store.read(move |c| db::balance_msat(c, &id)).await?)
    }

    /// Credits a wallet, as an ordinary incoming payment with the memo "Admin credit".
    pub async fn top_up(&self, wallet_id: &str, sats: u64) -> Result<LnPayment, LnError> {
        let msat = sats_to_msat(sats)?;
        let now = now_ms();
        let payment = LnPayment {
            checking_id: format!("topup_{}", random_hex::<16>()),
            payment_hash: random_hex::<32>(),
            wallet_id: wallet_id.to_owned(),
            amount_msat: msat,
            fee_msat: 0,
            bolt11: String::new(),
            memo: Some("Admin credit".into()),
            status: PayStatus::Success,
            preimage: None,
            expiry_ms: None,
            extra: json!({}),
            webhook: None,
            created_ms: now,
            updated_ms: now,
        };
        let p = payment.clone();
        let found = self
            .store
            .write(move |c| {
                if db::wallet_by_id(c, &p.wallet_id)?.is_none() {
                    return Ok(false);
                }
                db::insert_payment(c, &p)?;
                announce(c, &p, now)?;
                Ok(true)
            })
            .await?;
        if !found {
            return Err(LnError::WalletNotFound);
        }
        self.dispatcher.wake();
        Ok(payment)
    }

    /// A new invoice from the funding source, recorded as a pending incoming payment.
    pub async fn create_invoice(
        &self,
        wallet: &Wallet,
        new: NewInvoice,
    ) -> Result<LnPayment, LnError> {
        if new.amount_sats == 0 {
            return Err(LnError::Invalid(
                "Amountless invoices not supported.".into(),
            ));
        }
        if new.amount_sats > MAX_INVOICE_SATS {
            return Err(LnError::Invalid(format!(
                "Invoice amount {} sats is above the limit of {MAX_INVOICE_SATS}.",
                new.amount_sats
            )));
        }
        if new.memo.as_ref().is_some_and(|m| m.len() > MAX_MEMO) {
            return Err(LnError::Invalid(format!(
                "memo is longer than {MAX_MEMO} characters."
            )));
        }
        let expiry = new.expiry_secs.unwrap_or(DEFAULT_EXPIRY_SECS);
        if expiry == 0 || expiry > MAX_EXPIRY_SECS {
            return Err(LnError::Invalid(format!(
                "expiry must be 1 to {MAX_EXPIRY_SECS} seconds."
            )));
        }
        let issued = self
            .funding
            .create_invoice(&InvoiceRequest {
                amount_msat: new.amount_sats * 1000,
                memo: new.memo.clone(),
                description_hash: new.description_hash,
                expiry: Duration::from_secs(expiry),
            })
            .await
            .map_err(LnError::Funding)?;
        let now = now_ms();
        let payment = LnPayment {
            checking_id: issued.checking_id,
            payment_hash: issued.payment_hash,
            wallet_id: wallet.id.clone(),
            amount_msat: sats_to_msat(new.amount_sats)?,
            fee_msat: 0,
            bolt11: issued.bolt11,
            memo: new.memo,
            status: PayStatus::Pending,
            preimage: issued.preimage,
            expiry_ms: Some(now + (expiry as i64) * 1000),
            extra: new.extra.unwrap_or_else(|| json!({})),
            webhook: new.webhook,
            created_ms: now,
            updated_ms: now,
        };
        let p = payment.clone();
        self.store.write(move |c| db::insert_payment(c, &p)).await?;
        Ok(payment)
    }

    /// Pays `bolt11` from `wallet` (its admin key was shown). An invoice of a wallet here is
    /// settled for both sides in one transaction; any other goes to the funding source.
    pub async fn pay(&self, wallet: &Wallet, bolt11: &str) -> Result<LnPayment, LnError> {
        let invoice = decode(bolt11)?;
        let msat = invoice
            .amount_msat
            .ok_or_else(|| LnError::Invalid("Amountless invoices not supported.".into()))?;
        if invoice.is_expired(now_ms()) {
            return Err(LnError::Expired);
        }
        let asked = i64::try_from(msat).map_err(|_| LnError::Invalid("amount too large".into()))?;
        let (hash, wallet_id) = (invoice.payment_hash.clone(), wallet.id.clone());
        let bolt11 = bolt11.trim().to_owned();
        let now = now_ms();
        // Whether the invoice is one of this server's is read inside the transaction that
        // pays it: no second look, and no window between the look and the payment. Every
        // refusal comes before the first write, so a refused payment changes nothing.
        let (outgoing, internal) = self
            .store
            .write(move |c| {
                if !db::lock_wallet(c, &wallet_id)? {
                    return Ok(Err(LnError::WalletNotFound));
                }
                let payee = db::incoming_by_hash(c, &hash)?;
                // A hash of ours is settled here or not at all: never sent out through the
                // funding source, and only for the invoice we issued, at the amount we stored.
                let amount = match &payee {
                    Some(issued) => {
                        if !is_issued(issued, &bolt11, &invoice) {
                            return Ok(Err(LnError::NotIssued));
                        }
                        if issued.status != PayStatus::Pending {
                            return Ok(Err(LnError::AlreadyPaid));
                        }
                        if issued.expiry_ms.is_some_and(|end| now >= end) {
                            return Ok(Err(LnError::Expired));
                        }
                        issued.amount_msat
                    }
                    None => asked,
                };
                let before = db::balance_msat(c, &wallet_id)?;
                if before < amount {
                    return Ok(Err(LnError::InsufficientBalance));
                }
                let out = LnPayment {
                    checking_id: match &payee {
                        Some(_) => format!("internal_{hash}"),
                        None => hash.clone(),
                    },
                    payment_hash: hash.clone(),
                    wallet_id: wallet_id.clone(),
                    amount_msat: -amount,
                    fee_msat: 0,
                    bolt11: bolt11.clone(),
                    memo: payee
                        .as_ref()
                        .and_then(|p| p.memo.clone())
                        .or_else(|| invoice.description.clone()),
                    status: match &payee {
                        Some(_) => PayStatus::Success,
                        None => PayStatus::Pending,
                    },
                    preimage: payee.as_ref().and_then(|p| p.preimage.clone()),
                    expiry_ms: None,
                    extra: json!({}),
                    webhook: None,
                    created_ms: now,
                    updated_ms: now,
                };
                let Some(mut incoming) = payee else {
                    // An invoice is paid once, by whichever wallet asks first; after a failed
                    // attempt it may be tried again (the failed row made way for the new one).
                    match db::payment_any(c, &out.checking_id)? {
                        Some(p) if p.status != PayStatus::Failed => {
                            return Ok(Err(LnError::PaidBefore))
                        }
                        Some(_) => db::delete_failed(c, &out.checking_id)?,
                        None => {}
                    }
                    db::insert_payment(c, &out)?;
                    return Ok(Ok((out, false)));
                };
                // Checked pending above; the condition makes "paid once" hold under any
                // concurrency all the same.
                if !db::settle(c, &incoming.checking_id, None, now)? {
                    return Ok(Err(LnError::AlreadyPaid));
                }
                db::insert_payment(c, &out)?;
                if incoming.wallet_id == out.wallet_id {
                    // Paying itself: both rows move the one balance.
                    announce(c, &out, now)?;
                } else {
                    // The balance was read under the lock a moment ago: no second sum.
                    events::insert(c, &payment_event(&out, before - amount), now)?;
                }
                incoming.status = PayStatus::Success;
                incoming.updated_ms = now;
                announce(c, &incoming, now)?;
                Ok(Ok((out, true)))
            })
            .await??;
        if internal {
            self.dispatcher.wake();
            return Ok(outgoing);
        }
        // The debit is recorded (pending); now the funding source pays.
        match self.funding.pay_invoice(&outgoing.bolt11, 0).await {
            Outcome::Success(settled) => self.settle(&outgoing.checking_id, settled).await,
            Outcome::Failed(reason) => {
                self.fail(&outgoing.checking_id).await?;
                Err(LnError::PaymentFailed(reason))
            }
            Outcome::Pending => Ok(outgoing),
        }
    }

    /// Marks a pending payment settled and announces it (once, whoever gets here first).
    pub async fn settle(&self, checking_id: &str, settled: Settled) -> Result<LnPayment, LnError> {
        let id = checking_id.to_owned();
        let now = now_ms();
        let payment = self
            .store
            .write(move |c| {
                let changed = db::settle(c, &id, settled.preimage.as_deref(), now)?;
                let payment = db::payment_any(c, &id)?;
                if let (true, Some(p)) = (changed, &payment) {
                    announce(c, p, now)?;
                }
                Ok(payment)
            })
            .await?
            .ok_or(LnError::PaymentNotFound)?;
        self.dispatcher.wake();
        Ok(payment)
    }

    async fn fail(&self, checking_id: &str) -> Result<(), LnError> {
        let id = checking_id.to_owned();
        let now = now_ms();
        self.store.write(move |c| db::fail(c, &id, now)).await?;
        Ok(())
    }

    /// A wallet's payment by checking id or hash. A pending incoming invoice is checked with
    /// the funding source first, and settled (with its event) if it was paid.
    pub async fn payment(&self, wallet: Option<&Wallet>, id: &str) -> Result<LnPayment, LnError> {
        let (wallet_id, key) = (wallet.map(|w| w.id.clone()), id.to_owned());
        let found = self
            .store
            .read(move |c| match &wallet_id {
                Some(w) => db::payment_of_wallet(c, w, &key),
                None => db::payment_any(c, &key),
            })
            .await?
            .ok_or(LnError::PaymentNotFound)?;
        if found.status == PayStatus::Pending && found.amount_msat > 0 {
            if let Outcome::Success(settled) =
                self.funding.get_invoice_status(&found.checking_id).await
            {
                return self.settle(&found.checking_id, settled).await;
            }
        }
        Ok(found)
    }

    pub async fn payments(
        &self,
        wallet: &Wallet,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<LnPayment>, LnError> {
        let id = wallet.id.clone();
        Ok(self
            .store
            .read(move |c| db::list_payments(c, &id, limit, offset))
            .await?)
    }

    /// Settles incoming payments the funding source reports, each re-checked first.
    pub async fn listen_for_paid_invoices(self) {
        let mut paid = self.funding.paid_invoices_stream();
        while let Some(checking_id) = paid.recv().await {
            if let Outcome::Success(settled) = self.funding.get_invoice_status(&checking_id).await {
                if let Err(e) = self.settle(&checking_id, settled).await {
                    tracing::warn!(checking_id, error = %e, "lightning: settling a paid invoice failed");
                }
            }
        }
    }
}

/// Writes the payment's socket event, with the wallet's balance after it.
fn announce(c: &mut Conn, payment: &LnPayment, now_ms: i64) -> Result<(), StoreError> {
    let balance = db::balance_msat(c, &payment.wallet_id)?;
    events::insert(c, &payment_event(payment, balance), now_ms)
}

fn sats_to_msat(sats: u64) -> Result<i64, LnError> {
    sats.checked_mul(1000)
        .and_then(|m| i64::try_from(m).ok())
        .ok_or_else(|| LnError::Invalid("amount too large".into()))
}

/// The parts of a BOLT11 invoice this server uses. Read from the signed raw form, so that an
/// invoice without a features field (LNbits' FakeWallet writes those) is read too; its
/// signature is still checked.
#[derive(Debug, Clone)]
pub struct Bolt11 {
    pub payment_hash: String,
    pub amount_msat: Option<u64>,
    pub description: Option<String>,
    pub description_hash: Option<String>,
    pub payee: String,
    /// Unix seconds.
    pub timestamp: u64,
    pub expiry_secs: u64,
    pub secret: Option<String>,
    pub min_final_cltv_expiry: u64,
}

impl Bolt11 {
    pub fn is_expired(&self, now_ms: i64) -> bool {
        let ends = self.timestamp.saturating_add(self.expiry_secs);
        u64::try_from(now_ms / 1000).is_ok_and(|now| now >= ends)
    }
}

/// Whether `submitted` (decoded: `invoice`) is the invoice `issued` stands for. The hash alone
/// proves nothing: anyone can sign an invoice with a hash they have seen. So it must be the
/// very string we issued, or one the same payee signed for the same hash, amount and
/// description (a re-encoding of it); the stored expiry and amount apply either way.
fn is_issued(issued: &LnPayment, submitted: &str, invoice: &Bolt11) -> bool {
    if bare(&issued.bolt11).eq_ignore_ascii_case(bare(submitted)) {
        return true;
    }
    // A top-up has no invoice: nothing can match it.
    let Ok(ours) = decode(&issued.bolt11) else {
        return false;
    };
    ours.payee == invoice.payee
        && ours.payment_hash == invoice.payment_hash
        && ours.amount_msat == invoice.amount_msat
        && u64::try_from(issued.amount_msat).ok() == invoice.amount_msat
        && ours.description_hash == invoice.description_hash
        && ours.description == invoice.description
}

/// The invoice text without blanks around it or its `lightning:` prefix (in any case).
fn bare(bolt11: &str) -> &str {
    let text = bolt11.trim();
    match text.get(..10) {
        Some(prefix) if prefix.eq_ignore_ascii_case("lightning:") => &text[10..],
        _ => text,
    }
}

/// Parses a BOLT11 invoice, with or without its `lightning:` prefix.
pub fn decode(bolt11: &str) -> Result<Bolt11, LnError> {
    let text = bare(bolt11);
    let invalid = |why: String| LnError::Invalid(format!("Invalid BOLT11 invoice: {why}"));
    let signed = SignedRawBolt11Invoice::from_str(text).map_err(|e| invalid(e.to_string()))?;
    if !signed.check_signature() {
        return Err(invalid("its signature does not verify".into()));
    }
    let payee = signed
        .recover_payee_pub_key()
        .map_err(|e| invalid(e.to_string()))?
        .0
        .to_string();
    let raw = signed.raw_invoice();
    let payment_hash = raw
        .payment_hash()
        .map(|h| hex::encode(h.0.as_byte_array()))
        .ok_or_else(|| invalid("it has no payment hash".into()))?;
    Ok(Bolt11 {
        payment_hash,
        // The amount is written in pico-BTC: ten per msat.
        amount_msat: raw.amount_pico_btc().map(|p| p / 10),
        description: raw.description().map(|d| d.to_string()),
        description_hash: raw
            .description_hash()
            .map(|h| hex::encode(h.0.as_byte_array())),
        payee,
        timestamp: raw.data.timestamp.as_unix_timestamp(),
        // BOLT11's defaults when the fields are absent.
        expiry_secs: raw.expiry_time().map_or(3600, |e| e.as_seconds()),
        secret: raw.payment_secret().map(|s| hex::encode(s.0)),
        min_final_cltv_expiry: raw.min_final_cltv_expiry_delta().map_or(18, |m| m.0),
    })
}

/// `POST /api/v1/payments/decode`: the invoice's fields, as LNbits names them.
pub fn decoded(bolt11: &str) -> Result<Value, LnError> {
    let invoice = decode(bolt11)?;
    Ok(json!({
        "payment_hash": invoice.payment_hash,
        "amount_msat": invoice.amount_msat,
        "description": invoice.description,
        "description_hash": invoice.description_hash,
        "payee": invoice.payee,
        "date": invoice.timestamp,
        "expiry": invoice.expiry_secs,
        "secret": invoice.secret,
        "min_final_cltv_expiry": invoice.min_final_cltv_expiry,
    }))
}
