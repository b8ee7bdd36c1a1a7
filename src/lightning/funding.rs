//! Funding sources: where a wallet's Lightning invoices come from and where its outgoing
//! payments go (seed `003_*.txt`). The six operations of LNbits' interface, each answer in three
//! states (success, failed, pending: anything ambiguous is pending, never failed).

use std::future::Future;
use std::time::Duration;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use rand::RngCore;

use super::lnbits::Lnbits;
use crate::outbound::Outbound;

/// What an invoice is made for.
#[derive(Debug, Clone)]
pub struct InvoiceRequest {
    pub amount_msat: u64,
    pub memo: Option<String>,
    /// When given, the invoice commits to this hash instead of carrying the memo.
    pub description_hash: Option<[u8; 32]>,
    pub expiry: Duration,
}

/// An invoice the funding source issued.
#[derive(Debug, Clone)]
pub struct IssuedInvoice {
    pub checking_id: String,
    pub payment_hash: String,
    pub bolt11: String,
    /// Known to sources that make the preimage themselves.
    pub preimage: Option<String>,
}

/// A settled payment's proof and cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub preimage: Option<String>,
    pub fee_msat: i64,
}

/// LNbits' three-state answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success(Settled),
    Failed(String),
    Pending,
}

/// The funding source's health and balance.
#[derive(Debug, Clone, PartialEq)]
pub struct FundingStatus {
    pub balance_msat: i64,
    pub error: Option<String>,
}

/// The interface every funding source implements.
pub trait FundingSource: Send + Sync {
    fn status(&self) -> impl Future<Output = FundingStatus> + Send;
    fn create_invoice(
        &self,
        request: &InvoiceRequest,
    ) -> impl Future<Output = Result<IssuedInvoice, String>> + Send;
    fn pay_invoice(
        &self,
        bolt11: &str,
        fee_limit_msat: u64,
    ) -> impl Future<Output = Outcome> + Send;
    /// An incoming invoice's state. By default pending: a source that cannot tell never says
    /// failed.
    fn get_invoice_status(&self, _checking_id: &str) -> impl Future<Output = Outcome> + Send {
        async { Outcome::Pending }
    }
    /// An outgoing payment's state; pending by default, as above.
    fn get_payment_status(&self, _checking_id: &str) -> impl Future<Output = Outcome> + Send {
        async { Outcome::Pending }
    }
    /// Checking ids of incoming invoices as they are paid. By default a stream that never
    /// yields, for sources that learn of payments only when asked.
    fn paid_invoices_stream(&self) -> tokio::sync::mpsc::Receiver<String> {
        silent_stream()
    }
}

/// Which funding source the server runs (`--funding-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FundingKind {
    /// Real BOLT11 invoices signed by a key derived from --fake-wallet-secret; only payments
    /// between wallets of this server settle.
    Fake,
    /// No Lightning at all: every invoice and payment is refused with the reason.
    Void,
    /// A wallet on a remote LNbits (or another Cashier), over its REST API and its socket
    /// (--lnbits-url, --lnbits-key).
    Lnbits,
}

/// The settings that choose and set up the funding source.
#[derive(Debug, Clone, Copy)]
pub struct FundingSettings<'a> {
    pub kind: FundingKind,
    pub fake_wallet_secret: &'a str,
    pub lnbits_url: Option<&'a str>,
    pub lnbits_key: Option<&'a str>,
    /// The TLS a remote source's calls use.
    pub outbound: &'a Outbound,
}

/// The funding source the server holds.
#[derive(Debug, Clone)]
pub enum Funding {
    Fake(Fake),
    Void(Void),
    Lnbits(Lnbits),
}

impl Funding {
    /// A source that needs no settings beyond the fake wallet's secret. `Lnbits` needs its URL
    /// and key ([`Funding::from_settings`]); asked for here, it is `Void`.
    pub fn new(kind: FundingKind, fake_secret: &str) -> Funding {
        match kind {
            FundingKind::Fake => Funding::Fake(Fake::new(fake_secret)),
            FundingKind::Void | FundingKind::Lnbits => Funding::Void(Void),
        }
    }

    /// The source the settings choose; a missing or malformed setting is an error that names
    /// it.
    pub fn from_settings(settings: FundingSettings<'_>) -> Result<Funding, String> {
        match settings.kind {
            FundingKind::Lnbits => {
                let url = settings.lnbits_url.ok_or(
                    "--funding-source lnbits needs --lnbits-url (CASHIER_LNBITS_URL), the \
                     remote LNbits' base URL",
                )?;
                let key = settings.lnbits_key.ok_or(
                    "--funding-source lnbits needs --lnbits-key (CASHIER_LNBITS_KEY), the \
                     remote wallet's admin key",
                )?;
                Ok(Funding::Lnbits(Lnbits::new(url, key, settings.outbound)?))
            }
            kind => Ok(Funding::new(kind, settings.fake_wallet_secret)),
        }
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Funding::Fake($s) => $e,
            Funding::Void($s) => $e,
            Funding::Lnbits($s) => $e,
        }
    };
}

