//! Problems: a unit of work with one owner, a written definition of
//! success, and a budget pinned from the team's policy when it is opened.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::idempotency::{self, Idempotent};
use super::types::{
    Body, Checks, ListJson, MoneyInput, MoneyJson, PageQuery, TEXT_LENGTH_MAX, TITLE_LENGTH_MAX,
    page_request, parse_id, parse_query_id, stored_money, version_page_request, whole_number,
};
use crate::db::audit;
use crate::db::events::Subject;
use crate::db::limit_changes::{self, LimitChangeRow};
use crate::db::problems::{self, NewLimit, ProblemFilter, ProblemRow, Visibility};
use crate::db::{DbConnection, new_id, people, policies, teams};
use crate::domain::access::{Caller, ProblemRef, Role};
use crate::domain::currency::Currency;
use crate::domain::limit::Totals;
use crate::domain::money::Money;
use crate::domain::review::authority_covers;
use crate::encoding::rfc3339;
use crate::error::ApiError;
use crate::state::AppState;

/// Where a problem's limit came from.
#[derive(Debug, Serialize)]
pub struct PolicyRefJson {
    /// The team whose policy it is.
    pub team_id: String,
    /// The version.
    pub version: i32,
}

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

/// The running totals of a stored problem.
#[must_use]
pub fn totals(row: &ProblemRow) -> Totals {
    Totals {
        limit_minor: row.limit_minor,
        approved_minor: row.approved_minor,
        pending_review_minor: row.pending_review_minor,
    }
}

/// The access-rule view of a stored problem.
#[must_use]
pub fn problem_ref(row: &ProblemRow) -> ProblemRef<'_> {
    ProblemRef {
        team_id: &row.team_id,
        owner_id: &row.owner_id,
    }
}

/// Loads a problem the caller may see; anything else is 404.
pub fn find_visible(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
) -> Result<ProblemRow, ApiError> {
    problems::find(connection, id)?
        .filter(|problem| caller.may_read_problem(problem_ref(problem)))
        .ok_or(ApiError::NotFound("problem"))
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

/// A checked `POST /v1/problems` body.
struct NewProblem {
    team_id: Option<String>,
    owner_id: Option<String>,
    title: String,
    success_criteria: String,
    limit: Option<Money>,
}

/// `POST /v1/problems`.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    body: Body<CreateProblem>,
) -> Result<HttpResponse, ApiError> {
    let at = state.clock.now();
    let key = idempotency::idempotency_key(&request)?;
    let fingerprint = idempotency::fingerprint("POST /v1/problems", &*body)?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let new = NewProblem {
        title: checks.text("title", &body.title, TITLE_LENGTH_MAX),
        success_criteria: checks.text("success_criteria", &body.success_criteria, TEXT_LENGTH_MAX),
        limit: body
            .limit
            .as_ref()
            .and_then(|limit| checks.money("limit", limit)),
        team_id: body
            .team_id
            .as_deref()
            .map(|id| parse_id(id, "team").unwrap_or_else(|_| id.to_owned())),
        owner_id: body
            .owner_id
            .as_deref()
            .map(|id| parse_id(id, "person").unwrap_or_else(|_| id.to_owned())),
    };
    checks.finish()?;
    let request = Idempotent {
        caller_id: caller.person_id.clone(),
        key,
        fingerprint,
        status: StatusCode::CREATED,
    };
    idempotency::respond(&state, request, move |connection| {
        open(connection, &caller, new, at)
    })
    .await
}

