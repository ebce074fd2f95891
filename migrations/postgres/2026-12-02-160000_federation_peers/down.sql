DROP TABLE federation_peers;
