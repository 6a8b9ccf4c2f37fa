//! `GET /metrics`: who may scrape it, what it shows, and that the series
//! move when the server does the things they count. Every test server of
//! this binary shares one process and so one recorder: a test compares a
//! series before and after what it caused (other tests only ever add to
//! it) and never expects an exact count.

use std::net::TcpListener;
use std::time::Duration;

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{ADMIN, TestApp, spend_body};
use crate::{backend_tests, configured_backend_tests};

/// How long a test waits for a background task to show in the metrics.
const SERIES_WAIT: Duration = Duration::from_secs(10);
/// Pause between two scrapes while waiting.
const SCRAPE_INTERVAL: Duration = Duration::from_millis(100);

/// Every metric the server describes, with its Prometheus type.
const METRICS: [(&str, &str); 7] = [
    ("leeway_http_request_duration_seconds", "histogram"),
    ("leeway_db_pool_wait_seconds", "histogram"),
    ("leeway_db_write_queue_depth", "gauge"),
    ("leeway_db_commit_batch_size", "histogram"),
    ("leeway_spends_logged_total", "counter"),
    ("leeway_idempotent_replays_total", "counter"),
    ("leeway_escalations_total", "counter"),
];

/// The metrics as the admin reads them.
async fn scrape(app: &TestApp) -> String {
    let response = app.get(ADMIN, "/metrics").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    response.body.as_str().unwrap().to_owned()
}

/// The value of one series (`name{labels}` exactly as rendered), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}

/// Scrapes until `series` has grown by at least `by` from `before`.
async fn wait_for_increase(app: &TestApp, series: &str, before: f64, by: f64) -> f64 {
    let deadline = std::time::Instant::now() + SERIES_WAIT;
    loop {
        let now = value(&scrape(app).await, series);
        if now >= before + by {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{series} stayed at {now}, expected at least {}",
            before + by
        );
        actix_web::rt::time::sleep(SCRAPE_INTERVAL).await;
    }
}

const APPROVED: &str = r#"leeway_spends_logged_total{outcome="approved"}"#;
const FLAGGED: &str = r#"leeway_spends_logged_total{outcome="flagged"}"#;
const REPLAYS: &str = "leeway_idempotent_replays_total";
const ESCALATIONS: &str = "leeway_escalations_total";
const POOL_WAITS: &str = "leeway_db_pool_wait_seconds_count";

