-- B8's seed for SQLite: {rows} rows in each table the timed operations read, written in one
-- transaction by recursive CTEs ({now} is the clock in ms). The same ids as seed_postgres.sql:
-- `printf('%08x%024x', (i * 2654435761) % 4294967296, i)` scatters the ids over the index as
-- random ones would, while the harness can still name the i-th one.
-- Invoices: half open (due in a day: nothing for the sweeper), 40% paid (with a payment, final
-- on the chain, so the watcher leaves them alone), 5% expired, 5% cancelled; one event each.
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows})
INSERT INTO invoices (id, status, memo, outputs, created_ms, expires_ms, fee_per_kb, updated_ms,
    store_id, confirmations_required)
SELECT printf('%08x%024x', (i * 2654435761) % 4294967296, i),
    CASE WHEN i % 20 < 10 THEN 'open' WHEN i % 20 < 18 THEN 'paid'
         WHEN i % 20 = 18 THEN 'expired' ELSE 'cancelled' END,
    'seed',
    '[{"amount":10000,"address":"bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvs"}]',
    {now} - ({rows} - i) * 10,
    CASE WHEN i % 20 < 10 THEN {now} + 86400000 + i ELSE {now} - ({rows} - i) * 10 + 1800000 END,
    1000, {now} - ({rows} - i) * 10, 1, 0
FROM s;
-- Each invoice's script: distinct, so no transaction of the run matches a seeded invoice (the
-- watcher reads this table only; the outputs above all name one address).
INSERT INTO invoice_scripts (script, invoice_id)
SELECT printf('76a914%08x%032x88ac', (seq * 2246822519) % 4294967296, seq), id FROM invoices;
INSERT INTO payments (invoice_id, txid, raw_tx, state, created_ms, paid_ms, chain, block_hash,
    block_height, confirmations, via, amount)
SELECT id, printf('%08x%056x', (seq * 3266489917) % 4294967296, seq), X'00', 'broadcast',
    created_ms, created_ms + 1000, 'final', printf('%064x', seq), 100, 6, 'jpp', 10000
FROM invoices WHERE status = 'paid';
INSERT INTO events (topic, kind, payload, created_ms)
SELECT 'invoice:' || id,
    CASE status WHEN 'open' THEN 'invoice_paid_partial' WHEN 'paid' THEN 'payment_received'
        WHEN 'expired' THEN 'invoice_expired' ELSE 'invoice_cancelled' END,
    '{"type":"seed","invoice":{"payment_id":"' || id || '"}}', created_ms
FROM invoices ORDER BY seq;
-- What was there before the server started is not for the webhook sender to fan out.
UPDATE webhook_cursor SET event_id = (SELECT MAX(id) FROM events);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows})
INSERT INTO api_keys (key_hash, label, created_ms, store_id)
SELECT randomblob(32), 'seed', {now}, 1 FROM s;
-- Wallets, and the harness's own (its keys' hashes given), which holds half the payments.
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows})
INSERT INTO wallets (id, name, inkey_hash, adminkey_hash, created_ms)
SELECT printf('%032x', i), 'seed', randomblob(32), randomblob(32), {now} FROM s;
INSERT INTO wallets (id, name, inkey_hash, adminkey_hash, created_ms)
VALUES ('{wallet}', 'bench', X'{inkey_hash}', X'{adminkey_hash}', {now});
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows})
INSERT INTO ln_payments (checking_id, payment_hash, wallet_id, amount_msat, fee_msat, bolt11,
    memo, status, extra, created_ms, updated_ms)
SELECT printf('%08x%056x', (i * 2654435761) % 4294967296, i),
    printf('%08x%056x', (i * 2654435761) % 4294967296, i),
    CASE WHEN i % 2 = 0 THEN '{wallet}' ELSE printf('%032x', i) END,
    1000, 0, 'lnbcrt10n1seed', 'seed', 'success', '{}',
    {now} - ({rows} - i) * 10, {now} - ({rows} - i) * 10
FROM s;
