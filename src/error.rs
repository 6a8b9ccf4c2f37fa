//! `ApiError`: the one place that knows HTTP statuses. Every handler, extractor
//! and middleware answers failures through it, as RFC 9457
//! `application/problem+json` with a stable snake_case `code`.
//!
//! When to use which variant:
//! - the caller's input is wrong (body, query, path) → `Validation`,
//!   `MalformedJson`, `InvalidQuery`, `PayloadTooLarge`, `JsonTooDeep`,
//!   `UnsupportedMediaType`; too slow to arrive → `RequestTimeout`;
//! - the caller sends more requests than their allowance → `RateLimited` (429, retry);
//! - the caller is not who they claim → `Unauthenticated`;
//! - the object is outside the caller's reach → `NotFound` (never 403: they
//!   must not learn it exists), and so is an id in a body that names nothing
//!   the caller can see → `UnknownReference`; visible but not theirs to
//!   change → `Forbidden`;
//! - the request is wrong whatever the state (a field breaks a rule) → 422
//!   `Validation`; it is sound but the current state refuses it (already
//!   decided, a limit below what is approved, a stale `as_of`) → the specific
//!   409 variant;
//! - the database is down or the pool exhausted → `Unavailable` (503, retry);
//! - anything else → `Internal`: the cause goes to the log with the request
//!   id, the body says nothing internal.
//!
//! `status_code` and `code` match every variant with no catch-all arm, so a
//! new variant forces a decision about its status.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::money::MoneyError;
use crate::service::{self, FieldError, Refusal};

/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECS: u32 = 1;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

tokio::task_local! {
    /// The id of the request being served, set by the request-id middleware
    /// so an internal error can name it in its body and its log line.
    pub static REQUEST_ID: String;
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, malformed, expired or unknown token.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller sees the object but may not do this to it.
    #[error("{0}")]
    Forbidden(String),
    /// Nobody decides a spend they logged or one on a problem they own.
    #[error("you cannot review a spend you logged or one on a problem you own")]
    SelfReviewForbidden,
    /// No such object, or none the caller may know of. Holds what was sought.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// An id in the body names no object the caller may know of: (field, what it names).
    #[error("{0} names no {1} you can see")]
    UnknownReference(&'static str, &'static str),
    /// No route answers this path.
    #[error("no route matches this path")]
    RouteNotFound,
    /// The route exists but not with this method; holds the allowed ones.
    #[error("this method is not allowed on this route: use {0}")]
    MethodNotAllowed(String),
    /// The body is not JSON.
    #[error("{0}")]
    MalformedJson(String),
    /// A query parameter could not be read.
    #[error("{0}")]
    InvalidQuery(String),
    /// The body is not `application/json`.
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    /// The body is larger than the server accepts.
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The JSON body nests arrays and objects deeper than the server accepts.
    #[error("the body nests arrays and objects more than {0} levels deep")]
    JsonTooDeep(usize),
    /// The client did not send its body within the allowed time.
    #[error("the request body did not arrive within {0:?}")]
    RequestTimeout(Duration),
    /// The caller exceeded their request allowance; holds the seconds to wait.
    #[error("too many requests: retry after {0} seconds")]
    RateLimited(u64),
    /// Fields were refused; each says why.
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    /// The spend has already been decided.
    #[error("this spend has already been decided")]
    AlreadyDecided,
    /// The spend is voided, or rejected and so counts nowhere: nothing to void.
    #[error("this spend cannot be voided: it is {0}")]
    NotVoidable(String),
    /// The problem is closed: no new spends, no changes.
    #[error("the problem is closed: it takes no new spends and no changes")]
    ProblemClosed,
    /// A uniqueness rule was broken; holds the explanation.
    #[error("{0}")]
    Conflict(String),
    /// A new limit below what the problem has already approved. The request
    /// is sound; the problem's state refuses it.
    #[error("the limit cannot be set below what is already approved ({0})")]
    LimitBelowApproved(String),
    /// An export or report asked for an `as_of` the ledger has not safely
    /// reached yet: (asked, newest safe).
    #[error(
        "as_of {0} is newer than the newest safe event sequence, {1}: events up to it may still be committing"
    )]
    AsOfAhead(i64, i64),
    /// An `after_sequence` the change feed has not reached.
    #[error(
        "after_sequence {0} is newer than the newest safe event sequence, {1}: continue from a next_after_sequence this feed returned"
    )]
    AfterSequenceAhead(i64, i64),
    /// The team has no policy in force and no explicit limit was given.
    #[error(
        "the team has no policy in force: set one with PUT /v1/teams/{{id}}/policy or give an explicit limit"
    )]
    NoPolicy,
    /// The Idempotency-Key was used before with a different request.
    #[error(
        "this Idempotency-Key was used with a different request: use a new key for a new request"
    )]
    IdempotencyKeyReused,
    /// A request with this Idempotency-Key is still being processed.
    #[error("a request with this Idempotency-Key is still in flight: retry after it completes")]
    IdempotencyKeyInFlight,
    /// The database cannot be reached or the pool is exhausted.
    #[error("the service is temporarily unavailable: retry shortly")]
    Unavailable(String),
    /// A bug or an unexpected failure; the string is for the log only.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A validation failure of one field.
    #[must_use]
    pub fn field(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }

    /// A refused money value in the money object at `money_field`
    /// ([`FieldError::money`]).
    #[must_use]
    pub fn money(money_field: &str, error: &MoneyError) -> Self {
        Self::Validation(vec![FieldError::money(money_field, error)])
    }

    /// The stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::SelfReviewForbidden => "self_review_forbidden",
            Self::NotFound(_) | Self::UnknownReference(..) | Self::RouteNotFound => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::MalformedJson(_) => "malformed_json",
            Self::InvalidQuery(_) => "invalid_query",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::JsonTooDeep(_) => "json_too_deep",
            Self::RequestTimeout(_) => "request_timeout",
            Self::RateLimited(_) => "rate_limited",
            Self::Validation(_) => "validation_failed",
            Self::AlreadyDecided => "already_decided",
            Self::ProblemClosed => "problem_closed",
            Self::NotVoidable(_) => "not_voidable",
            Self::Conflict(_) => "conflict",
            Self::AsOfAhead(..) => "as_of_ahead",
            Self::AfterSequenceAhead(..) => "after_sequence_ahead",
            Self::LimitBelowApproved(_) => "below_approved",
            Self::NoPolicy => "no_policy",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            Self::Unavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    fn title(&self) -> &'static str {
        self.status_code().canonical_reason().unwrap_or("Error")
    }
}