backend_tests! {
    async fn metrics_need_an_admin_token_unless_public(app: TestApp) {
        app.send(Method::GET, "/metrics", None, None).await.assert_problem(401, "unauthenticated");
        let response = app
            .send_with(Method::GET, "/metrics", None, None, &[("authorization", "Bearer not-a-token")])
            .await;
        response.assert_problem(401, "unauthenticated");
        app.org().await;
        for subject in ["fin", "mia", "sam"] {
            app.get(subject, "/metrics").await.assert_problem(403, "forbidden");
        }
    }

    async fn an_admin_reads_every_series_with_its_help_and_type(app: TestApp) {
        assert_eq!(app.send(Method::GET, "/healthz", None, None).await.status, 200);
        let text = scrape(&app).await;
        for (name, kind) in METRICS {
            assert!(text.contains(&format!("# HELP {name} ")), "no HELP for {name} in:\n{text}");
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "no TYPE {kind} for {name} in:\n{text}");
        }
        for series in [APPROVED, FLAGGED, REPLAYS, ESCALATIONS, "leeway_db_write_queue_depth", POOL_WAITS] {
            assert!(text.lines().any(|line| line.starts_with(&format!("{series} "))), "no {series} in:\n{text}");
        }
        assert!(
            text.contains(r#"leeway_http_request_duration_seconds_bucket{route="/healthz",method="GET",status="200",le="0.005"}"#),
            "{text}"
        );
        assert!(text.contains(r#"leeway_db_commit_batch_size_bucket{le="1"}"#), "{text}");
        // Checking the admin's token took a pooled connection after the first scrape.
        let pool_waits = value(&text, POOL_WAITS);
        assert!(value(&scrape(&app).await, POOL_WAITS) > pool_waits);
    }

    async fn logged_spends_are_counted_by_outcome_and_replays_on_their_own(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Printer").await;
        let before = scrape(&app).await;
        let approved = app.spend("sam", &problem, "350.00").await;
        assert_eq!(approved.body["status"], "approved", "{}", approved.body);
        let flagged = app.spend("sam", &problem, "120.00").await;
        assert_eq!(flagged.body["status"], "pending_review", "{}", flagged.body);
        let after = scrape(&app).await;
        assert!(value(&after, APPROVED) >= value(&before, APPROVED) + 1.0, "{after}");
        assert!(value(&after, FLAGGED) >= value(&before, FLAGGED) + 1.0, "{after}");

        let path = format!("/v1/problems/{problem}/spends");
        let key = [("idempotency-key", "printer-toner")];
        let first = app.send_with(Method::POST, &path, Some("sam"), Some(&spend_body("5.00")), &key).await;
        assert_eq!(first.status, 201, "{}", first.body);
        let before_replay = scrape(&app).await;
        let replay = app.send_with(Method::POST, &path, Some("sam"), Some(&spend_body("5.00")), &key).await;
        assert_eq!(replay.header("idempotent-replayed"), Some("true"));
        let after_replay = scrape(&app).await;
        assert!(value(&after_replay, REPLAYS) >= value(&before_replay, REPLAYS) + 1.0, "{after_replay}");
    }

    async fn requests_are_timed_by_route_template_never_by_raw_path(app: TestApp) {
        let id = "01936d5e-0000-7000-8000-00000000beef";
        let series = r#"leeway_http_request_duration_seconds_count{route="/v1/spends/{id}",method="GET",status="404"}"#;
        let unmatched = r#"leeway_http_request_duration_seconds_count{route="unmatched",method="GET",status="404"}"#;
        let before = scrape(&app).await;
        app.get(ADMIN, &format!("/v1/spends/{id}")).await.assert_problem(404, "not_found");
        app.get(ADMIN, &format!("/no/such/route/{id}")).await.assert_problem(404, "not_found");
        let after = scrape(&app).await;
        assert!(value(&after, series) >= value(&before, series) + 1.0, "{after}");
        assert!(value(&after, unmatched) >= value(&before, unmatched) + 1.0, "{after}");
        assert!(!after.contains(id), "a raw path reached a label:\n{after}");
        assert!(!after.contains("/no/such/route"), "a raw path reached a label:\n{after}");
    }

    async fn overdue_reviews_count_as_escalations(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Roof").await;
        let flagged = app.spend("sam", &problem, "450.00").await;
        assert_eq!(flagged.body["status"], "pending_review", "{}", flagged.body);
        let before = value(&scrape(&app).await, ESCALATIONS);
        app.clock.advance(TimeDelta::hours(25));
        // The counter is one per process and other tests escalate too, so
        // first wait for this spend to move, then for the count it adds.
        let path = format!("/v1/spends/{}", flagged.id());
        let deadline = std::time::Instant::now() + SERIES_WAIT;
        loop {
            let spend = app.get(ADMIN, &path).await;
            if spend.body["reviewer_id"] == json!(null) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never escalated: {}", spend.body);
            actix_web::rt::time::sleep(SCRAPE_INTERVAL).await;
        }
        wait_for_increase(&app, ESCALATIONS, before, 1.0).await;
    }
}

fn public_metrics(config: &mut leeway::config::Config) {
    config.metrics_public = true;
}

configured_backend_tests!(public_metrics => public_metrics_need_no_token);

async fn public_metrics_need_no_token(app: TestApp) {
    let anonymous = app.send(Method::GET, "/metrics", None, None).await;
    assert_eq!(anonymous.status, 200, "{}", anonymous.body);
    assert!(
        anonymous
            .body
            .as_str()
            .unwrap()
            .contains("# TYPE leeway_spends_logged_total counter")
    );
    // A sent token is not even read: a bad one is no reason to refuse.
    let response = app
        .send_with(
            Method::GET,
            "/metrics",
            None,
            None,
            &[("authorization", "Bearer not-a-token")],
        )
        .await;
    assert_eq!(response.status, 200);
    // The rest of the API still wants a token.
    app.send(Method::GET, "/v1/me", None, None)
        .await
        .assert_problem(401, "unauthenticated");
}

#[actix_web::test]
async fn the_metrics_listener_serves_metrics_alone_without_a_token() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let server = leeway::app::serve_metrics(listener).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let client = reqwest::Client::new();
    let metrics = client
        .get(format!("{base_url}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert_eq!(
        metrics.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("# TYPE leeway_escalations_total counter")
    );
    for path in ["/v1/me", "/healthz", "/openapi.yaml"] {
        let response = client
            .get(format!("{base_url}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let post = client
        .post(format!("{base_url}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    handle.stop(false).await;
}
