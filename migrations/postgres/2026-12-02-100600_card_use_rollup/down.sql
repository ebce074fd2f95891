DROP TABLE card_use_rollup;
