DROP TABLE resident_merges;
