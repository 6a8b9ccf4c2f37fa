//! The limit rule under concurrency: many spends at once, within one server
//! and across two `leeway` processes sharing one database, can never be
//! auto-approved past the limit.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use futures_util::future::join_all;
use serde_json::Value;

use crate::helpers::{TEST_SECRET, TestApp, spend_body};
use crate::{backend_tests, configured_backend_tests};

/// Parallel spends per test.
const SPENDS: usize = 40;

fn count_status(responses: &[crate::helpers::Response], status: &str) -> usize {
    responses
        .iter()
        .filter(|response| response.body["status"] == status)
        .count()
}

async fn assert_exactly_eight_approved(
    app: &TestApp,
    problem: &str,
    responses: &[crate::helpers::Response],
) {
    assert!(
        responses.iter().all(|response| response.status == 201),
        "{responses:?}"
    );
    assert_eq!(count_status(responses, "approved"), 8);
    assert_eq!(count_status(responses, "pending_review"), SPENDS - 8);
    let problem = app
        .get("sam", &format!("/v1/problems/{problem}"))
        .await
        .body;
    assert_eq!(problem["approved"]["amount"], "400.00");
    assert_eq!(problem["pending_review"]["amount"], "1600.00");
    for response in responses
        .iter()
        .filter(|response| response.body["status"] == "pending_review")
    {
        assert_eq!(response.body["overrun"]["amount"], "50.00");
    }
}

/// A `leeway serve` process on the test's database; killed when dropped.
struct ServerProcess {
    child: Child,
    base_url: String,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl ServerProcess {
    fn start(app: &TestApp, data_dir: &std::path::Path, settings: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_leeway"))
            .arg("serve")
            .envs(settings.iter().copied())
            .env("LEEWAY_DATABASE_URL", &app.database_url)
            .env("LEEWAY_JWT_SECRET", TEST_SECRET)
            .env("LEEWAY_BIND", "127.0.0.1:0")
            .env("LEEWAY_DATA_DIR", data_dir)
            .env("LEEWAY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let address = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap();
        Self {
            child,
            base_url: format!("http://{address}"),
            _stdout: stdout,
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Settings of the `leeway serve` processes that turn group commit on for
/// PostgreSQL (SQLite always has it).
const GROUP_COMMIT_POSTGRES: [(&str, &str); 1] = [("LEEWAY_GROUP_COMMIT_POSTGRES", "true")];

async fn parallel_spends_never_pass_the_limit(app: TestApp) {
    app.org().await;
    let problem = app.open_problem("sam", "Race").await;
    let responses = join_all((0..SPENDS).map(|_| app.spend("sam", &problem, "50.00"))).await;
    assert_exactly_eight_approved(&app, &problem, &responses).await;
}

/// Two `leeway serve` processes with `settings` on the test's database
/// take spends on one problem at once.
async fn two_processes_never_pass_the_limit(app: &TestApp, settings: &[(&str, &str)]) {
    app.org().await;
    let problem = app.open_problem("sam", "Two processes").await;
    let data_dir = tempfile::tempdir().unwrap();
    let servers = [
        ServerProcess::start(app, data_dir.path(), settings),
        ServerProcess::start(app, data_dir.path(), settings),
    ];
    let token = app.token("sam");
    let requests = (0..SPENDS).map(|index| {
        let url = format!(
            "{}/v1/problems/{problem}/spends",
            servers[index % 2].base_url
        );
        let request = app
            .client
            .post(url)
            .bearer_auth(&token)
            .json(&spend_body("50.00"));
        async move { crate::helpers::read(request.send().await.unwrap()).await }
    });
    let responses = join_all(requests).await;
    assert_exactly_eight_approved(app, &problem, &responses).await;
    let spends: Value = app
        .get("sam", &format!("/v1/spends?problem_id={problem}&limit=200"))
        .await
        .body;
    assert_eq!(spends["items"].as_array().unwrap().len(), SPENDS);
}

fn default_settings(_: &mut leeway::config::Config) {}

fn group_commit_on_postgres(config: &mut leeway::config::Config) {
    config.limits.pool.group_commit_postgres = true;
}

async fn parallel_spends_with_group_commit_never_pass_the_limit(app: TestApp) {
    parallel_spends_never_pass_the_limit(app).await;
}

configured_backend_tests!(default_settings => parallel_spends_never_pass_the_limit);
configured_backend_tests!(group_commit_on_postgres => parallel_spends_with_group_commit_never_pass_the_limit);

backend_tests! {
    async fn two_server_processes_never_pass_the_limit_together(app: TestApp) {
        two_processes_never_pass_the_limit(&app, &[]).await;
    }

    async fn two_server_processes_with_group_commit_never_pass_the_limit_together(app: TestApp) {
        two_processes_never_pass_the_limit(&app, &GROUP_COMMIT_POSTGRES).await;
    }
}
