-- bench/raw_pg_spend.sql: the pgbench transaction for the raw PostgreSQL rate.
-- Owns: the same shape of transaction a Leeway spend is: read the problem
-- FOR UPDATE, insert the spend, update its totals with the limit rule's
-- guarded update, insert the event (a payload of the size Leeway writes).
-- pgbench -D problems=N picks one of N problems at random per transaction.
-- (No colon inside a string literal: pgbench would read it as a variable.)
\set p random(1, :problems)
BEGIN;
SELECT status, currency, limit_minor, approved_minor, pending_review_minor FROM bench_problems WHERE id = 'p' || :p::text FOR UPDATE;
INSERT INTO bench_spends VALUES (gen_random_uuid()::text, 'p' || :p::text, 100, 'USD', 'approved', 'Bench Supplies', 'Benchmark spend', DATE '2026-01-01', 'owner', now(), 'team', 1, 0);
UPDATE bench_problems SET approved_minor = approved_minor + 100, updated_at = now() WHERE id = 'p' || :p::text AND status = 'open' AND approved_minor + pending_review_minor + 100 <= limit_minor;
INSERT INTO bench_events SELECT 'e' || s, now(), 'owner', 'spend.approved', 'spend', gen_random_uuid()::text, 'team', 'p' || :p::text, repeat('x', 600), s, 'problem-p' || :p::text, s, repeat('0', 64), repeat('1', 64) FROM nextval('bench_event_sequence') AS s;
END;
