//! Tokens from an identity provider (RS256 and ES256 with keys from a JWKS or
//! PEM file) beside Leeway's own HS256 tokens, and hostile tokens of every
//! known kind, each refused with 401 problem+json. The keys under
//! `tests/fixtures/jwt/` are test-only keys, published on purpose.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use leeway::config::Config;
use leeway::tokens::JwtConfig;
use leeway::tokens::{PublicKey, Tokens};
use serde_json::{Value, json};

use crate::configured_backend_tests;
use crate::helpers::{ADMIN, Response, TEST_SECRET, TestApp, read};

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "leeway";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims an identity provider would issue for `subject`: five minutes.
fn claims(subject: &str) -> Value {
    let now = now();
    json!({"sub": subject, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300})
}

/// `claims` signed with the private key `key` (a fixture file name) under
/// `alg`, naming `kid` in the header.
fn sign(alg: Algorithm, kid: Option<&str>, key: &str, claims: &Value) -> String {
    let pem = fixture_bytes(key);
    let key = match alg {
        Algorithm::RS256 | Algorithm::RS384 => EncodingKey::from_rsa_pem(&pem).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).unwrap(),
        other => panic!("no fixture key for {other:?}"),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// A token assembled by hand from a raw header, claims and signature.
fn forge(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.{}",
        part(header),
        part(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// The verification settings of the identity-provider test server.
fn idp_config() -> JwtConfig {
    let mut config = JwtConfig::from_secret(TEST_SECRET.as_bytes().to_vec());
    config.issuer = Some(ISSUER.to_owned());
    config.audience = Some(AUDIENCE.to_owned());
    config.public_keys = PublicKey::from_jwks_file(&fixture("jwks.json")).unwrap();
    config
}

/// Configures a test server for the identity provider.
fn idp(config: &mut Config) {
    config.jwt = idp_config();
}

async fn me(app: &TestApp, token: &str) -> Response {
    let request = app
        .client
        .get(format!("{}/v1/me", app.base_url))
        .bearer_auth(token);
    read(request.send().await.unwrap()).await
}

configured_backend_tests!(idp =>
    identity_provider_tokens_are_accepted_with_every_current_key,
    hostile_tokens_are_refused_with_401_problem_json,
);

async fn identity_provider_tokens_are_accepted_with_every_current_key(app: TestApp) {
    // Rotation: the JWKS holds the old and the new RSA key; both verify,
    // each chosen by its kid, and so does the P-256 key.
    for (alg, kid, key) in [
        (Algorithm::RS256, "rsa-1", "rsa-1.key"),
        (Algorithm::RS256, "rsa-2", "rsa-2.key"),
        (Algorithm::ES256, "ec-1", "ec-1.key"),
    ] {
        let response = me(&app, &sign(alg, Some(kid), key, &claims(ADMIN))).await;
        assert_eq!(response.status, 200, "{kid}: {}", response.body);
        assert_eq!(response.body["role"], "admin");
    }
    // An audience list naming Leeway is accepted too.
    let mut listed = claims(ADMIN);
    listed["aud"] = json!(["another-service", AUDIENCE]);
    let response = me(
        &app,
        &sign(Algorithm::RS256, Some("rsa-1"), "rsa-1.key", &listed),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    // Leeway's own HS256 tokens still work beside the identity provider's.
    assert_eq!(app.get(ADMIN, "/v1/me").await.status, 200);
}

async fn hostile_tokens_are_refused_with_401_problem_json(app: TestApp) {
    let cases = forged_and_misdirected_tokens()
        .into_iter()
        .chain(tokens_with_bad_claims());
    for (case, token) in cases {
        let response = me(&app, &token).await;
        assert_eq!(response.status, 401, "{case}: {}", response.body);
        response.assert_problem(401, "unauthenticated");
        assert_eq!(
            response.header("www-authenticate"),
            Some("Bearer"),
            "{case}"
        );
    }
}

/// RS256 tokens signed with the `rsa-1` key, with `change` applied to
/// otherwise valid claims for the admin.
fn rs256_with(change: &dyn Fn(&mut Value)) -> String {
    let mut claims = claims(ADMIN);
    change(&mut claims);
    sign(Algorithm::RS256, Some("rsa-1"), "rsa-1.key", &claims)
}

/// Tokens whose signature, algorithm or key is wrong.
fn forged_and_misdirected_tokens() -> Vec<(&'static str, String)> {
    let public_pem = fixture_bytes("rsa-1.pub.pem");
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(ADMIN),
        &EncodingKey::from_secret(&public_pem),
    )
    .unwrap();
    vec![
        (
            "alg none",
            forge(&json!({"alg": "none", "typ": "JWT"}), &claims(ADMIN), b""),
        ),
        (
            "alg none with a kid",
            forge(&json!({"alg": "none", "kid": "rsa-1"}), &claims(ADMIN), b""),
        ),
        ("HS256 signed with the RSA public key", confused),
        (
            "RS384, an algorithm not accepted",
            sign(Algorithm::RS384, Some("rsa-1"), "rsa-1.key", &claims(ADMIN)),
        ),
        (
            "ES256 naming an RSA kid",
            sign(Algorithm::ES256, Some("rsa-1"), "ec-1.key", &claims(ADMIN)),
        ),
        (
            "signed by rsa-2, claiming rsa-1",
            sign(Algorithm::RS256, Some("rsa-1"), "rsa-2.key", &claims(ADMIN)),
        ),
        (
            "unknown kid",
            sign(Algorithm::RS256, Some("rsa-9"), "rsa-1.key", &claims(ADMIN)),
        ),
        (
            "no kid, and no PEM key configured",
            sign(Algorithm::RS256, None, "rsa-1.key", &claims(ADMIN)),
        ),
        ("tampered claims", {
            let token = sign(Algorithm::RS256, Some("rsa-1"), "rsa-1.key", &claims("mia"));
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            parts[1] = URL_SAFE_NO_PAD.encode(claims(ADMIN).to_string());
            parts.join(".")
        }),
        ("not a JWT", "not-a-jwt".to_owned()),
    ]
}

/// Correctly signed tokens whose claims must be refused.
fn tokens_with_bad_claims() -> Vec<(&'static str, String)> {
    let with = rs256_with;
    let now = now();
    vec![
        (
            "expired",
            with(&|c| {
                c["iat"] = json!(now - 600);
                c["exp"] = json!(now - 120);
            }),
        ),
        ("not yet valid", with(&|c| c["nbf"] = json!(now + 600))),
        (
            "issued in the future",
            with(&|c| {
                c["iat"] = json!(now + 600);
                c["exp"] = json!(now + 900);
            }),
        ),
        (
            "wrong iss",
            with(&|c| c["iss"] = json!("https://evil.example")),
        ),
        (
            "no iss",
            with(&|c| drop(c.as_object_mut().unwrap().remove("iss"))),
        ),
        ("wrong aud", with(&|c| c["aud"] = json!("another-service"))),
        (
            "no aud",
            with(&|c| drop(c.as_object_mut().unwrap().remove("aud"))),
        ),
        (
            "no exp",
            with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))),
        ),
        // CVE-2026-25537: a string exp or nbf once skipped validation.
        ("string exp", with(&|c| c["exp"] = json!("9999999999"))),
        ("string nbf", with(&|c| c["nbf"] = json!("9999999999"))),
        ("string iat", with(&|c| c["iat"] = json!("0"))),
        (
            "no sub",
            with(&|c| drop(c.as_object_mut().unwrap().remove("sub"))),
        ),
        ("numeric sub", with(&|c| c["sub"] = json!(42))),
        ("empty sub", with(&|c| c["sub"] = json!(""))),
        ("a sub with no person", with(&|c| c["sub"] = json!("ghost"))),
        (
            "lifetime over the maximum",
            with(&|c| c["exp"] = json!(now + 2 * 86_400)),
        ),
        (
            "no iat and an exp beyond the maximum",
            with(&|c| {
                c.as_object_mut().unwrap().remove("iat");
                c["exp"] = json!(now + 2 * 86_400);
            }),
        ),
    ]
}

