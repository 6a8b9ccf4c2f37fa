//! Tamper evidence for the event log: appending an event to its hash
//! chain, the global event sequence and the safe `as_of`. Sealed
//! checkpoints and verification are `db::checkpoints`.
//!
//! Design (docs/audit-chain.md has the long form):
//! - Every event belongs to one chain: `problem:<id>` for events about a
//!   problem (its spends, reviews, voids), `organisation` for the rest
//!   (teams, people, policies). Writers on different problems never touch
//!   the same row, so the chain adds no system-wide hot row on PostgreSQL;
//!   writers on one problem already serialise on its totals row.
//! - An event stores its chain key, its position (1, 2, ...), the previous
//!   event's hash (64 zeros before the first) and its own hash: SHA-256 over
//!   a canonical, length-prefixed encoding of every stored field
//!   ([`event_hash`]). `chain_heads` holds each chain's newest position and
//!   hash, locked and advanced in the event's own transaction.
//! - Every event also takes a global `sequence`. On SQLite it is assigned
//!   under the single write lock, so it is commit order. On PostgreSQL it
//!   comes from a sequence, which is *not* commit order: a transaction may
//!   commit sequence 8 while 7 is still in flight. [`safe_as_of`] therefore
//!   answers the newest sequence below which nothing can still appear, by
//!   waiting out the transactions that were in flight when it read the
//!   sequence. Exports bounded by such an `as_of` read only immutable rows,
//!   so a re-run returns the same bytes.
//! - A checkpoint seals, at a safe `as_of`, the head (position and hash) of
//!   every chain as it stood at that sequence, and links to the previous
//!   checkpoint. Without it, someone with write access to the database could
//!   rewrite a chain's tail and its head row consistently; with it, the
//!   rewrite breaks the sealed digest, whose hash `leeway verify` prints for
//!   keeping outside the database. The server seals one every
//!   [`CHECKPOINT_INTERVAL_SECS`]; `leeway verify` seals one after a clean run.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::events::{EventRow, Subject};
use super::schema::events;
use super::{DbConnection, Error, new_id, prepared};
use crate::domain::event::EventKind;
use crate::encoding::{hex, rfc3339};

/// The previous hash of a chain's first event and of the first checkpoint.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The chain of events that concern no problem.
pub const ORGANISATION_CHAIN: &str = "organisation";
/// Prefix of a problem's chain key.
pub const PROBLEM_CHAIN_PREFIX: &str = "problem:";
/// The PostgreSQL sequence behind `events.sequence`.
pub const EVENT_SEQUENCE_NAME: &str = "leeway_event_sequence";
/// How long [`safe_as_of`] waits between looks at in-flight transactions.
pub const SAFE_AS_OF_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How many looks [`safe_as_of`] takes before answering 503 (10 s in all).
pub const SAFE_AS_OF_POLLS_MAX: u32 = 500;

/// Domain tag, so an event hash can never be confused with another digest.
const EVENT_TAG: &[u8] = b"leeway.event.v1";

/// The chain an event about `problem_id` (or about no problem) belongs to.
#[must_use]
pub fn chain_key(problem_id: Option<&str>) -> String {
    problem_id.map_or_else(
        || ORGANISATION_CHAIN.to_owned(),
        |id| format!("{PROBLEM_CHAIN_PREFIX}{id}"),
    )
}

/// Feeds one field: its length as 8 bytes big-endian, then its bytes; a
/// null is the length `u64::MAX` alone. Length prefixes make the encoding
/// unambiguous (no two field lists encode alike).
pub(super) fn feed(hasher: &mut Sha256, value: Option<&[u8]>) {
    match value {
        Some(bytes) => {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        }
        None => hasher.update(u64::MAX.to_be_bytes()),
    }
}

pub(super) fn feed_number(hasher: &mut Sha256, value: Option<i64>) {
    feed(
        hasher,
        value.map(|n| n.to_string()).as_deref().map(str::as_bytes),
    );
}

