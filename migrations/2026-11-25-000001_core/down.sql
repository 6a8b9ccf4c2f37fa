DROP TABLE idempotency_keys;
DROP TABLE events;
DROP TABLE spends;
DROP TABLE problems;
DROP TABLE policies;
DROP TABLE people;
DROP TABLE teams;
