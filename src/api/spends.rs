//! Spends: logging money against a problem, where the limit rule decides on
//! the spot whether it is approved or flagged for review.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::idempotency::{self, Idempotent};
use super::problems::{
    find_visible, parse_query_id, problem_ref, stored_currency, totals, visibility,
};
use super::types::{
    Body, CATEGORY_LENGTH_MAX, Checks, ListJson, MoneyInput, MoneyJson, NAME_LENGTH_MAX,
    TEXT_LENGTH_MAX, page_request, parse_id, stored_money,
};
use crate::app::AppState;
use crate::db::events::{self, Subject};
use crate::db::spends::{self, SpendFilter, SpendRow};
use crate::db::{DbConnection, new_id, now, problems, rfc3339};
use crate::domain::access::Caller;
use crate::domain::money::Money;
use crate::error::ApiError;

/// Every spend status, as stored and in JSON.
pub const SPEND_STATUSES: [&str; 5] = [
    "approved",
    "pending_review",
    "approved_by_manager",
    "rejected",
    "voided",
];

/// Days after today (UTC) a `spent_on` may lie: a purchase made in a time
/// zone ahead of UTC is already "tomorrow" there.
pub const SPENT_ON_FUTURE_DAYS_MAX: u64 = 1;

/// A spend as JSON.
#[derive(Debug, Serialize)]
pub struct SpendJson {
    id: String,
    problem_id: String,
    amount: MoneyJson,
    status: String,
    overrun: Option<MoneyJson>,
    merchant: String,
    description: String,
    category: Option<String>,
    spent_on: String,
    receipt_url: Option<String>,
    logged_by: String,
    logged_at: String,
    decided_by: Option<String>,
    decided_at: Option<String>,
    decision_note: Option<String>,
    voided_by: Option<String>,
    voided_at: Option<String>,
    void_reason: Option<String>,
}

impl SpendJson {
    /// Converts a stored spend.
    pub fn from_row(row: SpendRow) -> Result<Self, ApiError> {
        Ok(Self {
            amount: stored_money(row.amount_minor, &row.currency)?,
            overrun: row
                .overrun_minor
                .map(|overrun| stored_money(overrun, &row.currency))
                .transpose()?,
            id: row.id,
            problem_id: row.problem_id,
            status: row.status,
            merchant: row.merchant,
            description: row.description,
            category: row.category,
            spent_on: row.spent_on.format("%Y-%m-%d").to_string(),
            receipt_url: row.receipt_url,
            logged_by: row.logged_by,
            logged_at: rfc3339(row.logged_at),
            decided_by: row.decided_by,
            decided_at: row.decided_at.map(rfc3339),
            decision_note: row.decision_note,
            voided_by: row.voided_by,
            voided_at: row.voided_at.map(rfc3339),
            void_reason: row.void_reason,
        })
    }
}

/// `POST /v1/problems/{id}/spends` body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSpend {
    amount: MoneyInput,
    merchant: String,
    description: String,
    #[serde(default)]
    category: Option<String>,
    spent_on: String,
    #[serde(default)]
    receipt_url: Option<String>,
}

/// A checked spend, ready to log.
struct NewSpend {
    amount: Money,
    merchant: String,
    description: String,
    category: Option<String>,
    spent_on: NaiveDate,
    receipt_url: Option<String>,
}

/// `GET /v1/spends` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    after: Option<String>,
    problem_id: Option<String>,
    status: Option<String>,
    logged_by: Option<String>,
}

fn check_spent_on(checks: &mut Checks, text: &str) -> Option<NaiveDate> {
    let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") else {
        checks.refuse(
            "spent_on",
            "invalid_date",
            "spent_on must be a date such as \"2026-11-25\"",
        );
        return None;
    };
    let latest = Utc::now()
        .date_naive()
        .checked_add_days(Days::new(SPENT_ON_FUTURE_DAYS_MAX));
    if latest.is_some_and(|latest| date > latest) {
        checks.refuse(
            "spent_on",
            "in_the_future",
            "spent_on cannot be in the future",
        );
    }
    Some(date)
}

