//! API key authentication for `/v1`: `Authorization: Bearer <api key>`.
//!
//! The [`authenticate`] middleware looks the key's SHA-256 up in PostgreSQL on every request (so a
//! revoked key is refused at once: there is no cache to expire) and stores the [`Principal`] in
//! the request; handlers state the scope they need with [`Authorized`].

use crate::api_keys::repo as keys;
use crate::api_keys::{secret, Scope};
use crate::error::AppError;
use crate::state::AppState;
use crate::users::SubscriptionTier;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use std::marker::PhantomData;
use uuid::Uuid;

/// Who is calling: the API key and its user.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: Uuid,
    pub user_id: Uuid,
    pub scopes: Vec<Scope>,
    pub tier: SubscriptionTier,
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Authenticates the bearer key; answers 401 `unauthorized` for a missing, unknown or revoked key.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let presented = bearer_token(request.headers())
        .filter(|key| key.starts_with(secret::KEY_MARKER))
        .ok_or(AppError::Unauthorized)?;
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
    request.extensions_mut().insert(Principal {
        key_id: owner.key_id,
        user_id: owner.user_id,
        scopes: owner.scopes(),
        tier: owner.tier,
    });
    Ok(next.run(request).await)
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
