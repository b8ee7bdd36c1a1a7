//! The `lnbits` funding source: a wallet on a remote LNbits (or another Cashier) funds this
//! server, over its REST API (`X-Api-Key`) and its wallet socket (`/api/v1/ws/<key>`), as
//! LNbits' own `LNbitsWallet` does (research §3). An https:// base URL takes both over TLS
//! (the socket as wss://), trusting what [`Outbound`] trusts.
//!
//! Beyond what LNbits does: the invoices issued here and not yet known paid are remembered
//! (while the process runs), and every time the socket (re)connects they are checked over
//! REST, so a payment made while the socket was down, or before it first came up, is still
//! reported.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::{StatusCode, Url};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::funding::{
    FundingSource, FundingStatus, InvoiceRequest, IssuedInvoice, Outcome, Settled,
};
use crate::outbound::{tls_failure, Outbound};

/// How long a REST call may take (connecting included) before its outcome counts as unknown.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A payment may take longer: LNbits itself waits 5 s for its backend before answering pending.
const PAY_TIMEOUT: Duration = Duration::from_secs(60);
/// The socket is pinged this often; a socket silent for `SOCKET_IDLE` is reconnected.
const SOCKET_PING: Duration = Duration::from_secs(30);
const SOCKET_IDLE: Duration = Duration::from_secs(90);
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Most invoices remembered for the re-check on reconnection; beyond it new invoices are still
/// settled by their socket frame and by polling, just not re-checked after a lost socket.
const MAX_REMEMBERED: usize = 100_000;

/// A wallet on a remote LNbits. Its key never appears in logs or in `Debug`.
#[derive(Clone)]
pub struct Lnbits {
    /// The base URL, without a trailing slash.
    base: Url,
    key: String,
    http: reqwest::Client,
    /// The same TLS for the socket.
    outbound: Outbound,
    /// Invoices issued and not yet known settled, with when they expire.
    open: Arc<Mutex<HashMap<String, Instant>>>,
}

