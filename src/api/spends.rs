//! Spends and reviews over HTTP: the request and response shapes of
//! `/v1/problems/{id}/spends`, `/v1/spends/...` and `/v1/reviews`; the use
//! cases are `service::spends` and `service::reviews`.

use std::sync::{Arc, OnceLock};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use super::idempotency::{self, Idempotent};
use super::types::{
    Body, CATEGORY_LENGTH_MAX, Checks, ListJson, MoneyInput, MoneyJson, NAME_LENGTH_MAX, PageQuery,
    PolicyRefJson, TEXT_LENGTH_MAX, page_request, parse_id, parse_query_id, parse_status,
    parse_typed_id, stored_money,
};
use crate::db::review_steps::ReviewStepRow;
use crate::db::spends::{SpendFilter, SpendRow};
use crate::domain::access::Caller;
use crate::domain::ids::SpendId;
use crate::domain::review::decode_reasons;
use crate::domain::status::SpendStatus;
use crate::encoding::rfc3339;
use crate::error::ApiError;
use crate::metrics::SpendOutcome;
use crate::service::reviews::{self, DecisionKind, Review};
use crate::service::spends::{self, LogSpend};
use crate::state::AppState;

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
    flag_reasons: Vec<String>,
    approved_amount: Option<MoneyJson>,
    policy: Option<PolicyRefJson>,
    reviewer_id: Option<String>,
    review_team_id: Option<String>,
    original_reviewer_id: Option<String>,
    review_due_at: Option<String>,
    decided_on_behalf_of: Option<String>,
    /// Only on `GET /v1/spends/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    review_history: Option<Vec<ReviewStepJson>>,
}

/// One step of a spend's review history as JSON.
#[derive(Debug, Serialize)]
pub struct ReviewStepJson {
    step: i32,
    action: String,
    actor_id: Option<String>,
    on_behalf_of: Option<String>,
    reviewer_id: Option<String>,
    review_team_id: Option<String>,
    approved_amount: Option<MoneyJson>,
    note: Option<String>,
    at: String,
}

impl ReviewStepJson {
    fn from_row(row: ReviewStepRow, currency: &str) -> Result<Self, ApiError> {
        Ok(Self {
            approved_amount: row
                .approved_amount_minor
                .map(|minor| stored_money(minor, currency))
                .transpose()?,
            step: row.step,
            action: row.action,
            actor_id: row.actor_id,
            on_behalf_of: row.on_behalf_of_id,
            reviewer_id: row.reviewer_id,
            review_team_id: row.review_team_id,
            note: row.note,
            at: rfc3339(row.at),
        })
    }
}

impl SpendJson {
    /// Converts a stored spend.
    pub fn from_row(row: SpendRow) -> Result<Self, ApiError> {
        Ok(Self {
            approved_amount: row
                .approved_amount_minor
                .map(|minor| stored_money(minor, &row.currency))
                .transpose()?,
            flag_reasons: decode_reasons(row.flag_reasons.as_deref()),
            policy: row
                .policy_team_id
                .zip(row.policy_version)
                .map(|(team_id, version)| PolicyRefJson { team_id, version }),
            reviewer_id: row.reviewer_id,
            review_team_id: row.review_team_id,
            original_reviewer_id: row.original_reviewer_id,
            review_due_at: row.review_due_at.map(rfc3339),
            decided_on_behalf_of: row.decided_on_behalf_of,
            review_history: None,
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

fn check_spent_on(checks: &mut Checks, text: &str, today: NaiveDate) -> Option<NaiveDate> {
    let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") else {
        checks.refuse(
            "spent_on",
            "invalid_date",
            "spent_on must be a date such as \"2026-11-25\"",
        );
        return None;
    };
    let latest = today.checked_add_days(Days::new(SPENT_ON_FUTURE_DAYS_MAX));
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
    let route = format!("POST /v1/problems/{problem_id}/spends");
    let request = Idempotent::read(
        &request,
        &caller.person_id,
        &route,
        &*body,
        StatusCode::CREATED,
    )?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let amount = checks.money("amount", &body.amount);
    let merchant = checks.text("merchant", &body.merchant, NAME_LENGTH_MAX);
    let description = checks.text("description", &body.description, TEXT_LENGTH_MAX);
    let category = checks.optional_text("category", body.category.as_deref(), CATEGORY_LENGTH_MAX);
    let at = state.clock.now();
    let spent_on = check_spent_on(&mut checks, &body.spent_on, at.date());
    let receipt_url = checks.url("receipt_url", body.receipt_url.as_deref());
    checks.finish()?;
    let (Some(amount), Some(spent_on)) = (amount, spent_on) else {
        return Err(ApiError::Internal(
            "spend passed checks unparsed".to_owned(),
        ));
    };
    let command = LogSpend {
        amount,
        merchant,
        description,
        category,
        spent_on,
        receipt_url,
    };
    // Set only when the work runs: a replay logs no spend. Counted once the
    // response is back, so a rolled-back spend is never counted.
    let outcome = Arc::new(OnceLock::new());
    let logged = Arc::clone(&outcome);
    let response = idempotency::respond(&state, request, move |connection| {
        let row = spends::log(connection, &caller, &problem_id, command, at)?;
        if let Some(outcome) = spend_outcome(&row.status) {
            // The work runs at most once per request, so the cell is empty.
            let _ = logged.set(outcome);
        }
        SpendJson::from_row(row)
    })
    .await?;
    if let Some(outcome) = outcome.get() {
        crate::metrics::spend_logged(*outcome);
    }
    Ok(response)
}

/// How a newly logged spend came out, from its stored status (a new spend
/// is either approved on the spot or flagged).
fn spend_outcome(status: &str) -> Option<SpendOutcome> {
    match SpendStatus::parse(status)? {
        SpendStatus::Approved => Some(SpendOutcome::Approved),
        SpendStatus::PendingReview => Some(SpendOutcome::Flagged),
        SpendStatus::ApprovedByManager | SpendStatus::Rejected | SpendStatus::Voided => None,
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
    let rows = state
        .db
        .read(move |connection| spends::list(connection, &caller, &filter, &page))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, SpendJson::from_row)?))
}

/// `GET /v1/spends/{id}`: the spend with its review history.
pub async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "spend")?;
    let at = state.clock.now();
    let (spend, history) = state
        .db
        .read(move |connection| spends::show(connection, &caller, &id, at))
        .await?;
    let currency = spend.currency.clone();
    let mut json = SpendJson::from_row(spend)?;
    json.review_history = Some(
        history
            .into_iter()
            .map(|step| ReviewStepJson::from_row(step, &currency))
            .collect::<Result<_, _>>()?,
    );
    Ok(HttpResponse::Ok().json(json))
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
    let route = format!("POST /v1/spends/{spend_id}/void");
    let request = Idempotent::read(&request, &caller.person_id, &route, &*body, StatusCode::OK)?;
    let mut checks = Checks::default();
    let reason = checks.text("reason", &body.reason, TEXT_LENGTH_MAX);
    checks.finish()?;
    let at = state.clock.now();
    idempotency::respond(&state, request, move |connection| {
        SpendJson::from_row(spends::void(connection, &caller, &spend_id, &reason, at)?)
    })
    .await
}

