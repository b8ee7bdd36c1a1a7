//! Time and money as every layer writes them: milliseconds since 1970 in `i64`, times shown as
//! ISO-8601 with milliseconds, and sats shown as BCH in integers (no float ever touches money).

/// Milliseconds since 1970, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// ISO-8601 UTC with milliseconds and `Z`, the one time format every dialect accepts.
pub fn iso_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Sats per BCH.
pub const SATS_PER_BCH: u128 = 100_000_000;

/// Sats as a BCH decimal with exactly 8 places. `u128` so that a sum of outputs cannot
/// overflow on its way here.
pub fn bch(sats: impl Into<u128>) -> String {
    let sats = sats.into();
    format!("{}.{:08}", sats / SATS_PER_BCH, sats % SATS_PER_BCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_have_milliseconds_and_z() {
        assert_eq!(iso_millis(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn bch_amounts_are_exact() {
        assert_eq!(bch(0u64), "0.00000000");
        assert_eq!(bch(1u64), "0.00000001");
        assert_eq!(bch(546u64), "0.00000546");
        assert_eq!(bch(4000u64), "0.00004000");
        assert_eq!(bch(123_456_789u64), "1.23456789");
        assert_eq!(bch(2_100_000_000_000_000u64), "21000000.00000000");
        assert_eq!(bch(u128::from(u64::MAX) * 3), "553402322211.28654845");
    }
}
