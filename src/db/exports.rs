//! Reads for finance exports, one bounded page at a time, as of an event
//! sequence. A spend row changes as it is reviewed or voided, so an export
//! as of sequence N takes the state of a spend changed after N from its
//! newest event at or below N (every spend event carries the spend as it was
//! after the change; `service::exports` decodes it), and the state of every
//! other spend from its row, which is what its newest event recorded. The
//! immutable fields (amount, dates, ids) always come from the row. Everything
//! read is then committed and immutable, so the pages need no common
//! transaction and a re-run returns the same rows.

use diesel::Connection;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};

use super::DbConnection;
use super::Error;
use super::events::EventRow;
use super::schema::{events, problems, spends};
use super::teams::{SCOPE_TEAMS_MAX, TEAM_DEPTH_MAX};

type Backend = <DbConnection as Connection>::Backend;

/// Rows read per query; the server holds one page of an export at a time.
pub const EXPORT_PAGE_SIZE: i64 = 500;

/// The columns of a spend row an export reads: what it writes and what the
/// spend's state is built from. The rest (receipt, notes, routing) is left
/// unread: every column costs a decode per row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = spends)]
pub struct ExportSpend {
    /// Id.
    pub id: String,
    /// The problem it is logged against.
    pub problem_id: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// The problem's currency.
    pub currency: String,
    /// The status after the spend's newest event.
    pub status: String,
    /// How far it went past the budget.
    pub overrun_minor: Option<i64>,
    /// Who was paid.
    pub merchant: String,
    /// What for.
    pub description: String,
    /// Optional free-form category.
    pub category: Option<String>,
    /// The date of the purchase.
    pub spent_on: chrono::NaiveDate,
    /// Who logged it.
    pub logged_by: String,
    /// When it was logged.
    pub logged_at: chrono::NaiveDateTime,
    /// Who decided it.
    pub decided_by: Option<String>,
    /// When it was decided.
    pub decided_at: Option<chrono::NaiveDateTime>,
    /// When it was voided.
    pub voided_at: Option<chrono::NaiveDateTime>,
    /// Why it was flagged: comma-separated codes.
    pub flag_reasons: Option<String>,
    /// Team whose policy judged it.
    pub policy_team_id: Option<String>,
    /// That policy's version.
    pub policy_version: Option<i32>,
    /// What a reviewer approved.
    pub approved_amount_minor: Option<i64>,
    /// Who it is routed to while pending.
    pub reviewer_id: Option<String>,
}

/// A spend with its problem's team and owner and its newest event, as an
/// export reads it (loaded as it is, without a pass to rebuild it).
#[derive(Debug, Clone, Queryable)]
pub struct ExportSpendRow {
    /// The row's exported columns: its immutable fields are the spend's;
    /// its state is the spend's as of its newest event.
    pub spend: ExportSpend,
    /// The problem's team.
    pub team_id: String,
    /// The problem's owner.
    pub owner_id: String,
    /// The sequence of the spend's newest event of all; `None` when it has
    /// none in the audit chain.
    pub newest_sequence: Option<i64>,
}

impl ExportSpendRow {
    /// Whether the row's state is the spend's state as of `as_of`: its
    /// newest event is at or below it, so nothing happened to the spend
    /// after `as_of` (and it existed then).
    #[must_use]
    pub fn row_is_as_of(&self, as_of: i64) -> bool {
        self.newest_sequence.is_some_and(|newest| newest <= as_of)
    }

    /// Whether the spend changed after `as_of`: its state then, if it
    /// existed, is in its events ([`spend_events`]).
    #[must_use]
    pub fn changed_after(&self, as_of: i64) -> bool {
        self.newest_sequence.is_some_and(|newest| newest > as_of)
    }
}

/// One stored event about a spend: the spend's JSON after a change.
#[derive(Debug, Clone, Queryable)]
pub struct SpendEventData {
    /// The spend.
    pub spend_id: String,
    /// The event's sequence.
    pub sequence: Option<i64>,
    /// The event's `data`, as stored.
    pub data: String,
}

/// Which spends an export holds.
#[derive(Debug, Clone)]
pub struct SpendExportFilter {
    /// Only spends on problems of these teams (a team and its sub-teams).
    pub team_ids: Option<Vec<String>>,
    /// Only spends made on or after this date.
    pub from: Option<chrono::NaiveDate>,
    /// Only spends made before this date.
    pub to: Option<chrono::NaiveDate>,
    /// The event sequence the export is as of.
    pub as_of: i64,
}

/// Which events an export holds.
#[derive(Debug, Clone)]
pub struct EventExportFilter {
    /// Only events of these teams.
    pub team_ids: Option<Vec<String>>,
    /// Only events at or after this time.
    pub from: Option<chrono::NaiveDateTime>,
    /// Only events before this time.
    pub to: Option<chrono::NaiveDateTime>,
    /// The event sequence the export is as of.
    pub as_of: i64,
}

#[derive(QueryableByName)]
struct TeamIdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

