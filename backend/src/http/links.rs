//! `/v1/links`: create, list, read, change, delete, enable/disable and protect links, and draw
//! their QR codes.

use super::auth::{scope, Authorized, Principal};
use super::extract::{nullable, supported_instant, AppJson, AppQuery};
use super::tags;
use crate::error::{
    AppError, AuthErrors, ErrorBody, JsonBodyErrors, LinkNotFound, QueryErrors, Result, ScopeErrors,
};
use crate::links::qr::{self, QrOptions, Rgb};
use crate::links::repo::{self, Cursor, Link, LinkFilter, LinkSort};
use crate::links::rules::RuleInput;
use crate::links::{protection, service};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use smo1_core::link::{LinkStatus, Protection, RedirectType, Utm};
use std::borrow::Cow;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// `/v1/links…` (API key auth is applied by the caller).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get, update, delete))
        .routes(routes!(disable))
        .routes(routes!(enable))
        .routes(routes!(set_protection, clear_protection))
        .routes(routes!(qr_code))
}

/// UTM parameters of a link; an empty string is the same as leaving a field out.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UtmInput {
    #[schema(max_length = 200)]
    source: Option<String>,
    #[schema(max_length = 200)]
    medium: Option<String>,
    #[schema(max_length = 200)]
    campaign: Option<String>,
    #[schema(max_length = 200)]
    term: Option<String>,
    #[schema(max_length = 200)]
    content: Option<String>,
}

impl From<UtmInput> for Utm {
    fn from(input: UtmInput) -> Self {
        let set = |v: Option<String>| v.filter(|v| !v.is_empty());
        Self {
            source: set(input.source),
            medium: set(input.medium),
            campaign: set(input.campaign),
            term: set(input.term),
            content: set(input.content),
        }
    }
}

/// The status a link redirects with: 301, 302 (the default for new links), 307 or 308. The schema
/// of [`RedirectType`], which (de)serializes as that number.
struct RedirectStatus;

impl PartialSchema for RedirectStatus {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            // Asked of the parser itself, so the list cannot drift from what it accepts.
            .enum_values(Some(
                (300..400).filter(|code: &u16| RedirectType::try_from(*code).is_ok()),
            ))
            .description(Some("301, 302 (default), 307 or 308"))
            .into()
    }
}

impl ToSchema for RedirectStatus {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RedirectType")
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLinkRequest {
    /// http(s) URL, at most 2048 characters, no credentials, not one of our short domains.
    #[schema(
        min_length = 1,
        max_length = 2048,
        example = "https://example.com/spring-sale"
    )]
    destination: String,
    /// 3–64 of `A-Za-z0-9-_`, not a reserved word; a random uid is generated either way. Unique
    /// per domain.
    #[schema(min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9_-]+$")]
    custom_slug: Option<String>,
    /// Hostname of one of the caller's verified domains (`/v1/domains`); absent: the default
    /// domain. A link stays on its domain.
    #[schema(example = "go.example.com", max_length = 253)]
    domain: Option<String>,
    /// At most 200 characters.
    #[schema(max_length = 200)]
    title: Option<String>,
    #[serde(default)]
    utm: UtmInput,
    /// 301, 302 (default), 307 or 308.
    #[schema(value_type = Option<RedirectStatus>)]
    redirect_type: Option<RedirectType>,
    /// When the link starts answering 410; must be in the future.
    expires_at: Option<DateTime<Utc>>,
    /// Targeting rules, in order (at most 20, 16 KiB in all): the first that holds for a
    /// visitor picks the destination, else `destination` applies.
    #[serde(default)]
    #[schema(max_items = 20)]
    rules: Vec<RuleInput>,
}

