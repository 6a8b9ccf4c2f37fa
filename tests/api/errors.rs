//! Bad input of every kind answers RFC 9457 problem+json and changes nothing.

use reqwest::Method;
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{TestApp, read};

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> crate::helpers::Response {
    let request = app
        .client
        .request(method, format!("{}{path}", app.base_url))
        .bearer_auth(app.token("sam"))
        .header("content-type", content_type)
        .body(body);
    read(request.send().await.unwrap()).await
}

backend_tests! {
    async fn malformed_bodies_are_refused_as_problem_json(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Door").await;
        let path = format!("/v1/problems/{problem}/spends");
        raw(&app, Method::POST, &path, "application/json", b"{not json".to_vec()).await.assert_problem(400, "malformed_json");
        raw(&app, Method::POST, &path, "application/json", b"".to_vec()).await.assert_problem(400, "malformed_json");
        raw(&app, Method::POST, &path, "text/plain", b"{}".to_vec()).await.assert_problem(415, "unsupported_media_type");
        let huge = format!("{{\"merchant\": \"{}\"}}", "x".repeat(100_000));
        raw(&app, Method::POST, &path, "application/json", huge.into_bytes()).await.assert_problem(413, "payload_too_large");
        let mut body = crate::helpers::spend_body("1.00");
        body["status"] = json!("approved");
        let mass_assignment = app.post("sam", &path, &body).await;
        mass_assignment.assert_problem(422, "validation_failed");
        assert!(mass_assignment.body["errors"][0]["message"].as_str().unwrap().contains("unknown field `status`"));
        assert_eq!(mass_assignment.body["errors"][0]["field"], "status");
        assert_eq!(mass_assignment.body["errors"][0]["code"], "unknown_field");
        let mut missing = crate::helpers::spend_body("1.00");
        missing.as_object_mut().unwrap().remove("merchant");
        let missing = app.post("sam", &path, &missing).await;
        missing.assert_problem(422, "validation_failed");
        assert_eq!((missing.body["errors"][0]["field"].as_str(), missing.body["errors"][0]["code"].as_str()), (Some("merchant"), Some("required")));
        let mut wrong_type = crate::helpers::spend_body("1.00");
        wrong_type["amount"]["currency"] = json!(840);
        let wrong_type = app.post("sam", &path, &wrong_type).await;
        wrong_type.assert_problem(422, "validation_failed");
        assert_eq!(wrong_type.body["errors"][0]["field"], "amount.currency");
        let mut several = crate::helpers::spend_body("1.00");
        several["merchant"] = json!("  ");
        several["spent_on"] = json!("yesterday");
        several["receipt_url"] = json!("javascript:alert(1)");
        let refused = app.post("sam", &path, &several).await;
        refused.assert_problem(422, "validation_failed");
        let fields: Vec<&str> = refused.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["merchant", "spent_on", "receipt_url"]);
        for url in ["http://", " https://example.com/r/1", "https://example.com/r\u{0085}"] {
            let mut receipt = crate::helpers::spend_body("1.00");
            receipt["receipt_url"] = json!(url);
            app.post("sam", &path, &receipt).await.assert_problem(422, "validation_failed");
        }
        let mut future = crate::helpers::spend_body("1.00");
        future["spent_on"] = json!("2999-01-01");
        app.post("sam", &path, &future).await.assert_problem(422, "validation_failed");
        assert_eq!(app.get("sam", &format!("/v1/spends?problem_id={problem}")).await.body["items"], json!([]));
    }

    async fn bad_paths_queries_and_methods_are_problem_json(app: TestApp) {
        app.org().await;
        app.get("sam", "/v1/nothing-here").await.assert_problem(404, "not_found");
        app.get("sam", "/v1/problems/not-a-uuid").await.assert_problem(404, "not_found");
        app.get("sam", "/v1/problems/01936d5e-0000-7000-8000-000000000000").await.assert_problem(404, "not_found");
        let delete = app.send(Method::DELETE, "/v1/problems", Some("sam"), None).await;
        delete.assert_problem(405, "method_not_allowed");
        assert_eq!(delete.header("allow"), Some("POST, GET"));
        let array = app.post("admin", "/v1/teams", &json!(["Positional team"])).await;
        array.assert_problem(422, "validation_failed");
        assert_eq!(array.body["errors"][0]["code"], "not_an_object");
        assert_eq!(app.get("admin", "/v1/teams").await.body["items"].as_array().unwrap().len(), 3);
        app.get("sam", "/v1/spends?status=paid").await.assert_problem(400, "invalid_query");
        app.get("sam", "/v1/spends?problem_id=42").await.assert_problem(400, "invalid_query");
        app.get("sam", "/v1/problems?status=maybe").await.assert_problem(400, "invalid_query");
    }

    async fn every_response_carries_a_request_id(app: TestApp) {
        let ok = app.send(Method::GET, "/healthz", None, None).await;
        assert_eq!(ok.status, 200);
        assert_eq!(ok.body, json!({"status": "ok"}));
        assert!(ok.header("x-request-id").is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()));
        let error = app.send(Method::GET, "/v1/me", None, None).await;
        assert_eq!(error.body["request_id"].as_str(), error.header("x-request-id"));
        assert_eq!(error.header("x-content-type-options"), Some("nosniff"));
        let ready = app.send(Method::GET, "/readyz", None, None).await;
        assert_eq!(ready.body, json!({"status": "ready"}));
    }
}

