//! Spends: money logged against a problem, and their review decisions.

use diesel::prelude::*;

use super::Error;
use super::problems::Visibility;
use super::schema::{problems, spends};
use super::{DbConnection, Page, PageRequest};
use crate::domain::status::SpendStatus;

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
    /// Why it was flagged: comma-separated codes; null when approved on the spot.
    pub flag_reasons: Option<String>,
    /// Team whose policy judged it.
    pub policy_team_id: Option<String>,
    /// That policy's version.
    pub policy_version: Option<i32>,
    /// What a reviewer approved, when less than the amount (or all of it).
    pub approved_amount_minor: Option<i64>,
    /// Who it is routed to while pending; null while pending means the admins.
    pub reviewer_id: Option<String>,
    /// The team whose manager reviews it.
    pub review_team_id: Option<String>,
    /// The reviewer before SLA escalation, who may still decide.
    pub original_reviewer_id: Option<String>,
    /// That reviewer's team.
    pub original_review_team_id: Option<String>,
    /// When it escalates if still undecided.
    pub review_due_at: Option<chrono::NaiveDateTime>,
    /// The reviewer a delegate decided for.
    pub decided_on_behalf_of: Option<String>,
    /// Bumped by every routing change; guards them (compare-and-set).
    pub route_version: i32,
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
pub fn insert(connection: &mut DbConnection, spend: &SpendRow) -> Result<(), Error> {
    diesel::insert_into(spends::table)
        .values(spend.clone())
        .execute(connection)?;
    Ok(())
}

/// Finds a spend by id.
pub fn find(connection: &mut DbConnection, id: &str) -> Result<Option<SpendRow>, Error> {
    Ok(spends::table
        .find(id)
        .select(SpendRow::as_select())
        .get_result(connection)
        .optional()?)
}

/// Lists visible spends in id order.
pub fn list(
    connection: &mut DbConnection,
    visibility: &Visibility,
    filter: &SpendFilter,
    page: &PageRequest,
) -> Result<Page<SpendRow>, Error> {
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
        query = query.filter(spends::id.gt(after.as_str().to_owned()));
    }
    let rows = query.limit(page.limit + 1).load(connection)?;
    Page::from_rows(rows, page, |row| row.id.parse())
}

/// Whose flagged spends a review queue shows.
#[derive(Debug, Clone)]
pub struct QueueScope {
    /// The caller and everyone whose queue they hold by delegation: spends
    /// routed to any of them (now or before SLA escalation).
    pub reviewer_ids: Vec<String>,
    /// Admins also hold the spends routed to the admins.
    pub includes_admin_route: bool,
    /// Teams the caller manages (with sub-teams): spends routed to managers
    /// there are shown read-only.
    pub scope_team_ids: Vec<String>,
    /// Finance and admin see every pending spend (read-only unless theirs).
    pub everything: bool,
}

/// Pending spends in a review queue, oldest first.
pub fn review_queue(
    connection: &mut DbConnection,
    scope: &QueueScope,
    page: &PageRequest,
) -> Result<Page<SpendRow>, Error> {
    let mut query = spends::table
        .filter(spends::status.eq(SpendStatus::PendingReview.as_str()))
        .select(SpendRow::as_select())
        .order(spends::id.asc())
        .into_boxed();
    if !scope.everything {
        let routed = spends::reviewer_id
            .eq_any(scope.reviewer_ids.clone())
            .or(spends::original_reviewer_id.eq_any(scope.reviewer_ids.clone()))
            .or(spends::review_team_id.eq_any(scope.scope_team_ids.clone()));
        query = if scope.includes_admin_route {
            query.filter(routed.or(spends::reviewer_id.is_null()))
        } else {
            query.filter(routed)
        };
    }
    if let Some(after) = &page.after {
        query = query.filter(spends::id.gt(after.as_str().to_owned()));
    }
    let rows = query.limit(page.limit + 1).load(connection)?;
    Page::from_rows(rows, page, |row| row.id.parse())
}

