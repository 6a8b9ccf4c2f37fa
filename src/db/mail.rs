//! Mail as stored: the cursor over the event log (how far it has been
//! turned into mail), the outbox of composed mails with their attempts, and
//! the record of each person's daily digest. The cursor is locked for the
//! transaction that reads events, queues their mail and advances it, so
//! two processes never queue the same event's mail; sending claims mails
//! under a lease, like webhook deliveries.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::DbConnection;
use super::Error;
use super::events::EventRow;
use super::people::PersonRow;
use super::schema::{events, mail_cursor, mail_digests, mail_outbox, people};

/// How long a sent mail is kept.
pub const SENT_MAIL_DAYS: i64 = 30;

/// A composed mail and how its sending goes.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = mail_outbox)]
pub struct MailRow {
    /// Id (UUIDv7), also the `Message-ID`'s local part.
    pub id: String,
    /// Who it is for.
    pub person_id: String,
    /// Their address when it was composed.
    pub to_address: String,
    /// Subject line.
    pub subject: String,
    /// Plain text body.
    pub body: String,
    /// The event that caused it; null for a digest.
    pub event_id: Option<String>,
    /// When it was queued.
    pub created_at: NaiveDateTime,
    /// Failed sends so far.
    pub attempts: i32,
    /// No send before this.
    pub next_attempt_at: NaiveDateTime,
    /// When the mail server accepted it; null until then.
    pub sent_at: Option<NaiveDateTime>,
    /// Why the last send failed.
    pub last_error: Option<String>,
    /// Which process is sending it now.
    pub lease_token: Option<String>,
    /// Until when.
    pub lease_expires_at: Option<NaiveDateTime>,
}

/// Reads the cursor and, on PostgreSQL, locks it until the transaction
/// ends. Must run inside a write transaction.
pub fn lock_cursor(connection: &mut DbConnection) -> Result<i64, Error> {
    #[derive(QueryableByName)]
    struct Cursor {
        #[diesel(sql_type = BigInt)]
        after_sequence: i64,
    }
    // PostgreSQL-only: FOR UPDATE makes a second process's planner wait for
    // this one's commit and then read the advanced cursor. SQLite's one
    // writer already runs planners one at a time.
    let lock = match connection {
        DbConnection::Postgres(_) => " FOR UPDATE",
        DbConnection::Sqlite(_) => "",
    };
    let cursor: Cursor = diesel::sql_query(format!(
        "SELECT after_sequence FROM mail_cursor WHERE id = 1{lock}"
    ))
    .get_result(connection)?;
    Ok(cursor.after_sequence)
}

/// Whether events were sequenced past the cursor: one cheap read, so an
/// idle server does not open a write transaction to find out.
pub fn cursor_behind(connection: &mut DbConnection) -> Result<bool, Error> {
    let cursor: i64 = mail_cursor::table
        .find(1)
        .select(mail_cursor::after_sequence)
        .get_result(connection)?;
    let newest: Option<i64> = events::table
        .select(diesel::dsl::max(events::sequence))
        .get_result(connection)?;
    Ok(newest.unwrap_or(0) > cursor)
}

/// Moves the cursor to `after_sequence`.
pub fn advance_cursor(connection: &mut DbConnection, after_sequence: i64) -> Result<(), Error> {
    diesel::update(mail_cursor::table.find(1))
        .set(mail_cursor::after_sequence.eq(after_sequence))
        .execute(connection)?;
    Ok(())
}

/// Up to `limit` events of `kinds` after `after_sequence` and at most
/// `through_sequence`, in sequence order.
pub fn events_to_mail(
    connection: &mut DbConnection,
    after_sequence: i64,
    through_sequence: i64,
    kinds: &[&str],
    limit: i64,
) -> Result<Vec<EventRow>, Error> {
    Ok(events::table
        .filter(events::sequence.gt(after_sequence))
        .filter(events::sequence.le(through_sequence))
        .filter(events::kind.eq_any(kinds))
        .order(events::sequence.asc())
        .select(EventRow::as_select())
        .limit(limit)
        .load(connection)?)
}

/// Queues a mail.
pub fn insert(connection: &mut DbConnection, mail: &MailRow) -> Result<(), Error> {
    diesel::insert_into(mail_outbox::table)
        .values(mail.clone())
        .execute(connection)?;
    Ok(())
}

/// Whether any unsent mail is due at `at` and not leased.
pub fn any_due(connection: &mut DbConnection, at: NaiveDateTime) -> Result<bool, Error> {
    let due: Option<String> = mail_outbox::table
        .filter(mail_outbox::sent_at.is_null())
        .filter(mail_outbox::next_attempt_at.le(at))
        .filter(
            mail_outbox::lease_expires_at
                .is_null()
                .or(mail_outbox::lease_expires_at.le(at)),
        )
        .select(mail_outbox::id)
        .first(connection)
        .optional()?;
    Ok(due.is_some())
}

