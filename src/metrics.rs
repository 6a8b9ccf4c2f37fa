//! Operational metrics in the Prometheus text format: every metric's name,
//! labels and histogram buckets, the one recorder of the process, and the
//! small functions the rest of the server calls to record (one per thing
//! measured). A leaf: it imports nothing from the crate, so any room may
//! record without learning how metrics are kept.
//!
//! The recorder is installed once per process, on first use, behind a
//! `OnceLock`: the `metrics` facade allows one global recorder, and several
//! servers may run in one process (the test suite starts many). Until it is
//! installed, recording is a no-op. Every label has a bounded set of values
//! (route templates, never raw paths; known methods; statuses), so a client
//! cannot grow the number of series.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ::metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Media type of a scrape: the Prometheus text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Histogram: time from a request's arrival to its response, by route
/// template, method and status.
pub const REQUEST_DURATION_SECONDS: &str = "leeway_http_request_duration_seconds";
/// Histogram: time a unit of work waited to check out a pooled connection.
pub const POOL_WAIT_SECONDS: &str = "leeway_db_pool_wait_seconds";
/// Gauge: units of work queued for the writer (SQLite; PostgreSQL with
/// group commit on), not yet committed.
pub const WRITE_QUEUE_DEPTH: &str = "leeway_db_write_queue_depth";
/// Histogram: units of work committed together by one group commit.
pub const COMMIT_BATCH_SIZE: &str = "leeway_db_commit_batch_size";
/// Counter: spends logged (not replays), by outcome.
pub const SPENDS_LOGGED_TOTAL: &str = "leeway_spends_logged_total";
/// Counter: responses replayed for a repeated `Idempotency-Key`.
pub const IDEMPOTENT_REPLAYS_TOTAL: &str = "leeway_idempotent_replays_total";
/// Counter: flagged spends moved up a level because their review SLA passed.
pub const ESCALATIONS_TOTAL: &str = "leeway_escalations_total";
/// Counter: webhook delivery attempts, by result (`delivered`, `failed`).
pub const WEBHOOK_ATTEMPTS_TOTAL: &str = "leeway_webhook_attempts_total";

/// The `route` label of a request no route matched: one series for every
/// unknown path, so scanning for paths cannot add series.
pub const ROUTE_UNMATCHED: &str = "unmatched";
/// The `method` label of a method the API never serves (actix accepts any
/// token as a method; each would otherwise be a series of its own).
pub const METHOD_OTHER: &str = "other";
/// The methods that keep their own `method` label.
pub const METHODS_LABELLED: [&str; 7] =
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Upper bounds of the request-duration buckets, in seconds: from a
/// cached-in-memory answer (1 ms) to a request stuck behind the statement
/// timeout's default (30 s).
pub const REQUEST_DURATION_BUCKETS_SECONDS: [f64; 14] = [
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Upper bounds of the pool-wait buckets, in seconds: an idle pool answers
/// in microseconds; the longest configurable checkout timeout is 60 s.
pub const POOL_WAIT_BUCKETS_SECONDS: [f64; 12] = [
    0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 60.0,
];
/// Upper bounds of the commit-batch buckets, in units of work per commit.
pub const COMMIT_BATCH_SIZE_BUCKETS: [f64; 10] =
    [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// How often histogram samples are folded into their buckets between
/// scrapes, so memory stays bounded when nobody scrapes.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// How a logged spend came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendOutcome {
    /// Inside the budget: approved on the spot.
    Approved,
    /// Over a limit: waiting for review.
    Flagged,
}

impl SpendOutcome {
    /// The `outcome` label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Flagged => "flagged",
        }
    }
}

/// Installs the process's recorder if no server has yet; later calls do
/// nothing.
pub fn install() {
    handle();
}

/// The current value of every metric, in the Prometheus text format.
#[must_use]
pub fn render() -> String {
    handle().render()
}

/// Folds recorded histogram samples into their buckets (see [`UPKEEP_INTERVAL`]).
pub fn run_upkeep() {
    handle().run_upkeep();
}

