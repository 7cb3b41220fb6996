//! Link lookups on a PostgreSQL read replica (`DATABASE_READ_URL`), against a real primary and a
//! streaming replica of it (`testkit::Replication`): lookups are served there (the replica's own
//! `pg_stat_statements` counts them, the primary's does not), a lagging replica never puts an
//! edited link back into Redis or the origin's memory, and a replica that is down or hangs costs
//! lookups at most a short timeout before the primary answers.

mod common;

use common::{custom, redirect_target, TestApp};
use smo1_core::link::{CacheEntry, CachedLink, LinkStatus, Protection};
use smo1_origin::config::ReadReplicaConfig;
use smo1_origin::links::{protection, repo, service};
use smo1_testkit::{ProxyMode, Replication, TcpProxy};
use std::time::{Duration, Instant};

/// How long the origin waits for the replica in these tests.
const READ_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a lookup waits for the replica to catch up: replay on a loaded test machine trails by
/// more than in production.
const CATCH_UP: Duration = Duration::from_secs(1);
/// How long it skips the replica after a failure: long enough that a loaded machine gets the
/// test's lookups done within it.
const RETRY_AFTER: Duration = Duration::from_secs(3);

/// Text of the slug lookup (`repo::find_by_slug`), as `pg_stat_statements` records it.
const LOOKUP: &str = "$1 AS slug, destination";

/// The origin over the pair's primary, reading lookups from `read_url`.
async fn origin(replication: &Replication, read_url: String) -> TestApp {
    let primary = replication.primary_url();
    TestApp::start_with(|config| {
        config.data.database_url = primary;
        config.data.read_replica = ReadReplicaConfig {
            database_read_url: read_url,
            database_read_max_connections: 4,
            database_read_timeout: READ_TIMEOUT,
            database_read_catch_up: CATCH_UP,
            database_read_retry_after: RETRY_AFTER,
        };
    })
    .await
}

/// `smo1_read_replica_reads_total{outcome}` of this process.
fn reads(app: &TestApp, outcome: &str) -> u64 {
    let series = format!("smo1_read_replica_reads_total{{outcome=\"{outcome}\"}} ");
    app.state
        .metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.trim().parse().expect("a counter value"))
}

/// The edge's cache-miss lookup, as the entry it answers.
async fn internal_lookup(app: &TestApp, slug: &str) -> CacheEntry {
    let response = app
        .internal_get(&format!("/internal/domains/default/links/{slug}"))
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    CacheEntry::from_json(&response.text().await.expect("body")).expect("a cache entry")
}

/// What a visitor should get for `slug` now, by the primary.
async fn truth(app: &TestApp, slug: &str) -> CacheEntry {
    match repo::find_by_slug(&app.state.db, None, slug)
        .await
        .expect("read")
    {
        Some(record) => CacheEntry::found(record),
        None => CacheEntry::missing(),
    }
}

