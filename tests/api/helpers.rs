//! The test harness: the real server on port 0 with a fresh database per
//! test, driven over HTTP. Every test runs on SQLite and, when
//! `LEEWAY_TEST_DATABASE_URL` names a PostgreSQL server, on PostgreSQL too
//! (a fresh database per test). Without that variable the PostgreSQL
//! variants are compiled as ignored (build.rs sets the
//! `postgres_tests_unconfigured` cfg), so `cargo test` reports them as
//! ignored, with the reason, instead of passing them. In CI (`CI` set) they
//! are never ignored, and a missing URL fails them.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use leeway::app;
use leeway::clock::Clock;
use leeway::config::Config;
use leeway::db::{DatabaseUrl, Db};
use leeway::domain::access::Role;
use leeway::state::AppState;
use leeway::tokens::JwtConfig;
use leeway::tokens::Tokens;
use reqwest::Method;
use serde_json::{Value, json};

/// Environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_URL_VARIABLE: &str = "LEEWAY_TEST_DATABASE_URL";
/// The signing secret every test server uses.
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";
/// Subject of the admin every test database starts with.
pub const ADMIN: &str = "admin";
/// How often test servers run the SLA escalation task.
pub const ESCALATION_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running server with its own database.
pub struct TestApp {
    pub base_url: String,
    pub database_url: String,
    pub db: Db,
    /// The server's clock: tests move it forward instead of sleeping.
    pub clock: Clock,
    pub client: reqwest::Client,
    tokens: Tokens,
    server: actix_web::dev::ServerHandle,
    /// Dropped after the server is stopped (fields drop after `Drop::drop`).
    _postgres_database: Option<PostgresDatabase>,
    _dir: tempfile::TempDir,
}

/// A response: status, headers and the body parsed as JSON (null when empty).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Response {
    /// The header's value, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts a problem+json error with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.body
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["title"].is_string()
                && self.body["detail"].is_string()
                && self.body["type"].is_string()
        );
    }

    /// The `id` field of the body.
    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.body))
            .to_owned()
    }
}

