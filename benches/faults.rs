//! Fault injection (docs/RELIABILITY.md, "Fault injection"): sustained redirects through the edge
//! (the built worker in workerd) and through the origin's own `GET /{slug}` while ClickHouse,
//! Redis and PostgreSQL each drop out behind a proxy and come back, and while the origin is
//! killed with SIGKILL and restarted. The load stays on after each fault so recovery is measured
//! too. Per scenario and path it counts redirects served and failed, clicks stored, lost and
//! counted twice, the latency during the fault and how long until full speed again.
//!
//! Run with `./bench/faults` (`FAULT_SECS`, default 60: each outage; `RECOVERY_SECS`, default
//! 60: load after it). It needs the origin binary (`SMO1_ORIGIN_BIN`), which the script builds.

#[path = "../bench/report.rs"]
mod report;
#[path = "../tests/support/mod.rs"]
mod support;

use smo1_testkit::{self as testkit, TcpProxy, TestDb};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{WorkerTargets, Workerd};
use tokio::process::Child;

/// Links per scenario and path: a few hot links, as real traffic has.
const SLUGS: usize = 3;
/// Concurrent clients per path.
const CLIENTS: usize = 4;
const PATHS: [Path; 2] = [Path::Edge, Path::Origin];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Path {
    Edge,
    Origin,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Edge => "edge",
            Path::Origin => "origin",
        }
    }
}

#[derive(Clone, Copy)]
enum Fault {
    None,
    Down(Dependency),
    KillOrigin,
}

#[derive(Clone, Copy)]
enum Dependency {
    ClickHouse,
    Redis,
    Postgres,
}

struct Scenario {
    name: &'static str,
    fault: Fault,
}

const SCENARIOS: [Scenario; 5] = [
    Scenario {
        name: "no fault",
        fault: Fault::None,
    },
    Scenario {
        name: "ClickHouse down",
        fault: Fault::Down(Dependency::ClickHouse),
    },
    Scenario {
        name: "Redis down",
        fault: Fault::Down(Dependency::Redis),
    },
    Scenario {
        name: "PostgreSQL down",
        fault: Fault::Down(Dependency::Postgres),
    },
    Scenario {
        name: "origin SIGKILL + restart",
        fault: Fault::KillOrigin,
    },
];

fn slug(scenario: usize, path: Path, k: usize) -> String {
    format!("{}-{scenario}-{k}", path.name())
}

fn secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// What clients saw for one scenario on one path.
#[derive(Default)]
struct Tally {
    served: AtomicU64,
    failed: Mutex<BTreeMap<String, u64>>,
    /// Milliseconds of each redirect while the fault lasted.
    during_fault: Mutex<Vec<u32>>,
}

/// Shared by the load tasks: which scenario is running, whether its fault is on, the tallies,
/// and redirects served per second per path (recovery is read off these).
struct Load {
    scenario: AtomicUsize,
    faulted: AtomicBool,
    stop: AtomicBool,
    started: Instant,
    tallies: BTreeMap<(usize, Path), Tally>,
    per_second: BTreeMap<Path, Vec<AtomicU64>>,
}

impl Load {
    fn new(seconds: usize) -> Self {
        let mut tallies = BTreeMap::new();
        for scenario in 0..SCENARIOS.len() {
            for path in PATHS {
                tallies.insert((scenario, path), Tally::default());
            }
        }
        Self {
            scenario: AtomicUsize::new(0),
            faulted: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            started: Instant::now(),
            tallies,
            per_second: PATHS
                .into_iter()
                .map(|p| (p, (0..seconds).map(|_| AtomicU64::new(0)).collect()))
                .collect(),
        }
    }

    fn second(&self) -> usize {
        self.started.elapsed().as_secs() as usize
    }

