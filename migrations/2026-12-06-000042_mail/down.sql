DROP TABLE mail_digests;
DROP TABLE mail_outbox;
DROP TABLE mail_cursor;
ALTER TABLE people DROP COLUMN notify;
