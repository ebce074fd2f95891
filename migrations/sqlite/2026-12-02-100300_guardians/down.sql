DELETE FROM counters WHERE name = 'guardians';
DROP TABLE guardians;
