//! The delegation report use cases: resolving a report's scope once, then
//! one page of groups at a time. Finance and admins; reports read the ledger
//! as it stands, so the team tree as it stands.

use chrono::NaiveDate;

use super::Error;
use super::audit::require_finance;
use super::exports::{FINANCE_ONLY, team_scope};
use crate::db::cursor::GroupCursor;
use crate::db::reports::{self, GroupBy, ReportFilter, ReportRow};
use crate::db::{DbConnection, Page, PageRequest};
use crate::domain::access::Caller;

/// What a report asks for, parsed.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    /// The grouping.
    pub group_by: GroupBy,
    /// Only this team and the teams below it.
    pub team_id: Option<String>,
    /// Only spends logged on or after this day.
    pub from: Option<NaiveDate>,
    /// Only spends logged before this day.
    pub to: Option<NaiveDate>,
}

/// A resolved report: obtained only through [`report`], so its pages are
/// read only for a caller allowed to read reports.
#[derive(Debug, Clone)]
pub struct Report {
    filter: ReportFilter,
}

/// Resolves a report for `caller` (finance or an admin): its teams.
pub fn report(
    connection: &mut DbConnection,
    caller: &Caller,
    query: &ReportQuery,
) -> Result<Report, Error> {
    require_finance(caller, FINANCE_ONLY)?;
    let day_start = |date: NaiveDate| date.and_time(chrono::NaiveTime::MIN);
    Ok(Report {
        filter: ReportFilter {
            group_by: query.group_by,
            team_ids: team_scope(connection, query.team_id.as_deref(), None)?,
            from: query.from.map(day_start),
            to: query.to.map(day_start),
        },
    })
}

/// One page of groups after the page's group cursor.
pub fn summary_page(
    connection: &mut DbConnection,
    report: &Report,
    page: &PageRequest<GroupCursor>,
) -> Result<Page<ReportRow, GroupCursor>, Error> {
    Ok(reports::summary_page(connection, &report.filter, page)?)
}