/// Pending spends whose review deadline has passed, oldest deadline first,
/// at most `limit`: the escalation task's work for one tick.
pub fn due_for_escalation(
    connection: &mut DbConnection,
    at: chrono::NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, Error> {
    Ok(spends::table
        .filter(spends::status.eq(SpendStatus::PendingReview.as_str()))
        .filter(spends::review_due_at.le(at))
        .order((spends::review_due_at.asc(), spends::id.asc()))
        .select(spends::id)
        .limit(limit)
        .load(connection)?)
}

/// Where a pending spend is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// The reviewer; null means the admins.
    pub reviewer_id: Option<String>,
    /// The team they review for.
    pub review_team_id: Option<String>,
    /// The reviewer before SLA escalation, who may still decide.
    pub original_reviewer_id: Option<String>,
    /// That reviewer's team.
    pub original_review_team_id: Option<String>,
    /// When it escalates next; null at the top.
    pub review_due_at: Option<chrono::NaiveDateTime>,
}

/// Re-routes a pending spend if nobody changed its routing since it was
/// read at `route_version` (compare-and-set). Returns whether it applied.
pub fn reroute(
    connection: &mut DbConnection,
    spend_id: &str,
    route_version: i32,
    routing: &Routing,
) -> Result<bool, Error> {
    let changed = diesel::update(
        spends::table
            .filter(spends::id.eq(spend_id))
            .filter(spends::status.eq(SpendStatus::PendingReview.as_str()))
            .filter(spends::route_version.eq(route_version)),
    )
    .set((
        spends::reviewer_id.eq(&routing.reviewer_id),
        spends::review_team_id.eq(&routing.review_team_id),
        spends::original_reviewer_id.eq(&routing.original_reviewer_id),
        spends::original_review_team_id.eq(&routing.original_review_team_id),
        spends::review_due_at.eq(routing.review_due_at),
        spends::route_version.eq(route_version + 1),
    ))
    .execute(connection)?;
    Ok(changed == 1)
}

/// A review decision to record.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// `approved_by_manager` or `rejected`.
    pub status: &'static str,
    /// The reviewer (or their delegate).
    pub decided_by: &'a str,
    /// The reviewer a delegate decided for.
    pub on_behalf_of: Option<&'a str>,
    /// When.
    pub decided_at: chrono::NaiveDateTime,
    /// Why.
    pub note: Option<&'a str>,
    /// What was approved; null for a rejection.
    pub approved_amount_minor: Option<i64>,
}

/// Records a decision on a pending spend still routed as it was read at
/// `route_version`. Returns false when it was decided or re-routed
/// meanwhile: guarded in SQL, so two reviewers can never both decide.
pub fn decide(
    connection: &mut DbConnection,
    spend_id: &str,
    route_version: i32,
    decision: &Decision<'_>,
) -> Result<bool, Error> {
    let changed = diesel::update(
        spends::table
            .filter(spends::id.eq(spend_id))
            .filter(spends::status.eq(SpendStatus::PendingReview.as_str()))
            .filter(spends::route_version.eq(route_version)),
    )
    .set((
        spends::status.eq(decision.status),
        spends::decided_by.eq(decision.decided_by),
        spends::decided_on_behalf_of.eq(decision.on_behalf_of),
        spends::decided_at.eq(decision.decided_at),
        spends::decision_note.eq(decision.note),
        spends::approved_amount_minor.eq(decision.approved_amount_minor),
        spends::review_due_at.eq(None::<chrono::NaiveDateTime>),
        spends::route_version.eq(route_version + 1),
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
) -> Result<bool, Error> {
    let changed = diesel::update(
        spends::table
            .filter(spends::id.eq(spend_id))
            .filter(spends::status.eq(from_status)),
    )
    .set((
        spends::status.eq(SpendStatus::Voided.as_str()),
        spends::voided_by.eq(voided_by),
        spends::voided_at.eq(voided_at),
        spends::void_reason.eq(reason),
    ))
    .execute(connection)?;
    Ok(changed == 1)
}
