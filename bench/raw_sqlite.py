"""bench/raw_sqlite.py: the raw SQLite per-commit rate, Leeway's yardstick.

Owns: what "the raw database" means for SQLite. One writer (SQLite has one
write lock, so more writers only queue) runs, for a set time, the same shape
of transaction a spend is, each committed on its own:

    BEGIN IMMEDIATE
    SELECT the problem (status, currency, limit and totals)
    INSERT the spend
    UPDATE the problem's totals (the guarded update of the limit rule)
    INSERT the event (a JSON payload of the size Leeway writes)
    COMMIT

in WAL mode with synchronous=FULL and foreign keys on, as Leeway's
connections are. The tables mirror the columns and indexes of Leeway's
problems, spends and events that this transaction touches; they are the
script's own (a scratch file), so the figure does not depend on Leeway's code.

Usage: raw_sqlite.py DB_PATH SECONDS LABEL RESULT_JSONL
Appends one JSON line: commits, seconds, rate (commits/s), p50/p99 of one
commit's latency in ms.
"""

import json
import os
import sqlite3
import sys
import time
import uuid

PROBLEMS = int(os.environ.get("BENCH_PROBLEMS", "64"))
BUSY_TIMEOUT_MS = 30000

SCHEMA = """
CREATE TABLE problems (
  id TEXT PRIMARY KEY, team_id TEXT NOT NULL, owner_id TEXT NOT NULL, status TEXT NOT NULL,
  currency TEXT NOT NULL, limit_minor BIGINT NOT NULL, approved_minor BIGINT NOT NULL,
  pending_review_minor BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL);
CREATE TABLE spends (
  id TEXT PRIMARY KEY, problem_id TEXT NOT NULL REFERENCES problems(id),
  amount_minor BIGINT NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL,
  merchant TEXT NOT NULL, description TEXT NOT NULL, spent_on DATE NOT NULL,
  logged_by TEXT NOT NULL, logged_at TIMESTAMP NOT NULL, policy_team_id TEXT,
  policy_version INTEGER, route_version INTEGER NOT NULL);
CREATE INDEX spends_problem ON spends (problem_id);
CREATE INDEX spends_spent_on ON spends (spent_on);
CREATE TABLE events (
  id TEXT PRIMARY KEY, occurred_at TIMESTAMP NOT NULL, actor_id TEXT, kind TEXT NOT NULL,
  subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, team_id TEXT, problem_id TEXT,
  data TEXT NOT NULL, sequence BIGINT, chain_key TEXT, chain_position BIGINT,
  prev_hash TEXT, hash TEXT);
CREATE INDEX events_subject ON events (subject_type, subject_id);
CREATE UNIQUE INDEX events_chain ON events (chain_key, chain_position);
"""


def main():
    path, seconds, label, result = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        f"PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
        f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};")
    db.executescript(SCHEMA)
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    problems = [str(uuid.uuid4()) for _ in range(PROBLEMS)]
    db.execute("BEGIN")
    for p in problems:
        db.execute("INSERT INTO problems VALUES (?, 'team', 'owner', 'open', 'USD', ?, 0, 0, ?)",
                   (p, 10**14, now))
    db.execute("COMMIT")

    payload_pad = "x" * 400  # Leeway's spend event payload is ~600 bytes of JSON
    latencies = []
    sequence = 0
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < deadline:
        begun = time.perf_counter()
        sequence += 1
        problem = problems[sequence % PROBLEMS]
        spend = f"{time.time_ns():x}-{sequence}"
        db.execute("BEGIN IMMEDIATE")
        row = db.execute(
            "SELECT status, currency, limit_minor, approved_minor, pending_review_minor "
            "FROM problems WHERE id = ?", (problem,)).fetchone()
        db.execute(
            "INSERT INTO spends VALUES (?, ?, 100, 'USD', 'approved', 'Bench Supplies', ?, "
            "'2026-01-01', 'owner', ?, 'team', 1, 0)",
            (spend, problem, f"Benchmark spend {sequence}", now))
        db.execute(
            "UPDATE problems SET approved_minor = approved_minor + 100, updated_at = ? "
            "WHERE id = ? AND status = 'open' AND approved_minor + pending_review_minor + 100 <= limit_minor",
            (now, problem))
        data = json.dumps({"spend_id": spend, "problem_id": problem, "amount": row[1], "pad": payload_pad})
        db.execute(
            "INSERT INTO events VALUES (?, ?, 'owner', 'spend.approved', 'spend', ?, 'team', ?, ?, ?, ?, ?, ?, ?)",
            (f"e{spend}", now, spend, problem, data, sequence, f"problem:{problem}", sequence,
             "0" * 64, "1" * 64))
        db.execute("COMMIT")
        latencies.append(time.perf_counter() - begun)
    elapsed = time.monotonic() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    line = {"label": label, "commits": len(latencies), "seconds": round(elapsed, 3),
            "rate": round(len(latencies) / elapsed, 1), "p50_ms": round(pick(0.50), 3),
            "p99_ms": round(pick(0.99), 3)}
    with open(result, "a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
