//! The delegation report: per group (team, problem or person) and month,
//! how much was spent autonomously and after review, overruns, decisions,
//! time to decision and escalations. Aggregated in SQL one page of groups at
//! a time; the percentiles take one indexed query per group of the page.

use diesel::Connection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::Error;
use super::cursor::{GroupCursor, GroupKey};
use super::{DbConnection, Page, PageRequest};

/// Groups per page.
pub const REPORT_PAGE_SIZE_MAX: i64 = 200;

type Backend = <DbConnection as Connection>::Backend;

/// What the report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The problem's team.
    Team,
    /// The problem.
    Problem,
    /// The problem's owner: the person the budget was delegated to.
    Person,
}

impl GroupBy {
    fn column(self) -> &'static str {
        match self {
            Self::Team => "p.team_id",
            Self::Problem => "s.problem_id",
            Self::Person => "p.owner_id",
        }
    }
}

/// Which spends the report covers.
#[derive(Debug, Clone)]
pub struct ReportFilter {
    /// The grouping.
    pub group_by: GroupBy,
    /// Only problems of these teams.
    pub team_ids: Option<Vec<String>>,
    /// Only spends logged at or after this time.
    pub from: Option<chrono::NaiveDateTime>,
    /// Only spends logged before this time.
    pub to: Option<chrono::NaiveDateTime>,
}

/// One group's figures for one month and currency.
#[derive(Debug, Clone, QueryableByName)]
pub struct ReportRow {
    /// Team, problem or person id.
    #[diesel(sql_type = Text)]
    pub group_id: String,
    /// `YYYY-MM` of `logged_at`.
    #[diesel(sql_type = Text)]
    pub period: String,
    /// Amounts are per currency; a group may have several.
    #[diesel(sql_type = Text)]
    pub currency: String,
    /// Spends logged (any status).
    #[diesel(sql_type = BigInt)]
    pub spend_count: i64,
    /// Approved on the spot, no human involved.
    #[diesel(sql_type = BigInt)]
    pub autonomous_minor: i64,
    /// Approved by a reviewer (the approved part of a partial approval).
    #[diesel(sql_type = BigInt)]
    pub after_review_minor: i64,
    /// Spends that went past the budget.
    #[diesel(sql_type = BigInt)]
    pub overrun_count: i64,
    /// By how much, in all.
    #[diesel(sql_type = BigInt)]
    pub overrun_minor: i64,
    /// Reviews that approved.
    #[diesel(sql_type = BigInt)]
    pub approval_count: i64,
    /// Reviews that rejected.
    #[diesel(sql_type = BigInt)]
    pub rejection_count: i64,
    /// Still awaiting review.
    #[diesel(sql_type = BigInt)]
    pub pending_count: i64,
    /// `spend.escalated` events on these spends.
    #[diesel(sql_type = BigInt)]
    pub escalation_count: i64,
    /// Median seconds from logging to decision (nearest rank), if any decision.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub decision_seconds_median: Option<i64>,
    /// 90th percentile of the same.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub decision_seconds_p90: Option<i64>,
}

/// The SQL that differs between the databases.
struct Dialect {
    /// `YYYY-MM` of `s.logged_at`.
    month: &'static str,
    /// Whole seconds from `s.logged_at` to `s.decided_at`.
    decision_seconds: &'static str,
}

fn dialect(connection: &DbConnection) -> Dialect {
    match connection {
        DbConnection::Postgres(_) => Dialect {
            month: "to_char(s.logged_at, 'YYYY-MM')",
            decision_seconds: "CAST(EXTRACT(EPOCH FROM (s.decided_at - s.logged_at)) AS BIGINT)",
        },
        // SQLite keeps timestamps as ISO 8601 text and has no interval type.
        DbConnection::Sqlite(_) => Dialect {
            month: "substr(s.logged_at, 1, 7)",
            decision_seconds: "CAST(ROUND((julianday(s.decided_at) - julianday(s.logged_at)) * 86400) AS BIGINT)",
        },
    }
}

/// Reviewed spends: the ones with a time to decision.
const DECIDED: &str =
    "s.status IN ('approved_by_manager', 'rejected') AND s.decided_at IS NOT NULL";

/// Appends the filter's WHERE conditions, numbering parameters from `next`.
fn filtered(
    mut query: diesel::query_builder::BoxedSqlQuery<
        'static,
        Backend,
        diesel::query_builder::SqlQuery,
    >,
    filter: &ReportFilter,
    next: &mut usize,
) -> diesel::query_builder::BoxedSqlQuery<'static, Backend, diesel::query_builder::SqlQuery> {
    if let Some(team_ids) = &filter.team_ids {
        let mut placeholders = Vec::with_capacity(team_ids.len());
        for _ in team_ids {
            placeholders.push(format!("${next}"));
            *next += 1;
        }
        query = query.sql(format!(" AND p.team_id IN ({})", placeholders.join(", ")));
        for team_id in team_ids {
            query = query.bind::<Text, _>(team_id.clone());
        }
    }
    if let Some(from) = filter.from {
        query = query
            .sql(format!(" AND s.logged_at >= ${next}"))
            .bind::<diesel::sql_types::Timestamp, _>(from);
        *next += 1;
    }
    if let Some(to) = filter.to {
        query = query
            .sql(format!(" AND s.logged_at < ${next}"))
            .bind::<diesel::sql_types::Timestamp, _>(to);
        *next += 1;
    }
    query
}

