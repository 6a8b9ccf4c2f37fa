//! The limit rule through the API: approval on the spot, flagged overruns,
//! reservations, reviews, and the money refusals.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{TestApp, spend_body};

async fn problem_totals(app: &TestApp, subject: &str, problem: &str) -> (String, String, String) {
    let body = app
        .get(subject, &format!("/v1/problems/{problem}"))
        .await
        .body;
    let amount = |field: &str| body[field]["amount"].as_str().unwrap().to_owned();
    (
        amount("approved"),
        amount("pending_review"),
        amount("remaining"),
    )
}

backend_tests! {
    async fn a_problem_pins_its_limit_from_the_policy(app: TestApp) {
        let org = app.org().await;
        let response = app.post("sam", "/v1/problems", &json!({"title": "Printer", "success_criteria": "Prints"})).await;
        assert_eq!(response.status, 201, "{}", response.body);
        let problem = &response.body;
        assert_eq!(problem["limit"], json!({"amount": "400.00", "currency": "USD"}));
        assert_eq!(problem["remaining"], json!({"amount": "400.00", "currency": "USD"}));
        assert_eq!(problem["owner_id"], org.sam);
        assert_eq!(problem["team_id"], org.ops);
        assert_eq!(problem["status"], "open");
        assert_eq!(problem["policy"], json!({"team_id": org.ops, "version": 1}));
        // A later policy change does not move the pinned limit.
        let policy = json!({"per_problem_limit": {"amount": "100.00", "currency": "USD"}, "review_sla_hours": 8});
        assert_eq!(app.put("admin", &format!("/v1/teams/{}/policy", org.ops), &policy).await.body["version"], 2);
        let again = app.get("sam", &format!("/v1/problems/{}", response.id())).await;
        assert_eq!(again.body["limit"]["amount"], "400.00");
    }

    async fn spends_inside_the_budget_are_approved_and_overruns_flagged(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Printer").await;
        let first = app.spend("sam", &problem, "350.00").await;
        assert_eq!(first.status, 201, "{}", first.body);
        assert_eq!(first.body["status"], "approved");
        assert_eq!(first.body["overrun"], json!(null));
        // Exactly the remaining headroom still fits: the edge is inclusive.
        let edge = app.spend("sam", &problem, "50.00").await;
        assert_eq!(edge.body["status"], "approved");
        let over = app.spend("sam", &problem, "0.01").await;
        assert_eq!(over.status, 201);
        assert_eq!(over.body["status"], "pending_review");
        assert_eq!(over.body["overrun"], json!({"amount": "0.01", "currency": "USD"}));
        assert_eq!(problem_totals(&app, "sam", &problem).await, ("400.00".into(), "0.01".into(), "-0.01".into()));
    }

    async fn a_pending_spend_reserves_headroom_and_rejection_releases_it(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Laptop").await;
        assert_eq!(app.spend("sam", &problem, "300.00").await.body["status"], "approved");
        let flagged = app.spend("sam", &problem, "150.00").await;
        assert_eq!(flagged.body["status"], "pending_review");
        assert_eq!(flagged.body["overrun"]["amount"], "50.00");
        // The reservation counts: 100 of headroom minus 150 pending leaves nothing.
        let blocked = app.spend("sam", &problem, "20.00").await;
        assert_eq!(blocked.body["status"], "pending_review");
        assert_eq!(blocked.body["overrun"]["amount"], "20.00");
        let reject = json!({"decision": "reject", "note": "Buy the cheaper one"});
        let rejected = app.post("mia", &format!("/v1/spends/{}/review", flagged.id()), &reject).await;
        assert_eq!(rejected.status, 200, "{}", rejected.body);
        assert_eq!(rejected.body["status"], "rejected");
        assert_eq!(rejected.body["decision_note"], "Buy the cheaper one");
        assert_eq!(problem_totals(&app, "sam", &problem).await, ("300.00".into(), "20.00".into(), "80.00".into()));
        assert_eq!(app.spend("sam", &problem, "80.00").await.body["status"], "approved");
    }

    async fn a_manager_approval_counts_against_the_budget(app: TestApp) {
        let org = app.org().await;
        let problem = app.open_problem("sam", "Van repair").await;
        let flagged = app.spend("sam", &problem, "450.00").await;
        assert_eq!(flagged.body["overrun"]["amount"], "50.00");
        let queue = app.get("mia", "/v1/reviews").await;
        assert_eq!(queue.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(queue.body["items"][0]["id"], flagged.id());
        let approved = app.post("mia", &format!("/v1/spends/{}/review", flagged.id()), &json!({"decision": "approve"})).await;
        assert_eq!(approved.status, 200, "{}", approved.body);
        assert_eq!(approved.body["status"], "approved_by_manager");
        assert_eq!(approved.body["decided_by"], org.mia);
        assert!(approved.body["decided_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(problem_totals(&app, "sam", &problem).await, ("450.00".into(), "0.00".into(), "-50.00".into()));
        assert_eq!(app.get("mia", "/v1/reviews").await.body["items"], json!([]));
        // A second decision is refused and changes nothing.
        let again = app.post("mia", &format!("/v1/spends/{}/review", flagged.id()), &json!({"decision": "reject", "note": "no"})).await;
        again.assert_problem(409, "already_decided");
        assert_eq!(problem_totals(&app, "sam", &problem).await.0, "450.00");
    }

    async fn nobody_reviews_their_own_spend(app: TestApp) {
        let org = app.org().await;
        // Mia manages Ops and owns this problem: her overrun is not hers to approve.
        let created = app.post("mia", "/v1/problems", &json!({"title": "Offsite", "success_criteria": "Booked"})).await;
        let problem = created.id();
        let flagged = app.spend("mia", &problem, "500.00").await;
        assert_eq!(flagged.body["status"], "pending_review");
        let review = app.post("mia", &format!("/v1/spends/{}/review", flagged.id()), &json!({"decision": "approve"})).await;
        review.assert_problem(403, "self_review_forbidden");
        assert_eq!(app.get("mia", "/v1/reviews").await.body["items"], json!([]));
        // A member cannot review at all; a manager elsewhere does not see it.
        let sam_problem = app.open_problem("sam", "Desk").await;
        let sam_flagged = app.spend("sam", &sam_problem, "401.00").await.id();
        app.post("kim", &format!("/v1/spends/{sam_flagged}/review"), &json!({"decision": "approve"})).await.assert_problem(404, "not_found");
        app.post("sam", &format!("/v1/spends/{sam_flagged}/review"), &json!({"decision": "approve"})).await.assert_problem(403, "self_review_forbidden");
        app.post("max", &format!("/v1/spends/{sam_flagged}/review"), &json!({"decision": "approve"})).await.assert_problem(404, "not_found");
        assert_eq!(app.get("sam", &format!("/v1/spends/{sam_flagged}")).await.body["status"], "pending_review");
        let _ = org;
    }

    async fn money_is_refused_with_a_clear_422_and_nothing_changes(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Chairs").await;
        // Each refusal names the JSON path of the member at fault.
        let cases = [
            (json!({"amount": "10.001", "currency": "USD"}), "too_many_decimals", "amount.amount"),
            (json!({"amount": "0", "currency": "USD"}), "not_positive", "amount.amount"),
            (json!({"amount": "0.00", "currency": "USD"}), "not_positive", "amount.amount"),
            (json!({"amount": "-5.00", "currency": "USD"}), "not_a_decimal", "amount.amount"),
            (json!({"amount": "1e3", "currency": "USD"}), "not_a_decimal", "amount.amount"),
            (json!({"amount": "99999999999999999999.00", "currency": "USD"}), "too_large", "amount.amount"),
            (json!({"amount": "5.00", "currency": "XYZ"}), "unknown_currency", "amount.currency"),
            (json!({"amount": "5.00", "currency": "EUR"}), "currency_mismatch", "amount.currency"),
        ];
        for (amount, code, field) in cases {
            let mut body = spend_body("1.00");
            body["amount"] = amount.clone();
            let response = app.post("sam", &format!("/v1/problems/{problem}/spends"), &body).await;
            response.assert_problem(422, "validation_failed");
            let errors = response.body["errors"].as_array().unwrap();
            assert!(errors.iter().any(|error| error["code"] == code && error["field"] == field), "{amount} → {}", response.body);
            assert!(errors.iter().all(|error| error["message"].as_str().is_some_and(|m| !m.is_empty())));
        }
        // Money of the wrong shape: the field is still a JSON path, and no
        // message names the Rust type it was read into.
        let shapes = [
            (json!({"amount": 5.5, "currency": "USD"}), "amount.amount"),
            (json!({"amount": "5.00"}), "amount.currency"),
            (json!({"currency": "USD"}), "amount.amount"),
            (json!({"amount": "5.00", "currency": null}), "amount.currency"),
            (json!("5.00"), "amount"),
            (json!(5), "amount"),
            (json!(["5.00", "USD"]), "amount"),
            (json!(null), "amount"),
        ];
        for (amount, field) in shapes {
            let mut body = spend_body("1.00");
            body["amount"] = amount.clone();
            let response = app.post("sam", &format!("/v1/problems/{problem}/spends"), &body).await;
            response.assert_problem(422, "validation_failed");
            assert_eq!(response.body["errors"][0]["field"], field, "{amount} → {}", response.body);
            let text = response.body.to_string();
            for rust in ["struct ", "MoneyInput", "unit value"] {
                assert!(!text.contains(rust), "{amount} → {text}");
            }
        }
        let mut number = spend_body("1.00");
        number["amount"]["amount"] = json!(5.5);
        let response = app.post("sam", &format!("/v1/problems/{problem}/spends"), &number).await;
        response.assert_problem(422, "validation_failed");
        assert!(response.body["errors"][0]["message"].as_str().unwrap().contains("decimal string"));
        let spends = app.get("sam", &format!("/v1/spends?problem_id={problem}")).await;
        assert_eq!(spends.body["items"], json!([]));
        assert_eq!(problem_totals(&app, "sam", &problem).await, ("0.00".into(), "0.00".into(), "400.00".into()));
    }

    async fn currencies_keep_their_own_scale(app: TestApp) {
        let org = app.org().await;
        let policy = json!({"per_problem_limit": {"amount": "50000", "currency": "JPY"}, "review_sla_hours": 24});
        assert_eq!(app.put("admin", &format!("/v1/teams/{}/policy", org.sales), &policy).await.status, 200);
        let problem = app.open_problem("lou", "Tokyo trip").await;
        let mut body = spend_body("1");
        body["amount"] = json!({"amount": "1500", "currency": "JPY"});
        let response = app.post("lou", &format!("/v1/problems/{problem}/spends"), &body).await;
        assert_eq!(response.body["amount"], json!({"amount": "1500", "currency": "JPY"}));
        body["amount"] = json!({"amount": "1.5", "currency": "JPY"});
        app.post("lou", &format!("/v1/problems/{problem}/spends"), &body).await.assert_problem(422, "validation_failed");
    }

    async fn closed_problems_take_no_new_spends_and_no_changes(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Window").await;
        let flagged = app.spend("sam", &problem, "500.00").await.id();
        let closed = app.post("sam", &format!("/v1/problems/{problem}/close"), &json!({})).await;
        assert_eq!(closed.status, 200, "{}", closed.body);
        assert_eq!(closed.body["status"], "closed");
        app.spend("sam", &problem, "1.00").await.assert_problem(409, "problem_closed");
        app.post("sam", &format!("/v1/problems/{problem}/close"), &json!({})).await.assert_problem(409, "problem_closed");
        // A closed problem is a settled record.
        let path = format!("/v1/problems/{problem}");
        app.patch("sam", &path, &json!({"title": "Renamed"})).await.assert_problem(409, "problem_closed");
        app.patch("mia", &path, &json!({"limit": {"amount": "900.00", "currency": "USD"}, "limit_reason": "More"})).await.assert_problem(409, "problem_closed");
        let shown = app.get("sam", &path).await.body;
        assert_eq!((shown["title"].as_str(), shown["limit_version"].as_i64()), (Some("Window"), Some(1)));
        // What was already flagged can still be decided, but not with a new limit.
        let raise = app.post("mia", &format!("/v1/spends/{flagged}/review"), &json!({"decision": "approve", "new_limit": {"amount": "900.00", "currency": "USD"}, "note": "More"})).await;
        raise.assert_problem(409, "problem_closed");
        let approved = app.post("mia", &format!("/v1/spends/{flagged}/review"), &json!({"decision": "approve"})).await;
        assert_eq!(approved.body["status"], "approved_by_manager");
    }

    async fn managers_set_limits_never_below_what_is_approved(app: TestApp) {
        let org = app.org().await;
        let explicit = json!({"title": "Server", "success_criteria": "Up", "owner_id": org.sam, "limit": {"amount": "1000.00", "currency": "USD"}});
        let response = app.post("mia", "/v1/problems", &explicit).await;
        assert_eq!(response.status, 201, "{}", response.body);
        assert_eq!(response.body["limit"]["amount"], "1000.00");
        // The explicit limit replaces the policy's, but the policy version in force still judges spends.
        assert_eq!(response.body["policy"]["version"], 1);
        assert_eq!(response.body["limit_version"], 1);
        assert_eq!(response.body["opened_by"], org.mia);
        let problem = response.id();
        let member_limit = json!({"title": "X", "success_criteria": "Y", "limit": {"amount": "9000.00", "currency": "USD"}});
        app.post("sam", "/v1/problems", &member_limit).await.assert_problem(403, "forbidden");
        assert_eq!(app.spend("sam", &problem, "600.00").await.body["status"], "approved");
        let below = app.patch("mia", &format!("/v1/problems/{problem}"), &json!({"limit": {"amount": "500.00", "currency": "USD"}, "limit_reason": "Cut"})).await;
        below.assert_problem(409, "below_approved");
        app.patch("sam", &format!("/v1/problems/{problem}"), &json!({"limit": {"amount": "700.00", "currency": "USD"}, "limit_reason": "More"})).await.assert_problem(403, "forbidden");
        app.patch("mia", &format!("/v1/problems/{problem}"), &json!({"limit": {"amount": "700.00", "currency": "USD"}})).await.assert_problem(422, "validation_failed");
        let raised = app.patch("mia", &format!("/v1/problems/{problem}"), &json!({"limit": {"amount": "700.00", "currency": "USD"}, "limit_reason": "Rack needs rails"})).await;
        assert_eq!(raised.status, 200, "{}", raised.body);
        assert_eq!(raised.body["remaining"]["amount"], "100.00");
        assert_eq!(raised.body["limit_version"], 2);
        let renamed = app.patch("sam", &format!("/v1/problems/{problem}"), &json!({"title": "Server rack"})).await;
        assert_eq!(renamed.body["title"], "Server rack");
    }

    async fn a_team_without_a_policy_needs_an_explicit_limit(app: TestApp) {
        let team = app.post("admin", "/v1/teams", &json!({"name": "Lab"})).await.id();
        let body = json!({"subject": "lee", "name": "Lee", "role": "member", "team_id": team});
        assert_eq!(app.post("admin", "/v1/people", &body).await.status, 201);
        let response = app.post("lee", "/v1/problems", &json!({"title": "Scope", "success_criteria": "Focused"})).await;
        response.assert_problem(422, "no_policy");
    }

    async fn voiding_reverses_a_spend_and_keeps_its_record(app: TestApp) {
        let org = app.org().await;
        let problem = app.open_problem("sam", "Typo").await;
        let approved = app.spend("sam", &problem, "300.00").await.id();
        let pending = app.spend("sam", &problem, "200.00").await.id();
        let reason = json!({"reason": "Logged twice"});
        let voided = app.post("sam", &format!("/v1/spends/{pending}/void"), &reason).await;
        assert_eq!(voided.status, 200, "{}", voided.body);
        assert_eq!(voided.body["status"], "voided");
        assert_eq!(voided.body["voided_by"], org.sam);
        assert_eq!(voided.body["void_reason"], "Logged twice");
        assert_eq!(voided.body["amount"]["amount"], "200.00");
        assert_eq!(problem_totals(&app, "sam", &problem).await, ("300.00".into(), "0.00".into(), "100.00".into()));
        // The logger may not void what is already approved; finance changes nothing.
        app.post("sam", &format!("/v1/spends/{approved}/void"), &reason).await.assert_problem(403, "forbidden");
        app.post("fin", &format!("/v1/spends/{approved}/void"), &reason).await.assert_problem(403, "forbidden");
        app.post("mia", &format!("/v1/spends/{approved}/void"), &json!({"reason": " "})).await.assert_problem(422, "validation_failed");
        let by_manager = app.post("mia", &format!("/v1/spends/{approved}/void"), &json!({"reason": "Wrong problem"})).await;
        assert_eq!(by_manager.body["status"], "voided");
        assert_eq!(problem_totals(&app, "sam", &problem).await, ("0.00".into(), "0.00".into(), "400.00".into()));
        app.post("mia", &format!("/v1/spends/{approved}/void"), &reason).await.assert_problem(409, "not_voidable");
        app.post("mia", &format!("/v1/spends/{pending}/review"), &json!({"decision": "approve"})).await.assert_problem(409, "already_decided");
        let events = app.get("fin", &format!("/v1/events?problem_id={problem}&kind=spend.voided")).await;
        assert_eq!(events.body["items"].as_array().unwrap().len(), 2);
    }
}
