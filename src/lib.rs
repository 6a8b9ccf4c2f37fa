//! Leeway: a delegation budget and approval ledger service. Managers give
//! each problem a budget; spends inside it are approved on the spot, overruns
//! wait for a manager's review, and every change lands in an audit trail.
//!
//! `main.rs` only parses the command line and calls into this library.

pub mod api;
pub mod app;
pub mod auth;
pub mod body;
pub mod clock;
pub mod config;
pub mod cors;
pub mod db;
pub mod domain;
pub mod encoding;
pub mod error;
pub mod metrics;
pub mod outbound;
pub mod rate_limit;
pub mod service;
pub mod shutdown;
pub mod state;
pub mod tokens;
