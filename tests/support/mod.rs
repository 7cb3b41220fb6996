//! End-to-end harness: the built worker (`build/index.js` + `build/index_bg.wasm`) running in a
//! real workerd, wired to an in-process origin and Upstash bridge over the real PostgreSQL and
//! Redis. Every stack has its own database and Redis key prefix, so tests run in parallel.

#![allow(dead_code)] // each test binary uses a different part of this module

use redis::AsyncCommands;
use smo1_origin::clickhouse::ClickHouse;
use smo1_origin::config::OriginConfig;
use smo1_origin::state::AppState;
use smo1_testkit::{self as testkit, RunningServer, TcpProxy, TestDb};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workerd binary wrangler ships (installed by `npm ci`), or `WORKERD_BIN`.
fn workerd_bin() -> PathBuf {
    std::env::var_os("WORKERD_BIN").map_or_else(
        || repo_root().join("node_modules/@cloudflare/workerd-linux-64/bin/workerd"),
        PathBuf::from,
    )
}

/// A port nothing listens on: bound, then released.
pub fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The worker's default `EDGE_LINK_CACHE_MS` (src/config.rs): the longest a change to a link
/// may take to show at the edge.
pub const LINK_CACHE_BOUND: Duration = Duration::from_millis(2000);

/// What the worker is pointed at (`false`: unreachable), whether it records clicks, and other
/// worker variables (name, value) on top of the defaults.
pub struct Wiring {
    pub upstash: bool,
    pub origin: bool,
    pub clicks: bool,
    pub vars: Vec<(&'static str, String)>,
}

impl Wiring {
    /// Every request reads Redis (no per-isolate reuse): for tests of the Redis layer itself.
    pub fn without_link_cache() -> Self {
        Self {
            vars: vec![("EDGE_LINK_CACHE_MS", "0".into())],
            ..Self::default()
        }
    }
}

impl Default for Wiring {
    fn default() -> Self {
        Self {
            upstash: true,
            origin: true,
            clicks: true,
            vars: Vec::new(),
        }
    }
}

pub struct Stack {
    pub state: AppState,
    pub origin: Option<RunningServer>,
    pub worker_url: String,
    pub http: reqwest::Client,
    pub redis: redis::aio::MultiplexedConnection,
    pub prefix: String,
    /// Sits between ClickHouse and both the worker and the origin; switch it off to take
    /// ClickHouse "down" for this stack only.
    pub clickhouse_proxy: TcpProxy,
    /// Sits between Redis and the origin and bridge (the worker reaches Redis through the bridge).
    pub redis_proxy: TcpProxy,
    /// Between the worker and the Upstash bridge: Upstash itself failing or hanging.
    pub upstash_proxy: TcpProxy,
    /// Counts the worker's ClickHouse inserts (it sits in front of `clickhouse_proxy`).
    pub edge_inserts: InsertCounter,
    pub db: TestDb,
    _bridge: RunningServer,
    workerd: Workerd,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(Wiring::default()).await
    }

    pub async fn start_with(wiring: Wiring) -> Self {
        Self::start_configured(wiring, |_| {}).await
    }

