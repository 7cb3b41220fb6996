//! The browser dashboard: the single-page app built by `npm run build` in `dashboard/`, served from
//! `DASHBOARD_DIR` at `/dashboard/`. No Node.js at run time: these are static files.
//!
//! - `/dashboard` redirects to `/dashboard/` (the app routes with the History API under it).
//! - `/dashboard/assets/*` are Vite's content-hashed files: cached for a year, `immutable`. A
//!   missing one is a 404, never `index.html`: an HTML body cached for a year under a script's
//!   name would break that URL for good.
//! - Any other path is a file of the build (no-cache) or, when no such file exists, `index.html`
//!   (no-cache, so a new build is picked up at once): the app's own routes.
//! - No `index.html` in the directory: a 503 page saying the dashboard is not built and how to
//!   build it. Checked per request, so building while the origin runs is enough.
//!
//! Every answer carries a strict Content-Security-Policy (same-origin scripts, styles, images and
//! API calls only; the build has no inline script or `<style>`; uPlot and Svelte set styles
//! through the CSSOM, which `style-src` does not restrict), `nosniff`, `Referrer-Policy:
//! same-origin` and `X-Frame-Options: DENY`.

use crate::state::AppState;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower_http::services::{ServeDir, ServeFile};

/// Where the app is served.
pub const PREFIX: &str = "/dashboard";

/// Same origin only. `img-src data:` is for the build's empty favicon (`<link rel="icon"
/// href="data:,">`, which keeps the browser from asking for `/favicon.ico`). Checked in Chromium
/// on every page, charts included: nothing else is blocked (the CSV download's `blob:` link is a
/// download, not an image).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";

/// `/dashboard` and everything under it, served from `dir` (relative paths: from the working
/// directory).
pub fn router(dir: &Path) -> Router<AppState> {
    let files = Arc::new(Files::new(dir));
    if !files.index.is_file() {
        tracing::warn!(
            dir = %dir.display(),
            "the dashboard is not built: /dashboard/ answers 503 until `npm run build` in dashboard/ writes index.html there"
        );
    }
    let serve = move |request: Request| {
        let files = Arc::clone(&files);
        async move { files.serve(request).await }
    };
    Router::new()
        .route(PREFIX, get(redirect_to_slash))
        .route(&format!("{PREFIX}/"), get(serve.clone()))
        .route(&format!("{PREFIX}/{{*path}}"), get(serve))
        .layer(middleware::map_response(security_headers))
}

/// The build directory and the two ways of reading it.
struct Files {
    index: PathBuf,
    /// Files of the build; unknown paths fall back to `index.html`.
    app: ServeDir<ServeFile>,
    /// Files only: `/assets/*` never falls back.
    assets: ServeDir,
}

impl Files {
    fn new(dir: &Path) -> Self {
        let index = dir.join("index.html");
        Self {
            // Directories are not listed or redirected: they are app routes too.
            app: ServeDir::new(dir)
                .append_index_html_on_directories(false)
                .fallback(ServeFile::new(&index)),
            assets: ServeDir::new(dir).append_index_html_on_directories(false),
            index,
        }
    }

    async fn serve(&self, request: Request) -> Response {
        if !tokio::fs::try_exists(&self.index).await.unwrap_or(false) {
            return not_built();
        }
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path()
            .strip_prefix(PREFIX)
            .unwrap_or("/")
            .to_owned();
        let is_asset = path.starts_with("/assets/");
        parts.uri = match parts.uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        }
        .parse::<Uri>()
        .unwrap_or_else(|_| Uri::from_static("/"));
        let request = Request::from_parts(parts, body);
        let result = if is_asset {
            self.assets.clone().try_call(request).await
        } else {
            self.app.clone().try_call(request).await
        };
        let mut response = match result {
            Ok(response) => response.map(Body::new),
            Err(error) => {
                tracing::error!(%error, "reading the dashboard build failed");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let cache = if is_asset && response.status().is_success() {
            IMMUTABLE
        } else {
            NO_CACHE
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        response
    }
}

async fn redirect_to_slash(uri: Uri) -> Response {
    let location = match uri.query() {
        Some(query) => format!("{PREFIX}/?{query}"),
        None => format!("{PREFIX}/"),
    };
    match HeaderValue::from_str(&location) {
        Ok(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// No build in `DASHBOARD_DIR`. Plain HTML: the policy below allows no inline style.
fn not_built() -> Response {
    const PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>Dashboard not built</title></head><body><main>\
<h1>The dashboard is not built</h1>\
<p>This origin serves the dashboard from <code>DASHBOARD_DIR</code> (default \
<code>dashboard/dist</code>, relative to where the origin runs), and there is no \
<code>index.html</code> there yet.</p>\
<p>Build it with <code>./scripts/dev</code>, or by hand: <code>cd dashboard &amp;&amp; npm ci \
&amp;&amp; npm run build</code>. Then reload this page; the origin need not restart.</p>\
</main></body></html>\n";
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
        .into_response()
}

async fn security_headers(mut response: Response) -> Response {
    set_security_headers(response.headers_mut());
    response
}

fn set_security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}
