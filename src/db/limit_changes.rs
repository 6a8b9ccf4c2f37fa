//! The versioned history of a problem's limit: who set which limit, when,
//! why, and which policy version judges spends from then on. Rows are only
//! ever inserted.

use diesel::prelude::*;

use super::Error;
use super::cursor::VersionCursor;
use super::schema::problem_limit_changes;
use super::{DbConnection, Page, PageRequest};

/// A stored limit version.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = problem_limit_changes)]
pub struct LimitChangeRow {
    /// The problem.
    pub problem_id: String,
    /// 1 when opened, then 2, 3, ...
    pub version: i32,
    /// The limit from this version on, in minor units.
    pub limit_minor: i64,
    /// The limit before; null for version 1.
    pub previous_limit_minor: Option<i64>,
    /// Team of the policy version pinned by this change.
    pub policy_team_id: Option<String>,
    /// That policy version.
    pub policy_version: Option<i32>,
    /// Who set it.
    pub changed_by: String,
    /// When.
    pub changed_at: chrono::NaiveDateTime,
    /// Why; null only for version 1.
    pub reason: Option<String>,
}

/// Inserts a version.
pub fn insert(connection: &mut DbConnection, change: &LimitChangeRow) -> Result<(), Error> {
    diesel::insert_into(problem_limit_changes::table)
        .values(change.clone())
        .execute(connection)?;
    Ok(())
}

/// A problem's limit versions, oldest first; the cursor is a version number.
pub fn list(
    connection: &mut DbConnection,
    problem_id: &str,
    page: &PageRequest<VersionCursor>,
) -> Result<Page<LimitChangeRow, VersionCursor>, Error> {
    let mut query = problem_limit_changes::table
        .filter(problem_limit_changes::problem_id.eq(problem_id))
        .order(problem_limit_changes::version.asc())
        .select(LimitChangeRow::as_select())
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(problem_limit_changes::version.gt(after.version()));
    }
    let rows = query.limit(page.limit + 1).load(connection)?;
    Page::from_rows(rows, page, |row| VersionCursor::try_from(row.version))
}
