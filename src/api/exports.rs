//! Finance exports, streamed with constant memory: the body is produced one
//! page (`db::exports::EXPORT_PAGE_SIZE` rows) at a time as the client reads
//! it, never collected. Every export is as of an event sequence (`as_of`, by
//! default the newest safe one, see `db::audit::safe_as_of`) and names it in
//! the `Leeway-As-Of` header, so a re-run with that `as_of` returns the same
//! bytes.
//!
//! - `spends.csv`: RFC 4180, the fixed columns of [`SPEND_COLUMNS`], CRLF line
//!   ends; a cell a spreadsheet would run as a formula is prefixed with `'`.
//! - `spends.jsonl`, `events.jsonl`: one JSON object per line, sent as
//!   `text/plain; charset=utf-8`: client generators know no JSON Lines media
//!   type, and some parse an `application/jsonl` body as one JSON document.
//! - `journal.beancount`: approved spends as `*` transactions, pending ones
//!   as `!`, the problem as a `^problem-<id>` link; rejected and voided spends
//!   moved no money and are left out.

use std::fmt::Write;

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::streaming::{EventJson, csv_line, push_csv_line, respond, stream_pages};
use super::types::{parse_date, parse_query_id, parse_status, parse_time};
use crate::db::Db;
use crate::domain::access::Caller;
use crate::domain::currency::Currency;
use crate::domain::money::Money;
use crate::encoding::{ShortText, date_short, rfc3339_short};
use crate::error::ApiError;
use crate::service::exports::{self, EventExportQuery, SpendAsOf, SpendExport, SpendExportQuery};
use crate::service::ledger::stored_currency;
use crate::state::AppState;

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

/// A spend in an export: the fixed column set, borrowed from the spend as
/// of the export and its [`SpendTexts`], so rendering a row allocates
/// nothing of its own.
#[derive(Debug, Serialize)]
pub struct SpendExportJson<'a> {
    spend_id: &'a str,
    problem_id: &'a str,
    team_id: &'a str,
    owner_id: &'a str,
    logged_by: &'a str,
    logged_at: &'a str,
    spent_on: &'a str,
    amount: &'a str,
    currency: &'a str,
    approved_amount: Option<&'a str>,
    status: &'a str,
    overrun: Option<&'a str>,
    flag_reasons: Option<&'a str>,
    reviewer_id: Option<&'a str>,
    decided_by: Option<&'a str>,
    decided_at: Option<&'a str>,
    policy_team_id: Option<&'a str>,
    policy_version: Option<i32>,
    merchant: &'a str,
    description: &'a str,
    category: Option<&'a str>,
    voided_at: Option<&'a str>,
    as_of_sequence: i64,
}

/// The cells of an exported spend that are written rather than stored,
/// each on the stack but the flag reasons (joined only when there are some).
struct SpendTexts {
    amount: ShortText,
    overrun: Option<ShortText>,
    logged_at: ShortText,
    spent_on: ShortText,
    flag_reasons: Option<String>,
}

impl SpendTexts {
    /// Writes the cells of `row`, whose currency is `currency`.
    fn new(row: &SpendAsOf, currency: Currency) -> Result<Self, ApiError> {
        let spend = &row.spend;
        let amount = |minor| {
            let mut text = ShortText::new();
            Money::from_minor(minor, currency)
                .write_amount(&mut text)
                .map(|()| text)
                .map_err(|_| ApiError::Internal(format!("amount {minor} does not fit")))
        };
        Ok(Self {
            amount: amount(spend.amount_minor)?,
            overrun: spend.overrun_minor.map(amount).transpose()?,
            logged_at: rfc3339_short(spend.logged_at),
            spent_on: date_short(spend.spent_on),
            flag_reasons: row
                .snapshot
                .flag_reasons
                .as_ref()
                .map(|reasons| reasons.join(",")),
        })
    }
}

