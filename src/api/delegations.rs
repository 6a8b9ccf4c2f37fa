//! Delegated review authority: a manager hands their review queue to
//! another manager for a window (`from`, `until`), e.g. for a vacation. The
//! delegate then sees and decides the delegator's reviews, each decision
//! recording on whose behalf it was made. The server enforces the window
//! against its own clock at every decision; a delegation can be revoked
//! early, never edited or deleted.

use actix_web::{HttpResponse, web};
use chrono::{NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};

use super::types::{Body, Checks, ListJson, PageQuery, TEXT_LENGTH_MAX, page_request, parse_id};
use crate::db::audit;
use crate::db::delegations::{self, DelegationRow, DelegationVisibility};
use crate::db::events::Subject;
use crate::db::{DbConnection, new_id, people};
use crate::domain::access::{Caller, Role};
use crate::encoding::rfc3339;
use crate::error::ApiError;
use crate::state::AppState;

/// Longest delegation window accepted, in days.
pub const DELEGATION_DAYS_MAX: i64 = 366;

/// A delegation as JSON.
#[derive(Debug, Serialize)]
pub struct DelegationJson {
    id: String,
    delegator_id: String,
    delegate_id: String,
    from: String,
    until: String,
    note: Option<String>,
    created_by: String,
    created_at: String,
    revoked_by: Option<String>,
    revoked_at: Option<String>,
}

impl DelegationJson {
    fn from_row(row: DelegationRow) -> Self {
        Self {
            id: row.id,
            delegator_id: row.delegator_id,
            delegate_id: row.delegate_id,
            from: rfc3339(row.starts_at),
            until: rfc3339(row.ends_at),
            note: row.note,
            created_by: row.created_by,
            created_at: rfc3339(row.created_at),
            revoked_by: row.revoked_by,
            revoked_at: row.revoked_at.map(rfc3339),
        }
    }
}

/// `POST /v1/delegations` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDelegation {
    delegate_id: String,
    /// RFC 3339; inclusive.
    from: String,
    /// RFC 3339; exclusive.
    until: String,
    #[serde(default)]
    note: Option<String>,
    /// Whose queue is handed over: the caller by default; admins may name
    /// any manager.
    #[serde(default)]
    delegator_id: Option<String>,
}

fn parse_instant(checks: &mut Checks, field: &str, text: &str) -> Option<NaiveDateTime> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(at.naive_utc());
    }
    checks.refuse(
        field,
        "invalid_timestamp",
        format!("{field} must be an RFC 3339 timestamp such as \"2026-12-01T00:00:00Z\""),
    );
    None
}

/// `POST /v1/delegations`.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<CreateDelegation>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut checks = Checks::default();
    let starts_at = parse_instant(&mut checks, "from", &body.from);
    let ends_at = parse_instant(&mut checks, "until", &body.until);
    let note = checks.optional_text("note", body.note.as_deref(), TEXT_LENGTH_MAX);
    let at = state.clock.now();
    if let (Some(starts_at), Some(ends_at)) = (starts_at, ends_at) {
        if ends_at <= starts_at {
            checks.refuse("until", "before_from", "until must be after from");
        } else if ends_at <= at {
            checks.refuse("until", "in_the_past", "until must be in the future");
        } else if ends_at - starts_at > TimeDelta::days(DELEGATION_DAYS_MAX) {
            checks.refuse(
                "until",
                "window_too_long",
                format!("a delegation lasts at most {DELEGATION_DAYS_MAX} days"),
            );
        }
    }
    checks.finish()?;
    let (Some(starts_at), Some(ends_at)) = (starts_at, ends_at) else {
        return Err(ApiError::Internal(
            "delegation passed checks unparsed".to_owned(),
        ));
    };
    let delegate_id = parse_id(&body.delegate_id, "person").unwrap_or(body.delegate_id);
    let delegator_id = body
        .delegator_id
        .map(|id| parse_id(&id, "person").unwrap_or(id));
    let delegation = state
        .db
        .write(move |connection| {
            let delegator_id = match delegator_id {
                Some(id) if id != caller.person_id && !caller.administers() => {
                    return Err(ApiError::Forbidden(
                        "only an admin can hand over another manager's queue".to_owned(),
                    ));
                }
                Some(id) => id,
                None => caller.person_id.clone(),
            };
            if delegator_id == caller.person_id && caller.role != Role::Manager {
                return Err(ApiError::Forbidden(
                    "only managers have a review queue to hand over".to_owned(),
                ));
            }
            require_manager(connection, &caller, "delegator_id", &delegator_id)?;
            require_manager(connection, &caller, "delegate_id", &delegate_id)?;
            if delegate_id == delegator_id {
                return Err(ApiError::field(
                    "delegate_id",
                    "self_delegation",
                    "a manager cannot delegate to themselves",
                ));
            }
            let row = DelegationRow {
                id: new_id(),
                delegator_id,
                delegate_id,
                starts_at,
                ends_at,
                note,
                created_by: caller.person_id.clone(),
                created_at: at,
                revoked_by: None,
                revoked_at: None,
            };
            delegations::insert(connection, &row)?;
            record(connection, &caller, "delegation.created", row, at)
        })
        .await?;
    Ok(HttpResponse::Created().json(delegation))
}

