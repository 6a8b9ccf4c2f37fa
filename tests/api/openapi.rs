//! `openapi.yaml` and the running routes must agree, both ways.

use std::collections::BTreeSet;

use leeway::domain::event::EventKind;
use leeway::domain::webhook::WebhookEventType;
use leeway::error::ApiError;
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

/// One error of each kind the server can answer.
fn every_error() -> Vec<ApiError> {
    let errors = vec![
        ApiError::Unauthenticated(String::new()),
        ApiError::Forbidden(String::new()),
        ApiError::SelfReviewForbidden,
        ApiError::NotFound("thing"),
        ApiError::UnknownReference("thing_id", "thing"),
        ApiError::RouteNotFound,
        ApiError::MethodNotAllowed(String::new()),
        ApiError::MalformedJson(String::new()),
        ApiError::InvalidQuery(String::new()),
        ApiError::UnsupportedMediaType,
        ApiError::PayloadTooLarge(1),
        ApiError::JsonTooDeep(1),
        ApiError::RequestTimeout(std::time::Duration::from_secs(1)),
        ApiError::RateLimited(1),
        ApiError::Validation(Vec::new()),
        ApiError::AlreadyDecided,
        ApiError::NotVoidable(String::new()),
        ApiError::ProblemClosed,
        ApiError::Conflict(String::new()),
        ApiError::AsOfAhead(2, 1),
        ApiError::AfterSequenceAhead(2, 1),
        ApiError::LimitBelowApproved(String::new()),
        ApiError::NoPolicy,
        ApiError::IdempotencyKeyReused,
        ApiError::IdempotencyKeyInFlight,
        ApiError::Unavailable(String::new()),
        ApiError::Internal(String::new()),
    ];
    // A new variant fails to compile here until it is listed above too.
    for error in &errors {
        match error {
            ApiError::Unauthenticated(_)
            | ApiError::Forbidden(_)
            | ApiError::SelfReviewForbidden
            | ApiError::NotFound(_)
            | ApiError::UnknownReference(..)
            | ApiError::RouteNotFound
            | ApiError::MethodNotAllowed(_)
            | ApiError::MalformedJson(_)
            | ApiError::InvalidQuery(_)
            | ApiError::UnsupportedMediaType
            | ApiError::PayloadTooLarge(_)
            | ApiError::JsonTooDeep(_)
            | ApiError::RequestTimeout(_)
            | ApiError::RateLimited(_)
            | ApiError::Validation(_)
            | ApiError::AlreadyDecided
            | ApiError::NotVoidable(_)
            | ApiError::ProblemClosed
            | ApiError::Conflict(_)
            | ApiError::AsOfAhead(..)
            | ApiError::AfterSequenceAhead(..)
            | ApiError::LimitBelowApproved(_)
            | ApiError::NoPolicy
            | ApiError::IdempotencyKeyReused
            | ApiError::IdempotencyKeyInFlight
            | ApiError::Unavailable(_)
            | ApiError::Internal(_) => {}
        }
    }
    errors
}

#[test]
fn the_spec_lists_every_error_code_the_server_answers() {
    let spec = spec();
    let documented: BTreeSet<&str> = spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    let answered: BTreeSet<&str> = every_error().iter().map(ApiError::code).collect();
    let missing: Vec<_> = answered.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&answered).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not in ErrorCode: {missing:?}; never answered: {extra:?}"
    );
}

#[test]
fn the_spec_lists_exactly_the_currencies_the_server_knows() {
    let spec = spec();
    let listed = spec["components"]["schemas"]["CurrencyCode"]["enum"]
        .as_array()
        .unwrap();
    let documented: BTreeSet<&str> = listed.iter().map(|code| code.as_str().unwrap()).collect();
    // Comparing sets alone would let a code listed twice through, and client
    // generators refuse an enum with a duplicate value.
    assert_eq!(
        listed.len(),
        documented.len(),
        "CurrencyCode lists a code twice"
    );
    let known: BTreeSet<&str> = leeway::domain::currency::Currency::all()
        .map(leeway::domain::currency::Currency::code)
        .collect();
    assert_eq!(documented, known);
}

/// The values that `values` lists more than once, each named once.
fn repeated(values: &[Value]) -> Vec<Value> {
    let mut repeated: Vec<Value> = Vec::new();
    for (index, value) in values.iter().enumerate() {
        if values[..index].contains(value) && !repeated.contains(value) {
            repeated.push(value.clone());
        }
    }
    repeated
}

/// Every `enum` list in `value` that names a value more than once: its JSON
/// pointer and the repeated values.
fn duplicated_enum_values(value: &Value, pointer: &str, found: &mut Vec<(String, Vec<Value>)>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(object) => object
            .iter()
            .map(|(key, child)| (key.clone(), child))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| (index.to_string(), item))
            .collect(),
        _ => return,
    };
    for (key, child) in children {
        let child_pointer = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
        if let (Value::Object(_), "enum", Value::Array(values)) = (value, key.as_str(), child) {
            let values = repeated(values);
            if !values.is_empty() {
                found.push((child_pointer.clone(), values));
            }
        }
        duplicated_enum_values(child, &child_pointer, found);
    }
}

#[test]
fn no_enum_in_the_spec_lists_a_value_twice() {
    let mut found = Vec::new();
    duplicated_enum_values(&spec(), "#", &mut found);
    assert!(found.is_empty(), "enums listing a value twice: {found:?}");
}

/// The schema a webhook message's body `$ref`s to, resolved.
fn message_schema<'a>(spec: &'a Value, message: &Value) -> &'a Value {
    let reference = message["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap();
    spec.pointer(reference.trim_start_matches('#')).unwrap()
}

#[test]
fn the_spec_describes_exactly_the_webhook_messages_the_server_sends() {
    let spec = spec();
    let subscribable: Vec<&str> = WebhookEventType::SUBSCRIBABLE
        .iter()
        .map(|kind| kind.as_str())
        .collect();
    let sent: BTreeSet<&str> = subscribable
        .iter()
        .copied()
        .chain([WebhookEventType::WebhookTest.as_str()])
        .collect();
    let messages = spec["webhooks"].as_object().unwrap();
    let documented: BTreeSet<&str> = messages.keys().map(String::as_str).collect();
    assert_eq!(documented, sent, "the `webhooks` section");
    for (name, message) in messages {
        assert_eq!(
            message_schema(&spec, message)["properties"]["type"]["const"],
            name.as_str(),
            "the body of {name} names another type"
        );
    }
    // What an endpoint may subscribe to, in the order the server answers
    // `event_types`.
    let listed: Vec<&str> = spec["components"]["schemas"]["WebhookEventType"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kind| kind.as_str().unwrap())
        .collect();
    assert_eq!(listed, subscribable, "WebhookEventType");
    // The audit trail's kinds a message may carry in `data.event.kind`.
    let carried: BTreeSet<&str> = spec["components"]["schemas"]["WebhookEventRecord"]["properties"]
        ["kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kind| kind.as_str().unwrap())
        .collect();
    let delivered: BTreeSet<&str> = EventKind::ALL
        .into_iter()
        .filter(|kind| WebhookEventType::of_event(*kind).is_some())
        .map(EventKind::as_str)
        .collect();
    assert_eq!(carried, delivered, "WebhookEventRecord.kind");
}
