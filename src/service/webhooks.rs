//! The webhook use cases: an admin's endpoints (create, change, rotate the
//! secret, replay, test, read the delivery log) and the delivery loop's
//! steps over the database (what to send next, what an attempt changes).
//! Sending itself is IO and lives in `outbound`; the rules (types,
//! signatures, retries, refused addresses) are pure, in `domain::webhook`.

use chrono::{NaiveDateTime, TimeDelta};
use rand::RngCore;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Error, Refusal};
use crate::db::events::EventRow;
use crate::db::webhooks::{self, DeliveryRow, EndpointChanges, EndpointRow, Progress};
use crate::db::{DbConnection, Page, PageRequest, new_id};
use crate::domain::access::Caller;
use crate::domain::event::EventKind;
use crate::domain::webhook::{
    AttemptResult, HeadState, Outcome, PREVIOUS_SECRET_HOURS, SECRET_BYTES, WebhookEventType,
    judge_attempt, secret_from_bytes,
};
use crate::encoding::rfc3339;

/// Webhooks are the admin's to manage.
pub fn require_admin(caller: &Caller) -> Result<(), Error> {
    if caller.administers() {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "webhooks are managed by admins".to_owned(),
        ))
    }
}

/// Finance reads everything, webhooks (never their secrets) included.
fn require_reader(caller: &Caller) -> Result<(), Error> {
    if caller.reads_everything() {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "webhooks are for admins (finance may read them)".to_owned(),
        ))
    }
}

/// The endpoint an admin is changing.
fn find_to_change(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
) -> Result<EndpointRow, Error> {
    require_admin(caller)?;
    webhooks::find(connection, id)?.ok_or(Error::NotFound("webhook"))
}

/// The subscribed types of a stored endpoint.
pub fn event_types_of(endpoint: &EndpointRow) -> Result<Vec<WebhookEventType>, Error> {
    let spellings: Vec<String> = serde_json::from_str(&endpoint.event_types)
        .map_err(|error| Error::Internal(format!("stored event_types: {error}")))?;
    spellings
        .iter()
        .map(|text| {
            WebhookEventType::parse_subscribable(text)
                .ok_or_else(|| Error::Internal(format!("stored event type {text:?} is unknown")))
        })
        .collect()
}

fn encode_types(types: &[WebhookEventType]) -> Result<String, Error> {
    let spellings: Vec<&str> = types.iter().map(|kind| kind.as_str()).collect();
    serde_json::to_string(&spellings).map_err(|error| Error::Internal(error.to_string()))
}

fn new_secret() -> String {
    let mut random = [0_u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut random);
    secret_from_bytes(&random)
}

/// A new endpoint, its fields already checked by the api layer (the URL by
/// `domain::webhook::check_url` and, where it resolves, by `outbound`).
#[derive(Debug)]
pub struct NewEndpoint {
    /// Where to POST.
    pub url: String,
    /// What it is for.
    pub description: String,
    /// What it subscribes to: at least one, no repeats.
    pub event_types: Vec<WebhookEventType>,
}

/// Creates an endpoint that receives every subscribed event from now on,
/// with a fresh secret (returned in the row, to be shown this once).
pub fn create(
    connection: &mut DbConnection,
    caller: &Caller,
    new: NewEndpoint,
    at: NaiveDateTime,
) -> Result<EndpointRow, Error> {
    require_admin(caller)?;
    let endpoint = EndpointRow {
        id: new_id(),
        url: new.url,
        description: new.description,
        event_types: encode_types(&new.event_types)?,
        secret: new_secret(),
        previous_secret: None,
        previous_secret_expires_at: None,
        disabled: false,
        disabled_reason: None,
        after_sequence: webhooks::newest_sequence(connection)?,
        test_message_id: None,
        test_requested_at: None,
        attempts_failed: 0,
        next_attempt_at: at,
        failing_since: None,
        lease_token: None,
        lease_expires_at: None,
        created_by: caller.person_id.clone(),
        created_at: at,
        updated_at: at,
    };
    webhooks::insert(connection, &endpoint)?;
    Ok(endpoint)
}

