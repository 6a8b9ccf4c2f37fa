//! Team policies: `PUT` makes a new version (nothing is overwritten), `GET`
//! returns the version in force (the team's own newest, else the nearest
//! ancestor's), and the version history is listed.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::types::{
    Body, Checks, ListJson, MoneyInput, MoneyJson, PageQuery, page_request, parse_id, stored_money,
};
use crate::app::AppState;
use crate::db::events::{self, Subject};
use crate::db::policies::{self, PolicyRow};
use crate::db::{now, rfc3339, teams};
use crate::domain::access::Caller;
use crate::error::ApiError;

/// Longest review SLA accepted, in hours (one year).
pub const REVIEW_SLA_HOURS_MAX: i32 = 24 * 366;

/// A policy version as JSON.
#[derive(Debug, Serialize)]
pub struct PolicyJson {
    team_id: String,
    version: i32,
    per_problem_limit: MoneyJson,
    review_sla_hours: i32,
    effective_from: String,
    created_by: String,
    /// On `GET /v1/teams/{id}/policy`: whether the policy comes from an ancestor team.
    #[serde(skip_serializing_if = "Option::is_none")]
    inherited: Option<bool>,
}

impl PolicyJson {
    fn from_row(row: PolicyRow, inherited: Option<bool>) -> Result<Self, ApiError> {
        Ok(Self {
            per_problem_limit: stored_money(row.per_problem_limit_minor, &row.currency)?,
            team_id: row.team_id,
            version: row.version,
            review_sla_hours: row.review_sla_hours,
            effective_from: rfc3339(row.effective_from),
            created_by: row.created_by,
            inherited,
        })
    }
}

/// `PUT /v1/teams/{id}/policy` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutPolicy {
    per_problem_limit: MoneyInput,
    review_sla_hours: i32,
}

/// `PUT /v1/teams/{id}/policy`: a new version.
pub async fn put(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<PutPolicy>,
) -> Result<HttpResponse, ApiError> {
    let team_id = parse_id(&path, "team")?;
    let mut checks = Checks::default();
    let limit = checks.money("per_problem_limit", &body.per_problem_limit);
    if !(1..=REVIEW_SLA_HOURS_MAX).contains(&body.review_sla_hours) {
        checks.refuse(
            "review_sla_hours",
            "out_of_range",
            format!("review_sla_hours must be 1 to {REVIEW_SLA_HOURS_MAX}"),
        );
    }
    checks.finish()?;
    let limit =
        limit.ok_or_else(|| ApiError::Internal("limit passed checks unparsed".to_owned()))?;
    let review_sla_hours = body.review_sla_hours;
    let policy = state
        .db
        .write(move |connection| {
            teams::find(connection, &team_id)?.ok_or(ApiError::NotFound("team"))?;
            if !caller.may_set_policy(&team_id) {
                return Err(ApiError::Forbidden(
                    "only an admin or a manager of this team can set its policy".to_owned(),
                ));
            }
            let version =
                policies::latest(connection, &team_id)?.map_or(1, |latest| latest.version + 1);
            let policy = PolicyRow {
                team_id: team_id.clone(),
                version,
                per_problem_limit_minor: limit.minor(),
                currency: limit.currency().code().to_owned(),
                review_sla_hours,
                effective_from: now(),
                created_by: caller.person_id.clone(),
            };
            policies::insert(connection, &policy)?;
            let subject = Subject {
                subject_type: "policy",
                subject_id: &team_id,
                team_id: Some(&team_id),
                problem_id: None,
            };
            events::record(
                connection,
                Some(&caller.person_id),
                "policy.versioned",
                subject,
                &PolicyJson::from_row(policy.clone(), None)?,
            )?;
            Ok(policy)
        })
        .await?;
    Ok(HttpResponse::Ok().json(PolicyJson::from_row(policy, None)?))
}

/// `GET /v1/teams/{id}/policy`: the version in force.
pub async fn show_effective(
    state: web::Data<AppState>,
    _caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let team_id = parse_id(&path, "team")?;
    let (policy, own_team) = state
        .db
        .read(move |connection| {
            teams::find(connection, &team_id)?.ok_or(ApiError::NotFound("team"))?;
            let chain = teams::chain_upwards(connection, &team_id)?;
            Ok((policies::effective(connection, &chain)?, team_id))
        })
        .await?;
    let policy = policy.ok_or(ApiError::NotFound("policy"))?;
    let inherited = policy.team_id != own_team;
    Ok(HttpResponse::Ok().json(PolicyJson::from_row(policy, Some(inherited))?))
}

/// `GET /v1/teams/{id}/policy/versions`: the team's own versions, oldest first.
pub async fn versions(
    state: web::Data<AppState>,
    _caller: Caller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let team_id = parse_id(&path, "team")?;
    let page = page_request(query.limit, query.after.as_deref())?;
    let rows = state
        .db
        .read(move |connection| {
            teams::find(connection, &team_id)?.ok_or(ApiError::NotFound("team"))?;
            policies::versions(connection, &team_id, &page)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, |row| {
        PolicyJson::from_row(row, None)
    })?))
}
