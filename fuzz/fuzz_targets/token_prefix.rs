//! Any bytes as a locking bytecode field: the token prefix parser never panics, and a prefix
//! it reads encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((Some(token), rest)) = cashier::chain::TokenData::split_prefix(data) {
        let prefix = token.prefix_bytes();
        assert_eq!(&data[..prefix.len()], prefix.as_slice());
        assert_eq!(&data[prefix.len()..], rest);
    }
});