/// Up to `limit` due mails, each leased to `lease_token` until
/// `lease_expires_at` in the same statement.
pub fn claim_due(
    connection: &mut DbConnection,
    at: NaiveDateTime,
    limit: i64,
    lease_token: &str,
    lease_expires_at: NaiveDateTime,
) -> Result<Vec<MailRow>, Error> {
    let lock = super::skip_locked(connection);
    let text = format!(
        "UPDATE mail_outbox SET lease_token = $1, lease_expires_at = $2 \
         WHERE id IN (SELECT id FROM mail_outbox \
           WHERE sent_at IS NULL AND next_attempt_at <= $3 \
             AND (lease_expires_at IS NULL OR lease_expires_at <= $3) \
           ORDER BY next_attempt_at LIMIT $4 {lock}) \
         RETURNING *"
    );
    Ok(diesel::sql_query(text)
        .bind::<Text, _>(lease_token)
        .bind::<Timestamp, _>(lease_expires_at)
        .bind::<Timestamp, _>(at)
        .bind::<BigInt, _>(limit)
        .load(connection)?)
}

/// Records a send the mail server accepted.
pub fn mark_sent(
    connection: &mut DbConnection,
    id: &str,
    lease_token: &str,
    at: NaiveDateTime,
) -> Result<(), Error> {
    diesel::update(
        mail_outbox::table
            .filter(mail_outbox::id.eq(id))
            .filter(mail_outbox::lease_token.eq(lease_token)),
    )
    .set((
        mail_outbox::sent_at.eq(at),
        mail_outbox::last_error.eq(None::<String>),
        mail_outbox::lease_token.eq(None::<String>),
        mail_outbox::lease_expires_at.eq(None::<NaiveDateTime>),
    ))
    .execute(connection)?;
    Ok(())
}

/// Records a failed send and when to try again.
pub fn mark_failed(
    connection: &mut DbConnection,
    id: &str,
    lease_token: &str,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    error: &str,
) -> Result<(), Error> {
    diesel::update(
        mail_outbox::table
            .filter(mail_outbox::id.eq(id))
            .filter(mail_outbox::lease_token.eq(lease_token)),
    )
    .set((
        mail_outbox::attempts.eq(attempts),
        mail_outbox::next_attempt_at.eq(next_attempt_at),
        mail_outbox::last_error.eq(error),
        mail_outbox::lease_token.eq(None::<String>),
        mail_outbox::lease_expires_at.eq(None::<NaiveDateTime>),
    ))
    .execute(connection)?;
    Ok(())
}

/// Up to `limit` people who chose the daily digest, have an address, and
/// have had no digest on `day` (`YYYY-MM-DD`, UTC), in id order.
pub fn digest_due(
    connection: &mut DbConnection,
    day: &str,
    limit: i64,
) -> Result<Vec<PersonRow>, Error> {
    let done = mail_digests::table
        .filter(mail_digests::digest_on.eq(day.to_owned()))
        .select(mail_digests::person_id);
    Ok(people::table
        .filter(people::notify.eq(crate::domain::mail::Notify::DailyDigest.as_str()))
        .filter(people::email.is_not_null())
        .filter(people::id.ne_all(done))
        .order(people::id.asc())
        .select(PersonRow::as_select())
        .limit(limit)
        .load(connection)?)
}

/// Whether anyone is due a digest on `day` (see [`digest_due`]).
pub fn any_digest_due(connection: &mut DbConnection, day: &str) -> Result<bool, Error> {
    Ok(!digest_due(connection, day, 1)?.is_empty())
}

/// Records `person_id`'s digest of `day`. Returns whether it is the first
/// (a second process may have got there first).
pub fn record_digest(
    connection: &mut DbConnection,
    person_id: &str,
    day: &str,
) -> Result<bool, Error> {
    let inserted = super::prepared::sql(
        "INSERT INTO mail_digests (person_id, digest_on) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(person_id)
    .bind::<Text, _>(day)
    .execute(connection)?;
    Ok(inserted == 1)
}

/// Deletes up to `limit` mails sent before `before` (sent mail is kept
/// [`SENT_MAIL_DAYS`] days). Returns how many.
pub fn purge_sent(
    connection: &mut DbConnection,
    before: NaiveDateTime,
    limit: i64,
) -> Result<usize, Error> {
    let old: Vec<String> = mail_outbox::table
        .filter(mail_outbox::sent_at.lt(before))
        .select(mail_outbox::id)
        .limit(limit)
        .load(connection)?;
    Ok(
        diesel::delete(mail_outbox::table.filter(mail_outbox::id.eq_any(old)))
            .execute(connection)?,
    )
}
