//! `/v1/domains`: add, list, read, verify, change and remove custom domains. Domains are part of
//! link management: reading needs `links:read`, changing `links:write`.

use super::auth::{scope, Authorized};
use super::extract::{nullable, AppJson};
use super::tags;
use crate::domains::repo::{self, Domain};
use crate::domains::service::{self, TargetsPatch};
use crate::error::{
    AppError, AuthErrors, DomainNotFound, ErrorBody, JsonBodyErrors, Result, ScopeErrors,
};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// `/v1/domains…` (API key auth is applied by the caller).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add, list))
        .routes(routes!(get, update, remove))
        .routes(routes!(verify))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomainRequest {
    /// A DNS name with at least two labels, not one of this service's own; case and a trailing
    /// dot do not matter, internationalised names are stored in their ASCII form.
    #[schema(min_length = 1, max_length = 253, example = "go.example.com")]
    hostname: String,
}

/// Targets to change. Absent fields stay as they are; `null` clears one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDomainRequest {
    /// Where the domain's root (`/`) redirects (302): an http(s) URL like a link's destination,
    /// not this domain.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 2048)]
    root_redirect: Option<Option<String>>,
    /// Where unknown slugs redirect (302), validated likewise.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 2048)]
    not_found_redirect: Option<Option<String>>,
}

/// The caller's domains, by hostname.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainList {
    data: Vec<Domain>,
}

/// An id in a path that is not a UUID names no domain.
fn domain_id(raw: &str) -> Result<Uuid> {
    raw.parse().map_err(|_| AppError::NotFound("domain"))
}

/// Adds a domain, `pending` until its TXT record (`verification`) is found: by
/// `POST /v1/domains/{id}/verify`, or by the periodic re-check.
#[utoipa::path(
    post, path = "/v1/domains", tag = tags::DOMAINS, operation_id = "add_domain",
    security(("api_key" = ["links:write"])),
    request_body = AddDomainRequest,
    responses(
        (status = 201, description = "Added, pending", body = Domain),
        AuthErrors,
        ScopeErrors,
        JsonBodyErrors,
        (status = 409, description = "`domain_taken`: the caller already has this domain", body = ErrorBody),
        (status = 422, description = "`validation_failed`: the body breaks its schema, or the hostname is not a DNS name of at least two labels or is one of this service's own", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn add(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksWrite>,
    AppJson(input): AppJson<AddDomainRequest>,
) -> Result<(StatusCode, Json<Domain>)> {
    let domain = service::add(&state, auth.user_id, &input.hostname).await?;
    Ok((StatusCode::CREATED, Json(domain)))
}

/// Lists the caller's domains.
#[utoipa::path(
    get, path = "/v1/domains", tag = tags::DOMAINS, operation_id = "list_domains",
    security(("api_key" = ["links:read"])),
    responses(
        (status = 200, description = "Every domain of the caller", body = DomainList),
        AuthErrors,
        ScopeErrors,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksRead>,
) -> Result<Json<DomainList>> {
    let data = repo::list(&state.db, auth.user_id).await?;
    Ok(Json(DomainList { data }))
}

/// One of the caller's domains.
#[utoipa::path(
    get, path = "/v1/domains/{id}", tag = tags::DOMAINS, operation_id = "get_domain",
    security(("api_key" = ["links:read"])),
    params(("id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, description = "The domain", body = Domain),
        AuthErrors,
        ScopeErrors,
        DomainNotFound,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, domain_id = %id))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksRead>,
    Path(id): Path<String>,
) -> Result<Json<Domain>> {
    repo::find(&state.db, auth.user_id, domain_id(&id)?)
        .await?
        .map(Json)
        .ok_or(AppError::NotFound("domain"))
}

/// Looks the domain's TXT record up now and answers the outcome: `verified`, or the status it
/// keeps with `failure_reason` saying what was found (no record, another value, NXDOMAIN, no
/// answer from DNS, or verified by another account).
#[utoipa::path(
    post, path = "/v1/domains/{id}/verify", tag = tags::DOMAINS, operation_id = "verify_domain",
    security(("api_key" = ["links:write"])),
    params(("id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, description = "The domain after the check", body = Domain),
        AuthErrors,
        ScopeErrors,
        DomainNotFound,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, domain_id = %id))]
pub async fn verify(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksWrite>,
    Path(id): Path<String>,
) -> Result<Json<Domain>> {
    let domain = service::verify(&state, auth.user_id, domain_id(&id)?).await?;
    Ok(Json(domain))
}

/// Sets where the domain's root and unknown slugs go; the edge follows on its next request.
#[utoipa::path(
    patch, path = "/v1/domains/{id}", tag = tags::DOMAINS, operation_id = "update_domain",
    security(("api_key" = ["links:write"])),
    params(("id" = Uuid, Path, description = "Domain id")),
    request_body = UpdateDomainRequest,
    responses(
        (status = 200, description = "The changed domain", body = Domain),
        AuthErrors,
        ScopeErrors,
        DomainNotFound,
        JsonBodyErrors,
        (status = 422, description = "`validation_failed`: the body breaks its schema, or a target is not an absolute http(s) URL without credentials, or points at this domain, our own short domain or a verified custom domain", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, domain_id = %id))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksWrite>,
    Path(id): Path<String>,
    AppJson(input): AppJson<UpdateDomainRequest>,
) -> Result<Json<Domain>> {
    let patch = TargetsPatch {
        root_redirect: input.root_redirect,
        not_found_redirect: input.not_found_redirect,
    };
    let domain = service::update(&state, auth.user_id, domain_id(&id)?, patch).await?;
    Ok(Json(domain))
}

/// Removes the domain and every link on it; the host serves only the unavailable page from then on.
#[utoipa::path(
    delete, path = "/v1/domains/{id}", tag = tags::DOMAINS, operation_id = "remove_domain",
    security(("api_key" = ["links:write"])),
    params(("id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 204, description = "Removed, with its links"),
        AuthErrors,
        ScopeErrors,
        DomainNotFound,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, domain_id = %id))]
pub async fn remove(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    service::remove(&state, auth.user_id, domain_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