/// Opens a problem: who owns it, in which team, and the limit pinned from
/// the policy in force (or set explicitly by a manager).
fn open(
    connection: &mut DbConnection,
    caller: &Caller,
    new: NewProblem,
    at: NaiveDateTime,
) -> Result<ProblemJson, ApiError> {
    let owner_id = new.owner_id.unwrap_or_else(|| caller.person_id.clone());
    let owner = people::find(connection, &owner_id)?
        .filter(|owner| super::people::may_see(caller, owner))
        .ok_or(ApiError::UnknownReference("owner_id", "person"))?;
    let owns_problems = matches!(owner.role.parse(), Ok(Role::Member | Role::Manager));
    if !owns_problems && owner.id == caller.person_id {
        return Err(ApiError::Forbidden(
            "finance and admins own no problems: name a member or manager as owner_id".to_owned(),
        ));
    }
    if !owns_problems {
        return Err(ApiError::field(
            "owner_id",
            "invalid_owner",
            "a problem's owner must be a member or a manager",
        ));
    }
    let team_id = new
        .team_id
        .or_else(|| owner.team_id.clone())
        .ok_or_else(|| {
            ApiError::field(
                "team_id",
                "required",
                "the owner belongs to no team: give team_id",
            )
        })?;
    if teams::find(connection, &team_id)?.is_none() {
        return Err(ApiError::UnknownReference("team_id", "team"));
    }
    if !caller.may_open_problem(&team_id, &owner.id, owner.team_id.as_deref()) {
        return Err(ApiError::Forbidden(
            "members open problems for themselves in their own team; managers in the teams they manage".to_owned(),
        ));
    }
    let chain = teams::chain_upwards(connection, &team_id)?;
    let policy = policies::effective(connection, &chain)?;
    let limit = match (new.limit, &policy) {
        (Some(limit), _) if !caller.manages_team(&team_id) => {
            return Err(ApiError::Forbidden(format!(
                "only a manager of the team can set a problem's limit (asked {limit})"
            )));
        }
        (Some(limit), Some(policy)) => {
            let currency = stored_currency(&policy.currency)?;
            limit
                .require_currency(currency)
                .map_err(|error| ApiError::money("limit", &error))?
        }
        (Some(limit), None) => limit,
        (None, Some(policy)) => Money::from_minor(
            policy.per_problem_limit_minor,
            stored_currency(&policy.currency)?,
        ),
        (None, None) => return Err(ApiError::NoPolicy),
    };
    let (policy_team_id, policy_version) = policy
        .as_ref()
        .map(|policy| (policy.team_id.clone(), policy.version))
        .unzip();
    let problem = ProblemRow {
        id: new_id(),
        team_id,
        owner_id: owner.id,
        title: new.title,
        success_criteria: new.success_criteria,
        status: "open".to_owned(),
        currency: limit.currency().code().to_owned(),
        limit_minor: limit.minor(),
        approved_minor: 0,
        pending_review_minor: 0,
        policy_team_id,
        policy_version,
        opened_by: caller.person_id.clone(),
        opened_at: at,
        closed_at: None,
        updated_at: at,
        limit_version: 1,
        criteria_version: 1,
        acknowledged_version: None,
        acknowledged_at: None,
        require_acknowledgement: policy
            .as_ref()
            .is_some_and(|policy| policy.require_acknowledgement),
    };
    problems::insert(connection, &problem)?;
    limit_changes::insert(connection, &first_limit(&problem))?;
    record(connection, caller, "problem.opened", &problem, at)
}

/// Version 1 of a new problem's limit history: the limit it opened with.
fn first_limit(problem: &ProblemRow) -> LimitChangeRow {
    LimitChangeRow {
        problem_id: problem.id.clone(),
        version: 1,
        limit_minor: problem.limit_minor,
        previous_limit_minor: None,
        policy_team_id: problem.policy_team_id.clone(),
        policy_version: problem.policy_version,
        changed_by: problem.opened_by.clone(),
        changed_at: problem.opened_at,
        reason: None,
    }
}

/// Writes an event about the problem with `data` as its change.
fn record_with(
    connection: &mut DbConnection,
    caller: &Caller,
    kind: &str,
    problem: &ProblemRow,
    data: &impl Serialize,
    at: NaiveDateTime,
) -> Result<(), ApiError> {
    let subject = Subject {
        subject_type: "problem",
        subject_id: &problem.id,
        team_id: Some(&problem.team_id),
        problem_id: Some(&problem.id),
    };
    audit::append(connection, Some(&caller.person_id), kind, subject, data, at)?;
    Ok(())
}

/// Writes the problem's event and returns its JSON.
fn record(
    connection: &mut DbConnection,
    caller: &Caller,
    kind: &str,
    problem: &ProblemRow,
    at: NaiveDateTime,
) -> Result<ProblemJson, ApiError> {
    let json = ProblemJson::from_row(problem.clone())?;
    let subject = Subject {
        subject_type: "problem",
        subject_id: &problem.id,
        team_id: Some(&problem.team_id),
        problem_id: Some(&problem.id),
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

/// A currency read back from the database.
pub fn stored_currency(code: &str) -> Result<Currency, ApiError> {
    Currency::from_code(code)
        .ok_or_else(|| ApiError::Internal(format!("stored currency {code:?} is unknown")))
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
        if !matches!(status.as_str(), "open" | "closed") {
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
    let visibility = visibility(&caller);
    let rows = state
        .db
        .read(move |connection| problems::list(connection, &visibility, &filter, &page))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, ProblemJson::from_row)?))
}