/// A key taken out of the JWKS no longer verifies: rotation retires keys.
#[test]
fn a_retired_key_no_longer_verifies() {
    let mut config = idp_config();
    config
        .public_keys
        .retain(|key| key.kid.as_deref() != Some("rsa-1"));
    let tokens = Tokens::new(&config);
    let old = sign(Algorithm::RS256, Some("rsa-1"), "rsa-1.key", &claims("ada"));
    let new = sign(Algorithm::RS256, Some("rsa-2"), "rsa-2.key", &claims("ada"));
    assert!(tokens.verify(&old).is_err());
    assert_eq!(tokens.verify(&new).unwrap(), "ada");
}

/// A PEM public key verifies tokens of its algorithm, with or without a kid.
#[test]
fn a_pem_public_key_verifies_its_algorithm_only() {
    for (pem, alg, key, other) in [
        (
            "rsa-2.pub.pem",
            Algorithm::RS256,
            "rsa-2.key",
            ("ec-1.key", Algorithm::ES256),
        ),
        (
            "ec-1.pub.pem",
            Algorithm::ES256,
            "ec-1.key",
            ("rsa-2.key", Algorithm::RS256),
        ),
    ] {
        let mut config = JwtConfig::from_secret(TEST_SECRET.as_bytes().to_vec());
        config.public_keys = vec![PublicKey::from_pem_file(&fixture(pem)).unwrap()];
        let tokens = Tokens::new(&config);
        assert_eq!(
            tokens
                .verify(&sign(alg, None, key, &claims("ada")))
                .unwrap(),
            "ada"
        );
        assert_eq!(
            tokens
                .verify(&sign(alg, Some("any"), key, &claims("ada")))
                .unwrap(),
            "ada"
        );
        assert!(
            tokens
                .verify(&sign(other.1, None, other.0, &claims("ada")))
                .is_err()
        );
    }
}