pub(super) fn feed_text(hasher: &mut Sha256, value: Option<&str>) {
    feed(hasher, value.map(str::as_bytes));
}

/// The hash of an event: SHA-256 over the canonical encoding of every
/// stored field but the hash itself, in a fixed order.
#[must_use]
pub fn event_hash(event: &EventRow) -> String {
    let mut hasher = Sha256::new();
    feed(&mut hasher, Some(EVENT_TAG));
    feed_text(&mut hasher, event.chain_key.as_deref());
    feed_number(&mut hasher, event.chain_position);
    feed_text(&mut hasher, event.prev_hash.as_deref());
    feed_number(&mut hasher, event.sequence);
    feed_text(&mut hasher, Some(&event.id));
    feed_text(&mut hasher, Some(&rfc3339(event.occurred_at)));
    feed_text(&mut hasher, event.actor_id.as_deref());
    feed_text(&mut hasher, Some(&event.kind));
    feed_text(&mut hasher, Some(&event.subject_type));
    feed_text(&mut hasher, Some(&event.subject_id));
    feed_text(&mut hasher, event.team_id.as_deref());
    feed_text(&mut hasher, event.problem_id.as_deref());
    feed_text(&mut hasher, Some(&event.data));
    hex(&hasher.finalize())
}

/// Where a new event goes in its chain, and its global sequence.
#[derive(Debug, Clone, QueryableByName)]
pub struct Link {
    /// The new event's position.
    #[diesel(sql_type = BigInt)]
    pub position: i64,
    /// The hash of the event before it.
    #[diesel(sql_type = Text)]
    pub prev_hash: String,
    /// The new event's global sequence.
    #[diesel(sql_type = BigInt)]
    pub sequence: i64,
}

/// Advances `key`'s head by one position, creating the chain on its first
/// event, locks the head row until the transaction ends (PostgreSQL: the
/// UPDATE's row lock; SQLite: the write lock already held), and takes the
/// event's global sequence. Must run inside the event's write transaction;
/// [`set_head_hash`] completes it.
pub fn advance_chain(
    connection: &mut DbConnection,
    key: &str,
    at: NaiveDateTime,
) -> Result<Link, Error> {
    if let Some(link) = advance(connection, key, at)? {
        return Ok(link);
    }
    // Portable upsert: both databases read ON CONFLICT DO NOTHING, so two
    // first events of one chain cannot both create it.
    prepared::sql(
        "INSERT INTO chain_heads (chain_key, position, hash, updated_at) \
         VALUES ($1, 0, $2, $3) ON CONFLICT (chain_key) DO NOTHING",
    )
    .bind::<Text, _>(key)
    .bind::<Text, _>(GENESIS_HASH)
    .bind::<Timestamp, _>(at)
    .execute(connection)?;
    advance(connection, key, at)?.ok_or_else(|| Error::missing(&format!("chain head {key}")))
}

/// One step of [`advance_chain`]: `None` when the chain has no head yet.
fn advance(
    connection: &mut DbConnection,
    key: &str,
    at: NaiveDateTime,
) -> Result<Option<Link>, Error> {
    let query = match connection {
        // PostgreSQL-only: one round trip advances the head and takes the
        // sequence. RETURNING runs after the row is updated, so the head is
        // locked and the transaction has its id before the sequence value
        // exists, which [`safe_as_of`] relies on.
        DbConnection::Postgres(_) => format!(
            "UPDATE chain_heads SET position = position + 1, updated_at = $1 \
             WHERE chain_key = $2 \
             RETURNING position, hash AS prev_hash, nextval('{EVENT_SEQUENCE_NAME}') AS sequence"
        ),
        // SQLite: the transaction holds the database's only write lock, so
        // MAX + 1 is unique and in commit order.
        DbConnection::Sqlite(_) => {
            "UPDATE chain_heads SET position = position + 1, updated_at = $1 \
             WHERE chain_key = $2 \
             RETURNING position, hash AS prev_hash, \
             (SELECT COALESCE(MAX(sequence), 0) + 1 FROM events) AS sequence"
                .to_owned()
        }
    };
    // Kept prepared: advanced on every event.
    Ok(prepared::sql(&query)
        .bind::<Timestamp, _>(at)
        .bind::<Text, _>(key)
        .get_result(connection)
        .optional()?)
}

