DROP TABLE ln_payments;
DROP TABLE wallets;
