//! Problems and their running totals. The totals are only ever changed by
//! guarded single-row updates, so the limit rule holds under any concurrency.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Text};

use super::Error;
use super::policies::PolicyRow;
use super::prepared;
use super::schema::{policies, problems};
use super::{DbConnection, Page, PageRequest};
use crate::domain::status::ProblemStatus;

/// A stored problem.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = problems)]
pub struct ProblemRow {
    /// Id.
    pub id: String,
    /// The team it belongs to.
    pub team_id: String,
    /// The one person who owns it.
    pub owner_id: String,
    /// Short title.
    pub title: String,
    /// What solved looks like.
    pub success_criteria: String,
    /// `open` or `closed`.
    pub status: String,
    /// ISO 4217 currency of every amount on it.
    pub currency: String,
    /// The budget, in minor units.
    pub limit_minor: i64,
    /// Sum of approved spends (autonomous and by a manager).
    pub approved_minor: i64,
    /// Sum of spends awaiting review.
    pub pending_review_minor: i64,
    /// Team of the policy version that judges spends on it: the one in force
    /// when it was opened or its limit last changed (even when a manager set
    /// the limit explicitly); null when no policy was in force.
    pub policy_team_id: Option<String>,
    /// That policy's version.
    pub policy_version: Option<i32>,
    /// Who opened it.
    pub opened_by: String,
    /// When it was opened.
    pub opened_at: chrono::NaiveDateTime,
    /// When it was closed.
    pub closed_at: Option<chrono::NaiveDateTime>,
    /// Last changed.
    pub updated_at: chrono::NaiveDateTime,
    /// 1 when opened; every limit change adds one.
    pub limit_version: i32,
    /// 1 when opened; every change of the success criteria adds one.
    pub criteria_version: i32,
    /// The criteria version the owner last acknowledged.
    pub acknowledged_version: Option<i32>,
    /// When the owner last acknowledged.
    pub acknowledged_at: Option<chrono::NaiveDateTime>,
    /// Pinned from the policy: spends are flagged until the owner has
    /// acknowledged the current success criteria.
    pub require_acknowledgement: bool,
}

/// Which problems a caller may list.
#[derive(Debug, Clone)]
pub enum Visibility {
    /// Finance and admin.
    All,
    /// Problems the person owns, and problems in the listed teams.
    OwnedOrInTeams {
        /// The caller.
        person_id: String,
        /// Teams the caller manages (with sub-teams).
        team_ids: Vec<String>,
    },
}

/// Optional filters on the problem list.
#[derive(Debug, Clone, Default)]
pub struct ProblemFilter {
    /// Only this team.
    pub team_id: Option<String>,
    /// Only this owner.
    pub owner_id: Option<String>,
    /// Only `open` or `closed`.
    pub status: Option<String>,
}

/// Inserts a problem.
pub fn insert(connection: &mut DbConnection, problem: &ProblemRow) -> Result<(), Error> {
    diesel::insert_into(problems::table)
        .values(problem.clone())
        .execute(connection)?;
    Ok(())
}

/// Finds a problem by id.
pub fn find(connection: &mut DbConnection, id: &str) -> Result<Option<ProblemRow>, Error> {
    Ok(problems::table
        .find(id)
        .select(ProblemRow::as_select())
        .get_result(connection)
        .optional()?)
}

/// A problem with the policy version pinned on it, in one query: the spend
/// path needs both, and a policy version never changes once written.
pub fn find_with_policy(
    connection: &mut DbConnection,
    id: &str,
) -> Result<Option<(ProblemRow, Option<PolicyRow>)>, Error> {
    Ok(problems::table
        .left_join(
            policies::table.on(policies::team_id
                .nullable()
                .eq(problems::policy_team_id)
                .and(policies::version.nullable().eq(problems::policy_version))),
        )
        .filter(problems::id.eq(id))
        .select((ProblemRow::as_select(), Option::<PolicyRow>::as_select()))
        .get_result(connection)
        .optional()?)
}

/// Lists visible problems in id order.
pub fn list(
    connection: &mut DbConnection,
    visibility: &Visibility,
    filter: &ProblemFilter,
    page: &PageRequest,
) -> Result<Page<ProblemRow>, Error> {
    let mut query = problems::table
        .select(ProblemRow::as_select())
        .order(problems::id.asc())
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
    if let Some(team_id) = &filter.team_id {
        query = query.filter(problems::team_id.eq(team_id.clone()));
    }
    if let Some(owner_id) = &filter.owner_id {
        query = query.filter(problems::owner_id.eq(owner_id.clone()));
    }
    if let Some(status) = &filter.status {
        query = query.filter(problems::status.eq(status.clone()));
    }
    if let Some(after) = &page.after {
        query = query.filter(problems::id.gt(after.as_str().to_owned()));
    }
    let rows = query.limit(page.limit + 1).load(connection)?;
    Page::from_rows(rows, page, |row| row.id.parse())
}

