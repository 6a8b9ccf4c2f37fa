//! `Idempotency-Key` on retried POSTs: replay, reuse with another body, in flight.

use diesel::prelude::*;
use futures_util::future::join_all;
use leeway::db::schema::idempotency_keys;
use reqwest::Method;
use serde_json::json;

use crate::helpers::TestApp;
use crate::helpers::spend_body;
use crate::{backend_tests, configured_backend_tests};

/// Requests sent at once in the concurrency tests.
const DUPLICATES: usize = 8;

backend_tests! {
    async fn a_retried_spend_is_logged_once(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Mobile form").await;
        let path = format!("/v1/problems/{problem}/spends");
        let body = spend_body("120.00");
        let key = [("idempotency-key", "\"retry-1\"")];
        let first = app.send_with(Method::POST, &path, Some("sam"), Some(&body), &key).await;
        assert_eq!(first.status, 201, "{}", first.body);
        assert_eq!(first.header("idempotent-replayed"), None);
        let second = app.send_with(Method::POST, &path, Some("sam"), Some(&body), &key).await;
        assert_eq!(second.status, 201);
        assert_eq!(second.body, first.body);
        assert_eq!(second.header("idempotent-replayed"), Some("true"));
        let spends = app.get("sam", &format!("/v1/spends?problem_id={problem}")).await;
        assert_eq!(spends.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(app.get("sam", &format!("/v1/problems/{problem}")).await.body["approved"]["amount"], "120.00");
        // Same key, other body: refused, nothing logged.
        let other = app.send_with(Method::POST, &path, Some("sam"), Some(&spend_body("99.00")), &key).await;
        other.assert_problem(422, "idempotency_key_reused");
        // Keys are scoped to the caller: Mia's "retry-1" is a different key.
        let mias = app.send_with(Method::POST, &path, Some("mia"), Some(&body), &key).await;
        assert_eq!(mias.status, 201);
        assert_ne!(mias.id(), first.id());
        assert_eq!(app.get("sam", &format!("/v1/spends?problem_id={problem}")).await.body["items"].as_array().unwrap().len(), 2);
    }

    async fn a_retry_while_the_first_is_in_flight_is_409(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Flaky network").await;
        let path = format!("/v1/problems/{problem}/spends");
        let body = spend_body("10.00");
        let done = app.send_with(Method::POST, &path, Some("sam"), Some(&body), &[("idempotency-key", "k-done")]).await;
        assert_eq!(done.status, 201);
        // Simulate a first request still running under key "k-running" for the same body.
        let fingerprint: String = app
            .db
            .write_blocking(|connection| {
                Ok::<_, leeway::db::Error>(idempotency_keys::table
                    .filter(idempotency_keys::idempotency_key.eq("k-done"))
                    .select(idempotency_keys::request_fingerprint)
                    .first(connection)?)
            })
            .unwrap();
        app.execute_sql(&format!(
            "INSERT INTO idempotency_keys (caller_id, idempotency_key, request_fingerprint, state, created_at, locked_at) \
             SELECT caller_id, 'k-running', '{fingerprint}', 'in_flight', created_at, locked_at FROM idempotency_keys WHERE idempotency_key = 'k-done'"
        ));
        let retry = app.send_with(Method::POST, &path, Some("sam"), Some(&body), &[("idempotency-key", "k-running")]).await;
        retry.assert_problem(409, "idempotency_key_in_flight");
        assert_eq!(app.get("sam", &format!("/v1/spends?problem_id={problem}")).await.body["items"].as_array().unwrap().len(), 1);
        app.send_with(Method::POST, &path, Some("sam"), Some(&body), &[("idempotency-key", "")]).await.assert_problem(422, "validation_failed");
    }

    async fn a_failed_request_releases_its_key(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Closed soon").await;
        let path = format!("/v1/problems/{problem}/spends");
        app.post("sam", &format!("/v1/problems/{problem}/close"), &json!({})).await;
        let key = [("idempotency-key", "after-close")];
        let first = app.send_with(Method::POST, &path, Some("sam"), Some(&spend_body("1.00")), &key).await;
        first.assert_problem(409, "problem_closed");
        let again = app.send_with(Method::POST, &path, Some("sam"), Some(&spend_body("1.00")), &key).await;
        again.assert_problem(409, "problem_closed");
    }

    async fn problems_and_reviews_honour_keys_too(app: TestApp) {
        app.org().await;
        let body = json!({"title": "Once", "success_criteria": "Only one"});
        let key = [("idempotency-key", "open-once")];
        let first = app.send_with(Method::POST, "/v1/problems", Some("sam"), Some(&body), &key).await;
        let second = app.send_with(Method::POST, "/v1/problems", Some("sam"), Some(&body), &key).await;
        assert_eq!((first.status, second.status), (201, 201));
        assert_eq!(first.id(), second.id());
        assert_eq!(app.get("sam", "/v1/problems").await.body["items"].as_array().unwrap().len(), 1);
        let spend = app.spend("sam", &first.id(), "999.00").await.id();
        let review = json!({"decision": "approve", "note": "fine"});
        let path = format!("/v1/spends/{spend}/review");
        let key = [("idempotency-key", "decide-once")];
        let decided = app.send_with(Method::POST, &path, Some("mia"), Some(&review), &key).await;
        let replayed = app.send_with(Method::POST, &path, Some("mia"), Some(&review), &key).await;
        assert_eq!((decided.status, replayed.status), (200, 200));
        assert_eq!(decided.body, replayed.body);
        // Without the key the second decision is a conflict.
        app.post("mia", &path, &review).await.assert_problem(409, "already_decided");
    }

    async fn expired_keys_are_purged_and_then_free(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Old key").await;
        let path = format!("/v1/problems/{problem}/spends");
        let key = [("idempotency-key", "yesterday")];
        assert_eq!(app.send_with(Method::POST, &path, Some("sam"), Some(&spend_body("1.00")), &key).await.status, 201);
        app.execute_sql("UPDATE idempotency_keys SET created_at = '2000-01-01 00:00:00'");
        let purged = app.db.write_blocking(|connection| leeway::db::idempotency::purge_expired(connection, leeway::clock::Clock::system().now())).unwrap();
        assert_eq!(purged, 1);
        // An expired key is a new key: the request runs again.
        let again = app.send_with(Method::POST, &path, Some("sam"), Some(&spend_body("1.00")), &key).await;
        assert_eq!(again.status, 201);
        assert_eq!(again.header("idempotent-replayed"), None);
        assert_eq!(app.get("sam", &format!("/v1/spends?problem_id={problem}")).await.body["items"].as_array().unwrap().len(), 2);
    }
}

/// Identical keyed spends sent at once: nobody is told "in flight"; a
/// duplicate waits for the first (PostgreSQL) or runs after it (the
/// writer), then replays.
async fn duplicates_sent_at_once_make_one_spend_and_all_get_its_answer(app: TestApp) {
    app.org().await;
    let problem = app.open_problem("sam", "Double tap").await;
    let path = format!("/v1/problems/{problem}/spends");
    let body = spend_body("42.00");
    let key = [("idempotency-key", "double-tap")];
    let answers = join_all(
        (0..DUPLICATES).map(|_| app.send_with(Method::POST, &path, Some("sam"), Some(&body), &key)),
    )
    .await;
    for answer in &answers {
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert_eq!(answer.body, answers[0].body);
    }
    let replayed = answers
        .iter()
        .filter(|answer| answer.header("idempotent-replayed") == Some("true"))
        .count();
    assert_eq!(replayed, DUPLICATES - 1);
    let spends = app
        .get("sam", &format!("/v1/spends?problem_id={problem}"))
        .await;
    assert_eq!(spends.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get("sam", &format!("/v1/problems/{problem}"))
            .await
            .body["approved"]["amount"],
        "42.00"
    );
}

/// Good and refused spends sent at once, so the writer commits them in
/// shared batches: every refusal undoes only its own work (its idempotency
/// claim included), never a neighbour's.
async fn refused_spends_beside_good_ones_roll_back_alone(app: TestApp) {
    app.org().await;
    let open = app.open_problem("sam", "Still open").await;
    let closed = app.open_problem("sam", "Closed early").await;
    app.post("sam", &format!("/v1/problems/{closed}/close"), &json!({}))
        .await;
    let app = &app;
    let answers = join_all((0..DUPLICATES * 2).map(|n| {
        let problem = if n % 2 == 0 { &open } else { &closed };
        let path = format!("/v1/problems/{problem}/spends");
        let key = format!("mixed-{n}");
        async move {
            app.send_with(
                Method::POST,
                &path,
                Some("sam"),
                Some(&spend_body("1.00")),
                &[("idempotency-key", &key)],
            )
            .await
        }
    }))
    .await;
    for (n, answer) in answers.iter().enumerate() {
        if n % 2 == 0 {
            assert_eq!(answer.status, 201, "{}", answer.body);
        } else {
            answer.assert_problem(409, "problem_closed");
        }
    }
    let logged = app
        .get("sam", &format!("/v1/spends?problem_id={open}"))
        .await;
    assert_eq!(logged.body["items"].as_array().unwrap().len(), DUPLICATES);
    assert_eq!(
        app.get("sam", &format!("/v1/problems/{open}")).await.body["approved"]["amount"],
        format!("{DUPLICATES}.00")
    );
    let refused = app
        .get("sam", &format!("/v1/spends?problem_id={closed}"))
        .await;
    assert_eq!(refused.body["items"], json!([]));
    let claimed: i64 = app
        .db
        .read_blocking(|connection| {
            Ok::<_, leeway::db::Error>(idempotency_keys::table.count().get_result(connection)?)
        })
        .unwrap();
    assert_eq!(
        usize::try_from(claimed).unwrap(),
        DUPLICATES,
        "a refused request left its key behind"
    );
}

fn default_settings(_: &mut leeway::config::Config) {}

configured_backend_tests!(default_settings =>
    duplicates_sent_at_once_make_one_spend_and_all_get_its_answer,
    refused_spends_beside_good_ones_roll_back_alone,
);

/// The same on PostgreSQL with group commit on (SQLite always has it).
mod with_group_commit_on_postgres {
    use crate::helpers::TestApp;

    fn group_commit(config: &mut leeway::config::Config) {
        config.limits.pool.group_commit_postgres = true;
    }

    async fn duplicates(app: TestApp) {
        super::duplicates_sent_at_once_make_one_spend_and_all_get_its_answer(app).await;
    }

    async fn refusals_roll_back_alone(app: TestApp) {
        super::refused_spends_beside_good_ones_roll_back_alone(app).await;
    }

    crate::configured_backend_tests!(group_commit => duplicates, refusals_roll_back_alone);
}
