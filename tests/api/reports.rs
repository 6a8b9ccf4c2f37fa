//! The delegation report: per team, problem or person and month.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::exports::raw;

fn this_month() -> String {
    chrono::Utc::now().format("%Y-%m").to_string()
}

fn group<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["group_id"] == id)
        .unwrap_or_else(|| panic!("no group {id} in {body}"))
}

fn usd(amount: &str) -> Value {
    json!({"amount": amount, "currency": "USD"})
}

backend_tests! {
    async fn the_summary_splits_autonomous_from_reviewed_spending(app: TestApp) {
        let org = app.org().await;
        let printer = app.open_problem("sam", "Printer").await;
        let cables = app.open_problem("eve", "Cables").await;
        let booth = app.open_problem("lou", "Booth").await;
        assert_eq!(app.spend("sam", &printer, "350.00").await.status, 201);
        let partial = app.spend("sam", &printer, "120.00").await.id();
        let rejected = app.spend("sam", &printer, "80.00").await.id();
        assert_eq!(app.spend("eve", &cables, "30.00").await.status, 201);
        assert_eq!(app.spend("lou", &booth, "399.99").await.status, 201);
        let pending = app.spend("lou", &booth, "10.00").await.id();
        let approve = json!({"decision": "approve", "note": "in part", "approved_amount": {"amount": "100.00", "currency": "USD"}});
        assert_eq!(app.post("mia", &format!("/v1/spends/{partial}/review"), &approve).await.status, 200);
        assert_eq!(app.post("mia", &format!("/v1/spends/{rejected}/review"), &json!({"decision": "reject", "note": "no"})).await.status, 200);
        // An escalation of the pending spend, as the escalation job records it.
        app.execute_sql(&format!(
            "INSERT INTO events (id, occurred_at, actor_id, kind, subject_type, subject_id, team_id, problem_id, data) \
             VALUES ('escalation-1', '2026-11-25 12:00:00', NULL, 'spend.escalated', 'spend', '{pending}', '{}', '{booth}', '{{}}')",
            org.sales
        ));

        let report = app.get("fin", "/v1/reports/summary?group_by=team&period=month").await;
        assert_eq!(report.status, 200, "{}", report.body);
        assert_eq!(report.body["group_by"], "team");
        assert_eq!(report.body["items"].as_array().unwrap().len(), 3);
        let ops = group(&report.body, &org.ops);
        assert_eq!(ops["period"], this_month());
        assert_eq!(ops["spend_count"], 3);
        assert_eq!(ops["spent_autonomously"], usd("350.00"));
        assert_eq!(ops["spent_after_review"], usd("100.00"));
        assert_eq!(ops["overrun_count"], 2);
        assert_eq!(ops["overrun_amount"], usd("150.00"));
        assert_eq!((ops["approval_count"].as_i64(), ops["rejection_count"].as_i64(), ops["pending_count"].as_i64()), (Some(1), Some(1), Some(0)));
        assert!(ops["decision_seconds_median"].as_i64().unwrap() >= 0);
        assert!(ops["decision_seconds_p90"].as_i64().unwrap() >= ops["decision_seconds_median"].as_i64().unwrap());
        let east = group(&report.body, &org.ops_east);
        assert_eq!(east["spent_autonomously"], usd("30.00"));
        assert_eq!(east["decision_seconds_median"], Value::Null);
        let sales = group(&report.body, &org.sales);
        assert_eq!(sales["pending_count"], 1);
        assert_eq!(sales["overrun_amount"], usd("9.99"));
        assert_eq!(sales["escalation_count"], 1);
        assert_eq!(ops["escalation_count"], 0);

        let people = app.get("fin", "/v1/reports/summary?group_by=person").await;
        assert_eq!(group(&people.body, &org.sam)["spend_count"], 3);
        let problems = app.get("admin", &format!("/v1/reports/summary?group_by=problem&team_id={}", org.ops)).await;
        assert_eq!(problems.body["items"].as_array().unwrap().len(), 2, "Ops and its sub-team");
        assert_eq!(group(&problems.body, &cables)["spend_count"], 1);

        // Pages of groups follow the cursor.
        let mut seen = Vec::new();
        let mut path = "/v1/reports/summary?group_by=team&limit=1".to_owned();
        loop {
            let page = app.get("fin", &path).await.body;
            assert_eq!(page["items"].as_array().unwrap().len(), 1);
            seen.push(page["items"][0]["group_id"].as_str().unwrap().to_owned());
            let Some(cursor) = page["next_cursor"].as_str() else { break };
            path = format!("/v1/reports/summary?group_by=team&limit=1&after={cursor}");
        }
        let mut all: Vec<String> = report.body["items"].as_array().unwrap().iter().map(|item| item["group_id"].as_str().unwrap().to_owned()).collect();
        all.sort();
        seen.sort();
        assert_eq!(seen, all);

        // The same report as CSV, by format or by Accept.
        let csv = raw(&app, "fin", "/v1/reports/summary?group_by=team&format=csv").await;
        assert_eq!(csv.status, 200);
        assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8; header=present");
        let lines: Vec<&str> = csv.text.split("\r\n").filter(|line| !line.is_empty()).collect();
        assert_eq!(lines[0], leeway::api::reports::REPORT_COLUMNS.join(","));
        assert_eq!(lines.len(), 4);
        let ops_line = lines.iter().find(|line| line.contains(&org.ops) && !line.contains(&org.ops_east)).unwrap();
        assert!(ops_line.starts_with(&format!("team,{},{},USD,3,350.00,100.00,2,150.00,1,1,0,0,", org.ops, this_month())), "{ops_line}");
        let accepted = app.send_with(reqwest::Method::GET, "/v1/reports/summary?group_by=team", Some("fin"), None, &[("accept", "text/csv")]).await;
        assert_eq!(accepted.header("content-type"), Some("text/csv; charset=utf-8; header=present"));

        assert_eq!(app.get("fin", "/v1/reports/summary").await.body["group_by"], "team");
        app.get("fin", "/v1/reports/summary?group_by=colour").await.assert_problem(400, "invalid_query");
        app.get("fin", "/v1/reports/summary?group_by=team&period=week").await.assert_problem(400, "invalid_query");
        app.get("fin", "/v1/reports/summary?group_by=team&format=xml").await.assert_problem(400, "invalid_query");
        app.get("sam", "/v1/reports/summary?group_by=team").await.assert_problem(403, "forbidden");
        app.get("mia", "/v1/reports/summary?group_by=team").await.assert_problem(403, "forbidden");
    }

    async fn decision_times_are_nearest_rank_percentiles(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Slow reviews").await;
        assert_eq!(app.spend("sam", &problem, "400.00").await.status, 201);
        let mut flagged = Vec::new();
        for _ in 0..4 {
            let spend = app.spend("sam", &problem, "1.00").await;
            assert_eq!(spend.body["status"], "pending_review");
            flagged.push(spend.id());
        }
        for spend in &flagged {
            let decided = app.post("mia", &format!("/v1/spends/{spend}/review"), &json!({"decision": "reject", "note": "no"})).await;
            assert_eq!(decided.status, 200, "{}", decided.body);
        }
        app.execute_sql(&format!("UPDATE spends SET logged_at = '2026-10-05 09:00:00' WHERE problem_id = '{problem}'"));
        for (spend, seconds) in flagged.iter().zip([10, 20, 30, 400]) {
            app.execute_sql(&format!(
                "UPDATE spends SET decided_at = '2026-10-05 09:{:02}:{:02}' WHERE id = '{spend}'",
                seconds / 60,
                seconds % 60
            ));
        }
        let report = app.get("fin", "/v1/reports/summary?group_by=problem&from=2026-10-01&to=2026-11-01").await;
        assert_eq!(report.status, 200, "{}", report.body);
        let row = group(&report.body, &problem);
        assert_eq!(row["period"], "2026-10");
        assert_eq!(row["rejection_count"], 4);
        assert_eq!(row["decision_seconds_median"], 20);
        assert_eq!(row["decision_seconds_p90"], 400);
    }
}
