//! `GET /v1/events`: the audit trail, for finance and admins, paged by id
//! (`after`) or, as a change feed that never skips an event, by sequence
//! (`after_sequence`).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

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
    /// The change feed's position: events with a greater sequence.
    after_sequence: Option<i64>,
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

/// A page of the change feed (`after_sequence`): [`ListJson`]'s fields,
/// `next_cursor` always null, and where to continue.
#[derive(Debug, Serialize)]
struct FeedJson {
    items: Vec<EventJson>,
    next_cursor: Option<String>,
    next_after_sequence: i64,
}

/// `GET /v1/events`, oldest first.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = page_request(query.limit, query.after.as_deref())?;
    let after_sequence = query.after_sequence;
    if after_sequence.is_some_and(|sequence| sequence < 0) {
        return Err(ApiError::InvalidQuery(
            "after_sequence must be 0 or more".to_owned(),
        ));
    }
    let filter = event_filter(query)?;
    if let Some(after_sequence) = after_sequence {
        let feed = state
            .db
            .read(move |connection| {
                audit::feed(connection, &caller, &filter, &page, after_sequence)
            })
            .await?;
        let items = feed
            .rows
            .into_iter()
            .map(EventJson::from_row)
            .collect::<Result<_, _>>()?;
        return Ok(HttpResponse::Ok().json(FeedJson {
            items,
            next_cursor: None,
            next_after_sequence: feed.next_after_sequence,
        }));
    }
    let rows = state
        .db
        .read(move |connection| audit::events(connection, &caller, &filter, &page))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, EventJson::from_row)?))
}

/// The filters of a `GET /v1/events` query, each checked.
fn event_filter(query: ListQuery) -> Result<EventFilter, ApiError> {
    if query
        .kind
        .as_ref()
        .is_some_and(|kind| kind.chars().count() > KIND_LENGTH_MAX)
    {
        return Err(ApiError::InvalidQuery(format!(
            "kind must be at most {KIND_LENGTH_MAX} characters"
        )));
    }
    let id = |value: Option<String>, name: &str| {
        value
            .as_deref()
            .map(|id| parse_query_id(id, name))
            .transpose()
    };
    let time = |value: Option<String>, name: &str| {
        value
            .as_deref()
            .map(|text| parse_time(text, name))
            .transpose()
    };
    Ok(EventFilter {
        kind: query.kind,
        problem_id: id(query.problem_id, "problem_id")?,
        subject_id: id(query.subject_id, "subject_id")?,
        team_id: id(query.team_id, "team_id")?,
        actor_id: id(query.actor_id, "actor_id")?,
        from: time(query.from, "from")?,
        to: time(query.to, "to")?,
    })
}