/// Fields to change. Absent fields stay as they are; `null` clears `custom_slug`, `title` and
/// `expires_at`; `utm` replaces all five UTM fields; `rules` replaces the whole list (`[]`
/// removes every rule; a rule given with its `id` stays that rule).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLinkRequest {
    /// 3–64 of `A-Za-z0-9-_`, not a reserved word.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9_-]+$")]
    custom_slug: Option<Option<String>>,
    /// http(s) URL, at most 2048 characters, no credentials, not one of our short domains.
    #[schema(min_length = 1, max_length = 2048)]
    destination: Option<String>,
    /// At most 200 characters.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    title: Option<Option<String>>,
    utm: Option<UtmInput>,
    #[schema(value_type = Option<RedirectStatus>)]
    redirect_type: Option<RedirectType>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    expires_at: Option<Option<DateTime<Utc>>>,
    status: Option<LinkStatus>,
    /// At most 20 rules, 16 KiB in all.
    #[schema(max_items = 20)]
    rules: Option<Vec<RuleInput>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListLinksQuery {
    /// Page size.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    status: Option<LinkStatus>,
    /// Created at or after (RFC 3339; write `Z` or percent-encode `+`).
    created_after: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    created_before: Option<DateTime<Utc>>,
    /// Fuzzy search over custom slug, uid and title (substring or trigram word similarity); at
    /// most 100 characters once trimmed.
    #[param(max_length = 100)]
    q: Option<String>,
    /// `created` (newest first; default) or `clicks` (most clicked first, by `total_clicks`).
    sort: Option<LinkSort>,
    /// `true`: only links behind a PIN or password; `false`: only unprotected ones.
    protected: Option<bool>,
}

/// One page of links, in the requested order.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkList {
    data: Vec<Link>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// Clients set expiries in the future; an already expired link can only come from elsewhere
/// (imports, tests), which is why the service itself accepts one.
fn reject_past_expiry(expires_at: Option<DateTime<Utc>>) -> Result<()> {
    let expires_at = supported_instant("expires_at", expires_at)?;
    if expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(AppError::Validation(
            "expires_at must be in the future".into(),
        ));
    }
    Ok(())
}

/// The rules' times lie in the range every date parameter must.
fn supported_rule_instants(rules: &[RuleInput]) -> Result<()> {
    for (index, rule) in rules.iter().enumerate() {
        supported_instant(&format!("rules[{index}].starts_at"), rule.starts_at)?;
        supported_instant(&format!("rules[{index}].ends_at"), rule.ends_at)?;
    }
    Ok(())
}

/// An id in a path that is not a UUID names no link.
fn link_id(raw: &str) -> Result<Uuid> {
    raw.parse().map_err(|_| AppError::NotFound("link"))
}

/// Creates a link. Its `link:{slug}` cache entries are deleted, so a cached "no such link" from
/// before cannot hide it.
#[utoipa::path(
    post, path = "/v1/links", tag = tags::LINKS, operation_id = "create_link",
    security(("api_key" = ["links:write"])),
    request_body = CreateLinkRequest,
    responses(
        (status = 201, description = "Created", body = Link),
        AuthErrors,
        ScopeErrors,
        JsonBodyErrors,
        (status = 409, description = "`slug_taken`: the custom slug is another link's slug on the same domain", body = ErrorBody),
        (status = 422, description = "`validation_failed`: the body breaks its schema, the destination (or a rule's) is not an absolute http(s) URL without credentials or points at our own short domain or a verified custom domain, the custom slug is reserved, `expires_at` is not in the future, `domain` is not one of the caller's domains, or a rule is invalid (unknown country, device, OS or rule id, a language that is not a primary tag, no condition, `starts_at` not before `ends_at`, more than 20 rules or 16 KiB); `domain_not_verified`: `domain` is the caller's but not verified", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksWrite>,
    AppJson(input): AppJson<CreateLinkRequest>,
) -> Result<(StatusCode, Json<Link>)> {
    reject_past_expiry(input.expires_at)?;
    supported_rule_instants(&input.rules)?;
    let input = service::CreateLink {
        domain: input.domain,
        custom_slug: input.custom_slug,
        destination: input.destination,
        title: input.title,
        redirect_type: input.redirect_type.unwrap_or_default(),
        utm: input.utm.into(),
        expires_at: input.expires_at,
        rules: input.rules,
    };
    let link = service::create(&state, auth.user_id, input).await?;
    Ok((StatusCode::CREATED, Json(link)))
}

/// Lists the caller's links, newest or most clicked first, with cursor pagination, filters and
/// fuzzy search.
#[utoipa::path(
    get, path = "/v1/links", tag = tags::LINKS, operation_id = "list_links",
    security(("api_key" = ["links:read"])),
    params(ListLinksQuery),
    responses(
        (status = 200, description = "One page", body = LinkList),
        AuthErrors,
        ScopeErrors,
        QueryErrors,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksRead>,
    AppQuery(query): AppQuery<ListLinksQuery>,
) -> Result<Json<LinkList>> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(AppError::Validation("limit must be 1 to 100".into()));
    }
    let sort = query.sort.unwrap_or_default();
    let after = match query.cursor.as_deref() {
        Some(raw) => Some(
            Cursor::decode(raw, sort)
                .ok_or_else(|| AppError::Validation("invalid cursor".into()))?,
        ),
        None => None,
    };
    let search = query
        .q
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty());
    if search.as_ref().is_some_and(|q| q.chars().count() > 100) {
        return Err(AppError::Validation(
            "q must be at most 100 characters".into(),
        ));
    }
    let filter = LinkFilter {
        status: query.status,
        protected: query.protected,
        created_after: supported_instant("created_after", query.created_after)?,
        created_before: supported_instant("created_before", query.created_before)?,
        search,
        sort,
        after,
    };
    // One extra row tells whether another page follows.
    let mut data = repo::list(&state.db, auth.user_id, &filter, i64::from(limit) + 1).await?;
    let next_cursor = if data.len() > limit as usize {
        data.truncate(limit as usize);
        data.last().map(|last| Cursor::after(last, sort).encode())
    } else {
        None
    };
    Ok(Json(LinkList { data, next_cursor }))
}

