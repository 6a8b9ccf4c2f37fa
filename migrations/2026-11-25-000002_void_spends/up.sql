-- Corrections by reversal: a spend is voided, never edited or deleted. The
-- void is recorded beside the spend (who, when, why) and in the event log.
ALTER TABLE spends ADD COLUMN voided_by TEXT REFERENCES people (id);
ALTER TABLE spends ADD COLUMN voided_at TIMESTAMP;
ALTER TABLE spends ADD COLUMN void_reason TEXT;
