//! The public `/v1` API as one router, and its OpenAPI document at `GET /openapi.json`, generated
//! from the handlers' `#[utoipa::path]` attributes as the routes are registered, so the document
//! cannot list a route that does not exist or miss one that does.

use super::{
    achievements, analytics, api_keys, auth, domains, links, origin, rate_limit, session, tags,
    users,
};
use crate::error::{ErrorBody, OriginErrors};
use crate::links::repo::LinkSort;
use crate::state::AppState;
use axum::http::header;
use axum::middleware;
use axum::routing::get;
use axum::Router;
use links::QrFormat;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{OpenApi as OpenApiDoc, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SMO1 API",
        description = "Links, API keys, users, analytics, and the dashboard's sign-in and \
            sessions. Errors are always `{\"error\":{\"code\":…,\"message\":…}}`; unknown body \
            fields and query parameters are rejected with 422 `validation_failed`. Every \
            authenticated `/v1` response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and \
            `X-RateLimit-Reset`.\n\n\
            Authentication: `Authorization: Bearer <api key>` (scheme `api_key`), or the dashboard's \
            session cookie `smo1_session` (scheme `session`, every scope; see `/v1/auth/*`). \
            CSRF: every POST, PUT, PATCH and DELETE whose `Origin` header is not this origin (its \
            `Host`, or `PUBLIC_URL`) is refused with 403 `forbidden_origin` before authentication, \
            and so is one carrying the session cookie without an `Origin` header. Calls with a \
            bearer key and no `Origin` (servers, scripts) are unaffected."
    ),
    // Referenced by the sets of error responses and by query parameters, whose schemas
    // `utoipa-axum` does not collect from the routes.
    components(schemas(ErrorBody, LinkSort, QrFormat)),
    modifiers(&SecuritySchemes),
    tags(
        (name = tags::AUTH, description = "Dashboard sign-in by emailed link, and browser sessions"),
        (name = tags::USERS, description = "The account behind an API key"),
        (name = tags::API_KEYS, description = "Create, list and revoke API keys"),
        (name = tags::LINKS, description = "Short links"),
        (name = tags::ACHIEVEMENTS, description = "Achievements, XP and levels"),
        (name = tags::ANALYTICS, description = "Clicks per link and per account, from ClickHouse"),
        (name = tags::DOMAINS, description = "Custom domains: verified by a DNS TXT record, each serving its own links"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                auth::SESSION_COOKIE,
                "The dashboard's session (`POST /v1/auth/session`): every scope. State-changing \
                 requests must carry this origin's `Origin` header.",
            ))),
        );
    }
}

/// Every `/v1` route with its document: `(authenticated, public)` routers. The public ones
/// (asking for and redeeming a sign-in link) need no credential.
pub fn v1() -> (Router<AppState>, Router<AppState>, OpenApiDoc) {
    let (authenticated, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(users::router())
        .merge(api_keys::router())
        .merge(links::router())
        .merge(achievements::router())
        .merge(analytics::router())
        .merge(session::router())
        .merge(domains::router())
        .split_for_parts();
    let (public, public_doc) = session::public_router().split_for_parts();
    doc.merge(public_doc);
    document_sessions_and_origin_check(&mut doc);
    (authenticated, public, doc)
}

/// What every operation shares but cannot say in its own attribute: a session may stand in for
/// an API key, and state-changing operations can answer 403 `forbidden_origin`
/// ([`origin::check`]).
fn document_sessions_and_origin_check(doc: &mut OpenApiDoc) {
    let forbidden = OriginErrors::responses()
        .remove("403")
        .expect("OriginErrors describes a 403");
    let forbidden_text = match &forbidden {
        RefOr::T(response) => response.description.clone(),
        RefOr::Ref(_) => unreachable!("OriginErrors is inline"),
    };
    for item in doc.paths.paths.values_mut() {
        let operations = [
            (HttpMethod::Post, &mut item.post),
            (HttpMethod::Put, &mut item.put),
            (HttpMethod::Patch, &mut item.patch),
            (HttpMethod::Delete, &mut item.delete),
            (HttpMethod::Get, &mut item.get),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation.as_mut() else {
                continue;
            };
            add_session_alternative(operation);
            if method == HttpMethod::Get {
                continue;
            }
            match operation.responses.responses.get_mut("403") {
                Some(RefOr::T(existing)) => {
                    existing.description = format!("{}; or {forbidden_text}", existing.description);
                }
                _ => {
                    operation
                        .responses
                        .responses
                        .insert("403".into(), forbidden.clone());
                }
            }
        }
    }
}

/// An operation open to API keys is open to sessions too (which hold every scope).
fn add_session_alternative(operation: &mut Operation) {
    let Some(requirements) = operation.security.as_mut() else {
        return;
    };
    // `SecurityRequirement` keeps its scheme names private; its JSON shows them.
    let by_key = requirements.iter().any(|requirement| {
        serde_json::to_value(requirement).is_ok_and(|json| json.get("api_key").is_some())
    });
    if by_key {
        requirements.push(SecurityRequirement::new("session", Vec::<String>::new()));
    }
}

/// `/v1/*` behind the Origin check, authentication (but the public sign-in routes) and rate
/// limiting, and `/openapi.json` open to all.
pub fn router(state: AppState) -> Router<AppState> {
    let (authenticated, public, doc) = v1();
    let document = doc.to_json().expect("the OpenAPI document serializes");
    authenticated
        // Route layers: unknown paths stay 404 instead of asking for credentials.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::enforce,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .merge(public)
        // Outermost: a cross-site request is refused before any credential or body is read.
        .route_layer(middleware::from_fn_with_state(state, origin::check))
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], document) }),
        )
}
