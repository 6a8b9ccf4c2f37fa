-- Leeway's core ledger schema. One portable set for PostgreSQL and SQLite:
-- only TEXT, INTEGER, BIGINT, DATE and TIMESTAMP columns (the types diesel's
-- MultiConnection shares across both), ids are UUIDv7 strings, timestamps are
-- UTC, money is BIGINT minor units beside an ISO 4217 currency code.

CREATE TABLE teams (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    parent_id TEXT REFERENCES teams (id),
    -- No foreign key: people reference teams, so a key here would be circular
    -- and SQLite cannot add one later. The application checks it in the same
    -- transaction that sets it.
    manager_id TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX teams_parent_id ON teams (parent_id);
CREATE INDEX teams_manager_id ON teams (manager_id);

CREATE TABLE people (
    id TEXT PRIMARY KEY NOT NULL,
    subject TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    email TEXT,
    team_id TEXT REFERENCES teams (id),
    role TEXT NOT NULL CHECK (role IN ('member', 'manager', 'finance', 'admin')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX people_team_id ON people (team_id);

CREATE TABLE policies (
    team_id TEXT NOT NULL REFERENCES teams (id),
    version INTEGER NOT NULL CHECK (version >= 1),
    per_problem_limit_minor BIGINT NOT NULL CHECK (per_problem_limit_minor > 0),
    currency TEXT NOT NULL,
    review_sla_hours INTEGER NOT NULL CHECK (review_sla_hours >= 1),
    effective_from TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL REFERENCES people (id),
    PRIMARY KEY (team_id, version)
);

CREATE TABLE problems (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams (id),
    owner_id TEXT NOT NULL REFERENCES people (id),
    title TEXT NOT NULL,
    success_criteria TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    currency TEXT NOT NULL,
    limit_minor BIGINT NOT NULL CHECK (limit_minor >= 0),
    -- Running totals: the limit check reads and guards these, never a sum over spends.
    approved_minor BIGINT NOT NULL DEFAULT 0 CHECK (approved_minor >= 0),
    pending_review_minor BIGINT NOT NULL DEFAULT 0 CHECK (pending_review_minor >= 0),
    -- The policy version the limit was pinned from; null when a manager set it explicitly.
    policy_team_id TEXT,
    policy_version INTEGER,
    opened_by TEXT NOT NULL REFERENCES people (id),
    opened_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX problems_team_id ON problems (team_id, id);
CREATE INDEX problems_owner_id ON problems (owner_id, id);

CREATE TABLE spends (
    id TEXT PRIMARY KEY NOT NULL,
    problem_id TEXT NOT NULL REFERENCES problems (id),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('approved', 'pending_review', 'approved_by_manager', 'rejected', 'voided')),
    overrun_minor BIGINT CHECK (overrun_minor > 0),
    merchant TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT,
    spent_on DATE NOT NULL,
    receipt_url TEXT,
    logged_by TEXT NOT NULL REFERENCES people (id),
    logged_at TIMESTAMP NOT NULL,
    decided_by TEXT REFERENCES people (id),
    decided_at TIMESTAMP,
    decision_note TEXT
);
CREATE INDEX spends_problem_id ON spends (problem_id, id);
CREATE INDEX spends_status ON spends (status, id);
CREATE INDEX spends_logged_by ON spends (logged_by, id);

CREATE TABLE events (
    id TEXT PRIMARY KEY NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    actor_id TEXT,
    kind TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    team_id TEXT,
    problem_id TEXT,
    data TEXT NOT NULL
);
CREATE INDEX events_kind ON events (kind, id);
CREATE INDEX events_problem_id ON events (problem_id, id);

CREATE TABLE idempotency_keys (
    caller_id TEXT NOT NULL REFERENCES people (id),
    idempotency_key TEXT NOT NULL,
    request_fingerprint TEXT NOT NULL,
    -- 'in_flight' while the first request runs, 'completed' once its response is stored.
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'completed')),
    response_status INTEGER,
    response_body TEXT,
    created_at TIMESTAMP NOT NULL,
    locked_at TIMESTAMP NOT NULL,
    PRIMARY KEY (caller_id, idempotency_key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