/// Records one answered request. `route` is the matched route template
/// (`/v1/problems/{id}/spends`), `None` when no route matched.
pub fn request_finished(route: Option<&str>, method: &str, status: u16, duration: Duration) {
    let route = route.unwrap_or(ROUTE_UNMATCHED).to_owned();
    histogram!(
        REQUEST_DURATION_SECONDS,
        "route" => route,
        "method" => method_label(method),
        "status" => status.to_string()
    )
    .record(duration.as_secs_f64());
}

/// The `method` label of a request method: itself when the API knows it,
/// [`METHOD_OTHER`] otherwise.
fn method_label(method: &str) -> &'static str {
    METHODS_LABELLED
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or(METHOD_OTHER)
}

/// Records how long a unit of work waited for a pooled connection.
pub fn pool_wait(duration: Duration) {
    histogram!(POOL_WAIT_SECONDS).record(duration.as_secs_f64());
}

/// Runs `checkout` (a pool's `get`) and records how long it took, whether
/// it found a connection or timed out.
pub fn measure_pool_wait<T>(checkout: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let connection = checkout();
    pool_wait(started.elapsed());
    connection
}

/// Sets how many units of work wait for the writer right now.
pub fn write_queue_depth(depth: usize) {
    gauge!(WRITE_QUEUE_DEPTH).set(count_as_f64(depth));
}

/// Records one group commit of `size` units of work.
pub fn commit_batch(size: usize) {
    histogram!(COMMIT_BATCH_SIZE).record(count_as_f64(size));
}

/// Counts one newly logged (committed, not replayed) spend.
pub fn spend_logged(outcome: SpendOutcome) {
    counter!(SPENDS_LOGGED_TOTAL, "outcome" => outcome.as_str()).increment(1);
}

/// Counts one response replayed for a repeated `Idempotency-Key`.
pub fn idempotent_replay() {
    counter!(IDEMPOTENT_REPLAYS_TOTAL).increment(1);
}

/// Counts `count` spends escalated by one run of the escalation task.
pub fn escalated(count: usize) {
    counter!(ESCALATIONS_TOTAL).increment(u64::try_from(count).unwrap_or(u64::MAX));
}

/// Counts one webhook delivery attempt: delivered (a 2xx) or failed.
pub fn webhook_attempt(delivered: bool) {
    let result = if delivered { "delivered" } else { "failed" };
    counter!(WEBHOOK_ATTEMPTS_TOTAL, "result" => result).increment(1);
}

/// A count as a metric value. Queues and batches are far below 2^52, where
/// `f64` stops holding every integer.
#[expect(
    clippy::cast_precision_loss,
    reason = "counts of queued units stay far below 2^52"
)]
fn count_as_f64(count: usize) -> f64 {
    count as f64
}

/// The process's recorder handle, installing the recorder the first time.
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = builder().unwrap_or_else(|error| {
            // Only an empty bucket list fails, and the constants are not
            // empty (a unit test holds them to it): summaries are the fallback.
            tracing::error!(%error, "metric buckets refused; histograms render as summaries");
            PrometheusBuilder::new()
        });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(error) = ::metrics::set_global_recorder(recorder) {
            tracing::error!(%error, "another metrics recorder is installed; /metrics stays empty");
        }
        describe();
        handle
    })
}

/// The builder with every histogram's explicit buckets: real Prometheus
/// histograms, which aggregate across processes, instead of summaries.
fn builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(REQUEST_DURATION_SECONDS.to_owned()),
            &REQUEST_DURATION_BUCKETS_SECONDS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(POOL_WAIT_SECONDS.to_owned()),
            &POOL_WAIT_BUCKETS_SECONDS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(COMMIT_BATCH_SIZE.to_owned()),
            &COMMIT_BATCH_SIZE_BUCKETS,
        )
}

