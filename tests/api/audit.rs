//! Tamper evidence: the hash chains, the global sequence, checkpoints,
//! `GET /v1/audit/verify` and `leeway verify`, with an attacker who has
//! write access to the database (and so can drop the append-only triggers).

use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{TEST_SECRET, TestApp};

/// Spends logged at once in the concurrency test.
const CONCURRENT_SPENDS: usize = 30;

/// Whether the test database is PostgreSQL.
pub fn is_postgres(app: &TestApp) -> bool {
    app.database_url.starts_with("postgres")
}

/// What an attacker with database access does first: drop the triggers that
/// make `events` and `audit_checkpoints` append-only.
pub fn drop_append_only_triggers(app: &TestApp) {
    if is_postgres(app) {
        app.execute_sql(
            "DROP TRIGGER events_append_only ON events; \
             DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints",
        );
    } else {
        app.execute_sql(
            "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; \
             DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete",
        );
    }
}

/// Runs `leeway verify` against the test database.
fn leeway_verify(app: &TestApp) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_leeway"))
        .arg("verify")
        .env("LEEWAY_DATA_DIR", dir.path())
        .env("LEEWAY_DATABASE_URL", &app.database_url)
        .env("LEEWAY_JWT_SECRET", TEST_SECRET)
        .env("LEEWAY_LOG", "warn")
        .output()
        .unwrap()
}

/// Some history on two problems and the organisation chain.
async fn some_history(app: &TestApp) -> (String, String) {
    app.org().await;
    let printer = app.open_problem("sam", "Printer").await;
    let desk = app.open_problem("kim", "Desk").await;
    assert_eq!(app.spend("sam", &printer, "350.00").await.status, 201);
    let flagged = app.spend("sam", &printer, "120.00").await.id();
    assert_eq!(app.spend("kim", &desk, "20.00").await.status, 201);
    let review = json!({"decision": "approve", "note": "fine"});
    let decided = app
        .post("mia", &format!("/v1/spends/{flagged}/review"), &review)
        .await;
    assert_eq!(decided.status, 200, "{}", decided.body);
    (printer, flagged)
}

async fn events_of(app: &TestApp, query: &str) -> Vec<Value> {
    let response = app
        .get("fin", &format!("/v1/events?limit=200{query}"))
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.body["items"].as_array().unwrap().clone()
}

