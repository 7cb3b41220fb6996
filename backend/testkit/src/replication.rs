//! A PostgreSQL primary and a streaming replica of it, as a test's own: started from PostgreSQL's
//! binaries (`initdb`, `pg_ctl`, `pg_basebackup -R`) in a temporary directory on free loopback
//! ports, the origin's migrations applied, both stopped and the directory removed on drop, even
//! when the test fails.
//!
//! `TEST_PG_BIN_DIR` names the binaries' directory (default: the newest
//! `/usr/lib/postgresql/<major>/bin`, PostgreSQL 15 on Debian 12). `pg_stat_statements` is
//! loaded on both, so a test can see which server ran a query.
//! `initdb` refuses to run as root: as root, every command runs as the `postgres` user.

use sqlx::{Connection, Executor, PgConnection};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The database the origin uses on both servers.
const DATABASE: &str = "smo1";

/// `TEST_PG_BIN_DIR`, else the newest Debian server install (`/usr/lib/postgresql/<major>/bin`).
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TEST_PG_BIN_DIR") {
        return dir.into();
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries under /usr/lib/postgresql (or TEST_PG_BIN_DIR)")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .max()
        .expect("a PostgreSQL version under /usr/lib/postgresql");
    PathBuf::from(format!("/usr/lib/postgresql/{newest}/bin"))
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` with `args`, as the `postgres` user when we are root; output captured.
fn as_postgres(program: &Path, args: &[&str]) -> std::process::Command {
    let mut command = if running_as_root() {
        let mut runuser = std::process::Command::new("runuser");
        runuser.args(["-u", "postgres", "--"]).arg(program);
        runuser
    } else {
        std::process::Command::new(program)
    };
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `program` (from [`bin_dir`], or a plain command) to completion off the async threads;
/// panics with its output when it fails.
async fn run(program: PathBuf, args: Vec<String>) {
    let what = format!("{} {}", program.display(), args.join(" "));
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        as_postgres(&program, &args).output()
    })
    .await
    .expect("the command's thread")
    .unwrap_or_else(|e| panic!("could not run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One server of the pair: its data directory and port.
struct Server {
    data: PathBuf,
    port: u16,
}

impl Server {
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{DATABASE}", self.port)
    }

    async fn start(&self) {
        let log = self.data.with_extension("log");
        run(
            bin_dir().join("pg_ctl"),
            vec![
                "-D".into(),
                self.data.display().to_string(),
                "-l".into(),
                log.display().to_string(),
                "-w".into(),
                "-t".into(),
                "60".into(),
                "-o".into(),
                format!("-c port={}", self.port),
                "start".into(),
            ],
        )
        .await;
    }

    /// Stops the server at once (a crash, as far as clients can tell); blocking.
    fn stop_now(&self) {
        if !self.data.exists() {
            return;
        }
        let _ = as_postgres(
            &bin_dir().join("pg_ctl"),
            &[
                "-D",
                &self.data.display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        )
        .output();
    }
}

/// A primary and its streaming replica, both serving the migrated database `smo1`.
pub struct Replication {
    root: PathBuf,
    primary: Server,
    replica: Server,
}

impl Replication {
    /// Creates, migrates and starts the primary, then clones it with `pg_basebackup -R` and starts
    /// the clone as a hot standby streaming from it.
    pub async fn start() -> Self {
        let root = std::env::temp_dir().join(format!("smo1-pg-{}", uuid::Uuid::new_v4().simple()));
        let replication = Self {
            primary: Server {
                data: root.join("primary"),
                port: crate::free_port(),
            },
            replica: Server {
                data: root.join("replica"),
                port: crate::free_port(),
            },
            root,
        };
        // From here on, drop cleans up whatever got started.
        let root = replication.root.display().to_string();
        run(
            "mkdir".into(),
            vec!["-m".into(), "0700".into(), root.clone()],
        )
        .await;
        let primary = replication.primary.data.display().to_string();
        run(
            bin_dir().join("initdb"),
            vec![
                "-D".into(),
                primary.clone(),
                "-U".into(),
                "postgres".into(),
                "--auth=trust".into(),
                "--encoding=UTF8".into(),
                "--no-locale".into(),
            ],
        )
        .await;
        // Loopback only, sockets in our own directory; durability is not what is tested here;
        // `pg_stat_statements` lets a test see which server ran a query. `pg_basebackup` copies
        // this file to the replica.
        let settings = format!(
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\nfsync = off\n\
             shared_preload_libraries = 'pg_stat_statements'\n"
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(replication.primary.data.join("postgresql.conf"))
            .and_then(|mut conf| std::io::Write::write_all(&mut conf, settings.as_bytes()))
            .expect("configure the primary");
        replication.primary.start().await;
        let mut admin = replication
            .connect(replication.primary.port, "postgres")
            .await;
        admin
            .execute(format!("CREATE DATABASE {DATABASE}").as_str())
            .await
            .expect("create the database");
        let mut primary_db = replication.primary().await;
        primary_db
            .execute("CREATE EXTENSION pg_stat_statements")
            .await
            .expect("create pg_stat_statements");
        smo1_origin::db::MIGRATOR
            .run(&mut primary_db)
            .await
            .expect("migrate the primary");
        run(
            bin_dir().join("pg_basebackup"),
            vec![
                "-h".into(),
                "127.0.0.1".into(),
                "-p".into(),
                replication.primary.port.to_string(),
                "-U".into(),
                "postgres".into(),
                "-D".into(),
                replication.replica.data.display().to_string(),
                "-R".into(),
                "-X".into(),
                "stream".into(),
                "-c".into(),
                "fast".into(),
            ],
        )
        .await;
        replication.replica.start().await;
        let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(&mut replication.replica().await)
            .await
            .expect("ask the replica");
        assert!(in_recovery, "the replica runs as a standby");
        replication
    }

    async fn connect(&self, port: u16, database: &str) -> PgConnection {
        PgConnection::connect(&format!("postgres://postgres@127.0.0.1:{port}/{database}"))
            .await
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}/{database}: {e}"))
    }

    /// The primary's URL, for `DATABASE_URL`.
    pub fn primary_url(&self) -> String {
        self.primary.url()
    }

    /// The replica's URL, for `DATABASE_READ_URL`.
    pub fn replica_url(&self) -> String {
        self.replica.url()
    }

    /// The replica's address, for a [`crate::TcpProxy`] in front of it.
    pub fn replica_addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.replica.port).into()
    }

    pub async fn primary(&self) -> PgConnection {
        self.connect(self.primary.port, DATABASE).await
    }

    pub async fn replica(&self) -> PgConnection {
        self.connect(self.replica.port, DATABASE).await
    }

    /// Waits until the replica has replayed everything the primary has written so far.
    pub async fn wait_for_replay(&self) {
        let written: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&mut self.primary().await)
            .await
            .expect("the primary's position");
        let written = &written;
        crate::eventually("the replica to replay the primary's WAL", || async move {
            sqlx::query_scalar::<_, bool>("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn")
                .bind(written)
                .fetch_one(&mut self.replica().await)
                .await
                .expect("the replica's position")
        })
        .await;
    }

    /// Stops applying the primary's changes on the replica (it keeps receiving them): the
    /// replica lags until [`Replication::resume_replay`].
    pub async fn pause_replay(&self) {
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(&mut self.replica().await)
            .await
            .expect("pause replay");
        crate::eventually("replay to pause", || async move {
            sqlx::query_scalar::<_, String>("SELECT pg_get_wal_replay_pause_state()")
                .fetch_one(&mut self.replica().await)
                .await
                .expect("pause state")
                == "paused"
        })
        .await;
    }

    /// How many times `server` (from [`Replication::primary`] or [`Replication::replica`]) ran
    /// statements whose text contains `fragment`, by `pg_stat_statements`.
    pub async fn calls(server: &mut PgConnection, fragment: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
              WHERE strpos(query, $1) > 0 AND query NOT LIKE '%pg_stat_statements%'",
        )
        .bind(fragment)
        .fetch_one(server)
        .await
        .expect("read pg_stat_statements")
    }

    pub async fn resume_replay(&self) {
        sqlx::query("SELECT pg_wal_replay_resume()")
            .execute(&mut self.replica().await)
            .await
            .expect("resume replay");
    }

    /// Stops the replica at once, as a crash would.
    pub async fn stop_replica(&self) {
        let data = self.replica.data.clone();
        let port = self.replica.port;
        tokio::task::spawn_blocking(move || Server { data, port }.stop_now())
            .await
            .expect("stop the replica");
    }
}

impl Drop for Replication {
    fn drop(&mut self) {
        self.replica.stop_now();
        self.primary.stop_now();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