/// One of the caller's links.
#[utoipa::path(
    get, path = "/v1/links/{id}", tag = tags::LINKS,
    security(("api_key" = ["links:read"])),
    params(("id" = Uuid, Path, description = "Link id")),
    responses(
        (status = 200, description = "The link", body = Link),
        AuthErrors,
        ScopeErrors,
        LinkNotFound,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, link_id = %id))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksRead>,
    Path(id): Path<String>,
) -> Result<Json<Link>> {
    repo::find(&state.db, auth.user_id, link_id(&id)?)
        .await?
        .map(Json)
        .ok_or(AppError::NotFound("link"))
}

/// Changes a link; the edge sees the change on its next request.
#[utoipa::path(
    patch, path = "/v1/links/{id}", tag = tags::LINKS,
    security(("api_key" = ["links:write"])),
    params(("id" = Uuid, Path, description = "Link id")),
    request_body = UpdateLinkRequest,
    responses(
        (status = 200, description = "The changed link", body = Link),
        AuthErrors,
        ScopeErrors,
        LinkNotFound,
        JsonBodyErrors,
        (status = 409, description = "`slug_taken`: the new custom slug is another link's slug", body = ErrorBody),
        (status = 422, description = "`validation_failed`: the body breaks its schema, the destination (or a rule's) is not an absolute http(s) URL without credentials or points at our own short domain or a verified custom domain, the custom slug is reserved, `expires_at` is not in the future, or a rule is invalid (unknown country, device, OS or rule id, a language that is not a primary tag, no condition, `starts_at` not before `ends_at`, more than 20 rules or 16 KiB)", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, link_id = %id))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksWrite>,
    Path(id): Path<String>,
    AppJson(input): AppJson<UpdateLinkRequest>,
) -> Result<Json<Link>> {
    reject_past_expiry(input.expires_at.flatten())?;
    supported_rule_instants(input.rules.as_deref().unwrap_or_default())?;
    let patch = service::LinkPatch {
        custom_slug: input.custom_slug,
        destination: input.destination,
        title: input.title,
        utm: input.utm.map(Utm::from),
        redirect_type: input.redirect_type,
        expires_at: input.expires_at,
        status: input.status,
        rules: input.rules,
    };
    let link = service::update(&state, auth.user_id, link_id(&id)?, patch).await?;
    Ok(Json(link))
}

