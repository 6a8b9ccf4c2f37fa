//! `GET /v1/audit/verify`: the report of `service::audit::verify`, which
//! recomputes the event hash chains and checkpoints (see `db::audit`) and
//! names the first broken link. For finance and admins; the same report is
//! what `leeway verify` prints.

use actix_web::{HttpResponse, web};

use crate::domain::access::Caller;
use crate::error::ApiError;
use crate::service::audit;
use crate::state::AppState;

/// `GET /v1/audit/verify`: 200 with the report whether or not a link is
/// broken (the report is the answer); the CLI turns a break into an exit code.
pub async fn verify(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let report = state
        .db
        .read(move |connection| audit::verify(connection, &caller))
        .await?;
    Ok(HttpResponse::Ok().json(report))
}
