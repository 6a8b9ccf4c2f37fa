//! Authentication: the authenticated-caller extractor. A handler that takes
//! a [`Caller`] cannot run for an unauthenticated request. The token says
//! only who the caller is (`sub`, verified by `tokens`); the role and reach
//! come from the person record, read on every request. Each verified subject
//! is held to its request allowance (`rate_limit`) before the database is read.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};

use crate::db::{people, teams};
use crate::domain::access::{Caller, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// Longest `Authorization` header value read, in bytes.
pub const TOKEN_LENGTH_MAX: usize = 8_192;

/// A wait in whole seconds, rounded up and at least one, for `Retry-After`.
fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

/// Reads the bearer token from a request.
fn bearer_token(request: &HttpRequest) -> Result<String, ApiError> {
    let missing = || ApiError::Unauthenticated("send Authorization: Bearer <token>".to_owned());
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?;
    if value.len() > TOKEN_LENGTH_MAX {
        return Err(ApiError::Unauthenticated(
            "the token is too long".to_owned(),
        ));
    }
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim().to_owned())
}

/// Loads the caller behind a verified subject: their person record and, for
/// managers, the teams they reach.
fn load_caller(
    connection: &mut crate::db::DbConnection,
    subject: &str,
) -> Result<Caller, ApiError> {
    let person = people::find_by_subject(connection, subject)?.ok_or_else(|| {
        ApiError::Unauthenticated("no person has this token's subject".to_owned())
    })?;
    let role: Role = person.role.parse().map_err(|()| {
        ApiError::Internal(format!(
            "person {} has unknown role {:?}",
            person.id, person.role
        ))
    })?;
    let (managed_team_ids, scope_team_ids) = if role == Role::Manager {
        (
            teams::managed_by(connection, &person.id)?,
            teams::scope_of_manager(connection, &person.id)?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Caller {
        person_id: person.id,
        role,
        team_id: person.team_id,
        managed_team_ids,
        scope_team_ids: scope_team_ids.into_iter().collect(),
    })
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(request);
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".to_owned()))?;
            let subject = state.tokens.verify(&token?)?;
            // Checked before the database is touched, so a caller over their
            // allowance costs no pooled connection.
            state
                .rate_limiter
                .check(&subject)
                .map_err(|wait| ApiError::RateLimited(whole_seconds(wait)))?;
            state
                .db
                .read(move |connection| load_caller(connection, &subject))
                .await
        })
    }
}
