//! The delegation workflow (issue 3) through the real server: routing up the
//! team tree, approval authority and multi-level approval, SLA escalation
//! driven by the server's clock, partial approval, limit changes, alignment
//! before autonomy, per-person period allowances, flag reasons, delegated
//! review authority and sticky policy versions.

use std::time::Duration;

use chrono::TimeDelta;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Org, TestApp, spend_body};

/// A deeper tree on top of [`TestApp::org`]: team Company (manager Ceo) above
/// Ops, and Ed managing Ops East.
struct Tree {
    company: String,
    ceo: String,
    ed: String,
}

async fn tree(app: &TestApp, org: &Org) -> Tree {
    let company = app
        .post("admin", "/v1/teams", &json!({"name": "Company"}))
        .await
        .id();
    let ceo = person(app, "ceo", "manager", &company).await;
    let ed = person(app, "ed", "manager", &org.ops_east).await;
    for (team, body) in [
        (&company, json!({"manager_id": ceo})),
        (&org.ops, json!({"parent_id": company})),
        (&org.ops_east, json!({"manager_id": ed})),
    ] {
        let response = app
            .patch("admin", &format!("/v1/teams/{team}"), &body)
            .await;
        assert_eq!(response.status, 200, "{}", response.body);
    }
    Tree { company, ceo, ed }
}

async fn person(app: &TestApp, subject: &str, role: &str, team: &str) -> String {
    let body = json!({"subject": subject, "name": subject, "role": role, "team_id": team});
    let response = app.post("admin", "/v1/people", &body).await;
    assert_eq!(response.status, 201, "{}", response.body);
    response.id()
}

fn usd(amount: &str) -> Value {
    json!({"amount": amount, "currency": "USD"})
}

/// Sets the Ops policy (as the admin): 400.00 per problem, 24 h SLA, plus `extra`.
async fn ops_policy(app: &TestApp, org: &Org, extra: Value) -> Value {
    let mut policy = json!({"per_problem_limit": usd("400.00"), "review_sla_hours": 24});
    policy
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let response = app
        .put("admin", &format!("/v1/teams/{}/policy", org.ops), &policy)
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.body
}

async fn review(
    app: &TestApp,
    subject: &str,
    spend: &str,
    body: Value,
) -> crate::helpers::Response {
    app.post(subject, &format!("/v1/spends/{spend}/review"), &body)
        .await
}

/// The queue item for `spend` in `subject`'s review queue, if listed.
async fn queued(app: &TestApp, subject: &str, spend: &str) -> Option<Value> {
    let queue = app.get(subject, "/v1/reviews").await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    queue.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == spend)
        .cloned()
}

