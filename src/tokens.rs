//! Tokens: signing (`leeway token`) and verifying JWTs with the configured
//! keys (the HS256 secret, identity-provider RS256/ES256 public keys). It
//! says only who a token names; who that is in Leeway is `auth`'s business.

use std::path::Path;

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::ApiError;

/// Clock skew tolerated when checking `exp`, `nbf` and `iat`, by default.
pub const JWT_LEEWAY_SECS_DEFAULT: u64 = 30;
/// Largest clock skew an operator may configure: more would make `exp` moot.
pub const JWT_LEEWAY_SECS_MAX: u64 = 300;
/// Longest token lifetime accepted by default (`exp - iat`, or `exp - now`
/// without `iat`): a stolen token is useful for a day at most.
pub const JWT_LIFETIME_MAX_SECS_DEFAULT: u64 = 86_400;
/// Largest key file read (PEM or JWKS), in bytes: an identity provider
/// publishes a handful of keys, never megabytes.
pub const KEY_FILE_SIZE_MAX: u64 = 256 * 1024;
/// Most keys kept from one JWKS file.
pub const JWKS_KEYS_MAX: usize = 32;
/// Length of an uncompressed P-256 public point (0x04, x, y): the only
/// elliptic curve accepted, as ES256 is defined on P-256.
const P256_POINT_LENGTH: usize = 65;

/// The claims Leeway writes into the tokens it signs.
#[derive(Debug, Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// The claims Leeway reads. `iss` and `aud` are checked by jsonwebtoken's
/// validation (which also accepts an `aud` array); the time claims are
/// typed as integers so a string `exp`, `nbf` or `iat` fails to parse and
/// the token is refused (CVE-2026-25537 was exactly such a string slipping
/// past validation).
#[derive(Debug, Deserialize)]
struct VerifiedClaims {
    // Absent `sub` and `exp` default here so that jsonwebtoken's required-claim
    // check, which runs next, names what is missing.
    #[serde(default)]
    sub: String,
    #[serde(default)]
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    #[expect(dead_code, reason = "read only so a string nbf fails to parse")]
    nbf: Option<u64>,
}

/// One public key of an identity provider, bound to the one algorithm it
/// verifies, so a token can never pick how its key is used (algorithm
/// confusion: an RS256 public key is never taken as an HS256 secret).
#[derive(Clone)]
pub struct PublicKey {
    /// The JWKS `kid`; `None` for a key from a PEM file, which verifies
    /// tokens whatever their `kid`.
    pub kid: Option<String>,
    /// RS256 or ES256.
    pub algorithm: Algorithm,
    key: DecodingKey,
}

impl PublicKey {
    /// Reads one RSA (RS256) or P-256 (ES256) public key from a PEM file.
    pub fn from_pem_file(path: &Path) -> Result<Self, String> {
        let text = read_key_file(path)?;
        Self::from_pem(&text).map_err(|error| format!("{}: {error}", path.display()))
    }

    /// Reads one RSA (RS256) or P-256 (ES256) public key in PEM.
    pub fn from_pem(text: &str) -> Result<Self, String> {
        if text.contains("PRIVATE KEY") {
            return Err(
                "this is a private key: configure the identity provider's public key".to_owned(),
            );
        }
        if let Ok(key) = DecodingKey::from_rsa_pem(text.as_bytes()) {
            return Ok(Self {
                kid: None,
                algorithm: Algorithm::RS256,
                key,
            });
        }
        let key = DecodingKey::from_ec_pem(text.as_bytes())
            .map_err(|_| "not a PEM RSA or P-256 public key".to_owned())?;
        if key.as_bytes().len() != P256_POINT_LENGTH {
            return Err("only P-256 elliptic-curve keys (ES256) are accepted".to_owned());
        }
        Ok(Self {
            kid: None,
            algorithm: Algorithm::ES256,
            key,
        })
    }

    /// Reads the RS256 and ES256 signing keys of a JWKS file. Every key
    /// needs a distinct `kid`; encryption keys and keys for other
    /// algorithms are skipped (and logged), and a file with no usable key is
    /// refused.
    pub fn from_jwks_file(path: &Path) -> Result<Vec<Self>, String> {
        let text = read_key_file(path)?;
        Self::from_jwks(&text).map_err(|error| format!("{}: {error}", path.display()))
    }

