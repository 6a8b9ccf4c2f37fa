//! Mail out: a background loop in every server process, on when
//! `LEEWAY_SMTP_URL` is set. Each round it turns new events into queued
//! mail (`service::mail::plan`), queues the day's digests once their hour
//! has come, and sends what is due through SMTP (lettre), each mail under a
//! lease so two processes never send the same one at once. A mail server
//! that is down delays mail (retried on `domain::mail`'s schedule), never
//! loses it, and never holds up a request: nothing here runs inside one.

use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::clock::Clock;
use crate::db::mail::{self, MailRow};
use crate::db::{Db, new_id};
use crate::domain::mail::{digest_due, mail_retry_delay};
use crate::service::Error;

/// How long a claim holds a mail: longer than a send may take.
pub const MAIL_LEASE_SECS: i64 = 60;
/// How long the mail server has for one mail.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Mails claimed per round.
pub const SEND_BATCH_MAX: i64 = 20;

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The mail server URL (`smtp://`, `smtps://`).
    pub smtp_url: String,
    /// The sender.
    pub from: String,
    /// Where links in mails point.
    pub public_url: String,
    /// The hour (UTC) from which digests go out.
    pub digest_hour_utc: u32,
    /// How often to look for work.
    pub poll_interval: Duration,
}

struct Mailer {
    db: Db,
    clock: Clock,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: String,
    digest_hour_utc: u32,
    token: String,
}

/// Starts the mail loop on the current runtime. Fails at once on a URL or
/// sender that cannot work, so a misconfigured server does not start.
pub fn spawn(db: Db, clock: Clock, settings: &MailSettings) -> Result<(), String> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp_url)
        .map_err(|error| format!("LEEWAY_SMTP_URL: {error}"))?
        .timeout(Some(SMTP_TIMEOUT))
        .build();
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|error| format!("LEEWAY_SMTP_FROM {:?}: {error}", settings.from))?;
    let mailer = Mailer {
        db,
        clock,
        transport,
        from,
        public_url: settings.public_url.clone(),
        digest_hour_utc: settings.digest_hour_utc,
        token: new_id(),
    };
    let poll_interval = settings.poll_interval;
    actix_web::rt::spawn(async move {
        loop {
            match mailer.run_once().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "mail loop"),
            }
            actix_web::rt::time::sleep(poll_interval).await;
        }
    });
    Ok(())
}

impl Mailer {
    /// One round; returns whether there may be more work right away. Each
    /// step first looks with a read, so an idle server writes nothing.
    async fn run_once(&self) -> Result<bool, Error> {
        let at = self.clock.now();
        let day = at.date().format("%Y-%m-%d").to_string();
        let digest_hour = digest_due(at, self.digest_hour_utc);
        let (behind, digests_due) = self
            .db
            .read(move |connection| {
                let behind = mail::cursor_behind(connection)?;
                let digests_due = digest_hour && mail::any_digest_due(connection, &day)?;
                Ok::<_, Error>((behind, digests_due))
            })
            .await?;
        let mut planned = 0;
        if behind {
            let safe = self
                .db
                .read(|connection| Ok::<_, Error>(crate::db::audit::safe_as_of(connection)?))
                .await?;
            let public_url = self.public_url.clone();
            planned = self
                .db
                .write(move |connection| {
                    crate::service::mail::plan(connection, safe, &public_url, at)
                })
                .await?;
        }
        let mut digests = 0;
        if digests_due {
            let public_url = self.public_url.clone();
            digests = self
                .db
                .write(move |connection| {
                    crate::service::mail::queue_digests(connection, &public_url, at)
                })
                .await?;
        }
        let sent = self.send_due(at).await?;
        Ok(planned > 0 || digests > 0 || sent > 0)
    }

    /// Sends what is due; returns how many it tried.
    async fn send_due(&self, at: NaiveDateTime) -> Result<usize, Error> {
        let due = self
            .db
            .read(move |connection| Ok::<_, Error>(mail::any_due(connection, at)?))
            .await?;
        if !due {
            return Ok(0);
        }
        let token = self.token.clone();
        let lease_expires_at = at + TimeDelta::seconds(MAIL_LEASE_SECS);
        let claimed = self
            .db
            .write(move |connection| {
                Ok::<_, Error>(mail::claim_due(
                    connection,
                    at,
                    SEND_BATCH_MAX,
                    &token,
                    lease_expires_at,
                )?)
            })
            .await?;
        for row in &claimed {
            self.send(row).await?;
        }
        Ok(claimed.len())
    }

    async fn send(&self, row: &MailRow) -> Result<(), Error> {
        let outcome = match self.message(row) {
            Ok(message) => self
                .transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|error| error.to_string()),
            Err(error) => Err(error),
        };
        let at = self.clock.now();
        let (id, token) = (row.id.clone(), self.token.clone());
        match outcome {
            Ok(()) => {
                self.db
                    .write(move |connection| {
                        Ok::<_, Error>(mail::mark_sent(connection, &id, &token, at)?)
                    })
                    .await
            }
            Err(error) => {
                let attempts = row.attempts.saturating_add(1);
                let delay = mail_retry_delay(u32::try_from(attempts).unwrap_or(u32::MAX));
                let next = at + TimeDelta::from_std(delay).unwrap_or(TimeDelta::hours(1));
                tracing::warn!(mail_id = %row.id, attempts, %error, "mail not sent; will retry");
                self.db
                    .write(move |connection| {
                        Ok::<_, Error>(mail::mark_failed(
                            connection, &id, &token, attempts, next, &error,
                        )?)
                    })
                    .await
            }
        }
    }

    fn message(&self, row: &MailRow) -> Result<Message, String> {
        let to: Mailbox = row
            .to_address
            .parse()
            .map_err(|error| format!("address {:?}: {error}", row.to_address))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(row.subject.clone())
            .message_id(Some(format!("<{}@leeway>", row.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(row.body.clone())
            .map_err(|error| error.to_string())
    }
}
