DROP TABLE temporary_cards;
