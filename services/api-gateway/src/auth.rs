//! Tokens: HS256 JWTs carrying Tapis claims, and the request extractor that turns one into
//! the authenticated [`Caller`].
//!
//! The algorithm is pinned: a token signed with anything but HS256 (including `alg: none`)
//! is refused, whatever its header says. Error messages never contain the token.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;

mod cache;
pub use cache::TokenCache;

/// Why a token was refused (or could not be made).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing token: send it in the X-Tapis-Token header or as 'Authorization: Bearer <token>'")]
    Missing,
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not accepted; tokens must be signed with HS256")]
    WrongAlgorithm,
    #[error("token header is invalid or names an unsupported algorithm; tokens must be signed with HS256")]
    BadHeader,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (nbf is in the future)")]
    NotYetValid,
    #[error("token lacks the required claim '{0}'")]
    MissingClaim(String),
    #[error("token lacks the tenant or user claims (tapis/tenant_id and tapis/username)")]
    MissingIdentity,
    #[error("cannot sign token: {0}")]
    Sign(String),
}

/// Who is calling: objects are scoped to the tenant; `admin` says the caller administers
/// that tenant (configured `admin_users`, or the admin role in the token's roles claim).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    pub tenant: String,
    pub user: String,
    pub roles: Vec<String>,
    pub admin: bool,
    /// An admin of every tenant (listed without a tenant in `admin_users`).
    pub site_admin: bool,
}

impl Caller {
    /// A caller with no roles and no admin rights (tests, internal callers).
    pub fn new(tenant: impl Into<String>, user: impl Into<String>) -> Self {
        Self { tenant: tenant.into(), user: user.into(), ..Self::default() }
    }
}

/// What [`issue_token`] signs.
#[derive(Debug, Serialize)]
struct IssuedClaims<'a> {
    #[serde(rename = "tapis/tenant_id")]
    tapis_tenant: &'a str,
    #[serde(rename = "tapis/username")]
    tapis_user: &'a str,
    sub: &'a str,
    tenant: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// The identity claims read back; `exp`/`nbf` are checked by the validation itself.
#[derive(Debug, Deserialize)]
struct IdentityClaims {
    #[serde(rename = "tapis/tenant_id", default)]
    tapis_tenant: Option<String>,
    #[serde(rename = "tapis/username", default)]
    tapis_user: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(rename = "corral/roles", default)]
    corral_roles: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    // Required by the validation, which reports its absence by name.
    #[serde(default)]
    exp: u64,
}

fn now_s() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Signs a token for `user` of `tenant`, valid from now for `ttl_s` seconds.
pub fn issue_token(secret: &str, tenant: &str, user: &str, ttl_s: u64) -> Result<String, AuthError> {
    let now = now_s();
    let claims = IssuedClaims {
        tapis_tenant: tenant,
        tapis_user: user,
        sub: user,
        tenant,
        iat: now,
        nbf: now,
        exp: now.saturating_add(ttl_s),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
        .map_err(|e| AuthError::Sign(e.to_string()))
}

/// Checks signature (HS256 only), `exp` and `nbf` (both required, with `leeway_s` of
/// clock skew) and returns the caller named by the token.
pub fn verify(secret: &str, token: &str, leeway_s: u64) -> Result<Caller, AuthError> {
    verify_until(secret, token, leeway_s).map(|(caller, _)| caller)
}

/// [`verify`], also returning the token's `exp`.
fn verify_until(secret: &str, token: &str, leeway_s: u64) -> Result<(Caller, u64), AuthError> {
    // An algorithm name the library does not know (e.g. "none") fails header parsing.
    let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
        ErrorKind::Json(_) => AuthError::BadHeader,
        _ => AuthError::Malformed,
    })?;
    if header.alg != Algorithm::HS256 {
        return Err(AuthError::WrongAlgorithm);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "nbf"]);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.leeway = leeway_s;
    let data = jsonwebtoken::decode::<IdentityClaims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
        .map_err(|e| match e.into_kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => AuthError::WrongAlgorithm,
            ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => AuthError::MissingClaim(c),
            _ => AuthError::Malformed,
        })?;
    let c = data.claims;
    let pick = |a: Option<String>, b: Option<String>| a.filter(|s| !s.is_empty()).or(b.filter(|s| !s.is_empty()));
    let tenant = pick(c.tapis_tenant, c.tenant).ok_or(AuthError::MissingIdentity)?;
    let user = pick(c.tapis_user, c.sub).ok_or(AuthError::MissingIdentity)?;
    let mut roles = c.corral_roles;
    roles.extend(c.roles);
    Ok((Caller { tenant, user, roles, admin: false, site_admin: false }, c.exp))
}

/// The caller named by `token`, answered from `cache` for a token verified before and not
/// expired yet; otherwise verified with [`authenticate_until`] and remembered.
pub fn authenticate_cached(cfg: &corral_config::Config, cache: &TokenCache, token: &str) -> Result<Caller, AuthError> {
    let (now, leeway) = (now_s(), cfg.auth.leeway_s);
    if let Some(caller) = cache.get(token, now, leeway) {
        return Ok(caller);
    }
    let (caller, exp) = authenticate_until(cfg, token)?;
    cache.put(token, &caller, exp, now, leeway);
    Ok(caller)
}

/// Verifies `token` with the configured key and works out whether the caller is an admin
/// of their tenant; also returns the token's `exp`.
fn authenticate_until(cfg: &corral_config::Config, token: &str) -> Result<(Caller, u64), AuthError> {
    let (mut caller, exp) = verify_until(&cfg.auth.jwt_secret, token, cfg.auth.leeway_s)?;
    let role = cfg.auth.admin_role.trim();
    let admins = cfg.admin_users();
    caller.site_admin = admins.is_global(&caller.user);
    caller.admin =
        admins.contains(&caller.tenant, &caller.user) || (!role.is_empty() && caller.roles.iter().any(|r| r == role));
    Ok((caller, exp))
}

/// The token from `X-Tapis-Token`, or else from `Authorization: Bearer`.
pub fn token_from_headers(headers: &HeaderMap) -> Option<&str> {
    if let Some(t) = headers.get("x-tapis-token").and_then(|v| v.to_str().ok()) {
        let t = t.trim();
        if !t.is_empty() {
            return Some(t);
        }
    }
    let auth = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = auth.split_once(' ')?;
    let rest = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty()).then_some(rest)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token =
            token_from_headers(&parts.headers).ok_or_else(|| ApiError::unauthorized(AuthError::Missing.to_string()))?;
        let caller = authenticate_cached(state.config(), state.tokens(), token)
            .map_err(|e| ApiError::unauthorized(e.to_string()))?;
        let span = tracing::Span::current();
        span.record("tenant", caller.tenant.as_str());
        span.record("user", caller.user.as_str());
        Ok(caller)
    }
}

#[cfg(test)]
mod tests;
