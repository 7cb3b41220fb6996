//! ClickHouse schema migrations (`migrations/clickhouse/*.sql`), embedded in the binary, applied
//! in order by `smo1-origin migrate` and tracked in the `schema_migrations` table.

use super::{cluster, ClickHouse, ClickHouseError};
use std::future::Future;
use std::time::Duration;

/// Every migration, in order. A test checks this list against the directory.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_link_clicks",
        include_str!("../../../migrations/clickhouse/0001_link_clicks.sql"),
    ),
    (
        "0002_link_clicks_daily",
        include_str!("../../../migrations/clickhouse/0002_link_clicks_daily.sql"),
    ),
    (
        "0003_link_clicks_buffer",
        include_str!("../../../migrations/clickhouse/0003_link_clicks_buffer.sql"),
    ),
    (
        "0004_link_clicks_hourly",
        include_str!("../../../migrations/clickhouse/0004_link_clicks_hourly.sql"),
    ),
    (
        "0005_link_clicks_rollups",
        include_str!("../../../migrations/clickhouse/0005_link_clicks_rollups.sql"),
    ),
    (
        "0006_link_clicks_recent",
        include_str!("../../../migrations/clickhouse/0006_link_clicks_recent.sql"),
    ),
    (
        "0007_rollup_qr",
        include_str!("../../../migrations/clickhouse/0007_rollup_qr.sql"),
    ),
    (
        "0008_link_clicks_recent_qr",
        include_str!("../../../migrations/clickhouse/0008_link_clicks_recent_qr.sql"),
    ),
    (
        "0009_click_rule",
        include_str!("../../../migrations/clickhouse/0009_click_rule.sql"),
    ),
    (
        "0010_link_clicks_buffer_layers",
        include_str!("../../../migrations/clickhouse/0010_link_clicks_buffer_layers.sql"),
    ),
];

/// The statements of one migration file: split on `;` at line ends, comments dropped.
pub fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[derive(serde::Deserialize)]
struct Applied {
    version: String,
}

const SCHEMA_MIGRATIONS: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations\n(\n    version String,\n    applied_at DateTime('UTC')\n)\nENGINE = MergeTree\nORDER BY version";

