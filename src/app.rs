//! Builds the actix application: shared state, extractor configurations
//! that turn every input failure into problem+json, the request-id,
//! security-header, CORS and body-guard middleware, connection limits, and
//! the routes from `api::routes`.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::{App, HttpRequest, HttpServer, web};

use crate::api;
use crate::body::BODY_SIZE_MAX;
use crate::clock::Clock;
use crate::db::{Db, new_id};
use crate::error::{ApiError, REQUEST_ID};
use crate::service::FieldError;
use crate::state::AppState;

/// How long a client may take to send its request head.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Header carrying the request id on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// HTTP workers of the metrics-only server: a scraper calls it a few times
/// a minute.
pub const METRICS_WORKERS: usize = 1;

/// How often each process purges expired idempotency keys.
pub const IDEMPOTENCY_PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Purges expired idempotency keys every [`IDEMPOTENCY_PURGE_INTERVAL`] for
/// as long as the server runs, so the table stays bounded by a day's
/// traffic; and webhook attempts and sent mail past their 30 days.
fn spawn_idempotency_purge(db: Db, clock: Clock) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(IDEMPOTENCY_PURGE_INTERVAL);
        loop {
            ticks.tick().await;
            let at = clock.now();
            let purged = db
                .write(move |connection| crate::db::idempotency::purge_expired(connection, at))
                .await;
            match purged {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "purged expired idempotency keys"),
                Err(error) => tracing::warn!(%error, "could not purge expired idempotency keys"),
            }
            let purged = db
                .write(move |connection| purge_outbound_logs(connection, at))
                .await;
            match purged {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "purged old webhook attempts and sent mail"),
                Err(error) => {
                    tracing::warn!(%error, "could not purge old webhook attempts and mail");
                }
            }
        }
    });
}

/// Deletes webhook attempts and sent mail past their retention, a batch
/// of each per run.
fn purge_outbound_logs(
    connection: &mut crate::db::DbConnection,
    at: chrono::NaiveDateTime,
) -> Result<usize, crate::db::Error> {
    use crate::db::{mail, webhooks};
    let attempts = webhooks::purge_deliveries(
        connection,
        at - chrono::TimeDelta::days(webhooks::DELIVERY_LOG_DAYS),
        crate::db::idempotency::PURGE_BATCH_SIZE,
    )?;
    let mails = mail::purge_sent(
        connection,
        at - chrono::TimeDelta::days(mail::SENT_MAIL_DAYS),
        crate::db::idempotency::PURGE_BATCH_SIZE,
    )?;
    Ok(attempts + mails)
}

/// Seals an audit checkpoint every [`crate::db::checkpoints::CHECKPOINT_INTERVAL_SECS`]
/// (the first one interval after start) for as long as the server runs.
/// Several processes may race; the checkpoint number's key lets one win.
fn spawn_checkpoint_sealer(db: Db, clock: Clock) {
    actix_web::rt::spawn(async move {
        let period = Duration::from_secs(crate::db::checkpoints::CHECKPOINT_INTERVAL_SECS);
        let start = actix_web::rt::time::Instant::now() + period;
        let mut ticks = actix_web::rt::time::interval_at(start, period);
        loop {
            ticks.tick().await;
            let at = clock.now();
            let sealed = db
                .read(move |connection| crate::db::checkpoints::seal_checkpoint(connection, at))
                .await;
            match sealed {
                Ok(Some(checkpoint)) => tracing::info!(
                    number = checkpoint.number,
                    as_of = checkpoint.as_of,
                    hash = %checkpoint.hash,
                    "sealed audit checkpoint"
                ),
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "could not seal an audit checkpoint"),
            }
        }
    });
}

/// Escalates overdue reviews every `interval` for as long as the server
/// runs (see `service::escalation`).
fn spawn_escalation(db: Db, clock: Clock, interval: Duration) {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(interval);
        loop {
            ticks.tick().await;
            match crate::service::escalation::escalate_overdue(&db, clock.now()).await {
                Ok(0) => {}
                Ok(count) => {
                    crate::metrics::escalated(count);
                    tracing::info!(count, "escalated overdue reviews");
                }
                Err(error) => tracing::warn!(%error, "could not escalate overdue reviews"),
            }
        }
    });
}

/// Starts the mail loop when a mail server is configured (`outbound::mail`).
fn spawn_mail(state: &AppState) -> std::io::Result<()> {
    let Some(smtp_url) = &state.mail.smtp_url else {
        return Ok(());
    };
    let settings = crate::outbound::mail::MailSettings {
        smtp_url: smtp_url.clone(),
        from: state.mail.from.clone(),
        public_url: state.mail.public_url.clone(),
        digest_hour_utc: state.mail.digest_hour_utc,
        poll_interval: state.mail.poll_interval,
    };
    crate::outbound::mail::spawn(state.db.clone(), state.clock.clone(), &settings)
        .map_err(std::io::Error::other)
}

