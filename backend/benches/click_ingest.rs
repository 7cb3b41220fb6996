//! Click ingest through the origin's batching writer into ClickHouse (SPEC §8: ≥ 100k events/s),
//! against the same rows sent as one raw `INSERT … FORMAT JSONEachRow` in the same run; and what
//! a sustained stream of clicks costs ClickHouse behind `link_clicks_buffer` as migrated, against
//! the buffer's first parameters (migration 0003).
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
use std::collections::HashMap;
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

/// `count` clicks as the redirect path leaves them: the writer classifies and enriches them.
fn pending(count: usize) -> Vec<PendingClick> {
    let record = std::sync::Arc::new(record());
    (0..count)
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
    let batch = pending(EVENTS);
    let started = Instant::now();
    for click in batch {
        sink.enqueue(click);
    }
    let enqueued = started.elapsed();
    wait_for(&db, EVENTS).await;
    let writer = started.elapsed();
    pipeline.shutdown().await;

    let first = TestDb::new().await;
    first
        .clickhouse()
        .execute("DROP TABLE link_clicks_buffer")
        .await
        .expect("drop the buffer");
    testkit::rerun_clickhouse_migration(&first.clickhouse(), "0003_link_clicks_buffer").await;
    let before = stream(&first).await;
    drop(first);
    let migrated = TestDb::new().await;
    let now = stream(&migrated).await;
    drop(migrated);

    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64();
    let table = format!(
        "{EVENTS} click events, ClickHouse {version} on this machine (load average {load}).\n\n\
| path | time | events/s | vs raw insert |\n|---|---|---|---|\n\
| raw single `INSERT … JSONEachRow` (baseline) | {raw:.2?} | {raw_rate:.0} | 1.00× |\n\
| origin batching writer (enqueue → classify → ClickHouse, batches of {DEFAULT_CLICK_BATCH_SIZE}, the default) | {writer:.2?} | {writer_rate:.0} | {ratio:.2}× |\n\n\
Enqueueing alone (the redirect path's cost) took {enqueued:.2?} ({enqueue_rate:.0} events/s).\n\n\
A sustained stream: {STREAM_RATE} clicks a second for {STREAM_SECS} s through the writer (batches of \
{DEFAULT_CLICK_BATCH_SIZE}), measured until {SETTLE:?} after the last (the buffer's last flush and the \
merges it starts). ClickHouse CPU is the server process's user + system time.\n\n\
| `link_clicks_buffer` | ClickHouse CPU | parts written | buffer flushes | merge time | clicks stored |\n|---|---|---|---|---|---|\n\
{}{}",
        before.row("migration 0003 (16 layers, flushed from 1 s; baseline)", before.cpu),
        now.row("as migrated (0010: 4 layers, flushed from 5 s)", before.cpu),
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

/// Clicks a second in the sustained stream: about what the origin serves on these 2 cores.
const STREAM_RATE: usize = 40_000;
const STREAM_SECS: usize = 10;
/// How long after the stream its cost is still counted: past the buffer's longest hold (10 s).
const SETTLE: Duration = Duration::from_secs(12);
/// The stream is enqueued in slices this far apart, as a steady flow of redirects would be.
const TICK: Duration = Duration::from_millis(10);

/// What one sustained stream cost ClickHouse.
struct StreamCost {
    /// CPU seconds of the ClickHouse server processes.
    cpu: f64,
    parts: u64,
    flushes: u64,
    merge_ms: u64,
    stored: usize,
}

impl StreamCost {
    /// This cost's row of the table, its CPU as a ratio of `baseline_cpu`.
    fn row(&self, label: &str, baseline_cpu: f64) -> String {
        format!(
            "| {label} | {:.2} s ({:.2}×) | {} | {} | {} ms | {} |\n",
            self.cpu,
            self.cpu / baseline_cpu,
            self.parts,
            self.flushes,
            self.merge_ms,
            self.stored
        )
    }
}

/// Streams [`STREAM_RATE`] clicks a second for [`STREAM_SECS`] through the origin's writer into
/// `db`, and measures ClickHouse from the first click until [`SETTLE`] after the last.
async fn stream(db: &TestDb) -> StreamCost {
    let mut config = testkit::origin_config(db, &testkit::redis_prefix());
    config.clicks.click_batch_size = DEFAULT_CLICK_BATCH_SIZE;
    config.clicks.click_queue_capacity = STREAM_RATE * STREAM_SECS;
    let pool = smo1_origin::db::pool(&config.data).expect("pool");
    let sink = clicks::ClickSink::new(pool, &config.clicks);
    let pipeline = clicks::start(&sink, db.clickhouse(), &config.clicks);
    let mut clicks = pending(STREAM_RATE * STREAM_SECS).into_iter();
    let per_tick = STREAM_RATE * TICK.as_millis() as usize / 1000;
    let (cpu, counters) = (clickhouse_cpu(), server_counters(db).await);
    let mut ticks = tokio::time::interval(TICK);
    for _ in 0..STREAM_SECS * 1000 / TICK.as_millis() as usize {
        ticks.tick().await;
        for click in clicks.by_ref().take(per_tick) {
            sink.enqueue(click);
        }
    }
    tokio::time::sleep(SETTLE).await;
    let after = server_counters(db).await;
    let cpu = clickhouse_cpu() - cpu;
    pipeline.shutdown().await;
    let delta = |event: &str| after.get(event).unwrap_or(&0) - counters.get(event).unwrap_or(&0);
    StreamCost {
        cpu,
        parts: delta("MergeTreeDataWriterBlocks"),
        flushes: delta("StorageBufferFlush"),
        merge_ms: delta("MergesTimeMilliseconds"),
        stored: distinct(db).await,
    }
}

/// The server's running totals of the events [`StreamCost`] reports (one not yet counted is
/// absent).
async fn server_counters(db: &TestDb) -> HashMap<String, u64> {
    #[derive(serde::Deserialize)]
    struct Event {
        event: String,
        #[serde(deserialize_with = "smo1_origin::clickhouse::uint64")]
        value: u64,
    }
    let events: Vec<Event> = db
        .clickhouse()
        .query(
            "SELECT event, value FROM system.events WHERE event IN \
             ('MergeTreeDataWriterBlocks', 'StorageBufferFlush', 'MergesTimeMilliseconds')",
        )
        .await
        .expect("system.events");
    events.into_iter().map(|e| (e.event, e.value)).collect()
}

/// CPU seconds used so far by every ClickHouse server process on this machine (the benchmarks
/// run alone, so that is the one serving them).
fn clickhouse_cpu() -> f64 {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.starts_with("clickhouse"))
        })
        .map(report::cpu_seconds)
        .sum()
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
