//! What leaves Leeway on its own: webhook deliveries. A background loop in
//! every server process looks for endpoints with work due, claims a few
//! under a lease (`db::webhooks::claim_due`: `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, the one writer on SQLite), and delivers each one's messages
//! in sequence order, at most [`DeliverySettings::concurrency`] at once,
//! never inside a request. Progress is saved after each attempt, so a
//! process killed at any moment loses nothing: its lease expires and the
//! message is sent again (at least once, in order).

pub mod client;
pub mod mail;

use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use futures_util::StreamExt;

use crate::clock::Clock;
use crate::db::webhooks::EndpointRow;
use crate::db::{Db, new_id};
use crate::service::Error;
use crate::service::webhooks::{self, Lease};
use client::Sender;

/// How long a claim holds an endpoint without news: longer than a delivery
/// may take ([`client::DELIVERY_TIMEOUT`]) plus the writes around it, short
/// enough that a killed process's endpoints are taken over soon.
pub const LEASE_SECS: i64 = 30;
/// Most messages sent to one endpoint under one claim before it is let go,
/// so one busy endpoint does not hold a delivery slot forever.
pub const MESSAGES_PER_CLAIM_MAX: usize = 100;

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Whether `http` and private destinations are allowed (development).
    pub allow_private: bool,
    /// How often to look for work when there was none.
    pub poll_interval: Duration,
    /// Endpoints delivered to at once.
    pub concurrency: usize,
}

/// The delivery loop of one process.
#[derive(Clone)]
struct Deliverer {
    db: Db,
    clock: Clock,
    sender: Sender,
    /// This process's lease token.
    token: String,
    concurrency: usize,
}

/// Starts the delivery loop on the current runtime, for as long as it runs.
pub fn spawn(db: Db, clock: Clock, settings: &DeliverySettings) -> Result<(), String> {
    let deliverer = Deliverer {
        db,
        clock,
        sender: Sender::new(settings.allow_private)?,
        token: new_id(),
        concurrency: settings.concurrency.max(1),
    };
    let poll_interval = settings.poll_interval;
    actix_web::rt::spawn(async move {
        loop {
            match deliverer.run_once().await {
                // Work was found: look again at once, a backlog drains fast.
                Ok(claimed) if claimed > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "webhook delivery loop"),
            }
            actix_web::rt::time::sleep(poll_interval).await;
        }
    });
    Ok(())
}

impl Deliverer {
    fn lease(&self, at: NaiveDateTime) -> Lease {
        Lease {
            token: self.token.clone(),
            expires_at: at + TimeDelta::seconds(LEASE_SECS),
        }
    }

    /// Claims what is due and delivers it. Returns how many endpoints it claimed.
    async fn run_once(&self) -> Result<usize, Error> {
        let at = self.clock.now();
        let due = self
            .db
            .read(move |connection| Ok::<_, Error>(crate::db::webhooks::any_due(connection, at)?))
            .await?;
        if !due {
            return Ok(0);
        }
        let safe = self
            .db
            .read(|connection| Ok::<_, Error>(crate::db::audit::safe_as_of(connection)?))
            .await?;
        let lease = self.lease(at);
        let limit = i64::try_from(self.concurrency).unwrap_or(1);
        let claimed = self
            .db
            .write(move |connection| {
                Ok::<_, Error>(crate::db::webhooks::claim_due(
                    connection,
                    at,
                    safe,
                    limit,
                    &lease.token,
                    lease.expires_at,
                )?)
            })
            .await?;
        let count = claimed.len();
        futures_util::stream::iter(claimed)
            .for_each_concurrent(self.concurrency, |endpoint| async move {
                let id = endpoint.id.clone();
                if let Err(error) = self.drain(endpoint, safe).await {
                    tracing::warn!(%error, webhook_id = %id, "webhook delivery");
                }
            })
            .await;
        Ok(count)
    }

    /// Sends `endpoint`'s messages in order until one fails, none is left
    /// below `safe`, the claim's quota is used, or the lease is lost.
    async fn drain(&self, mut endpoint: EndpointRow, safe: i64) -> Result<(), Error> {
        for _ in 0..MESSAGES_PER_CLAIM_MAX {
            let current = endpoint.clone();
            let message = self
                .db
                .read(move |connection| webhooks::next_message(connection, &current, safe))
                .await?;
            let Some(message) = message else {
                let current = endpoint.clone();
                let token = self.token.clone();
                self.db
                    .write(move |connection| {
                        webhooks::finish_idle(connection, &current, &token, safe)
                    })
                    .await?;
                return Ok(());
            };
            let at = self.clock.now();
            let secrets = webhooks::signing_secrets(&endpoint, at);
            let attempt = self
                .sender
                .send(&endpoint.url, &message, &secrets, at)
                .await;
            crate::metrics::webhook_attempt(
                attempt
                    .response_status
                    .is_some_and(|status| (200..300).contains(&status)),
            );
            let lease = self.lease(self.clock.now());
            let jitter = rand::random_range(-1.0..=1.0);
            let current = endpoint.clone();
            let next = self
                .db
                .write(move |connection| {
                    webhooks::record_attempt(
                        connection, &current, &message, &attempt, &lease, jitter,
                    )
                })
                .await?;
            match next {
                Some(next) => endpoint = next,
                None => return Ok(()),
            }
        }
        // The quota is used: let go, keeping the position, so other
        // endpoints get their turn; the next poll claims this one again.
        let current = endpoint.clone();
        let token = self.token.clone();
        let position = endpoint.after_sequence;
        self.db
            .write(move |connection| webhooks::finish_idle(connection, &current, &token, position))
            .await?;
        Ok(())
    }
}
