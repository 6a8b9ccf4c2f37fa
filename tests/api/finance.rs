//! The finance role, route by route: it reads every GET route of the URL map
//! (the audit trail, verification, exports and reports included) but the
//! admins' operational metrics, and every write route refuses it, changing
//! nothing (but `PATCH /v1/me`, where anyone chooses their own mail).

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::exports::raw;

/// The ids a route's `{id}` stands for.
struct Ids {
    team: String,
    person: String,
    problem: String,
    spend: String,
    delegation: String,
    webhook: String,
    manager: String,
    delegator: String,
}

/// A delegation of a reviewer's queue to `delegate_id` for the next week.
fn delegation_body(delegate_id: &str) -> Value {
    let now = chrono::Utc::now();
    let rfc3339 =
        |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({"delegate_id": delegate_id, "from": rfc3339(now), "until": rfc3339(now + chrono::Duration::days(7))})
}

impl Ids {
    fn path(&self, path: &str) -> String {
        let id = if path.starts_with("/v1/teams/") {
            &self.team
        } else if path.starts_with("/v1/people/") {
            &self.person
        } else if path.starts_with("/v1/problems/") {
            &self.problem
        } else if path.starts_with("/v1/spends/") {
            &self.spend
        } else if path.starts_with("/v1/webhooks/") {
            &self.webhook
        } else {
            &self.delegation
        };
        let path = path.replace("{id}", id);
        if path == "/v1/reports/summary" {
            format!("{path}?group_by=team")
        } else {
            path
        }
    }
}

/// A body a permitted caller could send to this write route.
fn body_for(method: &str, path: &str, ids: &Ids) -> Value {
    let spend = crate::helpers::spend_body("1.00");
    match (method, path) {
        ("post", "/v1/teams") => json!({"name": "Finance's team"}),
        ("patch", "/v1/teams/{id}") => json!({"name": "Renamed"}),
        ("put", "/v1/teams/{id}/policy") => {
            json!({"per_problem_limit": {"amount": "1.00", "currency": "USD"}, "review_sla_hours": 1})
        }
        ("post", "/v1/people") => json!({"subject": "x", "name": "X", "role": "admin"}),
        ("patch", "/v1/people/{id}") => json!({"role": "admin"}),
        ("post", "/v1/problems") => {
            json!({"title": "T", "success_criteria": "S", "owner_id": ids.person})
        }
        ("patch", "/v1/problems/{id}") => json!({"title": "Mine"}),
        ("post", "/v1/problems/{id}/spends") => spend,
        ("post", "/v1/problems/{id}/acknowledge") => json!({"criteria_version": 1}),
        ("post", "/v1/spends/{id}/review") => json!({"decision": "approve", "note": "ok"}),
        ("post", "/v1/spends/{id}/void") => json!({"reason": "finance says so"}),
        ("post", "/v1/webhooks") => {
            json!({"url": "https://hooks.example.com/finance", "event_types": ["spend.approved"]})
        }
        ("patch", "/v1/webhooks/{id}") => json!({"disabled": true}),
        ("post", "/v1/webhooks/{id}/replay") => json!({"from_sequence": 1}),
        ("post", "/v1/delegations") => {
            // Finance names a manager's queue, as an admin may.
            let mut body = delegation_body(&ids.manager);
            body["delegator_id"] = json!(ids.delegator);
            body
        }
        _ => json!({}),
    }
}

backend_tests! {
    async fn finance_reads_every_route_and_no_write_route_accepts_it(app: TestApp) {
        let org = app.org().await;
        let problem = app.open_problem("sam", "Printer").await;
        assert_eq!(app.spend("sam", &problem, "350.00").await.status, 201);
        let pending = app.spend("sam", &problem, "100.00").await;
        assert_eq!(pending.body["status"], "pending_review");
        let max = app.get("max", "/v1/me").await.id();
        let delegation = app.post("mia", "/v1/delegations", &delegation_body(&max)).await;
        assert_eq!(delegation.status, 201, "{}", delegation.body);
        let webhook = app
            .post("admin", "/v1/webhooks", &json!({"url": "https://hooks.example.com/leeway", "event_types": ["spend.approved"]}))
            .await;
        assert_eq!(webhook.status, 201, "{}", webhook.body);
        let ids = Ids {
            webhook: webhook.id(),
            team: org.ops.clone(),
            person: org.kim.clone(),
            problem: problem.clone(),
            spend: pending.id(),
            delegation: delegation.id(),
            manager: max,
            delegator: org.mia.clone(),
        };

        // The process's operational metrics are not ledger data: admins (or
        // the operator, through LEEWAY_METRICS_PUBLIC) read them.
        let ledger_reads = leeway::api::ROUTES.iter().filter(|(method, path)| *method == "get" && *path != "/metrics");
        for (method, path) in ledger_reads {
            let response = raw(&app, "fin", &ids.path(path)).await;
            assert_eq!(response.status, 200, "finance reads {method} {path}: {}", response.text);
        }
        app.get("fin", "/metrics").await.assert_problem(403, "forbidden");

        let verify_before = app.get("fin", "/v1/audit/verify").await.body;
        let csv_before = raw(&app, "fin", "/v1/exports/spends.csv").await.text;
        let mut writes = 0;
        // Choosing one's own mail (`PATCH /v1/me`) is no ledger write:
        // finance does it like anyone, and it records no event.
        let notify = app.patch("fin", "/v1/me", &json!({"notify": "off"})).await;
        assert_eq!(notify.status, 200, "{}", notify.body);
        let ledger_writes = leeway::api::ROUTES
            .iter()
            .filter(|(method, path)| *method != "get" && (*method, *path) != ("patch", "/v1/me"));
        for (method, path) in ledger_writes {
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = body_for(method, path, &ids);
            let response = app.send(verb, &ids.path(path), Some("fin"), Some(&body)).await;
            assert!(
                matches!(response.status, 403 | 404),
                "finance must be refused {method} {path}, got {}: {}",
                response.status,
                response.body
            );
            writes += 1;
        }
        assert!(writes >= 12, "every write route was tried");
        // Finance has no review queue of its own to hand over either.
        let own = app.post("fin", "/v1/delegations", &delegation_body(&ids.manager)).await;
        own.assert_problem(403, "forbidden");
        let verify_after = app.get("fin", "/v1/audit/verify").await.body;
        assert_eq!(verify_after["events_checked"], verify_before["events_checked"], "no event was written");
        assert_eq!(verify_after["ok"], true);
        assert_eq!(raw(&app, "fin", "/v1/exports/spends.csv").await.text, csv_before);
    }
}
