//! The authorisation sweep (OWASP API1/API5): for every route and every kind
//! of caller, the status the server must answer. The table must name every
//! route the server registers, so a new route without an access rule fails
//! this suite until someone decides who may call it.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;

/// The callers every route is tried with, in the order of a row's statuses:
/// no token, a member of another team, a member of the same team (not the
/// owner), a manager of a sibling team, finance, admin.
const CALLERS: [Option<&str>; 6] = [
    None,
    Some("lou"),
    Some("kim"),
    Some("max"),
    Some("fin"),
    Some("admin"),
];

/// One route, a body to send, and the status for each of [`CALLERS`].
struct Row {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    expected: [u16; 6],
}

fn row(method: &'static str, path: &'static str, body: Option<Value>, expected: [u16; 6]) -> Row {
    Row {
        method,
        path,
        body,
        expected,
    }
}

/// Ids of the objects the routes are tried on.
struct Objects {
    team: String,
    person: String,
    problem: String,
    spend: String,
    delegation: String,
    webhook: String,
    max: String,
}

/// The sweep, one row per route; the statuses follow [`CALLERS`]:
/// none, lou, kim, max, fin, admin.
#[rustfmt::skip]
fn table(objects: &Objects) -> Vec<Row> {
    let now = chrono::Utc::now();
    let window = json!({"delegate_id": objects.max, "from": now.to_rfc3339(), "until": (now + chrono::TimeDelta::hours(1)).to_rfc3339()});
    let policy = json!({"per_problem_limit": {"amount": "400.00", "currency": "USD"}, "review_sla_hours": 24});
    let person = json!({"subject": "new", "name": "New", "role": "member", "team_id": objects.team});
    let spend = crate::helpers::spend_body("1.00");
    vec![
        row("get", "/healthz", None, [200, 200, 200, 200, 200, 200]),
        row("get", "/readyz", None, [200, 200, 200, 200, 200, 200]),
        row("get", "/openapi.yaml", None, [200, 200, 200, 200, 200, 200]),
        row("get", "/metrics", None, [401, 403, 403, 403, 403, 200]),
        row("get", "/v1/me", None, [401, 200, 200, 200, 200, 200]),
        // Everyone chooses their own mail.
        row("patch", "/v1/me", Some(json!({"notify": "daily_digest"})), [401, 200, 200, 200, 200, 200]),
        row("post", "/v1/teams", Some(json!({"name": "New"})), [401, 403, 403, 403, 403, 201]),
        row("get", "/v1/teams", None, [401, 200, 200, 200, 200, 200]),
        row("get", "/v1/teams/{team}", None, [401, 200, 200, 200, 200, 200]),
        row("patch", "/v1/teams/{team}", Some(json!({"name": "Ops"})), [401, 403, 403, 403, 403, 200]),
        row("get", "/v1/teams/{team}/policy", None, [401, 200, 200, 200, 200, 200]),
        row("put", "/v1/teams/{team}/policy", Some(policy), [401, 403, 403, 403, 403, 200]),
        row("get", "/v1/teams/{team}/policy/versions", None, [401, 200, 200, 200, 200, 200]),
        row("post", "/v1/people", Some(person), [401, 403, 403, 403, 403, 201]),
        row("get", "/v1/people", None, [401, 200, 200, 200, 200, 200]),
        row("get", "/v1/people/{person}", None, [401, 404, 404, 404, 200, 200]),
        row("patch", "/v1/people/{person}", Some(json!({"name": "Sam"})), [401, 403, 403, 403, 403, 200]),
        // Members and managers open problems for themselves; finance and admins own none.
        row("post", "/v1/problems", Some(json!({"title": "Own", "success_criteria": "Done"})), [401, 201, 201, 201, 403, 403]),
        row("get", "/v1/problems", None, [401, 200, 200, 200, 200, 200]),
        row("get", "/v1/problems/{problem}", None, [401, 404, 404, 404, 200, 200]),
        row("patch", "/v1/problems/{problem}", Some(json!({"title": "Renamed"})), [401, 404, 404, 404, 403, 403]),
        row("post", "/v1/problems/{problem}/close", Some(json!({})), [401, 404, 404, 404, 403, 403]),
        row("post", "/v1/problems/{problem}/acknowledge", Some(json!({"criteria_version": 1})), [401, 404, 404, 404, 403, 403]),
        row("get", "/v1/problems/{problem}/limit-changes", None, [401, 404, 404, 404, 200, 200]),
        row("post", "/v1/problems/{problem}/spends", Some(spend), [401, 404, 404, 404, 403, 403]),
        row("get", "/v1/spends", None, [401, 200, 200, 200, 200, 200]),
        row("get", "/v1/spends/{spend}", None, [401, 404, 404, 404, 200, 200]),
        row("post", "/v1/spends/{spend}/review", Some(json!({"decision": "approve"})), [401, 404, 404, 404, 403, 403]),
        row("post", "/v1/spends/{spend}/void", Some(json!({"reason": "Mistake"})), [401, 404, 404, 404, 403, 403]),
        row("get", "/v1/reviews", None, [401, 200, 200, 200, 200, 200]),
        // Only managers hand over a queue, and never to themselves.
        row("post", "/v1/delegations", Some(window), [401, 403, 403, 422, 403, 403]),
        row("get", "/v1/delegations", None, [401, 200, 200, 200, 200, 200]),
        row("get", "/v1/delegations/{delegation}", None, [401, 404, 404, 404, 200, 200]),
        row("post", "/v1/delegations/{delegation}/revoke", Some(json!({})), [401, 404, 404, 404, 403, 200]),
        row("get", "/v1/events", None, [401, 403, 403, 403, 200, 200]),
        // The audit (issue 4): finance and admins only, like the audit trail.
        row("get", "/v1/audit/verify", None, [401, 403, 403, 403, 200, 200]),
        row("get", "/v1/exports/spends.csv", None, [401, 403, 403, 403, 200, 200]),
        row("get", "/v1/exports/spends.jsonl", None, [401, 403, 403, 403, 200, 200]),
        row("get", "/v1/exports/events.jsonl", None, [401, 403, 403, 403, 200, 200]),
        row("get", "/v1/exports/journal.beancount", None, [401, 403, 403, 403, 200, 200]),
        row("get", "/v1/reports/summary", None, [401, 403, 403, 403, 200, 200]),
        // Webhooks (issue 12): admins manage them, finance reads them.
        row("post", "/v1/webhooks", Some(json!({"url": "https://hooks.example.com/new", "event_types": ["spend.flagged"]})), [401, 403, 403, 403, 403, 201]),
        row("get", "/v1/webhooks", None, [401, 403, 403, 403, 200, 200]),
        row("get", "/v1/webhooks/{webhook}", None, [401, 403, 403, 403, 200, 200]),
        row("patch", "/v1/webhooks/{webhook}", Some(json!({"description": "Tickets"})), [401, 403, 403, 403, 403, 200]),
        row("post", "/v1/webhooks/{webhook}/rotate-secret", Some(json!({})), [401, 403, 403, 403, 403, 200]),
        row("get", "/v1/webhooks/{webhook}/deliveries", None, [401, 403, 403, 403, 200, 200]),
        row("post", "/v1/webhooks/{webhook}/replay", Some(json!({"from_sequence": 1})), [401, 403, 403, 403, 403, 202]),
        row("post", "/v1/webhooks/{webhook}/test", Some(json!({})), [401, 403, 403, 403, 403, 202]),
        // Last: the rows above use the endpoint it deletes.
        row("delete", "/v1/webhooks/{webhook}", None, [401, 403, 403, 403, 403, 204]),
    ]
}

