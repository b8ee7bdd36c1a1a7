//! Any text as an address on any network: parsed or refused, never a panic; what parses
//! re-encodes to an address that parses to the same thing.
#![no_main]

use cashier::chain::{Address, Network};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for network in Network::ALL {
        if let Ok(address) = Address::parse(text, network) {
            for token_aware in [false, true] {
                let again = Address::parse(&address.to_cashaddr(token_aware), network);
                assert_eq!(again.as_ref(), Ok(&address));
            }
        }
    }
});
