//! Rolls finished UTC days of `link_clicks` into plain numbers (`link_clicks_rollup_hours`,
//! `link_clicks_rollup_values`: migration 0005), and tells queries which days' rollups are
//! current.
//!
//! A day is rolled once it has been over for [`SETTLE`], and again whenever rows for it arrive
//! afterwards (an outbox replay after an outage, a late buffer flush). Whether a rollup is current
//! is decided by counting: `link_clicks_arrivals` sums every row received per day (a materialized
//! view, so it moves with each insert), and each rollup records that sum as read *before* it
//! started. ClickHouse writes a block to `link_clicks` before it runs the views, so a row counted
//! in the sum is always visible to the rollup that read the sum; a row that lands during or
//! after a rollup makes the sums differ, and the API reads that day from the raw data until the
//! next pass rolls it again. Answers are exact at every moment; the rollups only make them cheap.
//!
//! Re-rolling writes rows with a newer `version`; readers take the newest row per key (`FINAL`).
//! A day's counts only grow, so the newest row of every key is right whenever the day is current,
//! even if an interrupted pass left some newer rows behind.

use super::dimensions::DIMENSIONS;
use super::escape::quote;
use crate::clickhouse::{uint64, ClickHouse, ClickHouseError};
use crate::periodic::{PassMetrics, Periodic};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long after a UTC day ends it is first rolled (the click buffer flushes within 10 s).
pub const SETTLE: chrono::Duration = chrono::Duration::minutes(5);

/// Days `link_clicks_recent_v2` keeps before today; queries read it only for the last
/// [`RECENT_READ_DAYS`], a day less, so a partition is never dropped under a query.
const RECENT_KEEP_DAYS: i64 = 3;
pub const RECENT_READ_DAYS: i64 = RECENT_KEEP_DAYS - 1;

/// How long one rollup statement may run: one pass over a day's rows (about 3 s per 100k
/// clicks on 2 cores), far beyond the 10 s the API's queries get.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

/// Whose rows a rollup keeps: one per link, or one per account (`link_id = ''`), where a visitor
/// who clicked two of the user's links is one visitor.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Link,
    Account,
}

impl Scope {
    fn link_id(self) -> &'static str {
        match self {
            Self::Link => "link_id",
            Self::Account => "''",
        }
    }
}

/// Unix time of `day`'s UTC midnight.
pub(super) fn midnight(day: NaiveDate) -> i64 {
    day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp()
}

fn within_day(day: NaiveDate) -> String {
    let start = midnight(day);
    format!(
        "clicked_at >= toDateTime({start}) AND clicked_at < toDateTime({})",
        start + 86_400
    )
}

/// Per hour: distinct clicks and visitors, and the visitors whose first / last click of the day
/// falls in that hour (marks 1 and 3; 2 and 4 for their clicks that are not bots).
fn hours_sql(scope: Scope, day: NaiveDate, version: u64) -> String {
    let link = scope.link_id();
    let within = within_day(day);
    format!(
        "INSERT INTO link_clicks_rollup_hours (user_id, link_id, hour, version, clicks, \
         human_clicks, bot_clicks, visitors, human_visitors, first_visitors, human_first_visitors, \
         last_visitors, human_last_visitors) \
         SELECT user_id, link_id, hour, toUInt64({version}), sum(clicks), sum(human_clicks), \
         sum(bot_clicks), sum(visitors), sum(human_visitors), sum(first_visitors), \
         sum(human_first_visitors), sum(last_visitors), sum(human_last_visitors) FROM (\
         SELECT user_id, {link} AS link_id, toStartOfHour(clicked_at) AS hour, \
         uniqExact(click_id) AS clicks, uniqExactIf(click_id, is_bot = 0) AS human_clicks, \
         uniqExactIf(click_id, is_bot = 1) AS bot_clicks, uniqExact(visitor_id) AS visitors, \
         uniqExactIf(visitor_id, is_bot = 0) AS human_visitors, \
         toUInt64(0) AS first_visitors, toUInt64(0) AS human_first_visitors, \
         toUInt64(0) AS last_visitors, toUInt64(0) AS human_last_visitors \
         FROM link_clicks WHERE {within} GROUP BY user_id, link_id, hour \
         UNION ALL \
         SELECT user_id, link_id, tupleElement(mark, 1) AS hour, toUInt64(0), toUInt64(0), \
         toUInt64(0), toUInt64(0), toUInt64(0), countIf(tupleElement(mark, 2) = 1), \
         countIf(tupleElement(mark, 2) = 2), countIf(tupleElement(mark, 2) = 3), \
         countIf(tupleElement(mark, 2) = 4) FROM (\
         SELECT user_id, {link} AS link_id, visitor_id, \
         min(toStartOfHour(clicked_at)) AS first_hour, max(toStartOfHour(clicked_at)) AS last_hour, \
         minIf(toStartOfHour(clicked_at), is_bot = 0) AS human_first_hour, \
         maxIf(toStartOfHour(clicked_at), is_bot = 0) AS human_last_hour, \
         countIf(is_bot = 0) AS human \
         FROM link_clicks WHERE {within} GROUP BY user_id, link_id, visitor_id) \
         ARRAY JOIN [(first_hour, 1), (human_first_hour, 2), (last_hour, 3), (human_last_hour, 4)] AS mark \
         WHERE tupleElement(mark, 2) IN (1, 3) OR human > 0 \
         GROUP BY user_id, link_id, hour) \
         GROUP BY user_id, link_id, hour"
    )
}

