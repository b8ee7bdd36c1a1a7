-- A balance is summed from these columns alone: an index holding all of them answers the sum
-- without reading the rows.
CREATE INDEX ln_payments_balance ON ln_payments (wallet_id, status, amount_msat, fee_msat);