/// Lists endpoints, oldest first.
pub fn list(
    connection: &mut DbConnection,
    caller: &Caller,
    page: &PageRequest,
) -> Result<Page<EndpointRow>, Error> {
    require_reader(caller)?;
    Ok(webhooks::list(connection, page)?)
}

/// One endpoint.
pub fn find(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
) -> Result<EndpointRow, Error> {
    require_reader(caller)?;
    webhooks::find(connection, id)?.ok_or(Error::NotFound("webhook"))
}

/// An admin's change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct EndpointPatch {
    /// New URL, already checked.
    pub url: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New subscribed types.
    pub event_types: Option<Vec<WebhookEventType>>,
    /// Pause (true) or resume (false). Resuming clears the reason the
    /// server disabled it for and retries the head at once.
    pub disabled: Option<bool>,
}

/// Changes an endpoint. Deliveries already sent are not affected; the next
/// one uses the new settings.
pub fn update(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
    patch: EndpointPatch,
    at: NaiveDateTime,
) -> Result<EndpointRow, Error> {
    require_admin(caller)?;
    let changes = EndpointChanges {
        url: patch.url,
        description: patch.description,
        event_types: patch.event_types.as_deref().map(encode_types).transpose()?,
        disabled: patch.disabled,
        disabled_reason: patch.disabled.map(|_| None),
        next_attempt_at: patch.disabled.filter(|disabled| !disabled).map(|_| at),
        updated_at: Some(at),
    };
    if !webhooks::update(connection, id, &changes)? {
        return Err(Error::NotFound("webhook"));
    }
    webhooks::find(connection, id)?.ok_or_else(|| crate::db::Error::missing("webhook").into())
}

/// Deletes an endpoint and its delivery log: nothing more is sent to it.
pub fn delete(connection: &mut DbConnection, caller: &Caller, id: &str) -> Result<(), Error> {
    require_admin(caller)?;
    if webhooks::delete(connection, id)? {
        Ok(())
    } else {
        Err(Error::NotFound("webhook"))
    }
}

/// Gives an endpoint a new secret (returned in the row, to be shown this
/// once). The old one goes on signing beside it for
/// [`PREVIOUS_SECRET_HOURS`], so a receiver can switch without a gap.
pub fn rotate_secret(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
    at: NaiveDateTime,
) -> Result<EndpointRow, Error> {
    let endpoint = find_to_change(connection, caller, id)?;
    let expires_at = at + TimeDelta::hours(PREVIOUS_SECRET_HOURS);
    webhooks::rotate_secret(
        connection,
        id,
        &new_secret(),
        &endpoint.secret,
        expires_at,
        at,
    )?;
    webhooks::find(connection, id)?.ok_or_else(|| crate::db::Error::missing("webhook").into())
}

/// Delivers again every subscribed event from `from_sequence` on, in order.
/// Replay only goes back: an event not yet delivered is never skipped.
pub fn replay(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
    from_sequence: i64,
    at: NaiveDateTime,
) -> Result<EndpointRow, Error> {
    let endpoint = find_to_change(connection, caller, id)?;
    let after_sequence = from_sequence.saturating_sub(1);
    if after_sequence > endpoint.after_sequence {
        return Err(Refusal::Conflict(format!(
            "this endpoint has been served through sequence {}; replay goes back, from at most {}, \
             so no event is skipped",
            endpoint.after_sequence,
            endpoint.after_sequence + 1
        ))
        .into());
    }
    webhooks::rewind(connection, id, after_sequence, at)?;
    webhooks::find(connection, id)?.ok_or_else(|| crate::db::Error::missing("webhook").into())
}

