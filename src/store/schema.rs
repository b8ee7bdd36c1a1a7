// The tables of migrations/sqlite, as diesel sees them (`diesel print-schema` against SQLite,
// with the row ids widened to BigInt so the PostgreSQL BIGINT columns read the same way).

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        key_hash -> Binary,
        label -> Nullable<Text>,
        created_ms -> BigInt,
        revoked_ms -> Nullable<BigInt>,
        store_id -> BigInt,
        scopes -> Text,
    }
}

diesel::table! {
    stores (id) {
        id -> BigInt,
        name -> Text,
        created_ms -> BigInt,
        confirmations -> Nullable<Integer>,
        xpub -> Nullable<Text>,
        next_index -> BigInt,
    }
}

diesel::table! {
    invoices (seq) {
        seq -> BigInt,
        id -> Text,
        status -> Text,
        memo -> Nullable<Text>,
        outputs -> Text,
        merchant_data -> Nullable<Text>,
        created_ms -> BigInt,
        expires_ms -> BigInt,
        fee_per_kb -> BigInt,
        api_key_id -> Nullable<BigInt>,
        updated_ms -> BigInt,
        store_id -> BigInt,
        confirmations_required -> Integer,
        invalid_reason -> Nullable<Text>,
        amount_paid -> Nullable<BigInt>,
        address_index -> Nullable<BigInt>,
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

diesel::table! {
    payments (id) {
        id -> BigInt,
        invoice_id -> Text,
        txid -> Text,
        raw_tx -> Binary,
        state -> Text,
        memo -> Nullable<Text>,
        refund_to -> Nullable<Text>,
        created_ms -> BigInt,
        paid_ms -> Nullable<BigInt>,
        chain -> Nullable<Text>,
        block_hash -> Nullable<Text>,
        block_height -> Nullable<BigInt>,
        confirmations -> Nullable<Integer>,
        double_spend_proof -> Nullable<Text>,
        via -> Text,
        amount -> Nullable<BigInt>,
    }
}

diesel::table! {
    dev_txs (txid) {
        txid -> Text,
        raw -> Binary,
        height -> Nullable<BigInt>,
        first_seen_ms -> BigInt,
    }
}

diesel::table! {
    dev_coins (txid, vout) {
        txid -> Text,
        vout -> Integer,
        value -> BigInt,
        script -> Binary,
        height -> Nullable<BigInt>,
        spent_by -> Nullable<Text>,
    }
}

diesel::table! {
    dev_blocks (height) {
        height -> BigInt,
        hash -> Text,
        time_ms -> BigInt,
    }
}

diesel::table! {
    wallets (id) {
        id -> Text,
        name -> Text,
        inkey_hash -> Binary,
        adminkey_hash -> Binary,
        created_ms -> BigInt,
        balance_msat -> BigInt,
    }
}

diesel::table! {
    ln_payments (checking_id) {
        checking_id -> Text,
        payment_hash -> Text,
        wallet_id -> Text,
        amount_msat -> BigInt,
        fee_msat -> BigInt,
        bolt11 -> Text,
        memo -> Nullable<Text>,
        status -> Text,
        preimage -> Nullable<Text>,
        expiry_ms -> Nullable<BigInt>,
        extra -> Text,
        webhook -> Nullable<Text>,
        created_ms -> BigInt,
        updated_ms -> BigInt,
        webhook_status -> Nullable<Text>,
    }
}

diesel::table! {
    chain_blocks (height) {
        height -> BigInt,
        hash -> Text,
        processed_ms -> BigInt,
    }
}

diesel::table! {
    dev_dsproofs (txid) {
        txid -> Text,
        id -> Text,
        conflict -> Binary,
        created_ms -> BigInt,
    }
}

diesel::table! {
    invoice_scripts (script, invoice_id) {
        script -> Text,
        invoice_id -> Text,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> BigInt,
        store_id -> BigInt,
        url -> Text,
        secret -> Text,
        kinds -> Text,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        after_event -> BigInt,
        created_ms -> BigInt,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        target_event -> Text,
        endpoint_id -> Nullable<BigInt>,
        event_id -> BigInt,
        kind -> Text,
        topic -> Text,
        url -> Text,
        body -> Text,
        signing_key -> Nullable<Text>,
        payment_hash -> Nullable<Text>,
        state -> Text,
        attempts -> Integer,
        round -> Integer,
        next_try_ms -> BigInt,
        created_ms -> BigInt,
        done_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> BigInt,
        delivery_id -> Text,
        at_ms -> BigInt,
        status -> Nullable<Integer>,
        error -> Nullable<Text>,
        latency_ms -> BigInt,
    }
}

diesel::table! {
    webhook_cursor (id) {
        id -> Integer,
        event_id -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    stores,
    invoices,
    events,
    payments,
    dev_txs,
    dev_coins,
    dev_blocks,
    wallets,
    ln_payments,
    chain_blocks,
    dev_dsproofs,
    invoice_scripts,
    webhook_endpoints,
    webhook_deliveries,
    webhook_attempts,
    webhook_cursor
);
