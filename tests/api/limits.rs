//! Limits on what one client may consume: JSON depth, body read time,
//! connections, the database pool, and each caller's request rate. Each test
//! sets a tiny limit on its own server; the defaults are generous enough
//! that the rest of the suite never meets them.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use leeway::config::Config;
use leeway::rate_limit::RateLimit;
use reqwest::Method;
use serde_json::{Value, json};

use crate::configured_backend_tests;
use crate::helpers::{ADMIN, TestApp, raw_response, read};

fn connect(base_url: &str) -> TcpStream {
    TcpStream::connect(base_url.trim_start_matches("http://")).unwrap()
}

/// Runs raw blocking socket work off the test's runtime, which the server
/// shares.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    actix_web::rt::task::spawn_blocking(work).await.unwrap()
}

fn tiny_body_read_timeout(config: &mut Config) {
    config.limits.body_read_timeout = Duration::from_millis(300);
}

fn two_connections(config: &mut Config) {
    config.workers = Some(1);
    config.limits.connections_per_worker_max = 2;
}

fn one_pooled_connection(config: &mut Config) {
    config.limits.pool.size = Some(1);
    config.limits.pool.checkout_timeout = Duration::from_millis(200);
}

fn three_requests_then_one_a_second(config: &mut Config) {
    config.limits.rate_limit = RateLimit {
        per_second: 1,
        burst: 3,
    };
}

crate::backend_tests! {
    async fn bodies_nested_too_deep_are_refused_before_parsing(app: TestApp) {
        let nested = |depth: usize| -> Value {
            let mut value = json!("leaf");
            for _ in 0..depth {
                value = json!([value]);
            }
            value
        };
        // The body object is one level; 15 more make the deepest body accepted.
        let shallow = app.post(ADMIN, "/v1/teams", &json!({"name": "Deep", "extra": nested(15)})).await;
        shallow.assert_problem(422, "validation_failed");
        let deep = app.post(ADMIN, "/v1/teams", &json!({"name": "Deep", "extra": nested(16)})).await;
        deep.assert_problem(400, "json_too_deep");
        let hostile = "[".repeat(100_000);
        let response = app
            .client
            .post(format!("{}/v1/teams", app.base_url))
            .bearer_auth(app.token(ADMIN))
            .header("content-type", "application/json")
            .body(hostile[..60_000].to_owned())
            .send()
            .await
            .unwrap();
        read(response).await.assert_problem(400, "json_too_deep");
        assert_eq!(app.get(ADMIN, "/v1/teams").await.body["items"], json!([]));
    }
}

configured_backend_tests!(tiny_body_read_timeout => a_slow_body_is_cut_off_with_408);

