-- The delegation workflow (issue 3): approval authority, per-person period
-- allowances, alignment before autonomy, review routing up the team tree with
-- SLA escalation, partial approval, versioned limit changes and delegated
-- review authority. Portable to PostgreSQL and SQLite like every migration.

-- Policy knobs. All optional: a policy without them behaves as before.
ALTER TABLE policies ADD COLUMN approval_limit_minor BIGINT CHECK (approval_limit_minor > 0);
ALTER TABLE policies ADD COLUMN period_allowance_minor BIGINT CHECK (period_allowance_minor > 0);
ALTER TABLE policies ADD COLUMN require_acknowledgement BOOLEAN NOT NULL DEFAULT FALSE;

-- Problems: every limit change is a numbered version; success criteria are
-- numbered too, and an acknowledgement counts only for the version it read.
ALTER TABLE problems ADD COLUMN limit_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE problems ADD COLUMN criteria_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE problems ADD COLUMN acknowledged_version INTEGER;
ALTER TABLE problems ADD COLUMN acknowledged_at TIMESTAMP;
-- Pinned with the policy version, like the limit.
ALTER TABLE problems ADD COLUMN require_acknowledgement BOOLEAN NOT NULL DEFAULT FALSE;

-- Spends: why a spend was flagged, which policy version judged it, who it is
-- routed to (null reviewer while pending: routed to the admins), the reviewer
-- it was routed to before SLA escalation (who may still decide), when it
-- escalates next, how much a partial approval approved, and on whose behalf a
-- delegate decided. route_version guards every routing change
-- (compare-and-set), so concurrent escalators and reviewers never both move it.
ALTER TABLE spends ADD COLUMN flag_reasons TEXT;
ALTER TABLE spends ADD COLUMN policy_team_id TEXT;
ALTER TABLE spends ADD COLUMN policy_version INTEGER;
ALTER TABLE spends ADD COLUMN approved_amount_minor BIGINT CHECK (approved_amount_minor > 0);
ALTER TABLE spends ADD COLUMN reviewer_id TEXT REFERENCES people (id);
ALTER TABLE spends ADD COLUMN review_team_id TEXT REFERENCES teams (id);
ALTER TABLE spends ADD COLUMN original_reviewer_id TEXT REFERENCES people (id);
ALTER TABLE spends ADD COLUMN original_review_team_id TEXT REFERENCES teams (id);
ALTER TABLE spends ADD COLUMN review_due_at TIMESTAMP;
ALTER TABLE spends ADD COLUMN decided_on_behalf_of TEXT REFERENCES people (id);
ALTER TABLE spends ADD COLUMN route_version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX spends_review_due_at ON spends (status, review_due_at);
CREATE INDEX spends_reviewer_id ON spends (reviewer_id, status, id);
CREATE INDEX spends_original_reviewer_id ON spends (original_reviewer_id, status, id);
CREATE INDEX spends_review_team_id ON spends (review_team_id, status, id);

-- Spends already pending go to their team's manager unless that manager
-- logged the spend or owns the problem; then to the admins.
UPDATE spends SET
    review_team_id = (
        SELECT teams.id FROM problems JOIN teams ON teams.id = problems.team_id
        WHERE problems.id = spends.problem_id AND teams.manager_id IS NOT NULL
          AND teams.manager_id <> spends.logged_by AND teams.manager_id <> problems.owner_id
    ),
    flag_reasons = 'over_problem_limit'
WHERE status = 'pending_review';
UPDATE spends SET reviewer_id = (SELECT manager_id FROM teams WHERE teams.id = spends.review_team_id)
WHERE status = 'pending_review' AND review_team_id IS NOT NULL;
UPDATE spends SET flag_reasons = 'over_problem_limit'
WHERE flag_reasons IS NULL AND overrun_minor IS NOT NULL;

-- Every step of a spend's review, in order: routed, escalated, endorsed
-- (approved by someone without enough authority, moved up), approved,
-- rejected. Never updated.
CREATE TABLE spend_review_steps (
    spend_id TEXT NOT NULL REFERENCES spends (id),
    step INTEGER NOT NULL CHECK (step >= 1),
    action TEXT NOT NULL CHECK (action IN ('routed', 'escalated', 'endorsed', 'approved', 'rejected')),
    -- Null when the server acted (routing on logging, SLA escalation).
    actor_id TEXT REFERENCES people (id),
    on_behalf_of_id TEXT REFERENCES people (id),
    -- Where the spend went (routed, escalated, endorsed); null reviewer = the admins.
    reviewer_id TEXT REFERENCES people (id),
    review_team_id TEXT REFERENCES teams (id),
    approved_amount_minor BIGINT,
    note TEXT,
    at TIMESTAMP NOT NULL,
    PRIMARY KEY (spend_id, step)
);

-- Every limit a problem has had: version 1 is the one it was opened with.
CREATE TABLE problem_limit_changes (
    problem_id TEXT NOT NULL REFERENCES problems (id),
    version INTEGER NOT NULL CHECK (version >= 1),
    limit_minor BIGINT NOT NULL CHECK (limit_minor >= 0),
    previous_limit_minor BIGINT,
    policy_team_id TEXT,
    policy_version INTEGER,
    changed_by TEXT NOT NULL REFERENCES people (id),
    changed_at TIMESTAMP NOT NULL,
    reason TEXT,
    PRIMARY KEY (problem_id, version)
);
INSERT INTO problem_limit_changes
    (problem_id, version, limit_minor, previous_limit_minor, policy_team_id, policy_version, changed_by, changed_at, reason)
SELECT id, 1, limit_minor, NULL, policy_team_id, policy_version, opened_by, opened_at, NULL FROM problems;

-- Running per-person, per-calendar-month (UTC) totals of autonomously
-- approved spends, so the period allowance check is one guarded update.
CREATE TABLE period_totals (
    person_id TEXT NOT NULL REFERENCES people (id),
    period TEXT NOT NULL,
    currency TEXT NOT NULL,
    autonomous_minor BIGINT NOT NULL DEFAULT 0 CHECK (autonomous_minor >= 0),
    PRIMARY KEY (person_id, period, currency)
);
INSERT INTO period_totals (person_id, period, currency, autonomous_minor)
SELECT problems.owner_id, SUBSTR(CAST(spends.logged_at AS TEXT), 1, 7), spends.currency, SUM(spends.amount_minor)
FROM spends JOIN problems ON problems.id = spends.problem_id
WHERE spends.status = 'approved'
GROUP BY problems.owner_id, SUBSTR(CAST(spends.logged_at AS TEXT), 1, 7), spends.currency;

-- A manager handing their review queue to another manager for a window.
CREATE TABLE review_delegations (
    id TEXT PRIMARY KEY NOT NULL,
    delegator_id TEXT NOT NULL REFERENCES people (id),
    delegate_id TEXT NOT NULL REFERENCES people (id),
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    note TEXT,
    created_by TEXT NOT NULL REFERENCES people (id),
    created_at TIMESTAMP NOT NULL,
    revoked_by TEXT REFERENCES people (id),
    revoked_at TIMESTAMP,
    CHECK (ends_at > starts_at),
    CHECK (delegate_id <> delegator_id)
);
CREATE INDEX review_delegations_delegate_id ON review_delegations (delegate_id, ends_at);
CREATE INDEX review_delegations_delegator_id ON review_delegations (delegator_id, id);
