//! Tamper evidence for the event log: hash chains, the global event
//! sequence, sealed checkpoints and their verification.
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

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
use sha2::{Digest, Sha256};

use super::events::EventRow;
use super::schema::{audit_checkpoints, chain_heads, events};
use super::{DbConnection, is_unique_violation, now, rfc3339};
use crate::encoding::hex;
use crate::error::ApiError;

/// The previous hash of a chain's first event and of the first checkpoint.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The chain of events that concern no problem.
pub const ORGANISATION_CHAIN: &str = "organisation";
/// Prefix of a problem's chain key.
pub const PROBLEM_CHAIN_PREFIX: &str = "problem:";
/// The PostgreSQL sequence behind `events.sequence`.
pub const EVENT_SEQUENCE_NAME: &str = "leeway_event_sequence";
/// Chains verified per query.
pub const VERIFY_CHAINS_PAGE_SIZE: i64 = 100;
/// Events verified per query: verification holds one page at a time.
pub const VERIFY_EVENTS_PAGE_SIZE: i64 = 500;
/// How often a server process seals a checkpoint.
pub const CHECKPOINT_INTERVAL_SECS: u64 = 3_600;
/// How long [`safe_as_of`] waits between looks at in-flight transactions.
pub const SAFE_AS_OF_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How many looks [`safe_as_of`] takes before answering 503 (10 s in all).
pub const SAFE_AS_OF_POLLS_MAX: u32 = 500;

/// Domain tags, so an event hash can never be confused with another digest.
const EVENT_TAG: &[u8] = b"leeway.event.v1";
const HEADS_TAG: &[u8] = b"leeway.heads.v1";
const CHECKPOINT_TAG: &[u8] = b"leeway.checkpoint.v1";

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
fn feed(hasher: &mut Sha256, value: Option<&[u8]>) {
    match value {
        Some(bytes) => {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        }
        None => hasher.update(u64::MAX.to_be_bytes()),
    }
}

fn feed_number(hasher: &mut Sha256, value: Option<i64>) {
    feed(
        hasher,
        value.map(|n| n.to_string()).as_deref().map(str::as_bytes),
    );
}

