//! The change feed: `GET /v1/events?after_sequence=N` pages by the event
//! sequence up to the safe horizon, so a client that continues from
//! `next_after_sequence` never steps over an event, even one whose
//! transaction commits after later ones (PostgreSQL).

use std::sync::mpsc;
use std::time::Duration;

use diesel::{Connection, PgConnection};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

/// Some events on two problems and the organisation chain.
async fn some_history(app: &TestApp) {
    app.org().await;
    let printer = app.open_problem("sam", "Printer").await;
    let desk = app.open_problem("kim", "Desk").await;
    for amount in ["10.00", "20.00", "30.00"] {
        assert_eq!(app.spend("sam", &printer, amount).await.status, 201);
    }
    assert_eq!(app.spend("kim", &desk, "40.00").await.status, 201);
}

/// One page of the feed; asserts a 200.
async fn feed_page(app: &TestApp, query: &str) -> (Vec<Value>, i64) {
    let response = app.get("fin", &format!("/v1/events?{query}")).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.body["next_cursor"],
        Value::Null,
        "{}",
        response.body
    );
    let items = response.body["items"].as_array().unwrap().clone();
    let next = response.body["next_after_sequence"].as_i64().unwrap();
    (items, next)
}

fn sequences(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|event| event["sequence"].as_i64().unwrap())
        .collect()
}

/// Every event, paged by id (the other way to page).
async fn all_events(app: &TestApp) -> Vec<Value> {
    let response = app.get("fin", "/v1/events?limit=200").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["next_cursor"], Value::Null);
    response.body["items"].as_array().unwrap().clone()
}

backend_tests! {
    async fn the_feed_pages_by_sequence_up_to_the_horizon(app: TestApp) {
        some_history(&app).await;
        let mut expected = sequences(&all_events(&app).await);
        expected.sort_unstable();
        let newest = *expected.last().unwrap();

        let mut seen = Vec::new();
        let mut position = 0;
        loop {
            let (items, next) = feed_page(&app, &format!("after_sequence={position}&limit=3")).await;
            let page = sequences(&items);
            assert!(page.windows(2).all(|pair| pair[0] < pair[1]), "in sequence order: {page:?}");
            assert!(page.iter().all(|sequence| *sequence > position), "{page:?} after {position}");
            if page.len() == 3 {
                assert_eq!(next, page[2], "a full page continues from its last event");
            } else {
                assert_eq!(next, newest, "a partial page continues from the horizon");
            }
            seen.extend(page);
            if next == position {
                break;
            }
            position = next;
        }
        assert_eq!(seen, expected, "the feed gives every event once, in order");

        // At the head: nothing new, and the position stays.
        let (items, next) = feed_page(&app, &format!("after_sequence={newest}")).await;
        assert!(items.is_empty());
        assert_eq!(next, newest);

        // A new event appears after the position the feed gave.
        let problem = app.open_problem("sam", "Chair").await;
        let (items, next) = feed_page(&app, &format!("after_sequence={newest}")).await;
        assert_eq!(items.len(), 1, "{items:?}");
        assert_eq!(items[0]["kind"], "problem.opened");
        assert_eq!(items[0]["problem_id"], problem.as_str());
        assert_eq!(next, newest + 1);
    }

    async fn after_is_one_more_lower_bound_on_the_feed(app: TestApp) {
        some_history(&app).await;
        let mut events = all_events(&app).await;
        events.sort_by_key(|event| event["sequence"].as_i64().unwrap());
        let middle = events[events.len() / 2]["id"].as_str().unwrap().to_owned();
        let (items, _) = feed_page(&app, &format!("after_sequence=0&after={middle}&limit=200")).await;
        let expected: Vec<&Value> = events
            .iter()
            .filter(|event| event["id"].as_str().unwrap() > middle.as_str())
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(items.iter().collect::<Vec<_>>(), expected);
    }

    async fn a_filtered_feed_still_moves_to_the_horizon(app: TestApp) {
        some_history(&app).await;
        let mut all = sequences(&all_events(&app).await);
        all.sort_unstable();
        let newest = *all.last().unwrap();
        let (items, next) = feed_page(&app, "after_sequence=0&kind=spend.approved").await;
        assert_eq!(items.len(), 4, "{items:?}");
        assert!(items.iter().all(|event| event["kind"] == "spend.approved"));
        assert_eq!(next, newest, "no matching event is left below the horizon");
        let (items, next) = feed_page(&app, &format!("after_sequence={next}&kind=spend.approved")).await;
        assert!(items.is_empty());
        assert_eq!(next, newest);
    }

    async fn the_feed_refuses_positions_it_did_not_give(app: TestApp) {
        some_history(&app).await;
        let (_, newest) = feed_page(&app, "after_sequence=0&limit=200").await;
        for query in ["after_sequence=-1", "after_sequence=abc", "after_sequence=1.5"] {
            app.get("fin", &format!("/v1/events?{query}"))
                .await
                .assert_problem(400, "invalid_query");
        }
        let ahead = newest + 1_000;
        let response = app.get("fin", &format!("/v1/events?after_sequence={ahead}")).await;
        response.assert_problem(409, "after_sequence_ahead");
        assert!(
            response.body["detail"].as_str().unwrap().contains(&newest.to_string()),
            "{}",
            response.body
        );
        app.get("sam", "/v1/events?after_sequence=0")
            .await
            .assert_problem(403, "forbidden");
        // Refusals change nothing: the feed reads the same afterwards.
        let (_, again) = feed_page(&app, "after_sequence=0&limit=200").await;
        assert_eq!(again, newest);
    }
}

