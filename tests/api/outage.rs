//! A PostgreSQL outage under traffic: while its database is down the real
//! `leeway` binary answers 503 problem+json within the pool's checkout
//! timeout, `/readyz` says it is not ready, and once the database is back the
//! server serves again by itself, without a restart. The test runs its own
//! throwaway PostgreSQL cluster (`initdb` and `pg_ctl` in a temporary
//! directory, on a free port), never the machine's.

use std::cell::Cell;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use reqwest::Method;

use crate::binary::{self, Leeway, UNLIMITED_RATE, call, open_problem, seed_org, send};
use crate::helpers::{Response, spend_body};

/// The server's pool checkout timeout in this test.
const CHECKOUT_TIMEOUT_MS: u64 = 2_000;
/// Longest any answer may take while the database is down: the checkout
/// timeout plus a margin for a slow machine. Longer means a hang.
const OUTAGE_ANSWER_MAX: Duration = Duration::from_millis(CHECKOUT_TIMEOUT_MS + 5_000);
/// How long the server may take to notice that the database is back.
const RECOVERY_WAIT: Duration = Duration::from_secs(20);
/// Clients logging spends throughout the outage.
const CLIENTS: usize = 3;
/// Bound on the requests one client sends.
const REQUESTS_PER_CLIENT_MAX: usize = 10_000;

#[cfg(unix)]
#[actix_web::test]
async fn postgres_stopped_mid_traffic_answers_503_then_recovers_without_restart() {
    let Some(cluster) = Cluster::create() else {
        return;
    };
    let data_dir = tempfile::tempdir().unwrap();
    let cli = Leeway::new(data_dir.path(), Some(&cluster.url()));
    cli.run(&["bootstrap", "--subject", "admin", "--name", "Ada Admin"]);
    let checkout_timeout_ms = CHECKOUT_TIMEOUT_MS.to_string();
    let mut settings = UNLIMITED_RATE.to_vec();
    settings.push(("LEEWAY_DB_POOL_TIMEOUT_MS", &checkout_timeout_ms));
    let mut server = cli.serve(&settings);
    let base_url = server.base_url();
    let client = binary::client();
    seed_org(&client, &base_url, &cli.token("admin")).await;
    let sam = cli.token("sam");
    let problem = open_problem(&client, &base_url, &sam, "Keep the lights on").await;
    let spends_url = format!("{base_url}/v1/problems/{problem}/spends");

    let stop = Rc::new(Cell::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            actix_web::rt::spawn(log_spends_until_stopped(
                client.clone(),
                spends_url.clone(),
                sam.clone(),
                stop.clone(),
            ))
        })
        .collect();
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    // The problem's row is locked, so the spends sent now wait inside their
    // transactions: the database dies under requests in flight, not only
    // between them.
    let mut lock = PgConnection::establish(&cluster.url()).unwrap();
    lock.batch_execute(&format!(
        "BEGIN; SELECT id FROM problems WHERE id = '{problem}' FOR UPDATE"
    ))
    .unwrap();
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    cluster.stop();
    drop(lock);

    assert_down(&client, &base_url, &sam, &problem).await;

    cluster.start();
    wait_until_ready(&client, &base_url, &cli).await;
    let spend = call(
        &client,
        Method::POST,
        &spends_url,
        &sam,
        Some(&spend_body("1.00")),
    )
    .await;
    assert_eq!(spend.status, 201, "{}", spend.body);
    let problem_url = format!("{base_url}/v1/problems/{problem}");
    let read = call(&client, Method::GET, &problem_url, &sam, None).await;
    assert_eq!(read.status, 200, "{}", read.body);

    stop.set(true);
    let mut unavailable_count = 0;
    for handle in clients {
        for answer in handle.await.unwrap() {
            if answer
                .0
                .as_ref()
                .is_ok_and(|response| response.status == 201)
            {
                continue;
            }
            assert_unavailable(&answer);
            unavailable_count += 1;
        }
    }
    assert!(
        unavailable_count > 0,
        "no spend met the outage: the test proved nothing"
    );
    assert!(server.is_running(), "the server died:\n{}", cli.log());
}

/// While the database is down, the routes that need it answer 503
/// problem+json with Retry-After in bounded time; liveness still answers.
async fn assert_down(client: &reqwest::Client, base_url: &str, token: &str, problem: &str) {
    let readyz_url = format!("{base_url}/readyz");
    let readyz = timed(send(client, Method::GET, &readyz_url, token, None, &[])).await;
    assert_unavailable(&readyz);
    let spends_url = format!("{base_url}/v1/problems/{problem}/spends");
    let body = spend_body("1.00");
    let spend = timed(send(
        client,
        Method::POST,
        &spends_url,
        token,
        Some(&body),
        &[],
    ))
    .await;
    assert_unavailable(&spend);
    let problem_url = format!("{base_url}/v1/problems/{problem}");
    let read = timed(send(client, Method::GET, &problem_url, token, None, &[])).await;
    assert_unavailable(&read);
    let healthz_url = format!("{base_url}/healthz");
    let healthz = call(client, Method::GET, &healthz_url, token, None).await;
    assert_eq!(healthz.status, 200, "{}", healthz.body);
}