/// Which problems (and so spends) the caller may list.
#[must_use]
pub fn visibility(caller: &Caller) -> Visibility {
    if caller.reads_everything() {
        Visibility::All
    } else {
        Visibility::OwnedOrInTeams {
            person_id: caller.person_id.clone(),
            team_ids: caller.scope_team_ids.iter().cloned().collect(),
        }
    }
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
        .read(move |connection| find_visible(connection, &caller, &id))
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
    let id = parse_id(&path, "problem")?;
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
    let at = state.clock.now();
    let problem = state
        .db
        .write(move |connection| {
            let mut problem = find_visible(connection, &caller, &id)?;
            if !caller.may_edit_problem(problem_ref(&problem)) {
                return Err(ApiError::Forbidden(
                    "only the owner or a manager of the team can change a problem".to_owned(),
                ));
            }
            // A closed problem is a settled record: its title, criteria and
            // limit stay as they were when it closed.
            if problem.status != "open" {
                return Err(ApiError::ProblemClosed);
            }
            if title.is_some() || success_criteria.is_some() {
                let criteria_changed = success_criteria
                    .as_ref()
                    .is_some_and(|criteria| *criteria != problem.success_criteria);
                if criteria_changed
                    && problem.require_acknowledgement
                    && !caller.manages_team(&problem.team_id)
                {
                    return Err(ApiError::Forbidden(
                        "the owner acknowledges the success criteria; a manager of the team sets them"
                            .to_owned(),
                    ));
                }
                problem.title = title.unwrap_or(problem.title);
                problem.success_criteria = success_criteria.unwrap_or(problem.success_criteria);
                problem.updated_at = at;
                problems::update_details(connection, &problem, criteria_changed)?;
            }
            if let (Some(limit), Some(reason)) = (limit, &limit_reason) {
                change_limit(connection, &caller, &problem, limit, reason, at)?;
            }
            let problem = problems::find(connection, &id)?.ok_or(ApiError::NotFound("problem"))?;
            record(connection, &caller, "problem.updated", &problem, at)
        })
        .await?;
    Ok(HttpResponse::Ok().json(problem))
}

/// Changes a problem's limit as a new version with who, when and why, and
/// re-pins the policy version in force now: spends from here on are judged
/// by it. Never below what is already approved. Used by `PATCH` and by a
/// reviewer approving with `new_limit`.
pub fn change_limit(
    connection: &mut DbConnection,
    caller: &Caller,
    problem: &ProblemRow,
    limit: Money,
    reason: &str,
    at: chrono::NaiveDateTime,
) -> Result<(), ApiError> {
    if problem.status != "open" {
        return Err(ApiError::ProblemClosed);
    }
    if !caller.may_set_problem_limit(problem_ref(problem)) {
        return Err(ApiError::Forbidden(
            "only a manager of the team can change a problem's limit".to_owned(),
        ));
    }
    if problem.owner_id == caller.person_id {
        return Err(ApiError::Forbidden(
            "nobody sets the budget of a problem they own: a manager above does".to_owned(),
        ));
    }
    let limit = limit
        .require_currency(stored_currency(&problem.currency)?)
        .map_err(|error| ApiError::money("limit", &error))?;
    let raise_minor = limit.minor().saturating_sub(problem.limit_minor);
    if !authority_covers(
        limit_authority(connection, caller, &problem.team_id)?,
        raise_minor,
    ) {
        return Err(ApiError::Forbidden(
            "raising this limit by more than your approval_limit needs a manager above".to_owned(),
        ));
    }
    let chain = teams::chain_upwards(connection, &problem.team_id)?;
    // A policy in another currency cannot judge this problem's spends: the
    // pin it had stays.
    let pinned = match policies::effective(connection, &chain)? {
        Some(policy) if policy.currency == problem.currency => Some((
            policy.team_id,
            policy.version,
            policy.require_acknowledgement,
        )),
        _ => problem
            .policy_team_id
            .clone()
            .zip(problem.policy_version)
            .map(|(team_id, version)| (team_id, version, problem.require_acknowledgement)),
    };
    let new = NewLimit {
        limit_minor: limit.minor(),
        from_version: problem.limit_version,
        policy: pinned
            .as_ref()
            .map(|(team_id, version, _)| (team_id.clone(), *version)),
        require_acknowledgement: pinned.as_ref().is_some_and(|(_, _, required)| *required),
        at,
    };
    if !problems::set_limit(connection, &problem.id, &new)? {
        let current =
            problems::find(connection, &problem.id)?.ok_or(ApiError::NotFound("problem"))?;
        if current.limit_version != problem.limit_version {
            return Err(ApiError::Conflict(
                "the limit changed concurrently: read the problem and retry".to_owned(),
            ));
        }
        let approved =
            Money::from_minor(current.approved_minor, stored_currency(&current.currency)?);
        return Err(ApiError::LimitBelowApproved(approved.to_string()));
    }
    let change = LimitChangeRow {
        problem_id: problem.id.clone(),
        version: problem.limit_version + 1,
        limit_minor: limit.minor(),
        previous_limit_minor: Some(problem.limit_minor),
        policy_team_id: new.policy.as_ref().map(|(team_id, _)| team_id.clone()),
        policy_version: new.policy.as_ref().map(|(_, version)| *version),
        changed_by: caller.person_id.clone(),
        changed_at: at,
        reason: Some(reason.to_owned()),
    };
    limit_changes::insert(connection, &change)?;
    let problem = problems::find(connection, &problem.id)?.ok_or(ApiError::NotFound("problem"))?;
    let json = LimitChangeJson::from_row(change, &problem.currency)?;
    record_with(
        connection,
        caller,
        "problem.limit_changed",
        &problem,
        &json,
        at,
    )
}

