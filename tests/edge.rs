//! End to end: a visitor's request through the built wasm worker in workerd, the Upstash bridge,
//! the origin, PostgreSQL and Redis.

mod support;

use reqwest::StatusCode;
use smo1_core::link::{CacheEntry, CachedLink, RedirectType, Utm};
use smo1_origin::links::service;
use smo1_origin::users::repo;
use smo1_testkit::{self as testkit, ProxyMode};
use std::time::Duration;
use support::{Stack, Wiring};

async fn create(stack: &Stack, input: service::CreateLink) -> smo1_origin::links::Link {
    let user = repo::upsert_user(&stack.state.db, "owner@example.com")
        .await
        .expect("user");
    service::create(&stack.state, user, input)
        .await
        .expect("create link")
}

fn custom(slug: &str, destination: &str) -> service::CreateLink {
    service::CreateLink {
        custom_slug: Some(slug.into()),
        destination: destination.into(),
        ..Default::default()
    }
}

fn location(response: &reqwest::Response) -> &str {
    response.headers()["location"]
        .to_str()
        .expect("ascii location")
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_miss_asks_the_origin_which_fills_redis() {
    let stack = Stack::start().await;
    create(&stack, custom("guide", "https://example.com/docs")).await;
    assert_eq!(stack.cached("guide").await, None);

    let response = stack.get("/guide").await;

    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "https://example.com/docs");
    assert_eq!(response.headers()["cache-control"], "private, max-age=0");
    let entry = CacheEntry::from_json(&stack.cached("guide").await.expect("cache filled"))
        .expect("readable entry");
    let CachedLink::Found(record) = entry.link else {
        panic!("expected a found entry, got {entry:?}");
    };
    assert_eq!(record.destination, "https://example.com/docs");
    let ttl = stack.cache_ttl("guide").await;
    assert!((290..=300).contains(&ttl), "link TTL is 300 s, got {ttl}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_hit_is_served_without_the_origin() {
    let mut stack = Stack::start_with(Wiring::without_link_cache()).await;
    create(&stack, custom("hit", "https://example.com/from-postgres")).await;
    assert_eq!(stack.get("/hit").await.status(), StatusCode::FOUND);
    stack.stop_origin().await;

    let response = stack.get("/hit").await;

    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "https://example.com/from-postgres");
    // A cache entry that differs from PostgreSQL proves which one answered.
    let raw = stack.cached("hit").await.expect("cached");
    stack
        .put_cache("hit", &raw.replace("from-postgres", "from-redis"))
        .await;
    assert_eq!(
        location(&stack.get("/hit").await),
        "https://example.com/from-redis"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_invalidates_redis_at_once() {
    let stack = Stack::start_with(Wiring::without_link_cache()).await;
    let link = create(&stack, custom("moving", "https://example.com/old")).await;
    assert_eq!(
        location(&stack.get("/moving").await),
        "https://example.com/old"
    );
    assert!(stack.cached("moving").await.is_some());

    service::update_destination(&stack.state, link.id, "https://example.com/new")
        .await
        .expect("update");

    assert_eq!(stack.cached("moving").await, None, "update invalidates");
    assert_eq!(
        location(&stack.get("/moving").await),
        "https://example.com/new"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_slug_is_404_and_cached_negatively() {
    let stack = Stack::start().await;

    let response = stack.get("/nothing-here").await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert!(response.text().await.unwrap().contains("Link not found"));
    let raw = stack.cached("nothing-here").await.expect("negative entry");
    assert_eq!(CacheEntry::from_json(&raw), Some(CacheEntry::missing()));
    let ttl = stack.cache_ttl("nothing-here").await;
    assert!((1..=30).contains(&ttl), "negative TTL is short, got {ttl}");
    // A link created later replaces the negative entry, at the edge within the bound.
    create(&stack, custom("nothing-here", "https://example.com/now")).await;
    stack
        .within_link_cache_bound("a new link", || async {
            stack.get("/nothing-here").await.status() == StatusCode::FOUND
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_and_disabled_links_are_410() {
    let stack = Stack::start().await;
    let mut expired = custom("old-news", "https://example.com/");
    expired.expires_at = Some(chrono::Utc::now() - chrono::Duration::minutes(1));
    create(&stack, expired).await;
    let disabled = create(&stack, custom("switched-off", "https://example.com/")).await;
    sqlx::query("UPDATE links SET status = 'disabled' WHERE id = $1")
        .bind(disabled.id)
        .execute(&stack.state.db)
        .await
        .unwrap();

    let response = stack.get("/old-news").await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("This link has expired"));
    let response = stack.get("/switched-off").await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("This link is disabled"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_link_that_expires_answers_410_without_invalidation() {
    let stack = Stack::start().await;
    let mut soon = custom("soon", "https://example.com/");
    soon.expires_at = Some(chrono::Utc::now() + chrono::Duration::seconds(2));
    create(&stack, soon).await;
    assert_eq!(stack.get("/soon").await.status(), StatusCode::FOUND);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert!(stack.cached("soon").await.is_some(), "still cached");
    assert_eq!(stack.get("/soon").await.status(), StatusCode::GONE);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_slugs_are_404_without_any_lookup() {
    // Both dependencies unreachable: any lookup would turn into a 502/503.
    let stack = Stack::start_with(Wiring {
        upstash: false,
        origin: false,
        ..Wiring::default()
    })
    .await;
    for path in [
        "/a.b",
        "/a%20b",
        "/x/y",
        &format!("/{}", "a".repeat(65)),
        "/%E2%9C%93",
    ] {
        let response = stack.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn utm_fields_and_visitor_query_are_merged() {
    let stack = Stack::start().await;
    let mut input = custom("campaign", "https://example.com/p?utm_source=old&id=7");
    input.utm = Utm {
        source: Some("newsletter".into()),
        campaign: Some("black friday".into()),
        ..Utm::default()
    };
    create(&stack, input).await;

    let response = stack.get("/campaign?ref=tw&utm_source=visitor").await;

    assert_eq!(
        location(&response),
        "https://example.com/p?id=7&utm_source=newsletter&utm_campaign=black+friday&ref=tw"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_redirect_type_is_honoured() {
    let stack = Stack::start().await;
    for (slug, kind, status) in [
        ("r301", RedirectType::Permanent, 301),
        ("r307", RedirectType::Temporary, 307),
        ("r308", RedirectType::PermanentRedirect, 308),
    ] {
        let mut input = custom(slug, "https://example.com/");
        input.redirect_type = kind;
        create(&stack, input).await;
        assert_eq!(
            stack.get(&format!("/{slug}")).await.status().as_u16(),
            status
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn head_behaves_like_get_without_a_body() {
    let stack = Stack::start().await;
    create(&stack, custom("heady", "https://example.com/h")).await;

    let response = stack.head("/heady").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "https://example.com/h");
    assert!(response.bytes().await.unwrap().is_empty());

    let response = stack.head("/missing-one").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn other_methods_are_405() {
    let stack = Stack::start().await;
    let response = stack
        .http
        .delete(format!("{}/anything", stack.worker_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_unreachable_is_served_via_the_origin() {
    let stack = Stack::start_with(Wiring {
        upstash: false,
        origin: true,
        ..Wiring::default()
    })
    .await;
    create(&stack, custom("resilient", "https://example.com/r")).await;

    let response = stack.get("/resilient").await;

    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "https://example.com/r");
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_unreachable_on_a_miss_is_a_502_page() {
    let stack = Stack::start_with(Wiring {
        upstash: true,
        origin: false,
        ..Wiring::default()
    })
    .await;

    let response = stack.get("/uncached").await;

    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("Link service unreachable"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_and_origin_unreachable_is_a_503_page() {
    let stack = Stack::start_with(Wiring {
        upstash: false,
        origin: false,
        ..Wiring::default()
    })
    .await;

    let response = stack.get("/uncached").await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("Temporarily unavailable"));
}

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_cache_entries_fall_back_to_the_origin() {
    let stack = Stack::start().await;
    create(&stack, custom("garbled", "https://example.com/g")).await;
    stack.put_cache("garbled", "{not json").await;

    let response = stack.get("/garbled").await;

    assert_eq!(location(&response), "https://example.com/g");
    assert!(CacheEntry::from_json(&stack.cached("garbled").await.unwrap()).is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn root_answers_with_a_page() {
    let stack = Stack::start().await;
    let response = stack.get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("SMO1"));
}

/// Issue 4's promise as issue 13 bounds it, end to end: a change made through the public API
/// shows at the edge within `EDGE_LINK_CACHE_MS` (isolates reuse a record that long), for
/// every kind of change, while the edge is serving the link from its isolate all along.
#[tokio::test(flavor = "multi_thread")]
async fn api_changes_show_at_the_edge_within_the_link_cache_bound() {
    let stack = Stack::start().await;
    let (_, key) = smo1_origin::api_keys::bootstrap_user(
        &stack.state.db,
        "api@example.com",
        None,
        smo1_origin::users::SubscriptionTier::Business,
    )
    .await
    .expect("bootstrap")
    .expect("new user");
    let origin = stack.origin.as_ref().expect("origin").url();
    let api = |method: reqwest::Method, path: &str| {
        stack
            .http
            .request(method, format!("{origin}/v1{path}"))
            .bearer_auth(&key)
    };
    let created: serde_json::Value = api(reqwest::Method::POST, "/links")
        .json(&serde_json::json!({"custom_slug": "live", "destination": "https://example.com/v1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().expect("link id").to_owned();
    assert_eq!(
        location(&stack.get("/live").await),
        "https://example.com/v1"
    );

    let response = api(reqwest::Method::PATCH, &format!("/links/{id}"))
        .json(&serde_json::json!({"destination": "https://example.com/v2"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    stack
        .within_link_cache_bound("an edit", || async {
            location(&stack.get("/live").await) == "https://example.com/v2"
        })
        .await;

    let response = api(reqwest::Method::POST, &format!("/links/{id}/disable"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    stack
        .within_link_cache_bound("disabling", || async {
            stack.get("/live").await.status() == StatusCode::GONE
        })
        .await;

    let response = api(reqwest::Method::DELETE, &format!("/links/{id}"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    stack
        .within_link_cache_bound("deleting", || async {
            stack.get("/live").await.status() == StatusCode::NOT_FOUND
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_outage_is_served_through_the_origin_and_redis_is_used_again_after() {
    // Without the isolate's own cache, so every request shows where the record came from.
    let stack = Stack::start_with(Wiring::without_link_cache()).await;
    create(&stack, custom("blip", "https://example.com/from-postgres")).await;
    assert_eq!(stack.get("/blip").await.status(), StatusCode::FOUND);
    let raw = stack.cached("blip").await.expect("cached");
    for (n, outage) in [ProxyMode::Refuse, ProxyMode::Close, ProxyMode::Blackhole]
        .into_iter()
        .enumerate()
    {
        stack.redis_proxy.switch(outage).await;
        for _ in 0..5 {
            let response = stack.get("/blip").await;
            assert_eq!(
                (response.status(), location(&response)),
                (StatusCode::FOUND, "https://example.com/from-postgres"),
                "the edge falls back to the origin, which reads PostgreSQL ({outage:?})"
            );
        }
        // Only Redis says this: the edge answering it proves it reads Redis again.
        let marked = format!("https://example.com/from-redis-{n}");
        stack
            .pin_cache(
                "blip",
                &raw.replace("https://example.com/from-postgres", &marked),
            )
            .await;
        stack.redis_proxy.switch(ProxyMode::Forward).await;
        testkit::within(
            Duration::from_secs(5),
            "the edge to read Redis again",
            || async {
                let response = stack.get("/blip").await;
                response.status() == StatusCode::FOUND && location(&response) == marked
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_upstash_costs_one_timeout_then_is_skipped_until_it_answers_again() {
    // Every request looks the link up (no per-isolate reuse). The open period is long enough
    // that the requests below all fall inside it, however slow the machine.
    let stack = Stack::start_with(Wiring {
        vars: vec![
            ("EDGE_LINK_CACHE_MS", "0".into()),
            ("EDGE_REDIS_TIMEOUT_MS", "300".into()),
            ("EDGE_REDIS_RETRY_AFTER_MS", "4000".into()),
        ],
        ..Wiring::default()
    })
    .await;
    create(
        &stack,
        custom("breaker", "https://example.com/from-postgres"),
    )
    .await;
    assert_eq!(stack.get("/breaker").await.status(), StatusCode::FOUND);
    let raw = stack.cached("breaker").await.expect("cached");
    for (n, outage) in [ProxyMode::Blackhole, ProxyMode::Close]
        .into_iter()
        .enumerate()
    {
        stack.upstash_proxy.switch(outage).await;
        // The first lookup fails (a timeout, a reset) and opens the breaker.
        let response = stack.get("/breaker").await;
        assert_eq!(location(&response), "https://example.com/from-postgres");
        let tried = stack.upstash_proxy.accepted();
        for _ in 0..10 {
            let response = stack.get("/breaker").await;
            assert_eq!(
                (response.status(), location(&response)),
                (StatusCode::FOUND, "https://example.com/from-postgres"),
                "served by the origin ({outage:?})"
            );
        }
        assert_eq!(
            stack.upstash_proxy.accepted(),
            tried,
            "while the breaker is open no lookup goes to Upstash ({outage:?})"
        );
        // Only Redis says this: the edge answering it proves a probe closed the breaker.
        let marked = format!("https://example.com/from-redis-{n}");
        stack
            .pin_cache(
                "breaker",
                &raw.replace("https://example.com/from-postgres", &marked),
            )
            .await;
        stack.upstash_proxy.switch(ProxyMode::Forward).await;
        testkit::within(
            Duration::from_secs(8),
            "the edge to use Upstash again after the open period",
            || async {
                let response = stack.get("/breaker").await;
                response.status() == StatusCode::FOUND && location(&response) == marked
            },
        )
        .await;
        stack.pin_cache("breaker", &raw).await;
    }
}
