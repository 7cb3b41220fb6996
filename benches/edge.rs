//! Redirect throughput (SPEC §8), measured with wrk: the built Rust/wasm worker in workerd
//! directly (click recording on and off) against a trivial JavaScript redirect worker in the same
//! workerd, and the origin's own redirect against a bare nginx `return 302`, all in one run.
//! For the edge also: workerd's CPU time per redirect, the worker's gzipped size, the ClickHouse
//! inserts the clicks took, whether every redirect's click arrived (distinct click ids), and the
//! cost of targeting rules (a link with 5 rules, none matching, against the same link without).
//!
//! Run with `./bench/run` (needs `wrk` and `nginx`; the script installs them).

#[path = "../bench/report.rs"]
mod report;
#[path = "../tests/support/mod.rs"]
mod support;

use smo1_core::targeting::Os;
use smo1_core::useragent::DeviceType;
use smo1_origin::config::{DEFAULT_CLICK_BATCH_SIZE, DEFAULT_CLICK_QUEUE_CAPACITY};
use smo1_origin::links::rules::RuleInput;
use smo1_origin::links::service;
use smo1_origin::users::repo;
use smo1_testkit::RunningServer;
use std::process::Command;
use std::time::Duration;
use support::{JsWorker, Stack, Wiring};

const DURATION: &str = "10s";
/// Connections of the edge rows.
const CONNECTIONS: &str = "32";
/// Connections of the origin rows (SPEC §8 states the origin's p99 at 64).
const ORIGIN_CONNECTIONS: &str = "64";
/// Rounds of every row: a row's figures are the median of its rounds, so one noisy run cannot
/// settle a target at the line.
const ROUNDS: usize = 3;

const TRIVIAL_JS: &str = r#"export default {
  fetch() {
    return new Response(null, { status: 302, headers: { location: "https://example.com/" } });
  },
};
"#;

struct Run {
    name: &'static str,
    requests_per_sec: f64,
    requests: u64,
    p99_ms: f64,
    /// CPU seconds of the serving workerd per request (edge rows only).
    cpu_per_request: Option<f64>,
}

/// What a desktop browser in the US sends: the targeting rows' visitor, whom none of
/// [`five_rules`] matches.
const BROWSER_HEADERS: &[&str] = &[
    "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Accept-Language: en-US,en;q=0.9,de;q=0.5",
    "CF-IPCountry: US",
];

/// Five rules that all fail for [`BROWSER_HEADERS`], so each redirect evaluates every one
/// (the first OS condition classifies the User-Agent).
fn five_rules() -> Vec<RuleInput> {
    let rule = |destination: &str| RuleInput {
        destination: destination.into(),
        ..RuleInput::default()
    };
    vec![
        RuleInput {
            os: vec![Os::Ios],
            ..rule("https://apps.apple.com/app/id1")
        },
        RuleInput {
            os: vec![Os::Android],
            ..rule("https://play.google.com/store/apps/details?id=x")
        },
        RuleInput {
            countries: vec!["DE".into(), "AT".into(), "CH".into()],
            ..rule("https://example.de/")
        },
        RuleInput {
            languages: vec!["fr".into()],
            ..rule("https://example.fr/")
        },
        RuleInput {
            devices: vec![DeviceType::Tablet],
            os: vec![Os::Windows],
            ..rule("https://example.com/tablet")
        },
    ]
}

/// The machine's idle and total CPU time so far (`/proc/stat`, in ticks).
fn cpu_idle_and_total() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .expect("/proc/stat starts with the cpu line")
        .split_whitespace()
        .map(|n| n.parse().expect("ticks"))
        .collect();
    // user nice system idle iowait irq softirq steal …
    (ticks[3] + ticks[4], ticks.iter().take(8).sum())
}

/// Waits (at most 30 s) until the machine is quiet: at least 80% idle over half a second. A row
/// leaves work behind (the origin's writer enriching and inserting its clicks, ClickHouse merging
/// them), and the next row would pay for it.
fn settle() {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let (idle_before, total_before) = cpu_idle_and_total();
        std::thread::sleep(Duration::from_millis(500));
        let (idle, total) = cpu_idle_and_total();
        if (idle - idle_before) as f64 >= 0.8 * (total - total_before).max(1) as f64 {
            return;
        }
    }
}

/// What one row measures.
struct Target<'a> {
    name: &'static str,
    url: String,
    /// Sent with every request.
    headers: &'a [&'a str],
    connections: &'static str,
    /// The serving workerd, whose CPU time per request the row reports (edge rows).
    workerd: Option<u32>,
}

impl<'a> Target<'a> {
    /// An edge row: [`CONNECTIONS`], the CPU time of workerd `pid` per request.
    fn edge(name: &'static str, url: String, pid: u32) -> Self {
        Self {
            name,
            url,
            headers: &[],
            connections: CONNECTIONS,
            workerd: Some(pid),
        }
    }

