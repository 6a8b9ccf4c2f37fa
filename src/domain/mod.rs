//! Pure domain rules, free of IO: money and currencies, the limit rule, who
//! may do what, and the review workflow (flag reasons, routing, authority).
//! Everything here is unit-tested without a database.

pub mod access;
pub mod currency;
pub mod event;
pub mod ids;
pub mod limit;
pub mod mail;
pub mod money;
pub mod review;
pub mod status;
pub mod webhook;
