//! The HTTP API: thin handlers and their request/response types, one file
//! per resource. `routes()` below is the whole URL map in one place.

pub mod audit;
pub mod delegations;
pub mod events;
pub mod exports;
pub mod health;
pub mod idempotency;
pub mod metrics;
pub mod people;
pub mod policies;
pub mod problems;
pub mod reports;
pub mod spends;
pub mod streaming;
pub mod teams;
pub mod types;
pub mod webhooks;

use actix_web::web;

use crate::error::ApiError;

/// Declares the URL map once: `routes()` registers it and `ROUTES` lists it,
/// so a test can prove `openapi.yaml` names exactly these routes.
macro_rules! url_map {
    ($($path:literal => { $($method:ident: $handler:path),+ $(,)? })*) => {
        /// Every `(method, path)` the server answers, as `openapi.yaml` spells them.
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),*];

        /// The whole URL map.
        pub fn routes(config: &mut web::ServiceConfig) {
            $(config.service(resource($path, &[$(stringify!($method)),+])$(.route(web::$method().to($handler)))+);)*
        }
    };
}

url_map! {
    "/healthz" => { get: health::healthz }
    "/readyz" => { get: health::readyz }
    "/openapi.yaml" => { get: health::openapi }
    "/metrics" => { get: metrics::scrape }
    "/v1/me" => { get: people::me, patch: people::update_me }
    "/v1/teams" => { post: teams::create, get: teams::list }
    "/v1/teams/{id}" => { get: teams::show, patch: teams::update }
    "/v1/teams/{id}/policy" => { get: policies::show_effective, put: policies::put }
    "/v1/teams/{id}/policy/versions" => { get: policies::versions }
    "/v1/people" => { post: people::create, get: people::list }
    "/v1/people/{id}" => { get: people::show, patch: people::update }
    "/v1/problems" => { post: problems::create, get: problems::list }
    "/v1/problems/{id}" => { get: problems::show, patch: problems::update }
    "/v1/problems/{id}/close" => { post: problems::close }
    "/v1/problems/{id}/acknowledge" => { post: problems::acknowledge }
    "/v1/problems/{id}/limit-changes" => { get: problems::limit_changes }
    "/v1/problems/{id}/spends" => { post: spends::create }
    "/v1/spends" => { get: spends::list }
    "/v1/spends/{id}" => { get: spends::show }
    "/v1/spends/{id}/review" => { post: spends::decide }
    "/v1/spends/{id}/void" => { post: spends::void }
    "/v1/reviews" => { get: spends::queue }
    "/v1/delegations" => { post: delegations::create, get: delegations::list }
    "/v1/delegations/{id}" => { get: delegations::show }
    "/v1/delegations/{id}/revoke" => { post: delegations::revoke }
    "/v1/events" => { get: events::list }
    "/v1/audit/verify" => { get: audit::verify }
    "/v1/exports/spends.csv" => { get: exports::spends_csv }
    "/v1/exports/spends.jsonl" => { get: exports::spends_jsonl }
    "/v1/exports/events.jsonl" => { get: exports::events_jsonl }
    "/v1/exports/journal.beancount" => { get: exports::journal_beancount }
    "/v1/reports/summary" => { get: reports::summary }
    "/v1/webhooks" => { post: webhooks::create, get: webhooks::list }
    "/v1/webhooks/{id}" => { get: webhooks::show, patch: webhooks::update, delete: webhooks::delete }
    "/v1/webhooks/{id}/rotate-secret" => { post: webhooks::rotate_secret }
    "/v1/webhooks/{id}/deliveries" => { get: webhooks::deliveries }
    "/v1/webhooks/{id}/replay" => { post: webhooks::replay }
    "/v1/webhooks/{id}/test" => { post: webhooks::test }
}

/// The URL map of the metrics-only listener (`LEEWAY_METRICS_BIND`): its
/// one route, without a token.
pub fn metrics_routes(config: &mut web::ServiceConfig) {
    config.service(resource("/metrics", &["get"]).route(web::get().to(metrics::scrape_public)));
}

/// A resource whose other methods answer 405 problem+json with the `Allow`
/// header RFC 9110 requires.
fn resource(path: &str, methods: &[&str]) -> actix_web::Resource {
    let allow = methods
        .iter()
        .map(|method| method.to_uppercase())
        .collect::<Vec<_>>()
        .join(", ");
    web::resource(path).default_service(web::to(move || {
        let allow = allow.clone();
        async move { Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed(allow)) }
    }))
}

/// Answers every path no route matches.
pub async fn route_not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}