/// Per breakdown value per day, every dimension in one pass.
fn values_sql(scope: Scope, day: NaiveDate, version: u64) -> String {
    let link = scope.link_id();
    let within = within_day(day);
    let pairs = DIMENSIONS
        .iter()
        .map(|d| format!("({}, {})", quote(d.name), d.column()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO link_clicks_rollup_values (user_id, dimension, link_id, day, value, version, \
         clicks, human_clicks, bot_clicks, visitors, human_visitors) \
         SELECT user_id, tupleElement(dv, 1) AS dimension, {link} AS link_id, \
         toDate(clicked_at) AS day, tupleElement(dv, 2) AS value, toUInt64({version}), \
         uniqExact(click_id), uniqExactIf(click_id, is_bot = 0), uniqExactIf(click_id, is_bot = 1), \
         uniqExact(visitor_id), uniqExactIf(visitor_id, is_bot = 0) \
         FROM link_clicks ARRAY JOIN [{pairs}] AS dv WHERE {within} \
         GROUP BY user_id, dimension, link_id, day, value"
    )
}

/// `days` as a list of ClickHouse dates, for `IN (…)`.
pub(super) fn dates_sql(days: &[NaiveDate]) -> String {
    let dates: Vec<String> = days.iter().map(|d| format!("toDate('{d}')")).collect();
    dates.join(", ")
}

fn record_sql(day: NaiveDate, received: u64, version: u64) -> String {
    format!(
        "INSERT INTO link_clicks_rollups (day, received, version) VALUES ('{day}', {received}, {version})"
    )
}

/// The statements of one day's rollup, in order: the rows, then the record that makes them
/// current.
pub fn day_statements(day: NaiveDate, received: u64, version: u64) -> Vec<String> {
    vec![
        hours_sql(Scope::Link, day, version),
        hours_sql(Scope::Account, day, version),
        values_sql(Scope::Link, day, version),
        values_sql(Scope::Account, day, version),
        record_sql(day, received, version),
    ]
}

/// Rows received per day, and what the newest rollup of the day had seen, for days in
/// `[from, to)` (all days without bounds).
pub fn day_states_sql(bounds: Option<(NaiveDate, NaiveDate)>) -> String {
    let filter = bounds.map_or(String::new(), |(from, to)| {
        format!("WHERE day >= toDate('{from}') AND day < toDate('{to}')")
    });
    format!(
        "SELECT 'arrived' AS kind, toString(day) AS date, toString(sum(received)) AS received \
         FROM link_clicks_arrivals {filter} GROUP BY day \
         UNION ALL \
         SELECT 'rolled' AS kind, toString(day) AS date, toString(argMax(received, version)) AS received \
         FROM link_clicks_rollups {filter} GROUP BY day"
    )
}

#[derive(Deserialize)]
struct DayStateRow {
    kind: String,
    date: NaiveDate,
    #[serde(deserialize_with = "uint64")]
    received: u64,
}

/// One day: rows received so far, and how many its newest rollup had seen.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct DayState {
    arrived: u64,
    rolled: Option<u64>,
}

impl DayState {
    fn current(self) -> bool {
        self.rolled == Some(self.arrived)
    }
}

