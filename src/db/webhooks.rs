//! Webhook endpoints and the log of delivery attempts, as stored. An
//! endpoint's queue is the event log itself: its `after_sequence` is how far
//! it has been served. The delivery loop claims endpoints with a lease
//! ([`claim_due`]) and saves progress only while it holds that lease
//! ([`save_progress`]), so several processes on one PostgreSQL never work on
//! the same endpoint at once; on SQLite the claim goes through the one writer.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::Error;
use super::schema::{events, webhook_deliveries, webhook_endpoints};
use super::{DbConnection, Page, PageRequest};
use crate::db::events::EventRow;

/// How long the delivery log keeps an attempt.
pub const DELIVERY_LOG_DAYS: i64 = 30;

/// A stored endpoint.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct EndpointRow {
    /// Id.
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// What it is for, free text.
    pub description: String,
    /// The subscribed webhook event types, a JSON array of strings.
    pub event_types: String,
    /// The signing secret, `whsec_` + base64.
    pub secret: String,
    /// The secret before the last rotation, signing beside the new one.
    pub previous_secret: Option<String>,
    /// When the previous secret stops signing.
    pub previous_secret_expires_at: Option<NaiveDateTime>,
    /// Whether deliveries are paused.
    pub disabled: bool,
    /// Why the server disabled it (410 Gone, failing for days); null when
    /// enabled, or disabled by an admin.
    pub disabled_reason: Option<String>,
    /// Every event at or below this sequence was delivered or given up.
    pub after_sequence: i64,
    /// A `webhook.test` message waiting to go out.
    pub test_message_id: Option<String>,
    /// When that test was asked for.
    pub test_requested_at: Option<NaiveDateTime>,
    /// Failed attempts at the event at the head of the queue.
    pub attempts_failed: i32,
    /// No attempt before this time.
    pub next_attempt_at: NaiveDateTime,
    /// When the current run of failures began.
    pub failing_since: Option<NaiveDateTime>,
    /// Which process holds the endpoint now.
    pub lease_token: Option<String>,
    /// Until when.
    pub lease_expires_at: Option<NaiveDateTime>,
    /// The admin who created it.
    pub created_by: String,
    /// When.
    pub created_at: NaiveDateTime,
    /// Last change by an admin.
    pub updated_at: NaiveDateTime,
}

/// An admin's change to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = webhook_endpoints)]
pub struct EndpointChanges {
    /// New URL.
    pub url: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New subscribed types (JSON array).
    pub event_types: Option<String>,
    /// Pause or resume.
    pub disabled: Option<bool>,
    /// Cleared (`Some(None)`) when an admin enables or disables.
    pub disabled_reason: Option<Option<String>>,
    /// Set on resume, so a paused endpoint is tried at once.
    pub next_attempt_at: Option<NaiveDateTime>,
    /// When.
    pub updated_at: Option<NaiveDateTime>,
}

/// Where the delivery loop leaves an endpoint after an attempt: every
/// field it owns, written together and only under its lease.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = webhook_endpoints, treat_none_as_null = true)]
pub struct Progress {
    /// Served through here.
    pub after_sequence: i64,
    /// Failed attempts at the new head.
    pub attempts_failed: i32,
    /// No attempt before this.
    pub next_attempt_at: NaiveDateTime,
    /// Start of the current run of failures.
    pub failing_since: Option<NaiveDateTime>,
    /// Kept while the loop goes on with the next message, null to let go.
    pub lease_token: Option<String>,
    /// Until when it is kept.
    pub lease_expires_at: Option<NaiveDateTime>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    /// Id (UUIDv7: attempts sort by it).
    pub id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The `webhook-id` header sent.
    pub message_id: String,
    /// The webhook event type sent.
    pub event_type: String,
    /// The event's sequence; null for a test.
    pub sequence: Option<i64>,
    /// 1 for the first attempt at this message, 2 for the first retry, ...
    pub attempt: i32,
    /// When it was sent.
    pub attempted_at: NaiveDateTime,
    /// The HTTP status answered, if any.
    pub response_status: Option<i32>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// `delivered`, `retrying` or `failed`.
    pub outcome: String,
    /// When the next attempt is due, for `retrying`.
    pub next_attempt_at: Option<NaiveDateTime>,
    /// How long the attempt took.
    pub duration_ms: i64,
}

/// Inserts an endpoint.
pub fn insert(connection: &mut DbConnection, endpoint: &EndpointRow) -> Result<(), Error> {
    diesel::insert_into(webhook_endpoints::table)
        .values(endpoint.clone())
        .execute(connection)?;
    Ok(())
}

/// Finds an endpoint by id.
pub fn find(connection: &mut DbConnection, id: &str) -> Result<Option<EndpointRow>, Error> {
    Ok(webhook_endpoints::table
        .find(id)
        .select(EndpointRow::as_select())
        .get_result(connection)
        .optional()?)
}

