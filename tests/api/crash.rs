//! Crash safety of the real `leeway` binary: SIGKILLed at random moments
//! while clients log spends with `Idempotency-Key`, then restarted on the same
//! database. Afterwards every acknowledged spend is there exactly once,
//! retrying any request with its key never makes a second spend, each
//! problem's running totals equal the sum of its spends, and the audit chain
//! verifies. Runs on SQLite (the data directory's database) and on
//! PostgreSQL (a fresh database on the test server).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::binary::{self, Leeway, Server, UNLIMITED_RATE, call, open_problem, seed_org, send};
use crate::helpers::{PostgresDatabase, spend_body};

/// Times the server is killed under traffic.
const KILL_ROUNDS: usize = 4;
/// Clients logging spends at once, so SQLite commits several in one batch;
/// half log as `sam`, half as `kim`.
const CLIENTS: usize = 8;
/// Traffic runs at least this long before a kill...
const KILL_AFTER_MIN_MS: u64 = 150;
/// ...plus a random part below this.
const KILL_AFTER_SPREAD_MS: u64 = 700;
/// Bound on the spends one client sends in one round.
const SPENDS_PER_CLIENT_MAX: usize = 10_000;
/// The members logging spends, each on a problem of their own.
const CALLERS: [&str; 2] = ["sam", "kim"];

/// One spend request sent with an idempotency key.
struct Attempt {
    caller: &'static str,
    problem_id: String,
    key: String,
    body: Value,
    /// The 2xx answer, when one arrived before the kill.
    acknowledged: Option<Value>,
}

#[cfg(unix)]
#[actix_web::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    survives_kills(dir.path(), None, &UNLIMITED_RATE).await;
}

#[cfg(unix)]
#[actix_web::test]
#[cfg_attr(
    postgres_tests_unconfigured,
    ignore = "set LEEWAY_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres() {
    let database = PostgresDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    survives_kills(dir.path(), Some(&database.url), &UNLIMITED_RATE).await;
}

/// PostgreSQL with group commit on: a kill mid-batch loses no acknowledged
/// spend and leaves no part of a batch behind.
#[cfg(unix)]
#[actix_web::test]
#[cfg_attr(
    postgres_tests_unconfigured,
    ignore = "set LEEWAY_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn postgres_group_commit() {
    let database = PostgresDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = UNLIMITED_RATE.to_vec();
    settings.push(("LEEWAY_GROUP_COMMIT_POSTGRES", "true"));
    survives_kills(dir.path(), Some(&database.url), &settings).await;
}

/// `server_database_url` is what the binary is given (`None`: its default
/// SQLite file), `settings` the environment it serves with.
async fn survives_kills(
    data_dir: &Path,
    server_database_url: Option<&str>,
    settings: &[(&str, &str)],
) {
    let cli = Leeway::new(data_dir, server_database_url);
    cli.run(&["bootstrap", "--subject", "admin", "--name", "Ada Admin"]);
    let admin = cli.token("admin");
    let tokens: HashMap<&str, String> = CALLERS
        .iter()
        .map(|&caller| (caller, cli.token(caller)))
        .collect();
    let client = binary::client();

    let server = cli.serve(settings);
    seed_org(&client, &server.base_url(), &admin).await;
    let mut problems = HashMap::new();
    for caller in CALLERS {
        let problem = open_problem(&client, &server.base_url(), &tokens[caller], caller).await;
        problems.insert(caller, problem);
    }

    let (mut server, attempts) =
        kill_under_traffic(&cli, server, settings, &client, &tokens, &problems).await;
    let base_url = server.base_url();
    assert!(
        attempts
            .iter()
            .any(|attempt| attempt.acknowledged.is_some()),
        "no spend was acknowledged: the test proved nothing\nserver log:\n{}",
        cli.log()
    );

    let spend_of_key = retry_every_attempt(&client, &base_url, &tokens, &attempts).await;
    assert_acknowledged_spends_exist(&client, &base_url, &admin, &attempts).await;

    let mut listed_ids = Vec::new();
    for caller in CALLERS {
        let spends = list_spends(&client, &base_url, &admin, &problems[caller]).await;
        assert_totals_match(&client, &base_url, &admin, &problems[caller], &spends).await;
        listed_ids.extend(
            spends
                .iter()
                .map(|spend| spend["id"].as_str().unwrap().to_owned()),
        );
    }
    let listed: HashSet<&String> = listed_ids.iter().collect();
    assert_eq!(listed.len(), listed_ids.len(), "a spend is listed twice");
    let keyed: HashSet<&String> = spend_of_key.values().collect();
    assert_eq!(
        keyed.len(),
        spend_of_key.len(),
        "two idempotency keys resolved to one spend"
    );
    // Every spend was sent with a key, so a spend no key resolves to would
    // be a duplicate made behind a key's back.
    let unkeyed: Vec<_> = listed.difference(&keyed).collect();
    let unlisted: Vec<_> = keyed.difference(&listed).collect();
    assert!(
        unkeyed.is_empty() && unlisted.is_empty(),
        "spends no idempotency key resolves to: {unkeyed:?}; keys resolving to spends not listed: {unlisted:?}"
    );

    let verify = call(
        &client,
        Method::GET,
        &format!("{base_url}/v1/audit/verify"),
        &admin,
        None,
    )
    .await;
    assert_eq!(verify.status, 200, "{}", verify.body);
    assert_eq!(verify.body["ok"], true, "{}", verify.body);
    assert!(server.is_running());
}

