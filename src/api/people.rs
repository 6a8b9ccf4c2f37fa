//! People: admins create and change them; a person's role decides their
//! reach. Members see themselves, managers the people of their teams,
//! finance and admins everyone.

use actix_web::{HttpResponse, web};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::types::{
    Body, Checks, EMAIL_LENGTH_MAX, ListJson, NAME_LENGTH_MAX, PageQuery, SUBJECT_LENGTH_MAX,
    nullable, page_request, parse_id,
};
use crate::db::audit;
use crate::db::events::Subject;
use crate::db::people::{self, PersonRow};
use crate::db::{DbConnection, new_id, teams};
use crate::domain::access::{Caller, Role};
use crate::encoding::rfc3339;
use crate::error::ApiError;
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

/// Members and managers need a team; the team must exist.
fn check_team(
    connection: &mut DbConnection,
    role: Role,
    team_id: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(team_id) = team_id else {
        return if role.needs_team() {
            Err(ApiError::field(
                "team_id",
                "required",
                "members and managers belong to a team",
            ))
        } else {
            Ok(None)
        };
    };
    let team_id = parse_id(team_id, "team")
        .map_err(|_| ApiError::field("team_id", "invalid_team", "team_id must be a team's id"))?;
    teams::find(connection, &team_id)?.ok_or(ApiError::UnknownReference("team_id", "team"))?;
    Ok(Some(team_id))
}

fn record(
    connection: &mut DbConnection,
    actor_id: Option<&str>,
    kind: &str,
    person: &PersonRow,
    at: NaiveDateTime,
) -> Result<(), ApiError> {
    let subject = Subject {
        subject_type: "person",
        subject_id: &person.id,
        team_id: person.team_id.as_deref(),
        problem_id: None,
    };
    audit::append(
        connection,
        actor_id,
        kind,
        subject,
        &PersonJson::from(person.clone()),
        at,
    )?;
    Ok(())
}

/// Creates a person in the caller's transaction; used by the API and by
/// `leeway bootstrap`.
#[expect(
    clippy::too_many_arguments,
    reason = "interim: becomes a typed command in the service layer"
)]
pub fn insert_person(
    connection: &mut DbConnection,
    actor_id: Option<&str>,
    subject: String,
    name: String,
    email: Option<String>,
    team_id: Option<&str>,
    role: Role,
    at: NaiveDateTime,
) -> Result<PersonRow, ApiError> {
    let team_id = check_team(connection, role, team_id)?;
    let person = PersonRow {
        id: new_id(),
        subject,
        name,
        email,
        team_id,
        role: role.as_str().to_owned(),
        created_at: at,
        updated_at: at,
    };
    people::insert(connection, &person).map_err(|error| match error {
        crate::db::Error::UniqueViolation(_) => ApiError::Conflict(format!(
            "a person with subject {:?} already exists",
            person.subject
        )),
        other => other.into(),
    })?;
    record(connection, actor_id, "person.created", &person, at)?;
    Ok(person)
}

/// `POST /v1/people`.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<CreatePerson>,
) -> Result<HttpResponse, ApiError> {
    let at = state.clock.now();
    if !caller.administers() {
        return Err(ApiError::Forbidden(
            "only an admin can add people".to_owned(),
        ));
    }
    let body = body.into_inner();
    let mut checks = Checks::default();
    let subject = checks.text("subject", &body.subject, SUBJECT_LENGTH_MAX);
    let name = checks.text("name", &body.name, NAME_LENGTH_MAX);
    let email = check_email(&mut checks, body.email.as_deref());
    let role = check_role(&mut checks, &body.role);
    checks.finish()?;
    let role = role.ok_or_else(|| ApiError::Internal("role passed checks unparsed".to_owned()))?;
    let person = state
        .db
        .write(move |connection| {
            insert_person(
                connection,
                Some(&caller.person_id),
                subject,
                name,
                email,
                body.team_id.as_deref(),
                role,
                at,
            )
        })
        .await?;
    Ok(HttpResponse::Created().json(PersonJson::from(person)))
}

/// Whether the caller may know of this person: themselves, people in the
/// teams they manage, or anyone for finance and admins.
pub(crate) fn may_see(caller: &Caller, person: &PersonRow) -> bool {
    caller.reads_everything()
        || person.id == caller.person_id
        || person
            .team_id
            .as_deref()
            .is_some_and(|team_id| caller.manages_team(team_id))
}

/// `GET /v1/people`.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.after.as_deref())?;
    let in_teams = if caller.reads_everything() {
        None
    } else {
        Some((
            caller.person_id.clone(),
            caller.scope_team_ids.iter().cloned().collect::<Vec<_>>(),
        ))
    };
    let rows = state
        .db
        .read(move |connection| people::list(connection, in_teams.as_ref(), &page))
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
        .read(move |connection| people::find(connection, &id))
        .await?;
    match person {
        Some(person) if may_see(&caller, &person) => {
            Ok(HttpResponse::Ok().json(PersonJson::from(person)))
        }
        _ => Err(ApiError::NotFound("person")),
    }
}

/// `PATCH /v1/people/{id}`.
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<UpdatePerson>,
) -> Result<HttpResponse, ApiError> {
    let at = state.clock.now();
    if !caller.administers() {
        return Err(ApiError::Forbidden(
            "only an admin can change people".to_owned(),
        ));
    }
    let id = parse_id(&path, "person")?;
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
    let person = state
        .db
        .write(move |connection| {
            let mut person = people::find(connection, &id)?.ok_or(ApiError::NotFound("person"))?;
            if let Some(name) = name {
                person.name = name;
            }
            if let Some(email) = email {
                person.email = email;
            }
            // Both given and contradictory is a bad request (422, in
            // check_team); one given that contradicts the stored other is a
            // conflict with the person's state.
            let both_in_body = matches!(role, Some(Some(_))) && matches!(body.team_id, Some(None));
            let role = match role.flatten() {
                Some(role) => role,
                None => person
                    .role
                    .parse()
                    .map_err(|()| ApiError::Internal("stored role is unknown".to_owned()))?,
            };
            let team_id = match body.team_id {
                Some(team_id) => team_id,
                None => person.team_id.clone(),
            };
            if !both_in_body && team_id.is_none() && role.needs_team() {
                return Err(ApiError::Conflict(format!(
                    "a {} belongs to a team and this person would have none: give a team_id",
                    role.as_str()
                )));
            }
            person.team_id = check_team(connection, role, team_id.as_deref())?;
            role.as_str().clone_into(&mut person.role);
            person.updated_at = at;
            people::update(connection, &person)?;
            record(
                connection,
                Some(&caller.person_id),
                "person.updated",
                &person,
                at,
            )?;
            Ok(person)
        })
        .await?;
    Ok(HttpResponse::Ok().json(PersonJson::from(person)))
}