/// Deletes a link; its slugs answer 404 at once.
#[utoipa::path(
    delete, path = "/v1/links/{id}", tag = tags::LINKS,
    security(("api_key" = ["links:write"])),
    params(("id" = Uuid, Path, description = "Link id")),
    responses(
        (status = 204, description = "Deleted"),
        AuthErrors,
        ScopeErrors,
        LinkNotFound,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, link_id = %id))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    service::delete(&state, auth.user_id, link_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disables a link: its slugs answer 410 until it is enabled again.
#[utoipa::path(
    post, path = "/v1/links/{id}/disable", tag = tags::LINKS,
    security(("api_key" = ["links:write"])),
    params(("id" = Uuid, Path, description = "Link id")),
    responses(
        (status = 200, description = "The disabled link", body = Link),
        AuthErrors,
        ScopeErrors,
        LinkNotFound,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, link_id = %id))]
pub async fn disable(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksWrite>,
    Path(id): Path<String>,
) -> Result<Json<Link>> {
    set_status(&state, &auth, &id, LinkStatus::Disabled).await
}

/// Enables a link again.
#[utoipa::path(
    post, path = "/v1/links/{id}/enable", tag = tags::LINKS,
    security(("api_key" = ["links:write"])),
    params(("id" = Uuid, Path, description = "Link id")),
    responses(
        (status = 200, description = "The enabled link", body = Link),
        AuthErrors,
        ScopeErrors,
        LinkNotFound,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, link_id = %id))]
pub async fn enable(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksWrite>,
    Path(id): Path<String>,
) -> Result<Json<Link>> {
    set_status(&state, &auth, &id, LinkStatus::Active).await
}

async fn set_status(
    state: &AppState,
    auth: &Principal,
    id: &str,
    status: LinkStatus,
) -> Result<Json<Link>> {
    let patch = service::LinkPatch {
        status: Some(status),
        ..Default::default()
    };
    let link = service::update(state, auth.user_id, link_id(id)?, patch).await?;
    Ok(Json(link))
}

/// Which kind of secret protects a link.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProtectionKind {
    Pin,
    Password,
}

/// A PIN (4–8 digits) or a password (8–128 characters). Only its argon2id hash is stored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetProtectionRequest {
    #[serde(rename = "type")]
    kind: ProtectionKind,
    /// A PIN is 4–8 ASCII digits; a password 8–128 characters.
    #[schema(example = "4821", min_length = 4, max_length = 128, format = Password)]
    secret: String,
}

/// Protects a link with a PIN or password, replacing any previous one. Visitors are asked for it
/// from their next request on; earlier unlocks stop working.
#[utoipa::path(
    put, path = "/v1/links/{id}/protection", tag = tags::LINKS,
    security(("api_key" = ["links:write"])),
    params(("id" = Uuid, Path, description = "Link id")),
    request_body = SetProtectionRequest,
    responses(
        (status = 200, description = "The protected link", body = Link),
        AuthErrors,
        ScopeErrors,
        LinkNotFound,
        JsonBodyErrors,
        (status = 422, description = "`validation_failed`: PIN not 4–8 digits, password not 8–128 characters, unknown type or field", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, link_id = %id))]
pub async fn set_protection(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksWrite>,
    Path(id): Path<String>,
    AppJson(input): AppJson<SetProtectionRequest>,
) -> Result<Json<Link>> {
    let kind = match input.kind {
        ProtectionKind::Pin => Protection::Pin,
        ProtectionKind::Password => Protection::Password,
    };
    let link = protection::set(&state, auth.user_id, link_id(&id)?, kind, input.secret).await?;
    Ok(Json(link))
}

/// Removes a link's protection; visitors are redirected again from their next request on.
#[utoipa::path(
    delete, path = "/v1/links/{id}/protection", tag = tags::LINKS,
    security(("api_key" = ["links:write"])),
    params(("id" = Uuid, Path, description = "Link id")),
    responses(
        (status = 200, description = "The link, `protection: \"none\"`", body = Link),
        AuthErrors,
        ScopeErrors,
        LinkNotFound,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, link_id = %id))]
pub async fn clear_protection(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksWrite>,
    Path(id): Path<String>,
) -> Result<Json<Link>> {
    let link = protection::clear(&state, auth.user_id, link_id(&id)?).await?;
    Ok(Json(link))
}

