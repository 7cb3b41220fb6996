//! The origin's click pipeline over real PostgreSQL and ClickHouse: `/internal/clicks`, the
//! batching writer behind the origin's own redirects, the outbox, replay, and exact counts.

mod common;

use common::{custom, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use smo1_core::click::{ClickEvent, VisitorRequest};
use smo1_core::link::{CachedLink, LinkCacheRecord};
use smo1_origin::clickhouse::ClickHouse;
use smo1_origin::clicks::{self, outbox};
use smo1_testkit::{self as testkit, eventually, TcpProxy};
use std::time::Duration;

async fn scalar(ch: &ClickHouse, sql: &str) -> u64 {
    let rows: Vec<Value> = ch
        .query(&format!("SELECT toString(({sql})) AS n"))
        .await
        .unwrap();
    rows[0]["n"].as_str().unwrap().parse().unwrap()
}

async fn distinct_clicks(ch: &ClickHouse) -> u64 {
    scalar(ch, "SELECT uniqExact(click_id) FROM link_clicks_buffer").await
}

async fn record(app: &TestApp, slug: &str) -> LinkCacheRecord {
    app.create_link(custom(slug, "https://example.com/")).await;
    let entry = smo1_origin::links::service::load_and_cache(&app.state, None, slug)
        .await
        .unwrap();
    let CachedLink::Found(record) = entry.link else {
        panic!("link exists")
    };
    std::sync::Arc::unwrap_or_clone(record)
}

fn event(record: &LinkCacheRecord, click_id: &str) -> ClickEvent {
    let request = VisitorRequest {
        method: "GET",
        ip: "198.51.100.1",
        user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ..VisitorRequest::default()
    };
    ClickEvent::build(
        click_id.into(),
        1_764_000_000,
        record,
        "https://example.com/",
        &request,
        "salt",
    )
}

async fn post_clicks(app: &TestApp, body: &Value) -> reqwest::Response {
    app.http
        .post(app.url("/internal/clicks"))
        .bearer_auth(testkit::TEST_INTERNAL_SECRET)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn received_clicks_are_stored_before_they_are_acknowledged() {
    let app = TestApp::start().await;
    let record = record(&app, "recv").await;
    let body = json!([event(&record, "c-1"), event(&record, "c-2")]);

    let response = post_clicks(&app, &body).await;

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"accepted": 2})
    );
    let ch = app.db.clickhouse();
    eventually("replay into ClickHouse", || async {
        distinct_clicks(&ch).await == 2
    })
    .await;
    eventually("an empty outbox", || async {
        outbox::depth(&app.state.db).await.unwrap() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_events_are_refused_without_dropping_the_rest_of_the_batch() {
    let app = TestApp::start().await;
    let record = record(&app, "mixed").await;
    let mut forged = serde_json::to_value(event(&record, "c-2")).unwrap();
    forged["click_id"] = json!("x'); DROP TABLE link_clicks; --");
    let body = json!([event(&record, "c-1"), forged, {"click_id": "c-3"}]);

    let response = post_clicks(&app, &body).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_click_event");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("2 of 3 events rejected (#1: click_id must be"),
        "{message}"
    );
    assert!(message.contains("#2: missing field"), "{message}");
    assert!(message.ends_with("the other 1 were accepted"), "{message}");
    let ch = app.db.clickhouse();
    eventually("the valid click in ClickHouse", || async {
        distinct_clicks(&ch).await == 1
    })
    .await;

    let response = post_clicks(&app, &json!({"not": "an array"})).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_click_event"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_clicks_require_the_shared_secret() {
    let app = TestApp::start().await;
    let response = app
        .http
        .post(app.url("/internal/clicks"))
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn remaking_the_buffer_writes_what_it_holds_to_link_clicks() {
    let app = TestApp::start().await;
    let record = record(&app, "remade").await;
    let ch = app.db.clickhouse();
    let mut rows = Vec::new();
    for id in ["held-1", "held-2", "held-3"] {
        serde_json::to_writer(&mut rows, &event(&record, id)).unwrap();
        rows.push(b'\n');
    }
    ch.insert_json_rows("link_clicks_buffer", &[], rows)
        .await
        .unwrap();

    // Migration 0010 again, as it runs on a database whose buffer holds clicks.
    testkit::rerun_clickhouse_migration(&ch, "0010_link_clicks_buffer_layers").await;

    assert_eq!(
        scalar(&ch, "SELECT uniqExact(click_id) FROM link_clicks").await,
        3
    );
    let engine: Vec<Value> = ch
        .query("SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'link_clicks_buffer'")
        .await
        .unwrap();
    let engine = engine[0]["engine_full"].as_str().unwrap();
    assert!(
        engine.ends_with("link_clicks, 4, 5, 10, 1000, 1000000, 1000000, 100000000)"),
        "{engine}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_deliveries_are_counted_once() {
    let app = TestApp::start().await;
    let record = record(&app, "twice").await;
    let click = event(&record, "dup-1");
    let ch = app.db.clickhouse();
    // The edge's insert reached ClickHouse but its answer was lost, so it retried via the origin,
    // and the origin was asked twice.
    let mut row = serde_json::to_vec(&click).unwrap();
    row.push(b'\n');
    ch.insert_json_rows("link_clicks_buffer", &[], row)
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            post_clicks(&app, &json!([click])).await.status(),
            StatusCode::ACCEPTED
        );
    }
    eventually("both deliveries replayed", || async {
        outbox::depth(&app.state.db).await.unwrap() == 0
            && scalar(&ch, "SELECT count() FROM link_clicks_buffer").await >= 2
    })
    .await;
    ch.execute("OPTIMIZE TABLE link_clicks_buffer")
        .await
        .unwrap();

    assert!(
        scalar(&ch, "SELECT count() FROM link_clicks").await >= 2,
        "duplicates were written"
    );
    assert_eq!(distinct_clicks(&ch).await, 1);
    let daily = format!(
        "SELECT uniqExactMerge(clicks) FROM link_clicks_daily WHERE link_id = '{}'",
        record.link_id
    );
    assert_eq!(
        scalar(&ch, &daily).await,
        1,
        "the daily view counts it once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_redirects_go_through_the_batching_writer() {
    let app = TestApp::start().await;
    app.create_link(custom("direct", "https://example.com/"))
        .await;
    for _ in 0..20 {
        let response = app
            .http
            .get(app.url("/direct"))
            .header("user-agent", "Twitterbot/1.0")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
    }
    let ch = app.db.clickhouse();
    eventually("20 clicks", || async { distinct_clicks(&ch).await == 20 }).await;
    let previews = scalar(
        &ch,
        "SELECT count() FROM link_clicks_buffer WHERE bot_reason = 'link_preview'",
    )
    .await;
    assert_eq!(previews, 20);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("smo1_clicks_enqueued_total 20"),
        "{metrics}"
    );
    assert!(metrics.contains("smo1_clicks_sent_total 20"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn writer_spools_while_clickhouse_is_down_and_replays_when_it_returns() {
    let target = testkit::clickhouse_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = TcpProxy::start(target).await;
    let proxy_url = proxy.url();
    let app = TestApp::start_with(|c| c.data.clickhouse.clickhouse_url = proxy_url).await;
    app.create_link(custom("outage", "https://example.com/"))
        .await;
    proxy.set_up(false);

    for _ in 0..7 {
        assert_eq!(app.get("/outage").await.status(), StatusCode::FOUND);
    }
    eventually("7 clicks in the outbox", || async {
        outbox::depth(&app.state.db).await.unwrap() == 7
    })
    .await;
    let ch = app.db.clickhouse();
    assert_eq!(distinct_clicks(&ch).await, 0);

    proxy.set_up(true);

    eventually("7 clicks in ClickHouse", || async {
        distinct_clicks(&ch).await == 7
    })
    .await;
    eventually("an empty outbox", || async {
        outbox::depth(&app.state.db).await.unwrap() == 0
    })
    .await;
    // The replay pass counts its clicks after it has emptied the outbox.
    let lines = [
        "smo1_clicks_failed_total 7",
        "smo1_clicks_spooled_total 7",
        "smo1_clicks_replayed_total 7",
        "smo1_click_outbox_depth",
    ];
    eventually("the counters of the outage and its replay", || async {
        let metrics = app.metrics().await;
        lines.iter().all(|line| metrics.contains(line))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_flushes_queued_clicks() {
    let app = TestApp::start_with(|c| {
        // Long enough that only the shutdown can have flushed the batch.
        c.clicks.click_flush_interval = Duration::from_secs(600);
    })
    .await;
    app.create_link(custom("bye", "https://example.com/")).await;
    for _ in 0..3 {
        assert_eq!(app.get("/bye").await.status(), StatusCode::FOUND);
    }
    let ch = app.db.clickhouse();
    let TestApp { server, db, .. } = app;

    server.stop().await;

    assert_eq!(distinct_clicks(&ch).await, 3);
    drop(db);
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_all_drains_the_outbox_with_progress() {
    let app = TestApp::start_with(|c| {
        c.clicks.click_replay_interval = Duration::from_secs(600);
    })
    .await;
    let record = record(&app, "later").await;
    let events: Vec<ClickEvent> = (0..12).map(|i| event(&record, &format!("r-{i}"))).collect();
    outbox::store(&app.state.db, &events).await.unwrap();
    let mut seen = Vec::new();

    let total = clicks::replay_all(&app.state.db, &app.state.clickhouse, |n| seen.push(n))
        .await
        .unwrap();

    assert_eq!(total, 12);
    assert_eq!(seen, [12]);
    assert_eq!(outbox::depth(&app.state.db).await.unwrap(), 0);
    assert_eq!(distinct_clicks(&app.db.clickhouse()).await, 12);
}

/// A ClickHouse that accepts connections and never answers: every insert hangs until the
/// client's timeout, as behind a dead load balancer. Keep it alive for the test.
async fn hanging_clickhouse() -> (tokio::net::TcpListener, String) {
    let listener = testkit::bind_local().await;
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.parse().unwrap())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn clicks_past_the_queue_wait_for_a_busy_outbox_instead_of_being_lost() {
    let app = TestApp::start_with(|c| {
        c.data.clickhouse.clickhouse_url = format!("http://127.0.0.1:{}", common::closed_port());
        c.data.database_max_connections = 1;
        c.clicks.click_queue_capacity = 1;
        c.clicks.click_replay_interval = Duration::from_secs(600);
    })
    .await;
    app.create_link(custom("burst", "https://example.com/"))
        .await;
    // The first redirect caches the link (ClickHouse is down: its click goes to the outbox).
    assert_eq!(app.get("/burst").await.status(), StatusCode::FOUND);

    // PostgreSQL is up but its one connection is busy for longer than a pool wait (3 s), while
    // a burst of redirects overflows the queue.
    let busy = app.state.db.acquire().await.unwrap();
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let (http, url) = (app.http.clone(), app.url("/burst"));
        burst.spawn(async move { http.get(url).send().await.unwrap().status() });
    }
    for status in burst.join_all().await {
        assert_eq!(status, StatusCode::FOUND);
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    drop(busy);

    eventually("all 301 clicks in the outbox", || async {
        outbox::depth(&app.state.db).await.unwrap() == 301
    })
    .await;
    let metrics = app.metrics().await;
    assert_eq!(
        metric(&metrics, "smo1_clicks_lost_total"),
        Some(0.0),
        "{metrics}"
    );
    assert!(metric(&metrics, "smo1_clicks_queue_overflow_total").unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_outbox_row_is_quarantined_and_the_rest_replay() {
    let app = TestApp::start_with(|c| {
        c.clicks.click_replay_interval = Duration::from_secs(600);
    })
    .await;
    let record = record(&app, "poison").await;
    outbox::store(&app.state.db, &[event(&record, "p-1")])
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO click_outbox (click_id, payload) VALUES ('p-bad', '{\"click_id\": 5}')",
    )
    .execute(&app.state.db)
    .await
    .unwrap();
    outbox::store(
        &app.state.db,
        &[event(&record, "p-2"), event(&record, "p-3")],
    )
    .await
    .unwrap();

    let total = clicks::replay_all(&app.state.db, &app.state.clickhouse, |_| {})
        .await
        .unwrap();

    assert_eq!(total, 3);
    assert_eq!(outbox::depths(&app.state.db).await.unwrap(), (0, 1));
    assert_eq!(distinct_clicks(&app.db.clickhouse()).await, 3);
    let (click_id, error): (String, String) =
        sqlx::query_as("SELECT click_id, error FROM click_outbox_quarantine")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(click_id, "p-bad");
    assert!(error.contains("invalid type"), "{error}");
    let metrics = app.metrics().await;
    assert_eq!(
        metric(&metrics, "smo1_clicks_quarantined_total"),
        Some(1.0),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_during_a_clickhouse_outage_spools_queued_clicks_within_a_stop_grace_period() {
    let (_hanging, clickhouse_url) = hanging_clickhouse().await;
    let app = TestApp::start_with(|c| {
        c.data.clickhouse.clickhouse_url = clickhouse_url;
        c.clicks.click_batch_size = 1;
        c.clicks.click_flush_interval = Duration::from_millis(10);
        c.clicks.click_replay_interval = Duration::from_secs(600);
    })
    .await;
    app.create_link(custom("stop", "https://example.com/"))
        .await;
    for _ in 0..5 {
        assert_eq!(app.get("/stop").await.status(), StatusCode::FOUND);
    }
    let TestApp { server, state, .. } = app;

    let stopping = tokio::spawn(server.stop());

    // The promise is about the clicks, not how fast: durable before a 10 s grace period ends.
    tokio::time::timeout(Duration::from_secs(10), async {
        while outbox::depth(&state.db).await.unwrap() < 5 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the queued clicks reach the outbox within the grace period");
    stopping.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn events_of_a_newer_and_an_older_peer_are_accepted() {
    let app = TestApp::start().await;
    let record = record(&app, "versions").await;
    let mut newer = serde_json::to_value(event(&record, "v-newer")).unwrap();
    newer["edge_colo"] = json!("FRA");
    newer["consent"] = json!({"analytics": true});
    let older = json!({
        "click_id": "v-older",
        "clicked_at": 1_764_000_000,
        "link_id": record.link_id,
        "user_id": record.user_id,
        "slug": record.slug,
        "destination": "https://example.com/",
    });

    let response = post_clicks(&app, &json!([newer, older])).await;

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"accepted": 2})
    );
    let ch = app.db.clickhouse();
    eventually("both clicks in ClickHouse", || async {
        distinct_clicks(&ch).await == 2
    })
    .await;
    let device = scalar(
        &ch,
        "SELECT count() FROM link_clicks_buffer WHERE click_id = 'v-older' AND device_type = 'other'",
    )
    .await;
    assert_eq!(device, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_writer_enriches_an_origin_click_exactly_as_the_shared_builder_does() {
    let app = TestApp::start().await;
    let record = record(&app, "same").await;
    let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    let response = app
        .http
        .get(app.url("/same?qr=1&ref=x"))
        .header("user-agent", ua)
        .header("referer", "https://www.News.example.org/a")
        .header("cf-connecting-ip", "203.0.113.7")
        .header("cf-ipcountry", "FR")
        .header("cf-region", "IDF")
        .header("cf-ipcity", "Paris")
        .header("sec-purpose", "prefetch")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let ch = app.db.clickhouse();
    eventually("the click", || async { distinct_clicks(&ch).await == 1 }).await;

    let columns: Vec<String> = serde_json::to_value(event(&record, "x"))
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .map(|k| match k.as_str() {
            "clicked_at" => "toUInt32(clicked_at) AS clicked_at".to_owned(),
            k => k.to_owned(),
        })
        .collect();
    let stored: Vec<ClickEvent> = ch
        .query(&format!(
            "SELECT {} FROM link_clicks_buffer",
            columns.join(", ")
        ))
        .await
        .unwrap();
    let stored = &stored[0];
    let request = VisitorRequest {
        method: "GET",
        // The TCP peer: `cf-connecting-ip` is believed only from TRUSTED_PROXIES (none here).
        ip: "127.0.0.1",
        user_agent: ua,
        referrer: Some("https://www.News.example.org/a"),
        country: Some("FR"),
        region: Some("IDF"),
        city: Some("Paris"),
        purpose: Some("prefetch"),
        qr: true,
        rule: None,
    };
    let expected = ClickEvent::build(
        stored.click_id.clone(),
        stored.clicked_at,
        &record,
        &location,
        &request,
        testkit::TEST_VISITOR_SALT,
    );
    assert_eq!(stored, &expected);
    assert_eq!((stored.is_qr, stored.is_bot), (1, 1));
}
