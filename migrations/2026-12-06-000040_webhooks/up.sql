-- Webhooks (README "Webhooks"). What to deliver is the event log itself:
-- each endpoint keeps its position in it (`after_sequence`), advanced only
-- after a delivery succeeds or is given up, so the change that causes a
-- delivery and the record that it is owed commit together, and a crash at
-- any moment loses none. `webhook_deliveries` logs every attempt.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    -- The webhook event types delivered, as a JSON array of strings.
    event_types TEXT NOT NULL,
    -- `whsec_` + base64 of 32 random bytes; needed in the clear to sign.
    secret TEXT NOT NULL,
    -- After a rotation the old secret signs beside the new one until it expires.
    previous_secret TEXT,
    previous_secret_expires_at TIMESTAMP,
    disabled BOOLEAN NOT NULL,
    disabled_reason TEXT,
    -- Every event with a sequence at or below it was delivered or given up.
    after_sequence BIGINT NOT NULL CHECK (after_sequence >= 0),
    -- A `webhook.test` message waiting to go out before the next event.
    test_message_id TEXT,
    test_requested_at TIMESTAMP,
    -- Failed attempts at the message at the head of this endpoint's queue.
    attempts_failed INTEGER NOT NULL CHECK (attempts_failed >= 0),
    next_attempt_at TIMESTAMP NOT NULL,
    -- When the current run of failures began; null while deliveries succeed.
    failing_since TIMESTAMP,
    -- The process delivering to this endpoint now, until the lease expires.
    lease_token TEXT,
    lease_expires_at TIMESTAMP,
    created_by TEXT NOT NULL REFERENCES people (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX webhook_endpoints_next_attempt_at ON webhook_endpoints (next_attempt_at);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The `webhook-id` header: the event's id, or the test message's.
    message_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- The event's sequence; null for a test message.
    sequence BIGINT,
    attempt INTEGER NOT NULL CHECK (attempt >= 1),
    attempted_at TIMESTAMP NOT NULL,
    response_status INTEGER,
    error TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed')),
    next_attempt_at TIMESTAMP,
    duration_ms BIGINT NOT NULL CHECK (duration_ms >= 0)
);
CREATE INDEX webhook_deliveries_endpoint_id ON webhook_deliveries (endpoint_id, id);
