//! Deliveries as a receiver checks them: a real delivery from the server,
//! received on loopback, is verified by the official `standardwebhooks`
//! package from PyPI (code nobody here wrote), with the secret shown at
//! registration and, after a rotation, with the old and the new secret
//! alike; a body changed on the way, or another secret, is refused. The
//! library checks `webhook-timestamp` against real time (5 minutes either
//! way), so these tests never move the server's clock.
//!
//! The interpreter is `LEEWAY_STANDARDWEBHOOKS_PYTHON` (default `python3`).
//! `.ci/run` installs the package in a virtualenv and names its
//! interpreter there; in CI (`CI` set) a missing package fails the test,
//! elsewhere the test says loudly that it checked nothing.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::configured_backend_tests;
use crate::helpers::{ADMIN, TestApp};
use crate::webhooks::{Received, Receiver, private_destinations, register};

/// Names the Python interpreter that can import `standardwebhooks`.
const PYTHON_VARIABLE: &str = "LEEWAY_STANDARDWEBHOOKS_PYTHON";

/// A secret the server never issued (the Standard Webhooks specification's
/// example), which must verify nothing.
const STRANGER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Verifies one delivery with the library. Reads `{secret, body, headers}`
/// as JSON on stdin and prints one JSON line: the verified payload's
/// `type`, or the library's refusal. Anything else (a crash, an import
/// error) exits non-zero, so it can never pass for a refusal.
const VERIFY_SCRIPT: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

case = json.load(sys.stdin)
try:
    payload = Webhook(case["secret"]).verify(case["body"].encode(), case["headers"])
except WebhookVerificationError as error:
    print(json.dumps({"verified": False, "error": str(error)}))
else:
    print(json.dumps({"verified": True, "type": payload["type"]}))
"#;

/// The interpreter that has `standardwebhooks`, when there is one; CI must
/// have it.
fn python() -> Option<String> {
    let python = std::env::var(PYTHON_VARIABLE).unwrap_or_else(|_| "python3".to_owned());
    let installed = Command::new(&python)
        .args(["-c", "import standardwebhooks.webhooks"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{python}` cannot import standardwebhooks: CI must have it (.ci/run installs it in a \
             virtualenv and sets {PYTHON_VARIABLE}); the check against the official library may \
             not be skipped there"
        );
        eprintln!(
            "SKIPPED: `{python}` cannot import standardwebhooks (pip install standardwebhooks, \
             then set {PYTHON_VARIABLE} to that interpreter): no delivery was checked against \
             the official library"
        );
        return None;
    }
    Some(python)
}

/// What the library says of `message`'s headers with `body` under
/// `secret`: the verified payload's `type`, or why it was refused.
fn verify(python: &str, secret: &str, message: &Received, body: &str) -> Result<String, String> {
    let case = json!({
        "secret": secret,
        "body": body,
        "headers": {
            "webhook-id": message.id,
            "webhook-timestamp": message.timestamp,
            "webhook-signature": message.signature,
        },
    });
    let mut child = Command::new(python)
        .args(["-c", VERIFY_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(case.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the verify script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    if answer["verified"] == true {
        Ok(answer["type"].as_str().unwrap().to_owned())
    } else {
        Err(answer["error"].as_str().unwrap().to_owned())
    }
}

configured_backend_tests! {
    private_destinations =>
    the_official_library_verifies_deliveries_and_refuses_tampering,
    after_a_rotation_the_old_and_the_new_secret_both_verify,
}

async fn the_official_library_verifies_deliveries_and_refuses_tampering(app: TestApp) {
    let Some(python) = python() else {
        return;
    };
    app.org().await;
    let hook = Receiver::start();
    let (_, secret) = register(&app, &hook, &["problem.opened", "spend.approved"]).await;
    let problem = app.open_problem("sam", "Printer").await;
    assert_eq!(app.spend("sam", &problem, "100.00").await.status, 201);
    let received = hook.wait_for(2).await;
    for (message, event_type) in received.iter().zip(["problem.opened", "spend.approved"]) {
        assert_eq!(
            verify(&python, &secret, message, &message.body),
            Ok(event_type.to_owned()),
            "{message:?}"
        );
    }

    let approved = &received[1];
    let tampered = approved.body.replacen("\"100.00\"", "\"900.00\"", 1);
    assert_ne!(tampered, approved.body, "the amount is in the body");
    let refused = verify(&python, &secret, approved, &tampered).unwrap_err();
    assert!(refused.contains("No matching signature"), "{refused}");
    let refused = verify(&python, STRANGER_SECRET, approved, &approved.body).unwrap_err();
    assert!(refused.contains("No matching signature"), "{refused}");
}

async fn after_a_rotation_the_old_and_the_new_secret_both_verify(app: TestApp) {
    let Some(python) = python() else {
        return;
    };
    app.org().await;
    let hook = Receiver::start();
    let (id, old_secret) = register(&app, &hook, &["problem.opened"]).await;
    app.open_problem("sam", "Printer").await;
    let before = hook.wait_for(1).await.remove(0);
    assert_eq!(
        verify(&python, &old_secret, &before, &before.body),
        Ok("problem.opened".to_owned())
    );

    let rotated = app
        .post(
            ADMIN,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_secret = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    let refused = verify(&python, &new_secret, &before, &before.body).unwrap_err();
    assert!(
        refused.contains("No matching signature"),
        "a delivery before the rotation carries no new signature: {refused}"
    );

    app.open_problem("kim", "Desk").await;
    let after = hook.wait_for(2).await.remove(1);
    assert_ne!(after.id, before.id);
    for secret in [&old_secret, &new_secret] {
        assert_eq!(
            verify(&python, secret, &after, &after.body),
            Ok("problem.opened".to_owned()),
            "{after:?}"
        );
        let tampered = after.body.replacen("Desk", "Desks", 1);
        assert_ne!(tampered, after.body, "the title is in the body");
        let refused = verify(&python, secret, &after, &tampered).unwrap_err();
        assert!(refused.contains("No matching signature"), "{refused}");
    }
    let refused = verify(&python, STRANGER_SECRET, &after, &after.body).unwrap_err();
    assert!(refused.contains("No matching signature"), "{refused}");
}
