//! The analytics API's questions: totals, time series and breakdowns per link or per account,
//! as the SQL that asks them and the answers it gives. Each question splits its range by the
//! [`Plan`] (rollups for settled days, raw tables for the rest) and adds the parts' measures.
//!
//! This module is the analytics read side's one public face: it also re-exports what a caller
//! needs to ask (the range, subject and dimension types) and the recent clicks.
//!
//! Values reach the SQL only as numbers we format or through [`quote`].

use super::calendar::{local_rfc3339, utc_day};
use super::escape::quote;
use super::measures::{rolled, select_measures, HourRow, MeasuresRow};
use super::rollup;
use crate::clickhouse::{ClickHouse, ClickHouseError};
use chrono::NaiveDate;
use futures_util::future::try_join_all;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub use super::calendar::{day_start, hour_start, max_span, Interval, Intervals, Range};
pub use super::dimensions::{Dimension, DASHBOARD_DIMENSIONS, DIMENSIONS};
pub use super::measures::Counts;
pub use super::plan::{Plan, Raw};
pub use super::recent::{
    click_rows_sql, clicks_sql, recent_clicks, ClickCursor, ClickKey, RecentClick,
};
pub use super::subject::Subject;

pub fn rollup_hours_sql(subject: &Subject, include_bots: bool, start: i64, end: i64) -> String {
    format!(
        "SELECT toUInt32(hour) AS hour, {} AS r_clicks, bot_clicks AS r_bot_clicks, \
         {} AS r_visitors, {} AS r_first, {} AS r_last \
         FROM link_clicks_rollup_hours FINAL \
         WHERE {} AND hour >= toDateTime({start}) AND hour < toDateTime({end})",
        rolled(include_bots, "clicks"),
        rolled(include_bots, "visitors"),
        rolled(include_bots, "first_visitors"),
        rolled(include_bots, "last_visitors"),
        subject.rollup_filter(),
    )
}

/// What the rollups answer for one range: which days are current, and the range's rolled hours
/// by start. Asked once, it serves every question about the range.
#[derive(Debug)]
pub struct Rolled {
    plan: Plan,
    hours: BTreeMap<i64, HourRow>,
}

impl Rolled {
    /// Both at once: the hours do not depend on the plan, since rows of days that are not
    /// current are never looked up.
    pub async fn fetch(
        ch: &ClickHouse,
        subject: &Subject,
        range: &Range,
    ) -> Result<Self, ClickHouseError> {
        let sql = rollup_hours_sql(
            subject,
            range.include_bots,
            utc_day(range.from.timestamp()),
            range.to.timestamp(),
        );
        let (plan, rows) = tokio::try_join!(Plan::fetch(ch, range), ch.query::<HourRow>(&sql))?;
        Ok(Self {
            plan,
            hours: rows.into_iter().map(|row| (row.hour, row)).collect(),
        })
    }
}

/// Totals over open intervals of a range, from one raw table.
pub fn summary_sql(subject: &Subject, range: &Range, raw: Raw, open: &Intervals) -> String {
    format!(
        "SELECT {} FROM {} WHERE {} AND {}",
        select_measures(range.include_bots, "m"),
        raw.table(),
        subject.filter(),
        open.condition("clicked_at")
    )
}

#[tracing::instrument(skip(ch))]
pub async fn summary(
    ch: &ClickHouse,
    subject: &Subject,
    range: &Range,
) -> Result<Counts, ClickHouseError> {
    summary_of(
        ch,
        subject,
        range,
        &Rolled::fetch(ch, subject, range).await?,
    )
    .await
}