    /// Starts the stack after `adjust` has changed the origin's config; `config.bind` is already
    /// the address the origin will serve on (for settings that name it, like `PUBLIC_URL`), and
    /// `config.short_url_base` this stack's worker.
    pub async fn start_configured(wiring: Wiring, adjust: impl FnOnce(&mut OriginConfig)) -> Self {
        let db = TestDb::new().await;
        // Held until workerd starts, so no server started meanwhile can take it.
        let worker_port = testkit::reserve_port();
        let port = worker_port.local_addr().expect("addr").port();
        let prefix = testkit::redis_prefix();
        let clickhouse_proxy =
            TcpProxy::start(testkit::socket_addr(&testkit::clickhouse_url())).await;
        let redis_proxy = TcpProxy::start(testkit::redis_addr()).await;
        let redis_url = format!("redis://{}", redis_proxy.addr);
        let mut config: OriginConfig = testkit::origin_config(&db, &prefix);
        config.data.clickhouse.clickhouse_url = clickhouse_proxy.url();
        config.data.redis_url = redis_url.clone();
        let listener = testkit::bind_local().await;
        config.bind = listener.local_addr().expect("origin address");
        config.short_url_base = format!("http://127.0.0.1:{port}");
        adjust(&mut config);
        let (state, origin) = testkit::start_origin_on(listener, config).await;
        let bridge = testkit::start_bridge_to(&redis_url).await;
        let upstash_proxy = TcpProxy::start(testkit::socket_addr(&bridge.url())).await;
        let upstash_url = if wiring.upstash {
            upstash_proxy.url()
        } else {
            closed_port_url()
        };
        let origin_url = if wiring.origin {
            origin.url()
        } else {
            closed_port_url()
        };
        let edge_inserts = InsertCounter::start(clickhouse_proxy.addr).await;
        let workerd = Workerd::start(
            worker_port,
            WorkerTargets {
                upstash_url: &upstash_url,
                origin_url: &origin_url,
                prefix: &prefix,
                clickhouse_url: &edge_inserts.url(),
                clickhouse_database: &db.name,
                clicks: wiring.clicks,
                vars: &wiring.vars,
            },
        )
        .await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let redis = redis::Client::open(testkit::redis_url())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to Redis");
        Self {
            state,
            origin: Some(origin),
            worker_url: workerd.url.clone(),
            http,
            redis,
            prefix,
            clickhouse_proxy,
            redis_proxy,
            upstash_proxy,
            edge_inserts,
            db,
            _bridge: bridge,
            workerd,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.worker_url))
            .send()
            .await
            .expect("request to worker")
    }

    pub async fn head(&self, path: &str) -> reqwest::Response {
        self.http
            .head(format!("{}{path}", self.worker_url))
            .send()
            .await
            .expect("request to worker")
    }

    /// The workerd process serving the worker (benchmarks read its CPU time).
    pub fn workerd_pid(&self) -> u32 {
        self.workerd.pid()
    }

    /// The raw `link:{slug}` value in Redis.
    pub async fn cached(&self, slug: &str) -> Option<String> {
        let mut redis = self.redis.clone();
        redis
            .get(smo1_core::link::cache_key(
                &self.prefix,
                smo1_core::domain::DEFAULT_DOMAIN,
                slug,
            ))
            .await
            .expect("redis get")
    }

    pub async fn cache_ttl(&self, slug: &str) -> i64 {
        let mut redis = self.redis.clone();
        redis
            .ttl(smo1_core::link::cache_key(
                &self.prefix,
                smo1_core::domain::DEFAULT_DOMAIN,
                slug,
            ))
            .await
            .expect("redis ttl")
    }

    pub async fn put_cache(&self, slug: &str, raw: &str) {
        let mut redis = self.redis.clone();
        redis
            .set_ex::<_, _, ()>(
                smo1_core::link::cache_key(&self.prefix, smo1_core::domain::DEFAULT_DOMAIN, slug),
                raw,
                300,
            )
            .await
            .expect("redis set");
    }

    /// Puts `raw` as `slug`'s entry under a version newer than any the origin takes from
    /// PostgreSQL, so no refill replaces it: a value only Redis holds, which shows that an answer
    /// came from Redis. Written straight to Redis (not through `redis_proxy`).
    pub async fn pin_cache(&self, slug: &str, raw: &str) {
        // Above any number the test database's sequence hands out, and exact in Lua's doubles
        // (the refill script compares versions as numbers).
        static VERSIONS: AtomicI64 = AtomicI64::new(1 << 52);
        let direct = smo1_origin::cache::Redis::new(
            &testkit::redis_url(),
            self.prefix.clone(),
            testkit::redis_timeouts(),
        )
        .expect("redis url");
        let version = VERSIONS.fetch_add(1, Ordering::Relaxed);
        let written = direct
            .put(
                &direct.link_slot(None, slug),
                raw,
                Duration::from_secs(300),
                version,
            )
            .await
            .expect("redis write");
        assert!(written, "no version is newer than a pinned one");
    }

    /// This test's ClickHouse database, reached directly (not through the proxy).
    pub fn clickhouse(&self) -> ClickHouse {
        self.db.clickhouse()
    }

    /// Distinct clicks in ClickHouse (buffered or not).
    pub async fn clicks_in_clickhouse(&self) -> u64 {
        self.count_clicks("uniqExact(click_id)").await
    }

    /// Rows in ClickHouse (buffered or not), a click stored twice counted twice.
    pub async fn rows_in_clickhouse(&self) -> u64 {
        self.count_clicks("count()").await
    }

    async fn count_clicks(&self, aggregate: &str) -> u64 {
        #[derive(serde::Deserialize)]
        struct Count {
            n: String,
        }
        let rows: Vec<Count> = self
            .clickhouse()
            .query(&format!(
                "SELECT toString({aggregate}) AS n FROM link_clicks_buffer"
            ))
            .await
            .expect("count clicks");
        rows[0].n.parse().expect("number")
    }

    pub async fn outbox_depth(&self) -> i64 {
        smo1_origin::clicks::outbox::depth(&self.state.db)
            .await
            .expect("outbox depth")
    }

    /// Waits up to 15 s for `condition` to hold.
    pub async fn eventually<F, Fut>(&self, what: &str, condition: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        testkit::eventually(what, condition).await;
    }

    /// Waits until `condition` holds and fails unless it did within [`LINK_CACHE_BOUND`] plus a
    /// margin for the requests themselves; the promise "a change shows at the edge within the
    /// bound". Returns how long it took.
    pub async fn within_link_cache_bound<F, Fut>(&self, what: &str, mut condition: F) -> Duration
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let margin = Duration::from_millis(1500);
        let start = Instant::now();
        loop {
            if condition().await {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < LINK_CACHE_BOUND + margin,
                "{what}: not visible at the edge within {LINK_CACHE_BOUND:?} + {margin:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the origin: later cache misses cannot be answered.
    pub async fn stop_origin(&mut self) {
        if let Some(origin) = self.origin.take() {
            origin.stop().await;
        }
    }
}

async fn wait_until_serving(http: &reqwest::Client, url: &str, workerd: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = workerd.try_wait() {
            panic!("workerd exited with {status} (run with TEST_LOG=1 to see why)");
        }
        if let Ok(response) = http.get(url).send().await {
            if response.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "workerd did not serve {url} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where a worker sends its lookups and clicks, and whether it records clicks.
pub struct WorkerTargets<'a> {
    pub upstash_url: &'a str,
    pub origin_url: &'a str,
    pub prefix: &'a str,
    pub clickhouse_url: &'a str,
    pub clickhouse_database: &'a str,
    pub clicks: bool,
    /// Further bindings (e.g. `EDGE_LINK_CACHE_MS`).
    pub vars: &'a [(&'static str, String)],
}

