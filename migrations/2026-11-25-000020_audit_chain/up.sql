-- Tamper evidence for the event log (docs/audit-chain.md). Every event gets a
-- global `sequence` (the `as_of` of exports) and a place in one hash chain:
-- one chain per problem, one for organisation events. `chain_heads` holds
-- each chain's newest position and hash, updated in the event's transaction;
-- `audit_checkpoints` seals all heads together, chained checkpoint to
-- checkpoint. Events written before this migration keep null chain fields and
-- are reported by verification as unchained.
ALTER TABLE events ADD COLUMN sequence BIGINT;
ALTER TABLE events ADD COLUMN chain_key TEXT;
ALTER TABLE events ADD COLUMN chain_position BIGINT;
ALTER TABLE events ADD COLUMN prev_hash TEXT;
ALTER TABLE events ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX events_sequence ON events (sequence);
CREATE UNIQUE INDEX events_chain ON events (chain_key, chain_position);
CREATE INDEX events_subject_sequence ON events (subject_id, sequence);

CREATE TABLE chain_heads (
    chain_key TEXT PRIMARY KEY NOT NULL,
    position BIGINT NOT NULL CHECK (position >= 0),
    hash TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE audit_checkpoints (
    number BIGINT PRIMARY KEY NOT NULL CHECK (number >= 1),
    -- Every event with sequence <= as_of is covered; none above it.
    as_of BIGINT NOT NULL,
    chain_count BIGINT NOT NULL,
    heads_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    sealed_at TIMESTAMP NOT NULL
);
