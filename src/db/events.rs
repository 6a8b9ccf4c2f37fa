//! The append-only event log as stored: the row, what an event is about,
//! and the audit trail's filtered reads. Events are appended, chained and
//! sequenced by `db::audit`; nothing here writes.

use diesel::prelude::*;

use super::Error;
use super::schema::events;
use super::{DbConnection, Page, PageRequest};

/// What an event is about, as stored.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// `team`, `person`, `policy`, `problem` or `spend`.
    pub subject_type: &'static str,
    /// The object's id.
    pub subject_id: &'a str,
    /// The team it belongs to, for filtering.
    pub team_id: Option<&'a str>,
    /// The problem it belongs to, for filtering.
    pub problem_id: Option<&'a str>,
}

/// A stored event.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = events)]
pub struct EventRow {
    /// UUIDv7: events sort by it.
    pub id: String,
    /// When the change happened.
    pub occurred_at: chrono::NaiveDateTime,
    /// Who made it; null for the CLI bootstrap.
    pub actor_id: Option<String>,
    /// e.g. `spend.logged`.
    pub kind: String,
    /// What kind of object changed.
    pub subject_type: String,
    /// Which object changed.
    pub subject_id: String,
    /// The object's team.
    pub team_id: Option<String>,
    /// The object's problem.
    pub problem_id: Option<String>,
    /// The change, as JSON.
    pub data: String,
    /// Global order, the `as_of` of exports; null only before the chain existed.
    pub sequence: Option<i64>,
    /// `problem:<id>` or `organisation`.
    pub chain_key: Option<String>,
    /// 1, 2, ... within the chain.
    pub chain_position: Option<i64>,
    /// The hash of the event before it in its chain.
    pub prev_hash: Option<String>,
    /// SHA-256 of this event's canonical encoding.
    pub hash: Option<String>,
}

/// Filters for the audit trail.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only events about this problem.
    pub problem_id: Option<String>,
    /// Only events about this subject.
    pub subject_id: Option<String>,
    /// Only events of this team.
    pub team_id: Option<String>,
    /// Only events by this person.
    pub actor_id: Option<String>,
    /// Only events at or after this time.
    pub from: Option<chrono::NaiveDateTime>,
    /// Only events before this time.
    pub to: Option<chrono::NaiveDateTime>,
}

/// The events `filter` admits, as a query still open to ordering and paging.
fn filtered(
    filter: &EventFilter,
) -> events::BoxedQuery<'static, <DbConnection as Connection>::Backend> {
    let mut query = events::table.into_boxed();
    if let Some(kind) = &filter.kind {
        query = query.filter(events::kind.eq(kind.clone()));
    }
    if let Some(problem_id) = &filter.problem_id {
        query = query.filter(events::problem_id.eq(problem_id.clone()));
    }
    if let Some(subject_id) = &filter.subject_id {
        query = query.filter(events::subject_id.eq(subject_id.clone()));
    }
    if let Some(team_id) = &filter.team_id {
        query = query.filter(events::team_id.eq(team_id.clone()));
    }
    if let Some(actor_id) = &filter.actor_id {
        query = query.filter(events::actor_id.eq(actor_id.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(events::occurred_at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(events::occurred_at.lt(to));
    }
    query
}

/// Lists events oldest first, paged by id.
pub fn list(
    connection: &mut DbConnection,
    filter: &EventFilter,
    page: &PageRequest,
) -> Result<Page<EventRow>, Error> {
    let mut query = filtered(filter).order(events::id.asc());
    if let Some(after) = &page.after {
        query = query.filter(events::id.gt(after.as_str().to_owned()));
    }
    let rows = query
        .select(EventRow::as_select())
        .limit(page.limit + 1)
        .load(connection)?;
    Page::from_rows(rows, page, |row| row.id.parse())
}

/// Up to `page.limit` events `filter` admits with a sequence above
/// `after_sequence` and at most `through_sequence` (and an id above
/// `page.after`, if given: one more lower bound), in sequence order.
pub fn list_by_sequence(
    connection: &mut DbConnection,
    filter: &EventFilter,
    page: &PageRequest,
    after_sequence: i64,
    through_sequence: i64,
) -> Result<Vec<EventRow>, Error> {
    let mut query = filtered(filter);
    if let Some(after) = &page.after {
        query = query.filter(events::id.gt(after.as_str().to_owned()));
    }
    Ok(query
        .filter(events::sequence.gt(after_sequence))
        .filter(events::sequence.le(through_sequence))
        .order(events::sequence.asc())
        .select(EventRow::as_select())
        .limit(page.limit)
        .load(connection)?)
}