/// Writes the title and success criteria. A change of the criteria
/// numbers a new criteria version, so an earlier acknowledgement no longer
/// counts.
pub fn update_details(
    connection: &mut DbConnection,
    problem: &ProblemRow,
    criteria_changed: bool,
) -> Result<(), Error> {
    let bump = i32::from(criteria_changed);
    diesel::update(problems::table.find(&problem.id))
        .set((
            problems::title.eq(&problem.title),
            problems::success_criteria.eq(&problem.success_criteria),
            problems::criteria_version.eq(problems::criteria_version + bump),
            problems::updated_at.eq(problem.updated_at),
        ))
        .execute(connection)?;
    Ok(())
}

/// Records the owner's acknowledgement of criteria version
/// `criteria_version`, if that is still the current one. Returns whether it
/// was.
pub fn acknowledge(
    connection: &mut DbConnection,
    problem_id: &str,
    criteria_version: i32,
    at: chrono::NaiveDateTime,
) -> Result<bool, Error> {
    let changed = diesel::update(
        problems::table
            .filter(problems::id.eq(problem_id))
            .filter(problems::criteria_version.eq(criteria_version)),
    )
    .set((
        problems::acknowledged_version.eq(criteria_version),
        problems::acknowledged_at.eq(at),
        problems::updated_at.eq(at),
    ))
    .execute(connection)?;
    Ok(changed == 1)
}

/// A new limit and the policy version that judges spends from now on.
#[derive(Debug, Clone)]
pub struct NewLimit {
    /// The limit, in minor units.
    pub limit_minor: i64,
    /// The limit version this replaces (compare-and-set).
    pub from_version: i32,
    /// The policy pinned from now on.
    pub policy: Option<(String, i32)>,
    /// That policy's acknowledgement requirement, pinned with it.
    pub require_acknowledgement: bool,
    /// When.
    pub at: chrono::NaiveDateTime,
}

/// Sets a new limit unless it is below what is already approved or another
/// change got there first. Returns whether it was set. Guarded in SQL so a
/// concurrent approval cannot slip under it.
pub fn set_limit(
    connection: &mut DbConnection,
    problem_id: &str,
    new: &NewLimit,
) -> Result<bool, Error> {
    let (policy_team_id, policy_version) = new.policy.clone().unzip();
    let changed = diesel::update(
        problems::table
            .filter(problems::id.eq(problem_id))
            .filter(problems::approved_minor.le(new.limit_minor))
            .filter(problems::limit_version.eq(new.from_version)),
    )
    .set((
        problems::limit_minor.eq(new.limit_minor),
        problems::limit_version.eq(new.from_version + 1),
        problems::policy_team_id.eq(policy_team_id),
        problems::policy_version.eq(policy_version),
        problems::require_acknowledgement.eq(new.require_acknowledgement),
        problems::updated_at.eq(new.at),
    ))
    .execute(connection)?;
    Ok(changed == 1)
}

/// Closes an open problem. Returns whether it was open.
pub fn close(
    connection: &mut DbConnection,
    problem_id: &str,
    at: chrono::NaiveDateTime,
) -> Result<bool, Error> {
    let changed = diesel::update(
        problems::table
            .filter(problems::id.eq(problem_id))
            .filter(problems::status.eq(ProblemStatus::Open.as_str())),
    )
    .set((
        problems::status.eq(ProblemStatus::Closed.as_str()),
        problems::closed_at.eq(at),
        problems::updated_at.eq(at),
    ))
    .execute(connection)?;
    Ok(changed == 1)
}

/// The limit check and the write in one statement (DESIGN.md §6):
/// How much of a problem's limit is used (approved + pending review),
/// read in the statement that changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct BudgetUse {
    /// approved + pending review, after the change.
    #[diesel(sql_type = BigInt)]
    pub used_minor: i64,
    /// The limit.
    #[diesel(sql_type = BigInt)]
    pub limit_minor: i64,
    /// Which version of the limit.
    #[diesel(sql_type = Integer)]
    pub limit_version: i32,
}