/// Writes every metric's HELP text and registers the series known in
/// advance at zero, so a scrape shows them before anything has happened
/// (a counter that appears only at its first increment loses that first
/// increase to `rate()`).
fn describe() {
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from a request's arrival to its response, by route template, method and status."
    );
    describe_histogram!(
        POOL_WAIT_SECONDS,
        Unit::Seconds,
        "Time a unit of work waited to check out a pooled database connection."
    );
    describe_gauge!(
        WRITE_QUEUE_DEPTH,
        Unit::Count,
        "Units of work queued for the SQLite writer and not yet committed."
    );
    describe_histogram!(
        COMMIT_BATCH_SIZE,
        Unit::Count,
        "Units of work committed together by one group commit."
    );
    describe_counter!(
        SPENDS_LOGGED_TOTAL,
        Unit::Count,
        "Spends logged, by outcome: approved on the spot or flagged for review."
    );
    describe_counter!(
        IDEMPOTENT_REPLAYS_TOTAL,
        Unit::Count,
        "Responses replayed for a repeated Idempotency-Key."
    );
    describe_counter!(
        ESCALATIONS_TOTAL,
        Unit::Count,
        "Flagged spends moved up a level because their review SLA passed."
    );
    describe_counter!(
        WEBHOOK_ATTEMPTS_TOTAL,
        Unit::Count,
        "Webhook delivery attempts, by result: delivered (a 2xx) or failed."
    );
    // Registering a histogram is enough to render it with empty buckets.
    let _ = histogram!(POOL_WAIT_SECONDS);
    let _ = histogram!(COMMIT_BATCH_SIZE);
    gauge!(WRITE_QUEUE_DEPTH).set(0.0);
    for outcome in [SpendOutcome::Approved, SpendOutcome::Flagged] {
        counter!(SPENDS_LOGGED_TOTAL, "outcome" => outcome.as_str()).absolute(0);
    }
    counter!(IDEMPOTENT_REPLAYS_TOTAL).absolute(0);
    counter!(ESCALATIONS_TOTAL).absolute(0);
    for result in ["delivered", "failed"] {
        counter!(WEBHOOK_ATTEMPTS_TOTAL, "result" => result).absolute(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `record` leaves in a fresh recorder of its own, rendered: the
    /// process's global recorder is shared by every test.
    fn rendered_alone(record: impl FnOnce()) -> String {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        ::metrics::with_local_recorder(&recorder, record);
        handle.render()
    }

    #[test]
    fn requests_are_labelled_by_route_template_method_and_status() {
        let text = rendered_alone(|| {
            request_finished(
                Some("/v1/problems/{id}/spends"),
                "POST",
                201,
                Duration::from_millis(3),
            );
            request_finished(None, "BREW", 404, Duration::from_millis(1));
        });
        assert!(text.contains(
            r#"leeway_http_request_duration_seconds_bucket{route="/v1/problems/{id}/spends",method="POST",status="201",le="0.005"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"leeway_http_request_duration_seconds_count{route="unmatched",method="other",status="404"} 1"#
        ), "{text}");
        assert!(
            text.contains("# TYPE leeway_http_request_duration_seconds histogram"),
            "{text}"
        );
    }

    #[test]
    fn the_write_path_series_render_with_their_buckets() {
        let text = rendered_alone(|| {
            write_queue_depth(3);
            commit_batch(5);
            pool_wait(Duration::from_micros(50));
            spend_logged(SpendOutcome::Flagged);
            idempotent_replay();
            escalated(2);
        });
        for line in [
            "leeway_db_write_queue_depth 3",
            r#"leeway_db_commit_batch_size_bucket{le="4"} 0"#,
            r#"leeway_db_commit_batch_size_bucket{le="8"} 1"#,
            r#"leeway_db_pool_wait_seconds_bucket{le="0.0001"} 1"#,
            r#"leeway_spends_logged_total{outcome="flagged"} 1"#,
            "leeway_idempotent_replays_total 1",
            "leeway_escalations_total 2",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("BREW"), METHOD_OTHER);
        assert_eq!(method_label("get"), METHOD_OTHER);
    }

    #[test]
    fn the_pool_wait_is_measured_around_the_checkout() {
        let text = rendered_alone(|| {
            let answer = measure_pool_wait(|| {
                std::thread::sleep(Duration::from_millis(2));
                42
            });
            assert_eq!(answer, 42);
        });
        assert!(
            text.contains(r#"leeway_db_pool_wait_seconds_bucket{le="0.001"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"leeway_db_pool_wait_seconds_bucket{le="0.005"} 1"#),
            "{text}"
        );
    }
}