    /// An origin row: [`ORIGIN_CONNECTIONS`].
    fn origin(name: &'static str, url: String) -> Self {
        Self {
            name,
            url,
            headers: &[],
            connections: ORIGIN_CONNECTIONS,
            workerd: None,
        }
    }

    fn sending(self, headers: &'a [&'a str]) -> Self {
        Self { headers, ..self }
    }

    /// One wrk run, once the machine has settled from the one before.
    fn measure(&self) -> Run {
        settle();
        let before = self.workerd.map(report::cpu_seconds);
        let mut run = wrk_with(self.name, &self.url, self.headers, self.connections);
        if let (Some(pid), Some(before)) = (self.workerd, before) {
            run.cpu_per_request = Some((report::cpu_seconds(pid) - before) / run.requests as f64);
        }
        run
    }
}

fn wrk_with(name: &'static str, url: &str, headers: &[&str], connections: &str) -> Run {
    let mut args = vec!["-t2", "-c", connections, "-d", DURATION, "--latency"];
    for header in headers {
        args.extend(["-H", header]);
    }
    args.push(url);
    let output = Command::new("wrk")
        .args(args)
        .output()
        .expect("run wrk (bench/run installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk output:\n{text}"))
    };
    let non_3xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map(str::trim);
    assert!(
        non_3xx.is_none(),
        "{name}: errors during the run: {non_3xx:?}"
    );
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk output:\n{text}"));
    let run = Run {
        name,
        requests_per_sec: field("Requests/sec:").parse().expect("number"),
        requests,
        p99_ms: milliseconds(&field("99%")),
        cpu_per_request: None,
    };
    println!(
        "{:<55} {:>10.0} req/s  p99 {:.2} ms",
        run.name, run.requests_per_sec, run.p99_ms
    );
    run
}

/// A wrk latency ("850.00us", "5.23ms", "1.02s") in milliseconds.
fn milliseconds(latency: &str) -> f64 {
    let (number, unit) = latency.split_at(
        latency
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or_else(|| panic!("no unit in latency {latency:?}")),
    );
    let value: f64 = number.parse().expect("latency number");
    match unit {
        "us" => value / 1e3,
        "ms" => value,
        "s" => value * 1e3,
        "m" => value * 60e3,
        _ => panic!("unknown latency unit in {latency:?}"),
    }
}

/// A bare nginx answering every request with `return 302` (SPEC §8's origin baseline).
struct Nginx {
    url: String,
    process: tokio::process::Child,
    dir: std::path::PathBuf,
}

