//! The audit use cases: verifying the hash chains and checkpoints, reading
//! the audit trail, and the `as_of` every export is pinned to. Finance and
//! admins only (DESIGN.md §4); the rule lives in [`require_finance`].

use serde::Serialize;

use super::Error;
use crate::db::checkpoints::{self, BrokenLink, CheckpointRow, VerifyReport};
use crate::db::events::{self, EventFilter, EventRow};
use crate::db::{DbConnection, Page, PageRequest, audit};
use crate::domain::access::Caller;
use crate::encoding::rfc3339;

/// Finance and admins read everything; anyone else is refused with
/// `refusal` (e.g. "exports are for finance and admins").
pub fn require_finance(caller: &Caller, refusal: &str) -> Result<(), Error> {
    if caller.reads_everything() {
        Ok(())
    } else {
        Err(Error::Forbidden(refusal.to_owned()))
    }
}

/// A checkpoint in a verification report.
#[derive(Debug, Serialize)]
pub struct CheckpointReport {
    number: i64,
    as_of: i64,
    chain_count: i64,
    heads_hash: String,
    prev_hash: String,
    hash: String,
    sealed_at: String,
}

impl From<CheckpointRow> for CheckpointReport {
    fn from(row: CheckpointRow) -> Self {
        Self {
            number: row.number,
            as_of: row.as_of,
            chain_count: row.chain_count,
            heads_hash: row.heads_hash,
            prev_hash: row.prev_hash,
            hash: row.hash,
            sealed_at: rfc3339(row.sealed_at),
        }
    }
}

/// The first broken link in a verification report.
#[derive(Debug, Serialize)]
pub struct BrokenLinkReport {
    event_id: Option<String>,
    chain: String,
    position: i64,
    field: &'static str,
    expected: String,
    found: String,
}

impl From<BrokenLink> for BrokenLinkReport {
    fn from(link: BrokenLink) -> Self {
        Self {
            event_id: link.event_id,
            chain: link.chain_key,
            position: link.position,
            field: link.field,
            expected: link.expected,
            found: link.found,
        }
    }
}

/// What a verification found, in the shape both `GET /v1/audit/verify` and
/// `leeway verify` print.
#[derive(Debug, Serialize)]
pub struct Verification {
    /// True when every chain and checkpoint holds.
    pub ok: bool,
    chains_checked: i64,
    events_checked: i64,
    unchained_events: i64,
    checkpoints_checked: i64,
    latest_checkpoint: Option<CheckpointReport>,
    /// The first broken link, or null.
    pub broken: Option<BrokenLinkReport>,
    newest_safe_as_of: i64,
}

impl Verification {
    fn new(report: VerifyReport, newest_safe_as_of: i64) -> Self {
        Self {
            ok: report.broken.is_none(),
            chains_checked: report.chains_checked,
            events_checked: report.events_checked,
            unchained_events: report.unchained_events,
            checkpoints_checked: report.checkpoints_checked,
            latest_checkpoint: report.latest_checkpoint.map(CheckpointReport::from),
            broken: report.broken.map(BrokenLinkReport::from),
            newest_safe_as_of,
        }
    }
}

/// Verifies everything on one connection, outside any transaction, for
/// whoever holds the database itself (the `leeway verify` command).
pub fn run_verification(connection: &mut DbConnection) -> Result<Verification, Error> {
    let newest_safe_as_of = audit::safe_as_of(connection)?;
    let report = checkpoints::verify(connection)?;
    Ok(Verification::new(report, newest_safe_as_of))
}

/// Verifies everything for `caller`, who must be finance or an admin.
pub fn verify(connection: &mut DbConnection, caller: &Caller) -> Result<Verification, Error> {
    require_finance(caller, "audit verification is for finance and admins")?;
    run_verification(connection)
}

/// One page of the audit trail, oldest first, for finance and admins.
pub fn events(
    connection: &mut DbConnection,
    caller: &Caller,
    filter: &EventFilter,
    page: &PageRequest,
) -> Result<Page<EventRow>, Error> {
    require_finance(caller, "the audit trail is for finance and admins")?;
    Ok(events::list(connection, filter, page)?)
}

/// One page of the change feed: events after a sequence, in sequence order.
#[derive(Debug)]
pub struct FeedPage {
    /// The events, oldest sequence first.
    pub rows: Vec<EventRow>,
    /// Where the next page starts: the last event's sequence when the page
    /// is full, otherwise the safe horizon this page was read up to (every
    /// event at or below it has been considered, so none can appear there
    /// later).
    pub next_after_sequence: i64,
}

/// The change feed for finance and admins: up to `page.limit` events
/// `filter` admits with a sequence above `after_sequence` (and an id above
/// `page.after`, if given), never past the safe
/// horizon (`db::audit::safe_as_of`), so a client that continues from
/// `next_after_sequence` never steps over an event that commits late.
/// Must run outside a transaction, like [`resolve_as_of`].
pub fn feed(
    connection: &mut DbConnection,
    caller: &Caller,
    filter: &EventFilter,
    page: &PageRequest,
    after_sequence: i64,
) -> Result<FeedPage, Error> {
    require_finance(caller, "the audit trail is for finance and admins")?;
    let safe = audit::safe_as_of(connection)?;
    if after_sequence > safe {
        return Err(super::Refusal::AfterSequenceAhead {
            asked: after_sequence,
            safe,
        }
        .into());
    }
    let rows = events::list_by_sequence(connection, filter, page, after_sequence, safe)?;
    let full = usize::try_from(page.limit).is_ok_and(|limit| rows.len() == limit);
    let next_after_sequence = match rows.last() {
        Some(last) if full => last
            .sequence
            .ok_or_else(|| Error::Internal("a sequenced event without a sequence".to_owned()))?,
        _ => safe,
    };
    Ok(FeedPage {
        rows,
        next_after_sequence,
    })
}

/// The `as_of` to read at: the one asked for, or the newest safe one (see
/// `db::audit::safe_as_of`). A newer one is refused: the ledger has not
/// reached it, and a read that would change on a re-run must not claim a
/// fixed `as_of`.
pub fn resolve_as_of(connection: &mut DbConnection, asked: Option<i64>) -> Result<i64, Error> {
    let safe = audit::safe_as_of(connection)?;
    match asked {
        Some(asked) if asked > safe => Err(super::Refusal::AsOfAhead { asked, safe }.into()),
        Some(asked) => Ok(asked),
        None => Ok(safe),
    }
}
