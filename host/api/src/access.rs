//! Who is calling and what they may do: roles, API tokens, passwords and
//! signed-in browser sessions.
//!
//! A handler states the least role it needs in its signature
//! (`Auth<Operator>`), so a route cannot forget to check: the extractor
//! authenticates (401), compares roles (403), and, for a browser session,
//! wants the session's CSRF token on every state-changing request.

use std::marker::PhantomData;
use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::ApiState;

/// The name of the cookie a signed-in browser sends.
pub const SESSION_COOKIE: &str = "sluice_session";
/// The header a browser session sends its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What a caller may do; each role may do everything the one below may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything but secret values.
    Viewer,
    /// Also starts, retries, kills, backfills and skips.
    Operator,
    /// Also manages secrets, tokens, users and projects.
    Admin,
}

impl Role {
    /// The lower-case name used in the store, the CLI and the OpenAPI document.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parse a role name.
    ///
    /// # Errors
    /// A message listing the roles.
    pub fn parse(text: &str) -> Result<Role, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}: viewer, operator or admin")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone)]
pub enum Via {
    /// `Authorization: Bearer …`: the token's id.
    Token(i64),
    /// A browser's session cookie: its hash and CSRF token.
    Session {
        /// sha256 of the cookie.
        hash: String,
        /// What state-changing requests must carry.
        csrf: String,
    },
    /// Nobody: the operator let anonymous callers in with a role.
    Anonymous,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User name, `token:<name>`, or `anonymous`.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// How they signed in.
    pub via: Via,
}

/// A role a route needs, as a type (see [`Auth`]).
pub trait Need {
    /// The least role.
    const ROLE: Role;
}

/// Routes any signed-in caller may use.
pub struct Viewer;
/// Routes that change what runs.
pub struct Operator;
/// Routes that manage secrets, access and projects.
pub struct Admin;

impl Need for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl Need for Operator {
    const ROLE: Role = Role::Operator;
}
impl Need for Admin {
    const ROLE: Role = Role::Admin;
}

/// A caller with at least the role `N` needs; only the extractor makes one.
pub struct Auth<N: Need> {
    /// Who it is.
    pub caller: Caller,
    need: PhantomData<N>,
}

impl<N: Need> FromRequestParts<ApiState> for Auth<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let caller = authenticate(parts, state).await?;
        if let Via::Session { csrf, .. } = &caller.via
            && !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
        {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !same(sent.as_bytes(), csrf.as_bytes()) {
                return Err(ApiError::csrf());
            }
        }
        if caller.role < N::ROLE {
            return Err(ApiError::forbidden(format!(
                "{} has role {}; this needs {}",
                caller.name,
                caller.role,
                N::ROLE
            )));
        }
        Ok(Auth {
            caller,
            need: PhantomData,
        })
    }
}

/// Who sent the request: a bearer token, a session cookie, or (when the
/// operator allows it) nobody.
///
/// # Errors
/// 401 for missing, unknown, revoked or expired credentials.
pub async fn authenticate(parts: &Parts, state: &ApiState) -> Result<Caller, ApiError> {
    let now = now_ms();
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthenticated("Authorization: expected Bearer <token>"))?;
        let record = state
            .store()
            .token_by_hash(&digest(token), now)
            .await?
            .ok_or_else(|| ApiError::unauthenticated("the token is unknown, revoked or expired"))?;
        let role = Role::parse(&record.role).map_err(ApiError::internal)?;
        return Ok(Caller {
            name: format!("token:{}", record.name),
            role,
            via: Via::Token(record.id),
        });
    }
    if let Some(cookie) = session_cookie(parts) {
        let hash = digest(cookie);
        let (user, csrf) = state
            .store()
            .web_session(&hash, now)
            .await?
            .ok_or_else(|| ApiError::unauthenticated("the session expired; sign in again"))?;
        let role = Role::parse(&user.role).map_err(ApiError::internal)?;
        return Ok(Caller {
            name: user.name,
            role,
            via: Via::Session { hash, csrf },
        });
    }
    match state.config().anonymous {
        Some(role) => Ok(Caller {
            name: "anonymous".into(),
            role,
            via: Via::Anonymous,
        }),
        None => Err(ApiError::unauthenticated(
            "sign in, or send Authorization: Bearer <token> (sluice admin token create)",
        )),
    }
}

/// The session cookie's value, if the request has one.
pub fn session_cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// A new random secret for a token, cookie or CSRF token: 256 bits, URL-safe.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new API token (`sluice_…`); store only its [`digest`].
pub fn new_token() -> String {
    format!("sluice_{}", random_secret())
}

/// sha256 of a high-entropy secret, hex: how tokens and cookies are stored.
/// (Passwords are low-entropy and get argon2id instead.)
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Hash a password with argon2id (a PHC string). Slow on purpose: call it
/// off the async threads.
///
/// # Errors
/// When hashing fails (it does not with the default parameters).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC `hash`. Slow on purpose.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash no password matches, verified against for unknown users so a
/// sign-in takes as long whether or not the name exists.
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_secret()).unwrap_or_default())
}

/// How long to refuse sign-ins after `failures` failed ones in a row:
/// none for the first two, then 1 s doubling up to 15 minutes.
pub fn lockout_ms(failures: i64) -> i64 {
    if failures < 3 {
        return 0;
    }
    let exp = (failures - 3).min(20) as u32;
    (1000_i64 << exp).min(15 * 60 * 1000)
}

/// Compare without an early exit, so timing says nothing about a token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    sluice_server::now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!(Role::parse(" Admin "), Ok(Role::Admin));
        assert!(
            Role::parse("root")
                .unwrap_err()
                .contains("viewer, operator or admin")
        );
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horse "));
        assert!(!verify_password(decoy_hash(), ""));
        assert!(!verify_password("not a phc string", "x"));
    }

    #[test]
    fn lockout_grows_and_is_capped() {
        assert_eq!(lockout_ms(2), 0);
        assert_eq!(lockout_ms(3), 1000);
        assert_eq!(lockout_ms(5), 4000);
        assert_eq!(lockout_ms(100), 15 * 60 * 1000);
    }

    #[test]
    fn tokens_are_random_and_stored_as_digests() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("sluice_") && a.len() > 40);
        assert_eq!(digest(&a).len(), 64);
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }
}
