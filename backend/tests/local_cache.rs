//! The origin's in-memory link cache across replicas: two origins on one PostgreSQL and one Redis;
//! a change made through one is seen by the other's redirects within the staleness bound, because
//! the invalidation is published to every origin.

mod common;

use common::{custom, TestApp};
use redis::AsyncCommands;
use smo1_origin::links::local_cache::CHANNEL;
use smo1_origin::links::service;
use smo1_testkit::{self as testkit, RunningServer};
use std::time::Duration;

/// The default `ORIGIN_CACHE_STALENESS_MS`: the promised bound.
const BOUND: Duration = Duration::from_secs(2);

async fn location(http: &reqwest::Client, server: &RunningServer, slug: &str) -> Option<String> {
    common::redirect_target(http, &format!("{}/{slug}", server.url())).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_on_one_origin_reaches_the_other_origins_memory_within_the_bound() {
    // Entries would live a minute in memory: only the published invalidation can make the
    // change visible within the bound.
    let a = TestApp::start_with(|config| {
        config.origin_cache_staleness = Duration::from_secs(60);
    })
    .await;
    let mut config = testkit::origin_config(&a.db, &a.prefix);
    config.origin_cache_staleness = Duration::from_secs(60);
    let (_b_state, b) = testkit::start_origin(config).await;
    let mut redis = redis::Client::open(testkit::redis_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let channel = format!("{}{CHANNEL}", a.prefix);
    testkit::eventually("both origins to listen for invalidations", || async {
        let (_, listeners): (String, u32) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut redis.clone())
            .await
            .expect("numsub");
        listeners >= 2
    })
    .await;

    let link = a
        .create_link(custom("shared", "https://example.com/old"))
        .await;
    assert_eq!(
        location(&a.http, &b, "shared").await.as_deref(),
        Some("https://example.com/old")
    );
    // B now holds the entry in memory, not only in Redis.
    let _: () = redis
        .del(smo1_core::link::cache_key(
            &a.prefix,
            smo1_core::domain::DEFAULT_DOMAIN,
            "shared",
        ))
        .await
        .expect("del");

    service::update_destination(&a.state, link.id, "https://example.com/new")
        .await
        .expect("update through A");

    testkit::within(
        BOUND,
        "origin B to redirect to the new destination",
        || async {
            location(&a.http, &b, "shared").await.as_deref() == Some("https://example.com/new")
        },
    )
    .await;
}
