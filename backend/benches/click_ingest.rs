//! Click ingest through the origin's batching writer into ClickHouse (SPEC §8: ≥ 100k events/s),
//! against the same rows sent as one raw `INSERT … FORMAT JSONEachRow` in the same run.
//!
//! Run with `./bench/run` (or `cargo bench -p smo1-origin --bench click_ingest`).

#[path = "../../bench/report.rs"]
mod report;

use axum::http::{header, HeaderMap, HeaderValue, Method};
use smo1_core::click::{self, ClickEvent, VisitorRequest};
use smo1_core::link::{LinkCacheRecord, LinkStatus, Protection, RedirectType, Utm};
use smo1_core::visit::Click;
use smo1_origin::clicks::{self, PendingClick};
use smo1_origin::config::DEFAULT_CLICK_BATCH_SIZE;
use smo1_testkit::{self as testkit, TestDb};
use std::net::IpAddr;
use std::time::{Duration, Instant};

const EVENTS: usize = 200_000;
const UAS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
];

fn record() -> LinkCacheRecord {
    LinkCacheRecord {
        link_id: "0b2f6e1c-0000-4000-8000-000000000001".into(),
        user_id: "0b2f6e1c-0000-4000-8000-000000000002".into(),
        slug: "bench".into(),
        destination: "https://example.com/".into(),
        utm: Utm::default(),
        redirect_type: RedirectType::Found,
        protection: Protection::None,
        status: LinkStatus::Active,
        expires_at: None,
        version: 0,
        rules: Vec::new(),
    }
}

fn ip(i: usize) -> IpAddr {
    IpAddr::from([10, 0, ((i / 256) % 256) as u8, (i % 256) as u8])
}

fn clicked_at(i: usize) -> u32 {
    1_764_000_000 + (i as u32 % 86_400)
}

fn events(prefix: &str) -> Vec<ClickEvent> {
    let record = record();
    (0..EVENTS)
        .map(|i| {
            let ip = ip(i).to_string();
            let request = VisitorRequest {
                method: "GET",
                ip: &ip,
                user_agent: UAS[i % UAS.len()],
                country: Some("DE"),
                ..VisitorRequest::default()
            };
            ClickEvent::build(
                format!("{prefix}-{i}"),
                clicked_at(i),
                &record,
                "https://example.com/",
                &request,
                "salt",
            )
        })
        .collect()
}

/// The same clicks as the redirect path leaves them: the writer classifies and enriches them.
fn pending() -> Vec<PendingClick> {
    let record = std::sync::Arc::new(record());
    (0..EVENTS)
        .map(|i| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::USER_AGENT,
                HeaderValue::from_static(UAS[i % UAS.len()]),
            );
            headers.insert(click::HEADER_COUNTRY, HeaderValue::from_static("DE"));
            let click = Click {
                record: &record,
                qr: false,
                rule: None,
            };
            PendingClick::new(
                clicked_at(i),
                click,
                "https://example.com/".into(),
                Method::GET,
                ip(i),
                &headers,
            )
        })
        .collect()
}

async fn distinct(db: &TestDb) -> usize {
    let rows: Vec<serde_json::Value> = db
        .clickhouse()
        .query("SELECT toString(uniqExact(click_id)) AS n FROM link_clicks_buffer")
        .await
        .expect("count");
    rows[0]["n"].as_str().unwrap().parse().unwrap()
}

async fn wait_for(db: &TestDb, n: usize) {
    while distinct(db).await < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() {
    // Baseline: the same rows, pre-serialized, in one raw insert.
    let db = TestDb::new().await;
    let mut body = Vec::new();
    for event in events("raw") {
        serde_json::to_writer(&mut body, &event).unwrap();
        body.push(b'\n');
    }
    let started = Instant::now();
    db.clickhouse()
        .insert_json_rows("link_clicks", &[], body)
        .await
        .expect("raw insert");
    wait_for(&db, EVENTS).await;
    let raw = started.elapsed();
    drop(db);

    // The writer: events enqueued one by one, as the redirect path does.
    let db = TestDb::new().await;
    let mut config = testkit::origin_config(&db, &testkit::redis_prefix());
    config.clicks.click_batch_size = DEFAULT_CLICK_BATCH_SIZE;
    config.clicks.click_flush_interval = Duration::from_millis(200);
    config.clicks.click_queue_capacity = EVENTS;
    let pool = smo1_origin::db::pool(&config.data).expect("pool");
    let sink = clicks::ClickSink::new(pool, &config.clicks);
    let pipeline = clicks::start(&sink, db.clickhouse(), &config.clicks);
    let batch = pending();
    let started = Instant::now();
    for click in batch {
        sink.enqueue(click);
    }
    let enqueued = started.elapsed();
    wait_for(&db, EVENTS).await;
    let writer = started.elapsed();
    pipeline.shutdown().await;

    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64();
    let table = format!(
        "{EVENTS} click events, ClickHouse {version} on this machine (load average {load}).\n\n\
| path | time | events/s | vs raw insert |\n|---|---|---|---|\n\
| raw single `INSERT … JSONEachRow` (baseline) | {raw:.2?} | {raw_rate:.0} | 1.00× |\n\
| origin batching writer (enqueue → classify → ClickHouse, batches of {DEFAULT_CLICK_BATCH_SIZE}, the default) | {writer:.2?} | {writer_rate:.0} | {ratio:.2}× |\n\n\
Enqueueing alone (the redirect path's cost) took {enqueued:.2?} ({enqueue_rate:.0} events/s).\n",
        version = clickhouse_version().await,
        load = report::load_average(),
        raw_rate = rate(raw),
        writer_rate = rate(writer),
        ratio = rate(writer) / rate(raw),
        enqueue_rate = rate(enqueued),
    );
    print!("{table}");
    report::write_section(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
        "Click ingest through the origin writer",
        &table,
    );
}

async fn clickhouse_version() -> String {
    reqwest::get(format!(
        "{}/?query=SELECT%20version()",
        testkit::clickhouse_url()
    ))
    .await
    .and_then(|r| r.error_for_status())
    .expect("clickhouse")
    .text()
    .await
    .expect("version")
    .trim()
    .to_owned()
}
