//! The use cases: one unit of work each, over one transaction handle, the
//! authenticated caller and a typed command, returning a typed outcome or a
//! [`Error`]. Nothing here knows HTTP; the api layer parses requests into
//! commands and renders outcomes, and `error.rs` maps failures to statuses.

pub mod audit;
pub mod delegations;
pub mod error;
pub mod escalation;
pub mod exports;
pub mod ledger;
pub mod mail;
pub mod organisation;
pub mod policies;
pub mod problems;
pub mod reports;
pub mod reviews;
pub mod spends;
pub mod webhooks;

pub use error::{Error, FieldError, Refusal};
