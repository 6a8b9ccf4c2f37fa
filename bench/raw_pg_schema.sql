-- bench/raw_pg_schema.sql: the tables pgbench writes for the raw PostgreSQL rate.
-- Owns: a mirror of the columns and indexes of Leeway's problems, spends and
-- events that a spend's transaction touches (see bench/raw_pg_spend.sql), in
-- a scratch database of its own, so the figure does not depend on Leeway's code.
-- psql -v problems=N sets how many problems the load spreads over.
CREATE TABLE bench_problems (
  id TEXT PRIMARY KEY, team_id TEXT NOT NULL, owner_id TEXT NOT NULL, status TEXT NOT NULL,
  currency TEXT NOT NULL, limit_minor BIGINT NOT NULL, approved_minor BIGINT NOT NULL,
  pending_review_minor BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL);
CREATE TABLE bench_spends (
  id TEXT PRIMARY KEY, problem_id TEXT NOT NULL REFERENCES bench_problems(id),
  amount_minor BIGINT NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL,
  merchant TEXT NOT NULL, description TEXT NOT NULL, spent_on DATE NOT NULL,
  logged_by TEXT NOT NULL, logged_at TIMESTAMP NOT NULL, policy_team_id TEXT,
  policy_version INTEGER, route_version INTEGER NOT NULL);
CREATE INDEX bench_spends_problem ON bench_spends (problem_id);
CREATE INDEX bench_spends_spent_on ON bench_spends (spent_on);
CREATE SEQUENCE bench_event_sequence;
CREATE TABLE bench_events (
  id TEXT PRIMARY KEY, occurred_at TIMESTAMP NOT NULL, actor_id TEXT, kind TEXT NOT NULL,
  subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, team_id TEXT, problem_id TEXT,
  data TEXT NOT NULL, sequence BIGINT, chain_key TEXT, chain_position BIGINT,
  prev_hash TEXT, hash TEXT);
CREATE INDEX bench_events_subject ON bench_events (subject_type, subject_id);
CREATE UNIQUE INDEX bench_events_chain ON bench_events (chain_key, chain_position);
INSERT INTO bench_problems
  SELECT 'p' || n, 'team', 'owner', 'open', 'USD', 100000000000000, 0, 0, now()
  FROM generate_series(1, :problems) AS n;
