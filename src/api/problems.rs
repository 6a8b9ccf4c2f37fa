//! Problems over HTTP: the request and response shapes of
//! `/v1/problems/...`; the use cases are `service::problems`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::idempotency::{self, Idempotent};
use super::types::{
    Body, Checks, ListJson, MoneyInput, MoneyJson, PageQuery, PolicyRefJson, TEXT_LENGTH_MAX,
    TITLE_LENGTH_MAX, page_request, parse_id, parse_query_id, parse_typed_id, stored_money,
    whole_number,
};
use crate::db::limit_changes::LimitChangeRow;
use crate::db::problems::{ProblemFilter, ProblemRow};
use crate::domain::access::Caller;
use crate::domain::ids::{PersonId, ProblemId, Reference, TeamId};
use crate::domain::status::ProblemStatus;
use crate::encoding::rfc3339;
use crate::error::ApiError;
use crate::service::problems::{self, OpenProblem, UpdateProblem as Update, totals};
use crate::state::AppState;

/// A problem as JSON.
#[derive(Debug, Serialize)]
pub struct ProblemJson {
    id: String,
    team_id: String,
    owner_id: String,
    title: String,
    success_criteria: String,
    status: String,
    limit: MoneyJson,
    approved: MoneyJson,
    pending_review: MoneyJson,
    remaining: MoneyJson,
    policy: Option<PolicyRefJson>,
    opened_by: String,
    opened_at: String,
    closed_at: Option<String>,
    updated_at: String,
    limit_version: i32,
    criteria_version: i32,
    acknowledgement_required: bool,
    /// When the owner acknowledged the current success criteria; null when
    /// they have not (or the criteria changed since).
    acknowledged_at: Option<String>,
}

impl ProblemJson {
    /// Converts a stored problem.
    pub fn from_row(row: ProblemRow) -> Result<Self, ApiError> {
        let totals = totals(&row);
        Ok(Self {
            limit: stored_money(totals.limit_minor, &row.currency)?,
            approved: stored_money(totals.approved_minor, &row.currency)?,
            pending_review: stored_money(totals.pending_review_minor, &row.currency)?,
            remaining: stored_money(totals.remaining_minor(), &row.currency)?,
            policy: row
                .policy_team_id
                .zip(row.policy_version)
                .map(|(team_id, version)| PolicyRefJson { team_id, version }),
            id: row.id,
            team_id: row.team_id,
            owner_id: row.owner_id,
            title: row.title,
            success_criteria: row.success_criteria,
            status: row.status,
            opened_by: row.opened_by,
            opened_at: rfc3339(row.opened_at),
            closed_at: row.closed_at.map(rfc3339),
            updated_at: rfc3339(row.updated_at),
            limit_version: row.limit_version,
            criteria_version: row.criteria_version,
            acknowledgement_required: row.require_acknowledgement,
            acknowledged_at: row
                .acknowledged_at
                .filter(|_| row.acknowledged_version == Some(row.criteria_version))
                .map(rfc3339),
        })
    }
}

/// `POST /v1/problems` body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProblem {
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    owner_id: Option<String>,
    title: String,
    success_criteria: String,
    /// An explicit budget instead of the policy's; managers only.
    #[serde(default)]
    limit: Option<MoneyInput>,
}

/// `PATCH /v1/problems/{id}` body: only the fields sent change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateProblem {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    success_criteria: Option<String>,
    #[serde(default)]
    limit: Option<MoneyInput>,
    /// Why the limit changes; required with `limit`.
    #[serde(default)]
    limit_reason: Option<String>,
}

/// `GET /v1/problems` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    after: Option<String>,
    team_id: Option<String>,
    owner_id: Option<String>,
    status: Option<String>,
}

/// `POST /v1/problems`.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    body: Body<CreateProblem>,
) -> Result<HttpResponse, ApiError> {
    let at = state.clock.now();
    let request = Idempotent::read(
        &request,
        &caller.person_id,
        "POST /v1/problems",
        &*body,
        StatusCode::CREATED,
    )?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let command = OpenProblem {
        title: checks.text("title", &body.title, TITLE_LENGTH_MAX),
        success_criteria: checks.text("success_criteria", &body.success_criteria, TEXT_LENGTH_MAX),
        limit: body
            .limit
            .as_ref()
            .and_then(|limit| checks.money("limit", limit)),
        team_id: body
            .team_id
            .as_deref()
            .map(|id| Reference::from(id.parse::<TeamId>())),
        owner_id: body
            .owner_id
            .as_deref()
            .map(|id| Reference::from(id.parse::<PersonId>())),
    };
    checks.finish()?;
    idempotency::respond(&state, request, move |connection| {
        ProblemJson::from_row(problems::open(connection, &caller, command, at)?)
    })
    .await
}

