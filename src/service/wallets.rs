//! Lightning wallet operations over one store and one funding source. Every change of a
//! payment's state, its wallet's balance and its socket event are written in one transaction;
//! a wallet is debited only inside the transaction that checked its balance, under the
//! wallet's row lock, so concurrent payments cannot overdraw it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::auth::key_hash;
use crate::lightning::funding::{
    Funding, FundingSource, FundingStatus, InvoiceRequest, Outcome, Settled,
};
use crate::lightning::{
    decode, is_issued, sats_to_msat, BalanceCheck, LnError, LnPayment, NewInvoice, PayStatus,
    Wallet,
};
use crate::notify::{self, Event};
use crate::store::{lightning as db, Conn, Store, StoreError};
use crate::supervisor::Stopping;
use crate::units::now_ms;

fn random_hex<const N: usize>() -> String {
    hex::encode(rand::random::<[u8; N]>())
}

/// The Lightning wallets.
#[derive(Debug, Clone)]
pub struct Lightning {
    store: Store,
    funding: Arc<Funding>,
}

impl Lightning {
    pub fn new(store: Store, funding: Funding) -> Lightning {
        Lightning {
            store,
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

    /// Every wallet with its balance in msat.
    pub async fn wallets(&self) -> Result<Vec<(Wallet, i64)>, LnError> {
        Ok(self.store.read(db::list_wallets).await?)
    }

    /// The wallet's balance in msat: one row read, however long its history.
    pub async fn balance_msat(&self, wallet_id: &str) -> Result<i64, LnError> {
        let id = wallet_id.to_owned();
        self.store
            .read(move |c| db::balance_msat(c, &id))
            .await?
            .ok_or(LnError::WalletNotFound)
    }

    /// Each wallet's (or `only` that one's) kept balance beside the sum of its payment rows.
    /// With `repair`, every kept balance is set to its sum, all in one transaction, and the
    /// answer says what each was before.
    pub async fn check_balances(
        &self,
        only: Option<&str>,
        repair: bool,
    ) -> Result<Vec<BalanceCheck>, LnError> {
        let only = only.map(str::to_owned);
        Ok(if repair {
            self.store
                .write(move |c| db::repair_balances(c, only.as_deref()))
                .await?
        } else {
            self.store
                .read(move |c| db::check_balances(c, only.as_deref()))
                .await?
        })
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
            webhook_status: None,
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
        Ok(payment)
    }

    /// A new invoice from the funding source, recorded as a pending incoming payment.
    pub async fn create_invoice(
        &self,
        wallet: &Wallet,
        new: NewInvoice,
    ) -> Result<LnPayment, LnError> {
        let expiry = new.checked_expiry()?;
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
            webhook_status: None,
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
        // refusal comes before the first write (the locks write nothing), or, for a credit a
        // balance cannot hold, is an error that rolls the write back: a refused payment
        // changes nothing.
        let (outgoing, internal) = self
            .store
            .write(move |c| {
                // Read before the locks, to know which wallet an internal payment credits; its
                // state is checked again by the conditional settle below.
                let payee = db::incoming_by_hash(c, &hash)?;
                let Some(before) = lock_wallets(c, &wallet_id, payee.as_ref())? else {
                    return Ok(Err(LnError::WalletNotFound));
                };
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
                    // A zero amount is no payment (LNbits: "not supported"), and must not
                    // reach the funding source as one.
                    None if asked == 0 => {
                        return Ok(Err(LnError::Invalid(
                            "Amountless invoices not supported.".into(),
                        )))
                    }
                    None => asked,
                };
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
                    webhook_status: None,
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
                // concurrency all the same. Settling credits the payee, the insert below
                // debits the payer: both balances move in this transaction.
                if !db::settle(c, &incoming.checking_id, None, now)? {
                    return Ok(Err(LnError::AlreadyPaid));
                }
                db::insert_payment(c, &out)?;
                if incoming.wallet_id == out.wallet_id {
                    // Paying itself: both rows move the one balance.
                    announce(c, &out, now)?;
                } else {
                    // The balance was read under the lock a moment ago: no second read.
                    notify::append(c, &Event::wallet_payment(&out, before - amount), now)?;
                }
                incoming.status = PayStatus::Success;
                incoming.updated_ms = now;
                announce(c, &incoming, now)?;
                Ok(Ok((out, true)))
            })
            .await??;
        if internal {
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
                let Some(wallet_id) = db::wallet_of_payment(c, &id)? else {
                    return Ok(None);
                };
                // The wallet's lock before the payment's row, as every writer takes them.
                db::lock_wallet(c, &wallet_id)?;
                let changed = db::settle(c, &id, settled.preimage.as_deref(), now)?;
                let payment = db::payment_any(c, &id)?;
                if let (true, Some(p)) = (changed, &payment) {
                    announce(c, p, now)?;
                }
                Ok(payment)
            })
            .await?
            .ok_or(LnError::PaymentNotFound)?;
        Ok(payment)
    }

