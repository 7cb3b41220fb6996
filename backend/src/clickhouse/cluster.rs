//! The cluster layout of the migrations (`CLICKHOUSE_CLUSTER`), derived from the single-server
//! statements so that each migration has one source.
//!
//! Every table `t` of a MergeTree family becomes `t_local`, a `Replicated*MergeTree` on every
//! node (ZooKeeper path per shard and database, macros `{shard}` and `{replica}`), and `t`
//! becomes a `Distributed` table over the local ones: every statement the origin and the edge
//! run keeps its table names. Rows are sharded by `user_id` where the table has one, so an
//! account's clicks and rollups live on one shard and `FINAL` collapses their versions there;
//! tables without it (per-day bookkeeping, read with `sum` / `argMax`) shard at random.
//! Materialized views read and write the local tables, so each shard aggregates its own rows.
//! Buffer tables sit on every node in front of the `Distributed` table. `INSERT … SELECT` and
//! queries run unchanged through the `Distributed` tables, with [`SETTINGS`].
//!
//! A statement of a kind this does not know is an error, so a new migration cannot silently
//! skip the cluster (a unit test renders every migration).

use std::collections::BTreeMap;

/// Settings of every request to a cluster: an insert into a `Distributed` table returns once
/// every shard it touches has the rows (a rollup's rows before the record that makes them
/// current; a migration's backfill before the next migration); a subquery over a `Distributed`
/// table inside a distributed query (`IN (SELECT … FROM link_clicks_rollups)`) is run once and
/// sent to the shards instead of being refused; and every read goes to the first live replica of
/// each shard, the one the inserts go to (the server profile sets the same for the `Distributed`
/// tables' background sends, docs/DEPLOY.md), so a rollup reads the rows and the count of rows
/// received from one replica, where a block is stored before its views count it.
pub const SETTINGS: &[(&str, &str)] = &[
    ("insert_distributed_sync", "1"),
    ("distributed_product_mode", "global"),
    ("load_balancing", "in_order"),
];

/// Seconds an `ALTER … ON CLUSTER` of the origin's tasks waits for every node; a node down
/// makes it wait this long, then it answers [`DDL_TIMEOUT_EXCEEDED`] and the node runs the task
/// when it is back.
pub const DDL_WAIT: &str = "10";
/// ClickHouse's answer when some nodes did not run a distributed DDL task in time (`TIMEOUT_EXCEEDED`).
pub const DDL_TIMEOUT_EXCEEDED: &str = "Code: 159,";

/// The local tables of `table` on every node of `cluster`, for `ALTER TABLE`.
pub fn local_table(table: &str, cluster: &str, database: &str) -> String {
    format!("{database}.{table}_local ON CLUSTER {cluster}")
}

/// A statement the cluster layout cannot derive.
#[derive(Debug, thiserror::Error)]
#[error("no cluster layout for this statement: {0}")]
pub struct Unsupported(pub String);

/// Derives cluster statements from single-server ones, statement by statement, in migration
/// order (it remembers which tables are sharded).
pub struct Layout<'a> {
    cluster: &'a str,
    database: &'a str,
    /// The sharded tables made so far, with their sharding keys.
    sharded: BTreeMap<String, &'static str>,
}

impl<'a> Layout<'a> {
    pub fn new(cluster: &'a str, database: &'a str) -> Self {
        Self {
            cluster,
            database,
            sharded: BTreeMap::new(),
        }
    }

    pub fn create_database(&self) -> String {
        format!(
            "CREATE DATABASE IF NOT EXISTS {} ON CLUSTER {}",
            self.database, self.cluster
        )
    }

