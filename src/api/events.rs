//! `GET /v1/events`: the audit trail, for finance and admins.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::streaming::EventJson;
use super::types::{ListJson, page_request, parse_query_id, parse_time};
use crate::db::events::EventFilter;
use crate::domain::access::Caller;
use crate::error::ApiError;
use crate::service::audit;
use crate::state::AppState;

/// Longest event kind accepted as a filter.
const KIND_LENGTH_MAX: usize = 64;

/// `GET /v1/events` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    after: Option<String>,
    kind: Option<String>,
    problem_id: Option<String>,
    subject_id: Option<String>,
    team_id: Option<String>,
    actor_id: Option<String>,
    /// RFC 3339; inclusive.
    from: Option<String>,
    /// RFC 3339; exclusive.
    to: Option<String>,
}

/// `GET /v1/events`, oldest first.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = page_request(query.limit, query.after.as_deref())?;
    if query
        .kind
        .as_ref()
        .is_some_and(|kind| kind.chars().count() > KIND_LENGTH_MAX)
    {
        return Err(ApiError::InvalidQuery(format!(
            "kind must be at most {KIND_LENGTH_MAX} characters"
        )));
    }
    let filter = EventFilter {
        kind: query.kind,
        problem_id: query
            .problem_id
            .as_deref()
            .map(|id| parse_query_id(id, "problem_id"))
            .transpose()?,
        subject_id: query
            .subject_id
            .as_deref()
            .map(|id| parse_query_id(id, "subject_id"))
            .transpose()?,
        team_id: query
            .team_id
            .as_deref()
            .map(|id| parse_query_id(id, "team_id"))
            .transpose()?,
        actor_id: query
            .actor_id
            .as_deref()
            .map(|id| parse_query_id(id, "actor_id"))
            .transpose()?,
        from: query
            .from
            .as_deref()
            .map(|text| parse_time(text, "from"))
            .transpose()?,
        to: query
            .to
            .as_deref()
            .map(|text| parse_time(text, "to"))
            .transpose()?,
    };
    let rows = state
        .db
        .read(move |connection| audit::events(connection, &caller, &filter, &page))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, EventJson::from_row)?))
}
