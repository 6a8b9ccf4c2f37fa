//! Delegated review authority: a manager hands their review queue to
//! another manager for a window (`from`, `until`), e.g. for a vacation. The
//! delegate then sees and decides the delegator's reviews, each decision
//! recording on whose behalf it was made. The server enforces the window
//! against its own clock at every decision; a delegation can be revoked
//! early, never edited or deleted. This file is the HTTP side; the use
//! cases live in `service::delegations`.

use actix_web::{HttpResponse, web};
use chrono::{NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};

use super::types::{Body, Checks, ListJson, PageQuery, TEXT_LENGTH_MAX, page_request, parse_id};
use crate::db::delegations::DelegationRow;
use crate::domain::access::Caller;
use crate::domain::ids::{PersonId, Reference};
use crate::encoding::rfc3339;
use crate::error::ApiError;
use crate::service::delegations;
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
    let delegate_id = Reference::from(body.delegate_id.parse::<PersonId>());
    let delegator_id = body
        .delegator_id
        .map(|id| Reference::from(id.parse::<PersonId>()));
    let command = delegations::CreateDelegation {
        delegate_id,
        delegator_id,
        starts_at,
        ends_at,
        note,
    };
    let delegation = state
        .db
        .write(move |connection| delegations::create_delegation(connection, &caller, command, at))
        .await?;
    Ok(HttpResponse::Created().json(DelegationJson::from_row(delegation)))
}

/// `GET /v1/delegations`: those the caller gave or received (finance and
/// admins: all), oldest first.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.after.as_deref())?;
    let rows = state
        .db
        .read(move |connection| delegations::list_delegations(connection, &caller, &page))
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
        .read(move |connection| delegations::find_delegation(connection, &caller, &id))
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
        .write(move |connection| delegations::revoke_delegation(connection, &caller, &id, at))
        .await?;
    Ok(HttpResponse::Ok().json(DelegationJson::from_row(delegation)))
}