/// `workerd serve config`. With `WORKERD_INSPECTOR_ADDR` set (e.g. `127.0.0.1:9229`), workerd
/// also listens there for the V8 inspector, so a CPU profile of the worker can be taken while a
/// test or benchmark runs (`bench/profile-worker.mjs`; one workerd at a time).
fn serve(config: &Path) -> Command {
    let mut command = Command::new(workerd_bin());
    command.arg("serve").arg(config);
    if let Some(addr) = std::env::var_os("WORKERD_INSPECTOR_ADDR") {
        command.arg("--inspector-addr").arg(addr);
    }
    command
}

/// The built worker in a real workerd on a reserved port, killed on drop.
pub struct Workerd {
    pub url: String,
    _child: Child,
    _dir: TempDir,
}

impl Workerd {
    /// The process id (benchmarks read its CPU time).
    pub fn pid(&self) -> u32 {
        self._child.id().expect("workerd is running")
    }

    /// Starts workerd on `reserved`'s port, releasing it just before.
    pub async fn start(reserved: TcpListener, targets: WorkerTargets<'_>) -> Self {
        let port = reserved.local_addr().expect("reserved port").port();
        let dir = TempDir::new();
        let config_path = dir.path.join("workerd.capnp");
        std::fs::write(
            &config_path,
            workerd_config(&WorkerBindings {
                dir: &dir.path,
                port,
                upstash_url: targets.upstash_url,
                origin_url: targets.origin_url,
                prefix: targets.prefix,
                clickhouse_url: targets.clickhouse_url,
                clickhouse_database: targets.clickhouse_database,
                clicks: targets.clicks,
                vars: targets.vars,
            }),
        )
        .expect("write workerd config");
        drop(reserved);
        let mut child = serve(&config_path)
            .arg("--verbose")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start workerd {:?}: {e}", workerd_bin()));
        let url = format!("http://127.0.0.1:{port}");
        wait_until_serving(&reqwest::Client::new(), &url, &mut child).await;
        Self {
            url,
            _child: child,
            _dir: dir,
        }
    }
}

/// The capnp config: the built worker plus a network service that may reach 127.0.0.1.
struct WorkerBindings<'a> {
    dir: &'a Path,
    port: u16,
    upstash_url: &'a str,
    origin_url: &'a str,
    prefix: &'a str,
    clickhouse_url: &'a str,
    clickhouse_database: &'a str,
    clicks: bool,
    vars: &'a [(&'static str, String)],
}