/// What the migrator runs: creating the database and the bookkeeping table, then each migration
/// as statements, for one server or (`cluster`) every node of a cluster.
pub struct Plan {
    pub create_database: String,
    pub create_schema_migrations: Vec<String>,
    pub migrations: Vec<(&'static str, Vec<String>)>,
}

impl Plan {
    pub fn new(database: &str, cluster: Option<&str>) -> Result<Self, cluster::Unsupported> {
        let migrations = MIGRATIONS
            .iter()
            .map(|(version, sql)| (*version, statements(sql)));
        let Some(cluster) = cluster else {
            return Ok(Self {
                create_database: format!("CREATE DATABASE IF NOT EXISTS {database}"),
                create_schema_migrations: vec![SCHEMA_MIGRATIONS.to_owned()],
                migrations: migrations.collect(),
            });
        };
        let mut layout = cluster::Layout::new(cluster, database);
        let create_schema_migrations = layout.statements(SCHEMA_MIGRATIONS)?;
        let mut rendered = Vec::new();
        for (version, statements) in migrations {
            let mut cluster_statements = Vec::new();
            for statement in statements {
                cluster_statements.extend(layout.statements(&statement)?);
            }
            rendered.push((version, cluster_statements));
        }
        Ok(Self {
            create_database: layout.create_database(),
            create_schema_migrations,
            migrations: rendered,
        })
    }
}

/// How many times a [`repeatable`] statement is sent when the connection fails before ClickHouse
/// answers, and the pause before sending it again.
const UNANSWERED_ATTEMPTS: u32 = 3;
const UNANSWERED_PAUSE: Duration = Duration::from_millis(500);

/// Whether running `statement` twice leaves the schema as running it once does, so a statement
/// that got no answer (it may or may not have run) can be sent again. A backfill (`INSERT …
/// SELECT`) or an `ALTER` cannot: sent twice it would count rows twice or fail.
fn repeatable(statement: &str) -> bool {
    (statement.starts_with("CREATE ") && statement.contains(" IF NOT EXISTS "))
        || (statement.starts_with("DROP ") && statement.contains(" IF EXISTS "))
}

/// Runs `statement` with `send`; a [`repeatable`] one is sent again when the connection failed
/// before ClickHouse answered (a server closing a connection it has just accepted, as a cluster
/// node may while it starts).
async fn execute<F>(statement: &str, send: impl Fn() -> F) -> Result<String, ClickHouseError>
where
    F: Future<Output = Result<String, ClickHouseError>>,
{
    let mut attempt = 1;
    loop {
        match send().await {
            Err(e)
                if e.is_unanswered() && repeatable(statement) && attempt < UNANSWERED_ATTEMPTS =>
            {
                tracing::warn!(
                    error = %e,
                    attempt,
                    statement,
                    "clickhouse did not answer a migration statement; sending it again"
                );
                tokio::time::sleep(UNANSWERED_PAUSE).await;
                attempt += 1;
            }
            answer => return answer,
        }
    }
}

/// Creates the database if needed and applies the migrations not yet recorded.
/// Returns the versions applied now.
pub async fn run(ch: &ClickHouse) -> Result<Vec<&'static str>, ClickHouseError> {
    let plan = Plan::new(&ch.config().clickhouse_database, ch.cluster())?;
    execute(&plan.create_database, || {
        ch.execute_global(&plan.create_database)
    })
    .await?;
    for statement in &plan.create_schema_migrations {
        execute(statement, || ch.execute(statement)).await?;
    }
    let applied: Vec<Applied> = ch.query("SELECT version FROM schema_migrations").await?;
    let mut now_applied = Vec::new();
    for (version, statements) in plan.migrations {
        if applied.iter().any(|a| a.version == version) {
            continue;
        }
        for statement in &statements {
            execute(statement, || ch.execute(statement)).await?;
        }
        ch.execute(&format!(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ('{version}', now())"
        ))
        .await?;
        tracing::info!(version, "clickhouse migration applied");
        now_applied.push(version);
    }
    Ok(now_applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/clickhouse");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".sql"))
            .map(|name| name.trim_end_matches(".sql").to_owned())
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        assert_eq!(files, listed);
    }

    /// A migration the cluster layout cannot derive fails here, not on a customer's cluster.
    #[test]
    fn every_migration_has_a_cluster_layout() {
        let single = Plan::new("smo1", None).unwrap();
        let plan = Plan::new("smo1", Some("c")).unwrap();
        assert_eq!(plan.migrations.len(), MIGRATIONS.len());
        for ((version, cluster), (_, one)) in plan.migrations.iter().zip(&single.migrations) {
            assert!(cluster.len() >= one.len(), "{version}");
            assert!(
                cluster
                    .iter()
                    .all(|s| s.starts_with("INSERT INTO ") || s.contains(" ON CLUSTER c")),
                "{version}"
            );
        }
    }

    /// What a migration creates or drops can be sent again when a connection fails before
    /// ClickHouse answers; a backfill or an `ALTER` never is.
    #[test]
    fn creates_and_drops_are_repeatable_and_nothing_else_is() {
        for cluster in [None, Some("c")] {
            let plan = Plan::new("smo1", cluster).unwrap();
            assert!(repeatable(&plan.create_database), "{cluster:?}");
            let all = plan
                .create_schema_migrations
                .iter()
                .chain(plan.migrations.iter().flat_map(|(_, s)| s));
            for statement in all {
                let ddl = statement.starts_with("CREATE ") || statement.starts_with("DROP ");
                assert_eq!(repeatable(statement), ddl, "{cluster:?}: {statement}");
            }
        }
        assert!(!repeatable(
            "INSERT INTO t SELECT 1 WHERE 'CREATE ' IF NOT EXISTS "
        ));
        assert!(!repeatable("CREATE TABLE t (x String)"));
    }

    #[test]
    fn statements_split_on_line_end_semicolons() {
        let sql = "-- comment; not a statement\nCREATE TABLE a (x String);\n\nCREATE VIEW b AS\nSELECT ';' AS s FROM a;\n";
        assert_eq!(
            statements(sql),
            [
                "CREATE TABLE a (x String)",
                "CREATE VIEW b AS\nSELECT ';' AS s FROM a"
            ]
        );
    }
}