/// `GET /v1/problems`.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = page_request(query.limit, query.after.as_deref())?;
    if let Some(status) = &query.status {
        if ProblemStatus::parse(status).is_none() {
            return Err(ApiError::InvalidQuery(
                "status must be open or closed".to_owned(),
            ));
        }
    }
    let filter = ProblemFilter {
        team_id: query
            .team_id
            .as_deref()
            .map(|id| parse_query_id(id, "team_id"))
            .transpose()?,
        owner_id: query
            .owner_id
            .as_deref()
            .map(|id| parse_query_id(id, "owner_id"))
            .transpose()?,
        status: query.status,
    };
    let rows = state
        .db
        .read(move |connection| problems::list(connection, &caller, &filter, &page))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, ProblemJson::from_row)?))
}

/// `GET /v1/problems/{id}`.
pub async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "problem")?;
    let problem = state
        .db
        .read(move |connection| problems::find_visible(connection, &caller, &id))
        .await?;
    Ok(HttpResponse::Ok().json(ProblemJson::from_row(problem)?))
}

/// `PATCH /v1/problems/{id}`: title and success criteria (owner or
/// manager), limit (manager; never below what is already approved).
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<UpdateProblem>,
) -> Result<HttpResponse, ApiError> {
    let id: ProblemId = parse_typed_id(&path, "problem")?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let title = checks.optional_text("title", body.title.as_deref(), TITLE_LENGTH_MAX);
    let success_criteria = checks.optional_text(
        "success_criteria",
        body.success_criteria.as_deref(),
        TEXT_LENGTH_MAX,
    );
    let limit = body
        .limit
        .as_ref()
        .and_then(|limit| checks.money("limit", limit));
    let limit_reason = checks.optional_text(
        "limit_reason",
        body.limit_reason.as_deref(),
        TEXT_LENGTH_MAX,
    );
    match (&body.limit, &limit_reason) {
        (Some(_), None) => checks.refuse(
            "limit_reason",
            "required",
            "say why the limit changes: every change is kept with its reason",
        ),
        (None, Some(_)) => checks.refuse(
            "limit_reason",
            "not_allowed",
            "limit_reason goes with a new limit",
        ),
        _ => {}
    }
    checks.finish()?;
    let command = Update {
        title,
        success_criteria,
        limit: limit.zip(limit_reason),
    };
    let at = state.clock.now();
    let problem = state
        .db
        .write(move |connection| problems::update(connection, &caller, &id, command, at))
        .await?;
    Ok(HttpResponse::Ok().json(ProblemJson::from_row(problem)?))
}

/// A limit version as JSON.
#[derive(Debug, Serialize)]
pub struct LimitChangeJson {
    problem_id: String,
    version: i32,
    limit: MoneyJson,
    previous_limit: Option<MoneyJson>,
    policy: Option<PolicyRefJson>,
    changed_by: String,
    changed_at: String,
    reason: Option<String>,
}

impl LimitChangeJson {
    /// Converts a stored version; its money is in the problem's currency,
    /// which the caller passes when it has the problem at hand.
    pub fn from_row(row: LimitChangeRow, currency: &str) -> Result<Self, ApiError> {
        Ok(Self {
            limit: stored_money(row.limit_minor, currency)?,
            previous_limit: row
                .previous_limit_minor
                .map(|minor| stored_money(minor, currency))
                .transpose()?,
            policy: row
                .policy_team_id
                .zip(row.policy_version)
                .map(|(team_id, version)| PolicyRefJson { team_id, version }),
            problem_id: row.problem_id,
            version: row.version,
            changed_by: row.changed_by,
            changed_at: rfc3339(row.changed_at),
            reason: row.reason,
        })
    }
}

/// `GET /v1/problems/{id}/limit-changes`: every limit the problem has had,
/// oldest first.
pub async fn limit_changes(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id: ProblemId = parse_typed_id(&path, "problem")?;
    let page = page_request(query.limit, query.after.as_deref())?;
    let (rows, currency) = state
        .db
        .read(move |connection| problems::limit_changes(connection, &caller, &id, &page))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, |row| {
        LimitChangeJson::from_row(row, &currency)
    })?))
}

/// `POST /v1/problems/{id}/acknowledge` body: the criteria version the
/// owner read, so criteria changed meanwhile are never acknowledged unseen.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeBody {
    #[serde(deserialize_with = "whole_number")]
    criteria_version: i32,
}

/// `POST /v1/problems/{id}/acknowledge`: the owner confirms they read and
/// accept the current success criteria (alignment before autonomy).
pub async fn acknowledge(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<AcknowledgeBody>,
) -> Result<HttpResponse, ApiError> {
    let id: ProblemId = parse_typed_id(&path, "problem")?;
    let criteria_version = body.criteria_version;
    if criteria_version < 1 {
        return Err(ApiError::field(
            "criteria_version",
            "out_of_range",
            "criteria_version is a version number, 1 or more",
        ));
    }
    let at = state.clock.now();
    let problem = state
        .db
        .write(move |connection| {
            problems::acknowledge(connection, &caller, &id, criteria_version, at)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ProblemJson::from_row(problem)?))
}

/// `POST /v1/problems/{id}/close`.
pub async fn close(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: ProblemId = parse_typed_id(&path, "problem")?;
    let at = state.clock.now();
    let problem = state
        .db
        .write(move |connection| problems::close(connection, &caller, &id, at))
        .await?;
    Ok(HttpResponse::Ok().json(ProblemJson::from_row(problem)?))
}
