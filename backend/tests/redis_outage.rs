//! Redis going away and coming back, through a proxy in front of the real Redis: redirects keep
//! working from PostgreSQL meanwhile, the Upstash bridge answers at once with an error (so the edge
//! goes to the origin), both use Redis again within 5 s of its return, and a link change whose
//! cache invalidation failed is invalidated once Redis is back.

mod common;

use common::{custom, TestApp};
use redis::AsyncCommands;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use smo1_core::link::{self, CacheEntry};
use smo1_testkit::{self as testkit, ProxyMode, TcpProxy, TEST_UPSTASH_TOKEN};
use std::time::Duration;

/// The promise: Redis is used again this soon after it returns.
const RECOVERY: Duration = Duration::from_secs(5);

/// Every way the proxy can take Redis away.
const OUTAGES: [ProxyMode; 3] = [ProxyMode::Refuse, ProxyMode::Close, ProxyMode::Blackhole];

/// How long each outage lasts: longer than the tests' `REDIS_RETRY_AFTER_MS`, so reconnection
/// attempts against the dead Redis happen during it.
const OUTAGE: Duration = Duration::from_millis(1500);

/// Runs `request` over and over for [`OUTAGE`].
async fn during_outage<F, Fut>(mut request: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let end = std::time::Instant::now() + OUTAGE;
    while std::time::Instant::now() < end {
        request().await;
    }
}

async fn redis_proxy() -> TcpProxy {
    TcpProxy::start(testkit::redis_addr()).await
}

fn through(proxy: &TcpProxy) -> String {
    format!("redis://{}", proxy.addr)
}

/// The real Redis, not through the proxy: what the edge would read.
async fn direct() -> redis::aio::MultiplexedConnection {
    redis::Client::open(testkit::redis_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis")
}

async fn location(app: &TestApp, slug: &str) -> Option<String> {
    common::redirect_target(&app.http, &app.url(&format!("/{slug}"))).await
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_redirects_through_postgresql_while_redis_is_down_and_from_redis_after() {
    let proxy = redis_proxy().await;
    let app = TestApp::start_with(|config| {
        config.data.redis_url = through(&proxy);
        // Which of Redis and PostgreSQL answered is the point: no entries held in memory.
        config.origin_cache_staleness = Duration::ZERO;
    })
    .await;
    let link = app
        .create_link(custom("blip", "https://example.com/pg"))
        .await;
    assert_eq!(
        location(&app, "blip").await.as_deref(),
        Some("https://example.com/pg")
    );
    let key = link::cache_key(&app.prefix, smo1_core::domain::DEFAULT_DOMAIN, "blip");
    for (n, outage) in OUTAGES.into_iter().enumerate() {
        proxy.switch(outage).await;
        let attempts_before = proxy.accepted();
        let mut redirects = 0;
        during_outage(|| {
            redirects += 1;
            async {
                assert_eq!(
                    location(&app, "blip").await.as_deref(),
                    Some("https://example.com/pg"),
                    "redirects keep working from PostgreSQL while Redis is away ({outage:?})"
                );
            }
        })
        .await;
        // A dead Redis is skipped: one connection attempt per REDIS_RETRY_AFTER_MS at most,
        // not one (or more) per redirect.
        let attempts = proxy.accepted() - attempts_before;
        let most = OUTAGE.as_millis() / testkit::redis_timeouts().redis_retry_after.as_millis() + 1;
        assert!(
            u128::from(attempts) <= most,
            "{attempts} connection attempts to a dead Redis during {redirects} redirects ({outage:?})"
        );
        // Only Redis says this: the origin answering it proves it reads Redis again.
        let mut record = smo1_origin::links::repo::find_by_slug(&app.state.db, None, "blip")
            .await
            .expect("read")
            .expect("link");
        record.destination = format!("https://from-redis.example/{n}");
        let _: () = direct()
            .await
            .set(&key, CacheEntry::found(record.clone()).to_json())
            .await
            .expect("set");
        proxy.switch(ProxyMode::Forward).await;
        testkit::within(RECOVERY, "the origin to read Redis again", || async {
            location(&app, "blip").await.as_deref() == Some(record.destination.as_str())
        })
        .await;
    }
    assert_eq!(link.slug, "blip");
}

async fn bridge_get(bridge: &testkit::RunningServer, key: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(bridge.url())
        .bearer_auth(TEST_UPSTASH_TOKEN)
        .json(&json!(["GET", key]))
        .send()
        .await
        .expect("request");
    (response.status(), response.json().await.expect("json body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn bridge_fails_while_redis_is_down_and_serves_again_after() {
    let proxy = redis_proxy().await;
    let bridge = testkit::start_bridge_to(&through(&proxy)).await;
    let key = format!("{}k", testkit::redis_prefix());
    let _: () = direct().await.set_ex(&key, "v", 60).await.expect("set");
    assert_eq!(
        bridge_get(&bridge, &key).await,
        (StatusCode::OK, json!({"result": "v"}))
    );
    for outage in OUTAGES {
        proxy.switch(outage).await;
        during_outage(|| async {
            let (status, body) = bridge_get(&bridge, &key).await;
            assert!(
                status.is_server_error() && body["error"].is_string(),
                "an error, not a value, while Redis is away ({outage:?}): {status} {body}"
            );
        })
        .await;
        proxy.switch(ProxyMode::Forward).await;
        testkit::within(RECOVERY, "the bridge to serve again", || async {
            bridge_get(&bridge, &key).await == (StatusCode::OK, json!({"result": "v"}))
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_whose_invalidation_failed_is_invalidated_when_redis_returns() {
    let proxy = redis_proxy().await;
    let app = TestApp::start_with(|config| config.data.redis_url = through(&proxy)).await;
    let user = app.api_user("owner@example.com").await;
    let created = app
        .api_link(
            &user.key,
            json!({"destination": "https://example.com/", "custom_slug": "gone"}),
        )
        .await;
    assert!(location(&app, "gone").await.is_some());
    let key = link::cache_key(&app.prefix, smo1_core::domain::DEFAULT_DOMAIN, "gone");
    let cached = || async {
        direct()
            .await
            .exists::<_, bool>(&key)
            .await
            .expect("exists")
    };
    assert!(cached().await, "the redirect cached the link");

    proxy.switch(ProxyMode::Refuse).await;
    let path = format!("/v1/links/{}", created["id"].as_str().expect("id"));
    let (status, body) = app.call(Method::DELETE, &path, &user.key, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("cache_unavailable")),
        "{body}"
    );
    assert!(cached().await, "the stale entry is still in Redis");
    assert_eq!(
        location(&app, "gone").await,
        None,
        "the origin reads PostgreSQL"
    );

    proxy.switch(ProxyMode::Forward).await;
    testkit::eventually("the queued invalidation to reach Redis", || async {
        !cached().await
    })
    .await;
    assert_eq!(location(&app, "gone").await, None);
}