/// Folds histogram samples into their buckets every
/// [`crate::metrics::UPKEEP_INTERVAL`], so a process nobody scrapes keeps
/// bounded memory.
fn spawn_metrics_upkeep() {
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(crate::metrics::UPKEEP_INTERVAL);
        loop {
            ticks.tick().await;
            crate::metrics::run_upkeep();
        }
    });
}

/// The headers every answer carries. The API serves data, never pages:
/// nothing may sniff, cache, load or frame it.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
        .add((header::REFERRER_POLICY, "no-referrer"))
}

/// Gives every request an id (task-local, so error bodies and logs carry it,
/// and echoed in `x-request-id`), records its duration under the matched
/// route template, and logs one line when it is answered.
async fn request_log(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = new_id();
    let started = Instant::now();
    let (method, path) = (request.method().clone(), request.path().to_owned());
    // The matched template (`/v1/spends/{id}`), never the raw path: one
    // series per route, whatever ids clients send.
    let route = request.match_pattern();
    let mut response = REQUEST_ID
        .scope(request_id.clone(), next.call(request))
        .await?;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    crate::metrics::request_finished(route.as_deref(), method.as_str(), status, elapsed);
    let elapsed_ms = elapsed.as_millis();
    tracing::info!(%request_id, %method, %path, status, elapsed_ms, "request");
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// Starts serving on `listener`. The returned server runs until stopped
/// through its handle; it does not listen for signals itself (the binary
/// runs `shutdown::stop_on_signal` beside it).
pub fn serve(
    state: AppState,
    listener: TcpListener,
    workers: Option<usize>,
) -> std::io::Result<Server> {
    crate::metrics::install();
    spawn_metrics_upkeep();
    spawn_idempotency_purge(state.db.clone(), state.clock.clone());
    spawn_checkpoint_sealer(state.db.clone(), state.clock.clone());
    spawn_escalation(
        state.db.clone(),
        state.clock.clone(),
        state.escalation_interval,
    );
    let delivery = crate::outbound::DeliverySettings {
        allow_private: state.webhooks.allow_private,
        poll_interval: state.webhooks.poll_interval,
        concurrency: state.webhooks.concurrency,
    };
    crate::outbound::spawn(state.db.clone(), state.clock.clone(), &delivery)
        .map_err(std::io::Error::other)?;
    spawn_mail(&state)?;
    let connections_per_worker_max = state.limits.connections_per_worker_max;
    let connections = state.connections.clone();
    let state = web::Data::new(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(BODY_SIZE_MAX)
                    .error_handler(json_error),
            )
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .configure(api::routes)
            .default_service(web::to(api::route_not_found))
            .wrap(from_fn(crate::body::guard))
            // Inside the security headers, so preflight answers carry them too.
            .wrap(from_fn(crate::cors::cors))
            .wrap(security_headers())
            .wrap(from_fn(request_log))
    })
    .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
    .max_connections(connections_per_worker_max)
    .on_connect(move |_, extensions| {
        extensions.insert(connections.open());
    })
    .disable_signals()
    .listen(listener)?;
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    Ok(server.run())
}

/// Starts the metrics-only server on `listener` (`LEEWAY_METRICS_BIND`):
/// `GET /metrics` without a token and nothing else, for a scraper on a
/// network the operator keeps private. Stopped through its handle, like
/// [`serve`]'s.
pub fn serve_metrics(listener: TcpListener) -> std::io::Result<Server> {
    crate::metrics::install();
    let server = HttpServer::new(|| {
        App::new()
            .configure(api::metrics_routes)
            .default_service(web::to(api::route_not_found))
            .wrap(security_headers())
    })
    .workers(METRICS_WORKERS)
    .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
    .disable_signals()
    .listen(listener)?;
    Ok(server.run())
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature actix requires of an error handler"
)]
fn json_error(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let api_error = match &error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge(BODY_SIZE_MAX)
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(cause) if cause.is_data() => {
            ApiError::Validation(vec![FieldError {
                field: "body".to_owned(),
                code: "invalid_field",
                message: api::types::in_json_terms(&cause.to_string()),
            }])
        }
        JsonPayloadError::Deserialize(cause) => {
            ApiError::MalformedJson(format!("the body is not valid JSON: {cause}"))
        }
        _ => ApiError::MalformedJson(format!("the body could not be read: {error}")),
    };
    api_error.into()
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature actix requires of an error handler"
)]
fn query_error(error: QueryPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let cause = match &error {
        QueryPayloadError::Deserialize(cause) => api::types::in_json_terms(&cause.to_string()),
        other => other.to_string(),
    };
    ApiError::InvalidQuery(format!("the query string is not valid: {cause}")).into()
}

fn path_error(_error: PathError, _request: &HttpRequest) -> actix_web::Error {
    ApiError::RouteNotFound.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::idempotency::IDEMPOTENT_REPLAYED_HEADER;
    use crate::cors::EXPOSED_HEADERS;

    #[test]
    fn cors_exposes_the_headers_leeway_sends() {
        assert!(EXPOSED_HEADERS.contains(REQUEST_ID_HEADER));
        assert!(EXPOSED_HEADERS.contains(IDEMPOTENT_REPLAYED_HEADER));
    }
}
