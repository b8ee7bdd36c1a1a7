//! Any JSON as an invoice create body: validated or refused with field errors, never a panic.
#![no_main]

use cashier::chain::Network;
use cashier::jpp::{parse_create_request, CreateLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let limits = CreateLimits {
        network: Network::Regtest,
        default_expires_in_secs: 1800,
        default_fee_per_kb: 1000,
        token_aware_addresses: true,
    };
    if let Err(errors) = parse_create_request(&body, &limits) {
        assert!(!errors.is_empty());
    }
});