/// Runs [`KILL_ROUNDS`] rounds of traffic against `server`, each ended by a
/// SIGKILL at a random moment and followed by a restart on the same
/// database; returns the last server and every attempt.
async fn kill_under_traffic(
    cli: &Leeway,
    mut server: Server,
    settings: &[(&str, &str)],
    client: &reqwest::Client,
    tokens: &HashMap<&str, String>,
    problems: &HashMap<&str, String>,
) -> (Server, Vec<Attempt>) {
    let mut attempts = Vec::new();
    for round in 0..KILL_ROUNDS {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client_index| {
                let caller = CALLERS[client_index % CALLERS.len()];
                actix_web::rt::spawn(log_spends_until_refused(
                    client.clone(),
                    server.base_url(),
                    tokens[caller].clone(),
                    caller,
                    problems[caller].clone(),
                    format!("round{round}-client{client_index}"),
                ))
            })
            .collect();
        let kill_after_ms =
            KILL_AFTER_MIN_MS + RandomState::new().hash_one(round) % KILL_AFTER_SPREAD_MS;
        actix_web::rt::time::sleep(Duration::from_millis(kill_after_ms)).await;
        server.kill();
        for handle in clients {
            attempts.extend(handle.await.unwrap());
        }
        let acknowledged = attempts.iter().filter(|a| a.acknowledged.is_some()).count();
        eprintln!(
            "round {round}: killed after {kill_after_ms} ms; {} attempts so far, {acknowledged} acknowledged",
            attempts.len()
        );
        server = cli.serve(settings);
    }
    (server, attempts)
}

/// Each acknowledged spend reads back as it was acknowledged.
async fn assert_acknowledged_spends_exist(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    attempts: &[Attempt],
) {
    for attempt in attempts {
        if let Some(first) = &attempt.acknowledged {
            let fetched = call(
                client,
                Method::GET,
                &format!("{base_url}/v1/spends/{}", first["id"].as_str().unwrap()),
                token,
                None,
            )
            .await;
            assert_eq!(fetched.status, 200, "{}", fetched.body);
            assert_eq!(fetched.body["amount"], first["amount"]);
            assert_eq!(fetched.body["problem_id"], attempt.problem_id.as_str());
        }
    }
}

/// Logs spends one after another until the server stops answering.
async fn log_spends_until_refused(
    client: reqwest::Client,
    base_url: String,
    token: String,
    caller: &'static str,
    problem_id: String,
    key_prefix: String,
) -> Vec<Attempt> {
    let url = format!("{base_url}/v1/problems/{problem_id}/spends");
    let mut attempts = Vec::new();
    for sequence in 0..SPENDS_PER_CLIENT_MAX {
        let key = format!("{key_prefix}-{sequence}");
        // Amounts vary so the problems pass their 400.00 limit and later
        // spends are flagged: both running totals take part. From 60.00 up,
        // so the limit is passed within the first two spends of each client
        // even when a loaded machine fits few spends before each kill.
        let body = spend_body(&format!(
            "{}.{:02}",
            60 + sequence * 7 % 80,
            sequence * 37 % 100
        ));
        let outcome = send(
            &client,
            Method::POST,
            &url,
            &token,
            Some(&body),
            &[("Idempotency-Key", &key)],
        )
        .await;
        let refused = outcome.is_err();
        let acknowledged = match outcome {
            Ok(response) if response.status == 201 => Some(response.body),
            Ok(response) => panic!(
                "a spend before the kill answered {}: {}",
                response.status, response.body
            ),
            Err(_) => None,
        };
        attempts.push(Attempt {
            caller,
            problem_id: problem_id.clone(),
            key,
            body,
            acknowledged,
        });
        if refused {
            break;
        }
    }
    attempts
}