impl std::fmt::Debug for Lnbits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lnbits")
            .field("url", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Lnbits {
    /// A source for the wallet `key` (admin key; an invoice key makes it receive-only) on the
    /// LNbits at `url` (http:// or https://, trusted as `outbound` says).
    pub fn new(url: &str, key: &str, outbound: &Outbound) -> Result<Lnbits, String> {
        let base = parse_base_url(url)?;
        let key = key.trim();
        if key.is_empty() {
            return Err("--lnbits-key is empty: give the remote wallet's admin key".into());
        }
        if !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(
                "--lnbits-key must be the remote wallet's admin (or invoice) key: letters and \
                 digits only"
                    .into(),
            );
        }
        let http = outbound
            .http()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot set up the HTTP client for LNbits: {e}"))?;
        Ok(Lnbits {
            base,
            key: key.to_owned(),
            http,
            outbound: outbound.clone(),
            open: Arc::default(),
        })
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// The wallet socket's URL. It holds the key: never log it.
    fn socket_url(&self) -> String {
        let url = self.url(&["api", "v1", "ws", &self.key]);
        // The base URL was checked to be http:// or https://: ws:// or wss:// the same way.
        let url = url.as_str();
        match url.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => url.replacen("http://", "ws://", 1),
        }
    }

    /// GET with the key; the status and the body (JSON, or null).
    async fn get(&self, segments: &[&str]) -> Result<(StatusCode, Value), reqwest::Error> {
        let response = self
            .http
            .get(self.url(segments))
            .header("X-Api-Key", &self.key)
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn post(
        &self,
        body: &Value,
        timeout: Duration,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let response = self
            .http
            .post(self.url(&["api", "v1", "payments"]))
            .header("X-Api-Key", &self.key)
            .timeout(timeout)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn payment_status(&self, checking_id: &str) -> Outcome {
        match self.get(&["api", "v1", "payments", checking_id]).await {
            Ok((status, body)) if status.is_success() => status_outcome(&body),
            Ok((status, body)) => {
                tracing::debug!(checking_id, %status, detail = %detail(&body), "lnbits: payment status unknown");
                Outcome::Pending
            }
            Err(e) => {
                tracing::debug!(checking_id, error = %e, "lnbits: payment status unknown");
                Outcome::Pending
            }
        }
    }

    fn remember(&self, checking_id: &str, expiry: Duration) {
        let now = Instant::now();
        let Ok(mut open) = self.open.lock() else {
            return;
        };
        if open.len() >= MAX_REMEMBERED {
            open.retain(|_, expires| *expires > now);
        }
        if open.len() < MAX_REMEMBERED {
            open.insert(checking_id.to_owned(), now + expiry);
        }
    }

    fn forget(&self, checking_id: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(checking_id);
        }
    }

    /// The invoices to re-check, forgetting the expired ones (a minute's grace for a payment
    /// in flight at the deadline).
    fn still_open(&self) -> Vec<String> {
        let now = Instant::now();
        let Ok(mut open) = self.open.lock() else {
            return Vec::new();
        };
        open.retain(|_, expires| *expires + Duration::from_secs(60) > now);
        open.keys().cloned().collect()
    }

    /// Says once, at start, whether the remote wallet answers and what the key allows.
    async fn announce(&self) {
        match self.get(&["api", "v1", "wallet"]).await {
            Ok((status, body)) if status.is_success() => {
                let balance = body["balance"].as_f64().unwrap_or(0.0) / 1000.0;
                if body.get("id").is_some() {
                    tracing::info!(url = %self.base, balance_sat = balance, "lnbits funding source: wallet reachable");
                } else {
                    tracing::warn!(url = %self.base, balance_sat = balance,
                        "lnbits funding source: the key is an invoice key, so it can receive but payments out will stay pending");
                }
            }
            Ok((status, body)) => {
                tracing::warn!(url = %self.base, %status, detail = %detail(&body),
                "lnbits funding source: the wallet refused the key")
            }
            Err(e) => tracing::warn!(url = %self.base, error = %why_unreachable(&e),
                "lnbits funding source: cannot reach it yet (payments wait until it answers)"),
        }
    }

    /// Connects the socket over and over, forever (or until the receiver is gone), sending
    /// the checking id of every incoming payment it announces.
    async fn follow(self, sender: mpsc::Sender<String>) {
        self.announce().await;
        let mut backoff = BACKOFF_FIRST;
        loop {
            // The connector is given for ws:// too; it is used only for wss://.
            let connecting = tokio_tungstenite::connect_async_tls_with_config(
                self.socket_url(),
                None,
                false,
                Some(self.outbound.ws_connector()),
            );
            match connecting.await {
                Ok((socket, _)) => {
                    tracing::info!(url = %self.base, "lnbits funding source: socket connected");
                    backoff = BACKOFF_FIRST;
                    // Anything paid before the socket was up is found by asking.
                    for checking_id in self.still_open() {
                        match self.payment_status(&checking_id).await {
                            Outcome::Success(_) => {
                                self.forget(&checking_id);
                                if sender.send(checking_id).await.is_err() {
                                    return;
                                }
                            }
                            Outcome::Failed(_) => self.forget(&checking_id),
                            Outcome::Pending => {}
                        }
                    }
                    match self.read(socket, &sender).await {
                        Ok(reason) => {
                            tracing::warn!(url = %self.base, reason, "lnbits funding source: socket lost")
                        }
                        Err(Closed) => return,
                    }
                }
                Err(e) => {
                    // Never the socket's URL: it holds the key.
                    let error = tls_failure(&e).unwrap_or_else(|| e.to_string());
                    tracing::warn!(url = %self.base, %error, retry_in_s = backoff.as_secs(),
                        "lnbits funding source: cannot open the socket");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = sender.closed() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Reads one connection until it ends; why it ended, or `Closed` when nobody listens.
    async fn read<S>(&self, socket: S, sender: &mpsc::Sender<String>) -> Result<String, Closed>
    where
        S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
            + futures_util::Sink<Message>
            + Unpin,
    {
        let mut socket = socket;
        let mut ping = tokio::time::interval(SOCKET_PING);
        ping.tick().await;
        let mut heard = Instant::now();
        loop {
            tokio::select! {
                frame = socket.next() => {
                    heard = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) => {
                            if let Some(checking_id) = paid_incoming(text.as_str()) {
                                self.forget(&checking_id);
                                sender.send(checking_id).await.map_err(|_| Closed)?;
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            return Ok(format!("closed by LNbits: {frame:?}"));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Ok(e.to_string()),
                        None => return Ok("the connection ended".into()),
                    }
                }
                _ = ping.tick() => {
                    if heard.elapsed() > SOCKET_IDLE {
                        return Ok(format!("silent for {} s", SOCKET_IDLE.as_secs()));
                    }
                    if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                        return Ok("cannot send a ping".into());
                    }
                }
                _ = sender.closed() => return Err(Closed),
            }
        }
    }
}

/// Nobody reads the stream any more.
struct Closed;

impl FundingSource for Lnbits {
    async fn status(&self) -> FundingStatus {
        match self.get(&["api", "v1", "wallet"]).await {
            Ok((status, body)) if status.is_success() => match body["balance"].as_f64() {
                Some(msat) => FundingStatus {
                    balance_msat: msat as i64,
                    error: None,
                },
                None => FundingStatus {
                    balance_msat: 0,
                    error: Some("LNbits answered without a balance".into()),
                },
            },
            Ok((status, body)) => FundingStatus {
                balance_msat: 0,
                error: Some(format!("LNbits answered {status}: {}", detail(&body))),
            },
            Err(e) => FundingStatus {
                balance_msat: 0,
                error: Some(format!(
                    "cannot reach LNbits at {}: {}",
                    self.base,
                    why_unreachable(&e)
                )),
            },
        }
    }

    async fn create_invoice(&self, request: &InvoiceRequest) -> Result<IssuedInvoice, String> {
        let body = invoice_body(request)?;
        let (status, answer) = self.post(&body, REQUEST_TIMEOUT).await.map_err(|e| {
            format!(
                "cannot reach the LNbits funding source at {}: {}",
                self.base,
                why_unreachable(&e)
            )
        })?;
        if !status.is_success() {
            return Err(format!(
                "the LNbits funding source refused the invoice ({status}): {}",
                detail(&answer)
            ));
        }
        let issued = issued_invoice(&answer)?;
        self.remember(&issued.checking_id, request.expiry);
        Ok(issued)
    }

    async fn pay_invoice(&self, bolt11: &str, _fee_limit_msat: u64) -> Outcome {
        // LNbits' API takes no fee limit: its own reserve rules apply.
        match self
            .post(&json!({"out": true, "bolt11": bolt11}), PAY_TIMEOUT)
            .await
        {
            Ok((status, body)) => pay_outcome(status, &body),
            Err(e) => {
                tracing::warn!(error = %e, "lnbits: the payment's outcome is unknown; it stays pending");
                Outcome::Pending
            }
        }
    }

    async fn get_invoice_status(&self, checking_id: &str) -> Outcome {
        let outcome = self.payment_status(checking_id).await;
        if !matches!(outcome, Outcome::Pending) {
            self.forget(checking_id);
        }
        outcome
    }

    async fn get_payment_status(&self, checking_id: &str) -> Outcome {
        self.payment_status(checking_id).await
    }

    fn paid_invoices_stream(&self) -> mpsc::Receiver<String> {
        let (sender, receiver) = mpsc::channel(64);
        tokio::spawn(self.clone().follow(sender));
        receiver
    }
}

/// Why a REST call did not get an answer: the TLS problem explained, else the innermost cause
/// (reqwest's own text says only "error sending request"). No URL: the caller names the base.
fn why_unreachable(e: &reqwest::Error) -> String {
    if let Some(why) = tls_failure(e) {
        return why;
    }
    if e.is_timeout() {
        return "no answer in time".into();
    }
    let mut cause: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The base URL, checked: http:// or https:// with a host, no query or fragment.
fn parse_base_url(url: &str) -> Result<Url, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err(
            "--lnbits-url is empty: give the LNbits base URL, e.g. http://127.0.0.1:5000".into(),
        );
    }
    let parsed = Url::parse(url).map_err(|e| format!("--lnbits-url {url:?} is not a URL: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Not repeated: it holds a password.
        return Err("--lnbits-url must not hold credentials: the key goes in --lnbits-key".into());
    }
    match parsed.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "--lnbits-url {url:?}: the scheme must be https or http, not {other}"
            ))
        }
    }
    if parsed.host_str().is_none_or(str::is_empty)
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(format!(
            "--lnbits-url {url:?} must be a plain base URL such as http://127.0.0.1:5000"
        ));
    }
    Ok(parsed)
}