/// The problem+json body.
#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::SelfReviewForbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::UnknownReference(..) | Self::RouteNotFound => {
                StatusCode::NOT_FOUND
            }
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::MalformedJson(_) | Self::InvalidQuery(_) | Self::JsonTooDeep(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Validation(_) | Self::NoPolicy | Self::IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::AlreadyDecided
            | Self::NotVoidable(_)
            | Self::ProblemClosed
            | Self::Conflict(_)
            | Self::AsOfAhead(..)
            | Self::AfterSequenceAhead(..)
            | Self::LimitBelowApproved(_)
            | Self::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = REQUEST_ID.try_with(Clone::clone).ok();
        match self {
            Self::Internal(cause) => {
                tracing::error!(request_id = request_id.as_deref(), %cause, "internal error");
            }
            Self::Unavailable(cause) => {
                tracing::warn!(request_id = request_id.as_deref(), %cause, "unavailable");
            }
            _ => {}
        }
        let status = self.status_code();
        let body = ProblemBody {
            problem_type: format!("urn:leeway:problem:{}", self.code()),
            title: self.title(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: self.code(),
            errors: match self {
                Self::Validation(errors) => Some(errors),
                _ => None,
            },
            request_id,
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            // Both are worth retrying shortly: the database may be back, the
            // first request with this key may have finished.
            Self::Unavailable(_) | Self::IdempotencyKeyInFlight => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
            }
            Self::RateLimited(wait_secs) => {
                response.insert_header((header::RETRY_AFTER, wait_secs.to_string()));
            }
            _ => {}
        }
        if let Self::MethodNotAllowed(allow) = self {
            response.insert_header((header::ALLOW, allow.clone()));
        }
        if matches!(self, Self::Unauthenticated(_)) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.body(serde_json::to_string(&body).unwrap_or_default())
    }
}

impl From<service::Error> for ApiError {
    fn from(error: service::Error) -> Self {
        use service::Error as Service;
        match error {
            Service::NotFound(what) => Self::NotFound(what),
            Service::UnknownReference { field, names } => Self::UnknownReference(field, names),
            Service::Forbidden(detail) => Self::Forbidden(detail),
            Service::SelfReviewForbidden => Self::SelfReviewForbidden,
            Service::Invalid(errors) => Self::Validation(errors),
            Service::Refused(refusal) => refusal.into(),
            Service::Unavailable(cause) => Self::Unavailable(cause),
            Service::Internal(cause) => Self::Internal(cause),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::AlreadyDecided => Self::AlreadyDecided,
            Refusal::NotVoidable(status) => Self::NotVoidable(status),
            Refusal::ProblemClosed => Self::ProblemClosed,
            Refusal::LimitBelowApproved(approved) => Self::LimitBelowApproved(approved),
            Refusal::AsOfAhead { asked, safe } => Self::AsOfAhead(asked, safe),
            Refusal::AfterSequenceAhead { asked, safe } => Self::AfterSequenceAhead(asked, safe),
            Refusal::NoPolicy => Self::NoPolicy,
            Refusal::Conflict(detail) => Self::Conflict(detail),
        }
    }
}

impl From<crate::db::Error> for ApiError {
    fn from(error: crate::db::Error) -> Self {
        service::Error::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    fn body_of(error: &ApiError) -> serde_json::Value {
        let bytes = error.error_response().into_body().try_into_bytes().unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn an_internal_error_says_nothing_internal() {
        let error =
            ApiError::Internal("relation \"spends\" does not exist at db/spends.rs".to_owned());
        let body = body_of(&error);
        assert_eq!(body["status"], 500);
        assert_eq!(body["code"], "internal_error");
        assert_eq!(body["detail"], "internal error");
        assert!(!body.to_string().contains("spends"));
    }

    #[test]
    fn a_request_id_in_scope_is_named_in_the_body() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let body = runtime.block_on(REQUEST_ID.scope("req-1".to_owned(), async {
            body_of(&ApiError::Internal("boom".to_owned()))
        }));
        assert_eq!(body["request_id"], "req-1");
    }

    #[test]
    fn rate_limited_says_when_to_retry() {
        let response = ApiError::RateLimited(3).error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "3");
        assert_eq!(body_of(&ApiError::RateLimited(3))["code"], "rate_limited");
    }

    #[test]
    fn unavailable_asks_the_client_to_retry() {
        let response = ApiError::Unavailable("pool timed out".to_owned()).error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "1");
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            PROBLEM_JSON
        );
    }
}
