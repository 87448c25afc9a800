//! Who is calling: signed tokens (docs/PROTOCOL.md, "Authentication").
//!
//! With a secret configured (`DUET_AUTH_SECRET`), every route but the public ones needs a JWT
//! signed with HS256 under that secret, so that a team's own backend mints tokens with any JWT
//! library and Duet keeps no accounts. Its claims: `sub` (the user), `name` (optional),
//! `room` (a room id or `*`), `role` (`viewer`, `editor`, `owner`), `exp`, and optionally
//! `nbf` and `iat`; clocks may differ by [`LEEWAY_SECS`]. HTTP requests carry it as
//! `Authorization: Bearer <token>`; WebSocket upgrades (a browser cannot set headers there)
//! may carry it in the `token` query parameter instead. No token, or one that is forged,
//! expired or malformed: 401 `unauthorized`. What a valid token allows is the domain's
//! [`Grant`]; handlers check it through [`Caller`] (403 `forbidden`).
//!
//! Without a secret, every caller may do everything (the prototype's open rooms), but mint
//! tokens.
//!
//! Tokens never reach the logs: the request span names the path only, and no message here
//! repeats what a client sent.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use duet_domain::RoomId;
use duet_domain::access::{Grant, Role, Rooms};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The shortest secret accepted: HS256 is only as strong as its key, and RFC 7518 asks for a
/// key at least as long as the hash.
pub const MIN_SECRET_BYTES: usize = 32;
/// How far the server's clock and a token's issuer's may differ.
pub const LEEWAY_SECS: u64 = 60;
/// The longest `sub` accepted, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 256;

/// The secret tokens are signed with. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthSecret(Vec<u8>);

impl std::fmt::Debug for AuthSecret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("AuthSecret(***)")
    }
}

/// A secret shorter than [`MIN_SECRET_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the secret is {length} bytes long; it must be at least {MIN_SECRET_BYTES}")]
pub struct SecretTooShort {
    pub length: usize,
}

impl AuthSecret {
    /// A secret, if it is long enough.
    ///
    /// # Errors
    /// [`SecretTooShort`] below [`MIN_SECRET_BYTES`].
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, SecretTooShort> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SecretTooShort {
                length: secret.len(),
            });
        }
        Ok(Self(secret))
    }
}

/// The claims of a Duet token, as a JWT carries them.
#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    room: String,
    role: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
}

/// Checks and mints tokens under one secret.
#[derive(Clone)]
pub struct Authority {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Authority(<secret hidden>)")
    }
}

/// Why a token was not accepted (answered 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a token is required: send Authorization: Bearer <token>")]
    Missing,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token is not a Duet token: {0}")]
    Malformed(String),
}

/// Why a token could not be encoded.
pub type EncodingError = jsonwebtoken::errors::Error;

/// Seconds since the Unix epoch, now.
#[must_use]
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl Authority {
    #[must_use]
    pub fn new(secret: &AuthSecret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        // The secret is Duet's alone, so an audience would say nothing more; a team's token
        // that names one is still accepted.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(&secret.0),
            decoding: DecodingKey::from_secret(&secret.0),
            validation,
        }
    }

    /// What `token` grants, if it is a valid Duet token signed with this secret.
    ///
    /// # Errors
    /// [`TokenError`] saying why not.
    pub fn verify(&self, token: &str) -> Result<Grant, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAlgorithm => {
                    TokenError::Malformed("it must be signed with HS256".into())
                }
                ErrorKind::MissingRequiredClaim(claim) => {
                    TokenError::Malformed(format!("the claim {claim} is missing"))
                }
                // serde's message names the claim and what was wrong (quoting a number or a
                // short value it found); it goes back to the caller in the 401, never to logs.
                ErrorKind::Json(cause) => TokenError::Malformed(cause.to_string()),
                _ => TokenError::Malformed("it cannot be read as a JWT".into()),
            })?
            .claims;
        if claims.sub.is_empty() || claims.sub.len() > MAX_SUBJECT_BYTES {
            return Err(TokenError::Malformed(format!(
                "sub must be 1 to {MAX_SUBJECT_BYTES} bytes long"
            )));
        }
        let rooms = Rooms::parse(&claims.room)
            .map_err(|_| TokenError::Malformed("room must be a room id or \"*\"".into()))?;
        let role = claims
            .role
            .parse::<Role>()
            .map_err(|_| TokenError::Malformed("role must be viewer, editor or owner".into()))?;
        Ok(Grant {
            subject: claims.sub,
            name: claims
                .name
                .map(|name| name.chars().take(duet_live::MAX_NAME).collect()),
            rooms,
            role,
            expires_at: claims.exp,
        })
    }

    /// A token for `grant`, issued at `issued_at` (seconds since the Unix epoch).
    ///
    /// # Errors
    /// When the claims cannot be encoded (they always can).
    pub fn mint(&self, grant: &Grant, issued_at: u64) -> Result<String, EncodingError> {
        let claims = Claims {
            sub: grant.subject.clone(),
            name: grant.name.clone(),
            room: grant.rooms.to_string(),
            role: grant.role.as_str().to_owned(),
            exp: grant.expires_at,
            nbf: None,
            iat: Some(issued_at),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }
}