async fn day_states(
    ch: &ClickHouse,
    bounds: Option<(NaiveDate, NaiveDate)>,
) -> Result<BTreeMap<NaiveDate, DayState>, ClickHouseError> {
    let rows: Vec<DayStateRow> = ch.query(&day_states_sql(bounds)).await?;
    let mut days = BTreeMap::<NaiveDate, DayState>::new();
    for row in rows {
        let state = days.entry(row.date).or_default();
        if row.kind == "rolled" {
            state.rolled = Some(row.received);
        } else {
            state.arrived = row.received;
        }
    }
    Ok(days)
}

/// The days (in `[from, to)`, or all) whose rollups hold every row received for them.
pub async fn current_days(
    ch: &ClickHouse,
    bounds: Option<(NaiveDate, NaiveDate)>,
) -> Result<BTreeSet<NaiveDate>, ClickHouseError> {
    Ok(day_states(ch, bounds)
        .await?
        .into_iter()
        .filter(|(_, state)| state.current())
        .map(|(day, _)| day)
        .collect())
}

#[derive(Deserialize)]
struct Partition {
    day: NaiveDate,
}

#[derive(Deserialize)]
struct Table {
    name: String,
}

/// Drops the partitions older than [`RECENT_KEEP_DAYS`] before `now`'s day from the recent
/// copies of the clicks: the one queries read (migration 0008) and the first one (0006), still
/// filled for origins of the previous release until a later migration drops it; a copy that is
/// gone is skipped, so origins of this release keep working once it is. On a cluster, on every
/// node: the days are read through the `Distributed` tables.
async fn drop_old_recent_days(ch: &ClickHouse, now: DateTime<Utc>) -> Result<(), ClickHouseError> {
    let oldest_kept = now.date_naive() - chrono::Duration::days(RECENT_KEEP_DAYS);
    let copies: Vec<Table> = ch
        .query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() \
             AND name IN ('link_clicks_recent_v2', 'link_clicks_recent')",
        )
        .await?;
    for Table { name: table } in copies {
        let partitions: Vec<Partition> = ch
            .query(&format!(
                "SELECT DISTINCT toString(toDate(clicked_at)) AS day FROM {table} \
                 WHERE clicked_at < toDateTime({})",
                midnight(oldest_kept)
            ))
            .await?;
        for Partition { day } in partitions {
            let everywhere = ch
                .alter_local(&table, &format!("DROP PARTITION '{day}'"))
                .await?;
            if everywhere {
                tracing::info!(%table, %day, "dropped an old day of the recent clicks");
            } else {
                tracing::warn!(%table, %day, "dropped an old day of the recent clicks on the nodes up; the others drop it when they are back");
            }
        }
    }
    Ok(())
}

/// Rolls every settled day whose rollup is missing or behind, then drops the old days of the
/// recent copies; returns how many days were rolled.
#[tracing::instrument(skip(ch))]
pub async fn roll_settled_days(
    ch: &ClickHouse,
    now: DateTime<Utc>,
) -> Result<u64, ClickHouseError> {
    let settled_before = (now - SETTLE).date_naive();
    let mut rolled = 0;
    for (day, state) in day_states(ch, None).await? {
        if day >= settled_before || state.current() {
            continue;
        }
        let version = u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
        for statement in day_statements(day, state.arrived, version) {
            ch.execute_long(&statement, STATEMENT_TIMEOUT).await?;
        }
        tracing::info!(%day, received = state.arrived, "analytics rollup");
        rolled += 1;
    }
    drop_old_recent_days(ch, now).await?;
    Ok(rolled)
}

/// Starts rolling every `interval` (the first pass right away).
pub fn start(ch: ClickHouse, interval: Duration) -> Periodic {
    Periodic::start(
        "analytics rollup",
        interval,
        PassMetrics {
            done: crate::metrics::ANALYTICS_DAYS_ROLLED,
            failures: crate::metrics::ANALYTICS_ROLLUP_FAILURES,
        },
        move || {
            let ch = ch.clone();
            async move { roll_settled_days(&ch, Utc::now()).await }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollup_is_current_only_while_it_has_seen_every_row() {
        let state = |arrived, rolled| DayState { arrived, rolled };
        assert!(state(5, Some(5)).current());
        assert!(!state(6, Some(5)).current());
        assert!(!state(5, None).current());
    }

    #[test]
    fn the_record_comes_last() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        let statements = day_statements(day, 7, 42);
        assert!(statements[..4]
            .iter()
            .all(|s| s.contains("clicked_at >= toDateTime(1793577600)")));
        assert_eq!(
            statements.last().unwrap(),
            "INSERT INTO link_clicks_rollups (day, received, version) VALUES ('2026-11-02', 7, 42)"
        );
    }
}