/// [`summary`] with the rollups already asked.
#[tracing::instrument(skip(ch, rolled))]
pub async fn summary_of(
    ch: &ClickHouse,
    subject: &Subject,
    range: &Range,
    rolled: &Rolled,
) -> Result<Counts, ClickHouseError> {
    let Rolled { plan, hours } = rolled;
    let mut pieces = Vec::new();
    let mut open = Intervals::default();
    plan.split(
        range.from.timestamp(),
        range.to.timestamp(),
        &mut pieces,
        &mut open,
    );
    let mut total = MeasuresRow::default();
    for piece in &pieces {
        total.add(&piece.measures(hours));
    }
    for (raw, part) in plan.sources(&open) {
        let rows: Vec<MeasuresRow> = ch.query(&summary_sql(subject, range, raw, &part)).await?;
        if let Some(row) = rows.first() {
            total.add(row);
        }
    }
    Ok(total.counts(range.include_bots))
}

#[derive(Debug, Deserialize)]
struct BucketRow {
    bucket: i64,
    #[serde(flatten)]
    measures: MeasuresRow,
}

/// Buckets over open intervals of a range, from one raw table.
pub fn timeseries_sql(
    subject: &Subject,
    range: &Range,
    interval: Interval,
    raw: Raw,
    open: &Intervals,
) -> String {
    let start = match interval {
        Interval::Hour => "toStartOfHour",
        Interval::Day => "toStartOfDay",
    };
    format!(
        "SELECT toUInt32({start}(clicked_at, {tz})) AS bucket, {measures} FROM {table} \
         WHERE {filter} AND {open} GROUP BY bucket ORDER BY bucket",
        table = raw.table(),
        tz = quote(range.tz.name()),
        measures = select_measures(range.include_bots, "m"),
        filter = subject.filter(),
        open = open.condition("clicked_at"),
    )
}

/// One bucket of a series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Point {
    /// Local start of the bucket, RFC 3339 with the zone's offset at that instant.
    pub start: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// Every bucket overlapping the range, empty ones as zeros.
#[tracing::instrument(skip(ch))]
pub async fn timeseries(
    ch: &ClickHouse,
    subject: &Subject,
    range: &Range,
    interval: Interval,
) -> Result<Vec<Point>, ClickHouseError> {
    let rolled = Rolled::fetch(ch, subject, range).await?;
    timeseries_of(ch, subject, range, interval, &rolled).await
}

/// [`timeseries`] with the rollups already asked.
#[tracing::instrument(skip(ch, rolled))]
pub async fn timeseries_of(
    ch: &ClickHouse,
    subject: &Subject,
    range: &Range,
    interval: Interval,
    rolled: &Rolled,
) -> Result<Vec<Point>, ClickHouseError> {
    let Rolled { plan, hours } = rolled;
    let buckets = range.buckets(interval);
    let (from, to) = (range.from.timestamp(), range.to.timestamp());
    let mut open = Intervals::default();
    let mut pieces = Vec::with_capacity(buckets.len());
    for (i, start) in buckets.iter().enumerate() {
        let end = buckets.get(i + 1).copied().unwrap_or(to).min(to);
        let mut own = Vec::new();
        plan.split((*start).max(from), end, &mut own, &mut open);
        pieces.push(own);
    }
    let mut open_rows = BTreeMap::<i64, MeasuresRow>::new();
    for (raw, part) in plan.sources(&open) {
        let sql = timeseries_sql(subject, range, interval, raw, &part);
        let rows: Vec<BucketRow> = ch.query(&sql).await?;
        for row in rows {
            open_rows.entry(row.bucket).or_default().add(&row.measures);
        }
    }
    Ok(buckets
        .into_iter()
        .zip(pieces)
        .map(|(start, pieces)| {
            let mut m = open_rows.get(&start).copied().unwrap_or_default();
            for piece in &pieces {
                m.add(&piece.measures(hours));
            }
            Point {
                start: local_rfc3339(range.tz, start),
                counts: m.counts(range.include_bots),
            }
        })
        .collect())
}

