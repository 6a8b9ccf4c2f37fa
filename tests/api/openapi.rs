//! `openapi.yaml` and the running routes must agree, both ways.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::backend_tests;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn spec() -> Value {
    serde_yaml::from_str(include_str!("../../openapi.yaml")).unwrap()
}

#[test]
fn the_spec_names_exactly_the_routes_the_server_registers() {
    let spec = spec();
    assert_eq!(
        spec["openapi"].as_str().map(|v| v.starts_with("3.1")),
        Some(true)
    );
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                documented.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let registered: BTreeSet<(String, String)> = leeway::api::ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    let missing: Vec<_> = registered.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&registered).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not in openapi.yaml: {missing:?}; not served: {extra:?}"
    );
}

#[test]
fn every_operation_documents_its_errors_as_problem_json() {
    let spec = spec();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            assert!(
                operation["operationId"].is_string(),
                "{method} {path} has no operationId"
            );
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|status| status.starts_with('2')),
                "{method} {path} has no success response"
            );
            if path.starts_with("/v1/") {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} does not document 401"
                );
            }
        }
    }
}

backend_tests! {
    async fn the_server_publishes_its_spec(app: TestApp) {
        let response = app.client.get(format!("{}/openapi.yaml", app.base_url)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/yaml");
        assert_eq!(response.text().await.unwrap(), include_str!("../../openapi.yaml"));
        // Every registered route answers with something other than "no such route".
        for (method, path) in leeway::api::ROUTES {
            let path = path.replace("{id}", "01936d5e-0000-7000-8000-000000000000");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app.send(method.clone(), &path, None, None).await;
            assert_ne!(response.body["detail"], "no route matches this path", "{method} {path}");
            assert_ne!(response.status, 405, "{method} {path}");
        }
    }
}
