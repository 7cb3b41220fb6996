//! Test support shared by the origin's integration tests and the end-to-end tests: a fresh
//! PostgreSQL database per test (cloned from a template migrated once) and a ClickHouse database of
//! the same name (migrated), a Redis key prefix per test, the origin and bridge served in-process on
//! free ports, a TCP proxy that can cut a dependency off in several ways ([`TcpProxy`]), maildev as an SMTP server with an
//! inbox ([`MailDev`]), an authoritative DNS server for domain verification ([`DnsServer`]), a
//! local ClickHouse cluster with ZooKeeper ([`ClickHouseCluster`]), and a PostgreSQL primary with
//! a streaming replica ([`Replication`]).
//!
//! `TEST_DATABASE_URL` names the server's maintenance database
//! (default `postgres://postgres@127.0.0.1:5432/postgres`); `TEST_REDIS_URL` the Redis server.

pub mod cluster;
mod dns;
mod maildev;
mod replication;

pub use cluster::ClickHouseCluster;
pub use dns::DnsServer;
pub use maildev::MailDev;
pub use replication::Replication;

use smo1_origin::app::Background;
use smo1_origin::clickhouse::ClickHouse;
use smo1_origin::config::{
    BillingConfig, ClickConfig, ClickHouseConfig, ClientAddressConfig, DataConfig, DomainConfig,
    OriginConfig, RateLimitConfig, ReadReplicaConfig, RedisTimeouts, Secret, SignInConfig,
    UnlockConfig,
};
use smo1_origin::http::{self, bridge};
use smo1_origin::state::AppState;
use sqlx::{Connection, Executor, PgConnection};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const TEST_INTERNAL_SECRET: &str = "test-internal-secret";
pub const TEST_METRICS_TOKEN: &str = "test-metrics-token";
pub const TEST_UPSTASH_TOKEN: &str = "test-upstash-token";
pub const TEST_VISITOR_SALT: &str = "test-visitor-salt";
pub const TEST_POLAR_SECRET: &str = "polar_whs_test_secret";
pub const TEST_UNLOCK_COOKIE_SECRET: &str = "test-unlock-cookie-secret";

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The test Redis's address, for a [`TcpProxy`] in front of it.
pub fn redis_addr() -> SocketAddr {
    socket_addr(&redis_url())
}

/// The address a service URL (`redis://`, `postgres://…`, `http://`) connects to.
pub fn socket_addr(url: &str) -> SocketAddr {
    let parsed = reqwest::Url::parse(url).expect("service URL");
    let host = parsed.host_str().expect("host");
    let port = parsed.port_or_known_default().expect("port");
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .expect("resolves")
        .next()
        .expect("an address")
}

