//! Redirect throughput (SPEC §8), measured with wrk: the built Rust/wasm worker in workerd
//! directly (click recording on and off) against a trivial JavaScript redirect worker in the same
//! workerd, and the origin's own redirect against a bare nginx `return 302`, all in one run.
//!
//! Run with `./bench/run` (needs `wrk` and `nginx`; the script installs them).

#[path = "../bench/report.rs"]
mod report;
#[path = "../tests/support/mod.rs"]
mod support;

use smo1_origin::links::service;
use smo1_origin::users::repo;
use std::process::Command;
use std::time::Duration;
use support::{JsWorker, Stack, Wiring};

const DURATION: &str = "10s";
const CONNECTIONS: &str = "32";

const TRIVIAL_JS: &str = r#"export default {
  fetch() {
    return new Response(null, { status: 302, headers: { location: "https://example.com/" } });
  },
};
"#;

struct Run {
    name: &'static str,
    requests_per_sec: f64,
    p99: String,
}

fn wrk(name: &'static str, url: &str) -> Run {
    let output = Command::new("wrk")
        .args(["-t2", "-c", CONNECTIONS, "-d", DURATION, "--latency", url])
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
    let run = Run {
        name,
        requests_per_sec: field("Requests/sec:").parse().expect("number"),
        p99: field("99%"),
    };
    println!(
        "{:<55} {:>10.0} req/s  p99 {}",
        run.name, run.requests_per_sec, run.p99
    );
    run
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
    fn drop(&mut self) {
        let _ = self.process.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn stack_with_link(clicks: bool) -> Stack {
    let stack = Stack::start_with(Wiring {
        clicks,
        ..Wiring::default()
    })
    .await;
    let user = repo::upsert_user(&stack.state.db, "bench@example.com")
        .await
        .expect("user");
    let input = service::CreateLink {
        custom_slug: Some("bench".into()),
        destination: "https://example.com/".into(),
        ..Default::default()
    };
    service::create(&stack.state, user, input)
        .await
        .expect("link");
    // Warm the cache: every measured request is a Redis hit.
    assert_eq!(stack.get("/bench").await.status().as_u16(), 302);
    stack
}

#[tokio::main]
async fn main() {
    let load_before = report::load_average();
    let nginx = Nginx::start().await;
    let bare = wrk(
        "nginx `return 302` (origin baseline)",
        &format!("{}/x", nginx.url),
    );
    drop(nginx);

    let baseline = JsWorker::start(TRIVIAL_JS).await;
    let js = wrk(
        "trivial JS redirect worker (baseline)",
        &format!("{}/x", baseline.url),
    );
    drop(baseline);

    let quiet = stack_with_link(false).await;
    let off = wrk(
        "Rust/wasm worker, Redis hit, clicks off",
        &format!("{}/bench", quiet.worker_url),
    );
    drop(quiet);

    let recording = stack_with_link(true).await;
    let on = wrk(
        "Rust/wasm worker, Redis hit, clicks on",
        &format!("{}/bench", recording.worker_url),
    );
    let origin_url = recording.origin.as_ref().expect("origin").url();
    let origin = wrk(
        "origin `GET /{slug}`, Redis hit, click enqueued",
        &format!("{origin_url}/bench"),
    );
    drop(recording);

    let mut table = format!(
        "wrk -t2 -c{CONNECTIONS} -d{DURATION} on the same 2-core machine as workerd, the origin, \
Redis and ClickHouse (so the numbers include their CPU). Each row is compared with its baseline \
in this run: the edge with the trivial JS worker in the same workerd (SPEC §8: ≥ 0.5×), the \
origin with bare nginx (SPEC §8: ≥ 0.5×, p99 ≤ 5 ms at 64 connections; this run uses \
{CONNECTIONS}).\n\n\
| target | req/s | p99 | vs its baseline |\n|---|---|---|---|\n"
    );
    for (run, baseline) in [
        (&js, &js),
        (&off, &js),
        (&on, &js),
        (&bare, &bare),
        (&origin, &bare),
    ] {
        table.push_str(&format!(
            "| {} | {:.0} | {} | {:.2}× |\n",
            run.name,
            run.requests_per_sec,
            run.p99,
            run.requests_per_sec / baseline.requests_per_sec
        ));
    }
    table.push_str(&format!(
        "\nClick recording on vs off at the edge: {:.2}×. Load average before / after the run: \
{load_before} / {}.\n",
        on.requests_per_sec / off.requests_per_sec,
        report::load_average()
    ));
    report::write_section(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "Edge redirect throughput",
        &table,
    );
}
