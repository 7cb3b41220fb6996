//! The analytics pages in a real browser over the generated clicks (issue 12, SPEC §8: "the
//! dashboard page with every card visible: ≤ 1 s"): the origin served in-process over the
//! benchmark's databases with the built dashboard, a session made through `Sessions::create`, and
//! `dashboard/bench/analytics-page.mjs` (playwright-core, Debian's Chromium) timing each page
//! from navigation start to the frame in which every card shows its data. Each page is compared
//! with the same page over no clicks, loaded in the same run.
//!
//! Needs the dashboard built (`dashboard/dist`), its `node_modules` and Chromium; checked before
//! any click is generated. `ANALYTICS_BENCH_PAGE=0` leaves this phase out.

use crate::report;
use anyhow::{bail, ensure, Context};
use redis::AsyncCommands;
use smo1_generate::GeneratedLink;
use smo1_origin::analytics::rollup;
use smo1_origin::clickhouse::ClickHouse;
use smo1_testkit as testkit;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What the browser phase needs, found before the long generation starts.
pub struct Browser {
    dashboard: PathBuf,
}

/// `None` when `ANALYTICS_BENCH_PAGE=0`; an error naming the fix when something is missing.
pub fn preflight(repo_root: &Path) -> anyhow::Result<Option<Browser>> {
    if std::env::var("ANALYTICS_BENCH_PAGE").as_deref() == Ok("0") {
        return Ok(None);
    }
    let dashboard = repo_root.join("dashboard");
    ensure!(
        dashboard.join("dist/index.html").is_file(),
        "{} is not built: run `npm ci && npm run build` in dashboard/ (./bench/run does), \
         or set ANALYTICS_BENCH_PAGE=0 to leave the browser phase out",
        dashboard.join("dist").display()
    );
    ensure!(
        dashboard.join("node_modules/playwright-core").is_dir(),
        "dashboard/node_modules has no playwright-core: run `npm ci` in dashboard/"
    );
    let chromium = std::env::var("SMO1_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    ensure!(
        Path::new(&chromium).is_file(),
        "no Chromium at {chromium}: apt-get install -y chromium (or set SMO1_CHROMIUM)"
    );
    let node = Command::new("node").arg("--version").output();
    ensure!(
        node.is_ok_and(|o| o.status.success()),
        "node is not on PATH (the browser phase runs dashboard/bench/analytics-page.mjs)"
    );
    Ok(Some(Browser { dashboard }))
}

/// The node script while it runs: stopped on every path out of the benchmark, a panic included.
/// SIGTERM first, so playwright closes its Chromium (it handles the signal); SIGKILL after 5 s.
struct NodeGuard(Child);

impl Drop for NodeGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One page to time, with the address the browser opens.
struct Page {
    name: String,
    path: String,
    baseline: bool,
}

#[derive(serde::Deserialize)]
struct Output {
    chromium: String,
    runs: usize,
    pages: Vec<Timed>,
}

#[derive(serde::Deserialize)]
struct Timed {
    path: String,
    ms: Vec<f64>,
}

