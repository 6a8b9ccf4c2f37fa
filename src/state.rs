//! `AppState`: what every request of one process shares (the database
//! handle, the token verifier, the clock, the limits). It holds no
//! correctness of its own: that lives in database transactions, so any
//! number of processes can serve one database.

use std::time::Duration;

use crate::clock::Clock;
use crate::config::{Config, Limits, Mail, Webhooks};
use crate::db::Db;
use crate::rate_limit::RateLimiter;
use crate::shutdown::OpenConnections;
use crate::tokens::Tokens;

/// State shared by every request of one process. Nothing here holds
/// correctness: all of that lives in database transactions, so any number
/// of processes can serve one database.
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Token signer and verifier.
    pub tokens: Tokens,
    /// The time every time-dependent rule reads.
    pub clock: Clock,
    /// How often the review SLA escalation task runs.
    pub escalation_interval: Duration,
    /// Limits on what clients may consume.
    pub limits: Limits,
    /// Each caller's request allowance, in this process.
    pub rate_limiter: RateLimiter,
    /// Origins allowed to call the API from a browser (CORS); empty: none.
    pub cors_origins: Vec<String>,
    /// The connections this process has open, for a drained shutdown.
    pub connections: OpenConnections,
    /// Whether `GET /metrics` answers without a token.
    pub metrics_public: bool,
    /// Webhook deliveries.
    pub webhooks: Webhooks,
    /// Mail to people.
    pub mail: Mail,
}

impl AppState {
    /// Builds the state from configuration; opens no connection yet.
    pub fn new(config: &Config) -> Result<Self, String> {
        Ok(Self {
            db: Db::with_pool(&config.database, config.limits.pool)?,
            tokens: Tokens::new(&config.jwt),
            clock: Clock::system(),
            escalation_interval: config.escalation_interval,
            limits: config.limits.clone(),
            rate_limiter: RateLimiter::new(config.limits.rate_limit),
            cors_origins: config.cors_origins.clone(),
            connections: OpenConnections::default(),
            metrics_public: config.metrics_public,
            webhooks: config.webhooks.clone(),
            mail: config.mail.clone(),
        })
    }
}