/// The `POST /api/v1/payments` body for an invoice. LNbits counts `amount` in sats.
fn invoice_body(request: &InvoiceRequest) -> Result<Value, String> {
    if !request.amount_msat.is_multiple_of(1000) {
        return Err(format!(
            "the LNbits funding source makes invoices for whole sats only, not {} msat",
            request.amount_msat
        ));
    }
    let mut body = json!({
        "out": false,
        "amount": request.amount_msat / 1000,
        "expiry": request.expiry.as_secs().max(1),
    });
    match request.description_hash {
        Some(hash) => body["description_hash"] = json!(hex::encode(hash)),
        None => body["memo"] = json!(request.memo.clone().unwrap_or_default()),
    }
    Ok(body)
}

/// The created invoice from LNbits' answer (1.x writes `bolt11` and `payment_request`, 0.x
/// only `payment_request`).
fn issued_invoice(answer: &Value) -> Result<IssuedInvoice, String> {
    let text = |key: &str| {
        answer[key]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let payment_hash =
        text("payment_hash").ok_or("the LNbits funding source answered without a payment_hash")?;
    let bolt11 = text("bolt11")
        .or_else(|| text("payment_request"))
        .ok_or("the LNbits funding source answered without an invoice (bolt11)")?;
    Ok(IssuedInvoice {
        checking_id: text("checking_id").unwrap_or_else(|| payment_hash.clone()),
        payment_hash,
        bolt11,
        preimage: text("preimage"),
    })
}

/// What an answer to `POST /api/v1/payments {out: true}` says. Only an explicit "failed" is a
/// failure; an error without it, or an answer that is not success, leaves the payment pending.
fn pay_outcome(status: StatusCode, body: &Value) -> Outcome {
    let state = body["status"].as_str();
    if status.is_success() {
        return match state {
            Some("success") => Outcome::Success(settled(body)),
            Some("failed") => Outcome::Failed(detail(body)),
            _ => Outcome::Pending,
        };
    }
    if state == Some("failed") {
        return Outcome::Failed(detail(body));
    }
    tracing::warn!(%status, detail = %detail(body), "lnbits: the payment's outcome is unknown; it stays pending");
    Outcome::Pending
}

/// A settled Payment's preimage and fee (LNbits stores an outgoing fee as negative msat).
fn settled(payment: &Value) -> Settled {
    Settled {
        preimage: payment["preimage"]
            .as_str()
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
        fee_msat: payment["fee"].as_f64().map_or(0, |f| f.abs() as i64),
    }
}

/// What `GET /api/v1/payments/{id}` says: `paid: true` is success (preimage at the top, fee in
/// `details`), `status: "failed"` a failure, anything else pending.
fn status_outcome(body: &Value) -> Outcome {
    if body["paid"].as_bool() == Some(true) {
        let mut s = settled(&body["details"]);
        if let Some(p) = body["preimage"].as_str().filter(|p| !p.is_empty()) {
            s.preimage = Some(p.to_owned());
        }
        return Outcome::Success(s);
    }
    if body["status"].as_str() == Some("failed") {
        return Outcome::Failed(detail(body));
    }
    Outcome::Pending
}

/// The checking id of an incoming payment a socket frame announces as settled, if it is one.
fn paid_incoming(frame: &str) -> Option<String> {
    let frame: Value = serde_json::from_str(frame).ok()?;
    let payment = frame.get("payment")?;
    let incoming = payment["amount"].as_f64().is_some_and(|a| a > 0.0);
    if !incoming || payment["status"].as_str() != Some("success") {
        return None;
    }
    ["checking_id", "payment_hash"]
        .iter()
        .find_map(|k| payment[k].as_str().filter(|s| !s.is_empty()))
        .map(str::to_owned)
}

/// LNbits' error text (`detail`), or the body.
fn detail(body: &Value) -> String {
    match &body["detail"] {
        Value::String(s) => s.clone(),
        Value::Null if body.is_null() => "no JSON body".into(),
        Value::Null => body.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound() -> Outbound {
        Outbound::new(None).unwrap()
    }

    #[test]
    fn settings_are_checked() {
        assert!(Lnbits::new("http://127.0.0.1:5000", "abc123", &outbound()).is_ok());
        assert!(Lnbits::new("https://lnbits.example", "abc123", &outbound()).is_ok());
        for (url, key, says) in [
            ("", "k", "empty"),
            ("ftp://x", "k", "scheme must be https or http"),
            ("wss://lnbits.example", "k", "scheme must be https or http"),
            ("127.0.0.1:5000", "k", "URL"),
            ("http://127.0.0.1:5000/?a=b", "k", "plain base URL"),
            ("http://u:p@127.0.0.1:5000", "k", "credentials"),
            ("http://127.0.0.1:5000", " ", "empty"),
            ("http://127.0.0.1:5000", "a/b", "letters and digits"),
        ] {
            let e = Lnbits::new(url, key, &outbound()).unwrap_err();
            assert!(e.contains(says), "{url} {key}: {e}");
            assert!(!e.contains("u:p"), "{e}");
        }
    }

    #[test]
    fn urls_keep_a_path_prefix_and_hide_nothing_but_the_key() {
        let l = Lnbits::new("http://10.0.0.2:5000/lnbits/", "k3y", &outbound()).unwrap();
        assert_eq!(
            l.url(&["api", "v1", "payments", "ab/c"]).as_str(),
            "http://10.0.0.2:5000/lnbits/api/v1/payments/ab%2Fc"
        );
        assert_eq!(l.socket_url(), "ws://10.0.0.2:5000/lnbits/api/v1/ws/k3y");
        let l = Lnbits::new("http://127.0.0.1:5006", "k3y", &outbound()).unwrap();
        assert_eq!(l.socket_url(), "ws://127.0.0.1:5006/api/v1/ws/k3y");
        assert!(!format!("{l:?}").contains("k3y"));
        let l = Lnbits::new("https://lnbits.example/https://", "k3y", &outbound()).unwrap();
        assert_eq!(
            l.url(&["api", "v1", "wallet"]).as_str(),
            "https://lnbits.example/https://api/v1/wallet"
        );
        assert_eq!(
            l.socket_url(),
            "wss://lnbits.example/https://api/v1/ws/k3y",
            "only the scheme changes"
        );
    }

    #[test]
    fn invoice_bodies_are_in_sats() {
        let mut r = InvoiceRequest {
            amount_msat: 21_000,
            memo: Some("coffee".into()),
            description_hash: None,
            expiry: Duration::from_secs(600),
        };
        assert_eq!(
            invoice_body(&r).unwrap(),
            json!({"out": false, "amount": 21, "expiry": 600, "memo": "coffee"})
        );
        r.description_hash = Some([0xab; 32]);
        let body = invoice_body(&r).unwrap();
        assert_eq!(body["description_hash"], json!("ab".repeat(32)));
        assert!(body.get("memo").is_none());
        r.amount_msat = 21_500;
        assert!(invoice_body(&r).unwrap_err().contains("whole sats"));
    }

    #[test]
    fn created_invoices_are_read_from_1x_and_0x_answers() {
        let i = issued_invoice(&json!({"checking_id": "c", "payment_hash": "h",
            "bolt11": "lnbc1", "payment_request": "lnbc1", "preimage": "p"}))
        .unwrap();
        assert_eq!(
            (
                i.checking_id.as_str(),
                i.payment_hash.as_str(),
                i.bolt11.as_str()
            ),
            ("c", "h", "lnbc1")
        );
        assert_eq!(i.preimage.as_deref(), Some("p"));
        let i = issued_invoice(&json!({"payment_hash": "h", "payment_request": "lnbc2"})).unwrap();
        assert_eq!((i.checking_id.as_str(), i.bolt11.as_str()), ("h", "lnbc2"));
        assert!(i.preimage.is_none());
        assert!(issued_invoice(&json!({"detail": "x"})).is_err());
    }

    #[test]
    fn only_an_explicit_failure_fails_a_payment() {
        let created = StatusCode::CREATED;
        assert_eq!(
            pay_outcome(
                created,
                &json!({"status": "success", "fee": -2000, "preimage": "aa"})
            ),
            Outcome::Success(Settled {
                preimage: Some("aa".into()),
                fee_msat: 2000
            })
        );
        assert_eq!(
            pay_outcome(created, &json!({"status": "pending"})),
            Outcome::Pending
        );
        let e = StatusCode::from_u16(520).unwrap();
        assert_eq!(
            pay_outcome(
                e,
                &json!({"detail": "Insufficient balance.", "status": "failed"})
            ),
            Outcome::Failed("Insufficient balance.".into())
        );
        assert_eq!(
            pay_outcome(e, &json!({"detail": "x", "status": "pending"})),
            Outcome::Pending
        );
        assert_eq!(
            pay_outcome(StatusCode::FORBIDDEN, &json!({"detail": "nope"})),
            Outcome::Pending
        );
        assert_eq!(
            pay_outcome(StatusCode::BAD_GATEWAY, &Value::Null),
            Outcome::Pending
        );
    }

    #[test]
    fn payment_lookups_have_three_answers() {
        assert_eq!(
            status_outcome(&json!({"paid": true, "preimage": "pp", "details": {"fee": 0}})),
            Outcome::Success(Settled {
                preimage: Some("pp".into()),
                fee_msat: 0
            })
        );
        assert!(matches!(
            status_outcome(&json!({"paid": false, "status": "failed", "details": {}})),
            Outcome::Failed(_)
        ));
        assert_eq!(
            status_outcome(&json!({"paid": false, "status": "pending", "preimage": null})),
            Outcome::Pending
        );
        assert_eq!(status_outcome(&Value::Null), Outcome::Pending);
    }

    #[test]
    fn socket_frames_name_settled_incoming_payments_only() {
        let frame = |amount: i64, status: &str| {
            json!({"wallet_balance": 1, "payment": {"checking_id": "cid", "payment_hash": "h",
                "amount": amount, "status": status}})
            .to_string()
        };
        assert_eq!(
            paid_incoming(&frame(100_000, "success")).as_deref(),
            Some("cid")
        );
        assert_eq!(paid_incoming(&frame(-100_000, "success")), None);
        assert_eq!(paid_incoming(&frame(100_000, "pending")), None);
        assert_eq!(
            paid_incoming(r#"{"pending": false, "status": "success"}"#),
            None
        );
        assert_eq!(paid_incoming("hello via push"), None);
        assert_eq!(
            paid_incoming(
                r#"{"payment": {"payment_hash": "h", "amount": 5, "status": "success"}}"#
            )
            .as_deref(),
            Some("h")
        );
    }

    #[tokio::test]
    async fn invoices_are_remembered_until_settled_or_expired() {
        let l = Lnbits::new("http://127.0.0.1:9", "k", &outbound()).unwrap();
        l.remember("a", Duration::from_secs(600));
        l.remember("b", Duration::ZERO);
        assert_eq!(l.still_open().len(), 2, "a minute's grace after expiry");
        l.forget("a");
        assert_eq!(l.still_open(), vec!["b".to_owned()]);
    }
}