impl TestApp {
    /// Starts a server on a fresh database.
    pub fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {})
    }

    /// Like [`TestApp::spawn`], with the server's configuration adjusted by
    /// `configure` first (tiny limits, identity-provider keys, ...).
    pub fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, postgres_database) = match backend {
            Backend::Sqlite => (
                dir.path().join("leeway.db").to_string_lossy().into_owned(),
                None,
            ),
            Backend::Postgres => {
                let database = PostgresDatabase::create();
                (database.url.clone(), Some(database))
            }
        };
        let mut config = Config::new(
            DatabaseUrl::parse(&database_url).unwrap(),
            JwtConfig::from_secret(TEST_SECRET.as_bytes().to_vec()),
        );
        config.workers = Some(2);
        config.escalation_interval = ESCALATION_INTERVAL;
        configure(&mut config);
        let state = AppState::new(&config).unwrap();
        state.db.migrate().unwrap();
        state
            .db
            .write_blocking(|connection| {
                leeway::service::organisation::add_person(
                    connection,
                    None,
                    leeway::service::organisation::NewPerson {
                        subject: ADMIN.into(),
                        name: "Ada Admin".into(),
                        email: None,
                        team_id: None,
                        role: Role::Admin,
                    },
                    leeway::clock::Clock::system().now(),
                )
            })
            .unwrap();
        let db = state.db.clone();
        let clock = state.clock.clone();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = app::serve(state, listener, config.workers).unwrap();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            database_url,
            db,
            clock,
            client: reqwest::Client::new(),
            tokens: Tokens::new(&config.jwt),
            server: handle,
            _postgres_database: postgres_database,
            _dir: dir,
        }
    }

    /// A valid token for `subject`.
    pub fn token(&self, subject: &str) -> String {
        self.tokens.issue(subject, 3_600).unwrap()
    }

    /// Sends a request as `subject` (no token when `None`) with an optional JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        subject: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        self.send_with(method, path, subject, body, &[]).await
    }

    /// Like [`TestApp::send`], with extra headers.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        subject: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(subject) = subject {
            request = request.bearer_auth(self.token(subject));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn get(&self, subject: &str, path: &str) -> Response {
        self.send(Method::GET, path, Some(subject), None).await
    }

    pub async fn post(&self, subject: &str, path: &str, body: &Value) -> Response {
        self.send(Method::POST, path, Some(subject), Some(body))
            .await
    }

    pub async fn put(&self, subject: &str, path: &str, body: &Value) -> Response {
        self.send(Method::PUT, path, Some(subject), Some(body))
            .await
    }

    pub async fn patch(&self, subject: &str, path: &str, body: &Value) -> Response {
        self.send(Method::PATCH, path, Some(subject), Some(body))
            .await
    }

    /// Runs SQL directly on the test database (for setting up states the API
    /// cannot reach on purpose).
    pub fn execute_sql(&self, sql: &str) {
        self.try_execute_sql(sql).unwrap();
    }

    /// Like [`TestApp::execute_sql`], returning the database's refusal.
    pub fn try_execute_sql(&self, sql: &str) -> Result<(), String> {
        self.db
            .write_blocking(|connection| Ok::<_, leeway::db::Error>(connection.batch_execute(sql)?))
            .map_err(|error| format!("{error:?}"))
    }

    /// An organisation to test against: team Ops (manager Mia, members Sam
    /// and Kim) with a 400.00 USD policy, sub-team Ops East (member Eve)
    /// under it, and a separate team Sales (manager Max, member Lou).
    pub async fn org(&self) -> Org {
        let ops = self
            .post(ADMIN, "/v1/teams", &json!({"name": "Ops"}))
            .await
            .id();
        let ops_east = self
            .post(
                ADMIN,
                "/v1/teams",
                &json!({"name": "Ops East", "parent_id": ops}),
            )
            .await
            .id();
        let sales = self
            .post(ADMIN, "/v1/teams", &json!({"name": "Sales"}))
            .await
            .id();
        let mia = self.person("mia", "manager", &ops).await;
        let max = self.person("max", "manager", &sales).await;
        let sam = self.person("sam", "member", &ops).await;
        let kim = self.person("kim", "member", &ops).await;
        let eve = self.person("eve", "member", &ops_east).await;
        let lou = self.person("lou", "member", &sales).await;
        let finance = json!({"subject": "fin", "name": "Fin", "role": "finance"});
        assert_eq!(self.post(ADMIN, "/v1/people", &finance).await.status, 201);
        for (team, manager) in [(&ops, &mia), (&sales, &max)] {
            let response = self
                .patch(
                    ADMIN,
                    &format!("/v1/teams/{team}"),
                    &json!({"manager_id": manager}),
                )
                .await;
            assert_eq!(response.status, 200, "{}", response.body);
        }
        for team in [&ops, &sales] {
            let policy = json!({"per_problem_limit": {"amount": "400.00", "currency": "USD"}, "review_sla_hours": 24});
            assert_eq!(
                self.put(ADMIN, &format!("/v1/teams/{team}/policy"), &policy)
                    .await
                    .status,
                200
            );
        }
        Org {
            ops,
            ops_east,
            sales,
            mia,
            sam,
            kim,
            eve,
            lou,
        }
    }

    async fn person(&self, subject: &str, role: &str, team: &str) -> String {
        let body = json!({"subject": subject, "name": subject.to_uppercase(), "role": role, "team_id": team});
        let response = self.post(ADMIN, "/v1/people", &body).await;
        assert_eq!(response.status, 201, "{}", response.body);
        response.id()
    }

    /// Opens a problem as `subject` with the policy's limit.
    pub async fn open_problem(&self, subject: &str, title: &str) -> String {
        let response = self
            .post(
                subject,
                "/v1/problems",
                &json!({"title": title, "success_criteria": "It works again"}),
            )
            .await;
        assert_eq!(response.status, 201, "{}", response.body);
        response.id()
    }

    /// Logs a USD spend as `subject`.
    pub async fn spend(&self, subject: &str, problem: &str, amount: &str) -> Response {
        self.post(
            subject,
            &format!("/v1/problems/{problem}/spends"),
            &spend_body(amount),
        )
        .await
    }
}