/// Queues a `webhook.test` message, sent before the next event and tried
/// once. Returns its message id (the `webhook-id` it will carry).
pub fn request_test(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
    at: NaiveDateTime,
) -> Result<String, Error> {
    let endpoint = find_to_change(connection, caller, id)?;
    if endpoint.disabled {
        return Err(Refusal::Conflict(
            "the endpoint is disabled: enable it (PATCH disabled=false) to send a test".to_owned(),
        )
        .into());
    }
    let message_id = new_id();
    webhooks::request_test(connection, id, &message_id, at)?;
    Ok(message_id)
}

/// An endpoint's delivery attempts, oldest first.
pub fn deliveries(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
    outcome: Option<Outcome>,
    page: &PageRequest,
) -> Result<Page<DeliveryRow>, Error> {
    find(connection, caller, id)?;
    Ok(webhooks::list_deliveries(
        connection,
        id,
        outcome.map(Outcome::as_str),
        page,
    )?)
}

/// A message ready to send.
#[derive(Debug, Clone)]
pub struct Message {
    /// The `webhook-id` header: the event's id, the same on every retry.
    pub id: String,
    /// Its type.
    pub event_type: WebhookEventType,
    /// The event's sequence; `None` for a test.
    pub sequence: Option<i64>,
    /// The JSON body, the same bytes on every retry.
    pub body: String,
}

/// The body of every delivery.
#[derive(Debug, Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: Value,
}

/// Whether a decided spend's payload was approved for less than its
/// amount (a full approval records the whole amount as approved).
#[must_use]
pub fn approved_in_part(spend: &Value) -> bool {
    let approved = &spend["approved_amount"];
    !approved.is_null() && approved["amount"] != spend["amount"]["amount"]
}

/// Where an event's data sits in the message, and what the type adds.
fn data_of(event: &EventRow, kind: EventKind) -> Result<Value, Error> {
    let recorded: Value = serde_json::from_str(&event.data)
        .map_err(|error| Error::Internal(format!("stored event data: {error}")))?;
    let mut data = json!({
        "event": {
            "id": event.id,
            "sequence": event.sequence,
            "kind": event.kind,
            "occurred_at": rfc3339(event.occurred_at),
            "actor_id": event.actor_id,
        },
    });
    let key = match kind {
        EventKind::ProblemLimitChanged => "limit_change",
        EventKind::ProblemBudgetThreshold => "budget_threshold",
        _ => match event.subject_type.as_str() {
            "spend" => "spend",
            "problem" => "problem",
            "delegation" => "delegation",
            other => return Err(Error::Internal(format!("webhook for a {other} event"))),
        },
    };
    data[key] = recorded;
    match kind {
        EventKind::SpendApprovedByManager if approved_in_part(&data["spend"]) => {
            data["decision"] = json!("approved_in_part");
        }
        EventKind::SpendApprovedByManager => data["decision"] = json!("approved"),
        EventKind::SpendRejected => data["decision"] = json!("rejected"),
        EventKind::SpendEscalated => data["cause"] = json!("review_overdue"),
        EventKind::SpendEndorsed => data["cause"] = json!("beyond_authority"),
        _ => {}
    }
    Ok(data)
}

/// The message for a stored event; `None` for a kind never delivered.
pub fn event_message(event: &EventRow) -> Result<Option<Message>, Error> {
    let kind = EventKind::parse(&event.kind)
        .ok_or_else(|| Error::Internal(format!("stored event kind {:?}", event.kind)))?;
    let Some(event_type) = WebhookEventType::of_event(kind) else {
        return Ok(None);
    };
    let envelope = Envelope {
        event_type: event_type.as_str(),
        timestamp: rfc3339(event.occurred_at),
        data: data_of(event, kind)?,
    };
    Ok(Some(Message {
        id: event.id.clone(),
        event_type,
        sequence: event.sequence,
        body: serde_json::to_string(&envelope)
            .map_err(|error| Error::Internal(error.to_string()))?,
    }))
}

