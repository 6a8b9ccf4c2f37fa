//! Finance exports: the CSV matches the ledger, formulas are neutralised, an
//! `as_of` re-run is byte-identical, the beancount journal passes
//! `bean-check`, and a 100,000-spend export streams in constant memory.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::audit::is_postgres;
use crate::backend_tests;
use crate::helpers::{TEST_SECRET, TestApp, spend_body};

/// Spends inserted for the streaming test.
const BULK_SPENDS: u32 = 100_000;
/// How much the server's peak memory may grow while streaming them; a
/// handler that held the whole body would need several times this.
const STREAM_MEMORY_GROWTH_MAX_BYTES: u64 = 32 * 1024 * 1024;
/// Length of each bulk spend's description, so the body dwarfs the bound.
const BULK_DESCRIPTION_LENGTH: usize = 600;

/// A response's status, headers and raw body.
pub struct Raw {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

/// GETs `path` as `subject` and keeps the body as text.
pub async fn raw(app: &TestApp, subject: &str, path: &str) -> Raw {
    let response = app
        .client
        .get(format!("{}{path}", app.base_url))
        .bearer_auth(app.token(subject))
        .send()
        .await
        .unwrap();
    Raw {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

/// CSV rows as maps from column to cell (no cell of these tests holds a
/// comma or a line break, which keeps this parser honest and short).
fn csv_rows(text: &str) -> Vec<HashMap<String, String>> {
    assert!(text.ends_with("\r\n"));
    let mut lines = text.split("\r\n").filter(|line| !line.is_empty());
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{line}");
            header
                .iter()
                .cloned()
                .zip(cells.into_iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

fn cents(amount: &str) -> i64 {
    let (units, fraction) = amount.split_once('.').unwrap();
    units.parse::<i64>().unwrap() * 100 + fraction.parse::<i64>().unwrap()
}

/// A ledger with every status on two teams' problems.
async fn ledger(app: &TestApp) -> (crate::helpers::Org, Vec<String>) {
    let org = app.org().await;
    let printer = app.open_problem("sam", "Printer").await;
    let cables = app.open_problem("eve", "Cables").await;
    let booth = app.open_problem("lou", "Booth").await;
    assert_eq!(app.spend("sam", &printer, "350.00").await.status, 201);
    let approved_later = app.spend("sam", &printer, "120.00").await.id();
    let rejected = app.spend("sam", &printer, "80.00").await.id();
    let voided = app.spend("eve", &cables, "30.00").await.id();
    assert_eq!(app.spend("eve", &cables, "45.50").await.status, 201);
    assert_eq!(app.spend("lou", &booth, "399.99").await.status, 201);
    let pending = app.spend("lou", &booth, "10.00").await;
    assert_eq!(pending.body["status"], "pending_review");
    let reject = json!({"decision": "reject", "note": "no"});
    // Approved in part: only 100.00 of the 120.00 counts towards the problem.
    let partial = json!({
        "decision": "approve",
        "note": "the cables were not needed",
        "approved_amount": {"amount": "100.00", "currency": "USD"},
    });
    let decided = app
        .post(
            "mia",
            &format!("/v1/spends/{approved_later}/review"),
            &partial,
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.body);
    assert_eq!(
        app.post("mia", &format!("/v1/spends/{rejected}/review"), &reject)
            .await
            .status,
        200
    );
    let void = app
        .post(
            "mia",
            &format!("/v1/spends/{voided}/void"),
            &json!({"reason": "duplicate"}),
        )
        .await;
    assert_eq!(void.status, 200, "{}", void.body);
    (org, vec![printer, cables, booth])
}

/// Starts `leeway serve` on the test database in its own process.
struct Server {
    child: Child,
    base_url: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(app: &TestApp) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_leeway"))
            .arg("serve")
            .env("LEEWAY_BIND", "127.0.0.1:0")
            .env("LEEWAY_DATABASE_URL", &app.database_url)
            .env("LEEWAY_JWT_SECRET", TEST_SECRET)
            .env("LEEWAY_DATA_DIR", dir.path())
            .env("LEEWAY_WORKERS", "1")
            .env("LEEWAY_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut base_url = None;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.split_once("listening on ").map(|(_, rest)| rest) {
                base_url = Some(rest.split_whitespace().next().unwrap().to_owned());
                break;
            }
        }
        Self {
            child,
            base_url: base_url.unwrap(),
            _dir: dir,
        }
    }

    /// A field of /proc/PID/status, in bytes.
    fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|line| line.starts_with(field)).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// Streams `path` and returns (bytes, CRLF-terminated lines), keeping nothing.
    async fn drain(&self, app: &TestApp, path: &str) -> (u64, u64) {
        let mut response = app
            .client
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(app.token("fin"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.content_length(),
            None,
            "an export is streamed, not sized up front"
        );
        let (mut bytes, mut lines) = (0, 0);
        while let Some(chunk) = response.chunk().await.unwrap() {
            bytes += chunk.len() as u64;
            lines += chunk.split(|byte| *byte == b'\n').count() as u64 - 1;
        }
        (bytes, lines)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

backend_tests! {
    async fn the_csv_matches_the_ledger_and_an_as_of_rerun_is_identical(app: TestApp) {
        let (org, problems) = ledger(&app).await;
        let csv = raw(&app, "fin", "/v1/exports/spends.csv").await;
        assert_eq!(csv.status, 200, "{}", csv.text);
        assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8; header=present");
        let header = csv.text.split("\r\n").next().unwrap();
        assert_eq!(header, leeway::api::exports::SPEND_COLUMNS.join(","));
        let rows = csv_rows(&csv.text);
        assert_eq!(rows.len(), 7);
        for problem in &problems {
            let totals = app.get("fin", &format!("/v1/problems/{problem}")).await.body;
            let sum = |column: &str, statuses: &[&str]| -> i64 {
                rows.iter()
                    .filter(|row| &row["problem_id"] == problem && statuses.contains(&row["status"].as_str()))
                    .map(|row| cents(&row[column]))
                    .sum()
            };
            assert_eq!(sum("approved_amount", &["approved", "approved_by_manager"]), cents(totals["approved"]["amount"].as_str().unwrap()), "{problem}");
            assert_eq!(sum("amount", &["pending_review"]), cents(totals["pending_review"]["amount"].as_str().unwrap()), "{problem}");
        }
        let by_status = |status: &str| rows.iter().filter(|row| row["status"] == status).count();
        assert_eq!((by_status("approved"), by_status("approved_by_manager"), by_status("pending_review"), by_status("rejected"), by_status("voided")), (3, 1, 1, 1, 1));
        let reviewed = rows.iter().find(|row| row["status"] == "approved_by_manager").unwrap();
        assert_eq!(reviewed["decided_by"], org.mia);
        assert_eq!(reviewed["overrun"], "70.00");
        assert_eq!(reviewed["amount"], "120.00");
        assert_eq!(reviewed["approved_amount"], "100.00");
        assert_eq!(reviewed["team_id"], org.ops);
        assert_eq!(reviewed["owner_id"], org.sam);
        assert_eq!(reviewed["policy_version"], "1");

        // Later changes do not move an export pinned to an as_of.
        let as_of = csv.headers["leeway-as-of"].to_str().unwrap().to_owned();
        let events_before = raw(&app, "fin", &format!("/v1/exports/events.jsonl?as_of={as_of}")).await;
        let jsonl_before = raw(&app, "fin", &format!("/v1/exports/spends.jsonl?as_of={as_of}")).await;
        let pending = rows.iter().find(|row| row["status"] == "pending_review").unwrap();
        let decided = app.post("max", &format!("/v1/spends/{}/review", pending["spend_id"]), &json!({"decision": "approve", "note": "ok"})).await;
        assert_eq!(decided.status, 200, "{}", decided.body);
        assert_eq!(app.spend("sam", &problems[0], "1.00").await.status, 201);
        let again = raw(&app, "fin", &format!("/v1/exports/spends.csv?as_of={as_of}")).await;
        assert_eq!(again.text, csv.text);
        assert_eq!(raw(&app, "fin", &format!("/v1/exports/events.jsonl?as_of={as_of}")).await.text, events_before.text);
        assert_eq!(raw(&app, "fin", &format!("/v1/exports/spends.jsonl?as_of={as_of}")).await.text, jsonl_before.text);
        let now = raw(&app, "fin", "/v1/exports/spends.csv").await;
        assert_ne!(now.text, csv.text);
        assert_eq!(csv_rows(&now.text).len(), 8);
        assert!(now.headers["leeway-as-of"].to_str().unwrap().parse::<i64>().unwrap() > as_of.parse::<i64>().unwrap());

        // JSON lines carry the same fields.
        let lines: Vec<Value> = jsonl_before.text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[0].as_object().unwrap().keys().count(), leeway::api::exports::SPEND_COLUMNS.len());
        let events: Vec<Value> = events_before.text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert!(events.windows(2).all(|pair| pair[0]["sequence"].as_i64() < pair[1]["sequence"].as_i64()));
        assert!(events.iter().all(|event| event["sequence"].as_i64().unwrap() <= as_of.parse::<i64>().unwrap()));
    }

    async fn every_export_answers_the_media_type_the_spec_declares(app: TestApp) {
        app.org().await;
        let spec: Value = serde_yaml::from_str(include_str!("../../openapi.yaml")).unwrap();
        // JSON lines go out as text/plain: client generators know no JSON
        // Lines media type, and some parse any `application/...json...` body
        // as one JSON document, which fails on every line after the first.
        for (path, content_type) in [
            ("/v1/exports/spends.csv", "text/csv; charset=utf-8; header=present"),
            ("/v1/exports/spends.jsonl", "text/plain; charset=utf-8"),
            ("/v1/exports/events.jsonl", "text/plain; charset=utf-8"),
            ("/v1/exports/journal.beancount", "text/plain; charset=utf-8"),
        ] {
            let response = raw(&app, "fin", path).await;
            assert_eq!(response.status, 200, "{path}: {}", response.text);
            assert_eq!(response.headers["content-type"], content_type, "{path}");
            let media_type = content_type.split(';').next().unwrap();
            let documented = &spec["paths"][path]["get"]["responses"]["200"]["content"];
            assert!(documented.get(media_type).is_some(), "{path} answers {media_type}; openapi.yaml declares {documented}");
        }
    }

    async fn export_filters_narrow_the_rows(app: TestApp) {
        let (org, _) = ledger(&app).await;
        let count = |text: &str| csv_rows(text).len();
        // Ops includes its sub-team Ops East.
        let ops = raw(&app, "fin", &format!("/v1/exports/spends.csv?team_id={}", org.ops)).await;
        assert_eq!(count(&ops.text), 5);
        let east = raw(&app, "fin", &format!("/v1/exports/spends.csv?team_id={}", org.ops_east)).await;
        assert_eq!(count(&east.text), 2);
        let pending = raw(&app, "fin", "/v1/exports/spends.csv?status=pending_review").await;
        assert_eq!(count(&pending.text), 1);
        assert_eq!(count(&raw(&app, "fin", "/v1/exports/spends.csv?from=2026-11-21").await.text), 0);
        assert_eq!(count(&raw(&app, "fin", "/v1/exports/spends.csv?from=2026-11-20&to=2026-11-21").await.text), 7);
        let sales_events = raw(&app, "fin", &format!("/v1/exports/events.jsonl?team_id={}", org.sales)).await;
        assert!(sales_events.text.lines().all(|line| serde_json::from_str::<Value>(line).unwrap()["team_id"] == org.sales.as_str()));
        let future = raw(&app, "fin", "/v1/exports/events.jsonl?from=2999-01-01T00:00:00Z").await;
        assert_eq!(future.text, "");

        // The team filter reads the tree as it stood at as_of: moving Ops
        // East under Sales later changes neither a pinned export nor its bytes.
        let as_of = ops.headers["leeway-as-of"].to_str().unwrap().to_owned();
        let moved = app.patch("admin", &format!("/v1/teams/{}", org.ops_east), &json!({"parent_id": org.sales})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        let pinned = raw(&app, "fin", &format!("/v1/exports/spends.csv?team_id={}&as_of={as_of}", org.ops)).await;
        assert_eq!(pinned.text, ops.text);
        let ops_now = raw(&app, "fin", &format!("/v1/exports/spends.csv?team_id={}", org.ops)).await;
        assert_eq!(count(&ops_now.text), 3, "Ops East is under Sales now");
        let sales_now = raw(&app, "fin", &format!("/v1/exports/spends.csv?team_id={}", org.sales)).await;
        let sales_then = raw(&app, "fin", &format!("/v1/exports/spends.csv?team_id={}&as_of={as_of}", org.sales)).await;
        assert_eq!(count(&sales_now.text), count(&sales_then.text) + 2);
        // A team created after as_of covers nothing at that as_of.
        let newer = app.post("admin", "/v1/teams", &json!({"name": "Newer"})).await.id();
        let nothing = raw(&app, "fin", &format!("/v1/exports/spends.csv?team_id={newer}&as_of={as_of}")).await;
        assert_eq!((nothing.status, count(&nothing.text)), (200, 0));

        app.get("fin", "/v1/exports/spends.csv?from=yesterday").await.assert_problem(400, "invalid_query");
        app.get("fin", "/v1/exports/spends.csv?status=lost").await.assert_problem(400, "invalid_query");
        app.get("fin", "/v1/exports/spends.csv?as_of=999999999").await.assert_problem(409, "as_of_ahead");
        app.get("fin", "/v1/exports/spends.csv?as_of=-1").await.assert_problem(400, "invalid_query");
        app.get("fin", "/v1/exports/spends.csv?colour=red").await.assert_problem(400, "invalid_query");
        app.get("fin", "/v1/exports/events.jsonl?status=approved").await.assert_problem(400, "invalid_query");
        app.get("fin", "/v1/exports/spends.csv?team_id=01936d5e-0000-7000-8000-000000000000").await.assert_problem(404, "not_found");
        for subject in ["sam", "mia"] {
            for path in ["/v1/exports/spends.csv", "/v1/exports/spends.jsonl", "/v1/exports/events.jsonl", "/v1/exports/journal.beancount"] {
                app.get(subject, path).await.assert_problem(403, "forbidden");
            }
        }
    }

    async fn spreadsheet_formulas_are_neutralised(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Injection").await;
        let mut body = spend_body("5.00");
        body["merchant"] = json!("=HYPERLINK(\"http://evil.example\";\"click\")");
        body["description"] = json!("+cmd|' /C calc'!A0");
        body["category"] = json!("@SUM(A1:A9)");
        assert_eq!(app.post("sam", &format!("/v1/problems/{problem}/spends"), &body).await.status, 201);
        let mut body = spend_body("6.00");
        body["merchant"] = json!("-2+3");
        assert_eq!(app.post("sam", &format!("/v1/problems/{problem}/spends"), &body).await.status, 201);
        let csv = raw(&app, "fin", "/v1/exports/spends.csv").await.text;
        assert!(csv.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\";\"\"click\"\")\","), "{csv}");
        assert!(csv.contains(",'+cmd|' /C calc'!A0,'@SUM(A1:A9),"), "{csv}");
        assert!(csv.contains(",'-2+3,Replacement parts,"), "{csv}");
        for line in csv.split("\r\n") {
            for cell in line.split(',') {
                assert!(!cell.starts_with(['=', '+', '-', '@', '\t']), "{cell:?} in {line}");
            }
        }
    }

    async fn the_journal_is_valid_beancount(app: TestApp) {
        ledger(&app).await;
        let journal = raw(&app, "fin", "/v1/exports/journal.beancount").await;
        assert_eq!(journal.status, 200);
        let text = journal.text;
        assert_eq!(text.matches(" * \"").count(), 4, "{text}");
        assert_eq!(text.matches(" ! \"").count(), 1, "{text}");
        assert!(text.contains("#leeway ^problem-"));
        assert!(text.contains("Expenses:Leeway:Spends  100.00 USD"), "a partial approval books what was approved: {text}");
        let Some(bean_check) = bean_check() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.beancount");
        std::fs::write(&path, &text).unwrap();
        let output = Command::new(bean_check).arg(&path).output().unwrap();
        assert!(
            output.status.success(),
            "bean-check refused the journal:\n{}\n{}\n{text}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    async fn a_large_export_streams_in_constant_memory(app: TestApp) {
        let org = app.org().await;
        let problem = app.open_problem("sam", "Bulk").await;
        assert_eq!(app.spend("sam", &problem, "5.00").await.status, 201);
        let description = "x".repeat(BULK_DESCRIPTION_LENGTH);
        let sam = &org.sam;
        let ops = &org.ops;
        app.execute_sql(&format!(
            "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {BULK_SPENDS}) \
             INSERT INTO spends (id, problem_id, amount_minor, currency, status, merchant, description, spent_on, logged_by, logged_at) \
             SELECT 'bulk-' || (1000000 + i), '{problem}', 100, 'USD', 'approved', 'Bulk Merchant', '{description}', '2026-10-01', '{sam}', '2026-10-01 10:00:00' FROM n"
        ));
        app.execute_sql(&format!(
            "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {BULK_SPENDS}) \
             INSERT INTO events (id, occurred_at, actor_id, kind, subject_type, subject_id, team_id, problem_id, data, sequence) \
             SELECT 'bulk-event-' || i, '2026-10-01 10:00:00', '{sam}', 'spend.approved', 'spend', 'bulk-' || (1000000 + i), '{ops}', '{problem}', '{{\"status\": \"approved\"}}', 1000000 + i FROM n"
        ));
        if is_postgres(&app) {
            // The bulk rows took sequence values by hand; move the sequence past them.
            app.execute_sql(&format!("SELECT setval('leeway_event_sequence', {})", 1_000_000 + BULK_SPENDS));
        }
        let server = Server::start(&app);
        // Warm up on the few spends logged through the API (not the bulk),
        // so code and pools are loaded before the baseline is read.
        let (_, warm_lines) = server.drain(&app, "/v1/exports/spends.csv?from=2026-11-01").await;
        assert_eq!(warm_lines, 2);
        let baseline = server.memory("VmRSS:");
        let (bytes, lines) = server.drain(&app, "/v1/exports/spends.csv").await;
        let peak = server.memory("VmHWM:");
        assert_eq!(lines, u64::from(BULK_SPENDS) + 2);
        assert!(bytes > 2 * STREAM_MEMORY_GROWTH_MAX_BYTES, "the body ({bytes} bytes) must dwarf the bound");
        let growth = peak.saturating_sub(baseline);
        eprintln!("streamed {bytes} bytes; server memory grew by {growth} bytes (baseline {baseline})");
        assert!(
            growth < STREAM_MEMORY_GROWTH_MAX_BYTES,
            "the server grew by {growth} bytes while streaming {bytes} bytes"
        );
    }
}

/// `bean-check`, when installed; CI must have it.
fn bean_check() -> Option<&'static str> {
    let installed = Command::new("bean-check")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "bean-check must be installed in CI (pip install beancount): the journal check may not be skipped there"
        );
        eprintln!("bean-check is not installed: the journal was not checked");
        return None;
    }
    Some("bean-check")
}