pub fn clickhouse_url() -> String {
    std::env::var("TEST_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

fn database_url(name: &str) -> String {
    let admin = admin_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// Template name derived from the migrations, so a new migration gets a new template.
fn template_name() -> String {
    let fingerprint = smo1_origin::db::MIGRATOR
        .iter()
        .flat_map(|m| m.checksum.iter().copied())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("smo1_tpl_{fingerprint:016x}")
}

/// A test's own databases: PostgreSQL and ClickHouse, both named `name`, dropped on drop.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let template = template_name();
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .expect("connect to the PostgreSQL maintenance database");
        // Serialise template creation across test processes.
        admin
            .execute("SELECT pg_advisory_lock(727271)")
            .await
            .expect("advisory lock");
        let ready: Option<bool> =
            sqlx::query_scalar("SELECT datistemplate FROM pg_database WHERE datname = $1")
                .bind(&template)
                .fetch_optional(&mut admin)
                .await
                .expect("look up template");
        if ready != Some(true) {
            if ready.is_some() {
                // A run died while migrating it.
                admin
                    .execute(format!("DROP DATABASE \"{template}\" WITH (FORCE)").as_str())
                    .await
                    .expect("drop broken template");
            }
            admin
                .execute(format!("CREATE DATABASE \"{template}\"").as_str())
                .await
                .expect("create template");
            let mut conn = PgConnection::connect(&database_url(&template))
                .await
                .expect("connect to template");
            smo1_origin::db::MIGRATOR
                .run(&mut conn)
                .await
                .expect("migrate template");
            conn.close().await.expect("close template connection");
            admin
                .execute(format!("ALTER DATABASE \"{template}\" IS_TEMPLATE true").as_str())
                .await
                .expect("mark template");
        }
        admin
            .execute("SELECT pg_advisory_unlock(727271)")
            .await
            .expect("advisory unlock");
        // The creation time in the name lets `scripts/test` drop only databases of killed runs.
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let name = format!("smo1_test_{created}_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"").as_str())
            .await
            .expect("create test database");
        let ch = test_clickhouse(&name);
        smo1_origin::clickhouse::migrate::run(&ch)
            .await
            .expect("create and migrate the test's ClickHouse database");
        Self {
            url: database_url(&name),
            name,
        }
    }

    /// A client for this test's ClickHouse database.
    pub fn clickhouse(&self) -> ClickHouse {
        test_clickhouse(&self.name)
    }
}

pub fn clickhouse_config(database: &str) -> ClickHouseConfig {
    ClickHouseConfig {
        clickhouse_url: clickhouse_url(),
        clickhouse_user: "default".into(),
        clickhouse_password: Secret::new(""),
        clickhouse_database: database.to_owned(),
        clickhouse_async_insert: false,
        clickhouse_cluster: String::new(),
    }
}

fn test_clickhouse(database: &str) -> ClickHouse {
    ClickHouse::new(clickhouse_config(database))
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async context; a short-lived runtime on its own thread does the I/O.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                    let _ = admin
                        .execute(
                            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str(),
                        )
                        .await;
                }
                let _ = test_clickhouse(&name)
                    .execute_global(&format!("DROP DATABASE IF EXISTS {name}"))
                    .await;
            });
        })
        .join();
    }
}

/// `GET url` as an operator: with the `METRICS_TOKEN` bearer (`/metrics`, `/readyz` details).
pub async fn operator_get(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(TEST_METRICS_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// A fresh Redis key prefix, so parallel tests never see each other's keys.
pub fn redis_prefix() -> String {
    format!("test:{}:", uuid::Uuid::new_v4().simple())
}

/// The `smo1-origin` binary at `binary` (a test's `env!("CARGO_BIN_EXE_smo1-origin")`) with
/// only the environment a test gives it: these data services, the test secrets (and metrics token), a fresh Redis
/// prefix, port 0, JSON logs at info on stdout; output piped, killed on drop.
pub fn origin_process(
    binary: &str,
    database_url: &str,
    redis_url: &str,
    clickhouse_url: &str,
    clickhouse_database: &str,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    command
        .env_clear()
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "json")
        .env("DATABASE_URL", database_url)
        .env("REDIS_URL", redis_url)
        .env("REDIS_KEY_PREFIX", redis_prefix())
        .env("CLICKHOUSE_URL", clickhouse_url)
        .env("CLICKHOUSE_DATABASE", clickhouse_database)
        .env("ORIGIN_BIND", "127.0.0.1:0")
        .env("INTERNAL_SECRET", TEST_INTERNAL_SECRET)
        .env("VISITOR_SALT_SECRET", TEST_VISITOR_SALT)
        .env("UNLOCK_COOKIE_SECRET", TEST_UNLOCK_COOKIE_SECRET)
        .env("METRICS_TOKEN", TEST_METRICS_TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// [`origin_process`] over `db` and the test Redis and ClickHouse servers.
pub fn origin_process_for(binary: &str, db: &TestDb) -> tokio::process::Command {
    origin_process(binary, &db.url, &redis_url(), &clickhouse_url(), &db.name)
}

/// Spawns `command` (an [`origin_process`] with its `serve` arguments) and returns it with the
/// address from its "origin listening" log line; the rest of its log is drained.
pub async fn spawn_serve(
    mut command: tokio::process::Command,
) -> (tokio::process::Child, SocketAddr) {
    use tokio::io::AsyncBufReadExt;
    let mut child = command.spawn().expect("starts serve");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("reads the log") {
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if event["fields"]["message"] == "origin listening" {
                return event["fields"]["addr"].as_str().map(str::to_owned);
            }
        }
        None
    })
    .await
    .expect("serve logs its address within 30 s")
    .expect("an address in the log");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr.parse().expect("socket address"))
}

