//! Authentication: JWT verification and the authenticated-caller extractor.
//! The token says only who the caller is (`sub`); the role and reach come
//! from the person record, read on every request.

use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::config::{JWT_LEEWAY_SECS, JwtConfig};
use crate::db::{people, teams};
use crate::domain::access::{Caller, Role};
use crate::error::ApiError;

/// Longest `Authorization` header value read, in bytes.
pub const TOKEN_LENGTH_MAX: usize = 8_192;

/// The claims Leeway reads and writes.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

/// Signs and verifies tokens with the configured key.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    config: JwtConfig,
}

impl Tokens {
    /// Builds the signer and verifier from configuration.
    #[must_use]
    pub fn new(config: &JwtConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = JWT_LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &config.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Self {
            encoding: EncodingKey::from_secret(&config.secret),
            decoding: DecodingKey::from_secret(&config.secret),
            validation,
            config: config.clone(),
        }
    }

    /// Signs a token for `subject` valid for `ttl_secs`.
    pub fn issue(&self, subject: &str, ttl_secs: u64) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|error| error.to_string())?
            .as_secs();
        let claims = Claims {
            sub: subject.to_owned(),
            iat: Some(now),
            exp: now.saturating_add(ttl_secs),
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|error| error.to_string())
    }

    /// Verifies a token and returns its subject.
    pub fn verify(&self, token: &str) -> Result<String, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                let detail = match error.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
                    ErrorKind::InvalidAudience => "the token's audience is not accepted",
                    ErrorKind::MissingRequiredClaim(_) => {
                        "the token lacks a required claim (sub, exp)"
                    }
                    ErrorKind::ImmatureSignature => "the token is not valid yet",
                    _ => "the token is not valid",
                };
                ApiError::Unauthenticated(detail.to_owned())
            })?;
        if data.claims.sub.is_empty() {
            return Err(ApiError::Unauthenticated(
                "the token's subject is empty".to_owned(),
            ));
        }
        Ok(data.claims.sub)
    }
}

/// Reads the bearer token from a request.
fn bearer_token(request: &HttpRequest) -> Result<String, ApiError> {
    let missing = || ApiError::Unauthenticated("send Authorization: Bearer <token>".to_owned());
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?;
    if value.len() > TOKEN_LENGTH_MAX {
        return Err(ApiError::Unauthenticated(
            "the token is too long".to_owned(),
        ));
    }
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim().to_owned())
}

/// Loads the caller behind a verified subject: their person record and, for
/// managers, the teams they reach.
fn load_caller(
    connection: &mut crate::db::DbConnection,
    subject: &str,
) -> Result<Caller, ApiError> {
    let person = people::find_by_subject(connection, subject)?.ok_or_else(|| {
        ApiError::Unauthenticated("no person has this token's subject".to_owned())
    })?;
    let role: Role = person.role.parse().map_err(|()| {
        ApiError::Internal(format!(
            "person {} has unknown role {:?}",
            person.id, person.role
        ))
    })?;
    let (managed_team_ids, scope_team_ids) = if role == Role::Manager {
        (
            teams::managed_by(connection, &person.id)?,
            teams::scope_of_manager(connection, &person.id)?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Caller {
        person_id: person.id,
        role,
        team_id: person.team_id,
        managed_team_ids,
        scope_team_ids: scope_team_ids.into_iter().collect(),
    })
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(request);
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".to_owned()))?;
            let subject = state.tokens.verify(&token?)?;
            state
                .db
                .read(move |connection| load_caller(connection, &subject))
                .await
        })
    }
}
