//! HTTP handlers for API keys.

use super::auth::{scope, Authorized};
use super::extract::AppJson;
use super::tags;
use crate::api_keys::repo::{self, ApiKey, Scope};
use crate::api_keys::secret;
use crate::error::{AppError, AuthErrors, ErrorBody, JsonBodyErrors, Result, ScopeErrors};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// `POST/GET /v1/api-keys`, `DELETE /v1/api-keys/{id}`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for: 1–100 characters once trimmed, not only whitespace.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    name: String,
    /// Defaults to `["links:read", "links:write"]`. A key can only grant scopes it has itself.
    #[serde(default)]
    #[schema(min_items = 1)]
    scopes: Option<Vec<Scope>>,
}

/// A new key. `key` is shown this once and cannot be retrieved again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    api_key: ApiKey,
    key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    data: Vec<ApiKey>,
}

/// Creates an API key for the caller's user, up to the most their tier allows. All of a user's
/// keys share one rate limit.
#[utoipa::path(
    post, path = "/v1/api-keys", tag = tags::API_KEYS, operation_id = "create_api_key",
    security(("api_key" = ["keys:write"])),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created; the secret is in `key`", body = CreatedApiKey),
        AuthErrors,
        JsonBodyErrors,
        (status = 403, description = "`insufficient_scope`: needs `keys:write`, or asks for a scope the caller lacks", body = ErrorBody),
        (status = 409, description = "`api_key_limit_reached`: the account holds the most unrevoked keys its tier allows (free 5, pro 25, business 100); revoke one first", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authorized<scope::KeysWrite>,
    AppJson(input): AppJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>)> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::Validation(
            "name must be 1 to 100 characters".into(),
        ));
    }
    let scopes = input
        .scopes
        .unwrap_or_else(|| vec![Scope::LinksRead, Scope::LinksWrite]);
    if scopes.is_empty() {
        return Err(AppError::Validation("scopes must not be empty".into()));
    }
    // A key cannot mint a key stronger than itself.
    if let Some(missing) = scopes.iter().find(|s| !auth.scopes.contains(s)) {
        return Err(AppError::InsufficientScope(missing.as_str()));
    }
    let generated = secret::generate();
    let max = auth.tier.max_api_keys();
    let api_key = repo::insert_bounded(
        &state.db,
        max,
        auth.user_id,
        name,
        &generated.prefix,
        &generated.hash,
        &scopes,
    )
    .await?
    .ok_or(AppError::ApiKeyLimit { max })?;
    metrics::counter!(crate::metrics::API_KEYS_CREATED).increment(1);
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            api_key,
            key: generated.secret,
        }),
    ))
}

/// Lists the caller's user's API keys, revoked ones included.
#[utoipa::path(
    get, path = "/v1/api-keys", tag = tags::API_KEYS, operation_id = "list_api_keys",
    security(("api_key" = ["keys:read"])),
    responses(
        (status = 200, description = "Newest first", body = ApiKeyList),
        AuthErrors,
        ScopeErrors,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<scope::KeysRead>,
) -> Result<Json<ApiKeyList>> {
    let data = repo::list(&state.db, auth.user_id).await?;
    Ok(Json(ApiKeyList { data }))
}

/// Revokes an API key at once: the next request with it is refused.
#[utoipa::path(
    delete, path = "/v1/api-keys/{id}", tag = tags::API_KEYS,
    security(("api_key" = ["keys:write"])),
    params(("id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 204, description = "Revoked (revoking again is a no-op)"),
        AuthErrors,
        ScopeErrors,
        (status = 404, description = "`not_found`: no such key of this user", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, key_id = %id))]
pub async fn revoke(
    State(state): State<AppState>,
    auth: Authorized<scope::KeysWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound("API key"))?;
    if repo::revoke(&state.db, auth.user_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound("API key"))
    }
}
