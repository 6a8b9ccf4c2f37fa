-- Budget alerts (`problem.budget_threshold`): each policy version names the
-- percentages of a problem's limit at which approved + pending_review is
-- announced, and each crossing is recorded once per threshold per limit
-- version, so a total that falls and rises again is not announced twice.
ALTER TABLE policies ADD COLUMN alert_thresholds_percent TEXT NOT NULL DEFAULT '[80,100]';

CREATE TABLE problem_budget_alerts (
    problem_id TEXT NOT NULL REFERENCES problems (id),
    limit_version INTEGER NOT NULL,
    threshold_percent INTEGER NOT NULL CHECK (threshold_percent >= 1),
    crossed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (problem_id, limit_version, threshold_percent)
);
