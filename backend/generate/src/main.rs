//! `smo1-generate`: loads a synthetic click history for demos and benchmarks: users and links in
//! PostgreSQL, clicks straight into ClickHouse. The same --seed and --until give the same rows.

use chrono::{DateTime, Utc};
use clap::Parser;
use smo1_generate::Plan;
use smo1_origin::analytics::sync;
use smo1_origin::clickhouse::ClickHouse;
use smo1_origin::config::DataConfig;
use smo1_origin::db;

#[derive(Parser)]
#[command(
    name = "smo1-generate",
    version,
    about = "SMO1 demo and benchmark click history"
)]
struct Args {
    #[command(flatten)]
    data: DataConfig,
    #[arg(long, default_value_t = 1_000)]
    links: usize,
    #[arg(long, default_value_t = 1_000_000)]
    clicks: u64,
    /// Days of history before --until.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
    days: u32,
    /// Accounts the links are spread over (link i belongs to account i mod users).
    #[arg(long, default_value_t = 10)]
    users: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// End of the history (RFC 3339); default: the next whole UTC hour.
    #[arg(long)]
    until: Option<DateTime<Utc>>,
    /// Rows per ClickHouse insert.
    #[arg(long, default_value_t = 200_000)]
    batch: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    smo1_origin::init_tracing();
    let Args {
        data,
        links,
        clicks,
        days,
        users,
        seed,
        until,
        batch,
    } = Args::parse();
    anyhow::ensure!(
        links >= 1 && (1..=links).contains(&users),
        "--links must be at least 1 and --users 1 to --links"
    );
    anyhow::ensure!(batch >= 1, "--batch must be at least 1");
    let until = until.unwrap_or_else(|| {
        let now = Utc::now().timestamp();
        DateTime::from_timestamp(now - now % 3_600 + 3_600, 0).unwrap_or_default()
    });
    let plan = Plan {
        users,
        links,
        clicks,
        days,
        seed,
        until,
        batch,
    };
    let pool = db::pool(&data)?;
    let ch = ClickHouse::new(data.clickhouse);
    let created = smo1_generate::create_links(&pool, &plan).await?;
    eprintln!("created {users} users and {links} links in PostgreSQL");
    let started = std::time::Instant::now();
    let mut done = 0u64;
    smo1_generate::insert_clicks(&ch, &plan, &created, |count| {
        done += count;
        let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
        eprint!(
            "\rinserted {done}/{clicks} clicks ({:.0}%), {rate:.0}/s   ",
            done as f64 * 100.0 / clicks.max(1) as f64
        );
    })
    .await?;
    eprintln!();
    let synced = sync::sync_total_clicks(&pool, &ch).await?;
    eprintln!(
        "done in {:.1} s; total_clicks synced for {synced} links",
        started.elapsed().as_secs_f64()
    );
    let popular = &created[0];
    println!(
        "most_popular_link={} its_user={}",
        popular.id, popular.user_id
    );
    Ok(())
}