/// The `webhook.test` message of an endpoint, if one waits.
fn test_message(endpoint: &EndpointRow) -> Result<Option<Message>, Error> {
    let (Some(id), Some(requested_at)) = (&endpoint.test_message_id, endpoint.test_requested_at)
    else {
        return Ok(None);
    };
    let envelope = Envelope {
        event_type: WebhookEventType::WebhookTest.as_str(),
        timestamp: rfc3339(requested_at),
        data: json!({
            "webhook_id": endpoint.id,
            "message": "A test delivery from Leeway: this endpoint is reachable and can verify signatures.",
        }),
    };
    Ok(Some(Message {
        id: id.clone(),
        event_type: WebhookEventType::WebhookTest,
        sequence: None,
        body: serde_json::to_string(&envelope)
            .map_err(|error| Error::Internal(error.to_string()))?,
    }))
}

/// What to send to `endpoint` next: a waiting test, else the first
/// subscribed event after its position and at most `safe` (the safe
/// horizon, so a later event never overtakes one still committing).
pub fn next_message(
    connection: &mut DbConnection,
    endpoint: &EndpointRow,
    safe: i64,
) -> Result<Option<Message>, Error> {
    if let Some(test) = test_message(endpoint)? {
        return Ok(Some(test));
    }
    let kinds: Vec<&str> = event_types_of(endpoint)?
        .into_iter()
        .flat_map(WebhookEventType::event_kinds)
        .map(EventKind::as_str)
        .collect();
    let Some(event) = webhooks::next_event(connection, endpoint.after_sequence, safe, &kinds)?
    else {
        return Ok(None);
    };
    event_message(&event)
}

/// The secrets that sign a delivery at `at`: the current one, and the
/// previous one while it has not expired.
#[must_use]
pub fn signing_secrets(endpoint: &EndpointRow, at: NaiveDateTime) -> Vec<String> {
    let mut secrets = vec![endpoint.secret.clone()];
    if let (Some(previous), Some(expires_at)) = (
        &endpoint.previous_secret,
        endpoint.previous_secret_expires_at,
    ) {
        if at < expires_at {
            secrets.push(previous.clone());
        }
    }
    secrets
}

/// One attempt as it went.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When it was sent.
    pub at: NaiveDateTime,
    /// The status answered, if the receiver answered.
    pub response_status: Option<u16>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
}

impl Attempt {
    fn result(&self) -> AttemptResult {
        match self.response_status {
            Some(status) if (200..300).contains(&status) => AttemptResult::Delivered,
            Some(410) => AttemptResult::Gone,
            _ => AttemptResult::Failed,
        }
    }
}

/// The delivery loop's lease on an endpoint.
#[derive(Debug, Clone)]
pub struct Lease {
    /// This process's token.
    pub token: String,
    /// Until when the next step holds it, if the loop goes on.
    pub expires_at: NaiveDateTime,
}

