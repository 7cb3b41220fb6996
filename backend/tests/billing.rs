//! Polar webhooks over real PostgreSQL: signatures (built with the Standard Webhooks algorithm),
//! idempotency under duplicate and concurrent deliveries, tier changes and their rate limits.

mod common;

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use smo1_origin::billing::signature;
use smo1_origin::users::SubscriptionTier;
use smo1_testkit::TEST_POLAR_SECRET;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn subscription(kind: &str, status: &str, product: &str, email: &str) -> Value {
    json!({
        "type": kind,
        "timestamp": "2026-11-25T12:00:00Z",
        "data": {
            "id": "sub_1",
            "status": status,
            "product_id": product,
            "customer": {"id": "cus_1", "email": email, "external_id": null}
        }
    })
}

/// Sends `body` as a delivery with id `id`, signed with `secret` at `timestamp`.
async fn deliver(
    app: &TestApp,
    id: &str,
    body: &Value,
    secret: &str,
    timestamp: i64,
) -> (StatusCode, Value) {
    let body = serde_json::to_vec(body).unwrap();
    let ts = timestamp.to_string();
    let response = app
        .http
        .post(app.url("/webhooks/polar"))
        .header("webhook-id", id)
        .header("webhook-timestamp", &ts)
        .header(
            "webhook-signature",
            signature::signature(secret, id, &ts, &body),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn tier(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar("SELECT subscription_tier::text FROM users WHERE lower(email) = lower($1)")
        .bind(email)
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

async fn stored(app: &TestApp) -> Vec<(String, bool, Option<String>)> {
    sqlx::query_as(
        "SELECT event_id, processed_at IS NOT NULL, last_error FROM webhook_events ORDER BY received_at",
    )
    .fetch_all(&app.state.db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_subscription_event_sets_the_tier_and_its_rate_limit() {
    let app = TestApp::start().await;
    let user = app.api_user("buyer@example.com").await;
    let limit = |app: &TestApp| {
        let request = app.api(Method::GET, "/v1/me", &user.key);
        async move {
            let response = request.send().await.unwrap();
            response.headers()["x-ratelimit-limit"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(limit(&app).await, "60");

    let event = subscription(
        "subscription.created",
        "active",
        "prod_pro",
        "Buyer@Example.com",
    );
    let (status, body) = deliver(&app, "msg_1", &event, TEST_POLAR_SECRET, now()).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "processed"}));
    assert_eq!(tier(&app, "buyer@example.com").await, "pro");
    assert_eq!(
        limit(&app).await,
        "600",
        "the new tier's limit applies at once"
    );
    assert_eq!(stored(&app).await, [("msg_1".into(), true, None)]);

    let revoked = subscription(
        "subscription.revoked",
        "revoked",
        "prod_pro",
        "buyer@example.com",
    );
    assert_eq!(
        deliver(&app, "msg_2", &revoked, TEST_POLAR_SECRET, now())
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(tier(&app, "buyer@example.com").await, "free");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_customer_external_id_names_the_user() {
    let app = TestApp::start().await;
    let user = app.api_user("someone@example.com").await;
    let mut event = subscription(
        "subscription.active",
        "active",
        "prod_business",
        "other@example.com",
    );
    event["data"]["customer"]["external_id"] = json!(user.id.to_string());
    assert_eq!(
        deliver(&app, "msg_1", &event, TEST_POLAR_SECRET, now())
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(tier(&app, "someone@example.com").await, "business");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_signatures_are_refused_with_no_side_effects() {
    let app = TestApp::start().await;
    app.api_user("victim@example.com").await;
    let event = subscription(
        "subscription.created",
        "active",
        "prod_business",
        "victim@example.com",
    );
    let invalid =
        |message: &str| json!({"error": {"code": "invalid_signature", "message": message}});

    // Signed, then tampered with.
    let body = serde_json::to_vec(&event).unwrap();
    let ts = now().to_string();
    let sig = signature::signature(TEST_POLAR_SECRET, "msg_t", &ts, &body);
    let mut tampered = event.clone();
    tampered["data"]["product_id"] = json!("prod_pro");
    let response = app
        .http
        .post(app.url("/webhooks/polar"))
        .header("webhook-id", "msg_t")
        .header("webhook-timestamp", &ts)
        .header("webhook-signature", sig)
        .json(&tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        invalid("no webhook signature matches")
    );

    assert_eq!(
        deliver(&app, "msg_w", &event, "not-the-secret", now()).await,
        (
            StatusCode::UNAUTHORIZED,
            invalid("no webhook signature matches")
        )
    );
    let stale = invalid("webhook timestamp is more than 5 minutes from now");
    assert_eq!(
        deliver(&app, "msg_o", &event, TEST_POLAR_SECRET, now() - 301).await,
        (StatusCode::UNAUTHORIZED, stale.clone())
    );
    assert_eq!(
        deliver(&app, "msg_f", &event, TEST_POLAR_SECRET, now() + 301).await,
        (StatusCode::UNAUTHORIZED, stale)
    );
    let response = app
        .http
        .post(app.url("/webhooks/polar"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": {"code": "malformed_request", "message": "missing or malformed webhook-id header"}})
    );

    assert_eq!(tier(&app, "victim@example.com").await, "free");
    assert!(stored(&app).await.is_empty(), "nothing stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_delivery_is_acknowledged_and_changes_nothing() {
    let app = TestApp::start().await;
    app.api_user("dup@example.com").await;
    let event = subscription(
        "subscription.created",
        "active",
        "prod_pro",
        "dup@example.com",
    );
    assert_eq!(
        deliver(&app, "msg_1", &event, TEST_POLAR_SECRET, now())
            .await
            .1,
        json!({"status": "processed"})
    );
    sqlx::query("UPDATE users SET subscription_tier = 'business'")
        .execute(&app.state.db)
        .await
        .unwrap();

    let (status, body) = deliver(&app, "msg_1", &event, TEST_POLAR_SECRET, now()).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "duplicate"}));
    assert_eq!(
        tier(&app, "dup@example.com").await,
        "business",
        "not processed again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_duplicate_deliveries_are_processed_exactly_once() {
    let app = TestApp::start().await;
    app.api_user("race@example.com").await;
    let event = subscription(
        "subscription.created",
        "active",
        "prod_pro",
        "race@example.com",
    );
    let ts = now();

    let outcomes = deliver_concurrently(&app, &event, ts).await;

    let processed = outcomes
        .iter()
        .filter(|o| **o == json!({"status": "processed"}))
        .count();
    let duplicates = outcomes
        .iter()
        .filter(|o| **o == json!({"status": "duplicate"}))
        .count();
    assert_eq!((processed, duplicates), (1, 9), "{outcomes:?}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("smo1_webhooks_processed_total 1"),
        "{metrics}"
    );
}

async fn deliver_concurrently(app: &TestApp, event: &Value, ts: i64) -> Vec<Value> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (http, url) = (app.http.clone(), app.url("/webhooks/polar"));
        let body = serde_json::to_vec(event).unwrap();
        let ts = ts.to_string();
        let sig = signature::signature(TEST_POLAR_SECRET, "msg_race", &ts, &body);
        tasks.spawn(async move {
            let response = http
                .post(url)
                .header("webhook-id", "msg_race")
                .header("webhook-timestamp", ts)
                .header("webhook-signature", sig)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()
        });
    }
    tasks.join_all().await
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_event_types_are_stored_and_acknowledged() {
    let app = TestApp::start().await;
    let event = json!({"type": "checkout.created", "timestamp": "2026-11-25T12:00:00Z", "data": {"id": "co_1"}});
    let (status, body) = deliver(&app, "msg_c", &event, TEST_POLAR_SECRET, now()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ignored"}));
    assert_eq!(stored(&app).await, [("msg_c".into(), true, None)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_processing_failure_leaves_the_event_retryable() {
    let app = TestApp::start().await;
    let event = subscription(
        "subscription.created",
        "active",
        "prod_pro",
        "late@example.com",
    );

    let (status, body) = deliver(&app, "msg_l", &event, TEST_POLAR_SECRET, now()).await;

    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], "webhook_processing_failed");
    let rows = stored(&app).await;
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].1, "not processed");
    assert!(
        rows[0].2.as_deref().unwrap().starts_with("no user matches"),
        "{rows:?}"
    );

    // The customer signs up; Polar retries the same delivery.
    app.api_user_with_tier("late@example.com", SubscriptionTier::Free)
        .await;
    let (status, body) = deliver(&app, "msg_l", &event, TEST_POLAR_SECRET, now()).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "processed"}))
    );
    assert_eq!(tier(&app, "late@example.com").await, "pro");
    assert_eq!(stored(&app).await, [("msg_l".into(), true, None)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_signature_header_is_refused_before_any_mac() {
    let app = TestApp::start().await;
    // The reproduction: 80 KB of empty candidates, each of which used to re-MAC a 60 KB body.
    let body = format!(r#"{{"type":"x","pad":"{}"}}"#, "a".repeat(60_000));
    let response = app
        .http
        .post(app.url("/webhooks/polar"))
        .header("webhook-id", "msg_big")
        .header("webhook-timestamp", now().to_string())
        .header("webhook-signature", "v1, ".repeat(20_000))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": {"code": "malformed_request", "message":
            "webhook-signature header is over 1024 bytes or holds over 8 signatures"}})
    );
    assert!(stored(&app).await.is_empty(), "nothing stored");
}

/// A subscription event of `email` created by Polar at `at`.
fn event_at(kind: &str, status: &str, product: &str, email: &str, at: &str) -> Value {
    let mut event = subscription(kind, status, product, email);
    event["timestamp"] = json!(at);
    event
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_older_event_does_not_undo_a_newer_one() {
    let app = TestApp::start().await;
    app.api_user("late@example.com").await;
    let revoked = event_at(
        "subscription.revoked",
        "revoked",
        "prod_pro",
        "late@example.com",
        "2026-11-25T12:00:02Z",
    );
    let active = event_at(
        "subscription.updated",
        "active",
        "prod_pro",
        "late@example.com",
        "2026-11-25T12:00:01Z",
    );
    let deliver = |id: &'static str, event: &Value| {
        let event = event.clone();
        let app = &app;
        async move { deliver(app, id, &event, TEST_POLAR_SECRET, now()).await.1 }
    };
    assert_eq!(
        deliver("msg_r", &revoked).await,
        json!({"status": "processed"})
    );
    assert_eq!(
        deliver("msg_a", &active).await,
        json!({"status": "superseded"})
    );
    assert_eq!(tier(&app, "late@example.com").await, "free");
    assert_eq!(stored(&app).await.len(), 2, "both kept, both processed");
}

/// Every order of `events`, each delivered twice.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    permutations(n - 1)
        .into_iter()
        .flat_map(|shorter| {
            (0..n).map(move |at| {
                let mut order = shorter.clone();
                order.insert(at, n - 1);
                order
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_newest_event_wins_in_every_order_with_duplicates_and_concurrency() {
    let app = TestApp::start().await;
    // (kind, status, product, created at): pro, then business, then revoked.
    let history = [
        (
            "subscription.created",
            "active",
            "prod_pro",
            "2026-11-25T12:00:01Z",
        ),
        (
            "subscription.updated",
            "active",
            "prod_business",
            "2026-11-25T12:00:02Z",
        ),
        (
            "subscription.revoked",
            "revoked",
            "prod_business",
            "2026-11-25T12:00:03Z",
        ),
    ];
    let mut expected = Vec::new();
    let mut deliveries = tokio::task::JoinSet::new();
    for (events, newest_tier) in [(2, "business"), (3, "free")] {
        for (p, order) in permutations(events).into_iter().enumerate() {
            for concurrent in [false, true] {
                let email = format!("o{events}-{p}-{concurrent}@example.com");
                app.api_user(&email).await;
                expected.push((email.clone(), newest_tier));
                let sends: Vec<(String, Value)> = order
                    .iter()
                    .flat_map(|&i| {
                        let (kind, status, product, at) = history[i];
                        let event = event_at(kind, status, product, &email, at);
                        let id = format!("msg_{email}_{i}");
                        [(id.clone(), event.clone()), (id, event)]
                    })
                    .collect();
                let (http, url) = (app.http.clone(), app.url("/webhooks/polar"));
                let send = move |(id, event): (String, Value)| {
                    let http = http.clone();
                    let url = url.clone();
                    async move {
                        let body = serde_json::to_vec(&event).unwrap();
                        let ts = now().to_string();
                        let sig = signature::signature(TEST_POLAR_SECRET, &id, &ts, &body);
                        let response = http
                            .post(url)
                            .header("webhook-id", &id)
                            .header("webhook-timestamp", ts)
                            .header("webhook-signature", sig)
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(response.status(), StatusCode::OK);
                    }
                };
                if concurrent {
                    for delivery in sends {
                        deliveries.spawn(send(delivery));
                    }
                } else {
                    deliveries.spawn(async move {
                        for delivery in sends {
                            send(delivery).await;
                        }
                    });
                }
            }
        }
    }
    deliveries.join_all().await;
    for (email, newest_tier) in expected {
        assert_eq!(tier(&app, &email).await, newest_tier, "{email}");
    }
    let processed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE processed_at IS NOT NULL")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(processed, 2 * 2 * 2 + 6 * 2 * 3, "each event once");
}
