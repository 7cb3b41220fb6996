//! A real local ClickHouse cluster: ZooKeeper (Debian's `zookeeper`) and 2 shards × 2 replicas
//! of `clickhouse-server`, each with its own config, ports and data under one temporary
//! directory. Every process is a child killed when the cluster is dropped, and the directory is
//! removed with it.

use smo1_origin::config::ClickHouseConfig;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The cluster's name in `remote_servers` (`CLICKHOUSE_CLUSTER`).
pub const CLUSTER: &str = "smo1";
pub const SHARDS: usize = 2;
pub const REPLICAS: usize = 2;

/// Where Debian's `zookeeper` package puts its configuration and jar.
const ZOOKEEPER_CLASSPATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar";

struct Node {
    shard: usize,
    replica: usize,
    http_port: u16,
    tcp_port: u16,
    interserver_port: u16,
    dir: PathBuf,
    process: Option<Child>,
}

pub struct ClickHouseCluster {
    nodes: Vec<Node>,
    _zookeeper: Child,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn spawn(command: &mut Command, log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {command:?}: {e}"))
}

impl ClickHouseCluster {
    /// Starts ZooKeeper and every node, and returns once each node answers and sees ZooKeeper.
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("smo1-clickhouse-cluster-")
            .tempdir()
            .expect("temporary directory");
        let zookeeper_port = crate::free_port();
        let zookeeper_dir = dir.path().join("zookeeper");
        std::fs::create_dir_all(&zookeeper_dir).expect("zookeeper dir");
        let zoo_cfg = zookeeper_dir.join("zoo.cfg");
        std::fs::write(
            &zoo_cfg,
            format!(
                "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={zookeeper_port}\n\
                 clientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
                 4lw.commands.whitelist=ruok\n",
                zookeeper_dir.join("data").display()
            ),
        )
        .expect("zoo.cfg");
        let zookeeper = spawn(
            Command::new("java")
                .arg(format!("-Dzookeeper.log.dir={}", zookeeper_dir.display()))
                .args(["-Xmx256m", "-cp", ZOOKEEPER_CLASSPATH])
                .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                .arg(&zoo_cfg),
            &zookeeper_dir.join("zookeeper.log"),
        );
        wait_for_zookeeper(zookeeper_port).await;
        let mut nodes = Vec::new();
        for shard in 1..=SHARDS {
            for replica in 1..=REPLICAS {
                let node_dir = dir.path().join(format!("s{shard}r{replica}"));
                std::fs::create_dir_all(&node_dir).expect("node dir");
                nodes.push(Node {
                    shard,
                    replica,
                    http_port: crate::free_port(),
                    tcp_port: crate::free_port(),
                    interserver_port: crate::free_port(),
                    dir: node_dir,
                    process: None,
                });
            }
        }
        std::fs::write(dir.path().join("users.xml"), USERS).expect("users.xml");
        let remote_servers = remote_servers(&nodes);
        for node in &nodes {
            std::fs::write(
                node.dir.join("config.xml"),
                node_config(node, &remote_servers, zookeeper_port),
            )
            .expect("config.xml");
        }
        let mut cluster = Self {
            nodes,
            _zookeeper: zookeeper,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        for index in 0..cluster.nodes.len() {
            cluster.start_node(index).await;
        }
        cluster
    }

    /// Every node, as (shard, replica), 1-based, in index order.
    pub fn nodes(&self) -> Vec<(usize, usize)> {
        self.nodes.iter().map(|n| (n.shard, n.replica)).collect()
    }