/// The top values over the current `days` (from the rollups) and the open intervals (from the
/// raw tables). A value's visitors on different UTC days are different ids, so they add up.
pub fn breakdown_sql(
    subject: &Subject,
    range: &Range,
    dimension: Dimension,
    limit: u32,
    days: &[NaiveDate],
    open: &[(Raw, Intervals)],
) -> String {
    let mut parts = Vec::new();
    if !days.is_empty() {
        parts.push(format!(
            "SELECT value, sum({clicks}) AS p_clicks, sum(bot_clicks) AS p_bot_clicks, \
             sum({visitors}) AS p_visitors FROM link_clicks_rollup_values FINAL \
             WHERE {filter} AND dimension = {name} AND day IN ({days}) GROUP BY value",
            clicks = rolled(range.include_bots, "clicks"),
            visitors = rolled(range.include_bots, "visitors"),
            filter = subject.rollup_filter(),
            name = quote(dimension.name),
            days = rollup::dates_sql(days),
        ));
    }
    for (raw, part) in open {
        parts.push(format!(
            "SELECT {column} AS value, {measures} FROM {table} WHERE {filter} AND {open} \
             GROUP BY value",
            column = dimension.column(),
            measures = select_measures(range.include_bots, "p"),
            table = raw.table(),
            filter = subject.filter(),
            open = part.condition("clicked_at"),
        ));
    }
    format!(
        "SELECT value, sum(p_clicks) AS m_clicks, sum(p_bot_clicks) AS m_bot_clicks, \
         sum(p_visitors) AS m_visitors FROM ({}) \
         GROUP BY value WITH TOTALS ORDER BY m_clicks DESC, value ASC LIMIT {limit}",
        parts.join(" UNION ALL ")
    )
}

/// One value of a dimension and its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BreakdownValue {
    /// The value as recorded; empty when unknown (no referrer, no UTM field, …).
    pub value: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// Clicks outside the top values. Unique visitors cannot be subtracted, so none are given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct OtherCounts {
    pub clicks: u64,
    pub human_clicks: u64,
    pub bot_clicks: u64,
}

#[derive(Debug, Deserialize)]
struct ValueRow {
    value: String,
    #[serde(flatten)]
    measures: MeasuresRow,
}

#[derive(Debug, Deserialize)]
struct WithTotals {
    data: Vec<ValueRow>,
    totals: Option<MeasuresRow>,
}

/// The top `limit` values by clicks, and everything else as `other`.
#[tracing::instrument(skip(ch))]
pub async fn breakdown(
    ch: &ClickHouse,
    subject: &Subject,
    range: &Range,
    dimension: Dimension,
    limit: u32,
) -> Result<(Vec<BreakdownValue>, OtherCounts), ClickHouseError> {
    let plan = Plan::fetch(ch, range).await?;
    breakdown_of(ch, subject, range, dimension, limit, &plan).await
}

/// [`breakdown`] with the plan already asked.
#[tracing::instrument(skip(ch, plan))]
pub async fn breakdown_of(
    ch: &ClickHouse,
    subject: &Subject,
    range: &Range,
    dimension: Dimension,
    limit: u32,
    plan: &Plan,
) -> Result<(Vec<BreakdownValue>, OtherCounts), ClickHouseError> {
    let (days, open) = plan.whole_days(range);
    let sources = plan.breakdown_sources(open, dimension);
    let body = ch
        .execute(&format!(
            "{} FORMAT JSON",
            breakdown_sql(subject, range, dimension, limit, &days, &sources)
        ))
        .await?;
    let answer: WithTotals = serde_json::from_str(&body)?;
    let totals = answer
        .totals
        .map(|t| t.counts(range.include_bots))
        .unwrap_or_default();
    // A value seen only from bots counts nothing while bots are excluded: its bot clicks stay in
    // `other` rather than listing a value with zero clicks.
    let values: Vec<BreakdownValue> = answer
        .data
        .into_iter()
        .map(|row| BreakdownValue {
            counts: row.measures.counts(range.include_bots),
            value: row.value,
        })
        .filter(|v| v.counts.clicks > 0)
        .collect();
    let listed = |f: fn(&Counts) -> u64| values.iter().map(|v| f(&v.counts)).sum::<u64>();
    let other = OtherCounts {
        clicks: totals.clicks - listed(|c| c.clicks),
        human_clicks: totals.human_clicks - listed(|c| c.human_clicks),
        bot_clicks: totals.bot_clicks - listed(|c| c.bot_clicks),
    };
    Ok((values, other))
}