/// `POST /v1/spends/{id}/review` body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    decision: DecisionKind,
    /// Why; required when rejecting, approving in part, or changing the limit.
    #[serde(default)]
    note: Option<String>,
    /// Approve only this much; the rest is rejected.
    #[serde(default)]
    approved_amount: Option<MoneyInput>,
    /// Set the problem's limit to this while approving (managers of the
    /// problem's team only); the note is the change's reason.
    #[serde(default)]
    new_limit: Option<MoneyInput>,
}

/// `POST /v1/spends/{id}/review`.
pub async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    body: Body<ReviewBody>,
) -> Result<HttpResponse, ApiError> {
    let spend_id: SpendId = parse_typed_id(&path, "spend")?;
    let route = format!("POST /v1/spends/{spend_id}/review");
    let request = Idempotent::read(&request, &caller.person_id, &route, &*body, StatusCode::OK)?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let note = checks.optional_text("note", body.note.as_deref(), TEXT_LENGTH_MAX);
    let approved_amount = body
        .approved_amount
        .as_ref()
        .and_then(|amount| checks.money("approved_amount", amount));
    let new_limit = body
        .new_limit
        .as_ref()
        .and_then(|limit| checks.money("new_limit", limit));
    if body.decision == DecisionKind::Reject {
        if note.is_none() {
            checks.refuse("note", "required", "say why when rejecting a spend");
        }
        for (field, given) in [
            ("approved_amount", body.approved_amount.is_some()),
            ("new_limit", body.new_limit.is_some()),
        ] {
            if given {
                checks.refuse(
                    field,
                    "not_allowed",
                    format!("{field} goes with an approval"),
                );
            }
        }
    } else if note.is_none() && (body.approved_amount.is_some() || body.new_limit.is_some()) {
        checks.refuse(
            "note",
            "required",
            "say why when approving in part or changing the limit",
        );
    }
    checks.finish()?;
    let review = Review {
        decision: body.decision,
        note,
        approved_amount,
        new_limit,
    };
    let at = state.clock.now();
    idempotency::respond(&state, request, move |connection| {
        SpendJson::from_row(reviews::decide(
            connection, &caller, &spend_id, &review, at,
        )?)
    })
    .await
}

/// A pending spend in a review queue.
#[derive(Debug, Serialize)]
pub struct QueueItemJson {
    #[serde(flatten)]
    spend: SpendJson,
    /// Whether the caller may decide it (else it is shown read-only: routed
    /// to a manager below them).
    can_decide: bool,
    /// The reviewer the caller would decide for, as their delegate.
    on_behalf_of: Option<String>,
}

/// `GET /v1/reviews`: flagged spends routed to the caller (or to whoever's
/// queue they hold by delegation, or to the admins for an admin), and,
/// read-only, those routed to managers in teams below them. Finance and
/// admins see every pending spend. Oldest first.
pub async fn queue(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.after.as_deref())?;
    let at = state.clock.now();
    let items = state
        .db
        .read(move |connection| reviews::queue(connection, &caller, &page, at))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(items, |item| {
        Ok(QueueItemJson {
            spend: SpendJson::from_row(item.spend)?,
            can_decide: item.can_decide,
            on_behalf_of: item.on_behalf_of,
        })
    })?))
}