    /// Reads the RS256 and ES256 signing keys of a JWKS document.
    pub fn from_jwks(text: &str) -> Result<Vec<Self>, String> {
        let set: JwkSet =
            serde_json::from_str(text).map_err(|error| format!("not a JWKS document: {error}"))?;
        let mut keys: Vec<Self> = Vec::new();
        for jwk in &set.keys {
            let kid = jwk
                .common
                .key_id
                .clone()
                .ok_or("every key in the JWKS needs a kid")?;
            if keys
                .iter()
                .any(|key| key.kid.as_deref() == Some(kid.as_str()))
            {
                return Err(format!("the kid {kid:?} appears twice"));
            }
            let Some(algorithm) = jwk_algorithm(jwk) else {
                tracing::warn!(%kid, "JWKS key skipped: not an RS256 or ES256 signing key");
                continue;
            };
            let key =
                DecodingKey::from_jwk(jwk).map_err(|error| format!("key {kid:?}: {error}"))?;
            keys.push(Self {
                kid: Some(kid),
                algorithm,
                key,
            });
        }
        if keys.is_empty() {
            return Err("no RS256 or ES256 signing key in the JWKS".to_owned());
        }
        if keys.len() > JWKS_KEYS_MAX {
            return Err(format!("more than {JWKS_KEYS_MAX} keys in the JWKS"));
        }
        Ok(keys)
    }
}

/// The algorithm a JWK verifies, if it is one Leeway accepts.
fn jwk_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if matches!(jwk.common.public_key_use, Some(ref usage) if *usage != PublicKeyUse::Signature) {
        return None;
    }
    let (algorithm, declared) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(algorithm),
        Some(alg) if alg == declared => Some(algorithm),
        Some(_) => None,
    }
}

/// Reads a key file, refusing one larger than [`KEY_FILE_SIZE_MAX`].
fn read_key_file(path: &Path) -> Result<String, String> {
    let describe = |error: std::io::Error| format!("{}: {error}", path.display());
    let size = std::fs::metadata(path).map_err(describe)?.len();
    if size > KEY_FILE_SIZE_MAX {
        return Err(format!(
            "{}: larger than {KEY_FILE_SIZE_MAX} bytes",
            path.display()
        ));
    }
    std::fs::read_to_string(path).map_err(describe)
}

/// Seconds since the Unix epoch, by the system clock: token lifetimes are
/// judged against real time, as the identity provider that issued them is.
fn unix_now() -> Result<u64, String> {
    u64::try_from(Clock::system().now().and_utc().timestamp())
        .map_err(|_| "the system clock is before 1970".to_owned())
}

fn unauthenticated(detail: &str) -> ApiError {
    ApiError::Unauthenticated(detail.to_owned())
}

/// Signs and verifies tokens with the configured keys.
pub struct Tokens {
    encoding: EncodingKey,
    secret: DecodingKey,
    validation: Validation,
    config: JwtConfig,
}

impl Tokens {
    /// Builds the signer and verifier from configuration.
    #[must_use]
    pub fn new(config: &JwtConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = config.leeway_secs;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &config.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Self {
            encoding: EncodingKey::from_secret(&config.secret),
            secret: DecodingKey::from_secret(&config.secret),
            validation,
            config: config.clone(),
        }
    }

