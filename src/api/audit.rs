//! `GET /v1/audit/verify`: recomputes the event hash chains and checkpoints
//! (see `db::audit`) and reports the first broken link. For finance and
//! admins; the same report is what `leeway verify` prints.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::db::DbConnection;
use crate::db::audit;
use crate::db::checkpoints::{self, BrokenLink, CheckpointRow, VerifyReport};
use crate::domain::access::Caller;
use crate::encoding::rfc3339;
use crate::error::ApiError;
use crate::state::AppState;

/// A checkpoint as JSON.
#[derive(Debug, Serialize)]
pub struct CheckpointJson {
    number: i64,
    as_of: i64,
    chain_count: i64,
    heads_hash: String,
    prev_hash: String,
    hash: String,
    sealed_at: String,
}

impl From<CheckpointRow> for CheckpointJson {
    fn from(row: CheckpointRow) -> Self {
        Self {
            number: row.number,
            as_of: row.as_of,
            chain_count: row.chain_count,
            heads_hash: row.heads_hash,
            prev_hash: row.prev_hash,
            hash: row.hash,
            sealed_at: rfc3339(row.sealed_at),
        }
    }
}

/// The first broken link as JSON.
#[derive(Debug, Serialize)]
pub struct BrokenLinkJson {
    event_id: Option<String>,
    chain: String,
    position: i64,
    field: &'static str,
    expected: String,
    found: String,
}

impl From<BrokenLink> for BrokenLinkJson {
    fn from(link: BrokenLink) -> Self {
        Self {
            event_id: link.event_id,
            chain: link.chain_key,
            position: link.position,
            field: link.field,
            expected: link.expected,
            found: link.found,
        }
    }
}

/// A verification report as JSON.
#[derive(Debug, Serialize)]
pub struct VerifyJson {
    /// True when every chain and checkpoint holds.
    pub ok: bool,
    chains_checked: i64,
    events_checked: i64,
    unchained_events: i64,
    checkpoints_checked: i64,
    latest_checkpoint: Option<CheckpointJson>,
    /// The first broken link, or null.
    pub broken: Option<BrokenLinkJson>,
    newest_safe_as_of: i64,
}

impl VerifyJson {
    fn new(report: VerifyReport, newest_safe_as_of: i64) -> Self {
        Self {
            ok: report.broken.is_none(),
            chains_checked: report.chains_checked,
            events_checked: report.events_checked,
            unchained_events: report.unchained_events,
            checkpoints_checked: report.checkpoints_checked,
            latest_checkpoint: report.latest_checkpoint.map(CheckpointJson::from),
            broken: report.broken.map(BrokenLinkJson::from),
            newest_safe_as_of,
        }
    }
}

/// Verifies everything on one connection, outside any transaction.
pub fn run_verification(connection: &mut DbConnection) -> Result<VerifyJson, ApiError> {
    let newest_safe_as_of = audit::safe_as_of(connection)?;
    let report = checkpoints::verify(connection)?;
    Ok(VerifyJson::new(report, newest_safe_as_of))
}

/// `GET /v1/audit/verify`: 200 with the report whether or not a link is
/// broken (the report is the answer); the CLI turns a break into an exit code.
pub async fn verify(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    if !caller.reads_everything() {
        return Err(ApiError::Forbidden(
            "audit verification is for finance and admins".to_owned(),
        ));
    }
    let report = state.db.read(run_verification).await?;
    Ok(HttpResponse::Ok().json(report))
}
