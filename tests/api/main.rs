//! The integration test binary: the real server over HTTP, on SQLite and on
//! PostgreSQL. See `helpers.rs` for the harness.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on anything unexpected"
)]

mod binary;
mod helpers;

mod access;
mod architecture;
mod audit;
mod authorization;
mod cli;
mod concurrency;
mod crash;
mod delegation;
mod errors;
mod exports;
mod feed;
mod finance;
mod headers;
mod idempotency;
mod limits;
mod mail;
mod metrics;
mod openapi;
mod organisation;
mod outage;
mod reports;
mod shutdown;
mod spends;
mod tokens;
mod webhooks;
mod webhooks_standard;
