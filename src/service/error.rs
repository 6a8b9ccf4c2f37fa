//! `service::Error`: how a use case fails, in the domain's words. It knows
//! no HTTP; `error.rs` alone decides each variant's status code.
//!
//! When to use which variant:
//! - the object is outside the caller's reach, or does not exist →
//!   `NotFound` (the caller must not learn it exists); an id in the command
//!   that names nothing the caller can see → `UnknownReference`;
//! - the caller sees the object but may not do this → `Forbidden`, or
//!   `SelfReviewForbidden` for the one rule that has its own code;
//! - the command is wrong whatever the state (a field breaks a rule) →
//!   `Invalid` with one [`FieldError`] per field;
//! - the command is sound but the current state refuses it → `Refused`
//!   with the named [`Refusal`];
//! - storage failed → `Unavailable` (retry) or `Internal` (a bug), which
//!   come from [`crate::db::Error`].

use serde::Serialize;

use crate::domain::money::MoneyError;

/// One refused input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's JSON path, e.g. `amount.currency`.
    pub field: String,
    /// A stable snake_case code, e.g. `too_many_decimals`.
    pub code: &'static str,
    /// What is wrong and what to send instead.
    pub message: String,
}

impl FieldError {
    /// A refused field.
    #[must_use]
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }

    /// A refused money value. `money_field` is the JSON path of the money
    /// object (`amount`, `limit`); the error decides which of its two
    /// members is at fault, so the field error names `amount.amount` or
    /// `amount.currency`, as a client's form would.
    #[must_use]
    pub fn money(money_field: &str, error: &MoneyError) -> Self {
        let (member, code) = match error {
            MoneyError::UnknownCurrency(_) => ("currency", "unknown_currency"),
            MoneyError::NotADecimal(_) => ("amount", "not_a_decimal"),
            MoneyError::TooManyDecimals { .. } => ("amount", "too_many_decimals"),
            MoneyError::NotPositive => ("amount", "not_positive"),
            MoneyError::TooLarge { .. } => ("amount", "too_large"),
            MoneyError::CurrencyMismatch { .. } => ("currency", "currency_mismatch"),
        };
        Self::new(format!("{money_field}.{member}"), code, error.to_string())
    }
}

/// A sound command that the current state refuses, by name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The spend has already been decided.
    #[error("this spend has already been decided")]
    AlreadyDecided,
    /// The spend is voided, or rejected and so counts nowhere: nothing to
    /// void. Holds its status.
    #[error("this spend cannot be voided: it is {0}")]
    NotVoidable(String),
    /// The problem is closed: no new spends, no changes.
    #[error("the problem is closed: it takes no new spends and no changes")]
    ProblemClosed,
    /// A new limit below what the problem has already approved (formatted).
    #[error("the limit cannot be set below what is already approved ({0})")]
    LimitBelowApproved(String),
    /// An `as_of` the ledger has not safely reached yet.
    #[error(
        "as_of {asked} is newer than the newest safe event sequence, {safe}: events up to it may still be committing"
    )]
    AsOfAhead {
        /// The sequence asked for.
        asked: i64,
        /// The newest safe sequence.
        safe: i64,
    },
    /// An `after_sequence` beyond every sequence the feed has handed out.
    #[error(
        "after_sequence {asked} is newer than the newest safe event sequence, {safe}: continue from a next_after_sequence this feed returned"
    )]
    AfterSequenceAhead {
        /// The sequence asked for.
        asked: i64,
        /// The newest safe sequence.
        safe: i64,
    },
    /// The team has no policy in force and no explicit limit was given.
    #[error(
        "the team has no policy in force: set one with PUT /v1/teams/{{id}}/policy or give an explicit limit"
    )]
    NoPolicy,
    /// Any other state conflict (a uniqueness rule, a concurrent change);
    /// holds what happened and what to do.
    #[error("{0}")]
    Conflict(String),
}

/// Every way a use case can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such object, or none the caller may know of. Holds what was sought.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// An id in the command names no object the caller may know of.
    #[error("{field} names no {names} you can see")]
    UnknownReference {
        /// The command's field.
        field: &'static str,
        /// What kind of object it should name.
        names: &'static str,
    },
    /// The caller sees the object but may not do this to it.
    #[error("{0}")]
    Forbidden(String),
    /// Nobody decides a spend they logged or one on a problem they own.
    #[error("you cannot review a spend you logged or one on a problem you own")]
    SelfReviewForbidden,
    /// Fields were refused; each says why.
    #[error("the request has invalid fields")]
    Invalid(Vec<FieldError>),
    /// The state refuses a sound command.
    #[error(transparent)]
    Refused(Refusal),
    /// The database cannot serve now; a retry may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the text is for the log only.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// A refusal of one field.
    #[must_use]
    pub fn field(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, code, message)])
    }

    /// A refused money value in the money object at `money_field`
    /// ([`FieldError::money`]).
    #[must_use]
    pub fn money(money_field: &str, error: &MoneyError) -> Self {
        Self::Invalid(vec![FieldError::money(money_field, error)])
    }

    /// A state conflict explained in words.
    #[must_use]
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Refused(Refusal::Conflict(detail.into()))
    }
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<crate::db::Error> for Error {
    fn from(error: crate::db::Error) -> Self {
        use crate::db::Error as Db;
        match error {
            Db::Unavailable(cause) => Self::Unavailable(cause),
            // A unique violation a use case did not expect is a bug.
            Db::UniqueViolation(cause) | Db::Internal(cause) => Self::Internal(cause),
        }
    }
}
