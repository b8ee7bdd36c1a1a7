ALTER TABLE wallets DROP COLUMN balance_msat;