impl FundingSource for Funding {
    async fn status(&self) -> FundingStatus {
        each!(self, s => s.status().await)
    }
    async fn create_invoice(&self, request: &InvoiceRequest) -> Result<IssuedInvoice, String> {
        each!(self, s => s.create_invoice(request).await)
    }
    async fn pay_invoice(&self, bolt11: &str, fee_limit_msat: u64) -> Outcome {
        each!(self, s => s.pay_invoice(bolt11, fee_limit_msat).await)
    }
    async fn get_invoice_status(&self, checking_id: &str) -> Outcome {
        each!(self, s => s.get_invoice_status(checking_id).await)
    }
    async fn get_payment_status(&self, checking_id: &str) -> Outcome {
        each!(self, s => s.get_payment_status(checking_id).await)
    }
    fn paid_invoices_stream(&self) -> tokio::sync::mpsc::Receiver<String> {
        each!(self, s => s.paid_invoices_stream())
    }
}

/// A stream that never yields: its sender lives as long as the receiver.
fn silent_stream() -> tokio::sync::mpsc::Receiver<String> {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move { sender.closed().await });
    receiver
}

/// The development funding source. Its invoices are real BOLT11 (any decoder reads them), but
/// no Lightning node stands behind them: they are paid only from another wallet here, which
/// settles inside the database.
#[derive(Clone)]
pub struct Fake {
    key: SecretKey,
}

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fake")
    }
}

const NO_ROUTE: &str = "Only internal invoices can be used!";

impl Fake {
    pub fn new(secret: &str) -> Fake {
        // A fixed derivation: the same secret signs with the same key after a restart.
        let mut digest =
            sha256::Hash::hash(format!("cashier fake funding source: {secret}").as_bytes());
        // A digest is a valid key unless it is zero or above the curve order (odds of about
        // 2^-128); then hash again, which keeps the derivation fixed and never panics.
        loop {
            if let Ok(key) = SecretKey::from_slice(digest.as_byte_array()) {
                return Fake { key };
            }
            digest = sha256::Hash::hash(digest.as_byte_array());
        }
    }
}

impl FundingSource for Fake {
    async fn status(&self) -> FundingStatus {
        FundingStatus {
            balance_msat: 0,
            error: None,
        }
    }

    async fn create_invoice(&self, request: &InvoiceRequest) -> Result<IssuedInvoice, String> {
        let mut preimage = [0u8; 32];
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut preimage);
        rand::rng().fill_bytes(&mut secret);
        let hash = sha256::Hash::hash(&preimage);
        let builder = InvoiceBuilder::new(Currency::Bitcoin)
            .amount_milli_satoshis(request.amount_msat)
            .payment_hash(hash)
            .payment_secret(PaymentSecret(secret))
            .current_timestamp()
            .min_final_cltv_expiry_delta(144)
            .expiry_time(request.expiry);
        let secp = Secp256k1::signing_only();
        let sign = |m: &bitcoin::secp256k1::Message| secp.sign_ecdsa_recoverable(m, &self.key);
        let invoice = match request.description_hash {
            Some(h) => builder
                .description_hash(sha256::Hash::from_byte_array(h))
                .build_signed(sign),
            None => builder
                .description(request.memo.clone().unwrap_or_default())
                .build_signed(sign),
        }
        .map_err(|e| format!("cannot make the invoice: {e}"))?;
        let hash = hex::encode(hash.as_byte_array());
        Ok(IssuedInvoice {
            checking_id: hash.clone(),
            payment_hash: hash,
            bolt11: invoice.to_string(),
            preimage: Some(hex::encode(preimage)),
        })
    }

    async fn pay_invoice(&self, _bolt11: &str, _fee_limit_msat: u64) -> Outcome {
        Outcome::Failed(NO_ROUTE.into())
    }

    // Its invoices are settled by internal payments, never from outside: the default
    // statuses (pending) and stream (silent) are the truth.
}

/// No funding source: every invoice and payment is refused with the reason.
#[derive(Debug, Clone)]
pub struct Void;

const VOID: &str =
    "This server has no Lightning funding source (start it with --funding-source fake)";

impl FundingSource for Void {
    async fn status(&self) -> FundingStatus {
        FundingStatus {
            balance_msat: 0,
            error: Some(VOID.into()),
        }
    }
    async fn create_invoice(&self, _request: &InvoiceRequest) -> Result<IssuedInvoice, String> {
        Err(VOID.into())
    }
    async fn pay_invoice(&self, _bolt11: &str, _fee_limit_msat: u64) -> Outcome {
        Outcome::Failed(VOID.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[tokio::test]
    async fn fake_invoices_are_real_bolt11_signed_by_the_secrets_key() {
        let fake = Fake::new("s3cret");
        let issued = fake
            .create_invoice(&InvoiceRequest {
                amount_msat: 21_000,
                memo: Some("coffee".into()),
                description_hash: None,
                expiry: Duration::from_secs(600),
            })
            .await
            .unwrap();
        let invoice = lightning_invoice::Bolt11Invoice::from_str(&issued.bolt11).unwrap();
        assert_eq!(invoice.amount_milli_satoshis(), Some(21_000));
        assert_eq!(
            hex::encode(invoice.payment_hash().as_byte_array()),
            issued.payment_hash
        );
        let preimage = hex::decode(issued.preimage.unwrap()).unwrap();
        assert_eq!(
            hex::encode(sha256::Hash::hash(&preimage).as_byte_array()),
            issued.payment_hash
        );
        let again = Fake::new("s3cret");
        let secp = Secp256k1::new();
        assert_eq!(
            invoice.recover_payee_pub_key(),
            again.key.public_key(&secp),
            "the same secret signs with the same key"
        );
        assert_eq!(
            fake.pay_invoice(&issued.bolt11, 0).await,
            Outcome::Failed(NO_ROUTE.into())
        );
    }
}