impl<'a> SpendExportJson<'a> {
    fn new(row: &'a SpendAsOf, currency: Currency, texts: &'a SpendTexts) -> Self {
        let spend = &row.spend;
        let snapshot = &row.snapshot;
        let amount = texts.amount.as_str();
        Self {
            status: &snapshot.status,
            approved_amount: snapshot.approved_amount_or(amount),
            flag_reasons: texts.flag_reasons.as_deref(),
            reviewer_id: snapshot.reviewer_id.as_deref(),
            decided_by: snapshot.decided_by.as_deref(),
            decided_at: snapshot.decided_at.as_deref(),
            voided_at: snapshot.voided_at.as_deref(),
            spend_id: &spend.id,
            problem_id: &spend.problem_id,
            team_id: &row.team_id,
            owner_id: &row.owner_id,
            logged_by: &spend.logged_by,
            logged_at: texts.logged_at.as_str(),
            spent_on: texts.spent_on.as_str(),
            amount,
            currency: currency.code(),
            overrun: texts.overrun.as_ref().map(ShortText::as_str),
            policy_team_id: spend.policy_team_id.as_deref(),
            policy_version: spend.policy_version,
            merchant: &spend.merchant,
            description: &spend.description,
            category: spend.category.as_deref(),
            as_of_sequence: row.sequence,
        }
    }

    /// Appends the CSV record: cells borrowed, the two numbers written on
    /// the stack.
    fn push_csv(&self, out: &mut Vec<u8>) {
        let mut policy_version = ShortText::new();
        if let Some(version) = self.policy_version {
            // An i32 fits a ShortText.
            let _ = write!(policy_version, "{version}");
        }
        let mut as_of_sequence = ShortText::new();
        // An i64 fits a ShortText.
        let _ = write!(as_of_sequence, "{}", self.as_of_sequence);
        let cells: [&str; 23] = [
            self.spend_id,
            self.problem_id,
            self.team_id,
            self.owner_id,
            self.logged_by,
            self.logged_at,
            self.spent_on,
            self.amount,
            self.currency,
            self.approved_amount.unwrap_or_default(),
            self.status,
            self.overrun.unwrap_or_default(),
            self.flag_reasons.unwrap_or_default(),
            self.reviewer_id.unwrap_or_default(),
            self.decided_by.unwrap_or_default(),
            self.decided_at.unwrap_or_default(),
            self.policy_team_id.unwrap_or_default(),
            policy_version.as_str(),
            self.merchant,
            self.description,
            self.category.unwrap_or_default(),
            self.voided_at.unwrap_or_default(),
            as_of_sequence.as_str(),
        ];
        push_csv_line(out, &cells);
    }
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
    let flag = match spend.status {
        "approved" | "approved_by_manager" => '*',
        "pending_review" => '!',
        _ => return None,
    };
    Some(format!(
        "\n{date} {flag} \"{payee}\" \"{narration}\" #leeway ^problem-{problem}\n  \
         spend_id: \"{id}\"\n  team_id: \"{team}\"\n  status: \"{status}\"\n  \
         Expenses:Leeway:Spends  {amount} {currency}\n  Liabilities:Leeway:Payable\n",
        date = spend.spent_on,
        payee = beancount_text(spend.merchant),
        narration = beancount_text(spend.description),
        problem = spend.problem_id,
        id = spend.spend_id,
        team = spend.team_id,
        status = spend.status,
        amount = spend.approved_amount.unwrap_or(spend.amount),
        currency = spend.currency,
    ))
}

/// Reads `as_of`: an event sequence, 0 or more.
fn parse_as_of(as_of: Option<i64>) -> Result<Option<i64>, ApiError> {
    match as_of {
        Some(as_of) if as_of < 0 => Err(ApiError::InvalidQuery(
            "as_of must be an event sequence (0 or more)".to_owned(),
        )),
        other => Ok(other),
    }
}

/// Parses the query of a spend export and resolves it for `caller`.
async fn spend_export(
    db: &Db,
    caller: Caller,
    query: ExportQuery,
) -> Result<SpendExport, ApiError> {
    let query = SpendExportQuery {
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
        status: parse_status(query.status)?,
        as_of: parse_as_of(query.as_of)?,
        team_id: query
            .team_id
            .as_deref()
            .map(|id| parse_query_id(id, "team_id"))
            .transpose()?,
    };
    Ok(db
        .read(move |connection| exports::spend_export(connection, &caller, &query))
        .await?)
}

// Expected bytes of one row of each export (a little above a typical
// row's), so a page's buffer is sized once instead of doubled and copied.
/// One spend in `spends.csv`.
const CSV_SPEND_BYTES: usize = 384;
/// One spend in `spends.jsonl`.
const JSONL_SPEND_BYTES: usize = 768;
/// One spend in `journal.beancount`.
const BEANCOUNT_SPEND_BYTES: usize = 320;
/// One event in `events.jsonl` (about 1.3 KB with its payload and hashes).
const JSONL_EVENT_BYTES: usize = 1_536;