/// Only managers review, so only managers hand over or take a queue. A
/// person the caller cannot see is unknown to them unless a manager (whose
/// seats the team tree shows anyway): no answer tells a hidden person's role.
fn require_manager(
    connection: &mut DbConnection,
    caller: &Caller,
    field: &'static str,
    person_id: &str,
) -> Result<(), ApiError> {
    let person = people::find(connection, person_id)?
        .filter(|person| {
            person.role.parse() == Ok(Role::Manager) || super::people::may_see(caller, person)
        })
        .ok_or(ApiError::UnknownReference(field, "person"))?;
    if person.role.parse() == Ok(Role::Manager) {
        Ok(())
    } else {
        Err(ApiError::field(
            field,
            "not_a_manager",
            "this person is not a manager: review queues pass only between managers",
        ))
    }
}

fn record(
    connection: &mut DbConnection,
    caller: &Caller,
    kind: &str,
    row: DelegationRow,
    at: NaiveDateTime,
) -> Result<DelegationJson, ApiError> {
    let json = DelegationJson::from_row(row);
    let subject = Subject {
        subject_type: "delegation",
        subject_id: &json.id,
        team_id: None,
        problem_id: None,
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

fn visibility(caller: &Caller) -> DelegationVisibility {
    if caller.reads_everything() {
        DelegationVisibility::All
    } else {
        DelegationVisibility::Involving(caller.person_id.clone())
    }
}

fn find_visible(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
) -> Result<DelegationRow, ApiError> {
    delegations::find(connection, id)?
        .filter(|row| {
            caller.reads_everything()
                || row.delegator_id == caller.person_id
                || row.delegate_id == caller.person_id
        })
        .ok_or(ApiError::NotFound("delegation"))
}

/// `GET /v1/delegations`: those the caller gave or received (finance and
/// admins: all), oldest first.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.after.as_deref())?;
    let visibility = visibility(&caller);
    let rows = state
        .db
        .read(move |connection| delegations::list(connection, &visibility, &page))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, |row| {
        Ok(DelegationJson::from_row(row))
    })?))
}

/// `GET /v1/delegations/{id}`.
pub async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "delegation")?;
    let row = state
        .db
        .read(move |connection| find_visible(connection, &caller, &id))
        .await?;
    Ok(HttpResponse::Ok().json(DelegationJson::from_row(row)))
}

/// `POST /v1/delegations/{id}/revoke`: ends a delegation now (the delegator
/// or an admin).
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "delegation")?;
    let at = state.clock.now();
    let delegation = state
        .db
        .write(move |connection| {
            let row = find_visible(connection, &caller, &id)?;
            if row.delegator_id != caller.person_id && !caller.administers() {
                return Err(ApiError::Forbidden(
                    "only the delegator or an admin can revoke a delegation".to_owned(),
                ));
            }
            if !delegations::revoke(connection, &id, &caller.person_id, at)? {
                return Err(ApiError::Conflict(
                    "this delegation is already revoked".to_owned(),
                ));
            }
            let row =
                delegations::find(connection, &id)?.ok_or(ApiError::NotFound("delegation"))?;
            record(connection, &caller, "delegation.revoked", row, at)
        })
        .await?;
    Ok(HttpResponse::Ok().json(delegation))
}