    /// One redirect through `base`, tallied under the current scenario.
    async fn redirect(&self, http: &reqwest::Client, base: &str, path: Path, k: usize) {
        let scenario = self.scenario.load(Ordering::Relaxed);
        let faulted = self.faulted.load(Ordering::Relaxed);
        let tally = &self.tallies[&(scenario, path)];
        let started = Instant::now();
        let outcome = http
            .get(format!("{base}/{}", slug(scenario, path, k)))
            .header(
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
            )
            .send()
            .await;
        match outcome {
            Ok(response) if response.status() == 302 => {
                tally.served.fetch_add(1, Ordering::Relaxed);
                if let Some(count) = self.per_second[&path].get(self.second()) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(response) => {
                *tally
                    .failed
                    .lock()
                    .unwrap()
                    .entry(response.status().as_u16().to_string())
                    .or_default() += 1;
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else {
                    "connection"
                };
                *tally.failed.lock().unwrap().entry(kind.into()).or_default() += 1;
            }
        }
        if faulted {
            tally
                .during_fault
                .lock()
                .unwrap()
                .push(started.elapsed().as_millis() as u32);
        }
    }
}

/// `smo1-origin serve` as its own process (so it can be killed), on a fixed address.
fn origin_process(bin: &str, db: &TestDb, data: &Proxies, prefix: &str, bind: SocketAddr) -> Child {
    let mut command = testkit::origin_process(
        bin,
        &data.database_url(db),
        &data.redis.url().replace("http://", "redis://"),
        &data.clickhouse.url(),
        &db.name,
    );
    command
        .arg("serve")
        .env("ORIGIN_BIND", bind.to_string())
        .env("REDIS_KEY_PREFIX", prefix)
        .env("RATE_LIMIT_BUSINESS_PER_MINUTE", "100000")
        .env("CLICK_REPLAY_INTERVAL_SECS", "2")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command.spawn().expect("start smo1-origin")
}

/// A proxy in front of each data service, the only way anything here reaches them.
struct Proxies {
    postgres: TcpProxy,
    redis: TcpProxy,
    clickhouse: TcpProxy,
}

impl Proxies {
    async fn start() -> Self {
        Self {
            postgres: TcpProxy::start(testkit::socket_addr(&testkit::admin_url())).await,
            redis: TcpProxy::start(testkit::redis_addr()).await,
            clickhouse: TcpProxy::start(testkit::socket_addr(&testkit::clickhouse_url())).await,
        }
    }

    fn database_url(&self, db: &TestDb) -> String {
        format!("postgres://postgres@{}/{}", self.postgres.addr, db.name)
    }

