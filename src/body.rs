//! Request bodies are read here, once, before any extractor sees them, and
//! bounded three ways: size ([`BODY_SIZE_MAX`]), the time a client may take
//! to send them (slow clients are cut off with 408 instead of holding a
//! connection open), and the nesting depth of JSON ([`JSON_DEPTH_MAX`], so
//! no body drives the parser into deep recursion).

use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::state::AppState;

/// Largest request body accepted, in bytes.
pub const BODY_SIZE_MAX: usize = 64 * 1024;

/// Deepest nesting of JSON arrays and objects accepted in a body. Leeway's
/// own bodies nest two levels (a spend's `amount`); the margin leaves room
/// for growth while keeping hostile bodies shallow.
pub const JSON_DEPTH_MAX: usize = 16;

/// Middleware: reads the body within the configured time and size, checks
/// the nesting of a JSON body, and hands the buffered body on.
pub async fn guard(
    state: web::Data<AppState>,
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match read(&mut request, state.limits.body_read_timeout).await {
        Ok(body) => {
            request.set_payload(Payload::from(body));
            Ok(next.call(request).await?.map_into_left_body())
        }
        Err(error) => Ok(request.error_response(error).map_into_right_body()),
    }
}

async fn read(request: &mut ServiceRequest, timeout: Duration) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > BODY_SIZE_MAX) {
        return Err(ApiError::PayloadTooLarge(BODY_SIZE_MAX));
    }
    let is_json = is_json(request);
    let mut payload = request.take_payload();
    let body = actix_web::rt::time::timeout(timeout, read_bounded(&mut payload))
        .await
        .map_err(|_| ApiError::RequestTimeout(timeout))??;
    if is_json && nests_deeper_than(&body, JSON_DEPTH_MAX) {
        return Err(ApiError::JsonTooDeep(JSON_DEPTH_MAX));
    }
    Ok(body)
}

async fn read_bounded(payload: &mut Payload) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            ApiError::MalformedJson(format!("the body could not be read: {error}"))
        })?;
        if body.len() + chunk.len() > BODY_SIZE_MAX {
            return Err(ApiError::PayloadTooLarge(BODY_SIZE_MAX));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Whether the body is declared as JSON the way `web::JsonConfig` accepts
/// it: `application/json` or any `+json` type.
fn is_json(request: &ServiceRequest) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase())
        .is_some_and(|essence| essence == "application/json" || essence.ends_with("+json"))
}

/// Whether `text` nests arrays and objects deeper than `limit`. Only
/// brackets outside strings count; invalid JSON is left for the parser to
/// refuse, so this needs no more than one pass and three variables.
#[must_use]
pub fn nests_deeper_than(text: &[u8], limit: usize) -> bool {
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn depth_counts_arrays_and_objects() {
        assert!(!nests_deeper_than(b"{}", 1));
        assert!(nests_deeper_than(b"{\"a\": {}}", 1));
        assert!(!nests_deeper_than(nested(16).as_bytes(), 16));
        assert!(nests_deeper_than(nested(17).as_bytes(), 16));
        assert!(!nests_deeper_than(b"[[], [], []]", 2));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert!(!nests_deeper_than(br#"{"a": "[[[[{{{{"}"#, 1));
        assert!(!nests_deeper_than(br#"{"a": "\"[[[["}"#, 1));
        assert!(nests_deeper_than(br#"{"a": "\\", "b": [[]]}"#, 2));
    }
}