async fn a_slow_body_is_cut_off_with_408(app: TestApp) {
    let (base_url, token) = (app.base_url.clone(), app.token(ADMIN));
    blocking(move || {
        let mut stream = connect(&base_url);
        let head = format!(
            "POST /v1/teams HTTP/1.1\r\nHost: leeway\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{{\"name\":"
        );
        stream.write_all(head.as_bytes()).unwrap();
        let started = Instant::now();
        let response = raw_response(&mut stream, Duration::from_secs(10)).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(response.starts_with("HTTP/1.1 408"), "{response}");
        assert!(
            response
                .to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{response}"
        );
        assert!(
            response.contains("\"code\":\"request_timeout\""),
            "{response}"
        );
        // A body sent in time, even in pieces, is read as usual.
        let mut stream = connect(&base_url);
        let body = r#"{"name": "Slow but steady"}"#;
        let head = format!(
            "POST /v1/teams HTTP/1.1\r\nHost: leeway\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body.as_bytes()[..10]).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        stream.write_all(&body.as_bytes()[10..]).unwrap();
        let response = raw_response(&mut stream, Duration::from_secs(10)).unwrap();
        assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    })
    .await;
}

configured_backend_tests!(two_connections => connections_past_the_maximum_wait_for_a_free_one);

async fn connections_past_the_maximum_wait_for_a_free_one(app: TestApp) {
    let base_url = app.base_url.clone();
    blocking(move || {
        let request = b"GET /healthz HTTP/1.1\r\nHost: leeway\r\n\r\n";
        let open = |base_url: &str| {
            let mut stream = connect(base_url);
            stream.write_all(request).unwrap();
            let answer = raw_response(&mut stream, Duration::from_secs(10)).unwrap();
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            stream
        };
        // Two connections stay open (keep-alive): a third is not served...
        let (first, second) = (open(&base_url), open(&base_url));
        let mut third = connect(&base_url);
        third.write_all(request).unwrap();
        assert_eq!(raw_response(&mut third, Duration::from_millis(500)), None);
        // ...until they close (actix-server resumes accepting only once the
        // count drops two below the limit: actix/actix-web#2703).
        drop((first, second));
        let answer = raw_response(&mut third, Duration::from_secs(10)).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    })
    .await;
}

configured_backend_tests!(one_pooled_connection => an_exhausted_pool_answers_503_with_retry_after);

async fn an_exhausted_pool_answers_503_with_retry_after(app: TestApp) {
    // Hold the pool's only connection, long past the checkout timeout.
    let db = app.db.clone();
    let held = Arc::new(AtomicBool::new(false));
    let holding = Arc::clone(&held);
    let holder = actix_web::rt::spawn(async move {
        db.read(move |_connection| {
            holding.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(2));
            Ok::<_, leeway::db::Error>(())
        })
        .await
    });
    while !held.load(Ordering::SeqCst) {
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let response = app.get(ADMIN, "/v1/me").await;
    response.assert_problem(503, "service_unavailable");
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    // The configured 200 ms, not the default 5 s (with room for a slow machine).
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let healthy = app.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(healthy.status, 200);
    holder.await.unwrap().unwrap();
    assert_eq!(app.get(ADMIN, "/v1/me").await.status, 200);
}

configured_backend_tests!(three_requests_then_one_a_second => each_caller_is_rate_limited_on_their_own);

async fn each_caller_is_rate_limited_on_their_own(app: TestApp) {
    for _ in 0..3 {
        assert_eq!(app.get(ADMIN, "/v1/me").await.status, 200);
    }
    // The burst is spent: the next request is refused, unless the machine is
    // so slow that a second passed and earned one more (then the one after).
    let mut limited = app.get(ADMIN, "/v1/me").await;
    for _ in 0..3 {
        if limited.status != 200 {
            break;
        }
        limited = app.get(ADMIN, "/v1/me").await;
    }
    limited.assert_problem(429, "rate_limited");
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(limited.header("x-content-type-options"), Some("nosniff"));
    // Another subject has its own allowance (this one has no person: 401,
    // not 429), and routes without a token are not limited.
    for _ in 0..3 {
        app.get("ghost", "/v1/me")
            .await
            .assert_problem(401, "unauthenticated");
    }
    for _ in 0..5 {
        assert_eq!(
            app.send(Method::GET, "/healthz", None, None).await.status,
            200
        );
    }
    // The wait Retry-After names is enough.
    actix_web::rt::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(app.get(ADMIN, "/v1/me").await.status, 200);
}

/// Every limit is a setting with a `LEEWAY_*` variable and a bounded range.
#[test]
fn limits_are_read_from_the_command_line() {
    use clap::Parser;
    let cli = leeway::config::Cli::try_parse_from([
        "leeway",
        "--jwt-secret",
        crate::helpers::TEST_SECRET,
        "--body-read-timeout-ms",
        "2500",
        "--max-connections",
        "64",
        "--db-pool-size",
        "3",
        "--db-pool-timeout-ms",
        "750",
        "--db-statement-timeout-ms",
        "1500",
        "--rate-limit-per-second",
        "7",
        "--rate-limit-burst",
        "9",
    ])
    .unwrap();
    let limits = leeway::config::Config::resolve(&cli.settings)
        .unwrap()
        .limits;
    assert_eq!(limits.body_read_timeout, Duration::from_millis(2_500));
    assert_eq!(limits.connections_per_worker_max, 64);
    assert_eq!(limits.pool.size, Some(3));
    assert_eq!(limits.pool.checkout_timeout, Duration::from_millis(750));
    assert_eq!(limits.pool.statement_timeout, Duration::from_millis(1_500));
    assert_eq!(
        limits.rate_limit,
        RateLimit {
            per_second: 7,
            burst: 9
        }
    );
    for refused in [
        ["--db-pool-size", "0"],
        ["--db-pool-size", "1000"],
        ["--rate-limit-per-second", "0"],
        ["--max-connections", "1"],
        ["--db-pool-timeout-ms", "600000"],
        ["--db-statement-timeout-ms", "0"],
        ["--db-statement-timeout-ms", "3600001"],
    ] {
        let mut args = vec!["leeway"];
        args.extend(refused);
        assert!(
            leeway::config::Cli::try_parse_from(args).is_err(),
            "{refused:?}"
        );
    }
}

fn half_second_statements(config: &mut Config) {
    config.limits.pool.statement_timeout = Duration::from_millis(500);
}

configured_backend_tests!(half_second_statements => a_statement_stuck_on_a_lock_answers_503_and_writes_nothing);

/// Another session holds a lock the spend needs (PostgreSQL: the problem's
/// row; SQLite: the write lock) for longer than the statement timeout: the
/// request answers 503 with `Retry-After` instead of hanging, writes
/// nothing, and the same spend succeeds once the lock is gone.
async fn a_statement_stuck_on_a_lock_answers_503_and_writes_nothing(app: TestApp) {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection, SqliteConnection};

    app.org().await;
    let problem = app.open_problem("sam", "Locked").await;
    let lock: Box<dyn SimpleConnection> = if crate::audit::is_postgres(&app) {
        let mut holder = PgConnection::establish(&app.database_url).unwrap();
        holder
            .batch_execute(&format!(
                "BEGIN; SELECT id FROM problems WHERE id = '{problem}' FOR UPDATE"
            ))
            .unwrap();
        Box::new(holder)
    } else {
        let mut holder = SqliteConnection::establish(&app.database_url).unwrap();
        holder.batch_execute("BEGIN IMMEDIATE").unwrap();
        Box::new(holder)
    };
    let mut lock = lock;
    let started = Instant::now();
    let stuck = app.spend("sam", &problem, "10.00").await;
    let waited = started.elapsed();
    stuck.assert_problem(503, "service_unavailable");
    assert!(stuck.header("retry-after").is_some(), "{:?}", stuck.headers);
    assert!(
        waited < Duration::from_secs(10),
        "answered after {waited:?}: a hang"
    );
    lock.batch_execute("ROLLBACK").unwrap();
    let spends = app
        .get("sam", &format!("/v1/spends?problem_id={problem}"))
        .await;
    assert_eq!(
        spends.body["items"],
        json!([]),
        "the stuck spend wrote nothing"
    );
    let logged = app.spend("sam", &problem, "10.00").await;
    assert_eq!(logged.status, 201, "{}", logged.body);
}