    fn proxy(&self, dependency: Dependency) -> &TcpProxy {
        match dependency {
            Dependency::ClickHouse => &self.clickhouse,
            Dependency::Redis => &self.redis,
            Dependency::Postgres => &self.postgres,
        }
    }
}

async fn wait_for_origin(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{url}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "origin did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates every scenario's links through the API with a business-tier key.
async fn create_links(bin: &str, db: &TestDb, origin_url: &str) {
    let output = testkit::origin_process_for(bin, db)
        .args([
            "admin",
            "create-user",
            "--email",
            "faults@example.com",
            "--tier",
            "business",
        ])
        .output()
        .await
        .expect("create user");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let key = stdout
        .split_whitespace()
        .find(|w| w.starts_with("smo1_"))
        .unwrap_or_else(|| panic!("an API key in {stdout}"));
    let http = reqwest::Client::new();
    for scenario in 0..SCENARIOS.len() {
        for path in PATHS {
            for k in 0..SLUGS {
                let slug = slug(scenario, path, k);
                let response = http
                    .post(format!("{origin_url}/v1/links"))
                    .bearer_auth(key)
                    .json(&serde_json::json!({
                        "destination": format!("https://example.com/{slug}"),
                        "custom_slug": slug,
                    }))
                    .send()
                    .await
                    .expect("create link");
                assert_eq!(
                    response.status(),
                    201,
                    "{slug}: {}",
                    response.text().await.unwrap_or_default()
                );
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct SlugCount {
    slug: String,
    rows: String,
    clicks: String,
}

/// Stored rows and distinct clicks per (scenario, path), once the outbox is empty and the counts
/// have stopped moving.
async fn stored_clicks(db: &TestDb) -> BTreeMap<(usize, Path), (u64, u64)> {
    let ch = db.clickhouse();
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    let read = || async {
        let rows: Vec<SlugCount> = ch
            .query(
                "SELECT slug, toString(count()) AS rows, toString(uniqExact(click_id)) AS clicks \
                 FROM link_clicks_buffer GROUP BY slug ORDER BY slug",
            )
            .await
            .expect("count clicks");
        rows
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = String::new();
    let mut stable_since = Instant::now();
    loop {
        let depth = smo1_origin::clicks::outbox::depth(&pool)
            .await
            .unwrap_or(-1);
        let now: String = read()
            .await
            .iter()
            .map(|r| format!("{}={};", r.slug, r.clicks))
            .collect();
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
        if depth == 0 && stable_since.elapsed() > Duration::from_secs(15) {
            break;
        }
        if Instant::now() > deadline {
            println!("clicks still moving after 180 s (outbox depth {depth}); counting as is");
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut counts = BTreeMap::new();
    for row in read().await {
        let mut parts = row.slug.splitn(3, '-');
        let path = match parts.next() {
            Some("edge") => Path::Edge,
            Some("origin") => Path::Origin,
            _ => continue,
        };
        let Some(scenario) = parts.next().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let entry: &mut (u64, u64) = counts.entry((scenario, path)).or_default();
        entry.0 += row.rows.parse::<u64>().expect("rows");
        entry.1 += row.clicks.parse::<u64>().expect("clicks");
    }
    counts
}

fn percentile(samples: &mut [u32], p: f64) -> Option<u32> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let index = ((samples.len() - 1) as f64 * p).round() as usize;
    Some(samples[index])
}

/// Seconds after `from` until a second serves at least 90% of the median of the 10 s before
/// `fault_start`.
fn recovery(per_second: &[AtomicU64], fault_start: usize, from: usize) -> Option<usize> {
    let mut before: Vec<u64> = per_second[fault_start.saturating_sub(10)..fault_start]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    before.sort_unstable();
    let normal = *before.get(before.len() / 2)?;
    (from..per_second.len())
        .find(|&s| per_second[s].load(Ordering::Relaxed) as f64 >= 0.9 * normal as f64)
        .map(|s| s - from)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let fault_for = secs("FAULT_SECS", 60);
    let recover_for = secs("RECOVERY_SECS", 60);
    let baseline_for = Duration::from_secs(20);
    let bin = std::env::var("SMO1_ORIGIN_BIN").unwrap_or_else(|_| {
        support::repo_root()
            .join("target/debug/smo1-origin")
            .display()
            .to_string()
    });

    let db = TestDb::new().await;
    let prefix = testkit::redis_prefix();
    let proxies = Proxies::start().await;
    let bind: SocketAddr = format!("127.0.0.1:{}", testkit::free_port())
        .parse()
        .expect("addr");
    let origin_url = format!("http://{bind}");
    let mut origin = origin_process(&bin, &db, &proxies, &prefix, bind);
    wait_for_origin(&origin_url).await;
    create_links(&bin, &db, &origin_url).await;

    let bridge =
        testkit::start_bridge_to(&proxies.redis.url().replace("http://", "redis://")).await;
    let workerd = Workerd::start(
        testkit::reserve_port(),
        WorkerTargets {
            upstash_url: &bridge.url(),
            origin_url: &origin_url,
            prefix: &prefix,
            clickhouse_url: &proxies.clickhouse.url(),
            clickhouse_database: &db.name,
            clicks: true,
            vars: &[],
        },
    )
    .await;

    let total = baseline_for + (fault_for + recover_for + Duration::from_secs(5)) * 4;
    let load = Arc::new(Load::new(total.as_secs() as usize + 120));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut clients = Vec::new();
    for path in PATHS {
        let base = match path {
            Path::Edge => workerd.url.clone(),
            Path::Origin => origin_url.clone(),
        };
        for client in 0..CLIENTS {
            let (load, http, base) = (load.clone(), http.clone(), base.clone());
            clients.push(tokio::spawn(async move {
                let mut k = client;
                while !load.stop.load(Ordering::Relaxed) {
                    load.redirect(&http, &base, path, k % SLUGS).await;
                    k += 1;
                }
            }));
        }
    }

    let mut windows = Vec::new();
    for (index, scenario) in SCENARIOS.iter().enumerate() {
        load.scenario.store(index, Ordering::Relaxed);
        println!("{}: {}", load.second(), scenario.name);
        let window = match scenario.fault {
            Fault::None => {
                tokio::time::sleep(baseline_for).await;
                None
            }
            Fault::Down(dependency) => {
                // Every link of this scenario has been requested (so cached) before the fault.
                tokio::time::sleep(Duration::from_secs(5)).await;
                let start = load.second();
                load.faulted.store(true, Ordering::Relaxed);
                proxies.proxy(dependency).set_up(false);
                tokio::time::sleep(fault_for).await;
                proxies.proxy(dependency).set_up(true);
                load.faulted.store(false, Ordering::Relaxed);
                let back = load.second();
                tokio::time::sleep(recover_for).await;
                Some((start, back))
            }
            Fault::KillOrigin => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let start = load.second();
                load.faulted.store(true, Ordering::Relaxed);
                origin.start_kill().expect("SIGKILL the origin");
                origin.wait().await.expect("origin exits");
                origin = origin_process(&bin, &db, &proxies, &prefix, bind);
                wait_for_origin(&origin_url).await;
                load.faulted.store(false, Ordering::Relaxed);
                let back = load.second();
                tokio::time::sleep(recover_for).await;
                Some((start, back))
            }
        };
        windows.push(window);
    }
    load.stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client");
    }
    println!(
        "{}: load stopped; waiting for every click to settle",
        load.second()
    );
    let stored = stored_clicks(&db).await;

    let mut table = String::from(
        "| scenario | path | redirects served | failed | clicks stored | lost | counted twice | latency during fault p50 / p99 | full speed again |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for (index, scenario) in SCENARIOS.iter().enumerate() {
        for path in PATHS {
            let tally = &load.tallies[&(index, path)];
            let served = tally.served.load(Ordering::Relaxed);
            let failed = tally.failed.lock().unwrap();
            let failed_total: u64 = failed.values().sum();
            let failed_text = if failed_total == 0 {
                "0".to_owned()
            } else {
                let kinds: Vec<String> = failed.iter().map(|(k, n)| format!("{n}× {k}")).collect();
                format!("{failed_total} ({})", kinds.join(", "))
            };
            let (rows, clicks) = stored.get(&(index, path)).copied().unwrap_or_default();
            let lost = served.saturating_sub(clicks);
            let twice = clicks.saturating_sub(served);
            let mut samples = tally.during_fault.lock().unwrap().clone();
            let latency = match (
                percentile(&mut samples, 0.5),
                percentile(&mut samples, 0.99),
            ) {
                (Some(p50), Some(p99)) => format!("{p50} / {p99} ms"),
                _ => "–".to_owned(),
            };
            let speed = match windows[index] {
                None => "–".to_owned(),
                Some((fault_start, back)) => {
                    match recovery(&load.per_second[&path], fault_start, back) {
                        Some(s) => format!("{s} s"),
                        None => "not within the run".to_owned(),
                    }
                }
            };
            table.push_str(&format!(
                "| {} | {} | {served} | {failed_text} | {clicks} | {lost} | {twice} | {latency} | {speed} |\n",
                scenario.name,
                path.name(),
            ));
            if rows > clicks {
                println!(
                    "{} / {}: {} click rows delivered more than once (collapsed: counts are over distinct click_id)",
                    scenario.name,
                    path.name(),
                    rows - clicks
                );
            }
        }
    }
    println!("\n{table}");
    let body = format!(
        "Command: `./bench/faults` (each outage {} s, load kept {} s after it; {CLIENTS} clients per path, \
         {SLUGS} cached links per scenario and path). Load average at the end: {}.\n\n{table}\n\
         *Lost* = redirects served minus distinct clicks stored once the outbox is empty; *counted \
         twice* = distinct clicks stored beyond the redirects served. *Full speed again*: seconds \
         from the dependency's return (or the restarted origin's first answer) until a second \
         serves at least 90% of the median of the 10 s before the fault.",
        fault_for.as_secs(),
        recover_for.as_secs(),
        report::load_average()
    );
    report::write_reliability_section(&support::repo_root(), "Fault injection", &body);
    drop(origin);
}