/// The team and every team below it, at most [`SCOPE_TEAMS_MAX`]; empty
/// when the team does not exist. With `as_of`, the tree as it stood at that
/// event sequence (each team's newest `team.*` event at or below it names its
/// parent then; events from before the audit chain have no sequence and
/// count as older than any, newest by id), so an export re-run at the same
/// `as_of` covers the same teams after teams move; without, the tree as it
/// stands.
pub fn team_subtree(
    connection: &mut DbConnection,
    team_id: &str,
    as_of: Option<i64>,
) -> Result<Vec<String>, Error> {
    let parent_in_event = match connection {
        DbConnection::Postgres(_) => "CAST(e.data AS jsonb) ->> 'parent_id'",
        DbConnection::Sqlite(_) => "json_extract(e.data, '$.parent_id')",
    };
    // SQLite numbers `$n` parameters by first appearance, so they appear in
    // order: the tree's `as_of` (when there is one) comes first.
    let (tree, first) = match as_of {
        None => ("SELECT id, parent_id FROM teams".to_owned(), 1),
        Some(_) => (
            format!(
                "SELECT e.subject_id, {parent_in_event} FROM events e \
                 WHERE e.kind IN ('team.created', 'team.updated') AND e.id = ( \
                     SELECT e2.id FROM events e2 \
                     WHERE e2.subject_id = e.subject_id \
                       AND e2.kind IN ('team.created', 'team.updated') \
                       AND COALESCE(e2.sequence, 0) <= $1 \
                     ORDER BY COALESCE(e2.sequence, 0) DESC, e2.id DESC LIMIT 1)"
            ),
            2,
        ),
    };
    let (team, depth, limit) = (first, first + 1, first + 2);
    let mut query = diesel::sql_query(format!(
        "WITH RECURSIVE tree (id, parent_id) AS ({tree}), \
         subtree (id, depth) AS ( \
             SELECT id, 0 FROM tree WHERE id = ${team} \
             UNION ALL \
             SELECT tree.id, subtree.depth + 1 FROM tree \
             JOIN subtree ON tree.parent_id = subtree.id WHERE subtree.depth < ${depth} \
         ) SELECT DISTINCT id FROM subtree ORDER BY id LIMIT ${limit}"
    ))
    .into_boxed::<Backend>();
    if let Some(as_of) = as_of {
        query = query.bind::<BigInt, _>(as_of);
    }
    let rows: Vec<TeamIdRow> = query
        .bind::<Text, _>(team_id.to_owned())
        .bind::<Integer, _>(TEAM_DEPTH_MAX)
        .bind::<BigInt, _>(SCOPE_TEAMS_MAX)
        .load(connection)?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// One page of spends after `after` (by id), each with the sequence of its
/// newest event (one index-only lookup on `events (subject_id, sequence)`;
/// a spend id is a UUID no other subject shares). A spend whose newest
/// event is at or below `filter.as_of` is exported from its row; the state
/// as of `filter.as_of` of the others comes from [`spend_events`]. Returns
/// the spends and the id to continue after, `None` on the last page.
pub fn spends_page(
    connection: &mut DbConnection,
    filter: &SpendExportFilter,
    after: Option<&str>,
) -> Result<(Vec<ExportSpendRow>, Option<String>), Error> {
    let newest_sequence = sql::<Nullable<BigInt>>(
        "(SELECT MAX(e.sequence) FROM events e WHERE e.subject_id = spends.id)",
    );
    let mut query = spends::table
        .inner_join(problems::table)
        .select((
            ExportSpend::as_select(),
            problems::team_id,
            problems::owner_id,
            newest_sequence,
        ))
        .order(spends::id.asc())
        .limit(EXPORT_PAGE_SIZE)
        .into_boxed();
    if let Some(team_ids) = &filter.team_ids {
        query = query.filter(problems::team_id.eq_any(team_ids.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(spends::spent_on.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(spends::spent_on.lt(to));
    }
    if let Some(after) = after {
        query = query.filter(spends::id.gt(after.to_owned()));
    }
    let rows: Vec<ExportSpendRow> = query.load(connection)?;
    let next_after = (rows.len() == usize::try_from(EXPORT_PAGE_SIZE).unwrap_or(usize::MAX))
        .then(|| rows.last().map(|row| row.spend.id.clone()))
        .flatten();
    Ok((rows, next_after))
}

/// Every event about these spends at or below sequence `as_of`, in no
/// particular order. A spend has a handful of events, so this is bounded
/// by the number of spends asked about (at most one page).
pub fn spend_events(
    connection: &mut DbConnection,
    spend_ids: Vec<String>,
    as_of: i64,
) -> Result<Vec<SpendEventData>, Error> {
    Ok(events::table
        .filter(events::subject_id.eq_any(spend_ids))
        .filter(events::subject_type.eq("spend"))
        .filter(events::sequence.le(as_of))
        .select((events::subject_id, events::sequence, events::data))
        .load(connection)?)
}

/// One page of events after sequence `after`, oldest first, at or below
/// `filter.as_of`. Returns the events and the sequence to continue after.
pub fn events_page(
    connection: &mut DbConnection,
    filter: &EventExportFilter,
    after: i64,
) -> Result<(Vec<EventRow>, Option<i64>), Error> {
    let mut query = events::table
        .select(EventRow::as_select())
        .filter(events::sequence.gt(after))
        .filter(events::sequence.le(filter.as_of))
        .order(events::sequence.asc())
        .limit(EXPORT_PAGE_SIZE)
        .into_boxed();
    if let Some(team_ids) = &filter.team_ids {
        query = query.filter(events::team_id.eq_any(team_ids.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(events::occurred_at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(events::occurred_at.lt(to));
    }
    let rows: Vec<EventRow> = query.load(connection)?;
    let next_after = (rows.len() == usize::try_from(EXPORT_PAGE_SIZE).unwrap_or(usize::MAX))
        .then(|| rows.last().and_then(|row| row.sequence))
        .flatten();
    Ok((rows, next_after))
}