/// `POST /v1/problems/{id}/spends`: 201 whether approved or flagged.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    body: Body<CreateSpend>,
) -> Result<HttpResponse, ApiError> {
    let problem_id = parse_id(&path, "problem")?;
    let key = idempotency::idempotency_key(&request)?;
    let fingerprint =
        idempotency::fingerprint(&format!("POST /v1/problems/{problem_id}/spends"), &*body)?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let amount = checks.money("amount", &body.amount);
    let merchant = checks.text("merchant", &body.merchant, NAME_LENGTH_MAX);
    let description = checks.text("description", &body.description, TEXT_LENGTH_MAX);
    let category = checks.optional_text("category", body.category.as_deref(), CATEGORY_LENGTH_MAX);
    let spent_on = check_spent_on(&mut checks, &body.spent_on);
    let receipt_url = checks.url("receipt_url", body.receipt_url.as_deref());
    checks.finish()?;
    let (Some(amount), Some(spent_on)) = (amount, spent_on) else {
        return Err(ApiError::Internal(
            "spend passed checks unparsed".to_owned(),
        ));
    };
    let new = NewSpend {
        amount,
        merchant,
        description,
        category,
        spent_on,
        receipt_url,
    };
    let request = Idempotent {
        caller_id: caller.person_id.clone(),
        key,
        fingerprint,
        status: StatusCode::CREATED,
    };
    idempotency::respond(&state, request, move |connection| {
        log(connection, &caller, &problem_id, new)
    })
    .await
}

/// Logs a spend under the limit rule, atomically with its totals and event.
fn log(
    connection: &mut DbConnection,
    caller: &Caller,
    problem_id: &str,
    new: NewSpend,
) -> Result<SpendJson, ApiError> {
    let problem = find_visible(connection, caller, problem_id)?;
    if !caller.may_log_spend(problem_ref(&problem)) {
        return Err(ApiError::Forbidden(
            "only the problem's owner or a manager of its team can log spends".to_owned(),
        ));
    }
    let amount = new
        .amount
        .require_currency(stored_currency(&problem.currency)?)
        .map_err(|error| ApiError::money("amount.currency", &error))?;
    if problem.status != "open" {
        return Err(ApiError::ProblemClosed);
    }
    let (status, overrun_minor) = apply_limit_rule(connection, problem_id, amount.minor())?;
    let spend = SpendRow {
        id: new_id(),
        problem_id: problem_id.to_owned(),
        amount_minor: amount.minor(),
        currency: problem.currency.clone(),
        status: status.to_owned(),
        overrun_minor,
        merchant: new.merchant,
        description: new.description,
        category: new.category,
        spent_on: new.spent_on,
        receipt_url: new.receipt_url,
        logged_by: caller.person_id.clone(),
        logged_at: now(),
        decided_by: None,
        decided_at: None,
        decision_note: None,
        voided_by: None,
        voided_at: None,
        void_reason: None,
    };
    spends::insert(connection, &spend)?;
    let kind = if overrun_minor.is_some() {
        "spend.flagged"
    } else {
        "spend.approved"
    };
    record(connection, caller, kind, &spend, &problem.team_id)
}

/// The limit rule against the problem's running totals. First the guarded
/// update that approves only inside the headroom; if it changed nothing, the
/// amount is reserved as pending. That reservation locks the row (PostgreSQL)
/// or runs under the write lock (SQLite), so the totals read next are stable:
/// if a concurrent rejection freed headroom in between, the spend fits after
/// all and is approved; otherwise its overrun is computed from those totals.
fn apply_limit_rule(
    connection: &mut DbConnection,
    problem_id: &str,
    amount_minor: i64,
) -> Result<(&'static str, Option<i64>), ApiError> {
    if problems::try_approve_within_limit(connection, problem_id, amount_minor)? {
        return Ok(("approved", None));
    }
    if !problems::reserve_pending(connection, problem_id, amount_minor)? {
        return Err(ApiError::ProblemClosed);
    }
    let problem = problems::find(connection, problem_id)?.ok_or(ApiError::NotFound("problem"))?;
    let mut before = totals(&problem);
    before.pending_review_minor -= amount_minor;
    if before.fits(amount_minor) {
        problems::settle_pending(connection, problem_id, amount_minor, true)?;
        return Ok(("approved", None));
    }
    Ok(("pending_review", Some(before.overrun_minor(amount_minor))))
}

/// Writes the spend's event and returns its JSON.
pub fn record(
    connection: &mut DbConnection,
    caller: &Caller,
    kind: &str,
    spend: &SpendRow,
    team_id: &str,
) -> Result<SpendJson, ApiError> {
    let json = SpendJson::from_row(spend.clone())?;
    let subject = Subject {
        subject_type: "spend",
        subject_id: &spend.id,
        team_id: Some(team_id),
        problem_id: Some(&spend.problem_id),
    };
    events::record(connection, Some(&caller.person_id), kind, subject, &json)?;
    Ok(json)
}

