//! Sealed checkpoints of the hash chains and the verification of chains
//! and checkpoints (`GET /v1/audit/verify`, `leeway verify`). The chains
//! themselves are appended by `db::audit`; docs/audit-chain.md has the
//! design.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use sha2::{Digest, Sha256};

use super::audit::{GENESIS_HASH, event_hash, feed, feed_number, feed_text, safe_as_of};
use super::events::EventRow;
use super::schema::{audit_checkpoints, chain_heads, events};
use super::{DbConnection, Error, is_unique_violation};
use crate::encoding::{hex, rfc3339};

/// Chains verified per query.
pub const VERIFY_CHAINS_PAGE_SIZE: i64 = 100;
/// Events verified per query: verification holds one page at a time.
pub const VERIFY_EVENTS_PAGE_SIZE: i64 = 500;
/// How often a server process seals a checkpoint.
pub const CHECKPOINT_INTERVAL_SECS: u64 = 3_600;

/// Domain tags, so a digest of heads or of a checkpoint can never be
/// confused with an event hash.
const HEADS_TAG: &[u8] = b"leeway.heads.v1";
const CHECKPOINT_TAG: &[u8] = b"leeway.checkpoint.v1";

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
pub fn heads_digest(connection: &mut DbConnection, as_of: i64) -> Result<(i64, String), Error> {
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
pub fn latest_checkpoint(connection: &mut DbConnection) -> Result<Option<CheckpointRow>, Error> {
    Ok(audit_checkpoints::table
        .order(audit_checkpoints::number.desc())
        .select(CheckpointRow::as_select())
        .first(connection)
        .optional()?)
}

/// Seals a checkpoint at the newest safe `as_of`, unless nothing happened
/// since the last one (`None`) or another process sealed it first (`None`).
/// Runs outside a transaction: every row it reads is immutable.
pub fn seal_checkpoint(
    connection: &mut DbConnection,
    at: NaiveDateTime,
) -> Result<Option<CheckpointRow>, Error> {
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
        sealed_at: at,
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
pub fn verify(connection: &mut DbConnection) -> Result<VerifyReport, Error> {
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

/// Walks one chain from position 1 to its head, a page at a time.
fn verify_chain(
    connection: &mut DbConnection,
    head: &HeadRow,
    events_checked: &mut i64,
) -> Result<Option<BrokenLink>, Error> {
    let mut walk = ChainWalk::new(head);
    while walk.expected_position <= head.position {
        let page = chain_page(connection, head, walk.expected_position)?;
        if page.is_empty() {
            break;
        }
        for event in page {
            if let Some(broken) = walk.step(event) {
                return Ok(Some(broken));
            }
            *events_checked += 1;
        }
    }
    Ok(walk.finish())
}

/// The chain's events from `from_position` up to its head, at most
/// [`VERIFY_EVENTS_PAGE_SIZE`], in position order.
fn chain_page(
    connection: &mut DbConnection,
    head: &HeadRow,
    from_position: i64,
) -> Result<Vec<EventRow>, Error> {
    Ok(events::table
        .filter(events::chain_key.eq(&head.chain_key))
        .filter(events::chain_position.ge(from_position))
        .filter(events::chain_position.le(head.position))
        .order(events::chain_position.asc())
        .limit(VERIFY_EVENTS_PAGE_SIZE)
        .select(EventRow::as_select())
        .load(connection)?)
}

/// How far a walk along one chain has got: the position and the previous
/// hash the next event must carry.
struct ChainWalk<'head> {
    head: &'head HeadRow,
    expected_position: i64,
    prev_hash: String,
    last_id: Option<String>,
}

impl<'head> ChainWalk<'head> {
    fn new(head: &'head HeadRow) -> Self {
        Self {
            head,
            expected_position: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            last_id: None,
        }
    }

    fn broken(
        &self,
        event_id: Option<&str>,
        position: i64,
        field: &'static str,
        expected: String,
        found: String,
    ) -> BrokenLink {
        BrokenLink {
            event_id: event_id.map(str::to_owned),
            chain_key: self.head.chain_key.clone(),
            position,
            field,
            expected,
            found,
        }
    }

    /// Checks the next event (its position, its link to the one before,
    /// its own hash) and moves past it; the first disagreement otherwise.
    fn step(&mut self, event: EventRow) -> Option<BrokenLink> {
        let position = event.chain_position.unwrap_or_default();
        if position != self.expected_position {
            return Some(self.broken(
                Some(&event.id),
                self.expected_position,
                "position",
                self.expected_position.to_string(),
                position.to_string(),
            ));
        }
        let stored_prev = event.prev_hash.clone().unwrap_or_default();
        if stored_prev != self.prev_hash {
            return Some(self.broken(
                Some(&event.id),
                position,
                "prev_hash",
                self.prev_hash.clone(),
                stored_prev,
            ));
        }
        let recomputed = event_hash(&event);
        let stored = event.hash.clone().unwrap_or_default();
        if stored != recomputed {
            return Some(self.broken(Some(&event.id), position, "hash", recomputed, stored));
        }
        self.prev_hash = stored;
        self.last_id = Some(event.id);
        self.expected_position += 1;
        None
    }

    /// Checks that the walk reached the head: no event missing before it,
    /// and the last hash is the head's.
    fn finish(self) -> Option<BrokenLink> {
        let head = self.head;
        if self.expected_position <= head.position {
            return Some(self.broken(
                None,
                self.expected_position,
                "position",
                format!("an event at position {}", self.expected_position),
                "none".to_owned(),
            ));
        }
        (self.prev_hash != head.hash).then(|| {
            self.broken(
                self.last_id.as_deref(),
                head.position,
                "head",
                self.prev_hash.clone(),
                head.hash.clone(),
            )
        })
    }
}

/// An event in a chain that has no head row: its head was deleted.
fn orphan_chain(connection: &mut DbConnection) -> Result<Option<BrokenLink>, Error> {
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
) -> Result<(), Error> {
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
            if let Some(broken) = checkpoint_link(&checkpoint, after, &prev_hash) {
                report.broken = Some(broken);
                return Ok(());
            }
            report.checkpoints_checked += 1;
            after = checkpoint.number;
            prev_hash.clone_from(&checkpoint.hash);
            latest = Some(checkpoint);
        }
    }
    if let Some(checkpoint) = &latest {
        report.broken = latest_heads(connection, checkpoint)?;
    }
    report.latest_checkpoint = latest;
    Ok(())
}

