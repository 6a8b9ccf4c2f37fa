//! Idempotency keys (draft-ietf-httpapi-idempotency-key-header), scoped to
//! the caller. A key is claimed, its work done and its response stored in
//! one transaction: a stored key exists exactly when its work committed, so
//! a crash leaves nothing behind and a retry after a restart gets its
//! definitive answer at once.
//!
//! Two requests with one key at the same time: on PostgreSQL the second
//! one's claim waits on the first one's uncommitted row (bounded by the
//! statement timeout), then replays what the first stored, or runs if the
//! first failed and rolled back. On SQLite every write goes through the
//! one writer, so the second simply runs after the first.
//!
//! A key stored as `in_flight` by a committed transaction can only come
//! from a process of an earlier version, which claimed keys in a
//! transaction of their own: it answers "in flight" until
//! [`IDEMPOTENCY_LOCK_TIMEOUT`] after its claim, then is taken over.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text, Timestamp};

use super::DbConnection;
use super::Error;
use super::prepared;
use super::schema::idempotency_keys;

/// How long a key is remembered. A retry after this is a new request.
pub const IDEMPOTENCY_KEY_TTL: Duration = Duration::hours(24);
/// How long a claimed key stays in flight before a retry may take it over
/// (the first request's process may have died between claim and commit).
pub const IDEMPOTENCY_LOCK_TIMEOUT: Duration = Duration::seconds(60);

/// What a claim found.
#[derive(Debug)]
pub enum Claim {
    /// The key is the caller's to use: run the work.
    Proceed,
    /// The same request completed before: send its response again.
    Replay {
        /// The stored status code.
        status: u16,
        /// The stored JSON body.
        body: String,
    },
    /// The key was used before with a different request.
    Reused,
    /// A request with this key is still being processed.
    InFlight,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
struct KeyRow {
    request_fingerprint: String,
    state: String,
    response_status: Option<i32>,
    response_body: Option<String>,
    created_at: NaiveDateTime,
    locked_at: NaiveDateTime,
}

/// Claims `key` for a request with `fingerprint`, inside the transaction
/// that will do the work and [`complete`] the key.
pub fn claim(
    connection: &mut DbConnection,
    caller_id: &str,
    key: &str,
    fingerprint: &str,
    now: NaiveDateTime,
) -> Result<Claim, Error> {
    // Portable upsert: both databases read ON CONFLICT DO NOTHING. On
    // PostgreSQL it waits for a concurrent transaction holding the same key
    // to end, so what is read next is that transaction's outcome.
    let inserted = prepared::sql(
        "INSERT INTO idempotency_keys \
         (caller_id, idempotency_key, request_fingerprint, state, created_at, locked_at) \
         VALUES ($1, $2, $3, 'in_flight', $4, $4) \
         ON CONFLICT (caller_id, idempotency_key) DO NOTHING",
    )
    .bind::<Text, _>(caller_id)
    .bind::<Text, _>(key)
    .bind::<Text, _>(fingerprint)
    .bind::<Timestamp, _>(now)
    .execute(connection)?;
    if inserted == 1 {
        return Ok(Claim::Proceed);
    }
    let existing: KeyRow = idempotency_keys::table
        .find((caller_id, key))
        .select(KeyRow::as_select())
        .get_result(connection)
        .optional()?
        .ok_or_else(|| Error::missing("a conflicting idempotency key"))?;
    if existing.created_at + IDEMPOTENCY_KEY_TTL < now {
        take_over(connection, caller_id, key, fingerprint, now)?;
        return Ok(Claim::Proceed);
    }
    if existing.request_fingerprint != fingerprint {
        return Ok(Claim::Reused);
    }
    if existing.state == "completed" {
        let status = existing
            .response_status
            .and_then(|status| u16::try_from(status).ok());
        return match (status, existing.response_body) {
            (Some(status), Some(body)) => Ok(Claim::Replay { status, body }),
            _ => Err(Error::Internal(
                "completed idempotency key without a response".to_owned(),
            )),
        };
    }
    if existing.locked_at + IDEMPOTENCY_LOCK_TIMEOUT < now {
        take_over(connection, caller_id, key, fingerprint, now)?;
        return Ok(Claim::Proceed);
    }
    Ok(Claim::InFlight)
}

/// Makes an expired or abandoned key this request's, as if new.
fn take_over(
    connection: &mut DbConnection,
    caller_id: &str,
    key: &str,
    fingerprint: &str,
    now: NaiveDateTime,
) -> Result<(), Error> {
    diesel::update(idempotency_keys::table.find((caller_id, key)))
        .set((
            idempotency_keys::request_fingerprint.eq(fingerprint),
            idempotency_keys::state.eq("in_flight"),
            idempotency_keys::response_status.eq(None::<i32>),
            idempotency_keys::response_body.eq(None::<String>),
            idempotency_keys::created_at.eq(now),
            idempotency_keys::locked_at.eq(now),
        ))
        .execute(connection)?;
    Ok(())
}

/// Stores the response of the work, inside the work's own transaction.
pub fn complete(
    connection: &mut DbConnection,
    caller_id: &str,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), Error> {
    // Kept prepared (diesel re-parses every DSL UPDATE): one per keyed write.
    prepared::sql(
        "UPDATE idempotency_keys SET state = 'completed', response_status = $1, response_body = $2 \
         WHERE caller_id = $3 AND idempotency_key = $4",
    )
    .bind::<Integer, _>(i32::from(status))
    .bind::<Text, _>(body)
    .bind::<Text, _>(caller_id)
    .bind::<Text, _>(key)
    .execute(connection)?;
    Ok(())
}

/// Most expired keys removed by one purge, so a purge is a short transaction.
pub const PURGE_BATCH_SIZE: i64 = 1_000;

/// Deletes up to [`PURGE_BATCH_SIZE`] keys older than [`IDEMPOTENCY_KEY_TTL`];
/// returns how many. Safe to run from several processes at once.
pub fn purge_expired(connection: &mut DbConnection, now: NaiveDateTime) -> Result<usize, Error> {
    let cutoff = now - IDEMPOTENCY_KEY_TTL;
    let expired: Vec<(String, String)> = idempotency_keys::table
        .filter(idempotency_keys::created_at.lt(cutoff))
        .select((
            idempotency_keys::caller_id,
            idempotency_keys::idempotency_key,
        ))
        .limit(PURGE_BATCH_SIZE)
        .load(connection)?;
    let mut purged = 0;
    for (caller_id, key) in &expired {
        purged += diesel::delete(
            idempotency_keys::table
                .find((caller_id, key))
                .filter(idempotency_keys::created_at.lt(cutoff)),
        )
        .execute(connection)?;
    }
    Ok(purged)
}
