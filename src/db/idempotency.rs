//! Idempotency keys (draft-ietf-httpapi-idempotency-key-header), scoped to
//! the caller. A key is claimed in a short transaction of its own (so a
//! concurrent retry sees it in flight), then completed in the same
//! transaction as the work it guards, so a stored response exists exactly
//! when the work committed.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::Error;
use super::schema::idempotency_keys;
use super::{DbConnection, is_unique_violation};

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

/// Claims `key` for a request with `fingerprint`, in its own transaction.
pub fn claim(
    connection: &mut DbConnection,
    caller_id: &str,
    key: &str,
    fingerprint: &str,
    now: NaiveDateTime,
) -> Result<Claim, Error> {
    let existing: Option<KeyRow> = idempotency_keys::table
        .find((caller_id, key))
        .select(KeyRow::as_select())
        .first(connection)
        .optional()?;
    let Some(existing) = existing else {
        return insert_claim(connection, caller_id, key, fingerprint, now);
    };
    let target = idempotency_keys::table.find((caller_id, key));
    if existing.created_at + IDEMPOTENCY_KEY_TTL < now {
        diesel::delete(target).execute(connection)?;
        return insert_claim(connection, caller_id, key, fingerprint, now);
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
        diesel::update(target)
            .set(idempotency_keys::locked_at.eq(now))
            .execute(connection)?;
        return Ok(Claim::Proceed);
    }
    Ok(Claim::InFlight)
}

fn insert_claim(
    connection: &mut DbConnection,
    caller_id: &str,
    key: &str,
    fingerprint: &str,
    now: NaiveDateTime,
) -> Result<Claim, Error> {
    let inserted = diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::caller_id.eq(caller_id),
            idempotency_keys::idempotency_key.eq(key),
            idempotency_keys::request_fingerprint.eq(fingerprint),
            idempotency_keys::state.eq("in_flight"),
            idempotency_keys::created_at.eq(now),
            idempotency_keys::locked_at.eq(now),
        ))
        .execute(connection);
    match inserted {
        Ok(_) => Ok(Claim::Proceed),
        // PostgreSQL: a concurrent first request inserted the same key and
        // committed while this one waited on the unique index.
        Err(error) if is_unique_violation(&error) => Ok(Claim::InFlight),
        Err(error) => Err(error.into()),
    }
}

/// Stores the response of the work, inside the work's own transaction.
pub fn complete(
    connection: &mut DbConnection,
    caller_id: &str,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), Error> {
    diesel::update(idempotency_keys::table.find((caller_id, key)))
        .set((
            idempotency_keys::state.eq("completed"),
            idempotency_keys::response_status.eq(i32::from(status)),
            idempotency_keys::response_body.eq(body),
        ))
        .execute(connection)?;
    Ok(())
}

/// Gives a claimed key back after the work failed, so a retry runs it again.
pub fn release(connection: &mut DbConnection, caller_id: &str, key: &str) -> Result<(), Error> {
    diesel::delete(
        idempotency_keys::table
            .find((caller_id, key))
            .filter(idempotency_keys::state.eq("in_flight")),
    )
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
