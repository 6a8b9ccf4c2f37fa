//! Reviews: a manager's queue of flagged spends and their decisions.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::idempotency::{self, Idempotent};
use super::problems::problem_ref;
use super::spends::{SpendJson, find_visible_spend, record};
use super::types::{Body, Checks, ListJson, PageQuery, TEXT_LENGTH_MAX, page_request, parse_id};
use crate::app::AppState;
use crate::db::spends::{self, Decision};
use crate::db::{DbConnection, Page, now, problems};
use crate::domain::access::{Caller, ReviewDenied, Role};
use crate::error::ApiError;

/// What a reviewer decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// The spend counts against the budget.
    Approve,
    /// The reservation is released; the spend does not count.
    Reject,
}

/// `POST /v1/spends/{id}/review` body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    decision: DecisionKind,
    /// Why; required when rejecting.
    #[serde(default)]
    note: Option<String>,
}

/// `POST /v1/spends/{id}/review`.
pub async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    body: Body<ReviewBody>,
) -> Result<HttpResponse, ApiError> {
    let spend_id = parse_id(&path, "spend")?;
    let key = idempotency::idempotency_key(&request)?;
    let fingerprint =
        idempotency::fingerprint(&format!("POST /v1/spends/{spend_id}/review"), &*body)?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let note = checks.optional_text("note", body.note.as_deref(), TEXT_LENGTH_MAX);
    if body.decision == DecisionKind::Reject && note.is_none() {
        checks.refuse("note", "required", "say why when rejecting a spend");
    }
    checks.finish()?;
    let decision = body.decision;
    let request = Idempotent {
        caller_id: caller.person_id.clone(),
        key,
        fingerprint,
        status: StatusCode::OK,
    };
    idempotency::respond(&state, request, move |connection| {
        apply(connection, &caller, &spend_id, decision, note.as_deref())
    })
    .await
}

fn apply(
    connection: &mut DbConnection,
    caller: &Caller,
    spend_id: &str,
    decision: DecisionKind,
    note: Option<&str>,
) -> Result<SpendJson, ApiError> {
    let (spend, problem) = find_visible_spend(connection, caller, spend_id)?;
    match caller.may_review(problem_ref(&problem), &spend.logged_by) {
        Ok(()) => {}
        Err(ReviewDenied::OwnSpend) => return Err(ApiError::SelfReviewForbidden),
        Err(ReviewDenied::NotAReviewer) => {
            return Err(ApiError::Forbidden(
                "only a manager of the problem's team can review its spends".to_owned(),
            ));
        }
    }
    let (status, approved, kind) = match decision {
        DecisionKind::Approve => ("approved_by_manager", true, "spend.approved_by_manager"),
        DecisionKind::Reject => ("rejected", false, "spend.rejected"),
    };
    let decided_at = now();
    let recorded = Decision {
        status,
        decided_by: &caller.person_id,
        decided_at,
        note,
    };
    if !spends::decide(connection, spend_id, &recorded)? {
        return Err(ApiError::AlreadyDecided);
    }
    problems::settle_pending(connection, &problem.id, spend.amount_minor, approved)?;
    let spend = spends::find(connection, spend_id)?.ok_or(ApiError::NotFound("spend"))?;
    record(connection, caller, kind, &spend, &problem.team_id)
}

/// `GET /v1/reviews`: the flagged spends the caller may decide, oldest
/// first. Empty for anyone who manages no team.
pub async fn queue(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.after.as_deref())?;
    let rows = if caller.role == Role::Manager {
        let team_ids: Vec<String> = caller.scope_team_ids.iter().cloned().collect();
        state
            .db
            .read(move |connection| {
                spends::review_queue(connection, &caller.person_id, &team_ids, &page)
            })
            .await?
    } else {
        Page {
            items: Vec::new(),
            next_after: None,
        }
    };
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, SpendJson::from_row)?))
}
