//! Webhook endpoints (admins): register a URL for event types and receive
//! signed deliveries (Standard Webhooks), read each endpoint's delivery
//! log, rotate its secret, replay from a sequence, send a test. This file
//! is the HTTP side; the use cases live in `service::webhooks`, sending in
//! `outbound`, the rules in `domain::webhook`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::types::{
    Body, Checks, ListJson, TEXT_LENGTH_MAX, page_request, parse_id, whole_number_i64,
};
use crate::db::webhooks::{DeliveryRow, EndpointRow};
use crate::domain::access::Caller;
use crate::domain::webhook::{Outcome, URL_LENGTH_MAX, UrlRefusal, WebhookEventType, check_url};
use crate::encoding::rfc3339;
use crate::error::ApiError;
use crate::outbound::client::check_destination;
use crate::service::webhooks::{self, EndpointPatch, NewEndpoint};
use crate::state::AppState;

/// An endpoint as JSON. The secret is never shown again after it is made.
#[derive(Debug, Serialize)]
pub struct WebhookJson {
    id: String,
    url: String,
    description: String,
    event_types: Vec<&'static str>,
    disabled: bool,
    disabled_reason: Option<String>,
    delivered_through_sequence: i64,
    attempts_failed: i32,
    next_attempt_at: String,
    failing_since: Option<String>,
    test_pending: bool,
    previous_secret_expires_at: Option<String>,
    created_by: String,
    created_at: String,
    updated_at: String,
}

impl WebhookJson {
    fn from_row(row: &EndpointRow) -> Result<Self, ApiError> {
        let event_types = webhooks::event_types_of(row)?
            .into_iter()
            .map(WebhookEventType::as_str)
            .collect();
        Ok(Self {
            id: row.id.clone(),
            url: row.url.clone(),
            description: row.description.clone(),
            event_types,
            disabled: row.disabled,
            disabled_reason: row.disabled_reason.clone(),
            delivered_through_sequence: row.after_sequence,
            attempts_failed: row.attempts_failed,
            next_attempt_at: rfc3339(row.next_attempt_at),
            failing_since: row.failing_since.map(rfc3339),
            test_pending: row.test_message_id.is_some(),
            previous_secret_expires_at: row.previous_secret_expires_at.map(rfc3339),
            created_by: row.created_by.clone(),
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        })
    }
}

/// An endpoint with its signing secret: the answer to a create or a
/// rotation, the only times the secret is shown.
#[derive(Debug, Serialize)]
pub struct WebhookWithSecretJson {
    #[serde(flatten)]
    endpoint: WebhookJson,
    secret: String,
}

impl WebhookWithSecretJson {
    fn from_row(row: &EndpointRow) -> Result<Self, ApiError> {
        Ok(Self {
            endpoint: WebhookJson::from_row(row)?,
            secret: row.secret.clone(),
        })
    }
}

/// A delivery attempt as JSON.
#[derive(Debug, Serialize)]
pub struct DeliveryJson {
    id: String,
    message_id: String,
    event_type: String,
    sequence: Option<i64>,
    attempt: i32,
    attempted_at: String,
    response_status: Option<i32>,
    error: Option<String>,
    outcome: String,
    next_attempt_at: Option<String>,
    duration_ms: i64,
}

impl From<DeliveryRow> for DeliveryJson {
    fn from(row: DeliveryRow) -> Self {
        Self {
            id: row.id,
            message_id: row.message_id,
            event_type: row.event_type,
            sequence: row.sequence,
            attempt: row.attempt,
            attempted_at: rfc3339(row.attempted_at),
            response_status: row.response_status,
            error: row.error,
            outcome: row.outcome,
            next_attempt_at: row.next_attempt_at.map(rfc3339),
            duration_ms: row.duration_ms,
        }
    }
}

/// `POST /v1/webhooks` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    url: String,
    event_types: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}

/// `PATCH /v1/webhooks/{id}` body: any of these.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// `POST /v1/webhooks/{id}/replay` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayWebhook {
    #[serde(deserialize_with = "whole_number_i64")]
    from_sequence: i64,
}

/// `GET /v1/webhooks/{id}/deliveries` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    limit: Option<i64>,
    after: Option<String>,
    /// Only attempts with this outcome.
    outcome: Option<String>,
}

/// The subscribed types: at least one, each known; repeats are dropped.
fn event_types(checks: &mut Checks, sent: &[String]) -> Vec<WebhookEventType> {
    if sent.is_empty() {
        checks.refuse(
            "event_types",
            "required",
            "event_types must name at least one event type",
        );
    }
    let mut types = Vec::with_capacity(sent.len());
    for (index, text) in sent.iter().enumerate() {
        match WebhookEventType::parse_subscribable(text) {
            Some(kind) => types.push(kind),
            None => checks.refuse(
                &format!("event_types[{index}]"),
                "unknown_event_type",
                format!(
                    "{text:?} is not an event type; use one of: {}",
                    WebhookEventType::SUBSCRIBABLE
                        .map(WebhookEventType::as_str)
                        .join(", ")
                ),
            ),
        }
    }
    types.sort_unstable();
    types.dedup();
    types
}

/// The URL: by its text here, then where it resolves to.
async fn destination(state: &AppState, checks: &mut Checks, sent: &str) -> Option<String> {
    let allow_private = state.webhooks.allow_private;
    let url = checks.text("url", sent, URL_LENGTH_MAX);
    if url.is_empty() || url.chars().count() > URL_LENGTH_MAX {
        return None;
    }
    if let Err(refusal) = check_url(&url, allow_private) {
        let code = match refusal {
            UrlRefusal::NotHttps => "not_https",
            UrlRefusal::ForbiddenAddress => "forbidden_address",
            UrlRefusal::Malformed
            | UrlRefusal::TooLong
            | UrlRefusal::HasCredentials
            | UrlRefusal::NoHost => "invalid_url",
        };
        checks.refuse("url", code, format!("url {refusal}"));
        return None;
    }
    if let Err(reason) = check_destination(&url, allow_private).await {
        checks.refuse("url", "forbidden_address", reason);
        return None;
    }
    Some(url)
}

