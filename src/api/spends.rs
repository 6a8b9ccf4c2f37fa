//! Spends: logging money against a problem, where the limit rule decides on
//! the spot whether it is approved or flagged for review.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Days, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::idempotency::{self, Idempotent};
use super::problems::{
    PolicyRefJson, find_visible, problem_ref, stored_currency, totals, visibility,
};
use super::types::{
    Body, CATEGORY_LENGTH_MAX, Checks, ListJson, MoneyInput, MoneyJson, NAME_LENGTH_MAX,
    TEXT_LENGTH_MAX, page_request, parse_id, parse_query_id, parse_status, stored_money,
};
use crate::db::audit;
use crate::db::events::Subject;
use crate::db::period_totals::{self, PeriodKey};
use crate::db::review_steps::{self, ReviewStepRow};
use crate::db::spends::{self, SpendFilter, SpendRow};
use crate::db::{DbConnection, delegations, new_id, problems, teams};
use crate::domain::access::Caller;
use crate::domain::money::Money;
use crate::domain::review::{
    FlagReason, Route, allowance_overrun_minor, decode_reasons, encode_reasons, period_of,
};
use crate::encoding::rfc3339;
use crate::error::ApiError;
use crate::state::AppState;
use crate::workflow::{Step, pinned_policy, record_step, review_due_at, route_from, route_parts};

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
    let at = state.clock.now();
    idempotency::respond(&state, request, move |connection| {
        log(connection, &caller, &problem_id, new, at)
    })
    .await
}

/// Logs a spend under the limit rule, atomically with its totals, its
/// routing and its event.
fn log(
    connection: &mut DbConnection,
    caller: &Caller,
    problem_id: &str,
    new: NewSpend,
    at: NaiveDateTime,
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
    let policy = pinned_policy(
        connection,
        problem.policy_team_id.as_deref(),
        problem.policy_version,
    )?;
    let period = period_of(at);
    let rule = LimitRule {
        problem_id,
        period: PeriodKey {
            person_id: &problem.owner_id,
            period: &period,
            currency: &problem.currency,
        },
        amount_minor: amount.minor(),
        allowance_minor: policy
            .as_ref()
            .and_then(|policy| policy.period_allowance_minor),
        acknowledged: is_acknowledged(&problem),
    };
    let judgement = apply_limit_rule(connection, &rule)?;
    let mut spend = new_row(&problem, &caller.person_id, new, amount.minor(), at);
    let Judgement::Flagged {
        reasons,
        overrun_minor,
    } = judgement
    else {
        spends::insert(connection, &spend)?;
        return record(
            connection,
            caller,
            "spend.approved",
            &spend,
            &problem.team_id,
            at,
        );
    };
    let route = route_from(
        connection,
        &problem.team_id,
        false,
        &spend,
        &problem.owner_id,
    )?;
    let to_manager = matches!(route, Route::Manager { .. });
    let (reviewer_id, review_team_id) = route_parts(route);
    "pending_review".clone_into(&mut spend.status);
    spend.overrun_minor = overrun_minor;
    spend.flag_reasons = encode_reasons(&reasons);
    spend.reviewer_id = reviewer_id;
    spend.review_team_id = review_team_id;
    spend.review_due_at = review_due_at(policy.as_ref(), to_manager, at);
    spends::insert(connection, &spend)?;
    let routed = Step {
        action: "routed",
        actor_id: None,
        on_behalf_of_id: None,
        approved_amount_minor: None,
        note: None,
        at,
    };
    record_step(connection, &spend, routed)?;
    record(
        connection,
        caller,
        "spend.flagged",
        &spend,
        &problem.team_id,
        at,
    )
}

/// Whether the owner has acknowledged the problem's current success
/// criteria, or its pinned policy does not ask for it.
fn is_acknowledged(problem: &problems::ProblemRow) -> bool {
    !problem.require_acknowledgement
        || problem.acknowledged_version == Some(problem.criteria_version)
}

/// A spend as logged, approved on the spot until the limit rule says otherwise.
fn new_row(
    problem: &problems::ProblemRow,
    logged_by: &str,
    new: NewSpend,
    amount_minor: i64,
    at: NaiveDateTime,
) -> SpendRow {
    SpendRow {
        id: new_id(),
        problem_id: problem.id.clone(),
        amount_minor,
        currency: problem.currency.clone(),
        status: "approved".to_owned(),
        overrun_minor: None,
        merchant: new.merchant,
        description: new.description,
        category: new.category,
        spent_on: new.spent_on,
        receipt_url: new.receipt_url,
        logged_by: logged_by.to_owned(),
        logged_at: at,
        decided_by: None,
        decided_at: None,
        decision_note: None,
        voided_by: None,
        voided_at: None,
        void_reason: None,
        flag_reasons: None,
        policy_team_id: problem.policy_team_id.clone(),
        policy_version: problem.policy_version,
        approved_amount_minor: None,
        reviewer_id: None,
        review_team_id: None,
        original_reviewer_id: None,
        original_review_team_id: None,
        review_due_at: None,
        decided_on_behalf_of: None,
        route_version: 0,
    }
}