/// Times the analytics page of `popular` and of its owner's account against the same pages
/// over no clicks (a new link of that owner; a new account with one such link), over the
/// local days `start..=end` (the browser runs in UTC). Returns the report section's body.
#[allow(clippy::too_many_arguments)]
pub async fn measure(
    browser: &Browser,
    pool: &PgPool,
    ch: &ClickHouse,
    database_url: &str,
    database: &str,
    popular: &GeneratedLink,
    clicks: u64,
    runs: usize,
    (start, end): (chrono::NaiveDate, chrono::NaiveDate),
    clickhouse_version: &str,
) -> anyhow::Result<String> {
    let empty_link = Uuid::new_v4();
    let empty_user = Uuid::new_v4();
    let empty_users_link = Uuid::new_v4();
    sqlx::query("INSERT INTO users (id, email) VALUES ($1, 'bench-empty@smo1.invalid')")
        .bind(empty_user)
        .execute(pool)
        .await?;
    for (id, user) in [
        (empty_link, popular.user_id),
        (empty_users_link, empty_user),
    ] {
        sqlx::query("INSERT INTO links (id, user_id, uid, destination) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(user)
            .bind(smo1_core::slug::uid_from_random(rand::random()))
            .bind("https://example.com/no-clicks")
            .execute(pool)
            .await?;
    }

    // The origin's pass at startup would roll the last generated day (settled by the real clock)
    // while the browser loads pages; rolled here first, it finds nothing to do.
    rollup::roll_settled_days(ch, chrono::Utc::now()).await?;
    for table in ["link_clicks_rollup_hours", "link_clicks_rollup_values"] {
        ch.execute(&format!("OPTIMIZE TABLE {table} FINAL")).await?;
    }

    let prefix = format!("bench:{}:", Uuid::new_v4().simple());
    let mut config = testkit::origin_config_over(database_url, database, &prefix);
    config.dashboard_dir = browser.dashboard.join("dist");
    let (state, server) = testkit::start_origin(config).await;
    let owner = state.sessions.create(popular.user_id).await?;
    let empty_owner = state.sessions.create(empty_user).await?;

    let query = format!("?range=custom&start={start}&end={end}");
    let link_page = |id: Uuid| format!("/dashboard/links/{id}/analytics{query}");
    let account_page = format!("/dashboard/analytics{query}");
    let owner_pages = [
        Page {
            name: "link with no clicks (baseline)".into(),
            path: link_page(empty_link),
            baseline: true,
        },
        Page {
            name: "most popular link".into(),
            path: link_page(popular.id),
            baseline: false,
        },
        Page {
            name: "its owner's whole account (100 links)".into(),
            path: account_page.clone(),
            baseline: false,
        },
    ];
    let empty_pages = [Page {
        name: "account with no clicks (baseline)".into(),
        path: account_page,
        baseline: true,
    }];
    let result = async {
        let owned = run_script(browser, &server.url(), &owner.id, &owner_pages, runs).await?;
        let empty = run_script(browser, &server.url(), &empty_owner.id, &empty_pages, runs).await?;
        anyhow::Ok((owned, empty))
    }
    .await;
    server.stop().await;
    // The sessions and the rate limiter's counters.
    forget_redis_keys(&prefix).await?;
    let (owned, empty) = result?;

    let median = |ms: &[f64]| {
        let mut ms = ms.to_vec();
        ms.sort_by(f64::total_cmp);
        ms[ms.len() / 2]
    };
    let times = |out: &Output, page: &Page| -> anyhow::Result<Vec<f64>> {
        out.pages
            .iter()
            .find(|t| t.path == page.path)
            .map(|t| t.ms.clone())
            .with_context(|| format!("no times for {} in the script's output", page.path))
    };
    let link_base = median(&times(&owned, &owner_pages[0])?);
    let account_base = median(&times(&empty, &empty_pages[0])?);
    let mut rows = Vec::new();
    for (page, out, base) in [
        (&owner_pages[0], &owned, link_base),
        (&owner_pages[1], &owned, link_base),
        (&empty_pages[0], &empty, account_base),
        (&owner_pages[2], &owned, account_base),
    ] {
        let ms = times(out, page)?;
        let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ms.iter().copied().fold(0.0, f64::max);
        let med = median(&ms);
        let ratio = if page.baseline {
            "1.00× (baseline)".to_owned()
        } else {
            format!("{:.2}×", med / base)
        };
        let target = if med <= 1000.0 { "met" } else { "not met" };
        rows.push(format!(
            "| {} | {med:.0} ms | {min:.0} ms | {max:.0} ms | {ratio} | ≤ 1000 ms: {target} |",
            page.name
        ));
    }
    Ok(format!(
        "{clicks} generated clicks (the data of the ClickHouse vs PostgreSQL table above, generated and rolled up once), \
ClickHouse {clickhouse_version}, PostgreSQL and the origin (in-process, serving `dashboard/dist`) \
on this machine, Chromium {} headless (the browser tests' flags) driven by playwright-core \
(`dashboard/bench/analytics-page.mjs`), load average {}. The range is the last 30 whole \
generated days ({start} to {end}, the browser in UTC: `?range=custom&start=…&end=…`); median, \
fastest and slowest of {} loads after one warm-up, each page compared with the same page over \
no clicks in the same run. SPEC §8's target is absolute: every card visible within 1 s.\n\n\
| analytics page | median | min | max | vs its baseline | SPEC §8 target |\n\
|---|---|---|---|---|---|\n{}\n\n\
Measured from navigation start (`performance.now()` in the page, the page loaded with \
`page.goto` into a warm browser: assets cached, session cookie set) to the first animation \
frame in which every card shows its data: nothing on the page is `aria-busy` (the chart card, \
the nine breakdown cards, recent clicks), the heading names the link, the status line says \
\"Updated\" (every API call of the page answered), the chart's canvas is drawn, every total tile shows \
a number, every breakdown card shows rows or \"No clicks in this range.\", and the recent-clicks \
table shows clicks or that message. Every generated day is rolled up by then (the last one \
too, as the origin's hourly pass would have done: the range lies in the past).",
        owned.chromium,
        report::load_average(),
        owned.runs,
        rows.join("\n"),
    ))
}

async fn forget_redis_keys(prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(testkit::redis_url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor = 0_u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let _: () = conn.del(keys).await?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    Ok(())
}

/// Runs the node script over `pages` with the cookie `session`, and reads its JSON.
async fn run_script(
    browser: &Browser,
    origin: &str,
    session: &str,
    pages: &[Page],
    runs: usize,
) -> anyhow::Result<Output> {
    let out = std::env::temp_dir().join(format!("smo1-analytics-page-{}.json", Uuid::new_v4()));
    let pages_json = serde_json::to_string(
        &pages
            .iter()
            .map(|p| serde_json::json!({ "name": p.name, "path": p.path }))
            .collect::<Vec<_>>(),
    )?;
    let child = Command::new("node")
        .arg("bench/analytics-page.mjs")
        .arg(&out)
        .arg(pages_json)
        .current_dir(&browser.dashboard)
        .env("SMO1_ORIGIN_URL", origin)
        .env("SMO1_SESSION", session)
        .env("SMO1_BENCH_RUNS", runs.to_string())
        .stdin(Stdio::null())
        .spawn()
        .context("start node dashboard/bench/analytics-page.mjs")?;
    let mut guard = NodeGuard(child);
    // Polled, not awaited on a thread: the origin serves the browser from this runtime.
    let deadline = Instant::now() + Duration::from_secs(1800);
    let status = loop {
        if let Some(status) = guard.0.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            bail!("dashboard/bench/analytics-page.mjs took over 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(guard);
    let text = std::fs::read_to_string(&out);
    let _ = std::fs::remove_file(&out);
    ensure!(
        status.success(),
        "dashboard/bench/analytics-page.mjs failed ({status})"
    );
    Ok(serde_json::from_str(
        &text.context("read the script's output")?,
    )?)
}
