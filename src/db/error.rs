//! `db::Error`: how storage fails, in storage's own words. It knows nothing
//! of HTTP; `error.rs` decides what each kind means to a client, and the
//! service layer turns the kinds it expects (a unique violation it can
//! explain) into its own refusals.
//!
//! When to use which variant:
//! - a uniqueness rule refused the write → `UniqueViolation` (the caller
//!   decides whether that is a conflict, a retry or a bug);
//! - the database cannot be reached, the pool is exhausted, a statement ran
//!   or waited past the statement timeout, or a transaction lost a
//!   serialization race → `Unavailable` (a retry may succeed);
//! - anything else, including a row the same transaction relies on that is
//!   missing → `Internal` (a bug or corruption: never a 404).

/// Every way storage can fail.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A unique index refused the row.
    #[error("unique violation: {0}")]
    UniqueViolation(String),
    /// The database is unreachable, busy past the statement timeout, or
    /// refused a transaction that may succeed when retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the text is for the log only.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// A row that must exist (the same transaction read or wrote it) does
    /// not: a bug or corruption, never a client's 404.
    #[must_use]
    pub fn missing(what: &str) -> Self {
        Self::Internal(format!("{what} vanished inside its own transaction"))
    }
}

/// The statement messages that mean "ran or waited past the statement
/// timeout" (PostgreSQL cancels the statement, SQLite gives up waiting for
/// the write lock after `busy_timeout`) or "gave up a lock wait that could
/// never end": worth a retry, so 503.
const TIMEOUT_MESSAGES: [&str; 3] = [
    "canceling statement due to statement timeout",
    "database is locked",
    // PostgreSQL broke a lock cycle by failing this statement (two
    // processes' batches under group commit can lock rows in either
    // order); the request may be retried.
    "deadlock detected",
];

impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error as Diesel};
        match &error {
            Diesel::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                Self::UniqueViolation(error.to_string())
            }
            Diesel::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::SerializationFailure,
                _,
            ) => Self::Unavailable(error.to_string()),
            Diesel::DatabaseError(_, info)
                if TIMEOUT_MESSAGES
                    .iter()
                    .any(|message| info.message().contains(message)) =>
            {
                Self::Unavailable(error.to_string())
            }
            _ => Self::Internal(error.to_string()),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self::Internal(error.to_string())
    }
}