/// The capnp config: the built worker plus a network service that may reach 127.0.0.1. workerd
/// embeds only paths relative to the config, so the modules are copied beside it.
fn workerd_config(b: &WorkerBindings<'_>) -> String {
    let build = repo_root().join("build");
    let module = |name: &'static str| -> &'static str {
        let path = build.join(name);
        std::fs::copy(&path, b.dir.join(name)).unwrap_or_else(|e| {
            panic!(
                "{} is missing ({e}): build the worker first (scripts/test does)",
                path.display()
            )
        });
        name
    };
    format!(
        r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .edge),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "main")],
);
const edge :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed "{js}"),
    (name = "index_bg.wasm", wasm = embed "{wasm}"),
  ],
  compatibilityDate = "2026-04-01",
  globalOutbound = "internet",
  bindings = [
    (name = "UPSTASH_REDIS_REST_URL", text = "{upstash_url}"),
    (name = "UPSTASH_REDIS_REST_TOKEN", text = "{token}"),
    (name = "ORIGIN_URL", text = "{origin_url}"),
    (name = "INTERNAL_SECRET", text = "{secret}"),
    (name = "CACHE_KEY_PREFIX", text = "{prefix}"),
    (name = "SHORT_DOMAINS", text = "sho.rt,localhost"),
    (name = "CLICKS_ENABLED", text = "{clicks}"),
    (name = "CLICKHOUSE_URL", text = "{clickhouse_url}"),
    (name = "CLICKHOUSE_DATABASE", text = "{clickhouse_database}"),
    (name = "CLICKHOUSE_USER", text = "default"),
    (name = "VISITOR_SALT_SECRET", text = "{salt}"),
    (name = "UNLOCK_COOKIE_SECRET", text = "{unlock_secret}"),{vars}
  ],
);
"#,
        port = b.port,
        upstash_url = b.upstash_url,
        origin_url = b.origin_url,
        prefix = b.prefix,
        clicks = b.clicks,
        clickhouse_url = b.clickhouse_url,
        clickhouse_database = b.clickhouse_database,
        js = module("index.js"),
        wasm = module("index_bg.wasm"),
        token = testkit::TEST_UPSTASH_TOKEN,
        secret = testkit::TEST_INTERNAL_SECRET,
        salt = testkit::TEST_VISITOR_SALT,
        unlock_secret = testkit::TEST_UNLOCK_COOKIE_SECRET,
        vars = b
            .vars
            .iter()
            .map(|(name, value)| format!("\n    (name = \"{name}\", text = \"{value}\"),"))
            .collect::<String>(),
    )
}

/// A TCP relay in front of ClickHouse that counts the HTTP inserts passing through it (the
/// worker's batches), however the client reuses connections.
pub struct InsertCounter {
    pub addr: std::net::SocketAddr,
    inserts: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl InsertCounter {
    /// What every insert's request line carries (src/clicks.rs).
    const MARK: &'static [u8] = b"query=INSERT%20INTO";

    pub async fn start(target: std::net::SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind insert counter");
        let addr = listener.local_addr().expect("insert counter addr");
        let inserts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = inserts.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = inbound.into_split();
                    let (mut server_read, mut server_write) = outbound.into_split();
                    let upstream = async {
                        // The tail of the previous read, so a mark split across reads counts.
                        let mut carry: Vec<u8> = Vec::new();
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = client_read.read(&mut buf).await {
                            if n == 0 || server_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            carry.extend_from_slice(&buf[..n]);
                            let marks = carry
                                .windows(Self::MARK.len())
                                .filter(|w| *w == Self::MARK)
                                .count();
                            counted.fetch_add(marks as u64, Ordering::Relaxed);
                            let keep = Self::MARK.len() - 1;
                            carry.drain(..carry.len().saturating_sub(keep));
                        }
                        let _ = server_write.shutdown().await;
                    };
                    let downstream = async {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                        let _ = client_write.shutdown().await;
                    };
                    tokio::join!(upstream, downstream);
                });
            }
        });
        Self {
            addr,
            inserts,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Inserts seen so far.
    pub fn count(&self) -> u64 {
        self.inserts.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for InsertCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A scratch directory removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("smo1-e2e-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new(&self.path));
    }
}

/// A workerd running one JavaScript module (benchmark baselines), killed on drop.
pub struct JsWorker {
    pub url: String,
    _workerd: Child,
    _dir: TempDir,
}

impl JsWorker {
    pub fn workerd_pid(&self) -> u32 {
        self._workerd.id().expect("workerd is running")
    }

    pub async fn start(script: &str) -> Self {
        let dir = TempDir::new();
        std::fs::write(dir.path.join("worker.js"), script).expect("write script");
        let port = testkit::free_port();
        let config = format!(
            r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .js)],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "main")],
);
const js :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = "2026-04-01",
);
"#
        );
        let config_path = dir.path.join("workerd.capnp");
        std::fs::write(&config_path, config).expect("write workerd config");
        let mut workerd = serve(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start workerd");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        wait_until_serving_any(&http, &url, &mut workerd).await;
        Self {
            url,
            _workerd: workerd,
            _dir: dir,
        }
    }
}

async fn wait_until_serving_any(http: &reqwest::Client, url: &str, workerd: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(url).send().await.is_err() {
        if let Ok(Some(status)) = workerd.try_wait() {
            panic!("workerd exited with {status}");
        }
        assert!(
            Instant::now() < deadline,
            "workerd did not serve {url} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
