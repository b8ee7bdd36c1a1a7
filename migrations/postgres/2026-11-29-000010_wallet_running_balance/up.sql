-- Each wallet's balance kept on its row, in msat: moved in the same transaction as every change
-- to a payment row it counts (settled rows, and outgoing ones still pending: their sats are
-- spoken for), so a payment reads one row instead of summing the wallet's whole history. The
-- payment rows stay the truth: `cashier wallet check` sums them and compares.
ALTER TABLE wallets ADD COLUMN balance_msat BIGINT NOT NULL DEFAULT 0;

-- A database made before this migration gets the balances its payment rows add up to.
UPDATE wallets SET balance_msat = (
    SELECT CAST(COALESCE(SUM(p.amount_msat + p.fee_msat), 0) AS BIGINT)
    FROM ln_payments AS p
    WHERE p.wallet_id = wallets.id
      AND (p.status = 'success' OR (p.status = 'pending' AND p.amount_msat < 0))
);