backend_tests! {
    async fn every_route_answers_every_kind_of_caller_as_the_table_says(app: TestApp) {
        let org = app.org().await;
        let problem = app.open_problem("sam", "Printer").await;
        let spend = app.spend("sam", &problem, "500.00").await.id();
        let max = app.get("max", "/v1/me").await.body["id"].as_str().unwrap().to_owned();
        // A delegation between Mia and a manager none of the callers is.
        let support = app.post("admin", "/v1/teams", &json!({"name": "Support"})).await.id();
        let ned = app.post("admin", "/v1/people", &json!({"subject": "ned", "name": "Ned", "role": "manager", "team_id": support})).await.id();
        let now = chrono::Utc::now();
        let delegation = app.post("mia", "/v1/delegations", &json!({"delegate_id": ned, "from": now.to_rfc3339(), "until": (now + chrono::TimeDelta::hours(1)).to_rfc3339()})).await;
        assert_eq!(delegation.status, 201, "{}", delegation.body);
        let webhook = app.post("admin", "/v1/webhooks", &json!({"url": "https://hooks.example.com/leeway", "event_types": ["spend.approved"]})).await;
        assert_eq!(webhook.status, 201, "{}", webhook.body);
        let objects = Objects { team: org.ops.clone(), person: org.sam.clone(), problem, spend, delegation: delegation.id(), webhook: webhook.id(), max };
        let table = table(&objects);

        let covered: BTreeSet<(&str, &str)> = table.iter().map(|row| (row.method, row.path)).collect();
        let registered: BTreeSet<(&str, String)> = leeway::api::ROUTES.iter().map(|(method, path)| (*method, (*path).to_owned())).collect();
        let named: BTreeSet<(&str, String)> = covered.iter().map(|(method, path)| {
            let generic = ["{team}", "{person}", "{problem}", "{spend}", "{delegation}", "{webhook}"].iter().fold((*path).to_owned(), |path, name| path.replace(name, "{id}"));
            (*method, generic)
        }).collect();
        let missing: Vec<_> = registered.difference(&named).collect();
        assert!(missing.is_empty(), "routes with no access rule in the sweep: {missing:?}");
        assert_eq!(named.len(), table.len(), "a route appears twice in the sweep");

        let mut wrong = Vec::new();
        for row in &table {
            let path = row.path
                .replace("{team}", &objects.team)
                .replace("{person}", &objects.person)
                .replace("{problem}", &objects.problem)
                .replace("{spend}", &objects.spend)
                .replace("{delegation}", &objects.delegation)
                .replace("{webhook}", &objects.webhook);
            for (caller, expected) in CALLERS.iter().zip(row.expected) {
                let method = Method::from_bytes(row.method.to_uppercase().as_bytes()).unwrap();
                let response = app.send(method, &path, *caller, row.body.as_ref()).await;
                if response.status != expected {
                    wrong.push(format!("{} {} as {caller:?}: {} (expected {expected}) {}", row.method, row.path, response.status, response.body));
                } else if expected >= 400 {
                    assert_eq!(response.header("content-type"), Some("application/problem+json"), "{} {}", row.method, row.path);
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        // Nothing the refused callers tried changed the problem or its spend.
        let problem = app.get("sam", &format!("/v1/problems/{}", objects.problem)).await.body;
        assert_eq!(problem["title"], "Printer");
        assert_eq!(problem["status"], "open");
        assert_eq!(problem["approved"]["amount"], "0.00");
        assert_eq!(app.get("sam", &format!("/v1/spends/{}", objects.spend)).await.body["status"], "pending_review");
    }
}