fn actions(spend: &Value) -> Vec<String> {
    spend["review_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["action"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls the spend (as the admin) until `done` holds, for up to ten seconds.
async fn wait_for(app: &TestApp, spend: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let body = app.get("admin", &format!("/v1/spends/{spend}")).await.body;
        if done(&body) {
            return body;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the spend never reached the expected state: {}",
        app.get("admin", &format!("/v1/spends/{spend}")).await.body
    );
}

backend_tests! {
    async fn flagged_spends_are_routed_up_the_tree_and_queued_for_exactly_their_reviewer(app: TestApp) {
        let org = app.org().await;
        let tree = tree(&app, &org).await;
        let problem = app.open_problem("eve", "East printer").await;
        let spend = app.spend("eve", &problem, "500.00").await;
        assert_eq!(spend.status, 201, "{}", spend.body);
        assert_eq!(spend.body["status"], "pending_review");
        assert_eq!(spend.body["flag_reasons"], json!(["over_problem_limit"]));
        assert_eq!(spend.body["reviewer_id"], tree.ed);
        assert_eq!(spend.body["review_team_id"], org.ops_east);
        let spend = spend.id();
        let shown = app.get("eve", &format!("/v1/spends/{spend}")).await.body;
        assert_eq!(actions(&shown), ["routed"]);
        assert_eq!(shown["review_history"][0]["actor_id"], json!(null));
        // Ed decides it; Mia and the Ceo above see it read-only; Sales sees nothing.
        assert_eq!(queued(&app, "ed", &spend).await.unwrap()["can_decide"], true);
        assert_eq!(queued(&app, "mia", &spend).await.unwrap()["can_decide"], false);
        assert_eq!(queued(&app, "ceo", &spend).await.unwrap()["can_decide"], false);
        assert!(queued(&app, "max", &spend).await.is_none());
        assert!(queued(&app, "eve", &spend).await.is_none());
        review(&app, "mia", &spend, json!({"decision": "approve"})).await.assert_problem(403, "forbidden");
        review(&app, "max", &spend, json!({"decision": "approve"})).await.assert_problem(404, "not_found");
        let approved = review(&app, "ed", &spend, json!({"decision": "approve"})).await;
        assert_eq!(approved.body["status"], "approved_by_manager", "{}", approved.body);
        assert_eq!(approved.body["decided_by"], tree.ed);
        assert!(queued(&app, "ed", &spend).await.is_none());

        // A spend Ed logs himself skips him and goes to Mia; Mia's own goes to the Ceo.
        let by_ed = app.spend("ed", &problem, "50.00").await;
        assert_eq!(by_ed.body["reviewer_id"], org.mia, "{}", by_ed.body);
        review(&app, "ed", &by_ed.id(), json!({"decision": "approve"})).await.assert_problem(403, "self_review_forbidden");
        let mias = app.post("mia", "/v1/problems", &json!({"title": "Mia's own", "success_criteria": "Done"})).await.id();
        let by_mia = app.spend("mia", &mias, "401.00").await;
        assert_eq!(by_mia.body["reviewer_id"], tree.ceo, "{}", by_mia.body);
        assert_eq!(by_mia.body["review_team_id"], tree.company);
        review(&app, "mia", &by_mia.id(), json!({"decision": "approve"})).await.assert_problem(403, "self_review_forbidden");
        // Nobody above the Ceo: his own overrun goes to the admins.
        let ceos = app.post("ceo", "/v1/problems", &json!({"title": "Offsite", "success_criteria": "Held", "limit": usd("100.00")})).await;
        assert_eq!(ceos.status, 201, "{}", ceos.body);
        let by_ceo = app.spend("ceo", &ceos.id(), "150.00").await;
        assert_eq!(by_ceo.body["status"], "pending_review");
        assert_eq!(by_ceo.body["reviewer_id"], json!(null));
        assert_eq!(by_ceo.body["review_due_at"], json!(null));
        assert_eq!(queued(&app, "admin", &by_ceo.id()).await.unwrap()["can_decide"], true);
        assert_eq!(queued(&app, "fin", &by_ceo.id()).await.unwrap()["can_decide"], false);
        let by_admin = review(&app, "admin", &by_ceo.id(), json!({"decision": "reject", "note": "Over budget"})).await;
        assert_eq!(by_admin.body["status"], "rejected", "{}", by_admin.body);
    }

    async fn approvals_beyond_a_managers_authority_move_up_until_someone_may_approve(app: TestApp) {
        let org = app.org().await;
        let tree = tree(&app, &org).await;
        // Authority is granted from above: Mia cannot raise her own.
        let own = json!({"per_problem_limit": usd("400.00"), "review_sla_hours": 24, "approval_limit": usd("1000.00")});
        app.put("mia", &format!("/v1/teams/{}/policy", org.ops), &own).await.assert_problem(403, "forbidden");
        let mismatched = json!({"per_problem_limit": usd("400.00"), "review_sla_hours": 24, "approval_limit": {"amount": "50.00", "currency": "EUR"}});
        app.put("admin", &format!("/v1/teams/{}/policy", org.ops), &mismatched).await.assert_problem(422, "validation_failed");
        let policy = ops_policy(&app, &org, json!({"approval_limit": usd("50.00")})).await;
        assert_eq!(policy["approval_limit"], usd("50.00"));
        let problem = app.open_problem("sam", "Generator").await;

        // 100.00 over the budget: Mia (authority 50.00) endorses, the Ceo approves.
        let spend = app.spend("sam", &problem, "500.00").await.id();
        let endorsed = review(&app, "mia", &spend, json!({"decision": "approve", "note": "Needed"})).await;
        assert_eq!(endorsed.status, 200, "{}", endorsed.body);
        assert_eq!(endorsed.body["status"], "pending_review");
        assert_eq!(endorsed.body["reviewer_id"], tree.ceo);
        // Routed above Mia now: no longer in her queue, and not hers to decide.
        assert!(queued(&app, "mia", &spend).await.is_none());
        review(&app, "mia", &spend, json!({"decision": "approve"})).await.assert_problem(403, "forbidden");
        let approved = review(&app, "ceo", &spend, json!({"decision": "approve"})).await;
        assert_eq!(approved.body["status"], "approved_by_manager", "{}", approved.body);
        let shown = app.get("sam", &format!("/v1/spends/{spend}")).await.body;
        assert_eq!(actions(&shown), ["routed", "endorsed", "approved"]);
        assert_eq!(shown["review_history"][1]["actor_id"], org.mia);
        assert_eq!(shown["review_history"][1]["reviewer_id"], tree.ceo);
        assert_eq!(shown["review_history"][2]["actor_id"], tree.ceo);

        // Within her authority Mia approves alone (the budget is spent: the whole 30.00 overruns).
        let small = app.spend("sam", &problem, "30.00").await.id();
        assert_eq!(review(&app, "mia", &small, json!({"decision": "approve"})).await.body["status"], "approved_by_manager");
        // Anyone on the chain may reject.
        let big = app.spend("sam", &problem, "100.00").await.id();
        assert_eq!(review(&app, "mia", &big, json!({"decision": "approve"})).await.body["reviewer_id"], tree.ceo);
        let rejected = review(&app, "ceo", &big, json!({"decision": "reject", "note": "Enough"})).await;
        assert_eq!(rejected.body["status"], "rejected");
        let totals = app.get("sam", &format!("/v1/problems/{problem}")).await.body;
        assert_eq!(totals["approved"], usd("530.00"));
        assert_eq!(totals["pending_review"], usd("0.00"));

        // Raising the limit cannot launder an overrun past the authority: measured against the limit as it was.
        let laundered = app.spend("sam", &problem, "200.00").await.id();
        let attempt = review(&app, "mia", &laundered, json!({"decision": "approve", "new_limit": usd("1000.00"), "note": "Raise it"})).await;
        assert_eq!(attempt.body["status"], "pending_review", "{}", attempt.body);
        assert_eq!(attempt.body["reviewer_id"], tree.ceo);
        assert_eq!(app.get("sam", &format!("/v1/problems/{problem}")).await.body["limit"], usd("400.00"));
        // Raising a budget takes the same authority; nobody sets the budget of their own problem.
        let path = format!("/v1/problems/{problem}");
        app.patch("mia", &path, &json!({"limit": usd("450.00"), "limit_reason": "Below what is approved"})).await.assert_problem(409, "below_approved");
        app.patch("mia", &path, &json!({"limit": usd("600.00"), "limit_reason": "More"})).await.assert_problem(403, "forbidden");
        assert_eq!(app.patch("ceo", &path, &json!({"limit": usd("600.00"), "limit_reason": "More"})).await.status, 200);
        let mias = app.post("mia", "/v1/problems", &json!({"title": "Mia's", "success_criteria": "Done"})).await.id();
        app.patch("mia", &format!("/v1/problems/{mias}"), &json!({"limit": usd("420.00"), "limit_reason": "Mine"})).await.assert_problem(403, "forbidden");
        // A sub-team cannot shed the cap it inherits.
        let east = json!({"per_problem_limit": usd("400.00"), "review_sla_hours": 24});
        app.put("ed", &format!("/v1/teams/{}/policy", org.ops_east), &east).await.assert_problem(403, "forbidden");
        // After a change of manager the new manager decides what was routed to the team; the former one cannot.
        let stale = app.spend("sam", &problem, "700.00").await;
        assert_eq!(stale.body["reviewer_id"], org.mia, "{}", stale.body);
        let ops = format!("/v1/teams/{}", org.ops);
        assert_eq!(app.patch("admin", &ops, &json!({"manager_id": tree.ed})).await.status, 200);
        review(&app, "mia", &stale.id(), json!({"decision": "reject", "note": "No"})).await.assert_problem(404, "not_found");
        assert_eq!(queued(&app, "ed", &stale.id()).await.unwrap()["can_decide"], true);
        let by_new_manager = review(&app, "ed", &stale.id(), json!({"decision": "reject", "note": "Not now"})).await;
        assert_eq!(by_new_manager.body["status"], "rejected", "{}", by_new_manager.body);
    }

    async fn a_reviewer_can_approve_part_of_a_spend_and_the_rest_is_rejected(app: TestApp) {
        app.org().await;
        let problem = app.open_problem("sam", "Chairs").await;
        assert_eq!(app.spend("sam", &problem, "300.00").await.body["status"], "approved");
        let spend = app.spend("sam", &problem, "200.00").await.id();
        let path = format!("/v1/spends/{spend}/review");
        app.post("mia", &path, &json!({"decision": "approve", "approved_amount": usd("150.00")})).await.assert_problem(422, "validation_failed");
        let too_much = app.post("mia", &path, &json!({"decision": "approve", "approved_amount": usd("200.01"), "note": "Too much"})).await;
        too_much.assert_problem(422, "validation_failed");
        assert_eq!((too_much.body["errors"][0]["field"].as_str(), too_much.body["errors"][0]["code"].as_str()), (Some("approved_amount.amount"), Some("above_amount")));
        let euros = app.post("mia", &path, &json!({"decision": "approve", "approved_amount": {"amount": "10.00", "currency": "EUR"}, "note": "x"})).await;
        euros.assert_problem(422, "validation_failed");
        assert_eq!((euros.body["errors"][0]["field"].as_str(), euros.body["errors"][0]["code"].as_str()), (Some("approved_amount.currency"), Some("currency_mismatch")));
        app.post("mia", &path, &json!({"decision": "reject", "approved_amount": usd("10.00"), "note": "x"})).await.assert_problem(422, "validation_failed");
        let partial = app.post("mia", &path, &json!({"decision": "approve", "approved_amount": usd("150.00"), "note": "Two chairs, not three"})).await;
        assert_eq!(partial.status, 200, "{}", partial.body);
        assert_eq!(partial.body["status"], "approved_by_manager");
        assert_eq!(partial.body["amount"], usd("200.00"));
        assert_eq!(partial.body["approved_amount"], usd("150.00"));
        let totals = app.get("sam", &format!("/v1/problems/{problem}")).await.body;
        assert_eq!(totals["approved"], usd("450.00"));
        assert_eq!(totals["pending_review"], usd("0.00"));
        // Voiding it releases what was approved, not the amount asked.
        let voided = app.post("mia", &format!("/v1/spends/{spend}/void"), &json!({"reason": "Returned"})).await;
        assert_eq!(voided.body["status"], "voided", "{}", voided.body);
        assert_eq!(app.get("sam", &format!("/v1/problems/{problem}")).await.body["approved"], usd("300.00"));
    }

    async fn overdue_reviews_escalate_by_the_servers_clock_and_the_first_reviewer_may_still_decide(app: TestApp) {
        let org = app.org().await;
        let tree = tree(&app, &org).await;
        let problem = app.open_problem("sam", "Roof").await;
        let first = app.spend("sam", &problem, "450.00").await;
        assert_eq!(first.body["reviewer_id"], org.mia);
        assert!(first.body["review_due_at"].is_string());
        let second = app.spend("sam", &problem, "10.00").await.id();
        let first = first.id();
        // Not yet due: nothing moves.
        app.clock.advance(TimeDelta::hours(23));
        actix_web::rt::time::sleep(crate::helpers::ESCALATION_INTERVAL * 3).await;
        assert_eq!(app.get("admin", &format!("/v1/spends/{first}")).await.body["reviewer_id"], org.mia);
        app.clock.advance(TimeDelta::hours(2));
        let escalated = wait_for(&app, &first, |spend| spend["reviewer_id"] == tree.ceo).await;
        assert_eq!(escalated["original_reviewer_id"], org.mia);
        assert_eq!(actions(&escalated), ["routed", "escalated"]);
        assert_eq!(escalated["review_history"][1]["actor_id"], json!(null));
        let events = app.get("fin", &format!("/v1/events?kind=spend.escalated&subject_id={first}")).await;
        assert_eq!(events.body["items"].as_array().unwrap().len(), 1, "{}", events.body);
        assert_eq!(events.body["items"][0]["actor_id"], json!(null));
        assert_eq!(queued(&app, "ceo", &first).await.unwrap()["can_decide"], true);
        assert_eq!(queued(&app, "mia", &first).await.unwrap()["can_decide"], true);
        let by_mia = review(&app, "mia", &first, json!({"decision": "approve"})).await;
        assert_eq!(by_mia.body["status"], "approved_by_manager", "{}", by_mia.body);
        // The second spend keeps climbing: past the Ceo's SLA it reaches the admins and stops.
        wait_for(&app, &second, |spend| spend["reviewer_id"] == tree.ceo).await;
        app.clock.advance(TimeDelta::hours(25));
        let at_top = wait_for(&app, &second, |spend| spend["reviewer_id"].is_null()).await;
        assert_eq!(at_top["review_due_at"], json!(null));
        assert_eq!(at_top["original_reviewer_id"], org.mia);
        assert_eq!(actions(&at_top), ["routed", "escalated", "escalated"]);
        assert_eq!(review(&app, "admin", &second, json!({"decision": "approve"})).await.body["status"], "approved_by_manager");
    }

    async fn a_manager_can_change_a_limit_while_approving_and_every_version_is_kept(app: TestApp) {
        let org = app.org().await;
        let problem = app.open_problem("sam", "Van").await;
        let spend = app.spend("sam", &problem, "500.00").await.id();
        let path = format!("/v1/spends/{spend}/review");
        app.post("mia", &path, &json!({"decision": "approve", "new_limit": usd("600.00")})).await.assert_problem(422, "validation_failed");
        let approved = app.post("mia", &path, &json!({"decision": "approve", "new_limit": usd("600.00"), "note": "Van needs tyres"})).await;
        assert_eq!(approved.body["status"], "approved_by_manager", "{}", approved.body);
        let shown = app.get("sam", &format!("/v1/problems/{problem}")).await.body;
        assert_eq!(shown["limit"], usd("600.00"));
        assert_eq!(shown["remaining"], usd("100.00"));
        assert_eq!(shown["limit_version"], 2);
        let lowered = app.patch("mia", &format!("/v1/problems/{problem}"), &json!({"limit": usd("450.00"), "limit_reason": "Cut"})).await;
        lowered.assert_problem(409, "below_approved");
        let lowered = app.patch("mia", &format!("/v1/problems/{problem}"), &json!({"limit": usd("500.00"), "limit_reason": "Back to plan"})).await;
        assert_eq!(lowered.body["limit_version"], 3, "{}", lowered.body);
        let changes = app.get("sam", &format!("/v1/problems/{problem}/limit-changes")).await;
        assert_eq!(changes.status, 200, "{}", changes.body);
        let items = changes.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["limit"], usd("400.00"));
        assert_eq!(items[0]["reason"], json!(null));
        assert_eq!(items[1]["limit"], usd("600.00"));
        assert_eq!(items[1]["previous_limit"], usd("400.00"));
        assert_eq!(items[1]["changed_by"], org.mia);
        assert_eq!(items[1]["reason"], "Van needs tyres");
        assert_eq!(items[2]["reason"], "Back to plan");
        app.get("lou", &format!("/v1/problems/{problem}/limit-changes")).await.assert_problem(404, "not_found");
        let events = app.get("fin", &format!("/v1/events?kind=problem.limit_changed&problem_id={problem}")).await;
        assert_eq!(events.body["items"].as_array().unwrap().len(), 2);
    }

    async fn spends_are_flagged_until_the_owner_acknowledges_the_current_success_criteria(app: TestApp) {
        let org = app.org().await;
        ops_policy(&app, &org, json!({"require_acknowledgement": true})).await;
        let opened = app.post("sam", "/v1/problems", &json!({"title": "Wifi", "success_criteria": "Every desk online"})).await.body;
        assert_eq!(opened["acknowledgement_required"], true);
        assert_eq!(opened["acknowledged_at"], json!(null));
        let problem = opened["id"].as_str().unwrap().to_owned();
        let unaligned = app.spend("sam", &problem, "10.00").await.body;
        assert_eq!(unaligned["status"], "pending_review");
        assert_eq!(unaligned["flag_reasons"], json!(["not_acknowledged"]));
        assert_eq!(unaligned["overrun"], json!(null));
        let both = app.spend("sam", &problem, "500.00").await.body;
        assert_eq!(both["flag_reasons"], json!(["over_problem_limit", "not_acknowledged"]));
        let path = format!("/v1/problems/{problem}/acknowledge");
        app.post("mia", &path, &json!({"criteria_version": 1})).await.assert_problem(403, "forbidden");
        app.post("lou", &path, &json!({"criteria_version": 1})).await.assert_problem(404, "not_found");
        app.post("sam", &path, &json!({"criteria_version": 2})).await.assert_problem(409, "conflict");
        // A version below 1 is wrong in any state: 422, not a conflict.
        app.post("sam", &path, &json!({"criteria_version": 0})).await.assert_problem(422, "validation_failed");
        review(&app, "mia", both["id"].as_str().unwrap(), json!({"decision": "reject", "note": "Align first"})).await;
        let acknowledged = app.post("sam", &path, &json!({"criteria_version": 1})).await;
        assert_eq!(acknowledged.status, 200, "{}", acknowledged.body);
        assert!(acknowledged.body["acknowledged_at"].is_string());
        assert_eq!(app.spend("sam", &problem, "10.00").await.body["status"], "approved");
        // New criteria need a new acknowledgement.
        // Where acknowledgement is required, the owner cannot rewrite what they acknowledge.
        let criteria = json!({"success_criteria": "Every desk and the lobby online"});
        app.patch("sam", &format!("/v1/problems/{problem}"), &criteria).await.assert_problem(403, "forbidden");
        let changed = app.patch("mia", &format!("/v1/problems/{problem}"), &criteria).await.body;
        assert_eq!(changed["criteria_version"], 2);
        assert_eq!(changed["acknowledged_at"], json!(null));
        assert_eq!(app.spend("sam", &problem, "10.00").await.body["flag_reasons"], json!(["not_acknowledged"]));
        assert_eq!(app.post("sam", &path, &json!({"criteria_version": 2})).await.status, 200);
        assert_eq!(app.spend("sam", &problem, "10.00").await.body["status"], "approved");
        let events = app.get("fin", &format!("/v1/events?kind=problem.acknowledged&problem_id={problem}")).await;
        assert_eq!(events.body["items"].as_array().unwrap().len(), 2);
    }

    async fn a_monthly_allowance_caps_each_persons_autonomous_spending_across_problems(app: TestApp) {
        let org = app.org().await;
        ops_policy(&app, &org, json!({"period_allowance": usd("500.00")})).await;
        let mut problems = Vec::new();
        for title in ["Desk", "Lamp", "Chair", "Shelf", "Rug"] {
            problems.push(app.open_problem("sam", title).await);
        }
        let approved = app.spend("sam", &problems[0], "300.00").await.id();
        let flagged = app.spend("sam", &problems[1], "300.00").await.body;
        assert_eq!(flagged["status"], "pending_review");
        assert_eq!(flagged["flag_reasons"], json!(["over_period_allowance"]));
        assert_eq!(flagged["overrun"], usd("100.00"));
        assert_eq!(app.get("sam", &format!("/v1/problems/{}", problems[1])).await.body["pending_review"], usd("300.00"));
        // A manager's approval does not use the allowance.
        assert_eq!(review(&app, "mia", flagged["id"].as_str().unwrap(), json!({"decision": "approve"})).await.body["status"], "approved_by_manager");
        assert_eq!(app.spend("sam", &problems[1], "50.00").await.body["status"], "approved");
        let over = app.spend("sam", &problems[2], "200.00").await.body;
        assert_eq!(over["flag_reasons"], json!(["over_period_allowance"]));
        assert_eq!(over["overrun"], usd("50.00"));
        // Another person's allowance is their own.
        let kims = app.post("mia", "/v1/problems", &json!({"title": "Kim's", "success_criteria": "Done", "owner_id": org.kim})).await.id();
        assert_eq!(app.spend("kim", &kims, "400.00").await.body["status"], "approved");
        // Voiding an autonomous spend gives its amount back to the allowance.
        let voided = app.post("mia", &format!("/v1/spends/{approved}/void"), &json!({"reason": "Wrong card"})).await;
        assert_eq!(voided.body["status"], "voided", "{}", voided.body);
        assert_eq!(app.spend("sam", &problems[3], "400.00").await.body["status"], "approved");
        assert_eq!(app.spend("sam", &problems[4], "100.00").await.body["flag_reasons"], json!(["over_period_allowance"]));
        // A new calendar month starts a new allowance.
        app.clock.advance(TimeDelta::days(32));
        assert_eq!(app.spend("sam", &problems[4], "300.00").await.body["status"], "approved");
    }

    async fn concurrent_spends_can_never_take_a_person_past_their_allowance(app: TestApp) {
        let org = app.org().await;
        ops_policy(&app, &org, json!({"period_allowance": usd("400.00")})).await;
        let mut problems = Vec::new();
        for index in 0..4 {
            problems.push(app.open_problem("sam", &format!("Problem {index}")).await);
        }
        let responses = join_all((0..24).map(|index| {
            let path = format!("/v1/problems/{}/spends", problems[index % 4]);
            let app = &app;
            async move { app.post("sam", &path, &spend_body("50.00")).await }
        }))
        .await;
        assert!(responses.iter().all(|response| response.status == 201), "{responses:?}");
        let approved = responses.iter().filter(|response| response.body["status"] == "approved").count();
        assert_eq!(approved, 8);
        let flagged = responses.iter().filter(|response| response.body["flag_reasons"] == json!(["over_period_allowance"])).count();
        assert_eq!(flagged, 16);
        let mut approved_total = 0.0_f64;
        for problem in &problems {
            let body = app.get("sam", &format!("/v1/problems/{problem}")).await.body;
            approved_total += body["approved"]["amount"].as_str().unwrap().parse::<f64>().unwrap();
        }
        assert!((approved_total - 400.0).abs() < 0.001, "{approved_total}");
    }

    async fn a_manager_can_hand_their_queue_to_another_for_a_window(app: TestApp) {
        let org = app.org().await;
        let max = app.get("max", "/v1/me").await.body["id"].as_str().unwrap().to_owned();
        let problem = app.open_problem("sam", "Fridge").await;
        let spend = app.spend("sam", &problem, "450.00").await.id();
        let now = chrono::Utc::now();
        let window = |from: TimeDelta, until: TimeDelta| json!({"delegate_id": max, "from": (now + from).to_rfc3339(), "until": (now + until).to_rfc3339(), "note": "Vacation"});
        app.post("mia", "/v1/delegations", &json!({"delegate_id": org.sam, "from": now.to_rfc3339(), "until": (now + TimeDelta::hours(1)).to_rfc3339()})).await.assert_problem(422, "validation_failed");
        // A member of a team Mia cannot see is unknown to her: no answer tells her Lou's role.
        app.post("mia", "/v1/delegations", &json!({"delegate_id": org.lou, "from": now.to_rfc3339(), "until": (now + TimeDelta::hours(1)).to_rfc3339()})).await.assert_problem(404, "not_found");
        app.post("sam", "/v1/delegations", &window(TimeDelta::zero(), TimeDelta::hours(1))).await.assert_problem(403, "forbidden");
        app.post("mia", "/v1/delegations", &window(TimeDelta::hours(2), TimeDelta::hours(1))).await.assert_problem(422, "validation_failed");
        app.post("max", "/v1/delegations", &json!({"delegate_id": max, "delegator_id": org.mia, "from": now.to_rfc3339(), "until": (now + TimeDelta::hours(1)).to_rfc3339()})).await.assert_problem(403, "forbidden");
        // Not yet in force: Max cannot see or decide Mia's reviews.
        let later = app.post("mia", "/v1/delegations", &window(TimeDelta::hours(1), TimeDelta::hours(3))).await;
        assert_eq!(later.status, 201, "{}", later.body);
        assert!(queued(&app, "max", &spend).await.is_none());
        review(&app, "max", &spend, json!({"decision": "approve"})).await.assert_problem(404, "not_found");
        // In force: Max decides on Mia's behalf.
        app.clock.advance(TimeDelta::minutes(90));
        let item = queued(&app, "max", &spend).await.unwrap();
        assert_eq!(item["can_decide"], true);
        assert_eq!(item["on_behalf_of"], org.mia);
        assert_eq!(app.get("max", &format!("/v1/spends/{spend}")).await.status, 200);
        let decided = review(&app, "max", &spend, json!({"decision": "approve", "note": "Covering for Mia"})).await;
        assert_eq!(decided.body["status"], "approved_by_manager", "{}", decided.body);
        assert_eq!(decided.body["decided_by"], max);
        assert_eq!(decided.body["decided_on_behalf_of"], org.mia);
        let shown = app.get("sam", &format!("/v1/spends/{spend}")).await.body;
        assert_eq!(shown["review_history"][1]["on_behalf_of"], org.mia);
        // After the window: refused again.
        let next = app.spend("sam", &problem, "20.00").await.id();
        app.clock.advance(TimeDelta::hours(2));
        assert!(queued(&app, "max", &next).await.is_none());
        review(&app, "max", &next, json!({"decision": "approve"})).await.assert_problem(404, "not_found");
        // Revoked: refused at once.
        let by_admin = app.post("admin", "/v1/delegations", &json!({"delegate_id": max, "delegator_id": org.mia, "from": (now + TimeDelta::hours(3)).to_rfc3339(), "until": (now + TimeDelta::hours(9)).to_rfc3339()})).await;
        assert_eq!(by_admin.status, 201, "{}", by_admin.body);
        assert_eq!(queued(&app, "max", &next).await.unwrap()["can_decide"], true);
        let id = by_admin.id();
        app.post("max", &format!("/v1/delegations/{id}/revoke"), &json!({})).await.assert_problem(403, "forbidden");
        let revoked = app.post("mia", &format!("/v1/delegations/{id}/revoke"), &json!({})).await;
        assert!(revoked.body["revoked_at"].is_string(), "{}", revoked.body);
        app.post("mia", &format!("/v1/delegations/{id}/revoke"), &json!({})).await.assert_problem(409, "conflict");
        review(&app, "max", &next, json!({"decision": "approve"})).await.assert_problem(404, "not_found");
        // Who sees which delegations.
        assert_eq!(app.get("mia", "/v1/delegations").await.body["items"].as_array().unwrap().len(), 2);
        assert_eq!(app.get("fin", "/v1/delegations").await.body["items"].as_array().unwrap().len(), 2);
        assert!(app.get("kim", "/v1/delegations").await.body["items"].as_array().unwrap().is_empty());
        app.get("kim", &format!("/v1/delegations/{id}")).await.assert_problem(404, "not_found");
        assert_eq!(app.get("max", &format!("/v1/delegations/{id}")).await.body["delegator_id"], org.mia);
        let events = app.get("fin", "/v1/events?kind=delegation.revoked").await;
        assert_eq!(events.body["items"].as_array().unwrap().len(), 1);
    }

    async fn spends_are_judged_by_the_policy_version_pinned_on_their_problem(app: TestApp) {
        let org = app.org().await;
        let old = app.open_problem("sam", "Old").await;
        ops_policy(&app, &org, json!({"per_problem_limit": usd("100.00"), "require_acknowledgement": true, "period_allowance": usd("50.00")})).await;
        let spend = app.spend("sam", &old, "300.00").await.body;
        assert_eq!(spend["status"], "approved", "{spend}");
        assert_eq!(spend["policy"], json!({"team_id": org.ops, "version": 1}));
        let new = app.post("sam", "/v1/problems", &json!({"title": "New", "success_criteria": "Done"})).await.body;
        assert_eq!(new["limit"], usd("100.00"));
        assert_eq!(new["policy"]["version"], 2);
        assert_eq!(new["acknowledgement_required"], true);
        // Changing the limit re-pins the version in force now.
        let changed = app.patch("mia", &format!("/v1/problems/{old}"), &json!({"limit": usd("500.00"), "limit_reason": "Rescoped"})).await.body;
        assert_eq!(changed["policy"]["version"], 2, "{changed}");
        assert_eq!(changed["acknowledgement_required"], true);
        let after = app.spend("sam", &old, "10.00").await.body;
        assert_eq!(after["policy"]["version"], 2);
        assert_eq!(after["flag_reasons"], json!(["over_period_allowance", "not_acknowledged"]));
        // The first spend still names the version that judged it.
        let first = app.get("sam", &format!("/v1/spends/{}", spend["id"].as_str().unwrap())).await.body;
        assert_eq!(first["policy"]["version"], 1);
    }

    async fn two_escalators_racing_move_each_overdue_spend_exactly_once(app: TestApp) {
        let org = app.org().await;
        tree(&app, &org).await;
        let problem = app.open_problem("sam", "Race").await;
        let mut spends = Vec::new();
        for _ in 0..6 {
            spends.push(app.spend("sam", &problem, "500.00").await.id());
        }
        // What two server processes do on the same tick, against one database.
        let at = app.clock.now() + TimeDelta::hours(25);
        let (first, second) = futures_util::future::join(
            leeway::service::escalation::escalate_overdue(&app.db, at),
            leeway::service::escalation::escalate_overdue(&app.db, at),
        )
        .await;
        assert_eq!(first.unwrap() + second.unwrap(), spends.len());
        for spend in &spends {
            let shown = app.get("admin", &format!("/v1/spends/{spend}")).await.body;
            assert_eq!(actions(&shown), ["routed", "escalated"], "{shown}");
        }
        let events = app.get("fin", "/v1/events?kind=spend.escalated").await;
        assert_eq!(events.body["items"].as_array().unwrap().len(), spends.len());
    }
}
