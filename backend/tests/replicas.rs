//! Two origin processes behind HAProxy (Debian's), as `docs/DEPLOY.md` runs N stateless origins:
//! one is stopped under load and no redirect fails and no click is lost; rate limits and
//! dashboard sessions are shared through Redis, whichever replica answers.

use smo1_testkit::{self as testkit, TestDb};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};

#[derive(serde::Deserialize)]
struct Count {
    #[serde(deserialize_with = "smo1_origin::clickhouse::uint64")]
    n: u64,
}

/// `smo1-origin` over the test's databases, with the Redis prefix every replica shares.
fn origin(db: &TestDb, redis_prefix: &str, args: &[&str]) -> Command {
    let mut command = testkit::origin_process_for(env!("CARGO_BIN_EXE_smo1-origin"), db);
    command
        .args(args)
        .env("REDIS_KEY_PREFIX", redis_prefix)
        .env("RATE_LIMIT_FREE_PER_MINUTE", "10")
        .env("CLICK_FLUSH_INTERVAL_MS", "200");
    command
}

async fn run(mut command: Command) -> String {
    let output = command.output().await.expect("runs smo1-origin");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// A running `serve` and the address it logged.
struct Replica {
    child: Child,
    addr: SocketAddr,
}

impl Replica {
    async fn start(mut command: Command) -> Self {
        command.arg("serve");
        let (child, addr) = testkit::spawn_serve(command).await;
        Self { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGTERM, as a process manager stops a replica, and the exit status.
    async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let signalled = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill");
        assert!(signalled.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("stops within 30 s of SIGTERM")
            .expect("exit status")
    }
}

/// HAProxy with the shipped `deploy/haproxy/haproxy.cfg` in front of replicas `a` and `b`.
struct LoadBalancer {
    _child: Child,
    url: String,
}

impl LoadBalancer {
    async fn start(a: &Replica, b: &Replica) -> Self {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            probe.local_addr().expect("addr").port()
        };
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/haproxy/haproxy.cfg");
        let child = Command::new("haproxy")
            .args(["-db", "-f", config])
            .env("HAPROXY_BIND", format!("127.0.0.1:{port}"))
            .env("ORIGIN_1", a.addr.to_string())
            .env("ORIGIN_2", b.addr.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy is installed (apt-get install haproxy; scripts/test does it)");
        let url = format!("http://127.0.0.1:{port}");
        testkit::eventually("HAProxy answers", || async {
            reqwest::get(format!("{url}/healthz"))
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        Self { _child: child, url }
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_stopped_under_load_fails_no_redirect_and_loses_no_click() {
    let db = TestDb::new().await;
    let prefix = testkit::redis_prefix();
    run(origin(&db, &prefix, &["migrate"])).await;
    run(origin(
        &db,
        &prefix,
        &[
            "seed",
            "--slug",
            "ha-demo",
            "--destination",
            "https://example.com/ha",
        ],
    ))
    .await;
    let a = Replica::start(origin(&db, &prefix, &[])).await;
    let b = Replica::start(origin(&db, &prefix, &[])).await;
    let lb = LoadBalancer::start(&a, &b).await;

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
            let url = format!("{}/ha-demo", lb.url);
            tokio::spawn(async move {
                let http = no_redirects();
                while !stop.load(Ordering::Relaxed) {
                    match http.get(&url).send().await {
                        Ok(r) if r.status() == 302 => served.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_stop = served.load(Ordering::Relaxed);
    let status = a.terminate().await;
    assert!(
        status.success(),
        "the stopped replica exits cleanly: {status}"
    );
    let at_stop = served.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }
    let served = served.load(Ordering::Relaxed);
    let failed = failed.load(Ordering::Relaxed);
    assert!(
        before_stop > 0 && served > at_stop,
        "load ran on both sides of the stop: {before_stop} before, {at_stop} at, {served} after"
    );
    assert_eq!(
        failed,
        0,
        "{failed} of {} redirects failed",
        served + failed
    );

    let ch = db.clickhouse();
    testkit::eventually("every redirect's click is in ClickHouse", || async {
        ch.query::<Count>("SELECT uniqExact(click_id) AS n FROM link_clicks_buffer")
            .await
            .is_ok_and(|rows| rows.first().map(|row| row.n) == Some(served))
    })
    .await;
    drop(b);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_and_sessions_hold_across_replicas() {
    let db = TestDb::new().await;
    let prefix = testkit::redis_prefix();
    run(origin(&db, &prefix, &["migrate"])).await;
    let created = run(origin(
        &db,
        &prefix,
        &["admin", "create-user", "--email", "ops@example.com"],
    ))
    .await;
    let key = created
        .split_whitespace()
        .find(|word| word.starts_with("smo1_"))
        .unwrap_or_else(|| panic!("an API key in {created:?}"))
        .to_owned();
    let a = Replica::start(origin(&db, &prefix, &[])).await;
    let b = Replica::start(origin(&db, &prefix, &[])).await;
    let http = no_redirects();

    // RATE_LIMIT_FREE_PER_MINUTE=10, counted once for both replicas.
    for i in 0..10 {
        let replica = if i % 2 == 0 { &a } else { &b };
        let response = http
            .get(format!("{}/v1/links", replica.url()))
            .bearer_auth(&key)
            .send()
            .await
            .expect("list links");
        assert_eq!(response.status(), 200, "request {i} within the limit");
    }
    let over = http
        .get(format!("{}/v1/links", a.url()))
        .bearer_auth(&key)
        .send()
        .await
        .expect("list links");
    assert_eq!(over.status(), 429, "the 11th request, whichever replica");

    let link = run(origin(
        &db,
        &prefix,
        &["admin", "sign-in-link", "--email", "ops@example.com"],
    ))
    .await;
    let token = link
        .trim()
        .rsplit_once("token=")
        .map(|(_, token)| token.to_owned())
        .unwrap_or_else(|| panic!("a sign-in link: {link:?}"));
    let signed_in = http
        .post(format!("{}/v1/auth/session", a.url()))
        .header("origin", a.url())
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .expect("redeem on replica A");
    assert_eq!(signed_in.status(), 200);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    let on_b = http
        .get(format!("{}/v1/auth/session", b.url()))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("session on replica B");
    assert_eq!(on_b.status(), 200, "a session started on A is valid on B");

    let signed_out = http
        .delete(format!("{}/v1/auth/session", b.url()))
        .header("cookie", &cookie)
        .header("origin", b.url())
        .send()
        .await
        .expect("sign out on B");
    assert!(signed_out.status().is_success());
    let after = http
        .get(format!("{}/v1/auth/session", a.url()))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("session on A after sign-out on B");
    assert_eq!(
        after.status(),
        401,
        "signing out on B ends the session on A"
    );
}