/// The link's record as the replica itself holds it now.
async fn on_replica(replication: &Replication, slug: &str) -> Option<(String, String)> {
    sqlx::query_as(
        "SELECT status::text, protection_type::text FROM links WHERE custom_slug = $1 OR uid = $1",
    )
    .bind(slug)
    .fetch_optional(&mut replication.replica().await)
    .await
    .expect("read the replica")
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_and_edge_lookups_are_served_by_the_replica() {
    let replication = Replication::start().await;
    let app = origin(&replication, replication.replica_url()).await;
    let edge = app
        .create_link(custom("on-replica", "https://example.com/edge"))
        .await;
    app.create_link(custom("origin-visit", "https://example.com/visit"))
        .await;
    replication.wait_for_replay().await;

    let expected = truth(&app, "on-replica").await;
    let primary_before = Replication::calls(&mut replication.primary().await, LOOKUP).await;
    const LOOKUPS: i64 = 20;
    for _ in 0..LOOKUPS {
        let entry = internal_lookup(&app, "on-replica").await;
        assert_eq!(entry, expected);
        let CachedLink::Found(record) = entry.link else {
            panic!("found")
        };
        assert_eq!(record.link_id, edge.id.to_string());
    }
    assert_eq!(
        redirect_target(&app.http, &app.url("/origin-visit"))
            .await
            .as_deref(),
        Some("https://example.com/visit"),
        "the origin's own redirect, a cache miss"
    );
    assert_eq!(
        internal_lookup(&app, "never-made").await,
        CacheEntry::missing()
    );

    println!(
        "outcomes: replica {}, behind {}, failed {}, skipped {}",
        reads(&app, "replica"),
        reads(&app, "behind"),
        reads(&app, "failed"),
        reads(&app, "skipped")
    );
    // Every lookup (20 edge, 1 redirect, 1 unknown slug) ran on the replica, none on the primary.
    let on_replica = Replication::calls(&mut replication.replica().await, LOOKUP).await;
    let on_primary =
        Replication::calls(&mut replication.primary().await, LOOKUP).await - primary_before;
    assert_eq!(on_replica, LOOKUPS + 2, "lookups run by the replica");
    assert_eq!(on_primary, 0, "lookups run by the primary");
    assert_eq!(reads(&app, "replica"), LOOKUPS as u64 + 2);
    println!("{on_replica} lookups on the replica, {on_primary} on the primary");

    let ready: serde_json::Value = app
        .operator_get("/readyz")
        .await
        .json()
        .await
        .expect("readyz");
    assert_eq!(ready["postgres_read_replica"]["status"], "up", "{ready}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lagging_replica_never_brings_an_edited_link_back() {
    let replication = Replication::start().await;
    let app = origin(&replication, replication.replica_url()).await;
    let user = smo1_origin::users::repo::upsert_user(&app.state.db, "owner@example.com")
        .await
        .expect("user");
    let slugs = ["lag-disable", "lag-protect", "lag-delete"];
    let mut links = Vec::new();
    for slug in slugs {
        links.push(
            service::create(&app.state, user, custom(slug, "https://example.com/old"))
                .await
                .expect("create"),
        );
    }
    replication.wait_for_replay().await;
    // Warm every cache from the replica: Redis (edge lookups) and the origin's memory (its own
    // redirects).
    for slug in slugs {
        assert!(matches!(
            internal_lookup(&app, slug).await.link,
            CachedLink::Found(_)
        ));
        assert_eq!(
            redirect_target(&app.http, &app.url(&format!("/{slug}")))
                .await
                .as_deref(),
            Some("https://example.com/old")
        );
    }
    let served_before = reads(&app, "replica");
    assert!(served_before >= 3, "the warm-up read the replica");

    replication.pause_replay().await;
    service::update(
        &app.state,
        user,
        links[0].id,
        service::LinkPatch {
            status: Some(LinkStatus::Disabled),
            ..Default::default()
        },
    )
    .await
    .expect("disable");
    protection::set(
        &app.state,
        user,
        links[1].id,
        Protection::Pin,
        "4821".into(),
    )
    .await
    .expect("protect");
    service::delete(&app.state, user, links[2].id)
        .await
        .expect("delete");

    // The replica really lags: it still holds every link as it was.
    for slug in slugs {
        assert_eq!(
            on_replica(&replication, slug).await,
            Some(("active".to_owned(), "none".to_owned())),
            "{slug} on the paused replica"
        );
    }
    let lookups_on_primary = Replication::calls(&mut replication.primary().await, LOOKUP).await;
    for slug in slugs {
        let truth = truth(&app, slug).await;
        assert_eq!(
            internal_lookup(&app, slug).await,
            truth,
            "{slug} at the edge"
        );
        assert_eq!(
            app.state.redis.get_link(None, slug).await.expect("redis"),
            Some(truth.clone()),
            "{slug} in Redis"
        );
        // The origin's own redirect (its memory was invalidated, its refill reads again).
        let visit = app.get(&format!("/{slug}")).await;
        assert!(
            !visit.status().is_redirection(),
            "{slug} must not redirect after its edit, got {}",
            visit.status()
        );
        // Held now unless a late invalidation message dropped it again: never the old state.
        let held = app.state.local_links.get(slug);
        assert!(
            held.is_none() || held.as_deref() == Some(&truth),
            "{slug} in memory: {held:?}"
        );
    }
    match truth(&app, "lag-disable").await.link {
        CachedLink::Found(record) => assert_eq!(record.status, LinkStatus::Disabled),
        CachedLink::Missing => panic!("disabled, not deleted"),
    }
    match truth(&app, "lag-protect").await.link {
        CachedLink::Found(record) => assert_eq!(record.protection, Protection::Pin),
        CachedLink::Missing => panic!("protected, not deleted"),
    }
    assert_eq!(truth(&app, "lag-delete").await, CacheEntry::missing());
    assert_eq!(
        reads(&app, "replica"),
        served_before,
        "no lookup used the lagging replica"
    );
    // The first lookup waited for the replica to catch up; the others skipped it.
    assert_eq!(reads(&app, "behind"), 1, "the replica was behind");
    assert_eq!(reads(&app, "skipped"), 2, "then skipped");
    assert!(
        Replication::calls(&mut replication.primary().await, LOOKUP).await
            >= lookups_on_primary + 3,
        "the primary answered them"
    );

    // Caught up again, the replica serves the edited state (once its skip period is over).
    replication.resume_replay().await;
    replication.wait_for_replay().await;
    let app = &app;
    smo1_testkit::eventually(
        "the caught-up replica to serve lookups again",
        || async move {
            for slug in slugs {
                assert_eq!(
                    internal_lookup(app, slug).await,
                    truth(app, slug).await,
                    "{slug}"
                );
            }
            reads(app, "replica") >= served_before + 3
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lookups_read_the_primary_when_the_replica_hangs_or_is_down() {
    let replication = Replication::start().await;
    let proxy = TcpProxy::start(replication.replica_addr()).await;
    let read_url = format!("postgres://postgres@{}/smo1", proxy.addr);
    let app = origin(&replication, read_url).await;
    app.create_link(custom("fallback", "https://example.com/fallback"))
        .await;
    replication.wait_for_replay().await;
    let truth = truth(&app, "fallback").await;
    assert_eq!(internal_lookup(&app, "fallback").await, truth);
    assert_eq!(reads(&app, "replica"), 1);

    // Hung: connections are accepted and never answered.
    proxy.switch(ProxyMode::Blackhole).await;
    let started = Instant::now();
    assert_eq!(internal_lookup(&app, "fallback").await, truth);
    let first = started.elapsed();
    assert_eq!(reads(&app, "failed"), 1, "the replica timed out");
    assert!(
        first < CATCH_UP + READ_TIMEOUT + Duration::from_secs(2),
        "the first lookup waited {first:?}, not just the {:?} bound",
        CATCH_UP + READ_TIMEOUT
    );
    // Then the replica is skipped: no lookup waits for it.
    for _ in 0..5 {
        assert_eq!(internal_lookup(&app, "fallback").await, truth);
    }
    assert_eq!(
        reads(&app, "skipped"),
        5,
        "skipped while the breaker is open"
    );
    assert_eq!(reads(&app, "failed"), 1);
    println!("hung replica: the first lookup took {first:?}, the next ones skipped it");

    // Back: after the retry period one lookup probes and the replica serves again.
    proxy.switch(ProxyMode::Forward).await;
    tokio::time::sleep(RETRY_AFTER).await;
    let (app, truth) = (&app, &truth);
    smo1_testkit::eventually("the replica to serve lookups again", || async move {
        assert_eq!(&internal_lookup(app, "fallback").await, truth);
        reads(app, "replica") >= 2
    })
    .await;

    // Down: the replica's server is gone.
    replication.stop_replica().await;
    let started = Instant::now();
    for _ in 0..10 {
        assert_eq!(&internal_lookup(app, "fallback").await, truth);
    }
    println!(
        "stopped replica: 10 lookups answered by the primary in {:?}",
        started.elapsed()
    );
    assert!(
        reads(app, "failed") >= 2,
        "the stopped replica failed a lookup"
    );
    let ready = app.operator_get("/readyz").await;
    assert_eq!(
        ready.status(),
        reqwest::StatusCode::OK,
        "ready without the replica"
    );
    let ready: serde_json::Value = ready.json().await.expect("readyz");
    assert_eq!(ready["postgres_read_replica"]["status"], "down", "{ready}");
}
