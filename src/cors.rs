//! CORS, so browser-based forms on the configured origins may call the API.
//! With no origin configured (the default) no CORS header is ever sent and
//! browsers keep every other site out. Only exact origins are allowed, never
//! a wildcard, and no credentials mode: the API is called with a bearer
//! token, never a cookie.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// How long a browser may cache a preflight answer, in seconds.
pub const CORS_MAX_AGE_SECS: u32 = 600;
/// Methods a browser may use cross-origin: every method a route answers.
const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH";
/// Request headers a browser may send cross-origin.
const ALLOWED_HEADERS: &str = "authorization, content-type, idempotency-key";
/// Response headers a browser script may read beyond the CORS-safelisted ones.
pub const EXPOSED_HEADERS: &str =
    "x-request-id, retry-after, idempotent-replayed, www-authenticate";

/// Middleware: answers preflight requests from allowed origins and marks
/// their other responses (errors included) readable by the browser.
pub async fn cors(
    state: web::Data<AppState>,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if state.cors_origins.is_empty() {
        return Ok(next.call(request).await?.map_into_left_body());
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .filter(|origin| {
            state
                .cors_origins
                .iter()
                .any(|allowed| allowed.as_bytes() == origin.as_bytes())
        })
        .cloned();
    let is_preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if let (Some(origin), true) = (&origin, is_preflight) {
        let response = HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, CORS_MAX_AGE_SECS))
            .insert_header((header::VARY, "Origin"))
            .finish();
        return Ok(request.into_response(response).map_into_right_body());
    }
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    // Whether CORS headers are sent depends on Origin: caches must know.
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    Ok(response.map_into_left_body())
}