fn feed_text(hasher: &mut Sha256, value: Option<&str>) {
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

/// Where a new event goes in its chain.
#[derive(Debug, Clone)]
pub struct Link {
    /// The new event's position.
    pub position: i64,
    /// The hash of the event before it.
    pub prev_hash: String,
}

/// Advances `key`'s head by one position, creating the chain on its first
/// event, and locks the head row until the transaction ends (PostgreSQL:
/// the UPDATE's row lock; SQLite: the write lock already held). Must run
/// inside the event's write transaction; [`set_head_hash`] completes it.
pub fn advance_chain(connection: &mut DbConnection, key: &str) -> Result<Link, ApiError> {
    let at = now();
    let advance = |connection: &mut DbConnection| {
        diesel::update(chain_heads::table.find(key))
            .set((
                chain_heads::position.eq(chain_heads::position + 1),
                chain_heads::updated_at.eq(at),
            ))
            .execute(connection)
    };
    if advance(connection)? == 0 {
        // Portable upsert: both databases read ON CONFLICT DO NOTHING, so two
        // first events of one chain cannot both create it.
        diesel::sql_query(
            "INSERT INTO chain_heads (chain_key, position, hash, updated_at) \
             VALUES ($1, 0, $2, $3) ON CONFLICT (chain_key) DO NOTHING",
        )
        .bind::<Text, _>(key)
        .bind::<Text, _>(GENESIS_HASH)
        .bind::<Timestamp, _>(at)
        .execute(connection)?;
        if advance(connection)? != 1 {
            return Err(ApiError::Internal(format!("chain head {key} vanished")));
        }
    }
    let (position, prev_hash) = chain_heads::table
        .find(key)
        .select((chain_heads::position, chain_heads::hash))
        .first(connection)?;
    Ok(Link {
        position,
        prev_hash,
    })
}

/// Records the new head hash of `key`, in the event's transaction.
pub fn set_head_hash(connection: &mut DbConnection, key: &str, hash: &str) -> Result<(), ApiError> {
    diesel::update(chain_heads::table.find(key))
        .set(chain_heads::hash.eq(hash))
        .execute(connection)?;
    Ok(())
}

#[derive(QueryableByName)]
struct NumberRow {
    #[diesel(sql_type = BigInt)]
    value: i64,
}

#[derive(QueryableByName)]
struct SnapshotRow {
    #[diesel(sql_type = Text)]
    snapshot: String,
}

/// The next global event sequence. Call it after [`advance_chain`]: on
/// PostgreSQL that UPDATE has given the transaction its id, which
/// [`safe_as_of`] relies on (every holder of a sequence value is a
/// transaction it can see in flight).
pub fn next_sequence(connection: &mut DbConnection) -> Result<i64, ApiError> {
    let query = match connection {
        DbConnection::Postgres(_) => format!("SELECT nextval('{EVENT_SEQUENCE_NAME}') AS value"),
        // SQLite: the transaction holds the database's only write lock, so
        // MAX + 1 is unique and in commit order.
        DbConnection::Sqlite(_) => {
            "SELECT COALESCE(MAX(sequence), 0) + 1 AS value FROM events".to_owned()
        }
    };
    let row: NumberRow = diesel::sql_query(query).get_result(connection)?;
    Ok(row.value)
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
pub fn safe_as_of(connection: &mut DbConnection) -> Result<i64, ApiError> {
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
/// read (see [`next_sequence`]), so it is finished or listed in flight in
/// that snapshot. Once those listed have ended, nothing <= L can appear.
fn postgres_safe_as_of(connection: &mut DbConnection) -> Result<i64, ApiError> {
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
    Err(ApiError::Unavailable(
        "transactions stayed in flight too long to fix a safe as_of".to_owned(),
    ))
}

/// A sealed checkpoint.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_checkpoints)]
pub struct CheckpointRow {
    /// 1, 2, ...
    pub number: i64,
    /// Every event with a sequence at or below this is covered.
    pub as_of: i64,
    /// How many chains had events by then.
    pub chain_count: i64,
    /// SHA-256 over every chain's head at `as_of`, in chain key order.
    pub heads_hash: String,
    /// The previous checkpoint's hash.
    pub prev_hash: String,
    /// This checkpoint's hash.
    pub hash: String,
    /// When it was sealed.
    pub sealed_at: chrono::NaiveDateTime,
}

/// The hash of a checkpoint over all its other fields.
#[must_use]
pub fn checkpoint_hash(checkpoint: &CheckpointRow) -> String {
    let mut hasher = Sha256::new();
    feed(&mut hasher, Some(CHECKPOINT_TAG));
    feed_number(&mut hasher, Some(checkpoint.number));
    feed_number(&mut hasher, Some(checkpoint.as_of));
    feed_number(&mut hasher, Some(checkpoint.chain_count));
    feed_text(&mut hasher, Some(&checkpoint.heads_hash));
    feed_text(&mut hasher, Some(&checkpoint.prev_hash));
    feed_text(&mut hasher, Some(&rfc3339(checkpoint.sealed_at)));
    hex(&hasher.finalize())
}

#[derive(QueryableByName)]
struct HeadAtRow {
    #[diesel(sql_type = Text)]
    chain_key: String,
    #[diesel(sql_type = BigInt)]
    chain_position: i64,
    #[diesel(sql_type = Nullable<Text>)]
    hash: Option<String>,
}

/// Every chain's head as it stood at `as_of`, digested: `(chain count,
/// SHA-256)`. Reads the chains a page at a time.
pub fn heads_digest(connection: &mut DbConnection, as_of: i64) -> Result<(i64, String), ApiError> {
    let mut hasher = Sha256::new();
    feed(&mut hasher, Some(HEADS_TAG));
    let mut count = 0;
    let mut after = String::new();
    loop {
        let rows: Vec<HeadAtRow> = diesel::sql_query(
            "SELECT e.chain_key, e.chain_position, e.hash FROM events e JOIN ( \
                 SELECT chain_key, MAX(chain_position) AS position FROM events \
                 WHERE sequence <= $1 AND chain_key > $2 \
                 GROUP BY chain_key ORDER BY chain_key LIMIT $3 \
             ) heads ON e.chain_key = heads.chain_key AND e.chain_position = heads.position \
             ORDER BY e.chain_key",
        )
        .bind::<BigInt, _>(as_of)
        .bind::<Text, _>(&after)
        .bind::<BigInt, _>(VERIFY_CHAINS_PAGE_SIZE)
        .load(connection)?;
        let Some(last) = rows.last() else { break };
        after.clone_from(&last.chain_key);
        for row in &rows {
            feed_text(&mut hasher, Some(&row.chain_key));
            feed_number(&mut hasher, Some(row.chain_position));
            feed_text(&mut hasher, row.hash.as_deref());
            count += 1;
        }
    }
    Ok((count, hex(&hasher.finalize())))
}

/// The newest checkpoint, if any.
pub fn latest_checkpoint(connection: &mut DbConnection) -> Result<Option<CheckpointRow>, ApiError> {
    Ok(audit_checkpoints::table
        .order(audit_checkpoints::number.desc())
        .select(CheckpointRow::as_select())
        .first(connection)
        .optional()?)
}

/// Seals a checkpoint at the newest safe `as_of`, unless nothing happened
/// since the last one (`None`) or another process sealed it first (`None`).
/// Runs outside a transaction: every row it reads is immutable.
pub fn seal_checkpoint(connection: &mut DbConnection) -> Result<Option<CheckpointRow>, ApiError> {
    let as_of = safe_as_of(connection)?;
    let previous = latest_checkpoint(connection)?;
    if previous.as_ref().is_some_and(|p| p.as_of >= as_of) || as_of == 0 {
        return Ok(None);
    }
    let (chain_count, heads_hash) = heads_digest(connection, as_of)?;
    let mut checkpoint = CheckpointRow {
        number: previous.as_ref().map_or(1, |p| p.number + 1),
        as_of,
        chain_count,
        heads_hash,
        prev_hash: previous.map_or_else(|| GENESIS_HASH.to_owned(), |p| p.hash),
        hash: String::new(),
        sealed_at: now(),
    };
    checkpoint.hash = checkpoint_hash(&checkpoint);
    match diesel::insert_into(audit_checkpoints::table)
        .values(checkpoint.clone())
        .execute(connection)
    {
        Ok(_) => Ok(Some(checkpoint)),
        Err(error) if is_unique_violation(&error) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The first place where the record disagrees with its hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The event at fault, when one exists (a missing event has none).
    pub event_id: Option<String>,
    /// The chain, or `checkpoint:<n>` for a checkpoint.
    pub chain_key: String,
    /// The position in the chain (or the checkpoint number).
    pub position: i64,
    /// What disagrees: `hash`, `prev_hash`, `position`, `head`, `heads_hash`, ...
    pub field: &'static str,
    /// What the recomputation expects.
    pub expected: String,
    /// What is stored.
    pub found: String,
}

/// What a verification saw.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Chains walked.
    pub chains_checked: i64,
    /// Events whose hash was recomputed.
    pub events_checked: i64,
    /// Events written before the chain existed (no chain fields).
    pub unchained_events: i64,
    /// Checkpoints whose links were checked.
    pub checkpoints_checked: i64,
    /// The newest checkpoint, re-derived from the events.
    pub latest_checkpoint: Option<CheckpointRow>,
    /// The first broken link; `None` when everything holds.
    pub broken: Option<BrokenLink>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = chain_heads)]
struct HeadRow {
    chain_key: String,
    position: i64,
    hash: String,
}

/// Recomputes every chain and checkpoint and reports the first broken link.
/// Reads a bounded page at a time, whatever the table's size. Safe beside
/// concurrent writers: each chain is checked up to the head read first, and
/// everything at or below a head is committed and immutable.
pub fn verify(connection: &mut DbConnection) -> Result<VerifyReport, ApiError> {
    let mut report = VerifyReport::default();
    let mut after = String::new();
    'chains: loop {
        let heads: Vec<HeadRow> = chain_heads::table
            .filter(chain_heads::chain_key.gt(&after))
            .order(chain_heads::chain_key.asc())
            .limit(VERIFY_CHAINS_PAGE_SIZE)
            .select(HeadRow::as_select())
            .load(connection)?;
        let Some(last) = heads.last() else { break };
        after.clone_from(&last.chain_key);
        for head in &heads {
            report.chains_checked += 1;
            if let Some(broken) = verify_chain(connection, head, &mut report.events_checked)? {
                report.broken = Some(broken);
                break 'chains;
            }
        }
    }
    if report.broken.is_none() {
        report.broken = orphan_chain(connection)?;
    }
    report.unchained_events = events::table
        .filter(events::chain_key.is_null())
        .count()
        .get_result(connection)?;
    if report.broken.is_none() {
        verify_checkpoints(connection, &mut report)?;
    }
    Ok(report)
}

/// Walks one chain from position 1 to its head.
fn verify_chain(
    connection: &mut DbConnection,
    head: &HeadRow,
    events_checked: &mut i64,
) -> Result<Option<BrokenLink>, ApiError> {
    let mut expected_position = 1;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut last_id = None;
    let broken = |event_id: Option<&str>, position, field, expected: String, found: String| {
        Some(BrokenLink {
            event_id: event_id.map(str::to_owned),
            chain_key: head.chain_key.clone(),
            position,
            field,
            expected,
            found,
        })
    };
    while expected_position <= head.position {
        let page: Vec<EventRow> = events::table
            .filter(events::chain_key.eq(&head.chain_key))
            .filter(events::chain_position.ge(expected_position))
            .filter(events::chain_position.le(head.position))
            .order(events::chain_position.asc())
            .limit(VERIFY_EVENTS_PAGE_SIZE)
            .select(EventRow::as_select())
            .load(connection)?;
        if page.is_empty() {
            break;
        }
        for event in page {
            let position = event.chain_position.unwrap_or_default();
            if position != expected_position {
                return Ok(broken(
                    Some(&event.id),
                    expected_position,
                    "position",
                    expected_position.to_string(),
                    position.to_string(),
                ));
            }
            let stored_prev = event.prev_hash.clone().unwrap_or_default();
            if stored_prev != prev_hash {
                return Ok(broken(
                    Some(&event.id),
                    position,
                    "prev_hash",
                    prev_hash,
                    stored_prev,
                ));
            }
            let recomputed = event_hash(&event);
            let stored = event.hash.clone().unwrap_or_default();
            if stored != recomputed {
                return Ok(broken(
                    Some(&event.id),
                    position,
                    "hash",
                    recomputed,
                    stored,
                ));
            }
            *events_checked += 1;
            prev_hash = stored;
            last_id = Some(event.id);
            expected_position += 1;
        }
    }
    if expected_position <= head.position {
        return Ok(broken(
            None,
            expected_position,
            "position",
            format!("an event at position {expected_position}"),
            "none".to_owned(),
        ));
    }
    if prev_hash != head.hash {
        return Ok(broken(
            last_id.as_deref(),
            head.position,
            "head",
            prev_hash,
            head.hash.clone(),
        ));
    }
    Ok(None)
}

/// An event in a chain that has no head row: its head was deleted.
fn orphan_chain(connection: &mut DbConnection) -> Result<Option<BrokenLink>, ApiError> {
    let orphan: Option<EventRow> = events::table
        .left_join(chain_heads::table.on(chain_heads::chain_key.nullable().eq(events::chain_key)))
        .filter(events::chain_key.is_not_null())
        .filter(chain_heads::chain_key.nullable().is_null())
        .select(EventRow::as_select())
        .first(connection)
        .optional()?;
    Ok(orphan.map(|event| BrokenLink {
        chain_key: event.chain_key.clone().unwrap_or_default(),
        position: event.chain_position.unwrap_or_default(),
        event_id: Some(event.id),
        field: "head",
        expected: "a chain head".to_owned(),
        found: "none".to_owned(),
    }))
}

/// Checks every checkpoint's hash and link, and re-derives the newest one's
/// heads digest from the events.
fn verify_checkpoints(
    connection: &mut DbConnection,
    report: &mut VerifyReport,
) -> Result<(), ApiError> {
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut after = 0;
    let mut latest = None;
    loop {
        let page: Vec<CheckpointRow> = audit_checkpoints::table
            .filter(audit_checkpoints::number.gt(after))
            .order(audit_checkpoints::number.asc())
            .limit(VERIFY_EVENTS_PAGE_SIZE)
            .select(CheckpointRow::as_select())
            .load(connection)?;
        if page.is_empty() {
            break;
        }
        for checkpoint in page {
            let key = format!("checkpoint:{}", checkpoint.number);
            let recomputed = checkpoint_hash(&checkpoint);
            let mismatch = if checkpoint.number != after + 1 {
                Some((
                    "number",
                    (after + 1).to_string(),
                    checkpoint.number.to_string(),
                ))
            } else if checkpoint.prev_hash != prev_hash {
                Some(("prev_hash", prev_hash.clone(), checkpoint.prev_hash.clone()))
            } else if checkpoint.hash != recomputed {
                Some(("hash", recomputed, checkpoint.hash.clone()))
            } else {
                None
            };
            if let Some((field, expected, found)) = mismatch {
                report.broken = Some(BrokenLink {
                    event_id: None,
                    chain_key: key,
                    position: checkpoint.number,
                    field,
                    expected,
                    found,
                });
                return Ok(());
            }
            report.checkpoints_checked += 1;
            after = checkpoint.number;
            prev_hash.clone_from(&checkpoint.hash);
            latest = Some(checkpoint);
        }
    }
    if let Some(checkpoint) = &latest {
        let (chain_count, heads_hash) = heads_digest(connection, checkpoint.as_of)?;
        let key = format!("checkpoint:{}", checkpoint.number);
        let mismatch = if heads_hash == checkpoint.heads_hash {
            (chain_count != checkpoint.chain_count).then(|| {
                (
                    "chain_count",
                    chain_count.to_string(),
                    checkpoint.chain_count.to_string(),
                )
            })
        } else {
            Some(("heads_hash", heads_hash, checkpoint.heads_hash.clone()))
        };
        if let Some((field, expected, found)) = mismatch {
            report.broken = Some(BrokenLink {
                event_id: None,
                chain_key: key,
                position: checkpoint.number,
                field,
                expected,
                found,
            });
        }
    }
    report.latest_checkpoint = latest;
    Ok(())
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
