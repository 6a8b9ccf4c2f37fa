//! Teams, people, policies, `/v1/me`, pagination and the audit trail.

use std::collections::HashSet;

use serde_json::json;

use crate::backend_tests;

backend_tests! {
    async fn me_names_the_caller_and_the_teams_they_manage(app: TestApp) {
        let org = app.org().await;
        let me = app.get("mia", "/v1/me").await;
        assert_eq!(me.status, 200);
        assert_eq!(me.body["id"], org.mia);
        assert_eq!(me.body["role"], "manager");
        assert_eq!(me.body["managed_team_ids"], json!([org.ops]));
        assert_eq!(app.get("sam", "/v1/me").await.body["managed_team_ids"], json!([]));
    }

    async fn policies_are_versioned_and_inherited(app: TestApp) {
        let org = app.org().await;
        let effective = app.get("eve", &format!("/v1/teams/{}/policy", org.ops_east)).await;
        assert_eq!(effective.status, 200, "{}", effective.body);
        assert_eq!(effective.body["team_id"], org.ops);
        assert_eq!(effective.body["inherited"], true);
        // A sub-team member's problem takes the inherited limit.
        let problem = app.post("eve", "/v1/problems", &json!({"title": "Cables", "success_criteria": "Tidy"})).await;
        assert_eq!(problem.body["limit"]["amount"], "400.00");
        // The manager above may set the sub-team's own policy; that makes version 1 there.
        let own = json!({"per_problem_limit": {"amount": "150.00", "currency": "USD"}, "review_sla_hours": 4});
        let put = app.put("mia", &format!("/v1/teams/{}/policy", org.ops_east), &own).await;
        assert_eq!(put.status, 200, "{}", put.body);
        assert_eq!(put.body["version"], 1);
        let effective = app.get("eve", &format!("/v1/teams/{}/policy", org.ops_east)).await;
        assert_eq!(effective.body["inherited"], false);
        assert_eq!(effective.body["per_problem_limit"]["amount"], "150.00");
        // Members and other teams' managers may not set it.
        app.put("eve", &format!("/v1/teams/{}/policy", org.ops_east), &own).await.assert_problem(403, "forbidden");
        app.put("max", &format!("/v1/teams/{}/policy", org.ops), &own).await.assert_problem(403, "forbidden");
        let second = json!({"per_problem_limit": {"amount": "500.00", "currency": "USD"}, "review_sla_hours": 24});
        assert_eq!(app.put("admin", &format!("/v1/teams/{}/policy", org.ops), &second).await.body["version"], 2);
        let versions = app.get("mia", &format!("/v1/teams/{}/policy/versions", org.ops)).await;
        let amounts: Vec<&str> = versions.body["items"].as_array().unwrap().iter().map(|v| v["per_problem_limit"]["amount"].as_str().unwrap()).collect();
        assert_eq!(amounts, ["400.00", "500.00"]);
        let bad = json!({"per_problem_limit": {"amount": "10.00", "currency": "USD"}, "review_sla_hours": 0});
        app.put("admin", &format!("/v1/teams/{}/policy", org.ops), &bad).await.assert_problem(422, "validation_failed");
    }

    async fn only_admins_shape_the_organisation(app: TestApp) {
        let org = app.org().await;
        app.post("mia", "/v1/teams", &json!({"name": "Shadow"})).await.assert_problem(403, "forbidden");
        app.post("fin", "/v1/people", &json!({"subject": "x", "name": "X", "role": "admin"})).await.assert_problem(403, "forbidden");
        app.patch("sam", &format!("/v1/people/{}", org.sam), &json!({"role": "admin"})).await.assert_problem(403, "forbidden");
        let promoted = app.patch("admin", &format!("/v1/people/{}", org.kim), &json!({"role": "manager", "email": "kim@example.com"})).await;
        assert_eq!(promoted.status, 200, "{}", promoted.body);
        assert_eq!(promoted.body["role"], "manager");
        assert_eq!(promoted.body["email"], "kim@example.com");
        let taken = app.post("admin", "/v1/people", &json!({"subject": "sam", "name": "Sam 2", "role": "member", "team_id": org.ops})).await;
        taken.assert_problem(409, "conflict");
        let no_team = app.post("admin", "/v1/people", &json!({"subject": "nat", "name": "Nat", "role": "member"})).await;
        no_team.assert_problem(422, "validation_failed");
        let bad_role = app.post("admin", "/v1/people", &json!({"subject": "nat", "name": "Nat", "role": "boss", "team_id": org.ops})).await;
        bad_role.assert_problem(422, "validation_failed");
        // A member cannot manage a team.
        app.patch("admin", &format!("/v1/teams/{}", org.sales), &json!({"manager_id": org.sam})).await.assert_problem(422, "validation_failed");
    }

    async fn an_id_in_a_body_that_names_nothing_answers_404_and_changes_nothing(app: TestApp) {
        let org = app.org().await;
        let nobody = "0190f2a0-0000-7000-8000-000000000000";
        let events_before = app.get("admin", "/v1/audit/verify").await.body["events_checked"].clone();
        let cases = [
            ("post", "/v1/teams".to_owned(), json!({"name": "Orphan", "parent_id": nobody})),
            ("patch", format!("/v1/teams/{}", org.sales), json!({"manager_id": nobody})),
            ("post", "/v1/people".to_owned(), json!({"subject": "nat", "name": "Nat", "role": "member", "team_id": nobody})),
            ("patch", format!("/v1/people/{}", org.kim), json!({"team_id": nobody})),
            ("post", "/v1/problems".to_owned(), json!({"title": "T", "success_criteria": "S", "owner_id": nobody})),
        ];
        for (method, path, body) in cases {
            let response = if method == "post" { app.post("admin", &path, &body).await } else { app.patch("admin", &path, &body).await };
            response.assert_problem(404, "not_found");
            assert!(response.body["detail"].as_str().unwrap().contains("_id names no"), "{}", response.body);
        }
        let opened = app.post("mia", "/v1/problems", &json!({"title": "T", "success_criteria": "S", "team_id": nobody})).await;
        opened.assert_problem(404, "not_found");
        let now = chrono::Utc::now();
        let window = json!({"delegate_id": nobody, "from": now.to_rfc3339(), "until": (now + chrono::TimeDelta::days(1)).to_rfc3339()});
        app.post("mia", "/v1/delegations", &window).await.assert_problem(404, "not_found");
        assert_eq!(app.get("admin", "/v1/audit/verify").await.body["events_checked"], events_before, "nothing was written");
    }

    async fn a_member_or_manager_always_has_a_team(app: TestApp) {
        let org = app.org().await;
        let path = format!("/v1/people/{}", org.kim);
        // Both fields given and contradictory: the request itself is wrong.
        let contradictory = app.patch("admin", &path, &json!({"role": "manager", "team_id": null})).await;
        contradictory.assert_problem(422, "validation_failed");
        // One field that would contradict what is stored: a conflict.
        app.patch("admin", &path, &json!({"team_id": null})).await.assert_problem(409, "conflict");
        let to_finance = app.patch("admin", &path, &json!({"role": "finance", "team_id": null})).await;
        assert_eq!((to_finance.status, to_finance.body["team_id"].clone()), (200, json!(null)), "{}", to_finance.body);
        app.patch("admin", &path, &json!({"role": "member"})).await.assert_problem(409, "conflict");
        let back = app.patch("admin", &path, &json!({"role": "member", "team_id": org.ops})).await;
        assert_eq!(back.status, 200, "{}", back.body);
    }

    async fn whole_numbers_may_be_written_with_a_zero_fraction(app: TestApp) {
        let org = app.org().await;
        let path = format!("/v1/teams/{}/policy", org.ops);
        let policy = |hours: serde_json::Value| json!({"per_problem_limit": {"amount": "400.00", "currency": "USD"}, "review_sla_hours": hours});
        let written = app.put("admin", &path, &policy(json!(48.0))).await;
        assert_eq!((written.status, written.body["review_sla_hours"].clone()), (200, json!(48)), "{}", written.body);
        app.put("admin", &path, &policy(json!(48.5))).await.assert_problem(422, "validation_failed");
    }

    async fn text_needs_a_visible_character_and_counts_its_length_as_sent(app: TestApp) {
        app.post("admin", "/v1/teams", &json!({"name": " \u{3000}\t"})).await.assert_problem(422, "validation_failed");
        app.post("admin", "/v1/teams", &json!({"name": "Ops\u{0085}"})).await.assert_problem(422, "validation_failed");
        let padded = format!(" {} ", "n".repeat(199));
        app.post("admin", "/v1/teams", &json!({"name": padded})).await.assert_problem(422, "validation_failed");
        let trimmed = app.post("admin", "/v1/teams", &json!({"name": format!(" {}", "n".repeat(199))})).await;
        assert_eq!((trimmed.status, trimmed.body["name"].clone()), (201, json!("n".repeat(199))), "{}", trimmed.body);
    }

    async fn the_team_tree_never_loops(app: TestApp) {
        let org = app.org().await;
        let cycle = app.patch("admin", &format!("/v1/teams/{}", org.ops), &json!({"parent_id": org.ops_east})).await;
        cycle.assert_problem(422, "validation_failed");
        let itself = app.patch("admin", &format!("/v1/teams/{}", org.ops), &json!({"parent_id": org.ops})).await;
        itself.assert_problem(422, "validation_failed");
        let moved = app.patch("admin", &format!("/v1/teams/{}", org.sales), &json!({"parent_id": org.ops, "name": "Ops Sales"})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        assert_eq!(moved.body["parent_id"], org.ops);
        // Mia now reaches Sales problems through the tree.
        let problem = app.open_problem("lou", "Booth").await;
        assert_eq!(app.get("mia", &format!("/v1/problems/{problem}")).await.status, 200);
        let root = app.patch("admin", &format!("/v1/teams/{}", org.sales), &json!({"parent_id": null})).await;
        assert_eq!(root.body["parent_id"], json!(null));
        app.get("mia", &format!("/v1/problems/{problem}")).await.assert_problem(404, "not_found");
    }

    async fn lists_page_with_id_cursors(app: TestApp) {
        for index in 0..5 {
            assert_eq!(app.post("admin", "/v1/teams", &json!({"name": format!("Team {index}")})).await.status, 201);
        }
        let mut seen = HashSet::new();
        let mut path = "/v1/teams?limit=2".to_owned();
        let mut pages = 0;
        loop {
            let page = app.get("admin", &path).await;
            assert_eq!(page.status, 200, "{}", page.body);
            pages += 1;
            for item in page.body["items"].as_array().unwrap() {
                assert!(seen.insert(item["id"].as_str().unwrap().to_owned()), "duplicate {item}");
            }
            match page.body["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/teams?limit=2&after={cursor}"),
                None => break,
            }
        }
        assert_eq!((seen.len(), pages), (5, 3));
        // A cursor is the last id read: resuming after the third team's id
        // gives the last two, and an id that names nothing is a position too.
        let all = app.get("admin", "/v1/teams").await.body["items"].clone();
        let third = all[2]["id"].as_str().unwrap();
        let rest = app.get("admin", &format!("/v1/teams?after={}", third.to_uppercase())).await;
        assert_eq!(rest.body["items"], json!([all[3], all[4]]));
        let nothing_after = app.get("admin", "/v1/teams?after=ffffffff-ffff-7fff-bfff-ffffffffffff").await;
        assert_eq!((nothing_after.status, nothing_after.body["items"].clone()), (200, json!([])));
        app.get("admin", "/v1/teams?limit=0").await.assert_problem(400, "invalid_query");
        app.get("admin", "/v1/teams?limit=201").await.assert_problem(400, "invalid_query");
        app.get("admin", "/v1/teams?after=not-a-cursor").await.assert_problem(400, "invalid_query");
        app.get("admin", "/v1/teams?limit=abc").await.assert_problem(400, "invalid_query");
        app.get("admin", "/v1/teams?colour=red").await.assert_problem(400, "invalid_query");
    }

    async fn every_change_lands_in_the_audit_trail(app: TestApp) {
        let org = app.org().await;
        let problem = app.open_problem("sam", "Projector").await;
        let spend = app.spend("sam", &problem, "500.00").await.id();
        app.post("mia", &format!("/v1/spends/{spend}/review"), &json!({"decision": "reject", "note": "Too much"})).await;
        let events = app.get("fin", &format!("/v1/events?problem_id={problem}")).await;
        assert_eq!(events.status, 200, "{}", events.body);
        let kinds: Vec<&str> = events.body["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        // 500.00 of a 400.00 limit crosses both default alert thresholds.
        assert_eq!(kinds, ["problem.opened", "spend.flagged", "problem.budget_threshold", "problem.budget_threshold", "spend.rejected"]);
        let rejected = &events.body["items"][4];
        assert_eq!(rejected["actor_id"], org.mia);
        assert_eq!(rejected["data"]["status"], "rejected");
        let team_events = app.get("admin", "/v1/events?kind=team.created").await;
        assert_eq!(team_events.body["items"].as_array().unwrap().len(), 3);
        app.get("sam", "/v1/events").await.assert_problem(403, "forbidden");
        app.get("mia", "/v1/events").await.assert_problem(403, "forbidden");
        let by_mia = app.get("fin", &format!("/v1/events?actor_id={}", org.mia)).await;
        let kinds: Vec<&str> = by_mia.body["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["spend.rejected"]);
        let sales = app.get("fin", &format!("/v1/events?team_id={}&kind=spend.flagged", org.sales)).await;
        assert_eq!(sales.body["items"], json!([]));
        let ops = app.get("fin", &format!("/v1/events?team_id={}&kind=spend.flagged", org.ops)).await;
        assert_eq!(ops.body["items"].as_array().unwrap().len(), 1);
        let future = app.get("fin", "/v1/events?from=2999-01-01T00:00:00Z").await;
        assert_eq!(future.body["items"], json!([]));
        let past = app.get("fin", "/v1/events?to=2000-01-01T00:00:00Z").await;
        assert_eq!(past.body["items"], json!([]));
        let window = app.get("fin", "/v1/events?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00%2B02:00&limit=200").await;
        assert!(window.body["items"].as_array().unwrap().len() >= 3);
        app.get("fin", "/v1/events?from=yesterday").await.assert_problem(400, "invalid_query");
    }

    async fn the_database_refuses_to_rewrite_history(app: TestApp) {
        let org = app.org().await;
        let before = app.get("fin", "/v1/events?limit=200").await.body["items"].as_array().unwrap().len();
        for statement in [
            "UPDATE events SET kind = 'forged'",
            "DELETE FROM events",
            "UPDATE policies SET per_problem_limit_minor = 1",
            "DELETE FROM policies",
        ] {
            let refused = app.try_execute_sql(statement).unwrap_err();
            assert!(refused.contains("append-only"), "{statement}: {refused}");
        }
        let after = app.get("fin", "/v1/events?limit=200").await.body;
        assert_eq!(after["items"].as_array().unwrap().len(), before);
        assert!(after["items"].as_array().unwrap().iter().all(|event| event["kind"] != "forged"));
        let policy = app.get("sam", &format!("/v1/teams/{}/policy", org.ops)).await;
        assert_eq!(
            policy.body["per_problem_limit"],
            json!({"amount": "400.00", "currency": "USD"})
        );
    }
}
