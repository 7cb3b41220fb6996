//! The analytics SQL and its results.
//!
//! Where each answer comes from:
//! - totals and time series read `link_clicks_hourly` (exact per-hour states, merged) whenever the
//!   range starts and ends on a whole UTC hour and, for series, every bucket starts on one (true
//!   for every zone whose offset is a whole number of hours); otherwise `link_clicks`;
//! - breakdowns and the recent clicks read `link_clicks` (the breakdown dimensions are not
//!   pre-aggregated). Its sort key starts with `link_id`, so a per-link query reads only that
//!   link's rows.
//!
//! Every count is over distinct `click_id`, so duplicate deliveries never inflate it, and unique
//! visitors over a range are merged exactly, never summed per bucket. Values reach the SQL only as
//! numbers we format or through [`quote`].

use super::escape::quote;
use crate::clickhouse::{ClickHouse, ClickHouseError};
use chrono::{DateTime, Duration, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Whose clicks: one link of a user, or all of a user's links.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    Link { user_id: Uuid, link_id: Uuid },
    Account { user_id: Uuid },
}

impl Subject {
    fn filter(&self) -> String {
        match self {
            Self::Link { user_id, link_id } => format!(
                "user_id = {} AND link_id = {}",
                quote(&user_id.to_string()),
                quote(&link_id.to_string())
            ),
            Self::Account { user_id } => format!("user_id = {}", quote(&user_id.to_string())),
        }
    }
}

/// A validated range `[from, to)`, the zone buckets are cut in, and whether bots count.
#[derive(Debug, Clone)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub tz: Tz,
    pub include_bots: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Hour,
    Day,
}

/// Which table answers a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Hourly,
    Raw,
}

/// The measures over either table.
struct Measures {
    table: &'static str,
    time: &'static str,
    clicks: &'static str,
    human_clicks: &'static str,
    bot_clicks: &'static str,
    visitors: &'static str,
    human_visitors: &'static str,
}

const HOURLY: Measures = Measures {
    table: "link_clicks_hourly",
    time: "hour",
    clicks: "uniqExactMerge(clicks)",
    human_clicks: "uniqExactIfMerge(human_clicks)",
    bot_clicks: "uniqExactIfMerge(bot_clicks)",
    visitors: "uniqExactMerge(visitors)",
    human_visitors: "uniqExactIfMerge(human_visitors)",
};

const RAW: Measures = Measures {
    table: "link_clicks",
    time: "clicked_at",
    clicks: "uniqExact(click_id)",
    human_clicks: "uniqExactIf(click_id, is_bot = 0)",
    bot_clicks: "uniqExactIf(click_id, is_bot = 1)",
    visitors: "uniqExact(visitor_id)",
    human_visitors: "uniqExactIf(visitor_id, is_bot = 0)",
};

impl Source {
    fn measures(self) -> &'static Measures {
        match self {
            Self::Hourly => &HOURLY,
            Self::Raw => &RAW,
        }
    }
}

fn whole_hour(unix: i64) -> bool {
    unix % 3600 == 0
}

impl Range {
    /// Totals need whole hours at both ends to be read from the hourly view.
    pub fn totals_source(&self) -> Source {
        if whole_hour(self.from.timestamp()) && whole_hour(self.to.timestamp()) {
            Source::Hourly
        } else {
            Source::Raw
        }
    }

    /// Series also need every bucket to start on a whole UTC hour (not so in e.g. Asia/Kolkata).
    pub fn series_source(&self, buckets: &[i64]) -> Source {
        if self.totals_source() == Source::Hourly && buckets.iter().all(|b| whole_hour(*b)) {
            Source::Hourly
        } else {
            Source::Raw
        }
    }

    fn where_clause(&self, subject: &Subject, time: &str) -> String {
        format!(
            "{} AND {time} >= toDateTime({}) AND {time} < toDateTime({})",
            subject.filter(),
            self.from.timestamp(),
            self.to.timestamp()
        )
    }

    /// The start of every bucket that overlaps the range, in unix seconds, gaps included.
    pub fn buckets(&self, interval: Interval) -> Vec<i64> {
        let floor = |t: i64| match interval {
            Interval::Hour => hour_start(self.tz, t),
            Interval::Day => day_start(self.tz, t),
        };
        // Past any DST change, the next bucket's floor is the next bucket's start.
        let step = match interval {
            Interval::Hour => 3_600 + 1_800,
            Interval::Day => 26 * 3_600,
        };
        let end = self.to.timestamp();
        let mut buckets = Vec::new();
        let mut start = floor(self.from.timestamp());
        while start < end {
            buckets.push(start);
            start = floor(start + step).max(start + 1_800);
        }
        buckets
    }
}

