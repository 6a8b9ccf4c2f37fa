DROP TABLE problem_budget_alerts;
ALTER TABLE policies DROP COLUMN alert_thresholds_percent;