/// Lists endpoints in id order.
pub fn list(connection: &mut DbConnection, page: &PageRequest) -> Result<Page<EndpointRow>, Error> {
    let mut query = webhook_endpoints::table
        .select(EndpointRow::as_select())
        .order(webhook_endpoints::id.asc())
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(webhook_endpoints::id.gt(after.as_str().to_owned()));
    }
    let rows = query.limit(page.limit + 1).load(connection)?;
    Page::from_rows(rows, page, |row| row.id.parse())
}

/// Applies an admin's change. Returns whether the endpoint exists.
pub fn update(
    connection: &mut DbConnection,
    id: &str,
    changes: &EndpointChanges,
) -> Result<bool, Error> {
    let updated = diesel::update(webhook_endpoints::table.find(id))
        .set(changes.clone())
        .execute(connection)?;
    Ok(updated == 1)
}

/// Deletes an endpoint and its delivery log. Returns whether it existed.
pub fn delete(connection: &mut DbConnection, id: &str) -> Result<bool, Error> {
    diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::endpoint_id.eq(id)))
        .execute(connection)?;
    let deleted = diesel::delete(webhook_endpoints::table.find(id)).execute(connection)?;
    Ok(deleted == 1)
}

/// Replaces the signing secret; the old one signs beside it until
/// `previous_expires_at`.
pub fn rotate_secret(
    connection: &mut DbConnection,
    id: &str,
    secret: &str,
    previous_secret: &str,
    previous_expires_at: NaiveDateTime,
    at: NaiveDateTime,
) -> Result<(), Error> {
    diesel::update(webhook_endpoints::table.find(id))
        .set((
            webhook_endpoints::secret.eq(secret),
            webhook_endpoints::previous_secret.eq(previous_secret),
            webhook_endpoints::previous_secret_expires_at.eq(previous_expires_at),
            webhook_endpoints::updated_at.eq(at),
        ))
        .execute(connection)?;
    Ok(())
}

/// Moves an endpoint's position back so every event after `after_sequence`
/// is delivered again, from a fresh first attempt and at once. Takes any
/// lease away, so a delivery loop still holding it saves nothing over this.
pub fn rewind(
    connection: &mut DbConnection,
    id: &str,
    after_sequence: i64,
    at: NaiveDateTime,
) -> Result<(), Error> {
    diesel::update(webhook_endpoints::table.find(id))
        .set((
            webhook_endpoints::after_sequence.eq(after_sequence),
            webhook_endpoints::attempts_failed.eq(0),
            webhook_endpoints::next_attempt_at.eq(at),
            webhook_endpoints::failing_since.eq(None::<NaiveDateTime>),
            webhook_endpoints::lease_token.eq(None::<String>),
            webhook_endpoints::lease_expires_at.eq(None::<NaiveDateTime>),
            webhook_endpoints::updated_at.eq(at),
        ))
        .execute(connection)?;
    Ok(())
}

/// Queues a `webhook.test` message, due at once.
pub fn request_test(
    connection: &mut DbConnection,
    id: &str,
    message_id: &str,
    at: NaiveDateTime,
) -> Result<(), Error> {
    diesel::update(webhook_endpoints::table.find(id))
        .set((
            webhook_endpoints::test_message_id.eq(message_id),
            webhook_endpoints::test_requested_at.eq(at),
            webhook_endpoints::next_attempt_at.eq(at),
        ))
        .execute(connection)?;
    Ok(())
}

/// Whether any endpoint may have work at `at`: enabled, due, not leased,
/// and with a test waiting or events past its position. One cheap read, so
/// an idle server does not write to find out.
pub fn any_due(connection: &mut DbConnection, at: NaiveDateTime) -> Result<bool, Error> {
    let newest: Option<i64> = events::table
        .select(diesel::dsl::max(events::sequence))
        .get_result(connection)?;
    let due: Option<String> = webhook_endpoints::table
        .filter(webhook_endpoints::disabled.eq(false))
        .filter(webhook_endpoints::next_attempt_at.le(at))
        .filter(
            webhook_endpoints::lease_expires_at
                .is_null()
                .or(webhook_endpoints::lease_expires_at.le(at)),
        )
        .filter(
            webhook_endpoints::test_message_id
                .is_not_null()
                .or(webhook_endpoints::after_sequence.lt(newest.unwrap_or(0))),
        )
        .select(webhook_endpoints::id)
        .first(connection)
        .optional()?;
    Ok(due.is_some())
}

/// The due endpoints of [`any_due`] whose position is below `safe` (or with
/// a test waiting), at most `limit`, each leased to `lease_token` until
/// `lease_expires_at` in the same statement.
pub fn claim_due(
    connection: &mut DbConnection,
    at: NaiveDateTime,
    safe: i64,
    limit: i64,
    lease_token: &str,
    lease_expires_at: NaiveDateTime,
) -> Result<Vec<EndpointRow>, Error> {
    let lock = super::skip_locked(connection);
    let text = format!(
        "UPDATE webhook_endpoints SET lease_token = $1, lease_expires_at = $2 \
         WHERE id IN (SELECT id FROM webhook_endpoints \
           WHERE disabled = FALSE AND next_attempt_at <= $3 \
             AND (lease_expires_at IS NULL OR lease_expires_at <= $3) \
             AND (test_message_id IS NOT NULL OR after_sequence < $4) \
           ORDER BY next_attempt_at LIMIT $5 {lock}) \
         RETURNING *"
    );
    Ok(diesel::sql_query(text)
        .bind::<Text, _>(lease_token)
        .bind::<Timestamp, _>(lease_expires_at)
        .bind::<Timestamp, _>(at)
        .bind::<BigInt, _>(safe)
        .bind::<BigInt, _>(limit)
        .load(connection)?)
}

