//! The public `/v1` API as one router, and its OpenAPI document at `GET /openapi.json`, generated
//! from the handlers' `#[utoipa::path]` attributes as the routes are registered, so the document
//! cannot list a route that does not exist or miss one that does.

use super::{achievements, analytics, api_keys, auth, links, rate_limit, tags, users};
use crate::error::ErrorBody;
use crate::links::repo::LinkSort;
use links::QrFormat;
use crate::state::AppState;
use axum::http::header;
use axum::middleware;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SMO1 API",
        description = "Links, API keys, users and analytics. Errors are always \
            `{\"error\":{\"code\":…,\"message\":…}}`; unknown body fields and query parameters \
            are rejected with 422 `validation_failed`. Every `/v1` response carries \
            `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`."
    ),
    // Referenced by the sets of error responses and by query parameters, whose schemas
    // `utoipa-axum` does not collect from the routes.
    components(schemas(ErrorBody, LinkSort, QrFormat)),
    modifiers(&ApiKeyAuth),
    tags(
        (name = tags::USERS, description = "The account behind an API key"),
        (name = tags::API_KEYS, description = "Create, list and revoke API keys"),
        (name = tags::LINKS, description = "Short links"),
        (name = tags::ACHIEVEMENTS, description = "Achievements, XP and levels"),
        (name = tags::ANALYTICS, description = "Clicks per link and per account, from ClickHouse"),
    )
)]
struct ApiDoc;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "api_key",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// Every `/v1` route with its document.
pub fn v1() -> (Router<AppState>, OpenApiDoc) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(users::router())
        .merge(api_keys::router())
        .merge(links::router())
        .merge(achievements::router())
        .merge(analytics::router())
        .split_for_parts()
}

/// `/v1/*` behind API key authentication and rate limiting, and `/openapi.json` open to all.
pub fn router(state: AppState) -> Router<AppState> {
    let (v1, doc) = v1();
    let document = doc.to_json().expect("the OpenAPI document serializes");
    v1
        // Route layers: unknown paths stay 404 instead of asking for credentials.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::enforce,
        ))
        .route_layer(middleware::from_fn_with_state(state, auth::authenticate))
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], document) }),
        )
}
