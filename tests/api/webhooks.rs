//! Webhooks through the real server: endpoints managed by admins, signed
//! deliveries received by a receiver on loopback and verified with an HMAC
//! computed here (and, in CI, by the official `standardwebhooks` Python
//! package), retries after failures, rotation, replay, tests, 410, the SSRF
//! guard, and two processes on one PostgreSQL delivering each event once.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::TimeDelta;
use hmac::{Hmac, Mac};
use leeway::config::Config;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::binary::{self, Leeway, Server, call, open_problem, seed_org};
use crate::helpers::{ADMIN, PostgresDatabase, TestApp};
use crate::{backend_tests, configured_backend_tests};

/// How long a test waits for deliveries before failing.
const DELIVERY_WAIT: Duration = Duration::from_secs(20);

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub content_type: String,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// Whether one of the signatures is `secret`'s, computed here from the
    /// Standard Webhooks definition rather than by Leeway's code.
    pub fn signed_by(&self, secret: &str) -> bool {
        let key = BASE64
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.{}", self.id, self.timestamp, self.body).as_bytes());
        let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
        self.signature.split(' ').any(|part| part == expected)
    }
}

/// A webhook receiver on loopback: records every request and answers the
/// statuses queued in `plan`, then 200.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    plan: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let plan = Arc::new(Mutex::new(VecDeque::new()));
        let (state_received, state_plan) = (received.clone(), plan.clone());
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                actix_web::HttpServer::new(move || {
                    let received = state_received.clone();
                    let plan = state_plan.clone();
                    actix_web::App::new().default_service(actix_web::web::to(
                        move |request: actix_web::HttpRequest, body: String| {
                            let received = received.clone();
                            let plan = plan.clone();
                            async move {
                                let header = |name: &str| {
                                    request
                                        .headers()
                                        .get(name)
                                        .and_then(|value| value.to_str().ok())
                                        .unwrap_or_default()
                                        .to_owned()
                                };
                                received.lock().unwrap().push(Received {
                                    id: header("webhook-id"),
                                    timestamp: header("webhook-timestamp"),
                                    signature: header("webhook-signature"),
                                    content_type: header("content-type"),
                                    body,
                                });
                                let status = plan.lock().unwrap().pop_front().unwrap_or(200);
                                actix_web::HttpResponse::build(
                                    actix_web::http::StatusCode::from_u16(status).unwrap(),
                                )
                                .finish()
                            }
                        },
                    ))
                })
                .workers(1)
                .listen(listener)
                .unwrap()
                .run()
                .await
                .unwrap();
            });
        });
        Self {
            url,
            received,
            plan,
        }
    }

    /// Answers the next requests with these statuses.
    pub fn answer(&self, statuses: &[u16]) {
        self.plan.lock().unwrap().extend(statuses);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `count` requests arrived; returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = std::time::Instant::now() + DELIVERY_WAIT;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited for {count} deliveries, got {}: {received:#?}",
                received.len()
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Test servers may deliver to loopback over http, and look for work often.
pub fn private_destinations(config: &mut Config) {
    config.webhooks.allow_private = true;
    config.webhooks.poll_interval = Duration::from_millis(50);
}

/// Registers an endpoint for `types` at the receiver; returns (id, secret).
pub async fn register(app: &TestApp, hook: &Receiver, types: &[&str]) -> (String, String) {
    let response = app
        .post(
            ADMIN,
            "/v1/webhooks",
            &json!({"url": hook.url, "event_types": types, "description": "test receiver"}),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.body);
    let secret = response.body["secret"].as_str().unwrap().to_owned();
    (response.id(), secret)
}

async fn deliveries(app: &TestApp, id: &str, query: &str) -> Vec<Value> {
    let response = app
        .get(ADMIN, &format!("/v1/webhooks/{id}/deliveries?{query}"))
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.body["items"].as_array().unwrap().clone()
}

/// Waits until the server's delivery log for `id` holds `count` attempts.
async fn wait_for_log(app: &TestApp, id: &str, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + DELIVERY_WAIT;
    loop {
        let log = deliveries(app, id, "limit=200").await;
        if log.len() >= count {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited for {count} logged attempts: {log:#?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

configured_backend_tests! {
    private_destinations =>
    signed_deliveries_arrive_in_order_once_each,
    a_failed_delivery_is_retried_until_it_succeeds,
    rotation_signs_with_both_secrets_for_a_day,
    replay_delivers_again_from_a_sequence,
    a_test_message_is_sent_once_and_logged,
    gone_disables_the_endpoint,
    a_spent_schedule_gives_the_message_up_and_moves_on,
    budget_thresholds_are_announced_once_per_limit_version,
    decisions_say_approved_in_part_or_rejected,
    five_days_of_failures_disable_the_endpoint,
}

async fn five_days_of_failures_disable_the_endpoint(app: TestApp) {
    app.org().await;
    let hook = Receiver::start();
    hook.answer(&[500; 64]);
    let (id, _) = register(&app, &hook, &["problem.opened"]).await;
    for title in ["One", "Two", "Three", "Four"] {
        app.open_problem("sam", title).await;
    }
    // Every 12 hours past each retry delay: one more failed attempt, and
    // each message given up after its schedule moves on to the next.
    let mut endpoint = Value::Null;
    for step in 1..=12 {
        hook.wait_for(step).await;
        wait_for_log(&app, &id, step).await;
        endpoint = app.get(ADMIN, &format!("/v1/webhooks/{id}")).await.body;
        if endpoint["disabled"] == true {
            break;
        }
        assert!(
            step < 11,
            "still enabled after {step} half-days: {endpoint}"
        );
        app.clock.advance(TimeDelta::hours(12));
    }
    assert_eq!(endpoint["disabled"], true, "{endpoint}");
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("5 days"),
        "{endpoint}"
    );
    let failing_since = endpoint["failing_since"].as_str().unwrap().to_owned();
    let attempts = hook.received().len();
    app.clock.advance(TimeDelta::hours(12));
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        hook.received().len(),
        attempts,
        "nothing goes to a disabled endpoint"
    );
    assert!(!failing_since.is_empty());
}

async fn decisions_say_approved_in_part_or_rejected(app: TestApp) {
    app.org().await;
    let hook = Receiver::start();
    register(&app, &hook, &["spend.decided"]).await;
    let problem = app.open_problem("sam", "Printer").await;
    assert_eq!(app.spend("sam", &problem, "390.00").await.status, 201);
    let decisions = [
        (
            json!({"decision": "approve", "note": "All of it"}),
            "approved",
        ),
        (
            json!({"decision": "approve", "note": "Some", "approved_amount": {"amount": "20.00", "currency": "USD"}}),
            "approved_in_part",
        ),
        (json!({"decision": "reject", "note": "No"}), "rejected"),
    ];
    for (body, _) in &decisions {
        let flagged = app.spend("sam", &problem, "50.00").await;
        assert_eq!(flagged.body["status"], "pending_review", "{}", flagged.body);
        let decided = app
            .post("mia", &format!("/v1/spends/{}/review", flagged.id()), body)
            .await;
        assert_eq!(decided.status, 200, "{}", decided.body);
    }
    let received = hook.wait_for(3).await;
    for (message, (_, decision)) in received.iter().zip(decisions) {
        let body = message.json();
        assert_eq!(body["type"], "spend.decided");
        assert_eq!(body["data"]["decision"], decision, "{body}");
    }
}

async fn signed_deliveries_arrive_in_order_once_each(app: TestApp) {
    app.org().await;
    let hook = Receiver::start();
    let (id, secret) = register(
        &app,
        &hook,
        &["spend.approved", "spend.flagged", "problem.opened"],
    )
    .await;
    let problem = app.open_problem("sam", "Printer").await;
    assert_eq!(app.spend("sam", &problem, "100.00").await.status, 201);
    assert_eq!(app.spend("sam", &problem, "350.00").await.status, 201);
    let received = hook.wait_for(3).await;
    let types: Vec<String> = received
        .iter()
        .map(|message| message.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["problem.opened", "spend.approved", "spend.flagged"]);
    for message in &received {
        assert!(message.signed_by(&secret), "bad signature: {message:?}");
        assert_eq!(message.content_type, "application/json");
        let body = message.json();
        assert_eq!(body["data"]["event"]["id"], message.id.as_str());
        assert!(body["timestamp"].is_string());
        let sent_at: i64 = message.timestamp.parse().unwrap();
        assert!((sent_at - chrono::Utc::now().timestamp()).abs() < 60);
    }
    let flagged = received[2].json();
    assert_eq!(flagged["data"]["spend"]["status"], "pending_review");
    assert!(flagged["data"]["spend"]["reviewer_id"].is_string());
    assert_eq!(
        flagged["data"]["spend"]["flag_reasons"],
        json!(["over_problem_limit"])
    );
    let sequences: Vec<i64> = received
        .iter()
        .map(|message| {
            message.json()["data"]["event"]["sequence"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert!(sequences.windows(2).all(|pair| pair[0] < pair[1]));

    // Nothing is sent twice, and the log shows each delivery.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.received().len(), 3);
    let log = wait_for_log(&app, &id, 3).await;
    assert!(log.iter().all(|attempt| attempt["outcome"] == "delivered"
        && attempt["response_status"] == 200
        && attempt["attempt"] == 1));
    let endpoint = app.get(ADMIN, &format!("/v1/webhooks/{id}")).await;
    assert_eq!(endpoint.status, 200);
    assert!(
        endpoint.body.get("secret").is_none(),
        "the secret is shown once"
    );
    assert!(
        endpoint.body["delivered_through_sequence"]
            .as_i64()
            .unwrap()
            >= sequences[2]
    );
}

async fn a_failed_delivery_is_retried_until_it_succeeds(app: TestApp) {
    app.org().await;
    let hook = Receiver::start();
    hook.answer(&[500, 503]);
    let (id, secret) = register(&app, &hook, &["problem.opened"]).await;
    app.open_problem("sam", "Printer").await;
    app.open_problem("kim", "Desk").await;
    hook.wait_for(1).await;
    let log = wait_for_log(&app, &id, 1).await;
    assert_eq!(log[0]["outcome"], "retrying");
    assert_eq!(log[0]["response_status"], 500);
    assert!(log[0]["next_attempt_at"].is_string());
    // The second problem waits behind the first: order per endpoint.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.received().len(), 1);
    // About 5 s later (moved by the clock, not slept) it is tried again.
    app.clock.advance(TimeDelta::seconds(6));
    hook.wait_for(2).await;
    app.clock.advance(TimeDelta::seconds(400));
    let received = hook.wait_for(4).await;
    assert_eq!(
        received[0].id, received[1].id,
        "the same webhook-id on a retry"
    );
    assert_eq!(received[1].id, received[2].id);
    assert_eq!(
        received[0].body, received[2].body,
        "the same body on a retry"
    );
    assert_ne!(received[2].id, received[3].id);
    assert!(received.iter().all(|message| message.signed_by(&secret)));
    let log = wait_for_log(&app, &id, 4).await;
    let outcomes: Vec<&str> = log.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["retrying", "retrying", "delivered", "delivered"]);
    let attempts: Vec<i64> = log.iter().map(|a| a["attempt"].as_i64().unwrap()).collect();
    assert_eq!(attempts, [1, 2, 3, 1]);
    let failed = deliveries(&app, &id, "outcome=retrying").await;
    assert_eq!(failed.len(), 2);
    let endpoint = app.get(ADMIN, &format!("/v1/webhooks/{id}")).await;
    assert_eq!(endpoint.body["attempts_failed"], 0);
    assert_eq!(endpoint.body["failing_since"], Value::Null);
}

async fn rotation_signs_with_both_secrets_for_a_day(app: TestApp) {
    app.org().await;
    let hook = Receiver::start();
    let (id, old_secret) = register(&app, &hook, &["problem.opened"]).await;
    let rotated = app
        .post(
            ADMIN,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_secret = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    assert!(rotated.body["previous_secret_expires_at"].is_string());
    app.open_problem("sam", "Printer").await;
    let message = hook.wait_for(1).await.remove(0);
    assert_eq!(message.signature.split(' ').count(), 2, "{message:?}");
    assert!(message.signed_by(&new_secret) && message.signed_by(&old_secret));
    // A day later the old secret no longer signs.
    app.clock.advance(TimeDelta::hours(25));
    app.open_problem("kim", "Desk").await;
    let later = hook.wait_for(2).await.remove(1);
    assert_eq!(later.signature.split(' ').count(), 1);
    assert!(later.signed_by(&new_secret) && !later.signed_by(&old_secret));
}

async fn replay_delivers_again_from_a_sequence(app: TestApp) {
    app.org().await;
    let hook = Receiver::start();
    let (id, _) = register(&app, &hook, &["problem.opened"]).await;
    for title in ["One", "Two", "Three"] {
        app.open_problem("sam", title).await;
    }
    let first = hook.wait_for(3).await;
    let second_sequence = first[1].json()["data"]["event"]["sequence"]
        .as_i64()
        .unwrap();
    let replay = app
        .post(
            ADMIN,
            &format!("/v1/webhooks/{id}/replay"),
            &json!({"from_sequence": second_sequence}),
        )
        .await;
    assert_eq!(replay.status, 202, "{}", replay.body);
    let all = hook.wait_for(5).await;
    assert_eq!(all[3].id, first[1].id);
    assert_eq!(all[4].id, first[2].id);
    // Replay goes back only: forward would skip events.
    let ahead = app
        .post(
            ADMIN,
            &format!("/v1/webhooks/{id}/replay"),
            &json!({"from_sequence": 1_000_000}),
        )
        .await;
    ahead.assert_problem(409, "conflict");
    let zero = app
        .post(
            ADMIN,
            &format!("/v1/webhooks/{id}/replay"),
            &json!({"from_sequence": 0}),
        )
        .await;
    zero.assert_problem(422, "validation_failed");
    // 1.0 is a whole number to JSON Schema, and so to the server.
    let float = app
        .post(
            ADMIN,
            &format!("/v1/webhooks/{id}/replay"),
            &json!({"from_sequence": 1.0}),
        )
        .await;
    assert_eq!(float.status, 202, "{}", float.body);
}

async fn a_test_message_is_sent_once_and_logged(app: TestApp) {
    let hook = Receiver::start();
    let (id, secret) = register(&app, &hook, &["spend.approved"]).await;
    hook.answer(&[500]);
    let queued = app
        .post(ADMIN, &format!("/v1/webhooks/{id}/test"), &json!({}))
        .await;
    assert_eq!(queued.status, 202, "{}", queued.body);
    let message_id = queued.body["message_id"].as_str().unwrap().to_owned();
    let message = hook.wait_for(1).await.remove(0);
    assert_eq!(message.id, message_id);
    assert!(message.signed_by(&secret));
    assert_eq!(message.json()["type"], "webhook.test");
    assert_eq!(message.json()["data"]["webhook_id"], id.as_str());
    let log = wait_for_log(&app, &id, 1).await;
    assert_eq!(log[0]["outcome"], "failed", "a test is tried once");
    assert_eq!(log[0]["event_type"], "webhook.test");
    assert_eq!(log[0]["sequence"], Value::Null);
    app.clock.advance(TimeDelta::seconds(10));
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.received().len(), 1);
    let endpoint = app.get(ADMIN, &format!("/v1/webhooks/{id}")).await;
    assert_eq!(endpoint.body["test_pending"], false);
    assert_eq!(endpoint.body["attempts_failed"], 0);
    // The log keeps an attempt 30 days (the purge task's cut-off).
    let purge = |days: i64| {
        let before = app.clock.now() + TimeDelta::days(days);
        app.db
            .write_blocking(|connection| {
                leeway::db::webhooks::purge_deliveries(connection, before, 100)
            })
            .unwrap()
    };
    assert_eq!(purge(-1), 0);
    assert_eq!(purge(1), 1);
    assert!(deliveries(&app, &id, "").await.is_empty());
}

async fn gone_disables_the_endpoint(app: TestApp) {
    app.org().await;
    let hook = Receiver::start();
    hook.answer(&[410]);
    let (id, _) = register(&app, &hook, &["problem.opened"]).await;
    app.open_problem("sam", "Printer").await;
    hook.wait_for(1).await;
    let deadline = std::time::Instant::now() + DELIVERY_WAIT;
    let endpoint = loop {
        let endpoint = app.get(ADMIN, &format!("/v1/webhooks/{id}")).await;
        if endpoint.body["disabled"] == true || std::time::Instant::now() > deadline {
            break endpoint;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(endpoint.body["disabled"], true, "{}", endpoint.body);
    assert!(
        endpoint.body["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410")
    );
    app.open_problem("kim", "Desk").await;
    app.clock.advance(TimeDelta::hours(1));
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.received().len(), 1, "a disabled endpoint gets nothing");
    // Enabled again, it resumes with the message it had not delivered.
    let enabled = app
        .patch(
            ADMIN,
            &format!("/v1/webhooks/{id}"),
            &json!({"disabled": false}),
        )
        .await;
    assert_eq!(enabled.status, 200, "{}", enabled.body);
    assert_eq!(enabled.body["disabled_reason"], Value::Null);
    let received = hook.wait_for(3).await;
    assert_eq!(received[1].id, received[0].id);
}

async fn a_spent_schedule_gives_the_message_up_and_moves_on(app: TestApp) {
    app.org().await;
    let hook = Receiver::start();
    hook.answer(&[500; 8]);
    let (id, _) = register(&app, &hook, &["problem.opened"]).await;
    app.open_problem("sam", "Printer").await;
    app.open_problem("kim", "Desk").await;
    for attempt in 1..=8 {
        hook.wait_for(attempt).await;
        wait_for_log(&app, &id, attempt).await;
        // Past the longest delay with its jitter.
        app.clock.advance(TimeDelta::hours(12));
    }
    let received = hook.wait_for(9).await;
    assert!(
        received[..8]
            .iter()
            .all(|message| message.id == received[0].id)
    );
    assert_ne!(received[8].id, received[0].id, "the next message goes out");
    let log = wait_for_log(&app, &id, 9).await;
    assert_eq!(log[7]["outcome"], "failed");
    assert_eq!(log[7]["attempt"], 8);
    assert_eq!(log[7]["next_attempt_at"], Value::Null);
    assert_eq!(log[8]["outcome"], "delivered");
    assert_eq!(deliveries(&app, &id, "outcome=failed").await.len(), 1);
}

async fn budget_thresholds_are_announced_once_per_limit_version(app: TestApp) {
    let org = app.org().await;
    let policy = json!({
        "per_problem_limit": {"amount": "400.00", "currency": "USD"},
        "review_sla_hours": 24,
        "alert_thresholds_percent": [90, 50, 90],
    });
    let put = app
        .put(ADMIN, &format!("/v1/teams/{}/policy", org.ops), &policy)
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["alert_thresholds_percent"], json!([50, 90]));
    let hook = Receiver::start();
    register(&app, &hook, &["problem.budget_threshold"]).await;
    let problem = app.open_problem("sam", "Printer").await;
    let spend = |amount: &'static str| app.spend("sam", &problem, amount);
    assert_eq!(spend("150.00").await.body["status"], "approved"); // 37.5%
    let crossing = spend("60.00").await; // 52.5%: 50
    assert_eq!(crossing.body["status"], "approved");
    let flagged = spend("200.00").await; // 102.5%: 90
    assert_eq!(flagged.body["status"], "pending_review");
    let rejected = app
        .post(
            "mia",
            &format!("/v1/spends/{}/review", flagged.id()),
            &json!({"decision": "reject", "note": "Too much"}),
        )
        .await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    assert_eq!(spend("170.00").await.body["status"], "approved"); // 95% again: nothing
    let raised = app
        .patch(
            "mia",
            &format!("/v1/problems/{problem}"),
            &json!({"limit": {"amount": "500.00", "currency": "USD"}, "limit_reason": "Bigger printer"}),
        )
        .await;
    assert_eq!(raised.status, 200, "{}", raised.body); // 76% of a new limit: 50

    let events = app
        .get(
            "fin",
            &format!("/v1/events?kind=problem.budget_threshold&problem_id={problem}"),
        )
        .await;
    let announced: Vec<(i64, i64, String, Value)> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            let data = &event["data"];
            assert_eq!(event["actor_id"], Value::Null, "the server announces");
            (
                data["threshold_percent"].as_i64().unwrap(),
                data["limit_version"].as_i64().unwrap(),
                data["used"]["amount"].as_str().unwrap().to_owned(),
                data["spend_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        announced,
        [
            (50, 1, "210.00".to_owned(), json!(crossing.id())),
            (90, 1, "410.00".to_owned(), json!(flagged.id())),
            (50, 2, "380.00".to_owned(), Value::Null),
        ]
    );
    let received = hook.wait_for(3).await;
    let thresholds: Vec<i64> = received
        .iter()
        .map(|message| {
            let body = message.json();
            assert_eq!(body["type"], "problem.budget_threshold");
            assert_eq!(
                body["data"]["budget_threshold"]["problem_id"],
                problem.as_str()
            );
            body["data"]["budget_threshold"]["threshold_percent"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(thresholds, [50, 90, 50]);
}

backend_tests! {
    async fn alert_thresholds_are_whole_percents_at_most_ten(app: TestApp) {
        let org = app.org().await;
        let before = app.get(ADMIN, &format!("/v1/teams/{}/policy", org.ops)).await;
        assert_eq!(before.body["alert_thresholds_percent"], json!([80, 100]), "the default");
        let policy = json!({"per_problem_limit": {"amount": "400.00", "currency": "USD"}, "review_sla_hours": 24});
        for (thresholds, field) in [
            (json!([0]), "alert_thresholds_percent[0]"),
            (json!([50, 1001]), "alert_thresholds_percent[1]"),
            (json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), "alert_thresholds_percent"),
            (json!(null), "alert_thresholds_percent"),
            (json!([50, 12.5]), "alert_thresholds_percent[1]"),
        ] {
            let mut refused = policy.clone();
            refused["alert_thresholds_percent"] = thresholds;
            let response = app.put(ADMIN, &format!("/v1/teams/{}/policy", org.ops), &refused).await;
            response.assert_problem(422, "validation_failed");
            assert_eq!(response.body["errors"][0]["field"], field, "{}", response.body);
        }
        let after = app.get(ADMIN, &format!("/v1/teams/{}/policy", org.ops)).await;
        assert_eq!(after.body["version"], before.body["version"], "nothing was stored");
        // 90.0 is a whole number to JSON Schema, and so to the server.
        let mut floats = policy.clone();
        floats["alert_thresholds_percent"] = json!([90.0, 50]);
        let put = app.put(ADMIN, &format!("/v1/teams/{}/policy", org.ops), &floats).await;
        assert_eq!(put.status, 200, "{}", put.body);
        assert_eq!(put.body["alert_thresholds_percent"], json!([50, 90]));
    }

    async fn webhooks_are_for_admins_and_urls_are_guarded(app: TestApp) {
        app.org().await;
        let body = json!({"url": "https://hooks.example.com/leeway", "event_types": ["spend.flagged"]});
        for subject in ["mia", "fin", "sam"] {
            app.post(subject, "/v1/webhooks", &body).await.assert_problem(403, "forbidden");
        }
        for subject in ["mia", "sam"] {
            app.get(subject, "/v1/webhooks").await.assert_problem(403, "forbidden");
        }
        // The role comes before the URL check, which resolves names.
        let private = json!({"url": "https://localhost/hook", "event_types": ["spend.flagged"]});
        app.post("sam", "/v1/webhooks", &private).await.assert_problem(403, "forbidden");
        // Without LEEWAY_WEBHOOK_ALLOW_PRIVATE: https only, no private destinations.
        for (url, code) in [
            ("http://hooks.example.com/", "not_https"),
            ("https://127.0.0.1/hook", "forbidden_address"),
            ("https://[::1]/hook", "forbidden_address"),
            ("https://169.254.169.254/latest/meta-data/", "forbidden_address"),
            ("https://10.1.2.3/hook", "forbidden_address"),
            ("https://localhost:8443/hook", "forbidden_address"),
            ("https://user:pw@hooks.example.com/", "invalid_url"),
            ("not a url", "invalid_url"),
        ] {
            let refused = app
                .post(ADMIN, "/v1/webhooks", &json!({"url": url, "event_types": ["spend.flagged"]}))
                .await;
            refused.assert_problem(422, "validation_failed");
            assert_eq!(refused.body["errors"][0]["field"], "url", "{url}: {}", refused.body);
            assert_eq!(refused.body["errors"][0]["code"], code, "{url}: {}", refused.body);
        }
        let unknown = app
            .post(ADMIN, "/v1/webhooks", &json!({"url": "https://hooks.example.com/", "event_types": ["spend.approved", "spend.nope"]}))
            .await;
        unknown.assert_problem(422, "validation_failed");
        assert_eq!(unknown.body["errors"][0]["field"], "event_types[1]");
        let empty = app
            .post(ADMIN, "/v1/webhooks", &json!({"url": "https://hooks.example.com/", "event_types": []}))
            .await;
        empty.assert_problem(422, "validation_failed");
        assert_eq!(app.get(ADMIN, "/v1/webhooks").await.body["items"], json!([]), "nothing was stored");

        let created = app.post(ADMIN, "/v1/webhooks", &body).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let secret = created.body["secret"].as_str().unwrap();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(BASE64.decode(&secret[6..]).unwrap().len(), 32);
        let id = created.id();
        let listed = app.get(ADMIN, "/v1/webhooks").await;
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
        assert!(listed.body["items"][0].get("secret").is_none());

        let patched = app
            .patch(ADMIN, &format!("/v1/webhooks/{id}"), &json!({"event_types": ["spend.decided", "spend.approved", "spend.decided"], "description": "Ticketing"}))
            .await;
        assert_eq!(patched.status, 200, "{}", patched.body);
        assert_eq!(patched.body["event_types"], json!(["spend.approved", "spend.decided"]));
        assert_eq!(patched.body["description"], "Ticketing");
        app.patch(ADMIN, &format!("/v1/webhooks/{id}"), &json!({"url": "https://192.168.0.1/"}))
            .await
            .assert_problem(422, "validation_failed");
        app.patch(ADMIN, &format!("/v1/webhooks/{id}"), &json!({"secret": "whsec_x"}))
            .await
            .assert_problem(422, "validation_failed");

        let deleted = app.send(Method::DELETE, &format!("/v1/webhooks/{id}"), Some(ADMIN), None).await;
        assert_eq!(deleted.status, 204);
        app.get(ADMIN, &format!("/v1/webhooks/{id}")).await.assert_problem(404, "not_found");
        app.send(Method::DELETE, &format!("/v1/webhooks/{id}"), Some(ADMIN), None)
            .await
            .assert_problem(404, "not_found");
    }
}

/// Settings for `leeway serve` processes delivering to the hook.
const DELIVERING: [(&str, &str); 4] = [
    ("LEEWAY_WEBHOOK_ALLOW_PRIVATE", "true"),
    ("LEEWAY_WEBHOOK_POLL_INTERVAL_MS", "20"),
    ("LEEWAY_RATE_LIMIT_PER_SECOND", "1000000"),
    ("LEEWAY_RATE_LIMIT_BURST", "1000000"),
];

/// A bootstrapped `leeway` on a data directory (and database), with the
/// organisation of `binary::seed_org`; returns the admin's token.
async fn seeded(cli: &Leeway, server: &Server) -> String {
    let admin = cli.token("admin");
    seed_org(&binary::client(), &server.base_url(), &admin).await;
    admin
}

async fn register_at(base_url: &str, admin: &str, hook: &Receiver, types: &[&str]) -> String {
    let body = json!({"url": hook.url, "event_types": types});
    let response = call(
        &binary::client(),
        Method::POST,
        &format!("{base_url}/v1/webhooks"),
        admin,
        Some(&body),
    )
    .await;
    assert_eq!(response.status, 201, "{}", response.body);
    response.body["secret"].as_str().unwrap().to_owned()
}

/// The event ids of `problem.opened` in sequence order, as the feed has them.
async fn opened_event_ids(base_url: &str, admin: &str) -> Vec<String> {
    let url = format!("{base_url}/v1/events?after_sequence=0&kind=problem.opened&limit=200");
    let page = call(&binary::client(), Method::GET, &url, admin, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect()
}

/// SIGKILLed twice (once before anything was sent, once in the middle of
/// sending), the server still delivers every event, in order, once it is
/// back: at least once, never lost.
async fn deliveries_survive_kills(data_dir: &Path, database_url: Option<&str>) {
    let cli = Leeway::new(data_dir, database_url);
    cli.run(&["bootstrap", "--subject", "admin", "--name", "Ada Admin"]);
    let hook = Receiver::start();
    // First life: the loop looks once at start, then not for a minute, so
    // nothing is sent before the kill.
    let mut idle = DELIVERING.to_vec();
    idle[1] = ("LEEWAY_WEBHOOK_POLL_INTERVAL_MS", "60000");
    let mut server = cli.serve(&idle);
    let admin = seeded(&cli, &server).await;
    let secret = register_at(&server.base_url(), &admin, &hook, &["problem.opened"]).await;
    let sam = cli.token("sam");
    let client = binary::client();
    for index in 0..5 {
        open_problem(
            &client,
            &server.base_url(),
            &sam,
            &format!("Before {index}"),
        )
        .await;
    }
    server.kill();
    assert!(hook.received().is_empty());

    // Second life: delivering, killed once some have arrived.
    let mut server = cli.serve(&DELIVERING);
    for index in 0..40 {
        open_problem(
            &client,
            &server.base_url(),
            &sam,
            &format!("During {index}"),
        )
        .await;
    }
    hook.wait_for(10).await;
    server.kill();

    // Third life: everything arrives.
    let server = cli.serve(&DELIVERING);
    let expected = opened_event_ids(&server.base_url(), &admin).await;
    assert_eq!(expected.len(), 45);
    // A lease the killed process held must expire before its endpoint is
    // taken over.
    let lease = Duration::from_secs(leeway::outbound::LEASE_SECS.unsigned_abs());
    let deadline = std::time::Instant::now() + lease + DELIVERY_WAIT;
    let mut first_seen = Vec::new();
    while first_seen.len() < expected.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} delivered\nserver log:\n{}",
            first_seen.len(),
            expected.len(),
            cli.log()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        first_seen.clear();
        for message in hook.received() {
            assert!(message.signed_by(&secret));
            if !first_seen.contains(&message.id) {
                first_seen.push(message.id);
            }
        }
    }
    assert_eq!(
        first_seen, expected,
        "every event, first delivered in sequence order"
    );
}

#[cfg(unix)]
#[actix_web::test]
async fn deliveries_survive_kills_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    deliveries_survive_kills(dir.path(), None).await;
}

#[cfg(unix)]
#[actix_web::test]
#[cfg_attr(
    postgres_tests_unconfigured,
    ignore = "set LEEWAY_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn deliveries_survive_kills_postgres() {
    let database = PostgresDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    deliveries_survive_kills(dir.path(), Some(&database.url)).await;
}

/// Two server processes on one PostgreSQL database, both delivering, send
/// every event to an endpoint exactly once between them.
#[actix_web::test]
#[cfg_attr(
    postgres_tests_unconfigured,
    ignore = "set LEEWAY_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn two_processes_deliver_each_event_once() {
    let database = PostgresDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let cli = Leeway::new(dir.path(), Some(&database.url));
    cli.run(&["bootstrap", "--subject", "admin", "--name", "Ada Admin"]);
    let servers = [cli.serve(&DELIVERING), cli.serve(&DELIVERING)];
    let admin = seeded(&cli, &servers[0]).await;
    let hook = Receiver::start();
    let secret = register_at(&servers[0].base_url(), &admin, &hook, &["problem.opened"]).await;
    let sam = cli.token("sam");
    let client = binary::client();
    for index in 0..40 {
        let base_url = servers[index % 2].base_url();
        open_problem(&client, &base_url, &sam, &format!("Problem {index}")).await;
    }
    let expected = opened_event_ids(&servers[0].base_url(), &admin).await;
    assert_eq!(expected.len(), 40);
    hook.wait_for(40).await;
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let received = hook.received();
    let ids: Vec<&str> = received.iter().map(|message| message.id.as_str()).collect();
    assert_eq!(ids, expected, "each event once, in sequence order");
    assert!(received.iter().all(|message| message.signed_by(&secret)));
}