/// `POST /v1/webhooks`: registers an endpoint; answers it with its secret.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    // The role first: a URL check resolves names, which only an admin may
    // learn anything from.
    webhooks::require_admin(&caller)?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let url = destination(&state, &mut checks, &body.url).await;
    let event_types = event_types(&mut checks, &body.event_types);
    let description = checks
        .optional_text("description", body.description.as_deref(), TEXT_LENGTH_MAX)
        .unwrap_or_default();
    checks.finish()?;
    let url = url.ok_or_else(|| ApiError::Internal("url passed checks unread".to_owned()))?;
    let new = NewEndpoint {
        url,
        description,
        event_types,
    };
    let at = state.clock.now();
    let endpoint = state
        .db
        .write(move |connection| webhooks::create(connection, &caller, new, at))
        .await?;
    Ok(HttpResponse::Created().json(WebhookWithSecretJson::from_row(&endpoint)?))
}

/// `GET /v1/webhooks`: oldest first.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<super::types::PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.after.as_deref())?;
    let rows = state
        .db
        .read(move |connection| webhooks::list(connection, &caller, &page))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, |row| {
        WebhookJson::from_row(&row)
    })?))
}

/// `GET /v1/webhooks/{id}`.
pub async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "webhook")?;
    let row = state
        .db
        .read(move |connection| webhooks::find(connection, &caller, &id))
        .await?;
    Ok(HttpResponse::Ok().json(WebhookJson::from_row(&row)?))
}

/// `PATCH /v1/webhooks/{id}`: `url`, `event_types`, `description`, `disabled`.
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<UpdateWebhook>,
) -> Result<HttpResponse, ApiError> {
    webhooks::require_admin(&caller)?;
    let id = parse_id(&path, "webhook")?;
    let body = body.into_inner();
    let mut checks = Checks::default();
    let url = match &body.url {
        Some(sent) => destination(&state, &mut checks, sent).await,
        None => None,
    };
    let event_types = body
        .event_types
        .as_deref()
        .map(|sent| event_types(&mut checks, sent));
    let description =
        checks.optional_text("description", body.description.as_deref(), TEXT_LENGTH_MAX);
    checks.finish()?;
    let change = EndpointPatch {
        url,
        description,
        event_types,
        disabled: body.disabled,
    };
    let at = state.clock.now();
    let row = state
        .db
        .write(move |connection| webhooks::update(connection, &caller, &id, change, at))
        .await?;
    Ok(HttpResponse::Ok().json(WebhookJson::from_row(&row)?))
}

/// `DELETE /v1/webhooks/{id}`: nothing more is sent to it; its delivery
/// log goes with it.
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "webhook")?;
    state
        .db
        .write(move |connection| webhooks::delete(connection, &caller, &id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/webhooks/{id}/rotate-secret`: a new secret, shown this once;
/// the old one signs beside it for 24 hours.
pub async fn rotate_secret(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "webhook")?;
    let at = state.clock.now();
    let row = state
        .db
        .write(move |connection| webhooks::rotate_secret(connection, &caller, &id, at))
        .await?;
    Ok(HttpResponse::Ok().json(WebhookWithSecretJson::from_row(&row)?))
}

/// `GET /v1/webhooks/{id}/deliveries`: every attempt, oldest first.
pub async fn deliveries(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<DeliveriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "webhook")?;
    let query = query.into_inner();
    let page = page_request(query.limit, query.after.as_deref())?;
    let outcome = query
        .outcome
        .map(|text| {
            Outcome::parse(&text).ok_or_else(|| {
                ApiError::InvalidQuery(
                    "outcome must be one of delivered, retrying, failed".to_owned(),
                )
            })
        })
        .transpose()?;
    let rows = state
        .db
        .read(move |connection| webhooks::deliveries(connection, &caller, &id, outcome, &page))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, |row| {
        Ok(DeliveryJson::from(row))
    })?))
}

/// `POST /v1/webhooks/{id}/replay`: delivers again every subscribed event
/// from `from_sequence` on, in order.
pub async fn replay(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<ReplayWebhook>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "webhook")?;
    let from_sequence = body.into_inner().from_sequence;
    if from_sequence < 1 {
        return Err(ApiError::Validation(vec![crate::service::FieldError::new(
            "from_sequence",
            "out_of_range",
            "from_sequence must be at least 1",
        )]));
    }
    let at = state.clock.now();
    let row = state
        .db
        .write(move |connection| webhooks::replay(connection, &caller, &id, from_sequence, at))
        .await?;
    Ok(HttpResponse::Accepted().json(WebhookJson::from_row(&row)?))
}

/// What `POST /v1/webhooks/{id}/test` answers.
#[derive(Debug, Serialize)]
struct TestQueuedJson {
    message_id: String,
    event_type: &'static str,
}

/// `POST /v1/webhooks/{id}/test`: queues a `webhook.test` message, sent
/// before the next event and tried once; its attempt shows in the
/// delivery log under the answered `message_id`.
pub async fn test(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path, "webhook")?;
    let at = state.clock.now();
    let message_id = state
        .db
        .write(move |connection| webhooks::request_test(connection, &caller, &id, at))
        .await?;
    Ok(HttpResponse::Accepted().json(TestQueuedJson {
        message_id,
        event_type: WebhookEventType::WebhookTest.as_str(),
    }))
}