    /// The cluster statements of one single-server statement.
    pub fn statements(&mut self, statement: &str) -> Result<Vec<String>, Unsupported> {
        let unsupported = || Unsupported(statement.chars().take(80).collect());
        if let Some(rest) = statement.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
            let (name, rest) = split_name(rest);
            if let Some(source) = rest.trim_start().strip_prefix("AS ") {
                self.create_buffer(name, source).ok_or_else(unsupported)
            } else {
                self.create_sharded(name, rest).ok_or_else(unsupported)
            }
        } else if let Some(rest) = statement.strip_prefix("CREATE MATERIALIZED VIEW IF NOT EXISTS ")
        {
            let (name, rest) = split_name(rest);
            self.create_view(name, rest).ok_or_else(unsupported)
        } else if let Some(rest) = statement.strip_prefix("DROP TABLE IF EXISTS ") {
            let (name, rest) = split_name(rest);
            if !rest.trim().is_empty() {
                return Err(unsupported());
            }
            let mut drops = vec![self.on_cluster("DROP TABLE IF EXISTS", name)];
            if self.sharded.remove(name).is_some() {
                drops.push(self.on_cluster("DROP TABLE IF EXISTS", &format!("{name}_local")));
            }
            Ok(drops)
        } else if let Some(rest) = statement.strip_prefix("ALTER TABLE ") {
            let (name, rest) = split_name(rest);
            let Some(key) = self.sharded.get(name) else {
                return Ok(vec![format!(
                    "{}{rest}",
                    self.on_cluster("ALTER TABLE", name)
                )]);
            };
            // The replicated local tables take the change once per shard. The `Distributed`
            // table is on every node and not replicated, which `ALTER … ON CLUSTER` refuses
            // (18.16) on a cluster of replicated shards: it is made again over the changed
            // local table instead (it holds no data).
            let local = format!("{name}_local");
            Ok(vec![
                format!("{}{rest}", self.on_cluster("ALTER TABLE", &local)),
                self.on_cluster("DROP TABLE IF EXISTS", name),
                self.distributed(name, key),
            ])
        } else if statement.starts_with("INSERT INTO ") {
            Ok(vec![statement.to_owned()])
        } else {
            Err(unsupported())
        }
    }

    fn on_cluster(&self, verb: &str, name: &str) -> String {
        format!(
            "{verb} {}.{name} ON CLUSTER {}",
            self.database, self.cluster
        )
    }

    /// `t (columns) ENGINE = XMergeTree[(args)] …` → `t_local` replicated + `t` distributed.
    fn create_sharded(&mut self, name: &str, rest: &str) -> Option<Vec<String>> {
        let (columns, engine) = rest.split_once("ENGINE = ")?;
        let engine_end = engine
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(engine.len());
        let (family, after) = engine.split_at(engine_end);
        if !family.ends_with("MergeTree") {
            return None;
        }
        let (args, tail) = match after.strip_prefix('(') {
            Some(inner) => {
                let (args, tail) = inner.split_once(')')?;
                (format!(", {args}"), tail)
            }
            None => (String::new(), after),
        };
        let database = self.database;
        let local = format!("{name}_local");
        let has_user = columns
            .lines()
            .any(|line| line.split_whitespace().next() == Some("user_id"));
        let key = if has_user {
            "cityHash64(user_id)"
        } else {
            "rand()"
        };
        self.sharded.insert(name.to_owned(), key);
        Some(vec![
            format!(
                "{}{columns}ENGINE = Replicated{family}('/clickhouse/tables/{{shard}}/{database}/{local}', \
                 '{{replica}}'{args}){tail}",
                self.on_cluster("CREATE TABLE IF NOT EXISTS", &local)
            ),
            self.distributed(name, key),
        ])
    }

    /// The `Distributed` table `name` over the local tables `{name}_local`, sharded by `key`.
    fn distributed(&self, name: &str, key: &str) -> String {
        format!(
            "{} AS {database}.{name}_local ENGINE = Distributed({}, '{database}', {name}_local, {key})",
            self.on_cluster("CREATE TABLE IF NOT EXISTS", name),
            self.cluster,
            database = self.database
        )
    }

    /// `t AS source ENGINE = Buffer(currentDatabase(), target, …)`: on every node, in front of
    /// the `Distributed` table.
    fn create_buffer(&self, name: &str, source: &str) -> Option<Vec<String>> {
        let (source, engine) = split_name(source);
        let engine = engine.trim_start().strip_prefix("ENGINE = Buffer(")?;
        let engine = engine.strip_prefix("currentDatabase()")?;
        Some(vec![format!(
            "{} AS {database}.{source} ENGINE = Buffer('{database}'{engine}",
            self.on_cluster("CREATE TABLE IF NOT EXISTS", name),
            database = self.database
        )])
    }

    /// `v TO target AS SELECT … FROM source …`: from and to the local tables of each node.
    fn create_view(&self, name: &str, rest: &str) -> Option<Vec<String>> {
        let rest = rest.trim_start().strip_prefix("TO ")?;
        let (target, select) = split_name(rest);
        let select = select.trim_start().strip_prefix("AS")?;
        if !self.sharded.contains_key(target) {
            return None;
        }
        let mut words = Vec::new();
        let mut after_from = false;
        let mut reads_sharded = false;
        for word in select.split_whitespace() {
            if after_from && self.sharded.contains_key(word) {
                words.push(format!("{}.{word}_local", self.database));
                reads_sharded = true;
            } else {
                words.push(word.to_owned());
            }
            after_from = word.eq_ignore_ascii_case("FROM");
        }
        reads_sharded.then(|| {
            vec![format!(
                "{} TO {}.{target}_local AS {}",
                self.on_cluster("CREATE MATERIALIZED VIEW IF NOT EXISTS", name),
                self.database,
                words.join(" ")
            )]
        })
    }
}

