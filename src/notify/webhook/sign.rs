//! The signature a webhook receiver checks: `t=<unix seconds>,v1=<hex HMAC-SHA256>` over
//! `"<t>.<body>"`, keyed with the endpoint's secret. The timestamp is inside the signed text,
//! so a captured delivery cannot be replayed later with a fresh time: a receiver refuses a
//! `t` older than a few minutes and drops event ids it has already seen.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Cashier-Signature";
/// The header that carries the outbox id of the event, for receivers that drop duplicates.
pub const EVENT_ID_HEADER: &str = "Cashier-Event-Id";
/// The header that carries the delivery's id (one per event and endpoint).
pub const DELIVERY_ID_HEADER: &str = "Cashier-Delivery-Id";
/// Every secret starts with this, so a leaked one is easy to recognise.
pub const SECRET_PREFIX: &str = "whsec_";

/// A fresh endpoint secret: 256 random bits.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", hex::encode(bytes))
}

/// The header value for `body` sent at `unix_secs`.
pub fn signature(secret: &str, unix_secs: i64, body: &[u8]) -> String {
    let mac = keyed(secret, unix_secs, body).finalize().into_bytes();
    format!("t={unix_secs},v1={}", hex::encode(mac))
}

/// The MAC over `"<t>.<body>"`, not yet finalised.
fn keyed(secret: &str, unix_secs: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: `new_from_slice` cannot fail, and `new` would need the
    // key as a fixed-size array.
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Why a receiver refuses a delivery ([`verify`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `t=` or no `v1=`, or one that is not a number or hex.
    Malformed,
    /// `t` is further from now than the tolerance: a replay, or a clock far off.
    Stale,
    /// No `v1` matches: a wrong secret or a changed body.
    Forged,
}

/// What a receiver does (the example receivers do the same in Python and Node): the header
/// parses, `t` is within `tolerance_secs` of `now_secs`, and some `v1` matches, compared in
/// constant time.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), Refusal> {
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| Refusal::Malformed)?),
            Some(("v1", v)) => candidates.push(hex::decode(v).map_err(|_| Refusal::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(Refusal::Malformed)?;
    if candidates.is_empty() {
        return Err(Refusal::Malformed);
    }
    if now_secs.abs_diff(t) > tolerance_secs.unsigned_abs() {
        return Err(Refusal::Stale);
    }
    // `verify_slice` compares in constant time.
    if candidates
        .iter()
        .any(|c| keyed(secret, t, body).verify_slice(c).is_ok())
    {
        Ok(())
    } else {
        Err(Refusal::Forged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    #[test]
    fn a_signature_verifies_and_anything_changed_does_not() {
        let body = br#"{"event_id":7,"type":"payment_received"}"#;
        let header = signature(SECRET, 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(verify(SECRET, &header, body, 1_700_000_010, 300), Ok(()));
        assert_eq!(
            verify("whsec_other", &header, body, 1_700_000_010, 300),
            Err(Refusal::Forged)
        );
        assert_eq!(
            verify(SECRET, &header, b"{}", 1_700_000_010, 300),
            Err(Refusal::Forged)
        );
        // The same body and MAC with a fresh time is a different signed text.
        let replayed = header.replace("t=1700000000", "t=1700000500");
        assert_eq!(
            verify(SECRET, &replayed, body, 1_700_000_500, 300),
            Err(Refusal::Forged)
        );
        assert_eq!(
            verify(SECRET, &header, body, 1_700_000_301, 300),
            Err(Refusal::Stale)
        );
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz"] {
            assert_eq!(
                verify(SECRET, bad, body, 1, 300),
                Err(Refusal::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_mac_is_hmac_sha256_of_t_dot_body() {
        // RFC 4231 style check by a second route: HMAC of the joined text.
        let joined = b"1700000000.hello";
        let mut mac =
            <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(joined);
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            signature(SECRET, 1_700_000_000, b"hello"),
            format!("t=1700000000,v1={expected}")
        );
    }
}