/// Sends every attempt again with its key and returns the spend id each key
/// resolves to. An acknowledged attempt must replay its first answer; an
/// unacknowledged one either replays (it committed before the kill) or runs
/// now. Nothing of a killed process lingers: the claim, the work and the
/// stored response commit together, so no retry finds its key in flight.
async fn retry_every_attempt(
    client: &reqwest::Client,
    base_url: &str,
    tokens: &HashMap<&str, String>,
    attempts: &[Attempt],
) -> HashMap<String, String> {
    let mut spend_of_key = HashMap::new();
    let (mut committed_unacknowledged, mut never_committed) = (0, 0);
    for attempt in attempts {
        let retried = retry(client, base_url, tokens, attempt).await;
        assert_eq!(retried.status, 201, "{}", retried.body);
        if let Some(first) = &attempt.acknowledged {
            assert_eq!(retried.header("idempotent-replayed"), Some("true"));
            assert_eq!(&retried.body, first, "the retry answered another spend");
        } else if retried.header("idempotent-replayed").is_some() {
            committed_unacknowledged += 1;
        } else {
            never_committed += 1;
        }
        spend_of_key.insert(attempt.key.clone(), retried.id());
    }
    eprintln!(
        "retried {} attempts; of the unacknowledged, {committed_unacknowledged} had committed, \
         {never_committed} had not",
        attempts.len(),
    );
    spend_of_key
}

async fn retry(
    client: &reqwest::Client,
    base_url: &str,
    tokens: &HashMap<&str, String>,
    attempt: &Attempt,
) -> crate::helpers::Response {
    send(
        client,
        Method::POST,
        &format!("{base_url}/v1/problems/{}/spends", attempt.problem_id),
        &tokens[attempt.caller],
        Some(&attempt.body),
        &[("Idempotency-Key", &attempt.key)],
    )
    .await
    .unwrap()
}

/// Every spend of a problem, page by page.
async fn list_spends(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    problem_id: &str,
) -> Vec<Value> {
    let mut spends = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let first_page = format!("{base_url}/v1/spends?problem_id={problem_id}&limit=200");
        let url = match &cursor {
            Some(after) => format!("{first_page}&after={after}"),
            None => first_page,
        };
        let page = call(client, Method::GET, &url, token, None).await;
        assert_eq!(page.status, 200, "{}", page.body);
        spends.extend(page.body["items"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return spends,
        }
    }
}

/// The problem's running totals equal the sums of its spends by status.
async fn assert_totals_match(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    problem_id: &str,
    spends: &[Value],
) {
    let sum_minor = |status: &str| -> i64 {
        spends
            .iter()
            .filter(|spend| spend["status"] == status)
            .map(|spend| minor_units(&spend["amount"]))
            .sum()
    };
    let problem = call(
        client,
        Method::GET,
        &format!("{base_url}/v1/problems/{problem_id}"),
        token,
        None,
    )
    .await;
    assert_eq!(problem.status, 200, "{}", problem.body);
    assert_eq!(
        minor_units(&problem.body["approved"]),
        sum_minor("approved")
    );
    assert_eq!(
        minor_units(&problem.body["pending_review"]),
        sum_minor("pending_review")
    );
    assert!(
        sum_minor("pending_review") > 0,
        "no spend went past the limit: the pending total was not exercised"
    );
}

/// A USD money object's amount in cents.
fn minor_units(money: &Value) -> i64 {
    let text = money["amount"].as_str().unwrap();
    let (whole, cents) = text.split_once('.').unwrap();
    whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}