/// Records the new head hash of `key`, in the event's transaction.
pub fn set_head_hash(connection: &mut DbConnection, key: &str, hash: &str) -> Result<(), Error> {
    // Kept prepared (diesel re-parses every DSL UPDATE): once per event.
    prepared::sql("UPDATE chain_heads SET hash = $1 WHERE chain_key = $2")
        .bind::<Text, _>(hash)
        .bind::<Text, _>(key)
        .execute(connection)?;
    Ok(())
}

#[derive(QueryableByName)]
pub(super) struct NumberRow {
    #[diesel(sql_type = BigInt)]
    pub(super) value: i64,
}

#[derive(QueryableByName)]
struct SnapshotRow {
    #[diesel(sql_type = Text)]
    snapshot: String,
}

/// Creates what the chain needs that portable migrations cannot say: the
/// PostgreSQL sequence (SQLite has no sequences and needs nothing).
pub fn install(connection: &mut DbConnection) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    match connection {
        DbConnection::Postgres(_) => connection.batch_execute(&format!(
            "CREATE SEQUENCE IF NOT EXISTS {EVENT_SEQUENCE_NAME} AS BIGINT"
        )),
        DbConnection::Sqlite(_) => Ok(()),
    }
}

/// The newest `as_of` that is safe: every event with a sequence at or below
/// it has committed, and none can appear later. Must run outside a
/// transaction (on PostgreSQL it waits for other transactions to end).
pub fn safe_as_of(connection: &mut DbConnection) -> Result<i64, Error> {
    match connection {
        DbConnection::Sqlite(_) => {
            let row: NumberRow =
                diesel::sql_query("SELECT COALESCE(MAX(sequence), 0) AS value FROM events")
                    .get_result(connection)?;
            Ok(row.value)
        }
        DbConnection::Postgres(_) => postgres_safe_as_of(connection),
    }
}

/// PostgreSQL: read the sequence's last value L, then a snapshot; every
/// transaction holding a value <= L had its transaction id before L was
/// read (see [`advance_chain`]), so it is finished or listed in flight in
/// that snapshot. Once those listed have ended, nothing <= L can appear.
fn postgres_safe_as_of(connection: &mut DbConnection) -> Result<i64, Error> {
    let last: NumberRow = diesel::sql_query(format!(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS value FROM {EVENT_SEQUENCE_NAME}"
    ))
    .get_result(connection)?;
    let snapshot: SnapshotRow =
        diesel::sql_query("SELECT CAST(pg_current_snapshot() AS TEXT) AS snapshot")
            .get_result(connection)?;
    for _ in 0..SAFE_AS_OF_POLLS_MAX {
        let in_flight: NumberRow = diesel::sql_query(
            "SELECT COUNT(*) AS value FROM pg_snapshot_xip(CAST($1 AS pg_snapshot)) AS xid \
             WHERE pg_xact_status(xid) = 'in progress'",
        )
        .bind::<Text, _>(&snapshot.snapshot)
        .get_result(connection)?;
        if in_flight.value == 0 {
            return Ok(last.value);
        }
        std::thread::sleep(SAFE_AS_OF_POLL_INTERVAL);
    }
    Err(Error::Unavailable(
        "transactions stayed in flight too long to fix a safe as_of".to_owned(),
    ))
}

