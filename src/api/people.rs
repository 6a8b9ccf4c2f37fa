//! People over HTTP, and the caller's own view (`GET /v1/me`): admins
//! create and change people; a person's role decides their reach. Members
//! see themselves, managers the people of their teams, finance and admins
//! everyone. The use cases live in `service::organisation`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::types::{
    Body, Checks, EMAIL_LENGTH_MAX, ListJson, NAME_LENGTH_MAX, PageQuery, SUBJECT_LENGTH_MAX,
    nullable, page_request, parse_id, parse_typed_id,
};
use crate::db::people::PersonRow;
use crate::domain::access::{Caller, Role};
use crate::domain::ids::{PersonId, Reference, TeamId};
use crate::domain::mail::Notify;
use crate::encoding::rfc3339;
use crate::error::ApiError;
use crate::service::organisation::{self, AdminChange, NewPerson};
use crate::state::AppState;

/// A person as JSON.
#[derive(Debug, Serialize)]
pub struct PersonJson {
    id: String,
    subject: String,
    name: String,
    email: Option<String>,
    team_id: Option<String>,
    role: String,
    notify: String,
    created_at: String,
    updated_at: String,
}

impl From<PersonRow> for PersonJson {
    fn from(row: PersonRow) -> Self {
        Self {
            id: row.id,
            subject: row.subject,
            name: row.name,
            email: row.email,
            team_id: row.team_id,
            role: row.role,
            notify: row.notify,
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        }
    }
}

/// `POST /v1/people` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePerson {
    subject: String,
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    role: String,
}

/// `PATCH /v1/people/{id}` body: only the fields sent change.
#[derive(Debug, Deserialize)]
#[expect(
    clippy::option_option,
    reason = "PATCH tells an absent field (keep) from null (clear)"
)]
#[serde(deny_unknown_fields)]
pub struct UpdatePerson {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    team_id: Option<Option<String>>,
    #[serde(default)]
    role: Option<String>,
}

fn check_role(checks: &mut Checks, role: &str) -> Option<Role> {
    let parsed = role.parse::<Role>().ok();
    if parsed.is_none() {
        checks.refuse(
            "role",
            "invalid_role",
            "role must be one of member, manager, finance, admin",
        );
    }
    parsed
}

fn check_email(checks: &mut Checks, sent: Option<&str>) -> Option<String> {
    let email = checks.optional_text("email", sent, EMAIL_LENGTH_MAX)?;
    if !email.contains('@') || sent.is_some_and(|sent| sent.contains(char::is_whitespace)) {
        checks.refuse(
            "email",
            "invalid_email",
            "email must look like name@example.com",
        );
    }
    Some(email)
}

/// `POST /v1/people`.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<CreatePerson>,
) -> Result<HttpResponse, ApiError> {
    let at = state.clock.now();
    organisation::require_admin(&caller, AdminChange::AddPeople)?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let subject = checks.text("subject", &body.subject, SUBJECT_LENGTH_MAX);
    let name = checks.text("name", &body.name, NAME_LENGTH_MAX);
    let email = check_email(&mut checks, body.email.as_deref());
    let role = check_role(&mut checks, &body.role);
    checks.finish()?;
    let role = role.ok_or_else(|| ApiError::Internal("role passed checks unparsed".to_owned()))?;
    let command = NewPerson {
        subject,
        name,
        email,
        team_id: body.team_id.map(|id| Reference::from(id.parse::<TeamId>())),
        role,
    };
    let person = state
        .db
        .write(move |connection| organisation::create_person(connection, &caller, command, at))
        .await?;
    Ok(HttpResponse::Created().json(PersonJson::from(person)))
}

/// `GET /v1/people`.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.after.as_deref())?;
    let rows = state
        .db
        .read(move |connection| organisation::list_people(connection, &caller, &page))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, |row| Ok(PersonJson::from(row)))?))
}

/// `GET /v1/people/{id}`.
pub async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "person")?;
    let person = state
        .db
        .read(move |connection| organisation::find_person(connection, &caller, &id))
        .await?;
    Ok(HttpResponse::Ok().json(PersonJson::from(person)))
}

/// `PATCH /v1/people/{id}`.
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<UpdatePerson>,
) -> Result<HttpResponse, ApiError> {
    let at = state.clock.now();
    organisation::require_admin(&caller, AdminChange::People)?;
    let id: PersonId = parse_typed_id(&path, "person")?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let name = checks.optional_text("name", body.name.as_deref(), NAME_LENGTH_MAX);
    let email = body
        .email
        .map(|email| check_email(&mut checks, email.as_deref()));
    let role = body
        .role
        .as_deref()
        .map(|role| check_role(&mut checks, role));
    checks.finish()?;
    let command = organisation::UpdatePerson {
        name,
        email,
        team_id: body
            .team_id
            .map(|id| id.map(|id| Reference::from(id.parse::<TeamId>()))),
        role: role.flatten(),
    };
    let person = state
        .db
        .write(move |connection| organisation::update_person(connection, &caller, &id, command, at))
        .await?;
    Ok(HttpResponse::Ok().json(PersonJson::from(person)))
}

/// `GET /v1/me`: the caller as JSON, with the teams they manage.
#[derive(Serialize)]
struct MeJson {
    #[serde(flatten)]
    person: PersonJson,
    managed_team_ids: Vec<String>,
}

/// `GET /v1/me`.
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let managed_team_ids = caller.managed_team_ids.clone();
    let person = state
        .db
        .read(move |connection| organisation::me(connection, &caller))
        .await?;
    Ok(HttpResponse::Ok().json(MeJson {
        person: person.into(),
        managed_team_ids,
    }))
}

/// `PATCH /v1/me` body: what the caller changes about themself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    /// What mail they get: `immediate`, `daily_digest` or `off`.
    notify: String,
}

/// `PATCH /v1/me`: anyone sets what mail they get.
pub async fn update_me(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<UpdateMe>,
) -> Result<HttpResponse, ApiError> {
    let Some(notify) = Notify::parse(&body.notify) else {
        return Err(ApiError::Validation(vec![crate::service::FieldError::new(
            "notify",
            "invalid_choice",
            "notify must be one of immediate, daily_digest, off",
        )]));
    };
    let managed_team_ids = caller.managed_team_ids.clone();
    let at = state.clock.now();
    let person = state
        .db
        .write(move |connection| crate::service::mail::set_notify(connection, &caller, notify, at))
        .await?;
    Ok(HttpResponse::Ok().json(MeJson {
        person: person.into(),
        managed_team_ids,
    }))
}
