//! The origin serving the dashboard's build at `/dashboard/`: the app's routes fall back to
//! `index.html`, hashed assets are cached for good and `index.html` never, every answer carries
//! the security headers, and a missing build gets a page that says how to build it.

mod common;

use common::TestApp;
use reqwest::StatusCode;
use smo1_origin::http::dashboard::CONTENT_SECURITY_POLICY;
use std::path::{Path, PathBuf};

const INDEX: &str = "<!doctype html><title>SMO1 dashboard</title><div id=\"app\"></div>";
const SCRIPT: &str = "console.log('dashboard')";

/// A dist directory like Vite's, removed on drop.
struct Dist(PathBuf);

impl Dist {
    fn built() -> Self {
        let dist = Self::empty();
        std::fs::create_dir_all(dist.0.join("assets")).expect("assets dir");
        std::fs::write(dist.0.join("index.html"), INDEX).expect("index.html");
        std::fs::write(dist.0.join("assets/index-AbC123.js"), SCRIPT).expect("script");
        std::fs::write(dist.0.join("robots.txt"), "User-agent: *\nDisallow: /\n").expect("robots");
        dist
    }

    fn empty() -> Self {
        let path = std::env::temp_dir().join(format!("smo1-dist-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).expect("dist dir");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dist {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn serving(dist: &Dist) -> TestApp {
    let dir = dist.path().to_owned();
    TestApp::start_with(move |c| c.dashboard_dir = dir).await
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("ascii header")
}

fn assert_security_headers(response: &reqwest::Response) {
    assert_eq!(
        header(response, "content-security-policy"),
        CONTENT_SECURITY_POLICY
    );
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert_eq!(header(response, "referrer-policy"), "same-origin");
    assert_eq!(header(response, "x-frame-options"), "DENY");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_and_its_routes_answer_index_html_uncached() {
    let dist = Dist::built();
    let app = serving(&dist).await;

    for path in [
        "/dashboard/",
        "/dashboard/links",
        "/dashboard/links/0b0d3c0e-7a53-4f6e-9a55-0d5b2f1f0a11/analytics",
        "/dashboard/sign-in/confirm?token=abc",
        "/dashboard/assets", // a directory of the build is not listed: an app route
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, "cache-control"), "no-cache", "{path}");
        assert_eq!(
            header(&response, "content-type"),
            "text/html",
            "{path} is the app"
        );
        assert_security_headers(&response);
        assert_eq!(response.text().await.unwrap(), INDEX, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_cache_means_revalidated_not_downloaded_again() {
    let dist = Dist::built();
    let app = serving(&dist).await;
    let first = app.get("/dashboard/links").await;
    let last_modified = header(&first, "last-modified").to_owned();

    let again = app
        .http
        .get(app.url("/dashboard/links"))
        .header("if-modified-since", last_modified)
        .send()
        .await
        .expect("request");

    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&again, "cache-control"), "no-cache");
    assert_security_headers(&again);
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_without_a_slash_redirects_to_it() {
    let dist = Dist::built();
    let app = serving(&dist).await;

    let response = app.get("/dashboard").await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&response, "location"), "/dashboard/");
    assert_security_headers(&response);

    let response = app.get("/dashboard?from=mail").await;
    assert_eq!(header(&response, "location"), "/dashboard/?from=mail");
}

#[tokio::test(flavor = "multi_thread")]
async fn hashed_assets_are_immutable_and_a_missing_one_is_not_the_app() {
    let dist = Dist::built();
    let app = serving(&dist).await;

    let response = app.get("/dashboard/assets/index-AbC123.js").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&response, "content-type"), "text/javascript");
    assert_security_headers(&response);
    assert_eq!(response.text().await.unwrap(), SCRIPT);

    // An HTML page cached for a year under a script's name would break that URL for good.
    let response = app.get("/dashboard/assets/index-Gone99.js").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&response, "cache-control"), "no-cache");
    assert_security_headers(&response);

    // Other files of the build are served as they are, revalidated every time.
    let response = app.get("/dashboard/robots.txt").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "cache-control"), "no-cache");
    assert_eq!(
        response.text().await.unwrap(),
        "User-agent: *\nDisallow: /\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_out_of_the_build_directory_reach_nothing_there() {
    let dist = Dist::built();
    std::fs::write(dist.path().with_extension("secret"), "outside").expect("file beside");
    let app = serving(&dist).await;
    let beside = format!(
        "..%2f{}",
        dist.path()
            .with_extension("secret")
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
    );

    let response = app.get(&format!("/dashboard/{beside}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        INDEX,
        "the app, not the file"
    );
    let response = app.get(&format!("/dashboard/assets/..%2f{beside}")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let _ = std::fs::remove_file(dist.path().with_extension("secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_build_says_how_to_build_it() {
    let dist = Dist::empty();
    let app = serving(&dist).await;

    for path in ["/dashboard/", "/dashboard/links"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(header(&response, "cache-control"), "no-store");
        assert_eq!(
            header(&response, "content-type"),
            "text/html; charset=utf-8"
        );
        assert_security_headers(&response);
        let page = response.text().await.unwrap();
        assert!(page.contains("The dashboard is not built"), "{page}");
        assert!(page.contains("npm run build"), "{page}");
        assert!(page.contains("DASHBOARD_DIR"), "{page}");
    }

    // Building while the origin runs is enough.
    std::fs::write(dist.path().join("index.html"), INDEX).expect("index.html");
    let response = app.get("/dashboard/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), INDEX);
}