/// Polls `/readyz` until it answers 200, for at most [`RECOVERY_WAIT`].
async fn wait_until_ready(client: &reqwest::Client, base_url: &str, cli: &Leeway) {
    let url = format!("{base_url}/readyz");
    let deadline = Instant::now() + RECOVERY_WAIT;
    loop {
        let readyz = call(client, Method::GET, &url, "", None).await;
        if readyz.status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not ready {RECOVERY_WAIT:?} after the database returned: {}\nserver log:\n{}",
            readyz.body,
            cli.log()
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An answer and how long it took.
struct Timed(Result<Response, reqwest::Error>, Duration);

async fn timed(request: impl Future<Output = Result<Response, reqwest::Error>>) -> Timed {
    let started = Instant::now();
    let outcome = request.await;
    Timed(outcome, started.elapsed())
}

/// A 503 problem+json with Retry-After that came within [`OUTAGE_ANSWER_MAX`].
#[track_caller]
fn assert_unavailable(answer: &Timed) {
    let Timed(outcome, elapsed) = answer;
    let response = outcome
        .as_ref()
        .unwrap_or_else(|error| panic!("no answer: {error}"));
    response.assert_problem(503, "service_unavailable");
    assert!(
        response.header("retry-after").is_some(),
        "{:?}",
        response.headers
    );
    assert!(
        *elapsed < OUTAGE_ANSWER_MAX,
        "the answer took {elapsed:?}: {}",
        response.body
    );
}

/// Logs spends one after another until `stop` is set; returns every answer.
async fn log_spends_until_stopped(
    client: reqwest::Client,
    url: String,
    token: String,
    stop: Rc<Cell<bool>>,
) -> Vec<Timed> {
    let mut answers = Vec::new();
    for _ in 0..REQUESTS_PER_CLIENT_MAX {
        if stop.get() {
            break;
        }
        let body = spend_body("0.01");
        answers.push(timed(send(&client, Method::POST, &url, &token, Some(&body), &[])).await);
    }
    answers
}

/// A throwaway PostgreSQL cluster in a temporary directory, stopped when dropped.
struct Cluster {
    bin_dir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// PostgreSQL refuses to run as root, so the tools run as `postgres` then.
    as_postgres: bool,
}

impl Cluster {
    /// Creates and starts a cluster, or returns `None` when PostgreSQL's
    /// server binaries are not installed outside CI; in CI their absence
    /// fails the test.
    fn create() -> Option<Self> {
        let Some(bin_dir) = postgres_bin_dir() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "initdb and pg_ctl must be installed in CI: the outage test may not be skipped there"
            );
            eprintln!("PostgreSQL's initdb and pg_ctl were not found: outage test not run");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let chown = Command::new("chown")
                .args(["postgres:", &dir.path().to_string_lossy()])
                .status()
                .unwrap();
            assert!(chown.success());
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self {
            bin_dir,
            dir,
            port,
            as_postgres,
        };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--no-instructions",
                "--locale=C",
                "-E",
                "UTF8",
            ],
        );
        cluster.start();
        Some(cluster)
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    /// The superuser's URL over TCP.
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    fn start(&self) {
        let socket_dir = self.dir.path().to_string_lossy().into_owned();
        let log = self.dir.path().join("postgres.log");
        // fsync is off: this cluster holds nothing worth keeping.
        let options = format!(
            "-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir(),
                "-l",
                &log.to_string_lossy(),
                "-o",
                &options,
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
    }

    /// Stops the server the hard way: connections are cut, nothing is
    /// shut down politely, as when the database host fails.
    fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir(),
                "-m",
                "immediate",
                "-w",
                "-t",
                "30",
                "stop",
            ],
        );
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.bin_dir.join(tool);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = self.command(tool).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// The directory holding `initdb` and `pg_ctl`: `pg_config --bindir`, else
/// the newest `/usr/lib/postgresql/*/bin` (Debian keeps them off the PATH).
fn postgres_bin_dir() -> Option<PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let mut installed: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    installed.sort();
    from_pg_config
        .into_iter()
        .chain(installed.into_iter().rev().map(|(_, dir)| dir))
        .find(|dir| has_server_tools(dir))
}

fn has_server_tools(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

fn is_root() -> bool {
    let output = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}