/// The table name at the start of `rest`, and what follows it.
fn split_name(rest: &str) -> (&str, &str) {
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    rest.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_become_replicated_local_tables_behind_distributed_ones() {
        let mut layout = Layout::new("c", "db");
        let sql = "CREATE TABLE IF NOT EXISTS t\n(\n    user_id String,\n    v UInt64\n)\nENGINE = ReplacingMergeTree(v)\nORDER BY user_id";
        assert_eq!(
            layout.statements(sql).unwrap(),
            [
                "CREATE TABLE IF NOT EXISTS db.t_local ON CLUSTER c\n(\n    user_id String,\n    v UInt64\n)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/t_local', '{replica}', v)\nORDER BY user_id",
                "CREATE TABLE IF NOT EXISTS db.t ON CLUSTER c AS db.t_local ENGINE = Distributed(c, 'db', t_local, cityHash64(user_id))",
            ]
        );
        let view =
            "CREATE MATERIALIZED VIEW IF NOT EXISTS t_mv TO t AS\nSELECT user_id, 1 AS v FROM t";
        assert_eq!(
            layout.statements(view).unwrap(),
            ["CREATE MATERIALIZED VIEW IF NOT EXISTS db.t_mv ON CLUSTER c TO db.t_local AS SELECT user_id, 1 AS v FROM db.t_local"]
        );
        let buffer = "CREATE TABLE IF NOT EXISTS b AS t\nENGINE = Buffer(currentDatabase(), t, 16, 1, 10, 1, 2, 3, 4)";
        assert_eq!(
            layout.statements(buffer).unwrap(),
            ["CREATE TABLE IF NOT EXISTS db.b ON CLUSTER c AS db.t ENGINE = Buffer('db', t, 16, 1, 10, 1, 2, 3, 4)"]
        );
        assert_eq!(
            layout
                .statements("ALTER TABLE t ADD COLUMN w String DEFAULT ''")
                .unwrap(),
            [
                "ALTER TABLE db.t_local ON CLUSTER c ADD COLUMN w String DEFAULT ''",
                "DROP TABLE IF EXISTS db.t ON CLUSTER c",
                "CREATE TABLE IF NOT EXISTS db.t ON CLUSTER c AS db.t_local ENGINE = Distributed(c, 'db', t_local, cityHash64(user_id))",
            ]
        );
        assert_eq!(
            layout.statements("DROP TABLE IF EXISTS t").unwrap(),
            [
                "DROP TABLE IF EXISTS db.t ON CLUSTER c",
                "DROP TABLE IF EXISTS db.t_local ON CLUSTER c"
            ]
        );
    }

    #[test]
    fn tables_without_an_owner_shard_at_random() {
        let mut layout = Layout::new("c", "db");
        let sql = "CREATE TABLE IF NOT EXISTS d\n(\n    day Date\n)\nENGINE = SummingMergeTree\nORDER BY day";
        assert!(layout.statements(sql).unwrap()[1].ends_with("d_local, rand())"));
    }

    #[test]
    fn unknown_statements_are_refused() {
        let mut layout = Layout::new("c", "db");
        for sql in [
            "CREATE VIEW v AS SELECT 1",
            "CREATE TABLE IF NOT EXISTS l (x String) ENGINE = Log",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS v TO unknown AS SELECT 1",
            "RENAME TABLE a TO b",
        ] {
            assert!(layout.statements(sql).is_err(), "{sql}");
        }
    }
}
