//! `GET /metrics`: the process's metrics in the Prometheus text format (the
//! series themselves are defined in `crate::metrics`). Admins only, unless
//! the operator made the route public (`LEEWAY_METRICS_PUBLIC`); the
//! metrics-only listener (`LEEWAY_METRICS_BIND`) serves [`scrape_public`].

use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

use crate::domain::access::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /metrics` on the API's address: a token of an admin is required
/// unless metrics are public.
pub async fn scrape(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !state.metrics_public {
        // Extracted here rather than as an argument: in public mode no
        // token is needed, and a sent one is not even read.
        let caller = Caller::extract(&request).await?;
        if !caller.administers() {
            return Err(ApiError::Forbidden(
                "only admins may read the metrics".to_owned(),
            ));
        }
    }
    Ok(scrape_public().await)
}

/// `GET /metrics` with no check: for the metrics-only listener, whose
/// address the operator keeps private.
pub async fn scrape_public() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(crate::metrics::render())
}