/// The aggregate answers of one range: totals, the series, and each asked breakdown.
#[derive(Debug)]
pub struct Overview {
    pub counts: Counts,
    pub points: Vec<Point>,
    /// In the order the dimensions were asked.
    pub breakdowns: Vec<(Vec<BreakdownValue>, OtherCounts)>,
}

/// [`summary`], [`timeseries`] and a [`breakdown`] per dimension, from one [`Rolled`] lookup,
/// their queries run at the same time.
#[tracing::instrument(skip(ch))]
pub async fn overview(
    ch: &ClickHouse,
    subject: &Subject,
    range: &Range,
    interval: Interval,
    dimensions: &[Dimension],
    limit: u32,
) -> Result<Overview, ClickHouseError> {
    let rolled = Rolled::fetch(ch, subject, range).await?;
    let breakdowns = dimensions
        .iter()
        .map(|&d| breakdown_of(ch, subject, range, d, limit, &rolled.plan));
    let (counts, points, breakdowns) = tokio::try_join!(
        summary_of(ch, subject, range, &rolled),
        timeseries_of(ch, subject, range, interval, &rolled),
        try_join_all(breakdowns),
    )?;
    Ok(Overview {
        counts,
        points,
        breakdowns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;
    use uuid::Uuid;

    use crate::analytics::calendar::tests::{at, range};

    #[test]
    fn queries_quote_every_value() {
        let subject = Subject::Link {
            user_id: Uuid::nil(),
            link_id: Uuid::max(),
        };
        let r = range("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", Tz::UTC);
        let cursor = ClickCursor {
            clicked_at: 5,
            click_id: "abc".into(),
        };
        let sql = clicks_sql(&subject, &r, Some(&cursor), 10);
        assert!(sql.contains(
            "user_id = '00000000-0000-0000-0000-000000000000' AND link_id = 'ffffffff-ffff-ffff-ffff-ffffffffffff'"
        ));
        assert!(sql.contains("click_id < 'abc'"));
        assert!(sql.contains("is_bot = 0"));
        assert!(
            timeseries_sql(&subject, &r, Interval::Day, Raw::Clicks, &r.whole())
                .contains("toStartOfDay(clicked_at, 'UTC')")
        );
    }

    /// The SQL `scripts/check_clickhouse_sql.py` runs on ClickHouse 26 (chDB), rendered by the
    /// functions the API uses, over the script's fixture link.
    fn checked_queries() -> std::collections::BTreeMap<&'static str, String> {
        let user_id: Uuid = "00000000-0000-4000-8000-0000000000a1".parse().unwrap();
        let link = Subject::Link {
            user_id,
            link_id: "00000000-0000-4000-8000-0000000000b1".parse().unwrap(),
        };
        let account = Subject::Account { user_id };
        let utc = range("2026-11-02T00:00:00Z", "2026-11-05T00:00:00Z", Tz::UTC);
        let off_hour = range("2026-11-02T00:00:00Z", "2026-11-04T05:00:01Z", Tz::UTC);
        let new_york = range(
            "2026-11-02T05:00:00Z",
            "2026-11-05T05:00:00Z",
            chrono_tz::America::New_York,
        );
        let kolkata = range(
            "2026-11-01T18:30:00Z",
            "2026-11-04T18:30:00Z",
            chrono_tz::Asia::Kolkata,
        );
        let before_c3 = ClickCursor {
            clicked_at: at("2026-11-03T00:30:00Z").timestamp(),
            click_id: "c3".into(),
        };
        let country = Dimension::named("country").unwrap();
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        // 2026-11-02 and 03 rolled, the 4th open.
        let plan = Plan::new([day(2), day(3)], at("2026-11-05T12:00:00Z"));
        let (rolled_days, rolled_open) = plan.whole_days(&utc);
        let mut rollups = crate::analytics::rollup::day_statements(day(2), 3, 1);
        rollups.extend(crate::analytics::rollup::day_statements(day(3), 3, 1));
        [
            (
                "summary",
                summary_sql(&link, &utc, Raw::Clicks, &utc.whole()),
            ),
            (
                "summary_recent",
                summary_sql(&link, &utc, Raw::Recent, &utc.whole()),
            ),
            (
                "summary_off_hour",
                summary_sql(&link, &off_hour, Raw::Clicks, &off_hour.whole()),
            ),
            (
                "series_new_york",
                timeseries_sql(
                    &link,
                    &new_york,
                    Interval::Day,
                    Raw::Clicks,
                    &new_york.whole(),
                ),
            ),
            (
                "series_kolkata",
                timeseries_sql(
                    &link,
                    &kolkata,
                    Interval::Day,
                    Raw::Recent,
                    &kolkata.whole(),
                ),
            ),
            (
                "breakdown_country",
                breakdown_sql(
                    &account,
                    &utc,
                    country,
                    2,
                    &[],
                    &[(Raw::Recent, utc.whole())],
                ),
            ),
            ("rollup_days", rollups.join(";\n")),
            (
                "rollup_day_states",
                crate::analytics::rollup::day_states_sql(Some((day(2), day(5)))),
            ),
            (
                "rollup_hours",
                rollup_hours_sql(
                    &link,
                    false,
                    at("2026-11-02T00:00:00Z").timestamp(),
                    at("2026-11-04T00:00:00Z").timestamp(),
                ),
            ),
            (
                "breakdown_country_rolled",
                breakdown_sql(
                    &link,
                    &utc,
                    country,
                    2,
                    &rolled_days,
                    &plan.sources(&rolled_open),
                ),
            ),
            (
                "breakdown_qr",
                breakdown_sql(
                    &account,
                    &utc,
                    Dimension::named("qr").unwrap(),
                    2,
                    &rolled_days,
                    &plan.breakdown_sources(rolled_open.clone(), Dimension::named("qr").unwrap()),
                ),
            ),
            (
                "breakdown_rule",
                breakdown_sql(
                    &account,
                    &utc,
                    Dimension::named("rule").unwrap(),
                    2,
                    &rolled_days,
                    &plan.breakdown_sources(rolled_open.clone(), Dimension::named("rule").unwrap()),
                ),
            ),
            ("clicks_page", clicks_sql(&link, &utc, Some(&before_c3), 10)),
            (
                "clicks_rows",
                click_rows_sql(
                    &link,
                    &[
                        ("c2", "2026-11-02T10:30:00Z"),
                        ("c1", "2026-11-02T10:00:00Z"),
                    ]
                    .map(|(id, time)| ClickKey {
                        click_id: id.into(),
                        clicked_unix: at(time).timestamp(),
                        link_id: "00000000-0000-4000-8000-0000000000b1".into(),
                    }),
                ),
            ),
            ("sync_totals", crate::analytics::sync::totals_sql(&[])),
            (
                "sync_totals_rolled",
                crate::analytics::sync::totals_sql(&[day(2), day(3)]),
            ),
            (
                "escaped_literal",
                format!(
                    "SELECT {}",
                    crate::analytics::escape::quote("x'); DROP TABLE t; --\\\n\0\u{1b}")
                ),
            ),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn the_sql_checked_on_a_modern_engine_is_the_sql_we_issue() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/analytics_queries.json"
        );
        let rendered = serde_json::to_string_pretty(&checked_queries()).unwrap() + "\n";
        if std::env::var_os("UPDATE_ANALYTICS_SQL").is_some() {
            std::fs::write(path, &rendered).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(path).unwrap_or_default(),
            rendered,
            "analytics SQL changed: rerun with UPDATE_ANALYTICS_SQL=1, then scripts/check_clickhouse_sql.py"
        );
    }
}