/// The first event after `after_sequence`, at most `through_sequence`, of
/// one of `kinds` (stored spellings).
pub fn next_event(
    connection: &mut DbConnection,
    after_sequence: i64,
    through_sequence: i64,
    kinds: &[&str],
) -> Result<Option<EventRow>, Error> {
    Ok(events::table
        .filter(events::sequence.gt(after_sequence))
        .filter(events::sequence.le(through_sequence))
        .filter(events::kind.eq_any(kinds))
        .order(events::sequence.asc())
        .select(EventRow::as_select())
        .first(connection)
        .optional()?)
}

/// Saves the delivery loop's progress if `lease_token` still holds the
/// endpoint. Returns whether it did (false: the lease expired or an admin
/// rewound the endpoint; the loop must stop).
pub fn save_progress(
    connection: &mut DbConnection,
    id: &str,
    lease_token: &str,
    progress: &Progress,
) -> Result<bool, Error> {
    let changed = diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::id.eq(id))
            .filter(webhook_endpoints::lease_token.eq(lease_token)),
    )
    .set(progress.clone())
    .execute(connection)?;
    Ok(changed == 1)
}

/// Clears a test message once it has been tried, unless a newer one was
/// asked for meanwhile.
pub fn clear_test(connection: &mut DbConnection, id: &str, message_id: &str) -> Result<(), Error> {
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::id.eq(id))
            .filter(webhook_endpoints::test_message_id.eq(message_id)),
    )
    .set((
        webhook_endpoints::test_message_id.eq(None::<String>),
        webhook_endpoints::test_requested_at.eq(None::<NaiveDateTime>),
    ))
    .execute(connection)?;
    Ok(())
}

/// Disables an endpoint for `reason` and lets go of its lease.
pub fn disable(
    connection: &mut DbConnection,
    id: &str,
    reason: &str,
    at: NaiveDateTime,
) -> Result<(), Error> {
    diesel::update(webhook_endpoints::table.find(id))
        .set((
            webhook_endpoints::disabled.eq(true),
            webhook_endpoints::disabled_reason.eq(reason),
            webhook_endpoints::lease_token.eq(None::<String>),
            webhook_endpoints::lease_expires_at.eq(None::<NaiveDateTime>),
            webhook_endpoints::updated_at.eq(at),
        ))
        .execute(connection)?;
    Ok(())
}

/// Logs one delivery attempt.
pub fn insert_delivery(connection: &mut DbConnection, delivery: &DeliveryRow) -> Result<(), Error> {
    diesel::insert_into(webhook_deliveries::table)
        .values(delivery.clone())
        .execute(connection)?;
    Ok(())
}

/// Lists an endpoint's delivery attempts oldest first, optionally only
/// those with one outcome.
pub fn list_deliveries(
    connection: &mut DbConnection,
    endpoint_id: &str,
    outcome: Option<&str>,
    page: &PageRequest,
) -> Result<Page<DeliveryRow>, Error> {
    let mut query = webhook_deliveries::table
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id.to_owned()))
        .select(DeliveryRow::as_select())
        .order(webhook_deliveries::id.asc())
        .into_boxed();
    if let Some(outcome) = outcome {
        query = query.filter(webhook_deliveries::outcome.eq(outcome.to_owned()));
    }
    if let Some(after) = &page.after {
        query = query.filter(webhook_deliveries::id.gt(after.as_str().to_owned()));
    }
    let rows = query.limit(page.limit + 1).load(connection)?;
    Page::from_rows(rows, page, |row| row.id.parse())
}

/// The newest event sequence handed out so far (0 before any): where a
/// new endpoint starts, so it receives what happens after it was created.
pub fn newest_sequence(connection: &mut DbConnection) -> Result<i64, Error> {
    let newest: Option<i64> = events::table
        .select(diesel::dsl::max(events::sequence))
        .get_result(connection)?;
    Ok(newest.unwrap_or(0))
}

/// Deletes up to `limit` delivery attempts made before `before` (the log
/// is kept [`DELIVERY_LOG_DAYS`] days). Returns how many.
pub fn purge_deliveries(
    connection: &mut DbConnection,
    before: NaiveDateTime,
    limit: i64,
) -> Result<usize, Error> {
    let old: Vec<String> = webhook_deliveries::table
        .filter(webhook_deliveries::attempted_at.lt(before))
        .select(webhook_deliveries::id)
        .limit(limit)
        .load(connection)?;
    Ok(
        diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(old)))
            .execute(connection)?,
    )
}