/// PostgreSQL: an event whose transaction took its sequence first but
/// commits after a later event must not be stepped over. A thread appends
/// an event and holds its transaction open; meanwhile a spend commits
/// later events; the feed waits for the held transaction and then returns
/// both, in sequence order.
#[actix_web::test]
#[cfg_attr(
    postgres_tests_unconfigured,
    ignore = "set LEEWAY_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn a_late_commit_is_not_stepped_over() {
    let app = TestApp::spawn(Backend::Postgres);
    app.org().await;
    let problem = app.open_problem("sam", "Printer").await;
    let (_, start) = feed_page(&app, "after_sequence=0&limit=200").await;

    let (appended, appended_sequence) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let url = app.database_url.clone();
    let holder = std::thread::spawn(move || {
        let connection = PgConnection::establish(&url).unwrap();
        let mut connection = leeway::db::DbConnection::Postgres(connection);
        connection
            .transaction::<_, leeway::db::Error, _>(|connection| {
                leeway::db::audit::append(
                    connection,
                    None,
                    leeway::domain::event::EventKind::TeamUpdated,
                    leeway::db::events::Subject {
                        subject_type: "team",
                        subject_id: "01936d5e-0000-7000-8000-0000000000aa",
                        team_id: None,
                        problem_id: None,
                    },
                    &json!({"held": true}),
                    chrono::Utc::now().naive_utc(),
                )?;
                appended.send(()).unwrap();
                released.recv().unwrap();
                Ok(())
            })
            .unwrap();
    });
    appended_sequence.recv().unwrap();

    // A later event commits while the earlier one is still in flight.
    assert_eq!(app.spend("sam", &problem, "10.00").await.status, 201);

    let client = app.client.clone();
    let url = format!(
        "{}/v1/events?after_sequence={start}&limit=200",
        app.base_url
    );
    let token = app.token("fin");
    let reading =
        actix_web::rt::spawn(
            async move { client.get(url).bearer_auth(token).send().await.unwrap() },
        );
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !reading.is_finished(),
        "the feed answered while an earlier sequence was still in flight"
    );
    release.send(()).unwrap();
    holder.join().unwrap();

    let response = crate::helpers::read(reading.await.unwrap()).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let items = response.body["items"].as_array().unwrap();
    let kinds: Vec<&str> = items
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["team.updated", "spend.approved"], "{items:?}");
    assert_eq!(items[0]["data"]["held"], true);
    let page = sequences(items);
    assert!(page[0] < page[1], "{page:?}");
    assert_eq!(response.body["next_after_sequence"].as_i64(), Some(page[1]));
}