/// One page of groups, ordered by (group, period, currency) joined by `|`
/// as text: the order of [`GroupCursor`]s.
pub fn summary_page(
    connection: &mut DbConnection,
    filter: &ReportFilter,
    page: &PageRequest<GroupCursor>,
) -> Result<Page<ReportRow, GroupCursor>, Error> {
    let Dialect {
        month,
        decision_seconds,
    } = dialect(connection);
    let group = filter.group_by.column();
    // The SQL spelling of GroupCursor's render, so rows sort as cursors do.
    let key = format!("{group} || '|' || {month} || '|' || s.currency");
    let mut query = diesel::sql_query(format!(
        "SELECT {group} AS group_id, {month} AS period, s.currency AS currency, \
           CAST(COUNT(*) AS BIGINT) AS spend_count, \
           CAST(SUM(CASE WHEN s.status = 'approved' THEN s.amount_minor ELSE 0 END) AS BIGINT) AS autonomous_minor, \
           CAST(SUM(CASE WHEN s.status = 'approved_by_manager' THEN COALESCE(s.approved_amount_minor, s.amount_minor) ELSE 0 END) AS BIGINT) AS after_review_minor, \
           CAST(SUM(CASE WHEN s.overrun_minor IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS overrun_count, \
           CAST(SUM(COALESCE(s.overrun_minor, 0)) AS BIGINT) AS overrun_minor, \
           CAST(SUM(CASE WHEN s.status = 'approved_by_manager' THEN 1 ELSE 0 END) AS BIGINT) AS approval_count, \
           CAST(SUM(CASE WHEN s.status = 'rejected' THEN 1 ELSE 0 END) AS BIGINT) AS rejection_count, \
           CAST(SUM(CASE WHEN s.status = 'pending_review' THEN 1 ELSE 0 END) AS BIGINT) AS pending_count, \
           CAST(SUM(COALESCE(escalations.n, 0)) AS BIGINT) AS escalation_count, \
           CAST(NULL AS BIGINT) AS decision_seconds_median, CAST(NULL AS BIGINT) AS decision_seconds_p90 \
         FROM spends s JOIN problems p ON p.id = s.problem_id \
         LEFT JOIN (SELECT subject_id, COUNT(*) AS n FROM events WHERE kind = 'spend.escalated' GROUP BY subject_id) escalations \
           ON escalations.subject_id = s.id \
         WHERE s.status <> 'voided' AND {key} > $1"
    ))
    .into_boxed::<Backend>()
    .bind::<Text, _>(
        page.after
            .as_ref()
            .map_or_else(String::new, |after| after.as_str().to_owned()),
    );
    let mut next = 2;
    query = filtered(query, filter, &mut next);
    query = query
        .sql(format!(
            " GROUP BY {group}, {month}, s.currency ORDER BY {key} LIMIT ${next}"
        ))
        .bind::<BigInt, _>(page.limit + 1);
    let rows: Vec<ReportRow> = query.load(connection)?;
    let mut page = Page::from_rows(rows, page, |row| {
        GroupCursor::try_from(GroupKey {
            group_id: &row.group_id,
            period: &row.period,
            currency: &row.currency,
        })
    })?;
    for row in &mut page.items {
        row.decision_seconds_median =
            percentile(connection, filter, row, decision_seconds, month, 50)?;
        row.decision_seconds_p90 =
            percentile(connection, filter, row, decision_seconds, month, 90)?;
    }
    Ok(page)
}

#[derive(QueryableByName)]
struct SecondsRow {
    #[diesel(sql_type = BigInt)]
    seconds: i64,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The nearest-rank `percent`th percentile of one group's decision times:
/// the value at rank ceil(percent/100 * n), read with ORDER BY and OFFSET.
fn percentile(
    connection: &mut DbConnection,
    filter: &ReportFilter,
    row: &ReportRow,
    decision_seconds: &str,
    month: &str,
    percent: i64,
) -> Result<Option<i64>, Error> {
    let group = filter.group_by.column();
    let scope = format!(
        "FROM spends s JOIN problems p ON p.id = s.problem_id \
         WHERE {DECIDED} AND {group} = $1 AND {month} = $2 AND s.currency = $3"
    );
    let bound = |sql: String| {
        let mut next = 4;
        let query = diesel::sql_query(sql)
            .into_boxed::<Backend>()
            .bind::<Text, _>(row.group_id.clone())
            .bind::<Text, _>(row.period.clone())
            .bind::<Text, _>(row.currency.clone());
        (filtered(query, filter, &mut next), next)
    };
    let (count_query, _) = bound(format!("SELECT CAST(COUNT(*) AS BIGINT) AS n {scope}"));
    let count: CountRow = count_query.get_result(connection)?;
    if count.n == 0 {
        return Ok(None);
    }
    // ceil(percent * n / 100) in integers, as a zero-based offset.
    let offset = (percent * count.n + 99) / 100 - 1;
    let (query, next) = bound(format!("SELECT {decision_seconds} AS seconds {scope}"));
    let value: SecondsRow = query
        .sql(format!(" ORDER BY seconds LIMIT 1 OFFSET ${next}"))
        .bind::<BigInt, _>(offset)
        .get_result(connection)?;
    Ok(Some(value.seconds))
}