/// What the limit rule is asked about one spend.
struct LimitRule<'a> {
    problem_id: &'a str,
    /// The owner's autonomous total for the month the spend counts in.
    period: PeriodKey<'a>,
    amount_minor: i64,
    /// The pinned policy's period allowance, if any.
    allowance_minor: Option<i64>,
    /// Whether the owner has acknowledged the current success criteria
    /// (or the pinned policy does not ask for it).
    acknowledged: bool,
}

/// What the limit rule decided.
enum Judgement {
    /// Inside every budget: approved on the spot.
    Approved,
    /// Flagged for review, with why and by how much it overruns (null when
    /// only the acknowledgement is missing).
    Flagged {
        reasons: Vec<FlagReason>,
        overrun_minor: Option<i64>,
    },
}

/// The limit rule against the problem's and the owner's running totals.
/// An acknowledged spend first tries the guarded update that approves only
/// inside the problem's headroom, then the guarded update that adds it to
/// the owner's period total only inside the allowance; if the second fails
/// the first is undone in the same transaction. A spend that is not
/// approved is reserved as pending. That reservation locks the problem row
/// (PostgreSQL) or runs under the write lock (SQLite), so the totals read
/// next are stable: if a concurrent decision freed headroom in between, the
/// spend is approved after all; otherwise they say why it was flagged.
fn apply_limit_rule(
    connection: &mut DbConnection,
    rule: &LimitRule<'_>,
) -> Result<Judgement, ApiError> {
    let amount_minor = rule.amount_minor;
    period_totals::ensure(connection, rule.period)?;
    if rule.acknowledged
        && problems::try_approve_within_limit(connection, rule.problem_id, amount_minor)?
    {
        if period_totals::try_consume(connection, rule.period, amount_minor, rule.allowance_minor)?
        {
            return Ok(Judgement::Approved);
        }
        problems::release(connection, rule.problem_id, amount_minor, false)?;
    }
    if !problems::reserve_pending(connection, rule.problem_id, amount_minor)? {
        return Err(ApiError::ProblemClosed);
    }
    let problem =
        problems::find(connection, rule.problem_id)?.ok_or(ApiError::NotFound("problem"))?;
    let mut before = totals(&problem);
    before.pending_review_minor -= amount_minor;
    let fits_problem = before.fits(amount_minor);
    // Read from the locked row: a criteria change committed meanwhile counts.
    let acknowledged = is_acknowledged(&problem);
    if acknowledged
        && fits_problem
        && period_totals::try_consume(connection, rule.period, amount_minor, rule.allowance_minor)?
    {
        problems::settle_pending(connection, rule.problem_id, amount_minor, amount_minor)?;
        return Ok(Judgement::Approved);
    }
    let spent_minor = period_totals::spent(connection, rule.period)?;
    let allowance_overrun =
        allowance_overrun_minor(rule.allowance_minor, spent_minor, amount_minor);
    let problem_overrun = (!fits_problem).then(|| before.overrun_minor(amount_minor));
    let mut reasons = Vec::new();
    if problem_overrun.is_some() {
        reasons.push(FlagReason::OverProblemLimit);
    }
    if allowance_overrun.is_some() {
        reasons.push(FlagReason::OverPeriodAllowance);
    }
    if !acknowledged {
        reasons.push(FlagReason::NotAcknowledged);
    }
    if reasons.is_empty() {
        return Err(ApiError::Internal(
            "a spend was neither approved nor given a reason to flag it".to_owned(),
        ));
    }
    Ok(Judgement::Flagged {
        reasons,
        overrun_minor: problem_overrun.max(allowance_overrun),
    })
}

