ALTER TABLE spends DROP COLUMN void_reason;
ALTER TABLE spends DROP COLUMN voided_at;
ALTER TABLE spends DROP COLUMN voided_by;