impl BudgetUse {
    /// The use a stored problem shows.
    #[must_use]
    pub fn of(problem: &ProblemRow) -> Self {
        Self {
            used_minor: problem
                .approved_minor
                .saturating_add(problem.pending_review_minor),
            limit_minor: problem.limit_minor,
            limit_version: problem.limit_version,
        }
    }
}

/// `approved += amount` only if the problem is open,
/// `approved + pending_review + amount <= limit`, and the owner has
/// acknowledged the current success criteria where that is required.
/// Returns the use it left when it applied, `None` when it did not.
/// PostgreSQL re-evaluates the condition on the newest row version when a
/// concurrent writer commits first; SQLite runs one writer at a time.
pub fn try_approve_within_limit(
    connection: &mut DbConnection,
    problem_id: &str,
    amount_minor: i64,
) -> Result<Option<BudgetUse>, Error> {
    // Kept prepared (diesel re-parses every DSL UPDATE): once per spend.
    Ok(prepared::sql(
        "UPDATE problems SET approved_minor = approved_minor + $1 \
         WHERE id = $2 AND status = $3 \
         AND approved_minor + pending_review_minor + $1 <= limit_minor \
         AND (require_acknowledgement = $4 OR acknowledged_version = criteria_version) \
         RETURNING approved_minor + pending_review_minor AS used_minor, limit_minor, limit_version",
    )
    .bind::<BigInt, _>(amount_minor)
    .bind::<Text, _>(problem_id)
    .bind::<Text, _>(ProblemStatus::Open.as_str())
    .bind::<Bool, _>(false)
    .get_result::<BudgetUse>(connection)
    .optional()?)
}

/// Records that a problem's total reached `threshold_percent` of its limit
/// under `limit_version`. Returns whether this is the first time (once per
/// threshold per limit version).
pub fn record_budget_alert(
    connection: &mut DbConnection,
    problem_id: &str,
    limit_version: i32,
    threshold_percent: u16,
    at: chrono::NaiveDateTime,
) -> Result<bool, Error> {
    let inserted = prepared::sql(
        "INSERT INTO problem_budget_alerts (problem_id, limit_version, threshold_percent, crossed_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(problem_id)
    .bind::<Integer, _>(limit_version)
    .bind::<Integer, _>(i32::from(threshold_percent))
    .bind::<diesel::sql_types::Timestamp, _>(at)
    .execute(connection)?;
    Ok(inserted == 1)
}

/// Reserves a flagged spend's amount in `pending_review`. Returns false when
/// the problem is closed.
pub fn reserve_pending(
    connection: &mut DbConnection,
    problem_id: &str,
    amount_minor: i64,
) -> Result<bool, Error> {
    let changed = diesel::update(
        problems::table
            .filter(problems::id.eq(problem_id))
            .filter(problems::status.eq(ProblemStatus::Open.as_str())),
    )
    .set(problems::pending_review_minor.eq(problems::pending_review_minor + amount_minor))
    .execute(connection)?;
    Ok(changed == 1)
}

/// Releases a decided spend's reservation of `reserved_minor` and adds
/// `approved_minor` (all of it, part of it after a partial approval, or
/// nothing after a rejection) to `approved`. The caller has already moved
/// the spend out of `pending_review` in the same transaction, so this runs
/// once per spend.
pub fn settle_pending(
    connection: &mut DbConnection,
    problem_id: &str,
    reserved_minor: i64,
    approved_minor: i64,
) -> Result<(), Error> {
    diesel::update(problems::table.find(problem_id))
        .set((
            problems::pending_review_minor.eq(problems::pending_review_minor - reserved_minor),
            problems::approved_minor.eq(problems::approved_minor + approved_minor),
        ))
        .execute(connection)?;
    Ok(())
}

/// Takes a voided spend's amount back out of the total it counted in:
/// `pending_review` if it was awaiting review, `approved` if it was approved.
pub fn release(
    connection: &mut DbConnection,
    problem_id: &str,
    amount_minor: i64,
    was_pending: bool,
) -> Result<(), Error> {
    let target = problems::table.find(problem_id);
    if was_pending {
        diesel::update(target)
            .set(problems::pending_review_minor.eq(problems::pending_review_minor - amount_minor))
            .execute(connection)?;
    } else {
        diesel::update(target)
            .set(problems::approved_minor.eq(problems::approved_minor - amount_minor))
            .execute(connection)?;
    }
    Ok(())
}