/// Writes the spend's event and returns its JSON.
pub fn record(
    connection: &mut DbConnection,
    caller: &Caller,
    kind: &str,
    spend: &SpendRow,
    team_id: &str,
    at: NaiveDateTime,
) -> Result<SpendJson, ApiError> {
    let json = SpendJson::from_row(spend.clone())?;
    let subject = Subject {
        subject_type: "spend",
        subject_id: &spend.id,
        team_id: Some(team_id),
        problem_id: Some(&spend.problem_id),
    };
    audit::append(
        connection,
        Some(&caller.person_id),
        kind,
        subject,
        &json,
        at,
    )?;
    Ok(json)
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

/// Loads a spend the caller may see: one on a problem they may read, or
/// one routed to them (or to someone whose queue they hold by delegation
/// at `at`). Anything else is 404.
pub fn find_visible_spend(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
    at: NaiveDateTime,
) -> Result<(SpendRow, problems::ProblemRow), ApiError> {
    let spend = spends::find(connection, id)?.ok_or(ApiError::NotFound("spend"))?;
    let problem =
        problems::find(connection, &spend.problem_id)?.ok_or(ApiError::NotFound("spend"))?;
    if caller.may_read_problem(problem_ref(&problem))
        || review_position(connection, caller, &spend, at)?.is_some()
    {
        Ok((spend, problem))
    } else {
        Err(ApiError::NotFound("spend"))
    }
}

/// In what capacity a caller may decide a pending spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPosition {
    /// Deciding as the current reviewer (else as the reviewer it was routed
    /// to before SLA escalation).
    pub current: bool,
    /// The reviewer a delegate decides for.
    pub on_behalf_of: Option<String>,
    /// Deciding as an admin on a spend routed to the admins.
    pub as_admin: bool,
}

/// Whether the caller may decide this pending spend, and as whom: the
/// manager of the team it is routed to, the manager of the team it was
/// routed to before SLA escalation, an admin when it is routed to the
/// admins, or a delegate of either manager inside the delegation's window.
/// `None` when none of these.
pub fn review_position(
    connection: &mut DbConnection,
    caller: &Caller,
    spend: &SpendRow,
    at: NaiveDateTime,
) -> Result<Option<ReviewPosition>, ApiError> {
    if spend.status != "pending_review" {
        return Ok(None);
    }
    if spend.reviewer_id.is_none() && caller.administers() {
        return Ok(Some(ReviewPosition {
            current: true,
            on_behalf_of: None,
            as_admin: true,
        }));
    }
    let me = caller.person_id.as_str();
    let seats = [
        (true, &spend.review_team_id),
        (false, &spend.original_review_team_id),
    ];
    let mut delegators: Option<Vec<String>> = None;
    for (current, team) in seats {
        let Some(team) = team else {
            continue;
        };
        // The seat belongs to whoever manages the team now: after a change
        // of manager the new one decides, the former one no longer does.
        let Some(reviewer) = teams::find(connection, team)?.and_then(|row| row.manager_id) else {
            continue;
        };
        let on_behalf_of = if reviewer == me {
            None
        } else {
            let delegators = match &mut delegators {
                Some(loaded) => loaded,
                empty => empty.insert(delegations::active_delegators(connection, me, at)?),
            };
            if !delegators.contains(&reviewer) {
                continue;
            }
            Some(reviewer)
        };
        return Ok(Some(ReviewPosition {
            current,
            on_behalf_of,
            as_admin: false,
        }));
    }
    Ok(None)
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
        .read(move |connection| {
            let (spend, _) = find_visible_spend(connection, &caller, &id, at)?;
            let history = review_steps::list(connection, &id)?;
            Ok::<_, ApiError>((spend, history))
        })
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
    let at = state.clock.now();
    idempotency::respond(&state, request, move |connection| {
        apply_void(connection, &caller, &spend_id, &reason, at)
    })
    .await
}

fn apply_void(
    connection: &mut DbConnection,
    caller: &Caller,
    spend_id: &str,
    reason: &str,
    at: NaiveDateTime,
) -> Result<SpendJson, ApiError> {
    let (spend, problem) = find_visible_spend(connection, caller, spend_id, at)?;
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
        at,
        reason,
    )? {
        return Err(ApiError::Conflict(
            "the spend changed while it was being voided: read it and retry".to_owned(),
        ));
    }
    let counted_minor = spend.approved_amount_minor.unwrap_or(spend.amount_minor);
    problems::release(connection, &problem.id, counted_minor, was_pending)?;
    if spend.status == "approved" {
        let period = period_of(spend.logged_at);
        let key = PeriodKey {
            person_id: &problem.owner_id,
            period: &period,
            currency: &spend.currency,
        };
        period_totals::release(connection, key, spend.amount_minor)?;
    }
    let spend = spends::find(connection, spend_id)?.ok_or(ApiError::NotFound("spend"))?;
    record(
        connection,
        caller,
        "spend.voided",
        &spend,
        &problem.team_id,
        at,
    )
}
