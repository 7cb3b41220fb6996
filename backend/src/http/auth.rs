//! Authentication for `/v1`: `Authorization: Bearer <api key>` (integrations) or the dashboard's
//! session cookie `smo1_session` ([`SESSION_COOKIE`]).
//!
//! The [`authenticate`] middleware looks a key's SHA-256 up in PostgreSQL on every request (so a
//! revoked key is refused at once: there is no cache to expire), or the session in Redis
//! ([`crate::sessions`]), and stores the [`Principal`] in the request; handlers state the scope
//! they need with [`Authorized`]. A bearer header wins over a cookie. A session is its owner in
//! person, so it holds every scope. Cookie-authenticated requests are CSRF-safe because
//! [`super::origin::check`] runs before this middleware.

use crate::api_keys::repo as keys;
use crate::api_keys::{secret, Scope};
use crate::error::AppError;
use crate::sessions::Session;
use crate::state::AppState;
use crate::users::SubscriptionTier;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::marker::PhantomData;
use uuid::Uuid;

/// The dashboard's session cookie: `HttpOnly; Secure; SameSite=Lax`, its value the session id.
pub const SESSION_COOKIE: &str = "smo1_session";

/// Who is calling: the credential presented and its user.
#[derive(Debug, Clone)]
pub struct Principal {
    pub credential: Credential,
    pub user_id: Uuid,
    pub scopes: Vec<Scope>,
    pub tier: SubscriptionTier,
}

/// How the caller authenticated.
#[derive(Debug, Clone)]
pub enum Credential {
    /// `Authorization: Bearer <api key>`: the key's id.
    ApiKey(Uuid),
    /// The `smo1_session` cookie: the session as stored (its id stays in the cookie).
    Session(Session),
}

impl Principal {
    /// What the `/v1` rate limit counts against: the account, for API keys (all of a user's
    /// keys share one budget, so more keys are not more requests) and, apart, for sessions (all
    /// of a user's browsers share one, so signing in again does not reset it).
    pub fn rate_limit_identifier(&self) -> String {
        match &self.credential {
            Credential::ApiKey(_) => format!("api-user:{}", self.user_id),
            Credential::Session(_) => format!("session-user:{}", self.user_id),
        }
    }
}

/// The value of the `smo1_session` cookie, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for a new session lasting `max_age_secs`.
pub fn set_session_cookie(id: &str, max_age_secs: i64) -> HeaderValue {
    HeaderValue::try_from(format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age_secs}"
    ))
    .expect("session ids are URL-safe base64")
}

/// `Set-Cookie` that makes the browser drop the session cookie.
pub fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static("smo1_session=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0")
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Whether the request's bearer token is `secret` (compared in constant time); never for an empty
/// `secret`, which means the credential is not configured.
pub fn presents_secret(headers: &axum::http::HeaderMap, secret: &str) -> bool {
    let presented = bearer_token(headers).unwrap_or_default();
    !secret.is_empty()
        && constant_time_eq::constant_time_eq(presented.as_bytes(), secret.as_bytes())
}

/// Authenticates the bearer key or else the session cookie; answers 401 `unauthorized` for a
/// missing, unknown or revoked key and for a session that has ended (then also dropping the
/// cookie), 503 `sign_in_unavailable` for a cookie while Redis is down.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, Response> {
    let principal = if let Some(presented) = bearer_token(request.headers()) {
        api_key_principal(&state, presented).await
    } else if let Some(id) = session_cookie(request.headers()) {
        match session_principal(&state, id).await {
            Err(AppError::Unauthorized) => {
                let mut response = AppError::Unauthorized.into_response();
                response
                    .headers_mut()
                    .insert(SET_COOKIE, clear_session_cookie());
                return Err(response);
            }
            other => other,
        }
    } else {
        Err(AppError::Unauthorized)
    };
    request
        .extensions_mut()
        .insert(principal.map_err(IntoResponse::into_response)?);
    Ok(next.run(request).await)
}

async fn api_key_principal(state: &AppState, presented: &str) -> Result<Principal, AppError> {
    if !presented.starts_with(secret::KEY_MARKER) {
        return Err(AppError::Unauthorized);
    }
    let owner = keys::find_live_by_hash(&state.db, &secret::hash(presented))
        .await?
        .ok_or(AppError::Unauthorized)?;
    let stale = owner
        .last_used_at
        .is_none_or(|at| chrono::Utc::now() - at > keys::LAST_USED_RESOLUTION);
    if stale {
        if let Err(e) = keys::touch(&state.db, owner.key_id).await {
            tracing::warn!(error = %e, "could not record API key use");
        }
    }
    Ok(Principal {
        credential: Credential::ApiKey(owner.key_id),
        user_id: owner.user_id,
        scopes: owner.scopes(),
        tier: owner.tier,
    })
}

/// The owner of a live session, with every scope.
async fn session_principal(state: &AppState, id: &str) -> Result<Principal, AppError> {
    let session = state
        .sessions
        .get(id)
        .await?
        .ok_or(AppError::Unauthorized)?;
    // The tier decides the rate limit; a deleted user's sessions die with it.
    let user = crate::users::repo::find(&state.db, session.user_id)
        .await?
        .ok_or(AppError::Unauthorized)?;
    Ok(Principal {
        credential: Credential::Session(session),
        user_id: user.id,
        scopes: Scope::ALL.to_vec(),
        tier: user.subscription_tier,
    })
}

/// The scopes handlers can require, as types: `Authorized<scope::LinksWrite>`.
pub mod scope {
    use super::Scope;

    pub trait Required {
        const SCOPE: Scope;
    }

    macro_rules! scopes {
        ($($name:ident),*) => {$(
            pub struct $name;
            impl Required for $name {
                const SCOPE: Scope = Scope::$name;
            }
        )*};
    }
    scopes!(LinksRead, LinksWrite, KeysRead, KeysWrite);
}

/// The caller, known to hold scope `S`; 403 `insufficient_scope` otherwise. Extracted before the
/// body, so a key without the scope learns nothing about its input.
pub struct Authorized<S> {
    pub principal: Principal,
    scope: PhantomData<S>,
}

impl<S> std::ops::Deref for Authorized<S> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<S, St> FromRequestParts<St> for Authorized<S>
where
    S: scope::Required,
    St: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, AppError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if principal.scopes.contains(&S::SCOPE) {
            Ok(Self {
                principal,
                scope: PhantomData,
            })
        } else {
            Err(AppError::InsufficientScope(S::SCOPE.as_str()))
        }
    }
}

impl<St: Send + Sync> FromRequestParts<St> for Principal {
    type Rejection = AppError;

    /// Present on every route behind [`authenticate`]; anywhere else the caller is anonymous.
    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(AppError::Unauthorized)
    }
}