/// Origin config pointing at `db` and the test Redis / ClickHouse, on port 0.
pub fn origin_config(db: &TestDb, redis_prefix: &str) -> OriginConfig {
    origin_config_over(&db.url, &db.name, redis_prefix)
}

/// [`origin_config`] over databases the caller made and drops itself (the benchmarks'):
/// PostgreSQL at `database_url` and the ClickHouse database `clickhouse_database`.
pub fn origin_config_over(
    database_url: &str,
    clickhouse_database: &str,
    redis_prefix: &str,
) -> OriginConfig {
    OriginConfig {
        data: DataConfig {
            database_url: database_url.to_owned(),
            database_max_connections: 5,
            read_replica: ReadReplicaConfig::default(),
            redis_url: redis_url(),
            redis_key_prefix: redis_prefix.to_owned(),
            redis_timeouts: redis_timeouts(),
            clickhouse: clickhouse_config(clickhouse_database),
        },
        bind: "127.0.0.1:0".parse().expect("address"),
        // The repository's build (scripts/test builds it); tests of serving it use their own.
        dashboard_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../dashboard/dist")),
        internal_secret: Secret::new(TEST_INTERNAL_SECRET),
        metrics_token: Secret::new(TEST_METRICS_TOKEN),
        short_domains: vec!["sho.rt".into(), "localhost".into()],
        short_url_base: "https://sho.rt".into(),
        link_cache_ttl: Duration::from_secs(300),
        negative_cache_ttl: Duration::from_secs(30),
        origin_cache_staleness: Duration::from_secs(2),
        clicks: ClickConfig {
            visitor_salt_secret: Secret::new(TEST_VISITOR_SALT),
            click_batch_size: 1_000,
            click_flush_interval: Duration::from_millis(100),
            click_queue_capacity: 10_000,
            click_replay_interval: Duration::from_millis(200),
        },
        rate_limits: RateLimitConfig::default(),
        total_clicks_sync_interval: Duration::from_millis(200),
        // Tests roll days explicitly (analytics::rollup::roll_settled_days) to compare answers
        // before and after; the pass at startup finds nothing to roll.
        analytics_rollup_interval: Duration::from_secs(3600),
        billing: BillingConfig {
            polar_webhook_secret: Secret::new(TEST_POLAR_SECRET),
            polar_product_tiers: "prod_pro=pro,prod_business=business"
                .parse()
                .expect("product tiers"),
        },
        unlock: UnlockConfig {
            unlock_cookie_secret: Secret::new(TEST_UNLOCK_COOKIE_SECRET),
            unlock_cookie_ttl: Duration::from_secs(3600),
            unlock_verify_concurrency: 2,
            unlock_max_failures_per_link: 30,
        },
        sign_in: SignInConfig::default(),
        client_address: ClientAddressConfig::default(),
        // Domain tests point `dns_resolver` at their own DNS server.
        domains: DomainConfig {
            dns_resolver: None,
            dns_timeout: Duration::from_millis(500),
            domain_recheck_interval: Duration::from_secs(3600),
            domain_failures_before_unverified: 3,
        },
    }
}

/// Redis time limits of tests: generous (a loaded test machine must not open the circuit breaker
/// by accident), with a short breaker so recovery tests are quick.
pub fn redis_timeouts() -> RedisTimeouts {
    RedisTimeouts {
        redis_timeout: Duration::from_secs(2),
        redis_retry_after: Duration::from_millis(500),
    }
}