    /// The nodes running now, by index.
    pub fn live_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&index| self.nodes[index].process.is_some())
            .collect()
    }

    /// The HTTP interface of node `index`.
    pub fn url(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[index].http_port)
    }

    /// Configuration of an origin using `database` on this cluster through node `index`.
    pub fn config(&self, index: usize, database: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            clickhouse_url: self.url(index),
            clickhouse_cluster: CLUSTER.to_owned(),
            ..crate::clickhouse_config(database)
        }
    }

    /// Runs `sql` on node `index` alone; returns the answer (TSV).
    pub async fn query(&self, index: usize, sql: &str) -> Result<String, String> {
        let response = self
            .http
            .post(format!("{}/", self.url(index)))
            .body(sql.to_owned())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let body = response.text().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(body.trim().to_owned())
        } else {
            Err(body)
        }
    }

    /// Kills node `index` (SIGKILL: a crash, not a clean shutdown) and waits until it is gone.
    pub async fn stop_node(&mut self, index: usize) {
        if let Some(mut process) = self.nodes[index].process.take() {
            process.kill().await.expect("kill clickhouse-server");
        }
    }

    /// Starts node `index` and waits until it answers queries that need ZooKeeper. A node whose
    /// DDL worker could not reach ZooKeeper as it started is started again: ClickHouse 18.16 may
    /// crash a moment later (SIGSEGV in `zkutil::ZooKeeper::createImpl`, seen in CI).
    pub async fn start_node(&mut self, index: usize) {
        for _ in 0..3 {
            let errors = self.nodes[index].dir.join("error.log");
            let logged_before = std::fs::metadata(&errors).map_or(0, |m| m.len() as usize);
            self.spawn_node(index).await;
            let log = std::fs::read(&errors).unwrap_or_default();
            let new = String::from_utf8_lossy(log.get(logged_before..).unwrap_or_default());
            if !new.contains("DDLWorker::run()") {
                return;
            }
            eprintln!(
                "ClickHouse node {index}: its DDL worker missed ZooKeeper at start; restarting it"
            );
            self.stop_node(index).await;
        }
        panic!("ClickHouse node {index} starts with its DDL worker connected to ZooKeeper");
    }

    async fn spawn_node(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        node.process = Some(spawn(
            Command::new("clickhouse-server").arg(format!(
                "--config-file={}",
                node.dir.join("config.xml").display()
            )),
            &node.dir.join("stdout.log"),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self
                .query(
                    index,
                    "SELECT count() FROM system.zookeeper WHERE path = '/'",
                )
                .await;
            if answer.is_ok() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "ClickHouse node {index} and ZooKeeper up within 60 s: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Returns once ZooKeeper answers `ruok`, so that no node starts while it is still starting.
async fn wait_for_zookeeper(port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let what = format!("ZooKeeper to answer on port {port}");
    crate::within(Duration::from_secs(60), &what, || async {
        let mut answer = String::new();
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            if stream.write_all(b"ruok").await.is_ok() {
                let _ = stream.read_to_string(&mut answer).await;
            }
        }
        answer == "imok"
    })
    .await;
}

/// Error lines of each node's log a failing test prints.
const ERRORS_SHOWN: usize = 10;

impl Drop for ClickHouseCluster {
    /// When a test fails, prints whether each node is still running and its last errors: the
    /// logs go with the cluster's directory.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for node in &mut self.nodes {
            let state = match node.process.as_mut().map(Child::try_wait) {
                None => "stopped by the test".to_owned(),
                Some(Ok(None)) => "running".to_owned(),
                Some(Ok(Some(status))) => format!("exited on its own ({status})"),
                Some(Err(e)) => format!("unknown ({e})"),
            };
            let log = std::fs::read_to_string(node.dir.join("error.log")).unwrap_or_default();
            let errors: Vec<&str> = log
                .lines()
                .filter(|line| line.contains("} <Error>") || line.contains("} <Fatal>"))
                .collect();
            eprintln!(
                "ClickHouse node s{}r{}: {state}; its last errors:",
                node.shard, node.replica
            );
            for line in &errors[errors.len().saturating_sub(ERRORS_SHOWN)..] {
                eprintln!("  {}", line.chars().take(400).collect::<String>());
            }
        }
    }
}

/// The user `default` (no password, loopback only) with the profile docs/DEPLOY.md asks for:
/// `load_balancing` `in_order`, so the `Distributed` tables' background sends and every query go
/// to the first live replica of each shard.
const USERS: &str = "<yandex>\
    <profiles><default><load_balancing>in_order</load_balancing></default></profiles>\
    <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>\
    <profile>default</profile><quota>default</quota></default></users>\
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>\
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>\
    </interval></default></quotas>\
    </yandex>";

fn remote_servers(nodes: &[Node]) -> String {
    let mut shards = String::new();
    for shard in 1..=SHARDS {
        shards.push_str("<shard><internal_replication>true</internal_replication>");
        for node in nodes.iter().filter(|n| n.shard == shard) {
            shards.push_str(&format!(
                "<replica><host>127.0.0.1</host><port>{}</port></replica>",
                node.tcp_port
            ));
        }
        shards.push_str("</shard>");
    }
    format!("<remote_servers><{CLUSTER}>{shards}</{CLUSTER}></remote_servers>")
}

/// One node's `config.xml`: its ports and directories, the cluster, ZooKeeper and its macros
/// (the shard as `01`, `02`, …; the replica as `r1`, `r2`, …).
fn node_config(node: &Node, remote_servers: &str, zookeeper_port: u16) -> String {
    let dir = node.dir.display();
    format!(
        "<yandex>\
         <logger><level>warning</level><log>{dir}/server.log</log><errorlog>{dir}/error.log</errorlog>\
         <size>10M</size><count>1</count></logger>\
         <listen_host>127.0.0.1</listen_host>\
         <http_port>{http}</http_port><tcp_port>{tcp}</tcp_port>\
         <interserver_http_port>{interserver}</interserver_http_port>\
         <interserver_http_host>127.0.0.1</interserver_http_host>\
         <path>{dir}/data/</path><tmp_path>{dir}/tmp/</tmp_path>\
         <format_schema_path>{dir}/format_schemas/</format_schema_path>\
         <users_config>{dir}/../users.xml</users_config>\
         <default_profile>default</default_profile><default_database>default</default_database>\
         <mark_cache_size>268435456</mark_cache_size>\
         {remote_servers}\
         <zookeeper><node><host>127.0.0.1</host><port>{zookeeper_port}</port></node></zookeeper>\
         <macros><shard>{shard:02}</shard><replica>r{replica}</replica></macros>\
         <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>\
         </yandex>",
        http = node.http_port,
        tcp = node.tcp_port,
        interserver = node.interserver_port,
        shard = node.shard,
        replica = node.replica,
    )
}