/// Records an attempt at `message` for `endpoint` (as the loop last saw it)
/// and moves its queue on: see `domain::webhook::judge_attempt`. Returns
/// the endpoint as it now stands when the loop may go on with the next
/// message under the same lease, or `None` when it must stop (a failure is
/// waiting for its retry, the endpoint was disabled, or the lease was lost
/// to an admin's replay or to expiry).
pub fn record_attempt(
    connection: &mut DbConnection,
    endpoint: &EndpointRow,
    message: &Message,
    attempt: &Attempt,
    lease: &Lease,
    jitter: f64,
) -> Result<Option<EndpointRow>, Error> {
    let result = attempt.result();
    let Some(sequence) = message.sequence else {
        return record_test(connection, endpoint, message, attempt, result);
    };
    let head = HeadState {
        attempts_failed: u32::try_from(endpoint.attempts_failed).unwrap_or(0),
        failing_since: endpoint.failing_since,
    };
    let verdict = judge_attempt(head, result, attempt.at, jitter);
    let keep_lease = verdict.outcome == Outcome::Delivered && verdict.disable.is_none();
    let progress = Progress {
        after_sequence: if verdict.advance {
            sequence
        } else {
            endpoint.after_sequence
        },
        attempts_failed: i32::try_from(verdict.head.attempts_failed).unwrap_or(i32::MAX),
        next_attempt_at: verdict.next_attempt_at,
        failing_since: verdict.head.failing_since,
        lease_token: keep_lease.then(|| lease.token.clone()),
        lease_expires_at: keep_lease.then_some(lease.expires_at),
    };
    if !webhooks::save_progress(connection, &endpoint.id, &lease.token, &progress)? {
        return Ok(None);
    }
    webhooks::insert_delivery(
        connection,
        &delivery_row(
            endpoint,
            message,
            attempt,
            endpoint.attempts_failed + 1,
            verdict.outcome,
            (verdict.outcome == Outcome::Retrying).then_some(verdict.next_attempt_at),
        ),
    )?;
    if let Some(reason) = verdict.disable {
        webhooks::disable(connection, &endpoint.id, reason, attempt.at)?;
        return Ok(None);
    }
    if !keep_lease {
        return Ok(None);
    }
    Ok(Some(EndpointRow {
        after_sequence: progress.after_sequence,
        attempts_failed: progress.attempts_failed,
        next_attempt_at: progress.next_attempt_at,
        failing_since: progress.failing_since,
        lease_token: progress.lease_token,
        lease_expires_at: progress.lease_expires_at,
        ..endpoint.clone()
    }))
}

/// A test is tried once: logged, cleared, and the queue left as it was
/// (but a 410 disables the endpoint like any other).
fn record_test(
    connection: &mut DbConnection,
    endpoint: &EndpointRow,
    message: &Message,
    attempt: &Attempt,
    result: AttemptResult,
) -> Result<Option<EndpointRow>, Error> {
    let outcome = if result == AttemptResult::Delivered {
        Outcome::Delivered
    } else {
        Outcome::Failed
    };
    webhooks::insert_delivery(
        connection,
        &delivery_row(endpoint, message, attempt, 1, outcome, None),
    )?;
    webhooks::clear_test(connection, &endpoint.id, &message.id)?;
    if result == AttemptResult::Gone {
        webhooks::disable(
            connection,
            &endpoint.id,
            "the endpoint answered 410 Gone",
            attempt.at,
        )?;
        return Ok(None);
    }
    Ok(Some(EndpointRow {
        test_message_id: None,
        test_requested_at: None,
        ..endpoint.clone()
    }))
}

fn delivery_row(
    endpoint: &EndpointRow,
    message: &Message,
    attempt: &Attempt,
    number: i32,
    outcome: Outcome,
    next_attempt_at: Option<NaiveDateTime>,
) -> DeliveryRow {
    DeliveryRow {
        id: new_id(),
        endpoint_id: endpoint.id.clone(),
        message_id: message.id.clone(),
        event_type: message.event_type.as_str().to_owned(),
        sequence: message.sequence,
        attempt: number,
        attempted_at: attempt.at,
        response_status: attempt.response_status.map(i32::from),
        error: attempt.error.clone(),
        outcome: outcome.as_str().to_owned(),
        next_attempt_at,
        duration_ms: attempt.duration_ms,
    }
}

/// Lets go of an endpoint with nothing (more) to send, its position moved
/// up to `safe`: every event up to there was considered and none of its
/// types is left. Returns whether the lease was still held.
pub fn finish_idle(
    connection: &mut DbConnection,
    endpoint: &EndpointRow,
    lease_token: &str,
    safe: i64,
) -> Result<bool, Error> {
    let progress = Progress {
        after_sequence: endpoint.after_sequence.max(safe),
        attempts_failed: endpoint.attempts_failed,
        next_attempt_at: endpoint.next_attempt_at,
        failing_since: endpoint.failing_since,
        lease_token: None,
        lease_expires_at: None,
    };
    Ok(webhooks::save_progress(
        connection,
        &endpoint.id,
        lease_token,
        &progress,
    )?)
}