/// Streams the spends of `export`, each appended to its page by `render`
/// (about `bytes_per_spend` each).
fn spend_stream(
    db: Db,
    export: SpendExport,
    header: String,
    bytes_per_spend: usize,
    render: fn(&SpendExportJson, &mut Vec<u8>) -> Result<(), ApiError>,
) -> impl futures_util::Stream<Item = Result<Bytes, ApiError>> {
    stream_pages(db, header, None::<String>, move |connection, after| {
        let (rows, next) = exports::spends_page(connection, &export, after.as_deref())?;
        let mut chunk = Vec::with_capacity(rows.len() * bytes_per_spend);
        // A page's spends nearly always share a few currencies: look each
        // code up once, not once per row.
        let mut currency: Option<Currency> = None;
        for row in &rows {
            let known = match currency {
                Some(known) if known.code() == row.spend.currency => known,
                _ => stored_currency(&row.spend.currency)?,
            };
            currency = Some(known);
            let texts = SpendTexts::new(row, known)?;
            render(&SpendExportJson::new(row, known, &texts), &mut chunk)?;
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
    let export = spend_export(&state.db, caller, query.into_inner()).await?;
    let as_of = export.as_of();
    let body = spend_stream(
        state.db.clone(),
        export,
        csv_line(&SPEND_COLUMNS),
        CSV_SPEND_BYTES,
        |spend, out| {
            spend.push_csv(out);
            Ok(())
        },
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
    let export = spend_export(&state.db, caller, query.into_inner()).await?;
    let as_of = export.as_of();
    let body = spend_stream(
        state.db.clone(),
        export,
        String::new(),
        JSONL_SPEND_BYTES,
        |spend, out| {
            serde_json::to_writer(&mut *out, spend)
                .map_err(|error| ApiError::Internal(error.to_string()))?;
            out.push(b'\n');
            Ok(())
        },
    );
    Ok(respond(
        "text/plain; charset=utf-8",
        "spends.jsonl",
        as_of,
        body,
    ))
}

/// `GET /v1/exports/journal.beancount`.
pub async fn journal_beancount(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let export = spend_export(&state.db, caller, query.into_inner()).await?;
    let as_of = export.as_of();
    let header = format!("{BEANCOUNT_HEADER}; as_of {as_of}\n");
    let body = spend_stream(
        state.db.clone(),
        export,
        header,
        BEANCOUNT_SPEND_BYTES,
        |spend, out| {
            if let Some(entry) = beancount_entry(spend) {
                out.extend_from_slice(entry.as_bytes());
            }
            Ok(())
        },
    );
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
    let query = query.into_inner();
    if query.status.is_some() {
        return Err(ApiError::InvalidQuery(
            "status filters spend exports only; filter events by kind with GET /v1/events"
                .to_owned(),
        ));
    }
    let query = EventExportQuery {
        from: query
            .from
            .as_deref()
            .map(|t| parse_time(t, "from"))
            .transpose()?,
        to: query
            .to
            .as_deref()
            .map(|t| parse_time(t, "to"))
            .transpose()?,
        as_of: parse_as_of(query.as_of)?,
        team_id: query
            .team_id
            .as_deref()
            .map(|id| parse_query_id(id, "team_id"))
            .transpose()?,
    };
    let export = state
        .db
        .read(move |connection| exports::event_export(connection, &caller, &query))
        .await?;
    let as_of = export.as_of();
    let body = stream_pages(
        state.db.clone(),
        String::new(),
        0,
        move |connection, after| {
            let (rows, next) = exports::events_page(connection, &export, after)?;
            let mut chunk = Vec::with_capacity(rows.len() * JSONL_EVENT_BYTES);
            for row in rows {
                serde_json::to_writer(&mut chunk, &EventJson::from_row(row)?)
                    .map_err(|error| ApiError::Internal(error.to_string()))?;
                chunk.push(b'\n');
            }
            Ok((chunk, next))
        },
    );
    Ok(respond(
        "text/plain; charset=utf-8",
        "events.jsonl",
        as_of,
        body,
    ))
}