/// A valid spend body for `amount` USD.
pub fn spend_body(amount: &str) -> Value {
    json!({
        "amount": {"amount": amount, "currency": "USD"},
        "merchant": "Acme Supplies",
        "description": "Replacement parts",
        "spent_on": "2026-11-20",
    })
}

/// The ids of [`TestApp::org`]'s teams and people (subjects are the names).
#[derive(Debug, Clone)]
pub struct Org {
    pub ops: String,
    pub ops_east: String,
    pub sales: String,
    pub mia: String,
    pub sam: String,
    pub kim: String,
    pub eve: String,
    pub lou: String,
}

/// Reads a response whatever its body.
pub async fn read(response: reqwest::Response) -> Response {
    try_read(response).await.unwrap()
}

/// Like [`read`], with a body cut off (connection reset) as an `Err`.
pub async fn try_read(response: reqwest::Response) -> Result<Response, reqwest::Error> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await?;
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The raw HTTP answer on `stream` (head and body), or `None` if none
/// arrives within `wait`.
pub fn raw_response(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => {
                received.extend_from_slice(&buffer[..count]);
                let text = String::from_utf8_lossy(&received);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|line| {
                            let (name, value) = line.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(error) => panic!("{error}"),
        }
    }
    (!received.is_empty()).then(|| String::from_utf8_lossy(&received).into_owned())
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(base, query)| (base, Some(query)));
    let scheme_end = base.find("://").map_or(0, |index| index + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{host_part}/{name}?{query}"),
        None => format!("{host_part}/{name}"),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

/// A fresh database on the PostgreSQL server named by
/// [`POSTGRES_URL_VARIABLE`], dropped with this value.
pub struct PostgresDatabase {
    /// The URL of the fresh database.
    pub url: String,
    admin_url: String,
    name: String,
}

impl PostgresDatabase {
    /// Creates the database. A test that gets here runs on PostgreSQL
    /// (it is not ignored: the variable was set when it was built, or `CI`
    /// is set, or `--ignored` was asked for), so a missing server fails it
    /// rather than letting it pass having checked nothing.
    pub fn create() -> Self {
        let admin_url = std::env::var(POSTGRES_URL_VARIABLE)
            .ok()
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| {
                panic!(
                    "{POSTGRES_URL_VARIABLE} must name a PostgreSQL server (e.g. postgres://postgres@127.0.0.1/postgres) for this test to run; in CI it may not be skipped"
                )
            });
        let name = format!("leeway_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::establish(&admin_url).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        Self {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Declares tests that run once per backend: `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($(async fn $name:ident($app:ident: TestApp) $body:block)*) => {
        $(
            mod $name {
                use super::*;
                async fn run($app: $crate::helpers::TestApp) $body

                #[actix_web::test]
                async fn sqlite() {
                    run($crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite)).await;
                }

                #[actix_web::test]
                #[cfg_attr(postgres_tests_unconfigured, ignore = "set LEEWAY_TEST_DATABASE_URL to run on PostgreSQL")]
                async fn postgres() {
                    run($crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres)).await;
                }
            }
        )*
    };
}

/// Declares tests that run once per backend on a server whose configuration
/// `$configure` (a `fn(&mut Config)` in the calling module) adjusts first:
/// `name::sqlite` and `name::postgres` each call `name(app)`.
#[macro_export]
macro_rules! configured_backend_tests {
    ($configure:ident => $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[actix_web::test]
                async fn sqlite() {
                    let app = $crate::helpers::TestApp::spawn_with(
                        $crate::helpers::Backend::Sqlite,
                        super::$configure,
                    );
                    super::$name(app).await;
                }

                #[actix_web::test]
                #[cfg_attr(postgres_tests_unconfigured, ignore = "set LEEWAY_TEST_DATABASE_URL to run on PostgreSQL")]
                async fn postgres() {
                    let app = $crate::helpers::TestApp::spawn_with(
                        $crate::helpers::Backend::Postgres,
                        super::$configure,
                    );
                    super::$name(app).await;
                }
            }
        )*
    };
}