/// Appends an event describing a change at `at`, inside the caller's
/// transaction: chained to the event before it and given the next sequence.
pub fn append(
    connection: &mut DbConnection,
    actor_id: Option<&str>,
    kind: EventKind,
    subject: Subject<'_>,
    data: &impl Serialize,
    at: NaiveDateTime,
) -> Result<(), Error> {
    let data = serde_json::to_string(data)?;
    let chain_key = chain_key(subject.problem_id);
    let link = advance_chain(connection, &chain_key, at)?;
    let mut event = EventRow {
        id: new_id(),
        occurred_at: at,
        actor_id: actor_id.map(str::to_owned),
        kind: kind.as_str().to_owned(),
        subject_type: subject.subject_type.to_owned(),
        subject_id: subject.subject_id.to_owned(),
        team_id: subject.team_id.map(str::to_owned),
        problem_id: subject.problem_id.map(str::to_owned),
        data,
        sequence: Some(link.sequence),
        chain_key: Some(chain_key.clone()),
        chain_position: Some(link.position),
        prev_hash: Some(link.prev_hash),
        hash: None,
    };
    let hash = event_hash(&event);
    event.hash = Some(hash.clone());
    diesel::insert_into(events::table)
        .values(event)
        .execute(connection)?;
    set_head_hash(connection, &chain_key, &hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> EventRow {
        EventRow {
            id: "01936d5e-0000-7000-8000-000000000001".to_owned(),
            occurred_at: chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
                .unwrap()
                .and_hms_micro_opt(10, 30, 0, 123_456)
                .unwrap(),
            actor_id: Some("01936d5e-0000-7000-8000-000000000002".to_owned()),
            kind: "spend.approved".to_owned(),
            subject_type: "spend".to_owned(),
            subject_id: "01936d5e-0000-7000-8000-000000000003".to_owned(),
            team_id: None,
            problem_id: Some("01936d5e-0000-7000-8000-000000000004".to_owned()),
            data: r#"{"status":"approved"}"#.to_owned(),
            sequence: Some(7),
            chain_key: Some("problem:01936d5e-0000-7000-8000-000000000004".to_owned()),
            chain_position: Some(1),
            prev_hash: Some(GENESIS_HASH.to_owned()),
            hash: None,
        }
    }

    /// Pins the canonical encoding: a change here would make every stored
    /// chain fail verification, so it must be a deliberate new version.
    #[test]
    fn the_event_hash_is_pinned() {
        assert_eq!(
            event_hash(&event()),
            "23927645647c75793190b6e16dc294f9e27597e638bcff7a123304e8970a380a"
        );
    }

    #[test]
    fn every_field_and_its_boundaries_count() {
        let base = event_hash(&event());
        let mut moved = event();
        moved.kind = "spend.approve".to_owned();
        moved.subject_type = "dspend".to_owned();
        assert_ne!(event_hash(&moved), base, "a byte moved between fields");
        let mut null_team = event();
        null_team.team_id = Some(String::new());
        assert_ne!(event_hash(&null_team), base, "null differs from empty");
        let mut hashed = event();
        hashed.hash = Some("anything".to_owned());
        assert_eq!(event_hash(&hashed), base, "the stored hash is not hashed");
        for change in [
            |e: &mut EventRow| e.sequence = Some(8),
            |e: &mut EventRow| e.chain_position = Some(2),
            |e: &mut EventRow| e.prev_hash = Some("1".repeat(64)),
            |e: &mut EventRow| e.data = r#"{"status":"rejected"}"#.to_owned(),
            |e: &mut EventRow| e.actor_id = None,
        ] {
            let mut changed = event();
            change(&mut changed);
            assert_ne!(event_hash(&changed), base);
        }
    }

    #[test]
    fn chain_keys_name_the_problem_or_the_organisation() {
        assert_eq!(chain_key(None), ORGANISATION_CHAIN);
        assert_eq!(chain_key(Some("p1")), "problem:p1");
    }
}