fn offset_secs(tz: Tz, unix: i64) -> i64 {
    let utc = DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .naive_utc();
    i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc())
}

/// Start of the local hour containing `unix` (ClickHouse `toStartOfHour(t, tz)`).
pub fn hour_start(tz: Tz, unix: i64) -> i64 {
    let local = unix + offset_secs(tz, unix);
    unix - local.rem_euclid(3_600)
}

/// Start of the local day containing `unix` (ClickHouse `toStartOfDay(t, tz)`).
pub fn day_start(tz: Tz, unix: i64) -> i64 {
    let utc = DateTime::from_timestamp(unix, 0).unwrap_or_default();
    let midnight = utc.with_timezone(&tz).date_naive().and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight).earliest() {
        Some(start) => start.timestamp(),
        // Midnight skipped by a DST change: the day starts when the clock jumps.
        None => unix - (unix + offset_secs(tz, unix)).rem_euclid(86_400),
    }
}

/// Counts arrive as JSON strings (64-bit integers are quoted) or numbers.
fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        Number(u64),
        Text(String),
    }
    match Count::deserialize(deserializer)? {
        Count::Number(n) => Ok(n),
        Count::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// The measures of one group, as ClickHouse answers them: clicks and visitors with bots in or
/// out as asked, and bot clicks.
#[derive(Debug, Default, Deserialize)]
struct MeasuresRow {
    #[serde(deserialize_with = "count")]
    m_clicks: u64,
    #[serde(deserialize_with = "count")]
    m_bot_clicks: u64,
    #[serde(deserialize_with = "count")]
    m_visitors: u64,
}

/// Each measure is an exact set of ids, the costly part of every query (docs/BENCHMARKS.md), so
/// only three are computed; human clicks are all clicks minus bot clicks, since every delivery
/// of a click carries the same verdict.
fn select_measures(m: &Measures, include_bots: bool) -> String {
    let (clicks, visitors) = if include_bots {
        (m.clicks, m.visitors)
    } else {
        (m.human_clicks, m.human_visitors)
    };
    format!(
        "{clicks} AS m_clicks, {} AS m_bot_clicks, {visitors} AS m_visitors",
        m.bot_clicks
    )
}

/// What one group counts, with bots in or out as asked; bots always separately.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counts {
    /// Distinct clicks (humans only unless `include_bots`).
    pub clicks: u64,
    /// Distinct visitors (humans only unless `include_bots`); over a range this is exact, not the
    /// sum of per-bucket uniques.
    pub unique_visitors: u64,
    /// Distinct clicks by humans.
    pub human_clicks: u64,
    /// Distinct clicks by bots (crawlers, link previews, HEAD, prefetch), always reported.
    pub bot_clicks: u64,
}

impl MeasuresRow {
    fn counts(&self, include_bots: bool) -> Counts {
        Counts {
            clicks: self.m_clicks,
            unique_visitors: self.m_visitors,
            human_clicks: if include_bots {
                self.m_clicks.saturating_sub(self.m_bot_clicks)
            } else {
                self.m_clicks
            },
            bot_clicks: self.m_bot_clicks,
        }
    }
}

pub fn summary_sql(subject: &Subject, range: &Range, source: Source) -> String {
    let m = source.measures();
    format!(
        "SELECT {} FROM {} WHERE {}",
        select_measures(m, range.include_bots),
        m.table,
        range.where_clause(subject, m.time)
    )
}

#[tracing::instrument(skip(ch))]
pub async fn summary(
    ch: &ClickHouse,
    subject: &Subject,
    range: &Range,
) -> Result<Counts, ClickHouseError> {
    let rows: Vec<MeasuresRow> = ch
        .query(&summary_sql(subject, range, range.totals_source()))
        .await?;
    Ok(rows
        .first()
        .map(|row| row.counts(range.include_bots))
        .unwrap_or_default())
}

#[derive(Debug, Deserialize)]
struct BucketRow {
    bucket: i64,
    #[serde(flatten)]
    measures: MeasuresRow,
}

pub fn timeseries_sql(
    subject: &Subject,
    range: &Range,
    interval: Interval,
    source: Source,
) -> String {
    let m = source.measures();
    let start = match interval {
        Interval::Hour => "toStartOfHour",
        Interval::Day => "toStartOfDay",
    };
    format!(
        "SELECT toUInt32({start}({time}, {tz})) AS bucket, {measures} FROM {table} \
         WHERE {filter} GROUP BY bucket ORDER BY bucket",
        time = m.time,
        tz = quote(range.tz.name()),
        measures = select_measures(m, range.include_bots),
        table = m.table,
        filter = range.where_clause(subject, m.time),
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
    let buckets = range.buckets(interval);
    let source = range.series_source(&buckets);
    let rows: Vec<BucketRow> = ch
        .query(&timeseries_sql(subject, range, interval, source))
        .await?;
    let mut rows = rows.into_iter().peekable();
    Ok(buckets
        .into_iter()
        .map(|start| {
            while rows.next_if(|row| row.bucket < start).is_some() {}
            let counts = rows
                .next_if(|row| row.bucket == start)
                .map(|row| row.measures.counts(range.include_bots))
                .unwrap_or_default();
            Point {
                start: local_rfc3339(range.tz, start),
                counts,
            }
        })
        .collect())
}

fn local_rfc3339(tz: Tz, unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .with_timezone(&tz)
        .to_rfc3339()
}

/// A breakdown dimension and its column (identifiers come only from this list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimension {
    pub name: &'static str,
    column: &'static str,
}