/// Image format of a QR code.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QrFormat {
    #[default]
    Svg,
    Png,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QrQuery {
    /// `svg` (default) or `png`.
    format: Option<QrFormat>,
    /// Side of the square image in pixels.
    #[param(minimum = 64, maximum = 2048, default = 512)]
    size: Option<u32>,
    /// Colour of the dark modules, `rrggbb` hex (a leading `#` is accepted, as `%23`).
    #[param(pattern = "^#?[0-9a-fA-F]{6}$", default = "000000")]
    fg: Option<String>,
    /// Background colour, `rrggbb` hex; needs a contrast of at least 3:1 with `fg`.
    #[param(pattern = "^#?[0-9a-fA-F]{6}$", default = "ffffff")]
    bg: Option<String>,
}

/// A PNG image: the schema of binary bodies.
struct PngImage;

impl PartialSchema for PngImage {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for PngImage {}

/// A colour parameter, or 422 naming it.
fn colour(name: &str, value: Option<&str>, default: Rgb) -> Result<Rgb> {
    value.map_or(Ok(default), |v| {
        v.parse().map_err(|_| {
            AppError::Validation(format!(
                "{name} must be a colour as rrggbb hex, e.g. 1d4ed8"
            ))
        })
    })
}

/// A QR code of the link's short URL (`<SHORT_URL_BASE>/<slug>?qr=1`, so scans count as QR
/// visits), as SVG or PNG. The image is exactly `size` pixels square with a 4-module quiet zone.
#[utoipa::path(
    get, path = "/v1/links/{id}/qr", tag = tags::LINKS,
    security(("api_key" = ["links:read"])),
    params(("id" = Uuid, Path, description = "Link id"), QrQuery),
    responses(
        (status = 200, description = "The QR code; `Content-Disposition: inline; filename=\"<slug>-qr.<svg|png>\"`",
            content((String = "image/svg+xml"), (inline(PngImage) = "image/png")),
            headers(("Content-Disposition" = String, description = "`inline; filename=\"<slug>-qr.svg\"` (or `.png`)"))),
        AuthErrors,
        ScopeErrors,
        LinkNotFound,
        QueryErrors,
        (status = 422, description = "`validation_failed`: `format`, `size`, `fg` or `bg` is outside its declared constraints (the message names it), `fg` and `bg` contrast less than 3:1, or a parameter is unknown", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, link_id = %id))]
pub async fn qr_code(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksRead>,
    Path(id): Path<String>,
    AppQuery(query): AppQuery<QrQuery>,
) -> Result<Response> {
    let size = query.size.unwrap_or(QrOptions::default().size);
    if !qr::SIZE_RANGE.contains(&size) {
        return Err(AppError::Validation(format!(
            "size must be {} to {} pixels",
            qr::SIZE_RANGE.start(),
            qr::SIZE_RANGE.end()
        )));
    }
    let foreground = colour("fg", query.fg.as_deref(), Rgb::BLACK)?;
    let background = colour("bg", query.bg.as_deref(), Rgb::WHITE)?;
    let options = QrOptions::new(size, foreground, background, 4)
        .map_err(|e| AppError::Validation(format!("fg and bg: {e}")))?;
    let link = repo::find(&state.db, auth.user_id, link_id(&id)?)
        .await?
        .ok_or(AppError::NotFound("link"))?;
    let url = qr::qr_url(&format!("{}/{}", state.config.short_url_base, link.slug));
    let format = query.format.unwrap_or_default();
    // Slugs are `A-Za-z0-9_-`: nothing to quote in the file name.
    let disposition = |ext: &str| format!("inline; filename=\"{}-qr.{ext}\"", link.slug);
    let response = match format {
        QrFormat::Svg => (
            [
                (header::CONTENT_TYPE, "image/svg+xml".to_owned()),
                (header::CONTENT_DISPOSITION, disposition("svg")),
            ],
            qr::render_svg(&url, &options)?,
        )
            .into_response(),
        QrFormat::Png => (
            [
                (header::CONTENT_TYPE, "image/png".to_owned()),
                (header::CONTENT_DISPOSITION, disposition("png")),
            ],
            qr::render_png(&url, &options)?,
        )
            .into_response(),
    };
    Ok(response)
}