/// With the database unreachable the server still answers, quickly and in
/// problem+json: 503 with `Retry-After`, and `/readyz` says not ready.
#[actix_web::test]
async fn an_unreachable_database_answers_503_not_a_hang() {
    let unreachable = "postgres://leeway@127.0.0.1:1/leeway?connect_timeout=1";
    let mut config = leeway::config::Config::new(
        leeway::db::DatabaseUrl::parse(unreachable).unwrap(),
        leeway::tokens::JwtConfig::from_secret(crate::helpers::TEST_SECRET.as_bytes().to_vec()),
    );
    config.workers = Some(1);
    let state = leeway::state::AppState::new(&config).unwrap();
    let token = state.tokens.issue("admin", 60).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let server = leeway::app::serve(state, listener, config.workers).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let client = reqwest::Client::new();
    let ready = read(
        client
            .get(format!("{base_url}/readyz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    ready.assert_problem(503, "service_unavailable");
    assert_eq!(ready.header("retry-after"), Some("1"));
    let me = client
        .get(format!("{base_url}/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    read(me).await.assert_problem(503, "service_unavailable");
    let live = read(
        client
            .get(format!("{base_url}/healthz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(live.status, 200);
    handle.stop(false).await;
}

/// A refusal as a client reads it, but for the request id: status, code,
/// detail and field errors.
fn refusal(response: &crate::helpers::Response) -> String {
    let body = &response.body;
    format!(
        "{} {} {} {}",
        response.status, body["code"], body["detail"], body["errors"]
    )
}

// Malformed cursors and ids answer exactly as before they were typed; a
// report's cursor is read only once the caller may see the report, and a
// CSV report reads none.
backend_tests! {
    async fn malformed_cursors_and_ids_are_refused_as_they_always_were(app: TestApp) {
        let org = app.org().await;
        let problem = app.open_problem("sam", "Door").await;
        let now = chrono::Utc::now();
        let window = (now.to_rfc3339(), (now + chrono::TimeDelta::hours(1)).to_rfc3339());
        let mut seen = Vec::new();
        for (subject, path) in [
            ("admin", "/v1/teams?after=not-a-cursor".to_owned()),
            ("admin", format!("/v1/teams/{}/policy/versions?after=1.5", org.ops)),
            ("sam", format!("/v1/problems/{problem}/limit-changes?after=x")),
            ("fin", "/v1/reports/summary?after=bad".to_owned()),
            ("fin", "/v1/reports/summary?limit=0".to_owned()),
            ("sam", "/v1/reports/summary?after=bad".to_owned()),
            ("fin", "/v1/reports/summary?format=csv&after=bad".to_owned()),
        ] {
            seen.push(refusal(&app.get(subject, &path).await));
        }
        let (from, until) = window;
        for (subject, path, body) in [
            ("mia", "/v1/problems", json!({"title": "T", "success_criteria": "S", "owner_id": "nope"})),
            ("sam", "/v1/problems", json!({"title": "T", "success_criteria": "S", "team_id": "nope"})),
            ("mia", "/v1/delegations", json!({"delegate_id": "nope", "from": from, "until": until})),
            ("mia", "/v1/delegations", json!({"delegate_id": org.mia, "delegator_id": "nope", "from": from, "until": until})),
            ("admin", "/v1/delegations", json!({"delegate_id": org.mia, "delegator_id": "nope", "from": from, "until": until})),
            ("admin", "/v1/teams", json!({"name": "X", "parent_id": "nope"})),
            ("admin", "/v1/teams", json!({"name": "X", "manager_id": "nope"})),
            ("admin", "/v1/people", json!({"subject": "x", "name": "X", "role": "member", "team_id": "nope"})),
            ("mia", "/v1/spends/not-a-uuid/review", json!({"decision": "approve", "note": "ok"})),
            ("sam", "/v1/problems/not-a-uuid/close", json!({})),
        ] {
            seen.push(refusal(&app.post(subject, path, &body).await));
        }
        for (path, body) in [
            (format!("/v1/teams/{}", org.ops), json!({"parent_id": "nope"})),
            (format!("/v1/teams/{}", org.ops), json!({"manager_id": "nope"})),
            (format!("/v1/people/{}", org.sam), json!({"team_id": "nope"})),
            ("/v1/people/not-a-uuid".to_owned(), json!({"name": "N"})),
        ] {
            seen.push(refusal(&app.patch("admin", &path, &body).await));
        }
        // Pinned from the server before cursors and ids were typed.
        let expected = [
            r#"400 "invalid_query" "after must be the id of an item: pass next_cursor from a previous page" null"#,
            r#"400 "invalid_query" "after must be a version number: pass next_cursor from a previous page" null"#,
            r#"400 "invalid_query" "after must be a version number: pass next_cursor from a previous page" null"#,
            r#"400 "invalid_query" "after must be a group key GROUP_ID|YYYY-MM|CURRENCY: pass next_cursor from a previous page" null"#,
            r#"400 "invalid_query" "limit must be between 1 and 200" null"#,
            r#"403 "forbidden" "exports are for finance and admins" null"#,
            "200 null null null",
            r#"404 "not_found" "owner_id names no person you can see" null"#,
            r#"404 "not_found" "team_id names no team you can see" null"#,
            r#"404 "not_found" "delegate_id names no person you can see" null"#,
            r#"403 "forbidden" "only an admin can hand over another manager's queue" null"#,
            r#"404 "not_found" "delegator_id names no person you can see" null"#,
            r#"422 "validation_failed" "the request has invalid fields" [{"code":"invalid_parent","field":"parent_id","message":"parent_id must be a team's id"}]"#,
            r#"422 "validation_failed" "the request has invalid fields" [{"code":"invalid_manager","field":"manager_id","message":"manager_id must be a person's id"}]"#,
            r#"422 "validation_failed" "the request has invalid fields" [{"code":"invalid_team","field":"team_id","message":"team_id must be a team's id"}]"#,
            r#"404 "not_found" "spend not found" null"#,
            r#"404 "not_found" "problem not found" null"#,
            r#"422 "validation_failed" "the request has invalid fields" [{"code":"invalid_parent","field":"parent_id","message":"parent_id must be a team's id"}]"#,
            r#"422 "validation_failed" "the request has invalid fields" [{"code":"invalid_manager","field":"manager_id","message":"manager_id must be a person's id"}]"#,
            r#"422 "validation_failed" "the request has invalid fields" [{"code":"invalid_team","field":"team_id","message":"team_id must be a team's id"}]"#,
            r#"404 "not_found" "person not found" null"#,
        ];
        assert_eq!(seen, expected);
    }
}
