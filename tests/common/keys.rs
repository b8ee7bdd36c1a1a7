//! Merchant keys for tests, written straight into the store (what `cashier key create` does),
//! shared by the test binaries that start a server in-process.

use cashier::auth::{Scopes, DEFAULT_STORE_ID};
use cashier::store::Store;

/// A new key of `store_id` holding `scopes`; returns the key.
pub async fn insert_key(store: &Store, store_id: i64, scopes: Scopes) -> String {
    let key = cashier::auth::generate_key();
    let hash = cashier::auth::key_hash(&key);
    store
        .write(move |c| {
            cashier::store::api_keys::insert(c, &hash, Some("tests"), store_id, scopes, 0)
        })
        .await
        .expect("a merchant key");
    key
}

/// A key of the default store with every scope.
pub async fn merchant_key(store: &Store) -> String {
    insert_key(store, DEFAULT_STORE_ID, Scopes::all()).await
}