/// Who is calling, as a handler sees it: put on each request of the protected routes by
/// [`authenticate`].
#[derive(Clone, Debug)]
pub enum Caller {
    /// Authentication is off: anyone may do anything (but mint tokens).
    Anyone,
    /// The holder of a valid token.
    Bearer(Grant),
}

impl Caller {
    /// The role the caller has in `room`, if any.
    #[must_use]
    pub fn role_in(&self, room: RoomId) -> Option<Role> {
        match self {
            Self::Anyone => Some(Role::Owner),
            Self::Bearer(grant) => grant.role_in(room),
        }
    }

    /// Refuses a caller without at least `role` in `room` (403 `forbidden`).
    ///
    /// # Errors
    /// [`ApiError`] 403 `forbidden`.
    pub fn require(&self, room: RoomId, role: Role) -> Result<Role, ApiError> {
        match self.role_in(room) {
            Some(held) if held >= role => Ok(held),
            Some(held) => Err(forbidden(format!(
                "this token is a {held}'s in this room; this needs {} or more",
                article(role)
            ))),
            None => Err(forbidden("this token is for another room".into())),
        }
    }

    /// Refuses a caller that may not create rooms (an owner of `*` may).
    ///
    /// # Errors
    /// [`ApiError`] 403 `forbidden`.
    pub fn require_room_creation(&self) -> Result<(), ApiError> {
        match self {
            Self::Anyone => Ok(()),
            Self::Bearer(grant) if grant.may_create_rooms() => Ok(()),
            Self::Bearer(_) => Err(forbidden(
                "only a token with room \"*\" and role owner may create rooms".into(),
            )),
        }
    }

    /// The user, when authentication is on.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        match self {
            Self::Anyone => None,
            Self::Bearer(grant) => Some(&grant.subject),
        }
    }

    /// The display name the token gives, if any.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Anyone => None,
            Self::Bearer(grant) => grant.name.as_deref(),
        }
    }
}

fn article(role: Role) -> String {
    match role {
        Role::Editor | Role::Owner => format!("an {role}"),
        Role::Viewer => format!("a {role}"),
    }
}

/// 403 `forbidden`.
pub fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// In front of every protected route: proves the caller's token, answering 401 when it
/// cannot, and hands the handler a [`Caller`].
pub async fn authenticate(
    State(authority): State<Option<Arc<Authority>>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match &authority {
        None => Caller::Anyone,
        Some(authority) => match token(&request).map(|token| authority.verify(token)) {
            Some(Ok(grant)) => Caller::Bearer(grant),
            Some(Err(error)) => return unauthorized(&error),
            None => return unauthorized(&TokenError::Missing),
        },
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The token a request carries: its `Authorization: Bearer` header, or for a WebSocket
/// upgrade, its `token` query parameter.
fn token(request: &Request) -> Option<&str> {
    if let Some(header) = request.headers().get(AUTHORIZATION) {
        let value = header.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|token| !token.is_empty());
    }
    if !request.uri().path().starts_with("/ws/") {
        return None;
    }
    // A token is three base64url segments and dots, so it needs no percent-decoding.
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|token| !token.is_empty())
}

