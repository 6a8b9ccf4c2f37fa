//! Finance exports, streamed with constant memory: the body is produced one
//! page (`db::exports::EXPORT_PAGE_SIZE` rows) at a time as the client reads
//! it, never collected. Every export is as of an event sequence (`as_of`, by
//! default the newest safe one, see `db::audit::safe_as_of`) and names it in
//! the `Leeway-As-Of` header, so a re-run with that `as_of` returns the same
//! bytes.
//!
//! - `spends.csv`: RFC 4180, the fixed columns of [`SPEND_COLUMNS`], CRLF line
//!   ends; a cell a spreadsheet would run as a formula is prefixed with `'`.
//! - `spends.jsonl`, `events.jsonl`: one JSON object per line.
//! - `journal.beancount`: approved spends as `*` transactions, pending ones
//!   as `!`, the problem as a `^problem-<id>` link; rejected and voided spends
//!   moved no money and are left out.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::events::EventJson;
use super::types::{parse_date, parse_query_id, parse_status, parse_time, stored_money};
use crate::db::exports::{self, EventExportFilter, SpendAsOf, SpendExportFilter};
use crate::db::{Db, DbConnection, audit, teams};
use crate::domain::access::Caller;
use crate::encoding::rfc3339;
use crate::error::ApiError;
use crate::state::AppState;

/// Header naming the `as_of` an export was produced at.
pub const AS_OF_HEADER: &str = "leeway-as-of";

/// The columns of `spends.csv`, in order; `spends.jsonl` has the same fields.
pub const SPEND_COLUMNS: [&str; 23] = [
    "spend_id",
    "problem_id",
    "team_id",
    "owner_id",
    "logged_by",
    "logged_at",
    "spent_on",
    "amount",
    "currency",
    "approved_amount",
    "status",
    "overrun",
    "flag_reasons",
    "reviewer_id",
    "decided_by",
    "decided_at",
    "policy_team_id",
    "policy_version",
    "merchant",
    "description",
    "category",
    "voided_at",
    "as_of_sequence",
];

/// Characters that make a spreadsheet read a cell as a formula.
const FORMULA_PREFIXES: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The query every export takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Spends: a date `YYYY-MM-DD` on `spent_on`, inclusive. Events: RFC 3339.
    from: Option<String>,
    /// Spends: a date on `spent_on`, exclusive. Events: RFC 3339, exclusive.
    to: Option<String>,
    /// Only this team and the teams below it.
    team_id: Option<String>,
    /// Spends only: the status as of `as_of`.
    status: Option<String>,
    /// The event sequence to export as of; default the newest safe one.
    as_of: Option<i64>,
}

/// A spend in an export: the fixed column set.
#[derive(Debug, Serialize)]
pub struct SpendExportJson {
    spend_id: String,
    problem_id: String,
    team_id: String,
    owner_id: String,
    logged_by: String,
    logged_at: String,
    spent_on: String,
    amount: String,
    currency: String,
    approved_amount: Option<String>,
    status: String,
    overrun: Option<String>,
    flag_reasons: Option<String>,
    reviewer_id: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<String>,
    policy_team_id: Option<String>,
    policy_version: Option<i32>,
    merchant: String,
    description: String,
    category: Option<String>,
    voided_at: Option<String>,
    as_of_sequence: i64,
}

