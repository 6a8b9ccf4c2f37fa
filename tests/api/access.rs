//! Who may do what (DESIGN.md §4): reach, 404 for the unreachable, and
//! finance reading everything while changing nothing.

use serde_json::json;

use crate::backend_tests;

fn ids(body: &serde_json::Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

backend_tests! {
    async fn members_reach_only_their_own_problems(app: TestApp) {
        let org = app.org().await;
        let sams = app.open_problem("sam", "Sam's").await;
        let kims = app.open_problem("kim", "Kim's").await;
        app.get("sam", &format!("/v1/problems/{kims}")).await.assert_problem(404, "not_found");
        app.spend("sam", &kims, "1.00").await.assert_problem(404, "not_found");
        assert_eq!(ids(&app.get("sam", "/v1/problems").await.body), std::slice::from_ref(&sams));
        let spend = app.spend("kim", &kims, "5.00").await.id();
        app.get("sam", &format!("/v1/spends/{spend}")).await.assert_problem(404, "not_found");
        assert_eq!(ids(&app.get("sam", "/v1/spends").await.body), Vec::<String>::new());
        // Members open problems only for themselves, in their own team.
        let for_kim = json!({"title": "T", "success_criteria": "S", "owner_id": org.kim});
        // Sam cannot see Kim, so her id names nobody for him.
        app.post("sam", "/v1/problems", &for_kim).await.assert_problem(404, "not_found");
        let elsewhere = json!({"title": "T", "success_criteria": "S", "team_id": org.sales});
        app.post("sam", "/v1/problems", &elsewhere).await.assert_problem(403, "forbidden");
        app.get("sam", &format!("/v1/people/{}", org.kim)).await.assert_problem(404, "not_found");
        assert_eq!(ids(&app.get("sam", "/v1/people").await.body), std::slice::from_ref(&org.sam));
    }

    async fn managers_reach_their_teams_and_sub_teams_only(app: TestApp) {
        let org = app.org().await;
        let eves = app.open_problem("eve", "Eve's").await;
        let lous = app.open_problem("lou", "Lou's").await;
        assert_eq!(app.get("mia", &format!("/v1/problems/{eves}")).await.status, 200);
        app.get("mia", &format!("/v1/problems/{lous}")).await.assert_problem(404, "not_found");
        assert_eq!(ids(&app.get("mia", "/v1/problems").await.body), std::slice::from_ref(&eves));
        let for_eve = json!({"title": "Cabling", "success_criteria": "Done", "owner_id": org.eve, "team_id": org.ops_east});
        let opened = app.post("mia", "/v1/problems", &for_eve).await;
        assert_eq!(opened.status, 201, "{}", opened.body);
        assert_eq!(opened.body["owner_id"], org.eve);
        let for_lou = json!({"title": "X", "success_criteria": "Y", "owner_id": org.lou});
        app.post("mia", "/v1/problems", &for_lou).await.assert_problem(404, "not_found");
        let people = ids(&app.get("mia", "/v1/people").await.body);
        assert!(people.contains(&org.eve) && people.contains(&org.sam) && !people.contains(&org.lou));
    }

    async fn finance_reads_everything_and_changes_nothing(app: TestApp) {
        let org = app.org().await;
        let problem = app.open_problem("lou", "Booth").await;
        let spend = app.spend("lou", &problem, "450.00").await.id();
        assert_eq!(app.get("fin", &format!("/v1/problems/{problem}")).await.status, 200);
        assert_eq!(app.get("fin", &format!("/v1/spends/{spend}")).await.status, 200);
        assert_eq!(ids(&app.get("fin", "/v1/spends").await.body), std::slice::from_ref(&spend));
        app.spend("fin", &problem, "1.00").await.assert_problem(403, "forbidden");
        app.post("fin", &format!("/v1/spends/{spend}/review"), &json!({"decision": "approve"})).await.assert_problem(403, "forbidden");
        app.post("fin", &format!("/v1/problems/{problem}/close"), &json!({})).await.assert_problem(403, "forbidden");
        app.patch("fin", &format!("/v1/problems/{problem}"), &json!({"title": "Mine"})).await.assert_problem(403, "forbidden");
        app.post("fin", "/v1/problems", &json!({"title": "T", "success_criteria": "S", "team_id": org.ops})).await.assert_problem(403, "forbidden");
        let policy = json!({"per_problem_limit": {"amount": "1.00", "currency": "USD"}, "review_sla_hours": 1});
        app.put("fin", &format!("/v1/teams/{}/policy", org.ops), &policy).await.assert_problem(403, "forbidden");
        let after = app.get("fin", &format!("/v1/problems/{problem}")).await.body;
        assert_eq!((after["status"].as_str(), after["pending_review"]["amount"].as_str()), (Some("open"), Some("450.00")));
    }

    async fn tokens_are_required_and_checked(app: TestApp) {
        use jsonwebtoken::{EncodingKey, Header, encode};
        app.send(reqwest::Method::GET, "/v1/me", None, None).await.assert_problem(401, "unauthenticated");
        let garbage = app.send_with(reqwest::Method::GET, "/v1/me", None, None, &[("authorization", "Bearer not.a.jwt")]).await;
        garbage.assert_problem(401, "unauthenticated");
        assert_eq!(garbage.header("www-authenticate"), Some("Bearer"));
        let basic = app.send_with(reqwest::Method::GET, "/v1/me", None, None, &[("authorization", "Basic YWRtaW46YWRtaW4=")]).await;
        basic.assert_problem(401, "unauthenticated");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let sign = |claims: serde_json::Value, secret: &str| {
            encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
        };
        let secret = crate::helpers::TEST_SECRET;
        let cases = [
            sign(json!({"sub": "admin", "exp": now - 3_600}), secret),
            sign(json!({"sub": "admin", "exp": now + 3_600}), "another-secret-another-secret-another"),
            sign(json!({"sub": "admin"}), secret),
            sign(json!({"sub": "nobody", "exp": now + 3_600}), secret),
            sign(json!({"sub": "admin", "exp": (now + 3_600).to_string()}), secret),
        ];
        for token in cases {
            let response = app.send_with(reqwest::Method::GET, "/v1/me", None, None, &[("authorization", &format!("Bearer {token}"))]).await;
            response.assert_problem(401, "unauthenticated");
        }
        let valid = sign(json!({"sub": "admin", "exp": now + 3_600}), secret);
        let response = app.send_with(reqwest::Method::GET, "/v1/me", None, None, &[("authorization", &format!("Bearer {valid}"))]).await;
        assert_eq!(response.status, 200);
    }
}