/// Waits up to 15 s for `condition` to hold, checking every 50 ms; panics naming `what`.
pub async fn eventually<F, Fut>(what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    within(Duration::from_secs(15), what, condition).await;
}

/// Waits up to `bound` for `condition` to hold, checking every 50 ms; panics naming `what`.
/// For promised bounds (e.g. "used again within 5 s"), never for speed.
pub async fn within<F, Fut>(bound: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + bound;
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server running in this process until dropped.
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    pub async fn start(router: axum::Router) -> Self {
        Self::start_on(bind_local().await, router)
    }

    /// Serves `router` on a listener bound beforehand (a config that names its own address).
    pub fn start_on(listener: TcpListener, router: axum::Router) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            http::serve(listener, router, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The origin app over `config`, served in-process with its background tasks. Stopping the
/// server also stops them and flushes the click queue, as a real shutdown does.
pub async fn start_origin(config: OriginConfig) -> (AppState, RunningServer) {
    start_origin_on(bind_local().await, config).await
}

/// Runs ClickHouse migration `version` (a name in `migrate::MIGRATIONS`) again on `ch`'s
/// database, statement by statement: a migration replayed over the data a test has made.
///
/// # Panics
/// When no migration has that name, or a statement fails.
pub async fn rerun_clickhouse_migration(ch: &ClickHouse, version: &str) {
    let (_, sql) = smo1_origin::clickhouse::migrate::MIGRATIONS
        .iter()
        .find(|(name, _)| *name == version)
        .unwrap_or_else(|| panic!("no ClickHouse migration {version}"));
    for statement in smo1_origin::clickhouse::migrate::statements(sql) {
        ch.execute(&statement)
            .await
            .unwrap_or_else(|e| panic!("{version}: {e}"));
    }
}

/// A loopback port nothing listens on now, for a server a test starts as another process. It is
/// below Linux's ephemeral range (32768 and up): a port the kernel hands out (`bind(0)`) can be
/// taken by an outgoing connection before that server listens on it.
pub fn free_port() -> u16 {
    reserve_port().local_addr().expect("addr").port()
}

/// Like [`free_port`], held by the returned listener until it is dropped. A port is handed out
/// once per test process, so two servers of one test never get the same.
pub fn reserve_port() -> std::net::TcpListener {
    use std::hash::{BuildHasher, Hasher};
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let port = 20_000 + (random % 12_768) as u16;
        let mut given = GIVEN.lock().expect("the port list is never poisoned");
        if given.contains(&port) {
            continue;
        }
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            given.insert(port);
            return listener;
        }
    }
}

/// A free port on 127.0.0.1, bound: its address can go into a config before the server starts.
pub async fn bind_local() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

/// [`start_origin`] on `listener`, for a config that must know the origin's own address
/// (`PUBLIC_URL`: sign-in links and the Origin check of browser requests).
pub async fn start_origin_on(
    listener: TcpListener,
    config: OriginConfig,
) -> (AppState, RunningServer) {
    let state = AppState::new(config).expect("origin state");
    let background = Background::start(&state);
    let mut server = RunningServer::start_on(listener, http::app(state.clone()));
    if let Some(task) = server.task.take() {
        server.task = Some(tokio::spawn(async move {
            let _ = task.await;
            background.shutdown().await;
        }));
    }
    (state, server)
}

/// The Upstash bridge over the test Redis, served in-process.
pub async fn start_bridge() -> RunningServer {
    start_bridge_to(&redis_url()).await
}

/// The Upstash bridge over the Redis at `url` (e.g. behind a [`TcpProxy`]), served in-process.
pub async fn start_bridge_to(url: &str) -> RunningServer {
    let state = bridge::BridgeState::new(url, redis_timeouts(), Secret::new(TEST_UPSTASH_TOKEN))
        .expect("bridge over a valid Redis URL");
    RunningServer::start(bridge::router(state)).await
}