pub const DIMENSIONS: &[Dimension] = &[
    Dimension::new("country", "country"),
    Dimension::new("region", "region"),
    Dimension::new("city", "city"),
    Dimension::new("device", "device_type"),
    Dimension::new("browser", "browser"),
    Dimension::new("os", "os"),
    Dimension::new("referrer", "referrer_domain"),
    Dimension::new("utm_source", "utm_source"),
    Dimension::new("utm_medium", "utm_medium"),
    Dimension::new("utm_campaign", "utm_campaign"),
    Dimension::new("utm_term", "utm_term"),
    Dimension::new("utm_content", "utm_content"),
];

impl Dimension {
    const fn new(name: &'static str, column: &'static str) -> Self {
        Self { name, column }
    }

    pub fn named(name: &str) -> Option<Self> {
        DIMENSIONS.iter().copied().find(|d| d.name == name)
    }
}

pub fn breakdown_sql(subject: &Subject, range: &Range, dimension: Dimension, limit: u32) -> String {
    format!(
        "SELECT {column} AS value, {measures} FROM link_clicks WHERE {filter} \
         GROUP BY value WITH TOTALS ORDER BY m_clicks DESC, value ASC LIMIT {limit}",
        column = dimension.column,
        measures = select_measures(&RAW, range.include_bots),
        filter = range.where_clause(subject, "clicked_at"),
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
    let body = ch
        .execute(&format!(
            "{} FORMAT JSON",
            breakdown_sql(subject, range, dimension, limit)
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

/// Where a page of recent clicks ends: the last click's time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickCursor {
    pub clicked_at: i64,
    pub click_id: String,
}

impl ClickCursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.clicked_at, self.click_id)
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let (at, id) = raw.split_once('.')?;
        let valid_id = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        valid_id.then(|| {
            Some(Self {
                clicked_at: at.parse().ok().filter(|at| *at >= 0)?,
                click_id: id.to_owned(),
            })
        })?
    }
}

/// One recorded click. No IP is ever stored; the visitor hash is left out too.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct RecentClick {
    pub click_id: String,
    #[serde(skip_serializing)]
    #[schema(ignore)]
    clicked_unix: i64,
    /// RFC 3339 in the requested zone.
    #[serde(default)]
    pub clicked_at: String,
    pub link_id: String,
    pub slug: String,
    pub country: String,
    pub region: String,
    pub city: String,
    pub device_type: String,
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    pub referrer: String,
    pub referrer_domain: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_term: String,
    pub utm_content: String,
    pub method: String,
    #[serde(deserialize_with = "flag")]
    pub is_qr: bool,
    #[serde(deserialize_with = "flag")]
    pub is_bot: bool,
    /// Why it counts as a bot; empty for humans.
    pub bot_reason: String,
}

const RECENT_COLUMNS: &str = "click_id, toUInt32(clicked_at) AS clicked_unix, link_id, slug, \
    country, region, city, device_type, browser, browser_version, os, os_version, referrer, \
    referrer_domain, utm_source, utm_medium, utm_campaign, utm_term, utm_content, method, is_qr, \
    is_bot, bot_reason";

/// ClickHouse's `UInt8` flags as booleans.
fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(u8::deserialize(deserializer)? != 0)
}

pub fn clicks_sql(
    subject: &Subject,
    range: &Range,
    before: Option<&ClickCursor>,
    limit: u32,
) -> String {
    let mut filter = range.where_clause(subject, "clicked_at");
    if !range.include_bots {
        filter.push_str(" AND is_bot = 0");
    }
    if let Some(c) = before {
        filter.push_str(&format!(
            " AND (clicked_at < toDateTime({at}) OR (clicked_at = toDateTime({at}) AND click_id < {id}))",
            at = c.clicked_at,
            id = quote(&c.click_id)
        ));
    }
    // A duplicate delivery is one click: one row per click_id.
    format!(
        "SELECT {RECENT_COLUMNS} FROM link_clicks WHERE {filter} \
         ORDER BY clicked_at DESC, click_id DESC LIMIT 1 BY click_id LIMIT {limit}"
    )
}