impl Nginx {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!("smo1-nginx-{port}"));
        std::fs::create_dir_all(&dir).expect("nginx dir");
        let config = format!(
            "worker_processes auto;\ndaemon off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
events {{ worker_connections 1024; }}\n\
http {{ access_log off; server {{ listen 127.0.0.1:{port}; return 302 https://example.com/; }} }}\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), config).expect("nginx config");
        let process = tokio::process::Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .kill_on_drop(true)
            .spawn()
            .expect("start nginx (bench/run installs it)");
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if reqwest::get(&url).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { url, process, dir }
    }
}

impl Drop for Nginx {
    /// SIGTERM to the master, which stops its workers before it exits (SIGKILL would leave the
    /// workers running, orphaned); SIGKILL only if it is still there after 5 s.
    fn drop(&mut self) {
        if let Some(pid) = self.process.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            for _ in 0..100 {
                if matches!(self.process.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.process.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn stack_with_link(wiring: Wiring) -> Stack {
    stack_with_rules(wiring, Vec::new()).await
}

async fn stack_with_rules(wiring: Wiring, rules: Vec<RuleInput>) -> Stack {
    // The origin's click queue and batches as deployed, not the tests' small ones.
    let stack = Stack::start_configured(wiring, |config| {
        config.clicks.click_batch_size = DEFAULT_CLICK_BATCH_SIZE;
        config.clicks.click_queue_capacity = DEFAULT_CLICK_QUEUE_CAPACITY;
    })
    .await;
    let user = repo::upsert_user(&stack.state.db, "bench@example.com")
        .await
        .expect("user");
    let input = service::CreateLink {
        custom_slug: Some("bench".into()),
        destination: "https://example.com/".into(),
        rules,
        ..Default::default()
    };
    service::create(&stack.state, user, input)
        .await
        .expect("link");
    // Warm the cache: every measured request is a Redis hit (or an isolate hit).
    assert_eq!(stack.get("/bench").await.status().as_u16(), 302);
    stack
}

/// Distinct click ids in ClickHouse once the count stops moving (the last batches and the
/// Buffer table's flush), waiting at most a minute.
async fn settled_clicks(stack: &Stack) -> u64 {
    let mut last = stack.clicks_in_clickhouse().await;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = stack.clicks_in_clickhouse().await;
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// "none lost", or how many of `redirects` have no click id among `clicks`.
fn lost(redirects: u64, clicks: u64) -> String {
    if clicks >= redirects {
        "none lost".to_owned()
    } else {
        format!("**{} lost**", redirects - clicks)
    }
}

fn gzipped_bundle_bytes() -> u64 {
    let wasm = support::repo_root().join("build/index_bg.wasm");
    let output = Command::new("gzip")
        .arg("-9c")
        .arg(&wasm)
        .output()
        .expect("run gzip");
    assert!(output.status.success(), "gzip {}", wasm.display());
    output.stdout.len() as u64
}

/// The origin's framework alone (axum on hyper, as `smo1-origin` serves), answering every request
/// with a fixed 302: how much of the origin's distance to nginx is the framework's own.
async fn bare_axum() -> RunningServer {
    let router = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::FOUND,
            [(axum::http::header::LOCATION, "https://example.com/")],
        )
    });
    RunningServer::start(router).await
}

/// The middle value (of an odd count; the upper middle of an even one).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A row of the table: its runs, one per round, and its baseline's runs of the same rounds.
struct Row<'a> {
    runs: &'a [Run],
    baseline: &'a [Run],
}

impl Row<'_> {
    /// Each round's `of(run) / of(baseline run)`.
    fn ratios(&self, of: impl Fn(&Run) -> Option<f64>) -> Option<Vec<f64>> {
        self.runs
            .iter()
            .zip(self.baseline)
            .map(|(run, base)| Some(of(run)? / of(base)?))
            .collect()
    }

    /// The throughput ratios' [`spread`].
    fn throughput(&self) -> String {
        spread(
            self.ratios(|r| Some(r.requests_per_sec))
                .expect("every run has a rate"),
        )
    }

    fn markdown(&self) -> String {
        let of_runs = |of: fn(&Run) -> f64| median(self.runs.iter().map(of).collect());
        let cpu = match (
            self.runs
                .iter()
                .map(|r| r.cpu_per_request)
                .collect::<Option<Vec<_>>>(),
            self.ratios(|r| r.cpu_per_request),
        ) {
            (Some(cpu), Some(ratios)) => {
                format!("{:.0} µs ({})", median(cpu) * 1e6, spread(ratios))
            }
            _ => "—".into(),
        };
        format!(
            "| {} | {:.0} | {:.1} ms | {} | {cpu} |\n",
            self.runs[0].name,
            of_runs(|r| r.requests_per_sec),
            of_runs(|r| r.p99_ms),
            self.throughput(),
        )
    }
}

/// "median× (lowest–highest)" of one ratio over the rounds.
fn spread(ratios: Vec<f64>) -> String {
    let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let high = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2}× ({low:.2}–{high:.2})", median(ratios))
}

#[tokio::main]
async fn main() {
    let load_before = report::load_average();
    // Everything measured is up before the first round and stays up until the last, so the
    // rounds alternate between the rows and a moment's noise falls on each alike.
    let nginx = Nginx::start().await;
    let framework = bare_axum().await;
    let baseline = JsWorker::start(TRIVIAL_JS).await;
    // Worker clicks off; its origin (same stack) serves the origin row, so every click in this
    // stack's ClickHouse is one of the origin's.
    let quiet = stack_with_link(Wiring {
        clicks: false,
        ..Wiring::default()
    })
    .await;
    let every_read = stack_with_link(Wiring::without_link_cache()).await;
    let recording = stack_with_link(Wiring::default()).await;
    let plain = stack_with_link(Wiring::default()).await;
    let ruled = stack_with_rules(Wiring::default(), five_rules()).await;
    let origin_url = quiet.origin.as_ref().expect("origin").url();

    let worker = |name, stack: &Stack| {
        Target::edge(
            name,
            format!("{}/bench", stack.worker_url),
            stack.workerd_pid(),
        )
    };
    let targets = [
        Target::origin(
            "nginx `return 302` (origin baseline)",
            format!("{}/x", nginx.url),
        ),
        Target::origin(
            "axum `return 302` (the origin's framework alone)",
            format!("{}/x", framework.url()),
        ),
        Target::origin(
            "origin `GET /{slug}`, hot link, click enqueued",
            format!("{origin_url}/bench"),
        ),
        Target::edge(
            "trivial JS redirect worker (baseline)",
            format!("{}/x", baseline.url),
            baseline.workerd_pid(),
        ),
        worker(
            "Rust/wasm worker, hot link (isolate cache), clicks off",
            &quiet,
        ),
        worker(
            "Rust/wasm worker, hot link (isolate cache), clicks on",
            &recording,
        ),
        worker(
            "Rust/wasm worker, Redis hit every request, clicks on",
            &every_read,
        ),
        // Targeting: the same hot link and visitor, without rules and with five that all fail.
        worker(
            "Rust/wasm worker, hot link, browser headers, clicks on",
            &plain,
        )
        .sending(BROWSER_HEADERS),
        worker(
            "the same link with 5 targeting rules, none matching",
            &ruled,
        )
        .sending(BROWSER_HEADERS),
    ];
    let mut runs: Vec<Vec<Run>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 1..=ROUNDS {
        println!("round {round} of {ROUNDS}");
        for (target, runs) in targets.iter().zip(&mut runs) {
            runs.push(target.measure());
        }
    }
    let [bare, axum_bare, origin, js, off, on, redis, untargeted, targeted]: [Vec<Run>; 9] =
        runs.try_into().ok().expect("a row per target");
    drop((nginx, framework, baseline, every_read, plain, ruled));
    let total = |runs: &[Run]| runs.iter().map(|r| r.requests).sum::<u64>();
    // Every redirect's click, the warm-up's included, once the last batches are in.
    let redirects = total(&on) + 1;
    let clicks = settled_clicks(&recording).await;
    let inserts = recording.edge_inserts.count();
    drop(recording);
    let origin_redirects = total(&origin);
    let origin_clicks = settled_clicks(&quiet).await;
    drop(quiet);

    let mut table = format!(
        "wrk -t2 -d{DURATION} on the same 2-core machine as workerd, the origin, Redis and \
ClickHouse (so the numbers include their CPU), {CONNECTIONS} connections for the edge rows and \
{ORIGIN_CONNECTIONS} for the origin rows; {ROUNDS} rounds, each measuring every row in turn, \
each run starting once the machine is at least 80% idle (the clicks a row leaves to write are \
not the next row's cost; at most 30 s). req/s and p99 are the median of the rounds. Each row is compared with its baseline in the same \
round, and the table gives the median of those ratios with the lowest and highest: the \
edge with the trivial JS worker in the same workerd (SPEC §8: ≥ 0.5×), the origin with bare \
nginx (SPEC §8: ≥ 0.5×, p99 ≤ 5 ms at 64 connections). \"Hot link\": the isolate (or the \
origin's memory, `ORIGIN_CACHE_STALENESS_MS`) reuses the link record for 2 s, so Redis is read \
once per 2 s; \"Redis hit every request\" turns that off (`EDGE_LINK_CACHE_MS=0`). \
workerd CPU per redirect: the serving workerd process's user + system CPU over the run ÷ requests \
(SPEC target ≤ 2× the trivial worker's).\n\n\
| target | req/s | p99 | vs its baseline | workerd CPU per redirect |\n|---|---|---|---|---|\n"
    );
    for (runs, baseline) in [
        (&js, &js),
        (&off, &js),
        (&on, &js),
        (&redis, &js),
        (&untargeted, &js),
        (&targeted, &js),
        (&bare, &bare),
        (&axum_bare, &bare),
        (&origin, &bare),
    ] {
        table.push_str(&Row { runs, baseline }.markdown());
    }
    let seconds: f64 = DURATION
        .trim_end_matches('s')
        .parse()
        .expect("duration in s");
    table.push_str(&format!(
        "\nThe origin against its framework alone: {}. Clicks on: {redirects} redirects, {clicks} \
distinct click ids in ClickHouse ({}), sent in {inserts} inserts from the one isolate ({:.2} per \
100 ms; target ≤ 1). Origin: {origin_redirects} redirects, {origin_clicks} distinct click ids \
({}). Worker bundle: {} KB gzipped (`build/index_bg.wasm`, gzip -9; target ≤ 400 KB).\n",
        Row {
            runs: &origin,
            baseline: &axum_bare
        }
        .throughput(),
        lost(redirects, clicks),
        inserts as f64 / (ROUNDS as f64 * seconds * 10.0),
        lost(origin_redirects, origin_clicks),
        gzipped_bundle_bytes() / 1000,
    ));
    table.push_str(&format!(
        "\nClick recording on vs off at the edge: {}. Load average before / after the run: \
{load_before} / {}.\n",
        Row {
            runs: &on,
            baseline: &off
        }
        .throughput(),
        report::load_average()
    ));
    let rules = Row {
        runs: &targeted,
        baseline: &untargeted,
    };
    table.push_str(&format!(
        "\nTargeting rules (a desktop browser in the US, `User-Agent`, `Accept-Language` and \
`CF-IPCountry` sent by wrk; 5 rules on country, language, OS and device, none matching, so each \
redirect evaluates all of them): throughput {} the same link without rules, workerd CPU per \
redirect {}.\n",
        rules.throughput(),
        rules
            .ratios(|r| r.cpu_per_request)
            .map_or("—".into(), spread),
    ));
    report::write_section(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "Edge redirect throughput",
        &table,
    );
}
