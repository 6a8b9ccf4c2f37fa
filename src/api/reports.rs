//! `GET /v1/reports/summary`: the delegation report, the number a manager
//! watches to see whether they are still the bottleneck. JSON pages of
//! groups, or the whole report as streamed CSV (`format=csv` or
//! `Accept: text/csv`). Finance and admins.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::streaming::{csv_line, stream_pages};
use super::types::{
    ListJson, MoneyJson, PAGE_SIZE_DEFAULT, page_request, parse_date, parse_query_id, stored_money,
};
use crate::db::PageRequest;
use crate::db::cursor::GroupCursor;
use crate::db::reports::{GroupBy, REPORT_PAGE_SIZE_MAX, ReportRow};
use crate::domain::access::Caller;
use crate::error::ApiError;
use crate::service::reports::{self, Report, ReportQuery};
use crate::state::AppState;

/// The CSV columns, in order.
pub const REPORT_COLUMNS: [&str; 15] = [
    "group_by",
    "group_id",
    "period",
    "currency",
    "spend_count",
    "spent_autonomously",
    "spent_after_review",
    "overrun_count",
    "overrun_amount",
    "approval_count",
    "rejection_count",
    "pending_count",
    "escalation_count",
    "decision_seconds_median",
    "decision_seconds_p90",
];

/// `GET /v1/reports/summary` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// `team` when absent.
    #[serde(default)]
    group_by: Option<String>,
    #[serde(default)]
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    team_id: Option<String>,
    format: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

/// One group's figures as JSON.
#[derive(Debug, Serialize)]
pub struct SummaryJson {
    group_id: String,
    period: String,
    currency: String,
    spend_count: i64,
    spent_autonomously: MoneyJson,
    spent_after_review: MoneyJson,
    overrun_count: i64,
    overrun_amount: MoneyJson,
    approval_count: i64,
    rejection_count: i64,
    pending_count: i64,
    escalation_count: i64,
    decision_seconds_median: Option<i64>,
    decision_seconds_p90: Option<i64>,
}

impl SummaryJson {
    fn from_row(row: ReportRow) -> Result<Self, ApiError> {
        Ok(Self {
            spent_autonomously: stored_money(row.autonomous_minor, &row.currency)?,
            spent_after_review: stored_money(row.after_review_minor, &row.currency)?,
            overrun_amount: stored_money(row.overrun_minor, &row.currency)?,
            group_id: row.group_id,
            period: row.period,
            currency: row.currency,
            spend_count: row.spend_count,
            overrun_count: row.overrun_count,
            approval_count: row.approval_count,
            rejection_count: row.rejection_count,
            pending_count: row.pending_count,
            escalation_count: row.escalation_count,
            decision_seconds_median: row.decision_seconds_median,
            decision_seconds_p90: row.decision_seconds_p90,
        })
    }

    fn cells(&self, group_by: &str) -> Vec<String> {
        let optional = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
        vec![
            group_by.to_owned(),
            self.group_id.clone(),
            self.period.clone(),
            self.currency.clone(),
            self.spend_count.to_string(),
            self.spent_autonomously.amount.clone(),
            self.spent_after_review.amount.clone(),
            self.overrun_count.to_string(),
            self.overrun_amount.amount.clone(),
            self.approval_count.to_string(),
            self.rejection_count.to_string(),
            self.pending_count.to_string(),
            self.escalation_count.to_string(),
            optional(self.decision_seconds_median),
            optional(self.decision_seconds_p90),
        ]
    }
}

/// The JSON answer.
#[derive(Debug, Serialize)]
struct SummaryListJson {
    group_by: &'static str,
    period: &'static str,
    #[serde(flatten)]
    page: ListJson<SummaryJson>,
}

fn parse_group_by(text: &str) -> Result<(GroupBy, &'static str), ApiError> {
    match text {
        "team" => Ok((GroupBy::Team, "team")),
        "problem" => Ok((GroupBy::Problem, "problem")),
        "person" => Ok((GroupBy::Person, "person")),
        _ => Err(ApiError::InvalidQuery(
            "group_by must be team, problem or person".to_owned(),
        )),
    }
}

fn wants_csv(query: &SummaryQuery, request: &HttpRequest) -> Result<bool, ApiError> {
    match query.format.as_deref() {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(_) => Err(ApiError::InvalidQuery(
            "format must be json or csv".to_owned(),
        )),
        None => Ok(request
            .headers()
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|accept| accept.contains("text/csv"))),
    }
}

/// A summary request read from its query, checked in the order a client
/// sees the refusals.
struct SummaryRequest {
    report_query: ReportQuery,
    group_name: &'static str,
    csv: bool,
}

fn parse_summary(query: &SummaryQuery, request: &HttpRequest) -> Result<SummaryRequest, ApiError> {
    let (group_by, group_name) = parse_group_by(query.group_by.as_deref().unwrap_or("team"))?;
    if query
        .period
        .as_deref()
        .is_some_and(|period| period != "month")
    {
        return Err(ApiError::InvalidQuery("period must be month".to_owned()));
    }
    let csv = wants_csv(query, request)?;
    let report_query = ReportQuery {
        group_by,
        team_id: query
            .team_id
            .as_deref()
            .map(|id| parse_query_id(id, "team_id"))
            .transpose()?,
        from: query
            .from
            .as_deref()
            .map(|t| parse_date(t, "from"))
            .transpose()?,
        to: query
            .to
            .as_deref()
            .map(|t| parse_date(t, "to"))
            .transpose()?,
    };
    Ok(SummaryRequest {
        report_query,
        group_name,
        csv,
    })
}

/// `GET /v1/reports/summary?group_by=team|problem|person&period=month`.
pub async fn summary(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: web::Query<SummaryQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let SummaryRequest {
        report_query,
        group_name,
        csv,
    } = parse_summary(&query, &request)?;
    let report = state
        .db
        .read(move |connection| reports::report(connection, &caller, &report_query))
        .await?;
    if csv {
        return Ok(summary_csv(&state, report, group_name));
    }
    // The page is read after the report, as it always was: a caller refused
    // the report gets that refusal whatever their limit or cursor.
    let page = page_request(
        query.limit.or(Some(PAGE_SIZE_DEFAULT)),
        query.after.as_deref(),
    )?;
    let page = state
        .db
        .read(move |connection| reports::summary_page(connection, &report, &page))
        .await?;
    Ok(HttpResponse::Ok().json(SummaryListJson {
        group_by: group_name,
        period: "month",
        page: ListJson::from_page(page, SummaryJson::from_row)?,
    }))
}

/// The whole report as CSV, streamed a bounded page at a time.
fn summary_csv(state: &AppState, report: Report, group_name: &'static str) -> HttpResponse {
    let header = csv_line(&REPORT_COLUMNS);
    let body = stream_pages(
        state.db.clone(),
        header,
        None::<GroupCursor>,
        move |connection, after| {
            let page = PageRequest {
                limit: REPORT_PAGE_SIZE_MAX,
                after,
            };
            let page = reports::summary_page(connection, &report, &page)?;
            let mut chunk = String::new();
            for row in page.items {
                chunk.push_str(&csv_line(&SummaryJson::from_row(row)?.cells(group_name)));
            }
            Ok((chunk, page.next_after.map(Some)))
        },
    );
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8; header=present")
        .streaming(body)
}