    async fn fail(&self, checking_id: &str) -> Result<(), LnError> {
        let id = checking_id.to_owned();
        let now = now_ms();
        self.store
            .write(move |c| {
                if let Some(wallet_id) = db::wallet_of_payment(c, &id)? {
                    // The wallet's lock before the payment's row, as every writer takes them.
                    db::lock_wallet(c, &wallet_id)?;
                    db::fail(c, &id, now)?;
                }
                Ok(())
            })
            .await?;
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

    /// Whether the funding source answers, and its balance (what it says when it does not).
    pub async fn funding_status(&self) -> FundingStatus {
        self.funding.status().await
    }

    /// Settles incoming payments the funding source reports, each re-checked first, until
    /// `stopping` (or until the source's stream ends: then the supervisor starts it again).
    pub async fn listen_for_paid_invoices(self, mut stopping: Stopping) -> Result<(), String> {
        let mut paid = self.funding.paid_invoices_stream();
        loop {
            let checking_id = tokio::select! {
                next = paid.recv() => match next {
                    Some(id) => id,
                    None => return Err("the funding source's stream of paid invoices ended".into()),
                },
                _ = stopping.stopped() => return Ok(()),
            };
            if let Outcome::Success(settled) = self.funding.get_invoice_status(&checking_id).await {
                if let Err(e) = self.settle(&checking_id, settled).await {
                    tracing::warn!(checking_id, error = %e, "lightning: settling a paid invoice failed");
                }
            }
        }
    }
}

/// Locks the payer's wallet and, for an internal payment, the payee's, in the order of their
/// ids: two wallets paying each other at once then wait for one another instead of
/// deadlocking (PostgreSQL). Answers the payer's balance, `None` if there is no such wallet.
fn lock_wallets(
    c: &mut Conn,
    payer: &str,
    payee: Option<&LnPayment>,
) -> Result<Option<i64>, StoreError> {
    let payee = payee
        .map(|p| p.wallet_id.as_str())
        .filter(|&id| id != payer);
    let mut payer_balance = None;
    let mut ids = [Some(payer), payee];
    ids.sort_unstable();
    for id in ids.into_iter().flatten() {
        let balance = db::lock_wallet(c, id)?;
        if id == payer {
            payer_balance = balance;
        }
    }
    Ok(payer_balance)
}

/// Appends the payment's socket event, with the wallet's balance after it (read in the
/// transaction that moved it).
fn announce(c: &mut Conn, payment: &LnPayment, now_ms: i64) -> Result<(), StoreError> {
    let balance = db::balance_msat(c, &payment.wallet_id)?
        .ok_or_else(|| StoreError::Corrupt(format!("wallet {} vanished", payment.wallet_id)))?;
    notify::append(c, &Event::wallet_payment(payment, balance), now_ms)
}