/// 401 `unauthorized`, with the challenge RFC 6750 asks for.
fn unauthorized(error: &TokenError) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", error.to_string()).into_response();
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority() -> Authority {
        Authority::new(&AuthSecret::new([7; 32]).expect("long enough"))
    }

    fn sign(claims: &serde_json::Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret),
        )
        .expect("encodes")
    }

    fn claims(room: &str, role: &str, exp: u64) -> serde_json::Value {
        serde_json::json!({"sub": "ada", "name": "Ada", "room": room, "role": role, "exp": exp})
    }

    #[test]
    fn a_token_signed_with_the_secret_grants_its_claims() {
        let room = RoomId::generate();
        let later = now_secs() + 600;
        let grant = authority()
            .verify(&sign(&claims(&room.to_string(), "editor", later), &[7; 32]))
            .expect("valid");
        assert_eq!(
            grant,
            Grant {
                subject: "ada".into(),
                name: Some("Ada".into()),
                rooms: Rooms::One(room),
                role: Role::Editor,
                expires_at: later,
            }
        );
        // What it mints reads back the same.
        let minted = authority().mint(&grant, now_secs()).expect("mints");
        assert_eq!(authority().verify(&minted), Ok(grant));
    }

    #[test]
    fn forged_expired_and_malformed_tokens_are_refused() {
        let now = now_secs();
        let authority = authority();
        let good = claims("*", "owner", now + 600);
        assert_eq!(
            authority.verify(&sign(&good, &[8; 32])),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            authority.verify(&sign(
                &claims("*", "owner", now - 61 - LEEWAY_SECS),
                &[7; 32]
            )),
            Err(TokenError::Expired)
        );
        // Within the leeway, a token just expired still passes.
        assert!(
            authority
                .verify(&sign(&claims("*", "owner", now - 5), &[7; 32]))
                .is_ok()
        );
        let mut early = good.clone();
        early["nbf"] = (now + 3_600).into();
        assert_eq!(
            authority.verify(&sign(&early, &[7; 32])),
            Err(TokenError::NotYetValid)
        );
        for (field, value) in [
            ("role", serde_json::json!("admin")),
            ("room", serde_json::json!("lobby")),
            ("sub", serde_json::json!("")),
            ("sub", serde_json::json!("x".repeat(MAX_SUBJECT_BYTES + 1))),
            ("exp", serde_json::json!("tomorrow")),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            assert!(
                matches!(
                    authority.verify(&sign(&bad, &[7; 32])),
                    Err(TokenError::Malformed(_))
                ),
                "{field}"
            );
        }
        for missing in ["sub", "room", "role", "exp"] {
            let mut bad = good.clone();
            bad.as_object_mut().expect("an object").remove(missing);
            assert!(
                matches!(
                    authority.verify(&sign(&bad, &[7; 32])),
                    Err(TokenError::Malformed(_))
                ),
                "{missing}"
            );
        }
        // Another algorithm, or none at all, is refused whatever it claims.
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &good,
            &EncodingKey::from_secret(&[7; 32]),
        )
        .expect("encodes");
        assert!(authority.verify(&hs512).is_err());
        let unsigned = format!(
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
            sign(&good, &[7; 32]).split('.').nth(1).expect("a payload")
        );
        assert!(authority.verify(&unsigned).is_err());
        assert!(authority.verify("not a token").is_err());
    }

    #[test]
    fn short_secrets_are_refused_and_secrets_never_shown() {
        assert_eq!(
            AuthSecret::new(vec![1; 31]),
            Err(SecretTooShort { length: 31 })
        );
        let secret = AuthSecret::new("a very secret secret of 32 bytes!").expect("long enough");
        assert!(!format!("{secret:?}").contains("secret of"));
        assert!(!format!("{:?}", Authority::new(&secret)).contains("secret of"));
    }

    #[test]
    fn a_caller_is_held_to_its_role_and_room() {
        let room = RoomId::generate();
        let viewer = Caller::Bearer(Grant {
            subject: "v".into(),
            name: None,
            rooms: Rooms::One(room),
            role: Role::Viewer,
            expires_at: 0,
        });
        assert_eq!(viewer.require(room, Role::Viewer), Ok(Role::Viewer));
        assert!(viewer.require(room, Role::Editor).is_err());
        assert!(viewer.require(RoomId::generate(), Role::Viewer).is_err());
        assert!(viewer.require_room_creation().is_err());
        assert_eq!(Caller::Anyone.require(room, Role::Owner), Ok(Role::Owner));
        assert!(Caller::Anyone.require_room_creation().is_ok());
    }
}
