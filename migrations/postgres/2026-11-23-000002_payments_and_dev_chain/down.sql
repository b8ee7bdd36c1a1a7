DROP TABLE dev_blocks;
DROP TABLE dev_coins;
DROP TABLE dev_txs;
DROP TABLE payments;
