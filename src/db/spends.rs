//! Spends: money logged against a problem, and their review decisions.

use diesel::prelude::*;

use super::problems::Visibility;
use super::schema::{problems, spends};
use super::{DbConnection, Page, PageRequest};
use crate::error::ApiError;

/// A stored spend.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = spends)]
pub struct SpendRow {
    /// Id.
    pub id: String,
    /// The problem it is logged against.
    pub problem_id: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// The problem's currency.
    pub currency: String,
    /// `approved`, `pending_review`, `approved_by_manager`, `rejected`, `voided`.
    pub status: String,
    /// How far it went past the budget; null when approved on the spot.
    pub overrun_minor: Option<i64>,
    /// Who was paid.
    pub merchant: String,
    /// What for.
    pub description: String,
    /// Optional free-form category.
    pub category: Option<String>,
    /// The date of the purchase.
    pub spent_on: chrono::NaiveDate,
    /// Link to the receipt.
    pub receipt_url: Option<String>,
    /// Who logged it.
    pub logged_by: String,
    /// When it was logged.
    pub logged_at: chrono::NaiveDateTime,
    /// Who decided it, for reviewed spends.
    pub decided_by: Option<String>,
    /// When it was decided.
    pub decided_at: Option<chrono::NaiveDateTime>,
    /// The reviewer's note.
    pub decision_note: Option<String>,
    /// Who voided it.
    pub voided_by: Option<String>,
    /// When it was voided.
    pub voided_at: Option<chrono::NaiveDateTime>,
    /// Why it was voided.
    pub void_reason: Option<String>,
}

/// Optional filters on the spend list.
#[derive(Debug, Clone, Default)]
pub struct SpendFilter {
    /// Only spends on this problem.
    pub problem_id: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only spends logged by this person.
    pub logged_by: Option<String>,
}

/// Inserts a spend.
pub fn insert(connection: &mut DbConnection, spend: &SpendRow) -> Result<(), ApiError> {
    diesel::insert_into(spends::table)
        .values(spend.clone())
        .execute(connection)?;
    Ok(())
}

/// Finds a spend by id.
pub fn find(connection: &mut DbConnection, id: &str) -> Result<Option<SpendRow>, ApiError> {
    Ok(spends::table
        .find(id)
        .select(SpendRow::as_select())
        .first(connection)
        .optional()?)
}

/// Lists visible spends in id order.
pub fn list(
    connection: &mut DbConnection,
    visibility: &Visibility,
    filter: &SpendFilter,
    page: &PageRequest,
) -> Result<Page<SpendRow>, ApiError> {
    let mut query = spends::table
        .inner_join(problems::table)
        .select(SpendRow::as_select())
        .order(spends::id.asc())
        .into_boxed();
    if let Visibility::OwnedOrInTeams {
        person_id,
        team_ids,
    } = visibility
    {
        query = query.filter(
            problems::owner_id
                .eq(person_id.clone())
                .or(problems::team_id.eq_any(team_ids.clone())),
        );
    }
    if let Some(problem_id) = &filter.problem_id {
        query = query.filter(spends::problem_id.eq(problem_id.clone()));
    }
    if let Some(status) = &filter.status {
        query = query.filter(spends::status.eq(status.clone()));
    }
    if let Some(logged_by) = &filter.logged_by {
        query = query.filter(spends::logged_by.eq(logged_by.clone()));
    }
    if let Some(after) = &page.after {
        query = query.filter(spends::id.gt(after.clone()));
    }
    let rows = query.limit(page.limit + 1).load(connection)?;
    Ok(Page::from_rows(rows, page, |row| row.id.clone()))
}

/// The spends a reviewer may decide: pending, on problems in `team_ids`,
/// neither logged by the reviewer nor on a problem they own.
pub fn review_queue(
    connection: &mut DbConnection,
    reviewer_id: &str,
    team_ids: &[String],
    page: &PageRequest,
) -> Result<Page<SpendRow>, ApiError> {
    let mut query = spends::table
        .inner_join(problems::table)
        .filter(spends::status.eq("pending_review"))
        .filter(problems::team_id.eq_any(team_ids.to_vec()))
        .filter(spends::logged_by.ne(reviewer_id.to_owned()))
        .filter(problems::owner_id.ne(reviewer_id.to_owned()))
        .select(SpendRow::as_select())
        .order(spends::id.asc())
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(spends::id.gt(after.clone()));
    }
    let rows = query.limit(page.limit + 1).load(connection)?;
    Ok(Page::from_rows(rows, page, |row| row.id.clone()))
}

/// A review decision to record.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// `approved_by_manager` or `rejected`.
    pub status: &'static str,
    /// The reviewer.
    pub decided_by: &'a str,
    /// When.
    pub decided_at: chrono::NaiveDateTime,
    /// Why.
    pub note: Option<&'a str>,
}

/// Records a decision on a pending spend. Returns false when the spend was
/// no longer pending: guarded in SQL, so two reviewers can never both decide.
pub fn decide(
    connection: &mut DbConnection,
    spend_id: &str,
    decision: &Decision<'_>,
) -> Result<bool, ApiError> {
    let changed = diesel::update(
        spends::table
            .filter(spends::id.eq(spend_id))
            .filter(spends::status.eq("pending_review")),
    )
    .set((
        spends::status.eq(decision.status),
        spends::decided_by.eq(decision.decided_by),
        spends::decided_at.eq(decision.decided_at),
        spends::decision_note.eq(decision.note),
    ))
    .execute(connection)?;
    Ok(changed == 1)
}

/// Voids a spend that is still in `from_status`. Returns false when a
/// concurrent request changed it first: guarded in SQL like every decision.
pub fn void(
    connection: &mut DbConnection,
    spend_id: &str,
    from_status: &str,
    voided_by: &str,
    voided_at: chrono::NaiveDateTime,
    reason: &str,
) -> Result<bool, ApiError> {
    let changed = diesel::update(
        spends::table
            .filter(spends::id.eq(spend_id))
            .filter(spends::status.eq(from_status)),
    )
    .set((
        spends::status.eq("voided"),
        spends::voided_by.eq(voided_by),
        spends::voided_at.eq(voided_at),
        spends::void_reason.eq(reason),
    ))
    .execute(connection)?;
    Ok(changed == 1)
}
