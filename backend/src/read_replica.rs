//! The optional PostgreSQL read replica (`DATABASE_READ_URL`), and the rule that keeps a read
//! there from going back in time.
//!
//! A streaming replica replays the primary's WAL some time after the primary wrote it, so a read
//! there may miss changes the primary already committed, and already invalidated in the cache: a
//! refill from such a read would put a disabled or deleted link back. So a read on the replica
//! comes with a *floor*, the primary's WAL insert position ([`Lsn`]) taken on the primary before
//! the read: the replica is used only when it has replayed at least that far. The commit record
//! of every transaction visible on the primary when the floor was taken lies below the floor, and
//! the replica's snapshot is taken after its replay position was checked, so the read sees all of
//! them: it is as new as a read of the primary at the moment the floor was taken, which is what
//! the cache's versioning (`crate::cache`) assumes of a refill.
//!
//! Replay trails a busy primary by a few milliseconds at all times, so a lookup waits up to
//! `DATABASE_READ_CATCH_UP_MS` for the replica to reach its floor. A replica still behind then,
//! or down, slow (`DATABASE_READ_TIMEOUT_MS`) or failing, is not waited for further: the caller
//! reads the primary, and the replica is skipped for `DATABASE_READ_RETRY_AFTER_MS` (a
//! [`Breaker`]), so a dead or lagging replica costs one wait per period, not one per lookup.

use crate::breaker::Breaker;
use crate::config::ReadReplicaConfig;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a lookup asks whether the replica has caught up with its floor.
const CATCH_UP_POLL: Duration = Duration::from_millis(2);

/// A position in the primary's WAL, in bytes from its start (`pg_lsn - '0/0'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub i64);

/// How far the replica has replayed; on a server that is not in recovery (the read URL names the
/// primary itself), how far it has written. `NULL` (nothing replayed yet) reads as behind.
const REPLAYED: &str = "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                                 ELSE pg_current_wal_insert_lsn() END - '0/0'::pg_lsn)::bigint";

/// The primary's WAL insert position now: a floor for a read that must see every transaction
/// committed so far.
pub const PRIMARY_POSITION: &str = "(pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint";

/// What became of a read offered to the replica (the `outcome` label of
/// [`crate::metrics::READ_REPLICA_READS`]).
const REPLICA: &str = "replica";
const BEHIND: &str = "behind";
const FAILED: &str = "failed";
const SKIPPED: &str = "skipped";
pub const OUTCOMES: &[&str] = &[REPLICA, BEHIND, FAILED, SKIPPED];

/// Handle to the replica; cheap to clone, connects on first use.
#[derive(Clone)]
pub struct ReadReplica {
    pool: PgPool,
    timeout: Duration,
    catch_up: Duration,
    breaker: Arc<Breaker>,
}

impl ReadReplica {
    /// The replica `config` names, `None` when it names none. The URL is read exactly as
    /// `DATABASE_URL` is (`sslmode`, `sslrootcert`, … ask for TLS the same way).
    pub fn from_config(config: &ReadReplicaConfig) -> anyhow::Result<Option<Self>> {
        if config.database_read_url.is_empty() {
            return Ok(None);
        }
        let pool = PgPoolOptions::new()
            .max_connections(config.database_read_max_connections)
            .acquire_timeout(config.database_read_timeout)
            .connect_lazy(&config.database_read_url)
            .map_err(|e| anyhow::anyhow!("DATABASE_READ_URL: {e}"))?;
        Ok(Some(Self {
            pool,
            timeout: config.database_read_timeout,
            catch_up: config.database_read_catch_up,
            breaker: Arc::new(Breaker::new(
                "the PostgreSQL read replica",
                crate::metrics::READ_REPLICA_BREAKER_OPENED,
                config.database_read_retry_after,
                config.database_read_timeout * 2,
            )),
        }))
    }

    /// `read` run on the replica once it has replayed the primary's WAL up to `floor` (waiting up
    /// to `DATABASE_READ_CATCH_UP_MS` for that); `None` when it has not by then, or is skipped,
    /// down, slower than `DATABASE_READ_TIMEOUT_MS` or failing: the caller then reads the
    /// primary.
    pub async fn read<T, F, Fut>(&self, floor: Lsn, read: F) -> Option<T>
    where
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = sqlx::Result<T>>,
    {
        if !self.breaker.admit() {
            metrics::counter!(crate::metrics::READ_REPLICA_READS, "outcome" => SKIPPED)
                .increment(1);
            return None;
        }
        let attempt = async {
            // Replay usually trails the primary by milliseconds: wait that out, not longer.
            let deadline = Instant::now() + self.catch_up;
            loop {
                // Checked before the read, so the read's snapshot includes everything replayed
                // up to here.
                let replayed: Option<i64> =
                    sqlx::query_scalar(REPLAYED).fetch_one(&self.pool).await?;
                if replayed.is_some_and(|replayed| Lsn(replayed) >= floor) {
                    return read(self.pool.clone()).await.map(Some);
                }
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                tokio::time::sleep(CATCH_UP_POLL).await;
            }
        };
        let (outcome, value) =
            match tokio::time::timeout(self.catch_up + self.timeout, attempt).await {
                Ok(Ok(Some(value))) => {
                    self.breaker.success();
                    (REPLICA, Some(value))
                }
                Ok(Ok(None)) => {
                    // Lagging this far, it likely lags for the next lookups too: skip it a while.
                    self.breaker.failure();
                    tracing::warn!(
                        catch_up_ms = self.catch_up.as_millis(),
                        "read replica lags behind the primary; reading the primary"
                    );
                    (BEHIND, None)
                }
                Ok(Err(e)) => {
                    self.breaker.failure();
                    tracing::warn!(error = %e, "read replica failed; reading the primary");
                    (FAILED, None)
                }
                Err(_) => {
                    self.breaker.failure();
                    tracing::warn!(
                        timeout_ms = self.timeout.as_millis(),
                        "read replica timed out; reading the primary"
                    );
                    (FAILED, None)
                }
            };
        metrics::counter!(crate::metrics::READ_REPLICA_READS, "outcome" => outcome).increment(1);
        value
    }

    /// Whether the replica answers (for `/readyz`).
    pub async fn ping(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop)
    }
}
