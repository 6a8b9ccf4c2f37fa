-- Mail to the people who must act (README "Email"). Like webhooks, what is
-- owed comes from the event log: `mail_cursor` is how far the log has been
-- turned into mail, advanced in the same transaction that queues the mail
-- in `mail_outbox`, from which a sender delivers with retries. Each person
-- chooses `notify`: every mail at once, one digest a day, or none.
ALTER TABLE people ADD COLUMN notify TEXT NOT NULL DEFAULT 'immediate'
    CHECK (notify IN ('immediate', 'daily_digest', 'off'));

CREATE TABLE mail_cursor (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    -- Every event at or below this sequence has had its mail queued.
    after_sequence BIGINT NOT NULL CHECK (after_sequence >= 0)
);
-- Mail starts with what happens after this migration, not the history.
INSERT INTO mail_cursor (id, after_sequence)
    SELECT 1, COALESCE(MAX(sequence), 0) FROM events;

CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES people (id),
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    -- The event that caused it; null for a digest.
    event_id TEXT,
    created_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    last_error TEXT,
    lease_token TEXT,
    lease_expires_at TIMESTAMP
);
CREATE INDEX mail_outbox_next_attempt_at ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;

-- One digest per person per day (UTC date).
CREATE TABLE mail_digests (
    person_id TEXT NOT NULL REFERENCES people (id),
    digest_on TEXT NOT NULL,
    PRIMARY KEY (person_id, digest_on)
);
