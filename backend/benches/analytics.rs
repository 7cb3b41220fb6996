//! The analytics dashboard (30-day daily series + range uniques + top-10 countries) over a
//! generated click history, in ClickHouse with the exact SQL the API issues, against the same
//! aggregation over the same rows in PostgreSQL (SPEC §8; the design claims 10–100×).
//!
//! Run with `./bench/run` (or `cargo bench -p smo1-origin --bench analytics`). Environment:
//! `ANALYTICS_BENCH_CLICKS` (default 10,000,000), `ANALYTICS_BENCH_RUNS` (default 7). Uses its own
//! databases (`smo1_bench_analytics` in PostgreSQL and ClickHouse), dropped at the end.
//!
//! Then, over the same data, the analytics pages in Chromium ([`dashboard_page`];
//! `ANALYTICS_BENCH_PAGE=0` leaves that out).

#[path = "../../bench/report.rs"]
mod report;

#[path = "analytics/dashboard_page.rs"]
mod dashboard_page;

use chrono::{DateTime, Duration};
use smo1_generate::{self as generate, Plan};
use smo1_origin::analytics::queries::{
    self, Dimension, Interval, Range, Raw, Subject, DASHBOARD_DIMENSIONS,
};
use smo1_origin::analytics::rollup;
use smo1_origin::clickhouse::{self, ClickHouse};
use smo1_origin::config::{DataConfig, ReadReplicaConfig};
use smo1_origin::db;
use smo1_testkit as testkit;
use sqlx::postgres::PgPoolCopyExt;
use sqlx::{Connection, Executor, PgConnection, PgPool, Row};
use std::time::Instant;
use uuid::Uuid;

const DB: &str = "smo1_bench_analytics";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The benchmark's PostgreSQL database, next to the test cluster's maintenance database.
fn database_url() -> String {
    let admin_url = testkit::admin_url();
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    format!("{base}/{DB}")
}

async fn fresh_databases() -> anyhow::Result<(PgPool, ClickHouse)> {
    let mut admin = PgConnection::connect(&testkit::admin_url()).await?;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)").as_str())
        .await?;
    admin
        .execute(format!("CREATE DATABASE {DB}").as_str())
        .await?;
    let data = DataConfig {
        database_url: database_url(),
        database_max_connections: 4,
        read_replica: ReadReplicaConfig::default(),
        redis_url: testkit::redis_url(),
        redis_key_prefix: String::new(),
        redis_timeouts: testkit::redis_timeouts(),
        clickhouse: testkit::clickhouse_config(DB),
    };
    let pool = db::pool(&data)?;
    db::migrate(&pool).await?;
    let ch = ClickHouse::new(data.clickhouse);
    ch.execute_global(&format!("DROP DATABASE IF EXISTS {DB}"))
        .await?;
    clickhouse::migrate::run(&ch).await?;
    Ok((pool, ch))
}

async fn drop_databases(pool: PgPool, ch: &ClickHouse) -> anyhow::Result<()> {
    pool.close().await;
    let mut admin = PgConnection::connect(&testkit::admin_url()).await?;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)").as_str())
        .await?;
    ch.execute_global(&format!("DROP DATABASE IF EXISTS {DB}"))
        .await?;
    Ok(())
}

/// The same rows, day by day, from ClickHouse into a PostgreSQL table with covering indexes for
/// both scenarios (PostgreSQL's best case: index-only scans).
async fn copy_to_postgres(pool: &PgPool, ch: &ClickHouse, plan: &Plan) -> anyhow::Result<()> {
    pool.execute(
        "CREATE UNLOGGED TABLE bench_clicks (
             click_id uuid NOT NULL, clicked_at timestamptz NOT NULL, link_id uuid NOT NULL,
             user_id uuid NOT NULL, visitor_id text NOT NULL, country text NOT NULL,
             is_bot boolean NOT NULL)",
    )
    .await?;
    let first_day = (plan.until - Duration::days(i64::from(plan.days) + 1)).date_naive();
    for day in first_day.iter_days().take(plan.days as usize + 2) {
        let tsv = ch
            .execute(&format!(
                "SELECT click_id, concat(toString(clicked_at), '+00'), link_id, user_id, \
                 visitor_id, country, is_bot FROM link_clicks \
                 WHERE toDate(clicked_at) = toDate('{day}') FORMAT TabSeparated"
            ))
            .await?;
        let mut copy = pool.copy_in_raw("COPY bench_clicks FROM STDIN").await?;
        copy.send(tsv.as_bytes()).await?;
        copy.finish().await?;
    }
    pool.execute(
        "CREATE INDEX ON bench_clicks (link_id, clicked_at)
             INCLUDE (click_id, visitor_id, country, is_bot)",
    )
    .await?;
    pool.execute(
        "CREATE INDEX ON bench_clicks (user_id, clicked_at)
             INCLUDE (click_id, visitor_id, country, is_bot)",
    )
    .await?;
    pool.execute("VACUUM ANALYZE bench_clicks").await?;
    Ok(())
}

fn country() -> Dimension {
    Dimension::named("country").expect("country is a dimension")
}