fn snapshot_text(snapshot: &serde_json::Value, field: &str) -> Option<String> {
    match snapshot.get(field)? {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Array(items) => Some(
            items
                .iter()
                .filter_map(serde_json::Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

impl SpendExportJson {
    fn from_row(row: SpendAsOf) -> Result<Self, ApiError> {
        let spend = row.spend;
        let amount = stored_money(spend.amount_minor, &spend.currency)?;
        let overrun = spend
            .overrun_minor
            .map(|minor| stored_money(minor, &spend.currency).map(|money| money.amount))
            .transpose()?;
        let status = snapshot_text(&row.snapshot, "status").unwrap_or_default();
        // What counts towards the problem's `approved`: a partial approval's
        // amount, else the whole amount once approved.
        let approved_amount = row
            .snapshot
            .get("approved_amount")
            .and_then(|money| money.get("amount"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                matches!(status.as_str(), "approved" | "approved_by_manager")
                    .then(|| amount.amount.clone())
            });
        Ok(Self {
            status,
            approved_amount,
            flag_reasons: snapshot_text(&row.snapshot, "flag_reasons"),
            reviewer_id: snapshot_text(&row.snapshot, "reviewer_id"),
            decided_by: snapshot_text(&row.snapshot, "decided_by"),
            decided_at: snapshot_text(&row.snapshot, "decided_at"),
            voided_at: snapshot_text(&row.snapshot, "voided_at"),
            spend_id: spend.id,
            problem_id: spend.problem_id,
            team_id: row.team_id,
            owner_id: row.owner_id,
            logged_by: spend.logged_by,
            logged_at: rfc3339(spend.logged_at),
            spent_on: spend.spent_on.format("%Y-%m-%d").to_string(),
            amount: amount.amount,
            currency: amount.currency,
            overrun,
            policy_team_id: spend.policy_team_id,
            policy_version: spend.policy_version,
            merchant: spend.merchant,
            description: spend.description,
            category: spend.category,
            as_of_sequence: row.sequence,
        })
    }

    fn cells(&self) -> [String; 23] {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        [
            self.spend_id.clone(),
            self.problem_id.clone(),
            self.team_id.clone(),
            self.owner_id.clone(),
            self.logged_by.clone(),
            self.logged_at.clone(),
            self.spent_on.clone(),
            self.amount.clone(),
            self.currency.clone(),
            text(&self.approved_amount),
            self.status.clone(),
            text(&self.overrun),
            text(&self.flag_reasons),
            text(&self.reviewer_id),
            text(&self.decided_by),
            text(&self.decided_at),
            text(&self.policy_team_id),
            self.policy_version
                .map(|v| v.to_string())
                .unwrap_or_default(),
            self.merchant.clone(),
            self.description.clone(),
            text(&self.category),
            text(&self.voided_at),
            self.as_of_sequence.to_string(),
        ]
    }
}

/// One CSV cell: neutralised if a spreadsheet would run it as a formula,
/// quoted (RFC 4180) when it holds a comma, quote, CR or LF.
#[must_use]
pub fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(FORMULA_PREFIXES) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// One CSV record with its CRLF.
pub fn csv_line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = cells
        .iter()
        .map(|cell| csv_cell(cell.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// A beancount string: quotes and backslashes replaced, one line.
fn beancount_text(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// The journal's accounts, opened once at its head.
const BEANCOUNT_HEADER: &str = "; Leeway journal: approved spends (*), spends awaiting review (!).\n\
1970-01-01 open Expenses:Leeway:Spends\n\
1970-01-01 open Liabilities:Leeway:Payable\n";

/// One spend as a beancount transaction; `None` for a spend that moved no
/// money (rejected, voided).
fn beancount_entry(spend: &SpendExportJson) -> Option<String> {
    let flag = match spend.status.as_str() {
        "approved" | "approved_by_manager" => '*',
        "pending_review" => '!',
        _ => return None,
    };
    Some(format!(
        "\n{date} {flag} \"{payee}\" \"{narration}\" #leeway ^problem-{problem}\n  \
         spend_id: \"{id}\"\n  team_id: \"{team}\"\n  status: \"{status}\"\n  \
         Expenses:Leeway:Spends  {amount} {currency}\n  Liabilities:Leeway:Payable\n",
        date = spend.spent_on,
        payee = beancount_text(&spend.merchant),
        narration = beancount_text(&spend.description),
        problem = spend.problem_id,
        id = spend.spend_id,
        team = spend.team_id,
        status = spend.status,
        amount = spend.approved_amount.as_deref().unwrap_or(&spend.amount),
        currency = spend.currency,
    ))
}

/// Exports are for finance and admins.
pub fn require_finance(caller: &Caller) -> Result<(), ApiError> {
    if caller.reads_everything() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "exports are for finance and admins".to_owned(),
        ))
    }
}

/// The `as_of` to export at: the one asked for, or the newest safe one. One
/// newer than that is a 409: the ledger has not reached it, and an export
/// that would change on a re-run must not claim a fixed `as_of`.
pub async fn resolve_as_of(db: &Db, asked: Option<i64>) -> Result<i64, ApiError> {
    let safe = db.read(audit::safe_as_of).await?;
    match asked {
        Some(as_of) if as_of < 0 => Err(ApiError::InvalidQuery(
            "as_of must be an event sequence (0 or more)".to_owned(),
        )),
        Some(as_of) if as_of > safe => Err(ApiError::AsOfAhead(as_of, safe)),
        Some(as_of) => Ok(as_of),
        None => Ok(safe),
    }
}

/// The team filter: the team and every team below it, as the tree stood at
/// `as_of` (exports) or as it stands (`None`, reports). 404 when no such team
/// exists now.
pub async fn team_filter(
    db: &Db,
    team_id: Option<&str>,
    as_of: Option<i64>,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(team_id) = team_id else {
        return Ok(None);
    };
    let team_id = parse_query_id(team_id, "team_id")?;
    db.read(move |connection| {
        if teams::find(connection, &team_id)?.is_none() {
            return Err(ApiError::NotFound("team"));
        }
        // Empty when the team came after `as_of`: then nothing matches.
        Ok(exports::team_subtree(connection, &team_id, as_of).map(Some)?)
    })
    .await
}

async fn spend_filter(db: &Db, query: ExportQuery) -> Result<SpendExportFilter, ApiError> {
    let from = query
        .from
        .as_deref()
        .map(|t| parse_date(t, "from"))
        .transpose()?;
    let to = query
        .to
        .as_deref()
        .map(|t| parse_date(t, "to"))
        .transpose()?;
    let status = parse_status(query.status)?;
    let as_of = resolve_as_of(db, query.as_of).await?;
    let team_ids = team_filter(db, query.team_id.as_deref(), Some(as_of)).await?;
    Ok(SpendExportFilter {
        team_ids,
        from,
        to,
        status,
        as_of,
    })
}

/// Streams pages: `fetch` turns the cursor into a chunk of bytes and the
/// next cursor (`None` after the last page). One page is in memory at a
/// time; the next is read only when the client has taken the last.
pub fn stream_pages<C, F>(
    db: Db,
    header: String,
    start: C,
    fetch: F,
) -> impl futures_util::Stream<Item = Result<Bytes, ApiError>>
where
    C: Send + 'static,
    F: Fn(&mut DbConnection, C) -> Result<(String, Option<C>), ApiError> + Send + Sync + 'static,
{
    enum Step<C> {
        Header(String, C),
        Page(C),
        Done,
    }
    let fetch = Arc::new(fetch);
    futures_util::stream::unfold(Step::Header(header, start), move |step| {
        let (db, fetch) = (db.clone(), Arc::clone(&fetch));
        async move {
            match step {
                Step::Done => None,
                Step::Header(header, start) => Some((Ok(Bytes::from(header)), Step::Page(start))),
                Step::Page(cursor) => {
                    match db.read(move |connection| fetch(connection, cursor)).await {
                        Ok((chunk, next)) => {
                            Some((Ok(Bytes::from(chunk)), next.map_or(Step::Done, Step::Page)))
                        }
                        Err(error) => {
                            // The status line is sent: all that is left is to cut
                            // the body short, which the client sees as an error.
                            tracing::error!(%error, "export failed mid-stream");
                            Some((Err(error), Step::Done))
                        }
                    }
                }
            }
        }
    })
}

/// A 200 streaming `body` as a download, naming its `as_of`.
pub fn respond(
    content_type: &'static str,
    file_name: &str,
    as_of: i64,
    body: impl futures_util::Stream<Item = Result<Bytes, ApiError>> + 'static,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((AS_OF_HEADER, as_of.to_string()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ))
        .streaming(body)
}

/// Streams the spends of `filter`, each rendered by `render`.
fn spend_stream(
    db: Db,
    filter: SpendExportFilter,
    header: String,
    render: fn(&SpendExportJson) -> Result<Option<String>, ApiError>,
) -> impl futures_util::Stream<Item = Result<Bytes, ApiError>> {
    stream_pages(db, header, None::<String>, move |connection, after| {
        let (rows, next) = exports::spends_page(connection, &filter, after.as_deref())?;
        let mut chunk = String::new();
        for row in rows {
            if let Some(text) = render(&SpendExportJson::from_row(row)?)? {
                chunk.push_str(&text);
            }
        }
        Ok((chunk, next.map(Some)))
    })
}

/// `GET /v1/exports/spends.csv`.
pub async fn spends_csv(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    require_finance(&caller)?;
    let filter = spend_filter(&state.db, query.into_inner()).await?;
    let as_of = filter.as_of;
    let body = spend_stream(
        state.db.clone(),
        filter,
        csv_line(&SPEND_COLUMNS),
        |spend| Ok(Some(csv_line(&spend.cells()))),
    );
    Ok(respond(
        "text/csv; charset=utf-8; header=present",
        "spends.csv",
        as_of,
        body,
    ))
}

/// `GET /v1/exports/spends.jsonl`.
pub async fn spends_jsonl(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    require_finance(&caller)?;
    let filter = spend_filter(&state.db, query.into_inner()).await?;
    let as_of = filter.as_of;
    let body = spend_stream(state.db.clone(), filter, String::new(), |spend| {
        let mut line =
            serde_json::to_string(spend).map_err(|error| ApiError::Internal(error.to_string()))?;
        line.push('\n');
        Ok(Some(line))
    });
    Ok(respond("application/jsonl", "spends.jsonl", as_of, body))
}

/// `GET /v1/exports/journal.beancount`.
pub async fn journal_beancount(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    require_finance(&caller)?;
    let filter = spend_filter(&state.db, query.into_inner()).await?;
    let as_of = filter.as_of;
    let header = format!("{BEANCOUNT_HEADER}; as_of {as_of}\n");
    let body = spend_stream(state.db.clone(), filter, header, |spend| {
        Ok(beancount_entry(spend))
    });
    Ok(respond(
        "text/plain; charset=utf-8",
        "journal.beancount",
        as_of,
        body,
    ))
}

/// `GET /v1/exports/events.jsonl`, oldest first.
pub async fn events_jsonl(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    require_finance(&caller)?;
    let query = query.into_inner();
    if query.status.is_some() {
        return Err(ApiError::InvalidQuery(
            "status filters spend exports only; filter events by kind with GET /v1/events"
                .to_owned(),
        ));
    }
    let from = query
        .from
        .as_deref()
        .map(|t| parse_time(t, "from"))
        .transpose()?;
    let to = query
        .to
        .as_deref()
        .map(|t| parse_time(t, "to"))
        .transpose()?;
    let as_of = resolve_as_of(&state.db, query.as_of).await?;
    let team_ids = team_filter(&state.db, query.team_id.as_deref(), Some(as_of)).await?;
    let filter = EventExportFilter {
        team_ids,
        from,
        to,
        as_of,
    };
    let body = stream_pages(
        state.db.clone(),
        String::new(),
        0,
        move |connection, after| {
            let (rows, next) = exports::events_page(connection, &filter, after)?;
            let mut chunk = String::with_capacity(rows.len() * 512);
            for row in rows {
                let line = serde_json::to_string(&EventJson::from_row(row)?)
                    .map_err(|error| ApiError::Internal(error.to_string()))?;
                chunk.push_str(&line);
                chunk.push('\n');
            }
            Ok((chunk, next))
        },
    );
    Ok(respond("application/jsonl", "events.jsonl", as_of, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_quoted_cells_escaped() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for cell in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(
                csv_cell(cell).trim_start_matches('"').starts_with('\''),
                "{cell}"
            );
        }
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("12.50"), "12.50");
    }
}
