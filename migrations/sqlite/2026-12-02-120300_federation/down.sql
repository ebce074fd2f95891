DROP TABLE foreign_links;
DROP TABLE federation_cursors;
DROP TABLE foreign_card_events;
DROP TABLE foreign_cards;
DROP TABLE federation_nonces;
DROP TABLE node_keys;