/// How far the caller may raise a limit on its own: the `approval_limit`
/// of the policy in force for the nearest team on the problem's chain that
/// the caller manages (`None`: no cap). Raising a budget approves spending
/// in advance, so it takes the same authority as approving an overrun.
fn limit_authority(
    connection: &mut DbConnection,
    caller: &Caller,
    team_id: &str,
) -> Result<Option<i64>, ApiError> {
    let chain = teams::chain_with_managers(connection, team_id)?;
    let Some(managed) = chain
        .iter()
        .find(|node| node.manager_id.as_deref() == Some(caller.person_id.as_str()))
    else {
        return Ok(Some(0));
    };
    let above = teams::chain_upwards(connection, &managed.team_id)?;
    Ok(policies::effective(connection, &above)?.and_then(|policy| policy.approval_limit_minor))
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
    fn from_row(row: LimitChangeRow, currency: &str) -> Result<Self, ApiError> {
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
    let id = parse_id(&path, "problem")?;
    let page = version_page_request(query.limit, query.after.as_deref())?;
    let (rows, currency) = state
        .db
        .read(move |connection| {
            let problem = find_visible(connection, &caller, &id)?;
            Ok::<_, ApiError>((
                limit_changes::list(connection, &id, &page)?,
                problem.currency,
            ))
        })
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
    let id = parse_id(&path, "problem")?;
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
            let problem = find_visible(connection, &caller, &id)?;
            if problem.owner_id != caller.person_id {
                return Err(ApiError::Forbidden(
                    "only the problem's owner can acknowledge its success criteria".to_owned(),
                ));
            }
            if problem.status != "open" {
                return Err(ApiError::ProblemClosed);
            }
            if !problems::acknowledge(connection, &id, criteria_version, at)? {
                // Optimistic concurrency: the criteria changed since the
                // owner read them, so this acknowledgement is of old text.
                return Err(ApiError::Conflict(format!(
                    "the success criteria are at version {}: read them and acknowledge that version",
                    problem.criteria_version
                )));
            }
            let problem = problems::find(connection, &id)?.ok_or(ApiError::NotFound("problem"))?;
            record(connection, &caller, "problem.acknowledged", &problem, at)
        })
        .await?;
    Ok(HttpResponse::Ok().json(problem))
}

/// `POST /v1/problems/{id}/close`.
pub async fn close(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "problem")?;
    let at = state.clock.now();
    let problem = state
        .db
        .write(move |connection| {
            let problem = find_visible(connection, &caller, &id)?;
            if !caller.may_edit_problem(problem_ref(&problem)) {
                return Err(ApiError::Forbidden(
                    "only the owner or a manager of the team can close a problem".to_owned(),
                ));
            }
            if !problems::close(connection, &id, at)? {
                return Err(ApiError::ProblemClosed);
            }
            let problem = problems::find(connection, &id)?.ok_or(ApiError::NotFound("problem"))?;
            record(connection, &caller, "problem.closed", &problem, at)
        })
        .await?;
    Ok(HttpResponse::Ok().json(problem))
}