/// One dashboard load exactly as the API's dashboard call answers it: which days are rolled
/// (once), then the rollups for those and the raw tables for the rest, every query at once.
async fn api_dashboard(
    ch: &ClickHouse,
    subject: &Subject,
    range: &Range,
    dimensions: &[Dimension],
) -> anyhow::Result<f64> {
    let started = Instant::now();
    queries::overview(ch, subject, range, Interval::Day, dimensions, 10).await?;
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

/// The three queries of one dashboard load without the rollups, from the raw table.
fn raw_dashboard(subject: &Subject, range: &Range) -> Vec<String> {
    let whole = range.whole();
    vec![
        format!(
            "{} FORMAT JSONEachRow",
            queries::summary_sql(subject, range, Raw::Clicks, &whole)
        ),
        format!(
            "{} FORMAT JSONEachRow",
            queries::timeseries_sql(subject, range, Interval::Day, Raw::Clicks, &whole)
        ),
        format!(
            "{} FORMAT JSON",
            queries::breakdown_sql(subject, range, country(), 10, &[], &[(Raw::Clicks, whole)])
        ),
    ]
}

/// The same three aggregations in PostgreSQL (`$1` the link or user id, `$2`/`$3` the range).
fn postgres_dashboard(column: &str) -> Vec<String> {
    let measures = "count(DISTINCT click_id) FILTER (WHERE NOT is_bot) AS clicks, \
                    count(DISTINCT click_id) FILTER (WHERE is_bot) AS bot_clicks, \
                    count(DISTINCT visitor_id) FILTER (WHERE NOT is_bot) AS visitors";
    let filter = format!("{column} = $1 AND clicked_at >= $2 AND clicked_at < $3");
    vec![
        format!("SELECT {measures} FROM bench_clicks WHERE {filter}"),
        format!(
            "SELECT date_trunc('day', clicked_at, 'UTC') AS day, {measures} FROM bench_clicks \
             WHERE {filter} GROUP BY day ORDER BY day"
        ),
        format!(
            "SELECT country, {measures} FROM bench_clicks WHERE {filter} \
             GROUP BY country ORDER BY clicks DESC, country LIMIT 10"
        ),
    ]
}

async fn time_clickhouse(ch: &ClickHouse, sqls: &[String]) -> anyhow::Result<f64> {
    let started = Instant::now();
    for sql in sqls {
        ch.execute(sql).await?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

async fn time_postgres(
    pool: &PgPool,
    sqls: &[String],
    id: Uuid,
    range: &Range,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    for sql in sqls {
        sqlx::query(sql)
            .bind(id)
            .bind(range.from)
            .bind(range.to)
            .fetch_all(pool)
            .await?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

struct Scenario {
    name: &'static str,
    subject: Subject,
    id: Uuid,
    column: &'static str,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clicks = env_or("ANALYTICS_BENCH_CLICKS", 10_000_000);
    let runs = env_or("ANALYTICS_BENCH_RUNS", 7).max(1) as usize;
    let until = DateTime::parse_from_rfc3339("2026-11-25T00:00:00Z")?.to_utc();
    let plan = Plan {
        users: 100,
        links: 10_000,
        clicks,
        days: 90,
        seed: 1,
        until,
        batch: 200_000,
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Before the long generation: a missing dashboard build fails now, not in ten minutes.
    let browser = dashboard_page::preflight(&root)?;
    let (pool, ch) = fresh_databases().await?;
    let clickhouse_version = ch.execute("SELECT version()").await?.trim().to_owned();

    let started = Instant::now();
    let links = generate::create_links(&pool, &plan).await?;
    let mut done = 0;
    generate::insert_clicks(&ch, &plan, &links, |n| {
        done += n;
        eprint!("\rgenerated {done}/{clicks} clicks");
    })
    .await?;
    eprintln!();
    // Steady state: background merges would get here in time; do it now.
    for table in ["link_clicks", "link_clicks_daily"] {
        ch.execute(&format!("OPTIMIZE TABLE {table} FINAL")).await?;
    }
    let generated = started.elapsed().as_secs_f64();
    // Now is noon on the last generated day: every earlier day is rolled, today is not.
    let now = until - Duration::hours(12);
    let started = Instant::now();
    let rolled_days = rollup::roll_settled_days(&ch, now).await?;
    let rolled = started.elapsed().as_secs_f64();
    for table in ["link_clicks_rollup_hours", "link_clicks_rollup_values"] {
        ch.execute(&format!("OPTIMIZE TABLE {table} FINAL")).await?;
    }
    let started = Instant::now();
    copy_to_postgres(&pool, &ch, &plan).await?;
    let copied = started.elapsed().as_secs_f64();
    eprintln!(
        "generated in {generated:.0} s, {rolled_days} days rolled in {rolled:.0} s, copied to PostgreSQL in {copied:.0} s"
    );

    let popular = &links[0];
    let range = |name: &'static str, to: DateTime<chrono::Utc>| {
        let range = Range {
            from: to - Duration::days(30),
            to,
            tz: chrono_tz::Tz::UTC,
            include_bots: false,
        };
        (name, range)
    };
    let ranges = [
        // The API's default range: 30 days to the next whole hour, today included.
        range("30 days to now", now + Duration::hours(1)),
        range("last 30 whole days", until - Duration::days(1)),
    ];
    let scenarios = [
        Scenario {
            name: "most popular link",
            subject: Subject::Link {
                user_id: popular.user_id,
                link_id: popular.id,
            },
            id: popular.id,
            column: "link_id",
        },
        Scenario {
            name: "its user's whole account (100 links)",
            subject: Subject::Account {
                user_id: popular.user_id,
            },
            id: popular.user_id,
            column: "user_id",
        },
    ];

    let mut rows = Vec::new();
    for (scenario, (range_name, range)) in scenarios
        .iter()
        .flat_map(|s| ranges.iter().map(move |r| (s, r)))
    {
        let raw = raw_dashboard(&scenario.subject, range);
        let pg = postgres_dashboard(scenario.column);
        // Both engines must agree before their times mean anything (ClickHouse as the API
        // answers: rollups included).
        let ch_totals = queries::summary(&ch, &scenario.subject, range).await?;
        let pg_totals = sqlx::query(&pg[0])
            .bind(scenario.id)
            .bind(range.from)
            .bind(range.to)
            .fetch_one(&pool)
            .await?;
        let pg_clicks: i64 = pg_totals.get("clicks");
        let pg_visitors: i64 = pg_totals.get("visitors");
        anyhow::ensure!(
            (ch_totals.clicks, ch_totals.unique_visitors) == (pg_clicks as u64, pg_visitors as u64),
            "ClickHouse {ch_totals:?} and PostgreSQL ({pg_clicks}, {pg_visitors}) disagree"
        );
        let mut times = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for run in 0..=runs {
            let sample = [
                api_dashboard(&ch, &scenario.subject, range, &[country()]).await?,
                api_dashboard(&ch, &scenario.subject, range, &DASHBOARD_DIMENSIONS).await?,
                time_clickhouse(&ch, &raw).await?,
                time_postgres(&pool, &pg, scenario.id, range).await?,
            ];
            // Run 0 warms caches and is not counted.
            if run > 0 {
                for (series, t) in times.iter_mut().zip(sample) {
                    series.push(t);
                }
            }
        }
        let [a, page, r, p] = times.map(median);
        rows.push(format!(
            "| {}, {range_name} ({} clicks) | {a:.1} ms | {page:.1} ms | {r:.1} ms | {p:.1} ms | {:.0}× |",
            scenario.name,
            ch_totals.clicks + ch_totals.bot_clicks,
            p / a
        ));
    }

    let body = format!(
        "{clicks} generated clicks (`smo1-generate`: {} links over {} accounts, 90 days, Zipf \
popularity, seed 1), ClickHouse {clickhouse_version} and PostgreSQL on this machine, load average {}. One \
dashboard load = range totals with unique visitors + 30-day daily series + top-10 countries \
(three queries, bots excluded and counted separately); median of {runs} runs after a warm-up.\n\n\
| dashboard | ClickHouse, as the API answers | the same with the page's 9 breakdowns | ClickHouse, raw table only | PostgreSQL | PostgreSQL ÷ API |\n\
|---|---|---|---|---|---|\n{}\n\n\
\"Now\" is noon on the last generated day: every earlier day is rolled up ({rolled_days} days \
rolled in {rolled:.0} s), today is not. \"As the API answers\": the aggregations of the dashboard \
call (`queries::overview`), which finds which days are rolled once, then reads the rollups for \
those and the raw clicks for the rest (today's 12 hours in the first range, from \
`link_clicks_recent`), all queries at once; \"the page's 9 breakdowns\": the same call with every \
breakdown the analytics page shows (countries, devices, browsers, OS, referrers, UTM source / \
medium / campaign, QR vs link; today's QR-vs-link part from `link_clicks`). \"Raw table only\": the same three aggregations over `link_clicks` \
alone. PostgreSQL had the same rows (copied from ClickHouse) in one table with \
covering indexes on (link_id, clicked_at) and (user_id, clicked_at), vacuumed and analyzed, and \
ran the same aggregations with `count(DISTINCT …)`; both engines' totals were checked equal \
first. Loading took {generated:.0} s into ClickHouse and {copied:.0} s more \
into PostgreSQL.",
        plan.links,
        plan.users,
        report::load_average(),
        rows.join("\n"),
    );
    println!("{body}");
    report::write_section(
        &root,
        "Analytics dashboard: ClickHouse vs PostgreSQL",
        &body,
    );

    let page = match &browser {
        Some(browser) => {
            let last_day = (until - Duration::days(1)).date_naive();
            dashboard_page::measure(
                browser,
                &pool,
                &ch,
                &database_url(),
                DB,
                popular,
                clicks,
                runs,
                (last_day - Duration::days(29), last_day),
                &clickhouse_version,
            )
            .await
        }
        None => Ok(String::new()),
    };
    // Dropped whether or not the browser phase worked.
    drop_databases(pool, &ch).await?;
    let page = page?;
    if browser.is_some() {
        println!("{page}");
        report::write_section(&root, "Analytics page in the browser", &page);
    }
    Ok(())
}
