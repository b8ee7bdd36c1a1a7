// The tables of migrations/sqlite, as diesel sees them (`diesel print-schema` against SQLite,
// with the row ids widened to BigInt so the PostgreSQL BIGINT columns read the same way).

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        key_hash -> Binary,
        label -> Nullable<Text>,
        created_ms -> BigInt,
        revoked_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    invoices (seq) {
        seq -> BigInt,
        id -> Text,
        status -> Text,
        memo -> Nullable<Text>,
        merchant_data -> Nullable<Text>,
        created_ms -> BigInt,
        expires_ms -> BigInt,
        fee_per_kb -> BigInt,
        api_key_id -> Nullable<BigInt>,
        updated_ms -> BigInt,
    }
}

diesel::table! {
    invoice_outputs (invoice_id, idx) {
        invoice_id -> Text,
        idx -> Integer,
        address -> Text,
        locking_bytecode -> Binary,
        amount -> BigInt,
        description -> Nullable<Text>,
        token_category -> Nullable<Binary>,
        token_amount -> Nullable<BigInt>,
        nft_capability -> Nullable<Text>,
        nft_commitment -> Nullable<Binary>,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        topic -> Text,
        kind -> Text,
        payload -> Text,
        created_ms -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(api_keys, invoices, invoice_outputs, events);