backend_tests! {
    async fn every_event_is_chained_and_sequenced(app: TestApp) {
        let (printer, _) = some_history(&app).await;
        let events = events_of(&app, "").await;
        let sequences: Vec<i64> = events.iter().map(|event| event["sequence"].as_i64().unwrap()).collect();
        let mut sorted = sequences.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), sequences.len(), "sequences are unique: {sequences:?}");
        assert!(sequences.iter().all(|sequence| *sequence >= 1));
        let on_printer = events_of(&app, &format!("&problem_id={printer}")).await;
        let positions: Vec<i64> = on_printer.iter().map(|event| event["chain_position"].as_i64().unwrap()).collect();
        assert_eq!(positions, (1..=i64::try_from(positions.len()).unwrap()).collect::<Vec<_>>());
        assert!(on_printer.iter().all(|event| event["chain"] == format!("problem:{printer}")));
        for pair in on_printer.windows(2) {
            assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
            assert!(pair[1]["sequence"].as_i64() > pair[0]["sequence"].as_i64());
        }
        let organisation = events_of(&app, "&kind=team.created").await;
        assert!(organisation.iter().all(|event| event["chain"] == "organisation"));

        let report = app.get("fin", "/v1/audit/verify").await;
        assert_eq!(report.status, 200, "{}", report.body);
        assert_eq!(report.body["ok"], true, "{}", report.body);
        assert_eq!(report.body["broken"], Value::Null);
        assert_eq!(report.body["events_checked"].as_u64().unwrap(), u64::try_from(events.len()).unwrap());
        assert_eq!(report.body["chains_checked"], 3);
        assert_eq!(report.body["unchained_events"], 0);
        assert_eq!(report.body["newest_safe_as_of"], *sorted.last().unwrap());
        app.get("sam", "/v1/audit/verify").await.assert_problem(403, "forbidden");
        app.get("mia", "/v1/audit/verify").await.assert_problem(403, "forbidden");
        assert_eq!(app.get("admin", "/v1/audit/verify").await.status, 200);
    }

    async fn an_edited_event_is_reported_as_the_first_broken_link(app: TestApp) {
        let (_, flagged) = some_history(&app).await;
        let clean = leeway_verify(&app);
        assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stderr));
        assert!(String::from_utf8_lossy(&clean.stderr).contains("sealed checkpoint 1"));

        let target = events_of(&app, &format!("&subject_id={flagged}&kind=spend.flagged")).await[0].clone();
        let id = target["id"].as_str().unwrap();
        drop_append_only_triggers(&app);
        // The attacker lowers the flagged amount in the recorded history.
        let forged = target["data"].to_string().replace("120.00", "12.00");
        app.execute_sql(&format!(
            "UPDATE events SET data = '{forged}' WHERE id = '{id}'"
        ));

        let report = app.get("fin", "/v1/audit/verify").await;
        assert_eq!(report.status, 200, "{}", report.body);
        assert_eq!(report.body["ok"], false);
        let broken = &report.body["broken"];
        assert_eq!(broken["event_id"], id, "{broken}");
        assert_eq!(broken["chain"], target["chain"]);
        assert_eq!(broken["position"], target["chain_position"]);
        assert_eq!(broken["field"], "hash");
        assert_eq!(broken["found"], target["hash"]);
        assert_ne!(broken["expected"], target["hash"]);

        let cli = leeway_verify(&app);
        assert!(!cli.status.success());
        let stderr = String::from_utf8_lossy(&cli.stderr);
        assert!(stderr.contains("broken") && stderr.contains(id), "{stderr}");
        let stdout: Value = serde_json::from_slice(&cli.stdout).unwrap();
        assert_eq!(stdout["broken"]["event_id"], id);
    }

    async fn a_consistently_truncated_chain_is_caught_by_the_checkpoint(app: TestApp) {
        let (printer, _) = some_history(&app).await;
        assert!(leeway_verify(&app).status.success());
        // The attacker deletes the newest event of a chain and rewinds its
        // head row: the chain alone is consistent again.
        let chain = events_of(&app, &format!("&problem_id={printer}")).await;
        let last = chain.last().unwrap();
        drop_append_only_triggers(&app);
        app.execute_sql(&format!(
            "DELETE FROM events WHERE id = '{}'; \
             UPDATE chain_heads SET position = position - 1, hash = '{}' WHERE chain_key = 'problem:{printer}'",
            last["id"].as_str().unwrap(),
            last["prev_hash"].as_str().unwrap()
        ));
        let report = app.get("fin", "/v1/audit/verify").await;
        assert_eq!(report.body["ok"], false, "{}", report.body);
        assert_eq!(report.body["broken"]["chain"], "checkpoint:1");
        assert_eq!(report.body["broken"]["field"], "heads_hash");
        // Deleting an event in the middle of a chain breaks the chain itself.
        let middle = &chain[1];
        app.execute_sql(&format!("DELETE FROM events WHERE id = '{}'", middle["id"].as_str().unwrap()));
        let report = app.get("fin", "/v1/audit/verify").await;
        assert_eq!(report.body["broken"]["chain"], format!("problem:{printer}"));
        assert_eq!(report.body["broken"]["position"], 2);
        assert_eq!(report.body["broken"]["field"], "position");
    }

    async fn concurrent_writers_keep_every_chain_whole(app: TestApp) {
        app.org().await;
        let sams = app.open_problem("sam", "Sam's").await;
        let kims = app.open_problem("kim", "Kim's").await;
        // Many spends at once on two problems (two chains), while an admin
        // writes to the organisation chain.
        let spends = (0..CONCURRENT_SPENDS).map(|index| {
            let (subject, problem) = if index % 2 == 0 { ("sam", &sams) } else { ("kim", &kims) };
            app.spend(subject, problem, "15.00")
        });
        let names: Vec<Value> = (0..4).map(|index| json!({"name": format!("Team {index}")})).collect();
        let teams = names.iter().map(|name| app.post("admin", "/v1/teams", name));
        let (spent, created) = futures_util::future::join(
            futures_util::future::join_all(spends),
            futures_util::future::join_all(teams),
        )
        .await;
        assert!(spent.iter().chain(created.iter()).all(|response| response.status == 201));
        let report = app.get("fin", "/v1/audit/verify").await.body;
        assert_eq!(report["ok"], true, "{report}");
        let on_sams = events_of(&app, &format!("&problem_id={sams}")).await;
        assert_eq!(on_sams.len(), CONCURRENT_SPENDS / 2 + 1);
        let sequences: std::collections::BTreeSet<i64> =
            events_of(&app, "").await.iter().map(|event| event["sequence"].as_i64().unwrap()).collect();
        assert_eq!(sequences.len(), usize::try_from(report["events_checked"].as_u64().unwrap()).unwrap());
    }

    async fn the_database_refuses_to_change_events_and_checkpoints(app: TestApp) {
        some_history(&app).await;
        assert!(leeway_verify(&app).status.success());
        for statement in [
            "UPDATE events SET hash = 'forged'",
            "UPDATE events SET data = '{}' WHERE kind = 'spend.flagged'",
            "DELETE FROM events WHERE kind = 'spend.flagged'",
            "UPDATE audit_checkpoints SET heads_hash = 'forged'",
            "DELETE FROM audit_checkpoints",
        ] {
            let refused = app.try_execute_sql(statement).unwrap_err();
            assert!(refused.contains("append-only"), "{statement}: {refused}");
        }
        assert_eq!(app.get("fin", "/v1/audit/verify").await.body["ok"], true);
    }
}
