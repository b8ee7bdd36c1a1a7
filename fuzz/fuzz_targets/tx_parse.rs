//! Any bytes: the payment parser answers or refuses, never panics, and what it accepts
//! serialises back to exactly the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = cashier::chain::Tx::decode(data) {
        assert_eq!(tx.serialize(), data);
        let _ = tx.check();
    }
    let _ = cashier::chain::Tx::parse(data);
});