/// Checks a `status` query value.
pub fn parse_status(status: Option<String>) -> Result<Option<String>, ApiError> {
    match status {
        Some(status) if !SPEND_STATUSES.contains(&status.as_str()) => Err(ApiError::InvalidQuery(
            format!("status must be one of {}", SPEND_STATUSES.join(", ")),
        )),
        other => Ok(other),
    }
}

/// `GET /v1/spends`.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = page_request(query.limit, query.after.as_deref())?;
    let filter = SpendFilter {
        problem_id: query
            .problem_id
            .as_deref()
            .map(|id| parse_query_id(id, "problem_id"))
            .transpose()?,
        status: parse_status(query.status)?,
        logged_by: query
            .logged_by
            .as_deref()
            .map(|id| parse_query_id(id, "logged_by"))
            .transpose()?,
    };
    let visibility = visibility(&caller);
    let rows = state
        .db
        .read(move |connection| spends::list(connection, &visibility, &filter, &page))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, SpendJson::from_row)?))
}

/// Loads a spend whose problem the caller may see; anything else is 404.
pub fn find_visible_spend(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
) -> Result<(SpendRow, problems::ProblemRow), ApiError> {
    let spend = spends::find(connection, id)?.ok_or(ApiError::NotFound("spend"))?;
    let problem = find_visible(connection, caller, &spend.problem_id)
        .map_err(|_| ApiError::NotFound("spend"))?;
    Ok((spend, problem))
}

/// `GET /v1/spends/{id}`.
pub async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "spend")?;
    let (spend, _) = state
        .db
        .read(move |connection| find_visible_spend(connection, &caller, &id))
        .await?;
    Ok(HttpResponse::Ok().json(SpendJson::from_row(spend)?))
}

/// `POST /v1/spends/{id}/void` body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoidBody {
    /// Why; always required, it is the audit record of the correction.
    reason: String,
}

/// `POST /v1/spends/{id}/void`: the correction for a spend logged in error.
/// The spend keeps its row and figures; its amount leaves the problem's
/// totals. To correct an amount, void and log anew.
pub async fn void(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    body: Body<VoidBody>,
) -> Result<HttpResponse, ApiError> {
    let spend_id = parse_id(&path, "spend")?;
    let key = idempotency::idempotency_key(&request)?;
    let fingerprint =
        idempotency::fingerprint(&format!("POST /v1/spends/{spend_id}/void"), &*body)?;
    let mut checks = Checks::default();
    let reason = checks.text("reason", &body.reason, TEXT_LENGTH_MAX);
    checks.finish()?;
    let request = Idempotent {
        caller_id: caller.person_id.clone(),
        key,
        fingerprint,
        status: StatusCode::OK,
    };
    idempotency::respond(&state, request, move |connection| {
        apply_void(connection, &caller, &spend_id, &reason)
    })
    .await
}

fn apply_void(
    connection: &mut DbConnection,
    caller: &Caller,
    spend_id: &str,
    reason: &str,
) -> Result<SpendJson, ApiError> {
    let (spend, problem) = find_visible_spend(connection, caller, spend_id)?;
    let was_pending = spend.status == "pending_review";
    if !caller.may_void(problem_ref(&problem), &spend.logged_by, was_pending) {
        return Err(ApiError::Forbidden(
            "whoever logged a spend may void it while it awaits review; a manager of the team at any time".to_owned(),
        ));
    }
    if !matches!(
        spend.status.as_str(),
        "approved" | "approved_by_manager" | "pending_review"
    ) {
        return Err(ApiError::NotVoidable(spend.status));
    }
    if !spends::void(
        connection,
        spend_id,
        &spend.status,
        &caller.person_id,
        now(),
        reason,
    )? {
        return Err(ApiError::Conflict(
            "the spend changed while it was being voided: read it and retry".to_owned(),
        ));
    }
    problems::release(connection, &problem.id, spend.amount_minor, was_pending)?;
    let spend = spends::find(connection, spend_id)?.ok_or(ApiError::NotFound("spend"))?;
    record(connection, caller, "spend.voided", &spend, &problem.team_id)
}
