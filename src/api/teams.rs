//! Teams over HTTP: admins create and change them; every authenticated
//! person may read the tree. The use cases live in `service::organisation`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::types::{
    Body, Checks, ListJson, NAME_LENGTH_MAX, PageQuery, nullable, page_request, parse_id,
    parse_typed_id,
};
use crate::db::teams::TeamRow;
use crate::domain::access::Caller;
use crate::domain::ids::{PersonId, Reference, TeamId};
use crate::encoding::rfc3339;
use crate::error::ApiError;
use crate::service::organisation::{self, AdminChange};
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

/// `POST /v1/teams`.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<CreateTeam>,
) -> Result<HttpResponse, ApiError> {
    let at = state.clock.now();
    organisation::require_admin(&caller, AdminChange::Teams)?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let name = checks.text("name", &body.name, NAME_LENGTH_MAX);
    checks.finish()?;
    let command = organisation::CreateTeam {
        name,
        parent_id: body
            .parent_id
            .map(|id| Reference::from(id.parse::<TeamId>())),
        manager_id: body
            .manager_id
            .map(|id| Reference::from(id.parse::<PersonId>())),
    };
    let team = state
        .db
        .write(move |connection| organisation::create_team(connection, &caller, command, at))
        .await?;
    Ok(HttpResponse::Created().json(TeamJson::from(team)))
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
        .read(move |connection| organisation::list_teams(connection, &page))
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
        .read(move |connection| organisation::find_team(connection, &id))
        .await?;
    Ok(HttpResponse::Ok().json(TeamJson::from(team)))
}

/// `PATCH /v1/teams/{id}`.
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<UpdateTeam>,
) -> Result<HttpResponse, ApiError> {
    let at = state.clock.now();
    organisation::require_admin(&caller, AdminChange::Teams)?;
    let id: TeamId = parse_typed_id(&path, "team")?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let name = checks.optional_text("name", body.name.as_deref(), NAME_LENGTH_MAX);
    checks.finish()?;
    let command = organisation::UpdateTeam {
        name,
        parent_id: body
            .parent_id
            .map(|id| id.map(|id| Reference::from(id.parse::<TeamId>()))),
        manager_id: body
            .manager_id
            .map(|id| id.map(|id| Reference::from(id.parse::<PersonId>()))),
    };
    let team = state
        .db
        .write(move |connection| organisation::update_team(connection, &caller, &id, command, at))
        .await?;
    Ok(HttpResponse::Ok().json(TeamJson::from(team)))
}
