//! Response headers: the security headers on every answer, errors included,
//! and CORS for the configured origins only.

use leeway::config::Config;
use reqwest::Method;
use serde_json::json;

use crate::configured_backend_tests;
use crate::helpers::{ADMIN, Response, TestApp, read};

const FORMS: &str = "https://forms.example.test";

/// Sends `method path` with extra headers, as the admin when `token`.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: bool,
    headers: &[(&str, &str)],
) -> Response {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.base_url));
    if token {
        request = request.bearer_auth(app.token(ADMIN));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    read(request.send().await.unwrap()).await
}

#[track_caller]
fn assert_security_headers(response: &Response) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(
            response.header(name),
            Some(value),
            "{name} on {} {}",
            response.status,
            response.body
        );
    }
    assert!(response.header("x-request-id").is_some());
}

fn forms_allowed(config: &mut Config) {
    config.cors_origins = vec![FORMS.to_owned()];
}

crate::backend_tests! {
    async fn every_response_carries_the_security_headers(app: TestApp) {
        let ok = send(&app, Method::GET, "/healthz", false, &[]).await;
        assert_eq!(ok.status, 200);
        assert_security_headers(&ok);
        let spec = send(&app, Method::GET, "/openapi.yaml", false, &[]).await;
        assert_security_headers(&spec);
        assert_security_headers(&send(&app, Method::GET, "/v1/me", true, &[]).await);
        let unauthenticated = send(&app, Method::GET, "/v1/me", false, &[]).await;
        unauthenticated.assert_problem(401, "unauthenticated");
        assert_security_headers(&unauthenticated);
        let missing = send(&app, Method::GET, "/nowhere", false, &[]).await;
        missing.assert_problem(404, "not_found");
        assert_security_headers(&missing);
        let method = send(&app, Method::DELETE, "/v1/teams", true, &[]).await;
        method.assert_problem(405, "method_not_allowed");
        assert_security_headers(&method);
        let invalid = app.post(ADMIN, "/v1/teams", &json!({"name": ""})).await;
        invalid.assert_problem(422, "validation_failed");
        assert_security_headers(&invalid);
        let too_deep = app.post(ADMIN, "/v1/teams", &json!({"name": "x", "n": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]})).await;
        too_deep.assert_problem(400, "json_too_deep");
        assert_security_headers(&too_deep);
        // No origin configured: no CORS header, whoever asks.
        let cross = send(&app, Method::GET, "/v1/me", true, &[("origin", FORMS)]).await;
        assert_eq!(cross.status, 200);
        assert_eq!(cross.header("access-control-allow-origin"), None);
        let preflight = send(&app, Method::OPTIONS, "/v1/teams", false, &[("origin", FORMS), ("access-control-request-method", "POST")]).await;
        assert_eq!(preflight.header("access-control-allow-origin"), None);
        assert_ne!(preflight.status / 100, 2, "{}", preflight.body);
    }
}

configured_backend_tests!(forms_allowed => configured_origins_may_call_the_api_from_a_browser);

async fn configured_origins_may_call_the_api_from_a_browser(app: TestApp) {
    let preflight_headers = [
        ("origin", FORMS),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "authorization, content-type, idempotency-key",
        ),
    ];
    let preflight = send(
        &app,
        Method::OPTIONS,
        "/v1/problems",
        false,
        &preflight_headers,
    )
    .await;
    assert_eq!(preflight.status, 204, "{}", preflight.body);
    assert_eq!(preflight.header("access-control-allow-origin"), Some(FORMS));
    assert!(
        preflight
            .header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    let allowed_headers = preflight.header("access-control-allow-headers").unwrap();
    for name in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed_headers.contains(name), "{allowed_headers}");
    }
    assert_eq!(preflight.header("access-control-max-age"), Some("600"));
    assert_eq!(preflight.header("access-control-allow-credentials"), None);
    assert_security_headers(&preflight);
    // The actual request, and an error, are readable by the form's script.
    for (token, status) in [(true, 200), (false, 401)] {
        let response = send(&app, Method::GET, "/v1/me", token, &[("origin", FORMS)]).await;
        assert_eq!(response.status, status);
        assert_eq!(response.header("access-control-allow-origin"), Some(FORMS));
        assert!(
            response
                .header("access-control-expose-headers")
                .unwrap()
                .contains("x-request-id")
        );
        assert_eq!(response.header("vary"), Some("Origin"));
    }
    // Any other origin gets no CORS header and no successful preflight.
    let evil = [
        ("origin", "https://evil.example.test"),
        ("access-control-request-method", "POST"),
    ];
    let refused = send(&app, Method::OPTIONS, "/v1/problems", false, &evil).await;
    assert_eq!(refused.header("access-control-allow-origin"), None);
    refused.assert_problem(405, "method_not_allowed");
    let other = send(&app, Method::GET, "/v1/me", true, &evil[..1]).await;
    assert_eq!(other.status, 200);
    assert_eq!(other.header("access-control-allow-origin"), None);
    assert_eq!(other.header("vary"), Some("Origin"));
}

#[test]
fn cors_origins_are_read_and_checked_at_start_up() {
    use clap::Parser;
    let parse = |origins: &str| {
        let cli = leeway::config::Cli::try_parse_from([
            "leeway",
            "--jwt-secret",
            crate::helpers::TEST_SECRET,
            "--cors-origins",
            origins,
        ])
        .unwrap();
        leeway::config::Config::resolve(&cli.settings).map(|config| config.cors_origins)
    };
    assert_eq!(
        parse("https://forms.example.test,http://localhost:3000,").unwrap(),
        ["https://forms.example.test", "http://localhost:3000"]
    );
    assert!(parse("*").is_err());
    assert!(parse("https://forms.example.test/").is_err());
}