/// What a [`TcpProxy`] does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forwards them to the target.
    Forward,
    /// Accepts them and closes them at once (a dependency that resets connections).
    Close,
    /// Stops listening: connections are refused (a dependency that is down); [`ProxyMode::Forward`]
    /// listens on the same address again.
    Refuse,
    /// Accepts them and never answers (a hung dependency or a dropped network).
    Blackhole,
}

/// A TCP proxy to `target` that a test can switch between [`ProxyMode`]s: a dependency going
/// down and coming back. Leaving `Forward` cuts every open connection, as does leaving
/// `Blackhole`.
pub struct TcpProxy {
    pub addr: SocketAddr,
    mode: tokio::sync::watch::Sender<ProxyMode>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Connections being forwarded right now.
    forwarding: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (mode, watch) = tokio::sync::watch::channel(ProxyMode::Forward);
        let accepted = std::sync::Arc::default();
        let forwarding = std::sync::Arc::default();
        let task = tokio::spawn(proxy(
            listener,
            target,
            watch,
            std::sync::Arc::clone(&accepted),
            std::sync::Arc::clone(&forwarding),
        ));
        Self {
            addr,
            mode,
            accepted,
            forwarding,
            task,
        }
    }

    /// Connections accepted so far, in any mode (a refused one is not accepted).
    pub fn accepted(&self) -> u64 {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `Forward` when `up`, else `Close`.
    pub fn set_up(&self, up: bool) {
        self.set_mode(if up {
            ProxyMode::Forward
        } else {
            ProxyMode::Close
        });
    }

    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    /// [`TcpProxy::set_mode`], returning once no connection opened before is still forwarded:
    /// a client's pooled connection cannot slip a request through after the switch.
    pub async fn switch(&self, mode: ProxyMode) {
        self.set_mode(mode);
        if mode == ProxyMode::Forward {
            return;
        }
        eventually("the proxy to cut its forwarded connections", || async {
            self.forwarding.load(std::sync::atomic::Ordering::SeqCst) == 0
        })
        .await;
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The proxy's accept loop: listens (re-binding its address after `Refuse`) and hands each
/// connection to the current mode.
async fn proxy(
    listener: TcpListener,
    target: SocketAddr,
    mut mode: tokio::sync::watch::Receiver<ProxyMode>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicU64>,
    forwarding: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let addr = listener.local_addr().expect("proxy addr");
    let mut listener = Some(listener);
    loop {
        let current = *mode.borrow_and_update();
        if current == ProxyMode::Refuse {
            listener = None;
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        }
        let bound = match listener.take() {
            Some(bound) => bound,
            None => rebind(addr).await,
        };
        tokio::select! {
            connection = bound.accept() => {
                if let Ok((inbound, _)) = connection {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::spawn(handle(
                        inbound,
                        current,
                        target,
                        mode.clone(),
                        std::sync::Arc::clone(&forwarding),
                    ));
                }
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        listener = Some(bound);
    }
}

/// Listens on `addr` again (its port was ours a moment ago).
async fn rebind(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("proxy could not listen on {addr} again");
}

async fn handle(
    mut inbound: tokio::net::TcpStream,
    mode: ProxyMode,
    target: SocketAddr,
    mut changes: tokio::sync::watch::Receiver<ProxyMode>,
    forwarding: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    match mode {
        ProxyMode::Forward => {
            use std::sync::atomic::Ordering::SeqCst;
            forwarding.fetch_add(1, SeqCst);
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = changes.wait_for(|m| *m != ProxyMode::Forward) => {}
                }
            }
            drop(inbound);
            forwarding.fetch_sub(1, SeqCst);
        }
        ProxyMode::Blackhole => {
            let _ = changes.wait_for(|m| *m != ProxyMode::Blackhole).await;
        }
        ProxyMode::Close | ProxyMode::Refuse => {}
    }
}
