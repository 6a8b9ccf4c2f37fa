//! The real `leeway` binary as a child process: its commands run on one data
//! directory (and database), `serve` listens on a free port, and requests to
//! it report a dropped connection as an error instead of panicking, so tests
//! can kill the server or its database on purpose.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Response, try_read};

/// Longest a test waits for any one answer: far past every server-side
/// bound, so reaching it means the server hangs.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings for [`Leeway::serve`]: rate limits no test client meets, so
/// traffic as fast as the machine allows is all served.
pub const UNLIMITED_RATE: [(&str, &str); 2] = [
    ("LEEWAY_RATE_LIMIT_PER_SECOND", "1000000"),
    ("LEEWAY_RATE_LIMIT_BURST", "1000000"),
];

/// The `leeway` binary bound to a data directory and, optionally, a database
/// URL (SQLite at DATA_DIR/leeway.db otherwise).
pub struct Leeway {
    data_dir: PathBuf,
    database_url: Option<String>,
}

impl Leeway {
    pub fn new(data_dir: &Path, database_url: Option<&str>) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            database_url: database_url.map(str::to_owned),
        }
    }

    /// A `leeway` command with this data directory and database, and no
    /// settings inherited from the environment of the test run.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_leeway"));
        command
            .env("LEEWAY_DATA_DIR", &self.data_dir)
            .env_remove("LEEWAY_DATABASE_URL")
            .env_remove("LEEWAY_JWT_SECRET")
            .env("LEEWAY_LOG", "warn");
        if let Some(url) = &self.database_url {
            command.env("LEEWAY_DATABASE_URL", url);
        }
        command
    }

    /// Runs `leeway ARGS`, asserts it succeeded, and returns its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let output = self.command().args(args).output().unwrap();
        assert!(
            output.status.success(),
            "leeway {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// A token for `subject`, signed with the data directory's secret.
    pub fn token(&self, subject: &str) -> String {
        self.run(&["token", "--subject", subject]).trim().to_owned()
    }

    /// Starts `leeway serve` on a free port with extra environment `settings`;
    /// returns once it prints its banner. Its log is appended to
    /// DATA_DIR/serve.log.
    pub fn serve(&self, settings: &[(&str, &str)]) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut command = self.command();
        command
            .env("LEEWAY_BIND", "127.0.0.1:0")
            .env("LEEWAY_LOG", "info")
            .envs(settings.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = command.spawn().unwrap();
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut banner)
            .unwrap();
        let address = banner
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {banner:?}\nserver log:\n{}", self.log()))
            .to_owned();
        Server { child, address }
    }

    fn log_path(&self) -> PathBuf {
        self.data_dir.join("serve.log")
    }

    /// Everything the servers started by [`Leeway::serve`] logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// A running `leeway serve`; killed when dropped, so a failed test leaves
/// no server behind.
pub struct Server {
    pub child: Child,
    /// `host:port`.
    pub address: String,
}

impl Server {
    /// `http://host:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL: the process gets no chance to finish anything.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP client whose requests give up after [`REQUEST_TIMEOUT`].
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

/// Sends a request with `token` and an optional JSON body and headers; a
/// connection refused, reset or timed out is an `Err`, not a panic.
pub async fn send(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Result<Response, reqwest::Error> {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    try_read(request.send().await?).await
}

/// Like [`send`], for a request that must be answered.
pub async fn call(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> Response {
    send(client, method, url, token, body, &[]).await.unwrap()
}

/// Sets up a small organisation as the admin (`admin_token`): team Ops with
/// manager `mia`, members `sam` and `kim`, and a 400.00 USD per-problem
/// policy.
pub async fn seed_org(client: &reqwest::Client, base_url: &str, admin_token: &str) {
    let post = |path: &str, body: Value| {
        let url = format!("{base_url}{path}");
        async move { call(client, Method::POST, &url, admin_token, Some(&body)).await }
    };
    let team = post("/v1/teams", json!({"name": "Ops"})).await;
    assert_eq!(team.status, 201, "{}", team.body);
    let team = team.id();
    let mut manager_id = String::new();
    for (subject, role) in [("mia", "manager"), ("sam", "member"), ("kim", "member")] {
        let person = post(
            "/v1/people",
            json!({"subject": subject, "name": subject.to_uppercase(), "role": role, "team_id": team}),
        )
        .await;
        assert_eq!(person.status, 201, "{}", person.body);
        if role == "manager" {
            manager_id = person.id();
        }
    }
    let url = format!("{base_url}/v1/teams/{team}");
    let patched = call(
        client,
        Method::PATCH,
        &url,
        admin_token,
        Some(&json!({"manager_id": manager_id})),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let url = format!("{base_url}/v1/teams/{team}/policy");
    let policy = json!({"per_problem_limit": {"amount": "400.00", "currency": "USD"}, "review_sla_hours": 24});
    let put = call(client, Method::PUT, &url, admin_token, Some(&policy)).await;
    assert_eq!(put.status, 200, "{}", put.body);
}

/// Opens a problem as the holder of `token`; returns its id.
pub async fn open_problem(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    title: &str,
) -> String {
    let url = format!("{base_url}/v1/problems");
    let body = json!({"title": title, "success_criteria": "It works again"});
    let response = call(client, Method::POST, &url, token, Some(&body)).await;
    assert_eq!(response.status, 201, "{}", response.body);
    response.id()
}