    /// Signs an HS256 token for `subject` valid for `ttl_secs`, which may
    /// not exceed the configured maximum lifetime.
    pub fn issue(&self, subject: &str, ttl_secs: u64) -> Result<String, String> {
        if ttl_secs > self.config.lifetime_max_secs {
            return Err(format!(
                "a token may live at most {} seconds (LEEWAY_JWT_LIFETIME_MAX_SECS)",
                self.config.lifetime_max_secs
            ));
        }
        let now = unix_now()?;
        let claims = IssuedClaims {
            sub: subject,
            iat: now,
            exp: now.saturating_add(ttl_secs),
            iss: self.config.issuer.as_deref(),
            aud: self.config.audience.as_deref(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|error| error.to_string())
    }

    /// Verifies a token and returns its subject.
    pub fn verify(&self, token: &str) -> Result<String, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("the token is not a JWT with an accepted algorithm"))?;
        let key = self.key_for(header.alg, header.kid.as_deref())?;
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let data = jsonwebtoken::decode::<VerifiedClaims>(token, key, &validation)
            .map_err(|error| unauthenticated(describe(&error)))?;
        self.check_lifetime(&data.claims)?;
        if data.claims.sub.is_empty() {
            return Err(unauthenticated("the token's subject is empty"));
        }
        Ok(data.claims.sub)
    }

    /// The key that verifies a token with this header: the HS256 secret, or
    /// the identity-provider key named by `kid` (else the kid-less PEM key)
    /// for the algorithm that key is bound to.
    fn key_for(&self, algorithm: Algorithm, kid: Option<&str>) -> Result<&DecodingKey, ApiError> {
        match algorithm {
            Algorithm::HS256 => Ok(&self.secret),
            Algorithm::RS256 | Algorithm::ES256 => {
                let by_kid = kid.and_then(|kid| {
                    self.config
                        .public_keys
                        .iter()
                        .find(|key| key.algorithm == algorithm && key.kid.as_deref() == Some(kid))
                });
                by_kid
                    .or_else(|| {
                        self.config
                            .public_keys
                            .iter()
                            .find(|key| key.algorithm == algorithm && key.kid.is_none())
                    })
                    .map(|key| &key.key)
                    .ok_or_else(|| {
                        unauthenticated("no configured key matches the token's kid and algorithm")
                    })
            }
            _ => Err(unauthenticated("the token's algorithm is not accepted")),
        }
    }

    /// Refuses tokens issued in the future or living longer than the
    /// configured maximum (`exp - iat`, or `exp - now` without `iat`), so a
    /// token minted for a year is refused even while it is fresh.
    fn check_lifetime(&self, claims: &VerifiedClaims) -> Result<(), ApiError> {
        let now = unix_now().map_err(ApiError::Internal)?;
        let start = match claims.iat {
            Some(iat) if iat > now.saturating_add(self.config.leeway_secs) => {
                return Err(unauthenticated("the token was issued in the future"));
            }
            Some(iat) => iat,
            None => now,
        };
        if claims.exp.saturating_sub(start) > self.config.lifetime_max_secs {
            return Err(unauthenticated(
                "the token lives longer than the accepted maximum lifetime",
            ));
        }
        Ok(())
    }
}

/// What a refused token is told: enough to fix it, nothing about keys.
fn describe(error: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet",
        ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
        ErrorKind::InvalidAudience => "the token's audience is not accepted",
        ErrorKind::MissingRequiredClaim(_) => {
            "the token lacks a required claim (sub, exp, and iss or aud when configured)"
        }
        ErrorKind::InvalidClaimFormat(_) | ErrorKind::Json(_) => {
            "the token's claims are malformed (sub must be a string; exp, nbf and iat numbers)"
        }
        _ => "the token is not valid",
    }
}

/// Token verification settings.
#[derive(Clone)]
pub struct JwtConfig {
    /// The HS256 secret: signs `leeway token` tokens and verifies HS256 ones.
    pub secret: Vec<u8>,
    /// Required issuer.
    pub issuer: Option<String>,
    /// Required audience.
    pub audience: Option<String>,
    /// Identity-provider keys for RS256 and ES256 tokens; empty when none.
    pub public_keys: Vec<PublicKey>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// Longest token lifetime accepted, in seconds.
    pub lifetime_max_secs: u64,
}

impl JwtConfig {
    /// HS256 with `secret` only, no issuer or audience, default leeway and lifetime.
    #[must_use]
    pub fn from_secret(secret: Vec<u8>) -> Self {
        Self {
            secret,
            issuer: None,
            audience: None,
            public_keys: Vec::new(),
            leeway_secs: JWT_LEEWAY_SECS_DEFAULT,
            lifetime_max_secs: JWT_LIFETIME_MAX_SECS_DEFAULT,
        }
    }
}
