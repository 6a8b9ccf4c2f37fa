//! Teams: the organisation tree. Admins create and change them; every
//! authenticated person may read the tree.

use actix_web::{HttpResponse, web};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::types::{
    Body, Checks, ListJson, NAME_LENGTH_MAX, PageQuery, nullable, page_request, parse_id,
};
use crate::db::audit;
use crate::db::events::Subject;
use crate::db::teams::{self, TEAM_DEPTH_MAX, TeamRow};
use crate::db::{DbConnection, new_id, people};
use crate::domain::access::{Caller, Role};
use crate::encoding::rfc3339;
use crate::error::ApiError;
use crate::state::AppState;

/// A team as JSON.
#[derive(Debug, Serialize)]
pub struct TeamJson {
    id: String,
    name: String,
    parent_id: Option<String>,
    manager_id: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<TeamRow> for TeamJson {
    fn from(row: TeamRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            parent_id: row.parent_id,
            manager_id: row.manager_id,
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        }
    }
}

/// `POST /v1/teams` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    name: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    manager_id: Option<String>,
}

/// `PATCH /v1/teams/{id}` body: only the fields sent change.
#[derive(Debug, Deserialize)]
#[expect(
    clippy::option_option,
    reason = "PATCH tells an absent field (keep) from null (clear)"
)]
#[serde(deny_unknown_fields)]
pub struct UpdateTeam {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    parent_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    manager_id: Option<Option<String>>,
}

fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.administers() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only an admin can change teams".to_owned(),
        ))
    }
}

/// Checks that a manager id names a person with the manager role.
fn check_manager(connection: &mut DbConnection, manager_id: &str) -> Result<(), ApiError> {
    let refuse = |message: &str| ApiError::field("manager_id", "invalid_manager", message);
    let id =
        parse_id(manager_id, "person").map_err(|_| refuse("manager_id must be a person's id"))?;
    let person =
        people::find(connection, &id)?.ok_or(ApiError::UnknownReference("manager_id", "person"))?;
    if person.role == Role::Manager.as_str() {
        Ok(())
    } else {
        Err(refuse("the person must have the manager role"))
    }
}

/// Checks that `parent_id` exists and is not `team_id` or below it, and
/// that the tree stays within [`TEAM_DEPTH_MAX`].
fn check_parent(
    connection: &mut DbConnection,
    team_id: &str,
    parent_id: &str,
) -> Result<(), ApiError> {
    let refuse = |message: &str| ApiError::field("parent_id", "invalid_parent", message);
    let parent_id =
        parse_id(parent_id, "team").map_err(|_| refuse("parent_id must be a team's id"))?;
    if teams::find(connection, &parent_id)?.is_none() {
        return Err(ApiError::UnknownReference("parent_id", "team"));
    }
    let chain = teams::chain_upwards(connection, &parent_id)?;
    if chain.iter().any(|id| id == team_id) {
        return Err(refuse(
            "a team cannot be placed under itself or one of its sub-teams",
        ));
    }
    if chain.len() >= usize::try_from(TEAM_DEPTH_MAX).unwrap_or(usize::MAX) {
        return Err(refuse("the team tree would be too deep"));
    }
    Ok(())
}

/// `POST /v1/teams`.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<CreateTeam>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    require_admin(&caller)?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let name = checks.text("name", &body.name, NAME_LENGTH_MAX);
    checks.finish()?;
    let team = state
        .db
        .write(move |connection| {
            let id = new_id();
            if let Some(parent_id) = &body.parent_id {
                check_parent(connection, &id, parent_id)?;
            }
            if let Some(manager_id) = &body.manager_id {
                check_manager(connection, manager_id)?;
            }
            let at = now;
            let team = TeamRow {
                id,
                name,
                parent_id: body
                    .parent_id
                    .as_deref()
                    .map(|id| parse_id(id, "team"))
                    .transpose()?,
                manager_id: body
                    .manager_id
                    .as_deref()
                    .map(|id| parse_id(id, "person"))
                    .transpose()?,
                created_at: at,
                updated_at: at,
            };
            teams::insert(connection, &team)?;
            record(connection, &caller, "team.created", &team, at)?;
            Ok::<_, ApiError>(team)
        })
        .await?;
    Ok(HttpResponse::Created().json(TeamJson::from(team)))
}

fn record(
    connection: &mut DbConnection,
    caller: &Caller,
    kind: &str,
    team: &TeamRow,
    at: NaiveDateTime,
) -> Result<(), ApiError> {
    let subject = Subject {
        subject_type: "team",
        subject_id: &team.id,
        team_id: Some(&team.id),
        problem_id: None,
    };
    audit::append(
        connection,
        Some(&caller.person_id),
        kind,
        subject,
        &TeamJson::from(team.clone()),
        at,
    )?;
    Ok(())
}

/// `GET /v1/teams`.
pub async fn list(
    state: web::Data<AppState>,
    _caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.after.as_deref())?;
    let rows = state
        .db
        .read(move |connection| teams::list(connection, &page))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, |row| Ok(TeamJson::from(row)))?))
}

/// `GET /v1/teams/{id}`.
pub async fn show(
    state: web::Data<AppState>,
    _caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "team")?;
    let team = state
        .db
        .read(move |connection| teams::find(connection, &id))
        .await?
        .ok_or(ApiError::NotFound("team"))?;
    Ok(HttpResponse::Ok().json(TeamJson::from(team)))
}

/// `PATCH /v1/teams/{id}`.
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<UpdateTeam>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    require_admin(&caller)?;
    let id = parse_id(&path, "team")?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let name = checks.optional_text("name", body.name.as_deref(), NAME_LENGTH_MAX);
    checks.finish()?;
    let team = state
        .db
        .write(move |connection| {
            let mut team = teams::find(connection, &id)?.ok_or(ApiError::NotFound("team"))?;
            if let Some(name) = name {
                team.name = name;
            }
            if let Some(parent_id) = body.parent_id {
                if let Some(parent_id) = &parent_id {
                    check_parent(connection, &team.id, parent_id)?;
                }
                team.parent_id = parent_id
                    .as_deref()
                    .map(|id| parse_id(id, "team"))
                    .transpose()?;
            }
            if let Some(manager_id) = body.manager_id {
                if let Some(manager_id) = &manager_id {
                    check_manager(connection, manager_id)?;
                }
                team.manager_id = manager_id
                    .as_deref()
                    .map(|id| parse_id(id, "person"))
                    .transpose()?;
            }
            team.updated_at = now;
            teams::update(connection, &team)?;
            record(connection, &caller, "team.updated", &team, team.updated_at)?;
            Ok::<_, ApiError>(team)
        })
        .await?;
    Ok(HttpResponse::Ok().json(TeamJson::from(team)))
}