/// Newest first, at most `limit`, strictly after `before` in that order.
#[tracing::instrument(skip(ch))]
pub async fn recent_clicks(
    ch: &ClickHouse,
    subject: &Subject,
    range: &Range,
    before: Option<&ClickCursor>,
    limit: u32,
) -> Result<Vec<RecentClick>, ClickHouseError> {
    let mut rows: Vec<RecentClick> = ch.query(&clicks_sql(subject, range, before, limit)).await?;
    for row in &mut rows {
        row.clicked_at = local_rfc3339(range.tz, row.clicked_unix);
    }
    Ok(rows)
}

impl RecentClick {
    pub fn cursor(&self) -> ClickCursor {
        ClickCursor {
            clicked_at: self.clicked_unix,
            click_id: self.click_id.clone(),
        }
    }
}

/// The longest span a range may cover.
pub fn max_span(interval: Interval) -> Duration {
    match interval {
        Interval::Hour => Duration::days(31),
        Interval::Day => Duration::days(366),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    fn range(from: &str, to: &str, tz: Tz) -> Range {
        Range {
            from: at(from),
            to: at(to),
            tz,
            include_bots: false,
        }
    }

    fn starts(r: &Range, interval: Interval) -> Vec<String> {
        r.buckets(interval)
            .into_iter()
            .map(|b| local_rfc3339(r.tz, b))
            .collect()
    }

    #[test]
    fn days_follow_local_midnights_across_dst() {
        let r = range(
            "2026-03-07T05:00:00Z",
            "2026-03-10T04:00:00Z",
            chrono_tz::America::New_York,
        );
        assert_eq!(
            starts(&r, Interval::Day),
            [
                "2026-03-07T00:00:00-05:00",
                "2026-03-08T00:00:00-05:00",
                "2026-03-09T00:00:00-04:00",
            ]
        );
        assert_eq!(r.series_source(&r.buckets(Interval::Day)), Source::Hourly);
    }

    #[test]
    fn hours_skip_and_repeat_with_the_clock() {
        let r = range(
            "2026-10-25T00:00:00Z",
            "2026-10-25T03:00:00Z",
            chrono_tz::Europe::Berlin,
        );
        assert_eq!(
            starts(&r, Interval::Hour),
            [
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T03:00:00+01:00",
            ]
        );
    }

    #[test]
    fn half_hour_zones_read_the_raw_table() {
        let r = range(
            "2026-11-01T00:00:00Z",
            "2026-11-03T00:00:00Z",
            chrono_tz::Asia::Kolkata,
        );
        let buckets = r.buckets(Interval::Day);
        assert_eq!(
            starts(&r, Interval::Day),
            [
                "2026-11-01T00:00:00+05:30",
                "2026-11-02T00:00:00+05:30",
                "2026-11-03T00:00:00+05:30",
            ]
        );
        assert_eq!(r.series_source(&buckets), Source::Raw);
        assert_eq!(r.totals_source(), Source::Hourly);
    }

    #[test]
    fn ranges_off_the_hour_read_the_raw_table() {
        let r = range("2026-11-01T00:00:01Z", "2026-11-02T00:00:00Z", Tz::UTC);
        assert_eq!(r.totals_source(), Source::Raw);
        assert_eq!(starts(&r, Interval::Day), ["2026-11-01T00:00:00+00:00"]);
    }

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
        assert!(timeseries_sql(&subject, &r, Interval::Day, Source::Raw)
            .contains("toStartOfDay(clicked_at, 'UTC')"));
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
        [
            ("summary_hourly", summary_sql(&link, &utc, Source::Hourly)),
            ("summary_raw", summary_sql(&link, &off_hour, Source::Raw)),
            (
                "series_new_york_hourly",
                timeseries_sql(&link, &new_york, Interval::Day, Source::Hourly),
            ),
            (
                "series_kolkata_raw",
                timeseries_sql(&link, &kolkata, Interval::Day, Source::Raw),
            ),
            (
                "breakdown_country",
                breakdown_sql(&account, &utc, country, 2),
            ),
            ("clicks_page", clicks_sql(&link, &utc, Some(&before_c3), 10)),
            ("sync_totals", crate::analytics::sync::TOTALS_SQL.to_owned()),
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

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let cursor = ClickCursor {
            clicked_at: 1_764_000_000,
            click_id: "0b6f-aa".into(),
        };
        assert_eq!(ClickCursor::decode(&cursor.encode()), Some(cursor));
        for junk in ["", "1", ".x", "-1.x", "1.x'y", "1.", "a.b"] {
            assert_eq!(ClickCursor::decode(junk), None, "{junk}");
        }
    }
}
