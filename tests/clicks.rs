//! End to end: every redirect through the worker becomes exactly one enriched ClickHouse row,
//! also when ClickHouse is down for a while.

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use smo1_core::link::Utm;
use smo1_origin::links::service;
use smo1_origin::users::repo;
use support::Stack;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

async fn create(stack: &Stack, slug: &str, utm: Utm) -> smo1_origin::links::Link {
    let user = repo::upsert_user(&stack.state.db, "owner@example.com")
        .await
        .expect("user");
    let input = service::CreateLink {
        custom_slug: Some(slug.into()),
        destination: "https://example.com/landing".into(),
        utm,
        ..Default::default()
    };
    service::create(&stack.state, user, input)
        .await
        .expect("create link")
}

async fn rows(stack: &Stack) -> Vec<Value> {
    stack
        .clickhouse()
        .query("SELECT * FROM link_clicks_buffer ORDER BY clicked_at, click_id")
        .await
        .expect("select clicks")
}

async fn wait_for_clicks(stack: &Stack, n: u64) {
    stack
        .eventually(&format!("{n} clicks in ClickHouse"), || async {
            stack.clicks_in_clickhouse().await >= n
        })
        .await;
    assert_eq!(stack.clicks_in_clickhouse().await, n, "exactly {n} clicks");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_becomes_one_enriched_row() {
    let stack = Stack::start().await;
    let utm = Utm {
        source: Some("newsletter".into()),
        ..Utm::default()
    };
    let link = create(&stack, "spring", utm).await;

    let response = stack
        .http
        .get(format!("{}/spring?qr=1&ref=x", stack.worker_url))
        .header("user-agent", FIREFOX)
        .header("referer", "https://www.news.example.org/story")
        .header("cf-ipcountry", "DE")
        .header("cf-region", "BE")
        .header("cf-ipcity", "Berlin")
        .header("cf-connecting-ip", "203.0.113.7")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location, "https://example.com/landing?utm_source=newsletter&ref=x",
        "the QR marker is not passed on"
    );
    wait_for_clicks(&stack, 1).await;
    let row = &rows(&stack).await[0];
    let expect = [
        ("link_id", link.id.to_string()),
        ("slug", "spring".into()),
        ("destination", location),
        ("country", "DE".into()),
        ("region", "BE".into()),
        ("city", "Berlin".into()),
        ("device_type", "desktop".into()),
        ("browser", "Firefox".into()),
        ("browser_version", "133.0".into()),
        ("os", "Linux".into()),
        ("referrer", "https://www.news.example.org/story".into()),
        ("referrer_domain", "news.example.org".into()),
        ("utm_source", "newsletter".into()),
        ("method", "GET".into()),
        ("bot_reason", "".into()),
    ];
    for (column, value) in expect {
        assert_eq!(row[column], Value::String(value), "{column}");
    }
    assert_eq!(row["is_qr"], 1);
    assert_eq!(row["is_bot"], 0);
    assert_eq!(row["click_id"].as_str().unwrap().len(), 36);
    assert_eq!(row["visitor_id"].as_str().unwrap().len(), 32);
    assert!(
        !row.to_string().contains("203.0.113.7"),
        "no raw IP is stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bots_are_stored_and_labelled() {
    let stack = Stack::start().await;
    create(&stack, "botty", Utm::default()).await;
    let url = format!("{}/botty", stack.worker_url);
    stack
        .http
        .head(&url)
        .header("user-agent", FIREFOX)
        .send()
        .await
        .unwrap();
    for ua in [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ] {
        stack
            .http
            .get(&url)
            .header("user-agent", ua)
            .send()
            .await
            .unwrap();
    }
    stack
        .http
        .get(&url)
        .header("user-agent", FIREFOX)
        .header("sec-purpose", "prefetch")
        .send()
        .await
        .unwrap();

    wait_for_clicks(&stack, 4).await;
    let mut labels: Vec<(String, String, u64)> = rows(&stack)
        .await
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_owned(),
                r["bot_reason"].as_str().unwrap().to_owned(),
                r["is_bot"].as_u64().unwrap(),
            )
        })
        .collect();
    labels.sort();
    assert_eq!(
        labels,
        [
            ("GET".into(), "crawler".into(), 1),
            ("GET".into(), "link_preview".into(), 1),
            ("GET".into(), "prefetch".into(), 1),
            ("HEAD".into(), "head_request".into(), 1),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_down_spools_to_the_outbox_and_replays_exactly() {
    let stack = Stack::start().await;
    create(&stack, "outage", Utm::default()).await;
    stack.clickhouse_proxy.set_up(false);

    for _ in 0..5 {
        let response = stack.get("/outage").await;
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "visitors never wait on ClickHouse"
        );
    }
    stack
        .eventually("5 clicks in the outbox", || async {
            stack.outbox_depth().await == 5
        })
        .await;
    assert_eq!(stack.clicks_in_clickhouse().await, 0);

    stack.clickhouse_proxy.set_up(true);

    wait_for_clicks(&stack, 5).await;
    stack
        .eventually("an empty outbox", || async {
            stack.outbox_depth().await == 0
        })
        .await;
    assert_eq!(stack.clicks_in_clickhouse().await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_and_origin_down_still_redirect() {
    let mut stack = Stack::start().await;
    create(&stack, "cached", Utm::default()).await;
    assert_eq!(stack.get("/cached").await.status(), StatusCode::FOUND);
    wait_for_clicks(&stack, 1).await;

    stack.clickhouse_proxy.set_up(false);
    stack.stop_origin().await;

    let response = stack.get("/cached").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        response.headers()["location"],
        "https://example.com/landing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_without_click_recording_send_nothing() {
    let stack = Stack::start_with(support::Wiring {
        clicks: false,
        ..support::Wiring::default()
    })
    .await;
    create(&stack, "quiet", Utm::default()).await;
    assert_eq!(stack.get("/quiet").await.status(), StatusCode::FOUND);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(stack.clicks_in_clickhouse().await, 0);
    assert_eq!(stack.outbox_depth().await, 0);
}

/// `n` redirects of `path` at once; each must redirect.
async fn redirect_concurrently(stack: &Stack, path: &str, n: usize) {
    let url = format!("{}{path}", stack.worker_url);
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..n {
        requests.spawn(stack.http.get(&url).send());
    }
    while let Some(response) = requests.join_next().await {
        let response = response.expect("request task").expect("request to worker");
        assert_eq!(response.status(), StatusCode::FOUND);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_redirects_share_inserts_and_each_click_is_stored_once() {
    let stack = Stack::start().await;
    create(&stack, "crowd", Utm::default()).await;
    let clicks = 200;

    redirect_concurrently(&stack, "/crowd", clicks).await;

    wait_for_clicks(&stack, clicks as u64).await;
    assert_eq!(
        stack.rows_in_clickhouse().await,
        clicks as u64,
        "no click twice"
    );
    let inserts = stack.edge_inserts.count();
    assert!(
        (1..clicks as u64).contains(&inserts),
        "{clicks} clicks went to ClickHouse in {inserts} inserts"
    );
    assert_eq!(stack.outbox_depth().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_batch_is_sent_without_waiting_for_its_time() {
    let stack = Stack::start_with(support::Wiring {
        vars: vec![
            ("EDGE_CLICK_BATCH_SIZE", "10".into()),
            // Far past the test's patience: only a full batch can be sent.
            ("EDGE_CLICK_FLUSH_MS", "600000".into()),
        ],
        ..support::Wiring::default()
    })
    .await;
    create(&stack, "tens", Utm::default()).await;

    redirect_concurrently(&stack, "/tens", 30).await;

    wait_for_clicks(&stack, 30).await;
    assert_eq!(stack.rows_in_clickhouse().await, 30);
    assert_eq!(stack.edge_inserts.count(), 3, "one insert per 10 clicks");
}

/// A batch far over the origin's usual 64 KB body limit reaches the outbox whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_batch_goes_to_the_outbox_in_one_piece_when_clickhouse_is_down() {
    let stack = Stack::start().await;
    create(&stack, "surge", Utm::default()).await;
    stack.clickhouse_proxy.set_up(false);

    redirect_concurrently(&stack, "/surge", 300).await;

    stack
        .eventually("300 clicks in the outbox", || async {
            stack.outbox_depth().await == 300
        })
        .await;
    assert_eq!(stack.clicks_in_clickhouse().await, 0);
}