#[test]
fn key_files_that_cannot_verify_are_refused_at_start_up() {
    let private = PublicKey::from_pem_file(&fixture("rsa-1.key"))
        .err()
        .unwrap();
    assert!(private.contains("private key"), "{private}");
    assert!(PublicKey::from_pem("not a key").is_err());
    assert!(PublicKey::from_jwks("{\"keys\": []}").is_err());
    let symmetric = json!({"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]});
    assert!(PublicKey::from_jwks(&symmetric.to_string()).is_err());
    let mut jwks: Value = serde_json::from_slice(&fixture_bytes("jwks.json")).unwrap();
    jwks["keys"][1]["kid"] = json!("rsa-1");
    let duplicate = PublicKey::from_jwks(&jwks.to_string()).err().unwrap();
    assert!(duplicate.contains("twice"), "{duplicate}");
    jwks["keys"][1].as_object_mut().unwrap().remove("kid");
    assert!(PublicKey::from_jwks(&jwks.to_string()).is_err());
}

/// The settings reach the verifier: key files, leeway and lifetime.
#[test]
fn key_files_leeway_and_lifetime_are_read_from_the_command_line() {
    use clap::Parser;
    let jwks = fixture("jwks.json");
    let pem = fixture("ec-1.pub.pem");
    let cli = leeway::config::Cli::try_parse_from([
        "leeway".as_ref(),
        "--jwt-secret".as_ref(),
        TEST_SECRET.as_ref(),
        "--jwt-jwks-file".as_ref(),
        jwks.as_os_str(),
        "--jwt-public-key-file".as_ref(),
        pem.as_os_str(),
        "--jwt-leeway-secs".as_ref(),
        "0".as_ref(),
        "--jwt-lifetime-max-secs".as_ref(),
        "600".as_ref(),
    ])
    .unwrap();
    let config = leeway::config::Config::resolve(&cli.settings).unwrap();
    assert_eq!(config.jwt.public_keys.len(), 4);
    let tokens = Tokens::new(&config.jwt);
    let mut short = claims("ada");
    short.as_object_mut().unwrap().remove("iss");
    short.as_object_mut().unwrap().remove("aud");
    assert!(
        tokens
            .verify(&sign(Algorithm::ES256, None, "ec-1.key", &short))
            .is_ok()
    );
    let mut long = short.clone();
    long["exp"] = json!(now() + 601);
    assert!(
        tokens
            .verify(&sign(Algorithm::ES256, None, "ec-1.key", &long))
            .is_err()
    );
    // Zero leeway: a token expired a second ago is refused.
    let mut expired = short;
    expired["exp"] = json!(now() - 2);
    assert!(
        tokens
            .verify(&sign(Algorithm::ES256, None, "ec-1.key", &expired))
            .is_err()
    );
    assert!(tokens.issue("ada", 601).is_err());
    assert!(tokens.issue("ada", 600).is_ok());
    let too_lenient = leeway::config::Cli::try_parse_from(["leeway", "--jwt-leeway-secs", "3600"]);
    assert!(too_lenient.is_err());
}
