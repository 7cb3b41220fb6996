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

/// Wrong guesses of `count` PINs, each from the address `ip(i)`; answers the outcomes in order.
async fn guesses(app: &TestApp, count: usize, ip: impl Fn(usize) -> String) -> Vec<String> {
    let mut outcomes = Vec::new();
    for i in 0..count {
        let (status, body) = unlock(app, "vault", "0000", &ip(i)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        outcomes.push(body["outcome"].as_str().unwrap().to_owned());
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread")]
async fn addresses_of_one_ipv6_64_share_one_lockout() {
    let app = TestApp::start().await;
    protected(&app, "vault", "4821").await;
    let outcomes = guesses(&app, 7, |i| format!("2001:db8:5:5:{i:x}::{i:x}")).await;
    assert_eq!(
        outcomes,
        ["wrong", "wrong", "wrong", "wrong", "wrong", "locked", "locked"]
    );
    let (_, body) = unlock(&app, "vault", "4821", "2001:db8:5:5:ffff::1").await;
    assert_eq!(
        body["outcome"], "locked",
        "the whole /64, even the right PIN"
    );
    let (_, body) = unlock(&app, "vault", "4821", "2001:db8:5:6::1").await;
    assert_eq!(
        body["outcome"], "unlocked",
        "the next /64 is another subscriber"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_takes_a_bounded_number_of_failures_from_all_addresses_together() {
    let app = TestApp::start_with(|c| c.unlock.unlock_max_failures_per_link = 8).await;
    protected(&app, "vault", "4821").await;
    let outcomes = guesses(&app, 10, |i| format!("198.51.100.{i}")).await;
    assert_eq!(outcomes.iter().filter(|o| *o == "wrong").count(), 8);
    assert_eq!(outcomes[8..], ["locked", "locked"]);
    let (_, body) = unlock(&app, "vault", "0000", "203.0.113.50").await;
    assert_eq!(body["outcome"], "locked", "a fresh address too");
    assert!(
        (890..=900).contains(&body["retry_after"].as_i64().unwrap()),
        "{body}"
    );

    // The attempts left count down to whichever limit is nearer.
    let app = TestApp::start_with(|c| c.unlock.unlock_max_failures_per_link = 3).await;
    protected(&app, "vault", "4821").await;
    let (_, body) = unlock(&app, "vault", "0000", "198.51.100.1").await;
    assert_eq!(body, json!({"outcome": "wrong", "attempts_left": 2}));
}

/// Wrong PINs posted to the origin's own `/vault`, each with a new `cf-connecting-ip`: the
/// statuses in order.
async fn posted_guesses(app: &TestApp, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..count {
        let response = app
            .http
            .post(app.url("/vault"))
            .header("cf-connecting-ip", format!("198.51.100.{i}"))
            .form(&[("secret", "0000")])
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread")]
async fn the_origin_believes_a_client_address_header_only_from_a_trusted_proxy() {
    let app = TestApp::start().await;
    protected(&app, "vault", "4821").await;
    assert_eq!(
        posted_guesses(&app, 7).await,
        [403, 403, 403, 403, 403, 429, 429],
        "a header any client can send is not an address"
    );

    let app = TestApp::start_with(|c| {
        c.client_address.trusted_proxies = "127.0.0.0/8".parse().unwrap();
        c.client_address.client_ip_header = "cf-connecting-ip".into();
    })
    .await;
    protected(&app, "vault", "4821").await;
    assert_eq!(
        posted_guesses(&app, 7).await,
        [403; 7],
        "behind a trusted proxy, each address has its own count"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn protecting_a_link_of_someone_else_costs_no_hashing() {
    let app = TestApp::start_with(|c| c.unlock.unlock_verify_concurrency = 1).await;
    let link = app
        .create_link(custom("vault", "https://example.com/inside"))
        .await;
    let stranger = repo::upsert_user(&app.state.db, "stranger@example.com")
        .await
        .unwrap();
    // Every verifier is taken: any request that queues for hashing would answer `busy`.
    let _all_verifiers = app.state.verifier.permit().await.unwrap();
    for id in [link.id, uuid::Uuid::new_v4()] {
        let refused = protection::set(&app.state, stranger, id, Protection::Pin, "1234".into())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "not_found", "{refused:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_checks_that_will_run_wait_for_a_verifier() {
    let app = TestApp::start_with(|c| c.unlock.unlock_verify_concurrency = 1).await;
    let link = protected(&app, "vault", "4821").await;
    guesses(&app, 5, |_| "198.51.100.9".into()).await;
    let _all_verifiers = app.state.verifier.permit().await.unwrap();

    let (status, body) = unlock(&app, "nothing", "4821", "198.51.100.9").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = unlock(&app, "vault", "4821", "198.51.100.9").await;
    assert_eq!(
        (status, body["outcome"].clone()),
        (StatusCode::OK, json!("locked"))
    );

    // A check that finds no free verifier is not counted against the visitor.
    let (status, body) = unlock(&app, "vault", "0000", "203.0.113.9").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("busy"))
    );
    let counted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM protection_attempts WHERE link_id = $1 AND ip_address = '203.0.113.9'",
    )
    .bind(link.id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(counted, 0);
}
