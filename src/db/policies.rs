//! Team policies: versioned delegation rules. A change inserts a new
//! version; no row is ever updated.

use diesel::prelude::*;

use super::Error;
use super::cursor::VersionCursor;
use super::schema::policies;
use super::{DbConnection, Page, PageRequest};

/// A stored policy version.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = policies)]
pub struct PolicyRow {
    /// The team that set it.
    pub team_id: String,
    /// 1, 2, 3, ... per team.
    pub version: i32,
    /// Budget given to each new problem, in minor units.
    pub per_problem_limit_minor: i64,
    /// ISO 4217 currency of the team's problems.
    pub currency: String,
    /// Hours a flagged spend may wait for a decision.
    pub review_sla_hours: i32,
    /// When this version took effect.
    pub effective_from: chrono::NaiveDateTime,
    /// Who set it.
    pub created_by: String,
    /// The largest overrun a manager of the team may approve alone, in
    /// minor units; null means no cap.
    pub approval_limit_minor: Option<i64>,
    /// What each person may spend autonomously per calendar month across
    /// all their problems, in minor units; null means no allowance.
    pub period_allowance_minor: Option<i64>,
    /// Whether a problem's owner must acknowledge its success criteria
    /// before spends on it are approved on the spot.
    pub require_acknowledgement: bool,
    /// The percentages of a problem's limit at which its approved +
    /// pending total is announced, a JSON array of integers, e.g. `[80,100]`.
    pub alert_thresholds_percent: String,
}

/// One version of a team's policy.
pub fn find(
    connection: &mut DbConnection,
    team_id: &str,
    version: i32,
) -> Result<Option<PolicyRow>, Error> {
    Ok(policies::table
        .find((team_id, version))
        .select(PolicyRow::as_select())
        .get_result(connection)
        .optional()?)
}

/// The team's newest version, if it has any.
pub fn latest(connection: &mut DbConnection, team_id: &str) -> Result<Option<PolicyRow>, Error> {
    Ok(policies::table
        .filter(policies::team_id.eq(team_id))
        .order(policies::version.desc())
        .select(PolicyRow::as_select())
        .first(connection)
        .optional()?)
}

/// The policy in force for a team: its own newest version, else the nearest
/// ancestor's. `chain` is the team and its ancestors, nearest first.
pub fn effective(
    connection: &mut DbConnection,
    chain: &[String],
) -> Result<Option<PolicyRow>, Error> {
    for team_id in chain {
        if let Some(policy) = latest(connection, team_id)? {
            return Ok(Some(policy));
        }
    }
    Ok(None)
}

/// Inserts the next version. Two concurrent writers computing the same
/// version collide on the primary key: `Error::UniqueViolation`.
pub fn insert(connection: &mut DbConnection, policy: &PolicyRow) -> Result<(), Error> {
    diesel::insert_into(policies::table)
        .values(policy.clone())
        .execute(connection)?;
    Ok(())
}

/// Lists a team's versions, oldest first; the cursor is a version number.
pub fn versions(
    connection: &mut DbConnection,
    team_id: &str,
    page: &PageRequest<VersionCursor>,
) -> Result<Page<PolicyRow, VersionCursor>, Error> {
    let mut query = policies::table
        .filter(policies::team_id.eq(team_id))
        .order(policies::version.asc())
        .select(PolicyRow::as_select())
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(policies::version.gt(after.version()));
    }
    let rows = query.limit(page.limit + 1).load(connection)?;
    Page::from_rows(rows, page, |row| VersionCursor::try_from(row.version))
}
