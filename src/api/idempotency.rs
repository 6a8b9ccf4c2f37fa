//! `Idempotency-Key` for retried POSTs (draft-ietf-httpapi-idempotency-key-header):
//! the same key and body replay the first response; the same key with
//! another body is 422; a retry while the first is in flight is 409. Keys
//! are scoped to the caller and kept [`IDEMPOTENCY_KEY_TTL`].
//!
//! The claim, the work and the stored response are one transaction
//! (`db::idempotency`): a request that fails (any error) stores nothing, so
//! a retry runs again; only successful responses are replayed.
//!
//! [`IDEMPOTENCY_KEY_TTL`]: crate::db::idempotency::IDEMPOTENCY_KEY_TTL

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::DbConnection;
use crate::db::idempotency::{self, Claim};
use crate::error::ApiError;
use crate::state::AppState;

/// Header carrying the key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Header set on a replayed response.
pub const IDEMPOTENT_REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key accepted, in characters (quotes included).
pub const IDEMPOTENCY_KEY_LENGTH_MAX: usize = 255;

/// Reads the key, if sent: 1 to [`IDEMPOTENCY_KEY_LENGTH_MAX`] visible ASCII
/// characters. The draft sends it as a structured-field string (`"abc"`, the
/// key `abc`); a bare token (`abc`) is accepted too, as most clients send it.
/// The length counts the quotes, and `""` is the two-character key `""`.
pub fn idempotency_key(request: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    let refuse = || {
        ApiError::field(
            "Idempotency-Key",
            "invalid_idempotency_key",
            format!(
                "Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_LENGTH_MAX} visible ASCII characters"
            ),
        )
    };
    let text = value.to_str().map_err(|_| refuse())?.trim();
    if text.is_empty()
        || text.len() > IDEMPOTENCY_KEY_LENGTH_MAX
        || !text.bytes().all(|byte| byte.is_ascii_graphic())
    {
        return Err(refuse());
    }
    let key = text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .filter(|inner| !inner.is_empty())
        .unwrap_or(text);
    Ok(Some(key.to_owned()))
}

/// A digest of what makes two requests "the same": the route and the parsed
/// body re-serialised, so whitespace and key order do not matter.
pub fn fingerprint(route: &str, body: &impl Serialize) -> Result<String, ApiError> {
    let body = serde_json::to_value(body).map_err(|error| ApiError::Internal(error.to_string()))?;
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update([0]);
    hasher.update(body.to_string().as_bytes());
    Ok(crate::encoding::hex(&hasher.finalize()))
}

/// What a handler hands over to be run at most once per key.
pub struct Idempotent {
    /// The caller's person id: keys are scoped to it.
    pub caller_id: String,
    /// The key, if the client sent one.
    pub key: Option<String>,
    /// See [`fingerprint`].
    pub fingerprint: String,
    /// Status of a successful response.
    pub status: StatusCode,
}

impl Idempotent {
    /// Reads what every idempotent write needs, in the order a client's
    /// mistakes are reported: the key header first, then the body's
    /// fingerprint under `route`.
    pub fn read(
        request: &HttpRequest,
        caller_id: &str,
        route: &str,
        body: &impl Serialize,
        status: StatusCode,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            key: idempotency_key(request)?,
            fingerprint: fingerprint(route, body)?,
            caller_id: caller_id.to_owned(),
            status,
        })
    }
}

/// What one keyed write transaction answered.
enum Answer {
    /// The work ran now; its JSON body.
    Fresh(String),
    /// The work ran before under this key; its stored response.
    Replay { status: u16, body: String },
}

/// Runs `work` in one write transaction, honouring the idempotency key: the
/// claim, the work and the stored response commit together or not at all.
pub async fn respond<T, F>(
    state: &AppState,
    request: Idempotent,
    work: F,
) -> Result<HttpResponse, ApiError>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
{
    let Some(key) = request.key else {
        let value = state.db.write(work).await?;
        return Ok(HttpResponse::build(request.status).json(value));
    };
    let (caller_id, fingerprint, status) = (request.caller_id, request.fingerprint, request.status);
    let at = state.clock.now();
    let answer = state
        .db
        .write(move |connection| {
            match idempotency::claim(connection, &caller_id, &key, &fingerprint, at)? {
                Claim::Proceed => {}
                Claim::Replay { status, body } => return Ok(Answer::Replay { status, body }),
                Claim::Reused => return Err(ApiError::IdempotencyKeyReused),
                Claim::InFlight => return Err(ApiError::IdempotencyKeyInFlight),
            }
            let value = work(connection)?;
            let body = serde_json::to_string(&value)
                .map_err(|error| ApiError::Internal(error.to_string()))?;
            idempotency::complete(connection, &caller_id, &key, status.as_u16(), &body)?;
            Ok(Answer::Fresh(body))
        })
        .await?;
    match answer {
        Answer::Fresh(body) => Ok(HttpResponse::build(status)
            .content_type("application/json")
            .body(body)),
        Answer::Replay { status, body } => {
            crate::metrics::idempotent_replay();
            let status = StatusCode::from_u16(status)
                .map_err(|error| ApiError::Internal(error.to_string()))?;
            Ok(HttpResponse::build(status)
                .insert_header((IDEMPOTENT_REPLAYED_HEADER, "true"))
                .content_type("application/json")
                .body(body))
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn read(value: &str) -> Result<Option<String>, ApiError> {
        idempotency_key(
            &TestRequest::default()
                .insert_header((IDEMPOTENCY_KEY_HEADER, value))
                .to_http_request(),
        )
    }

    #[test]
    fn keys_are_read_bare_or_quoted() {
        assert_eq!(read("abc").unwrap().as_deref(), Some("abc"));
        assert_eq!(read("\"abc\"").unwrap().as_deref(), Some("abc"));
        assert_eq!(read("\"\"").unwrap().as_deref(), Some("\"\""));
        let longest = "k".repeat(IDEMPOTENCY_KEY_LENGTH_MAX);
        assert_eq!(read(&longest).unwrap(), Some(longest));
        assert!(
            idempotency_key(&TestRequest::default().to_http_request())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn malformed_keys_are_refused() {
        let too_long = "k".repeat(IDEMPOTENCY_KEY_LENGTH_MAX + 1);
        let quoted_too_long = format!("\"{}\"", "k".repeat(IDEMPOTENCY_KEY_LENGTH_MAX - 1));
        for value in ["", "a b", "é", too_long.as_str(), quoted_too_long.as_str()] {
            assert!(read(value).is_err(), "{value:?}");
        }
    }
}
