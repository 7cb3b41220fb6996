//! ClickHouse over its HTTP interface (8123): statements, `JSONEachRow` inserts and queries.
//!
//! Every call names the database explicitly (`?database=`) and authenticates with HTTP basic auth.
//! Values are never interpolated into SQL here: inserts send rows as JSON, and queries that need
//! values take them already escaped by the caller.

pub mod cluster;
pub mod migrate;

use crate::config::ClickHouseConfig;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Where click writers insert: [`smo1_core::click::InsertTarget`] for this configuration.
pub fn insert_target(config: &ClickHouseConfig) -> smo1_core::click::InsertTarget {
    smo1_core::click::InsertTarget::new(config.clickhouse_async_insert)
}

/// A `UInt64` as ClickHouse writes it in JSON: a string (64-bit integers are quoted by
/// default) or a number. For `#[serde(deserialize_with = "uint64")]`.
pub fn uint64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Count {
        Number(u64),
        Text(String),
    }
    match <Count as serde::Deserialize>::deserialize(deserializer)? {
        Count::Number(n) => Ok(n),
        Count::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("clickhouse unreachable: {0}")]
    Http(#[from] reqwest::Error),
    #[error("clickhouse answered {status}: {message}")]
    Server { status: u16, message: String },
    #[error("clickhouse sent an unreadable row: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("clickhouse migrations: {0}")]
    Layout(#[from] cluster::Unsupported),
}

impl ClickHouseError {
    /// The connection failed before ClickHouse answered (refused, reset, or closed with the
    /// request sent): a statement may or may not have run. A timeout is not one: the statement
    /// may still be running.
    pub fn is_unanswered(&self) -> bool {
        matches!(self, Self::Http(e) if (e.is_connect() || e.is_request()) && !e.is_timeout())
    }
}

/// How long an idle connection is kept for reuse: less than ClickHouse's own
/// `keep_alive_timeout` (3 s by default), or a request sent on a connection the server is closing
/// fails ("connection closed before message completed").
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct ClickHouse {
    http: reqwest::Client,
    config: ClickHouseConfig,
    request_timeout: Option<Duration>,
}

impl ClickHouse {
    /// A client for `config`'s server; requests wait as long as the server takes.
    pub fn new(config: ClickHouseConfig) -> Self {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(IDLE_CONNECTION_TIMEOUT)
            .build()
            .expect("an HTTP client builds (its TLS roots load)");
        Self {
            http,
            config,
            request_timeout: None,
        }
    }

    /// The same client, giving up on any request after `timeout`.
    pub fn with_request_timeout(self, timeout: Duration) -> Self {
        Self {
            request_timeout: Some(timeout),
            ..self
        }
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    fn request(&self, database: Option<&str>) -> reqwest::RequestBuilder {
        let url = format!("{}/", self.config.clickhouse_url.trim_end_matches('/'));
        let mut request = self.http.post(url).basic_auth(
            &self.config.clickhouse_user,
            Some(self.config.clickhouse_password.expose()).filter(|p| !p.is_empty()),
        );
        if let Some(database) = database {
            request = request.query(&[("database", database)]);
        }
        if self.cluster().is_some() {
            request = request.query(cluster::SETTINGS);
        }
        if let Some(timeout) = self.request_timeout {
            request = request.timeout(timeout);
        }
        request
    }

    /// The cluster every node of which holds the tables (`CLICKHOUSE_CLUSTER`), if any.
    pub fn cluster(&self) -> Option<&str> {
        Some(self.config.clickhouse_cluster.as_str()).filter(|c| !c.is_empty())
    }

    /// `ALTER TABLE table {clause}` (e.g. `DROP PARTITION '…'`): on one server, the table; on a
    /// cluster, its local tables on every node (`ON CLUSTER`). A node that is down runs it when
    /// it is back (ZooKeeper keeps the task; a replica also gets the change from its shard): the
    /// statement waits [`cluster::DDL_WAIT`] for the nodes, and returns `Ok(false)` if some did not
    /// answer by then.
    pub async fn alter_local(&self, table: &str, clause: &str) -> Result<bool, ClickHouseError> {
        let Some(cluster) = self.cluster() else {
            self.execute(&format!("ALTER TABLE {table} {clause}"))
                .await?;
            return Ok(true);
        };
        let sql = format!(
            "ALTER TABLE {} {clause}",
            cluster::local_table(table, cluster, &self.config.clickhouse_database)
        );
        let request = self
            .request(Some(&self.config.clickhouse_database))
            .query(&[("distributed_ddl_task_timeout", cluster::DDL_WAIT)])
            .body(sql);
        match Self::send(request).await {
            Ok(_) => Ok(true),
            Err(ClickHouseError::Server { message, .. })
                if message.starts_with(cluster::DDL_TIMEOUT_EXCEEDED) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn send(request: reqwest::RequestBuilder) -> Result<String, ClickHouseError> {
        let response = request.send().await?;
        let status = response.status();
        let body = response.text().await?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(ClickHouseError::Server {
                status: status.as_u16(),
                message: body.trim().chars().take(500).collect(),
            })
        }
    }

    /// Runs one statement in the configured database; returns the raw answer.
    #[tracing::instrument(skip(self))]
    pub async fn execute(&self, sql: &str) -> Result<String, ClickHouseError> {
        Self::send(
            self.request(Some(&self.config.clickhouse_database))
                .body(sql.to_owned()),
        )
        .await
    }

    /// Runs one long statement (a rollup) in the configured database, allowed `timeout` instead
    /// of the client's default.
    #[tracing::instrument(skip(self, sql))]
    pub async fn execute_long(
        &self,
        sql: &str,
        timeout: std::time::Duration,
    ) -> Result<String, ClickHouseError> {
        Self::send(
            self.request(Some(&self.config.clickhouse_database))
                .timeout(timeout)
                .body(sql.to_owned()),
        )
        .await
    }

    /// Runs one statement outside any database (e.g. `CREATE DATABASE`).
    pub async fn execute_global(&self, sql: &str) -> Result<String, ClickHouseError> {
        Self::send(self.request(None).body(sql.to_owned())).await
    }

    /// Runs a query and decodes each `JSONEachRow` line as `T`.
    pub async fn query<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, ClickHouseError> {
        let body = self.execute(&format!("{sql} FORMAT JSONEachRow")).await?;
        body.lines()
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_str(line).map_err(ClickHouseError::from))
            .collect()
    }

    /// Inserts newline-separated JSON rows into `table` (which must be a trusted identifier).
    #[tracing::instrument(skip(self, rows))]
    pub async fn insert_json_rows(
        &self,
        table: &str,
        settings: &[(&str, &str)],
        rows: Vec<u8>,
    ) -> Result<(), ClickHouseError> {
        let request = self
            .request(Some(&self.config.clickhouse_database))
            .query(&[("query", format!("INSERT INTO {table} FORMAT JSONEachRow"))])
            .query(settings)
            .body(rows);
        Self::send(request).await.map(drop)
    }

    pub async fn ping(&self) -> Result<(), ClickHouseError> {
        Self::send(self.request(None).body("SELECT 1"))
            .await
            .map(drop)
    }
}
