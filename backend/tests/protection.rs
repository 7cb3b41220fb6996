//! Protected links at the origin: the edge's unlock check (`/internal/links/{slug}/unlock`) with
//! its per-link-per-IP lockout under parallel guesses, and the origin's own redirect path asking
//! for the PIN with the same form and cookie.

mod common;

use common::{custom, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use smo1_core::link::Protection;
use smo1_origin::links::{protection, Link};
use smo1_origin::users::repo;
use smo1_testkit as testkit;

async fn protected(app: &TestApp, slug: &str, pin: &str) -> Link {
    let link = app
        .create_link(custom(slug, "https://example.com/inside"))
        .await;
    let owner = repo::upsert_user(&app.state.db, "owner@example.com")
        .await
        .unwrap();
    protection::set(&app.state, owner, link.id, Protection::Pin, pin.into())
        .await
        .unwrap()
}

async fn unlock(app: &TestApp, slug: &str, secret: &str, ip: &str) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url(&format!("/internal/links/{slug}/unlock")))
        .bearer_auth(testkit::TEST_INTERNAL_SECRET)
        .json(&json!({"secret": secret, "ip": ip}))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn unlock_needs_the_shared_secret_and_a_known_slug() {
    let app = TestApp::start().await;
    protected(&app, "vault", "4821").await;
    let response = app
        .http
        .post(app.url("/internal/links/vault/unlock"))
        .json(&json!({"secret": "4821", "ip": "203.0.113.1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        unlock(&app, "nothing", "4821", "203.0.113.1").await,
        (
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "not_found", "message": "link not found"}})
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_guesses_never_pass_the_limit_and_other_ips_are_not_locked() {
    let app = TestApp::start().await;
    let link = protected(&app, "vault", "4821").await;

    let mut set = tokio::task::JoinSet::new();
    for i in 0..12 {
        let request = app
            .http
            .post(app.url("/internal/links/vault/unlock"))
            .bearer_auth(testkit::TEST_INTERNAL_SECRET)
            .json(&json!({"secret": format!("{:04}", i), "ip": "203.0.113.1"}));
        set.spawn(async move { request.send().await.unwrap().json::<Value>().await.unwrap() });
    }
    let outcomes: Vec<Value> = set.join_all().await;
    let count = |what: &str| outcomes.iter().filter(|o| o["outcome"] == what).count();
    assert_eq!((count("wrong"), count("locked")), (5, 7), "{outcomes:?}");
    let failures: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM protection_attempts WHERE link_id = $1 AND NOT succeeded",
    )
    .bind(link.id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(failures, 5);

    let (status, body) = unlock(&app, "vault", "4821", "203.0.113.1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["outcome"], "locked", "even the right PIN");
    assert!(
        (890..=900).contains(&body["retry_after"].as_i64().unwrap()),
        "{body}"
    );

    let (_, body) = unlock(&app, "vault", "4821", "2001:db8::1").await;
    assert_eq!(body["outcome"], "unlocked", "another address is not locked");
    assert_eq!(body["max_age"], 3600);
    let succeeded: bool = sqlx::query_scalar(
        "SELECT succeeded FROM protection_attempts WHERE ip_address = '2001:db8::1'",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert!(succeeded);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_origins_own_redirect_asks_for_the_pin_and_honours_the_cookie() {
    let app = TestApp::start().await;
    protected(&app, "vault", "4821").await;

    let form = app.get("/vault?ref=x").await;
    assert_eq!(form.status(), StatusCode::FORBIDDEN);
    assert!(form
        .text()
        .await
        .unwrap()
        .contains("<form method=\"post\" action=\"/vault?ref=x\">"));

    let post = |secret: &'static str| {
        app.http
            .post(app.url("/vault?ref=x"))
            .header("cf-connecting-ip", "203.0.113.9")
            .form(&[("secret", secret)])
            .send()
    };
    let wrong = post("0000").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert!(wrong.text().await.unwrap().contains("4 attempts left."));

    let right = post("4821").await.unwrap();
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        right.headers()["location"],
        "https://example.com/inside?ref=x"
    );
    let cookie = right.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Path=/vault; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"));
    let cookie = cookie.split(';').next().unwrap().to_owned();

    let again = app
        .http
        .get(app.url("/vault"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::FOUND);
    assert_eq!(again.headers()["location"], "https://example.com/inside");

    let json = app
        .http
        .post(app.url("/vault"))
        .json(&json!({"secret": "4821"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