/// A disagreement of a checkpoint's own fields with `field` (`expected`
/// against `found`).
fn checkpoint_broken(
    checkpoint: &CheckpointRow,
    (field, expected, found): (&'static str, String, String),
) -> BrokenLink {
    BrokenLink {
        event_id: None,
        chain_key: format!("checkpoint:{}", checkpoint.number),
        position: checkpoint.number,
        field,
        expected,
        found,
    }
}

/// Checks that a checkpoint follows number `after` and the hash
/// `prev_hash`, and that its own hash holds.
fn checkpoint_link(checkpoint: &CheckpointRow, after: i64, prev_hash: &str) -> Option<BrokenLink> {
    let recomputed = checkpoint_hash(checkpoint);
    let mismatch = if checkpoint.number != after + 1 {
        Some((
            "number",
            (after + 1).to_string(),
            checkpoint.number.to_string(),
        ))
    } else if checkpoint.prev_hash != prev_hash {
        Some((
            "prev_hash",
            prev_hash.to_owned(),
            checkpoint.prev_hash.clone(),
        ))
    } else if checkpoint.hash != recomputed {
        Some(("hash", recomputed, checkpoint.hash.clone()))
    } else {
        None
    };
    mismatch.map(|mismatch| checkpoint_broken(checkpoint, mismatch))
}

/// Re-derives the heads digest at a checkpoint's `as_of` from the events
/// and compares it, and the chain count, with what the checkpoint sealed.
fn latest_heads(
    connection: &mut DbConnection,
    checkpoint: &CheckpointRow,
) -> Result<Option<BrokenLink>, Error> {
    let (chain_count, heads_hash) = heads_digest(connection, checkpoint.as_of)?;
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
    Ok(mismatch.map(|mismatch| checkpoint_broken(checkpoint, mismatch)))
}
