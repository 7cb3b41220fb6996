//! The analytics SQL and its results.
//!
//! Where each answer comes from:
//! - UTC days whose rollup is current ([`rollup`]) are read from the rollups, plain numbers: hours
//!   (`link_clicks_rollup_hours`) for totals and series, days (`link_clicks_rollup_values`) for
//!   breakdowns. A totals or series bucket takes a day's piece from them when the piece is on
//!   whole hours and its distinct visitors are known: the whole day, its first or last hours, or
//!   one hour. Visitor ids are salted per UTC day, so pieces of different days never share a
//!   visitor and their uniques add up; within a day they never do, and are never added.
//! - Everything else (today, days with late rows, ranges off the hour, pieces in the middle of a
//!   day, zones whose days start at :30) is "open" and read from `link_clicks`, like the recent
//!   clicks. Its sort key starts with `link_id`, so a per-link query reads only that link's rows.
//!   (Merging exact-distinct states from an aggregate view costs more than hashing the raw ids
//!   on ClickHouse 18.16: docs/BENCHMARKS.md.)
//!
//! Every count is over distinct `click_id`, so duplicate deliveries never inflate it. Values reach
//! the SQL only as numbers we format or through [`quote`].

use super::escape::quote;
use super::rollup;
use crate::clickhouse::{uint64, ClickHouse, ClickHouseError};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, BTreeSet};
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

    /// The subject's rows in the rollups, where `link_id = ''` holds the account's.
    fn rollup_filter(&self) -> String {
        let (user_id, link_id) = match self {
            Self::Link { user_id, link_id } => (user_id, link_id.to_string()),
            Self::Account { user_id } => (user_id, String::new()),
        };
        format!(
            "user_id = {} AND link_id = {}",
            quote(&user_id.to_string()),
            quote(&link_id)
        )
    }
}

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// Start of the UTC day containing `unix`.
fn utc_day(unix: i64) -> i64 {
    unix - unix.rem_euclid(DAY)
}

/// `[start, end)` cut at UTC midnights: each piece as (its day's start, piece start, piece end).
fn by_utc_day(start: i64, end: i64) -> impl Iterator<Item = (i64, i64, i64)> {
    let piece = move |at: i64| {
        let day = utc_day(at);
        (day, at, end.min(day + DAY))
    };
    std::iter::successors(
        (start < end).then(|| piece(start)),
        move |&(_, _, piece_end)| (piece_end < end).then(|| piece(piece_end)),
    )
}

fn date_of(unix: i64) -> NaiveDate {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .date_naive()
}

/// Intervals `[start, end)` in unix seconds, adjacent ones joined.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Intervals(Vec<(i64, i64)>);

impl Intervals {
    fn push(&mut self, start: i64, end: i64) {
        match self.0.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => self.0.push((start, end)),
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The parts before `cutoff` and from it on.
    fn split_at(&self, cutoff: i64) -> (Self, Self) {
        let (mut before, mut after) = (Self::default(), Self::default());
        for &(start, end) in &self.0 {
            if start < cutoff {
                before.push(start, end.min(cutoff));
            }
            if end > cutoff {
                after.push(start.max(cutoff), end);
            }
        }
        (before, after)
    }

    fn condition(&self, time: &str) -> String {
        let each: Vec<String> = self
            .0
            .iter()
            .map(|(start, end)| {
                format!("({time} >= toDateTime({start}) AND {time} < toDateTime({end}))")
            })
            .collect();
        format!("({})", each.join(" OR "))
    }
}

/// A piece of one UTC day, hours `[from_hour, to_hour)` of the day starting at `day`, that the
/// hour rollups answer exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    day: i64,
    from_hour: i64,
    to_hour: i64,
}

/// The raw tables open data is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raw {
    /// Every click, sorted by link.
    Clicks,
    /// The last few days, sorted by account (migration 0006).
    Recent,
}

impl Raw {
    fn table(self) -> &'static str {
        match self {
            Self::Clicks => "link_clicks",
            Self::Recent => "link_clicks_recent",
        }
    }
}

/// How one range splits between the rollups and the open data.
#[derive(Debug)]
pub struct Plan {
    /// UTC days (their starts) whose rollups are current.
    current: BTreeSet<i64>,
    /// Open data from here on is read from `link_clicks_recent`.
    recent_from: i64,
}

impl Plan {
    /// Looks up which days of the range have current rollups.
    pub async fn fetch(ch: &ClickHouse, range: &Range) -> Result<Self, ClickHouseError> {
        let from = date_of(range.from.timestamp());
        let to = date_of(range.to.timestamp()) + Duration::days(1);
        let days = rollup::current_days(ch, Some((from, to))).await?;
        Ok(Self::new(days, Utc::now()))
    }

    /// A plan over these current days (none: everything is open) at `now`.
    pub fn new(days: impl IntoIterator<Item = NaiveDate>, now: DateTime<Utc>) -> Self {
        Self {
            current: days.into_iter().map(rollup::midnight).collect(),
            recent_from: utc_day(now.timestamp()) - rollup::RECENT_READ_DAYS * DAY,
        }
    }

    /// Which raw table reads which open intervals. The cut is at a UTC midnight, so the parts
    /// share no click and no visitor and their counts add up.
    pub fn sources(&self, open: &Intervals) -> Vec<(Raw, Intervals)> {
        let (old, recent) = open.split_at(self.recent_from);
        [(Raw::Clicks, old), (Raw::Recent, recent)]
            .into_iter()
            .filter(|(_, part)| !part.is_empty())
            .collect()
    }

    /// Splits `[start, end)` at UTC midnights into pieces the hour rollups answer and open
    /// intervals for the rest.
    fn split(&self, start: i64, end: i64, pieces: &mut Vec<Piece>, open: &mut Intervals) {
        for (day, at, piece_end) in by_utc_day(start, end) {
            let (from_hour, to_hour) = ((at - day) / HOUR, (piece_end - day) / HOUR);
            let whole_hours = (at - day) % HOUR == 0 && (piece_end - day) % HOUR == 0;
            let visitors_known = from_hour == 0 || to_hour == 24 || to_hour - from_hour == 1;
            if whole_hours && visitors_known && self.current.contains(&day) {
                pieces.push(Piece {
                    day,
                    from_hour,
                    to_hour,
                });
            } else {
                open.push(at, piece_end);
            }
        }
    }

    /// The current days wholly inside the range, and the open intervals around them.
    fn whole_days(&self, range: &Range) -> (Vec<NaiveDate>, Intervals) {
        let mut days = Vec::new();
        let mut open = Intervals::default();
        for (day, at, piece_end) in by_utc_day(range.from.timestamp(), range.to.timestamp()) {
            if at == day && piece_end == day + DAY && self.current.contains(&day) {
                days.push(date_of(day));
            } else {
                open.push(at, piece_end);
            }
        }
        (days, open)
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

/// The measures over the raw table, exact distinct ids.
const CLICKS: &str = "uniqExact(click_id)";
const HUMAN_CLICKS: &str = "uniqExactIf(click_id, is_bot = 0)";
const BOT_CLICKS: &str = "uniqExactIf(click_id, is_bot = 1)";
const VISITORS: &str = "uniqExact(visitor_id)";
const HUMAN_VISITORS: &str = "uniqExactIf(visitor_id, is_bot = 0)";

impl Range {
    fn where_clause(&self, subject: &Subject, time: &str) -> String {
        format!(
            "{} AND {time} >= toDateTime({}) AND {time} < toDateTime({})",
            subject.filter(),
            self.from.timestamp(),
            self.to.timestamp()
        )
    }

    /// The whole range as one open interval (no rollups).
    pub fn whole(&self) -> Intervals {
        Intervals(vec![(self.from.timestamp(), self.to.timestamp())])
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

/// The measures of one group, as ClickHouse answers them: clicks and visitors with bots in or
/// out as asked, and bot clicks.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct MeasuresRow {
    #[serde(deserialize_with = "uint64")]
    m_clicks: u64,
    #[serde(deserialize_with = "uint64")]
    m_bot_clicks: u64,
    #[serde(deserialize_with = "uint64")]
    m_visitors: u64,
}

impl MeasuresRow {
    /// Adds the measures of a disjoint part (another UTC day: no shared clicks or visitors).
    fn add(&mut self, other: &Self) {
        self.m_clicks += other.m_clicks;
        self.m_bot_clicks += other.m_bot_clicks;
        self.m_visitors += other.m_visitors;
    }
}

/// Each measure is an exact set of ids, the costly part of every query (docs/BENCHMARKS.md), so
/// only three are computed; human clicks are all clicks minus bot clicks, since every delivery
/// of a click carries the same verdict. Named `{prefix}_clicks`, `{prefix}_bot_clicks`,
/// `{prefix}_visitors`.
fn select_measures(include_bots: bool, prefix: &str) -> String {
    let (clicks, visitors) = if include_bots {
        (CLICKS, VISITORS)
    } else {
        (HUMAN_CLICKS, HUMAN_VISITORS)
    };
    format!(
        "{clicks} AS {prefix}_clicks, {BOT_CLICKS} AS {prefix}_bot_clicks, {visitors} AS {prefix}_visitors"
    )
}

/// The rollups' column for a measure: humans only unless bots are included.
fn rolled(include_bots: bool, column: &str) -> String {
    if include_bots {
        column.to_owned()
    } else {
        format!("human_{column}")
    }
}

/// One hour of a current day, from `link_clicks_rollup_hours`.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct HourRow {
    hour: i64,
    #[serde(deserialize_with = "uint64")]
    r_clicks: u64,
    #[serde(deserialize_with = "uint64")]
    r_bot_clicks: u64,
    #[serde(deserialize_with = "uint64")]
    r_visitors: u64,
    #[serde(deserialize_with = "uint64")]
    r_first: u64,
    #[serde(deserialize_with = "uint64")]
    r_last: u64,
}

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

/// Which days of the range are rolled, and the range's rolled hours by start, asked at once:
/// the hours do not depend on the answer, since rows of days that are not current are never
/// looked up.
async fn plan_and_hours(
    ch: &ClickHouse,
    subject: &Subject,
    range: &Range,
) -> Result<(Plan, BTreeMap<i64, HourRow>), ClickHouseError> {
    let sql = rollup_hours_sql(
        subject,
        range.include_bots,
        utc_day(range.from.timestamp()),
        range.to.timestamp(),
    );
    let (plan, rows) = tokio::try_join!(Plan::fetch(ch, range), ch.query::<HourRow>(&sql))?;
    Ok((plan, rows.into_iter().map(|row| (row.hour, row)).collect()))
}

impl Piece {
    /// The piece's measures: clicks add up over hours; its distinct visitors are those whose
    /// first click of the day falls in it (a piece from midnight), whose last does (a piece to
    /// midnight), or those of its one hour.
    fn measures(&self, hours: &BTreeMap<i64, HourRow>) -> MeasuresRow {
        let mut m = MeasuresRow::default();
        for h in self.from_hour..self.to_hour {
            let Some(row) = hours.get(&(self.day + h * HOUR)) else {
                continue;
            };
            m.m_clicks += row.r_clicks;
            m.m_bot_clicks += row.r_bot_clicks;
            m.m_visitors += if self.from_hour == 0 {
                row.r_first
            } else if self.to_hour == 24 {
                row.r_last
            } else {
                row.r_visitors
            };
        }
        m
    }
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
    let (plan, hours) = plan_and_hours(ch, subject, range).await?;
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
        total.add(&piece.measures(&hours));
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
    let buckets = range.buckets(interval);
    let (plan, hours) = plan_and_hours(ch, subject, range).await?;
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
                m.add(&piece.measures(&hours));
            }
            Point {
                start: local_rfc3339(range.tz, start),
                counts: m.counts(range.include_bots),
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

    pub fn column(&self) -> &'static str {
        self.column
    }
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
            column = dimension.column,
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
    let (days, open) = plan.whole_days(range);
    let body = ch
        .execute(&format!(
            "{} FORMAT JSON",
            breakdown_sql(
                subject,
                range,
                dimension,
                limit,
                &days,
                &plan.sources(&open)
            )
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
    fn half_hour_zones_start_days_on_the_half_hour() {
        let r = range(
            "2026-11-01T00:00:00Z",
            "2026-11-03T00:00:00Z",
            chrono_tz::Asia::Kolkata,
        );
        assert_eq!(
            starts(&r, Interval::Day),
            [
                "2026-11-01T00:00:00+05:30",
                "2026-11-02T00:00:00+05:30",
                "2026-11-03T00:00:00+05:30",
            ]
        );
    }

    #[test]
    fn ranges_off_the_hour_keep_whole_buckets() {
        let r = range("2026-11-01T00:00:01Z", "2026-11-02T00:00:00Z", Tz::UTC);
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
            ("clicks_page", clicks_sql(&link, &utc, Some(&before_c3), 10)),
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

    #[test]
    fn ranges_split_into_rolled_pieces_and_open_intervals() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        // Now is noon on the 5th: link_clicks_recent is read from the 3rd on.
        let plan = Plan::new([day(2), day(3)], at("2026-11-05T12:00:00Z"));
        let t = |s: &str| at(s).timestamp();
        let mut pieces = Vec::new();
        let mut open = Intervals::default();
        // A New York day: the end of the 2nd from 05:00, the start of the 3rd to 05:00.
        plan.split(
            t("2026-11-02T05:00:00Z"),
            t("2026-11-03T05:00:00Z"),
            &mut pieces,
            &mut open,
        );
        let piece = |d: u32, from_hour, to_hour| Piece {
            day: t(&format!("2026-11-{d:02}T00:00:00Z")),
            from_hour,
            to_hour,
        };
        assert_eq!(pieces, [piece(2, 5, 24), piece(3, 0, 5)]);
        assert!(open.is_empty());
        // Hours 10 to 13: visitors of a middle piece are unknown; the 4th is not rolled.
        plan.split(
            t("2026-11-02T10:00:00Z"),
            t("2026-11-02T13:00:00Z"),
            &mut pieces,
            &mut open,
        );
        plan.split(
            t("2026-11-03T23:00:00Z"),
            t("2026-11-04T02:00:00Z"),
            &mut pieces,
            &mut open,
        );
        assert_eq!(pieces.last(), Some(&piece(3, 23, 24)));
        assert_eq!(
            open,
            Intervals(vec![
                (t("2026-11-02T10:00:00Z"), t("2026-11-02T13:00:00Z")),
                (t("2026-11-04T00:00:00Z"), t("2026-11-04T02:00:00Z")),
            ])
        );
        // Before the 3rd from link_clicks, after from the recent copy, cut at midnight.
        let across = Intervals(vec![(t("2026-11-02T20:00:00Z"), t("2026-11-04T02:00:00Z"))]);
        assert_eq!(
            plan.sources(&across),
            [
                (
                    Raw::Clicks,
                    Intervals(vec![(t("2026-11-02T20:00:00Z"), t("2026-11-03T00:00:00Z"))])
                ),
                (
                    Raw::Recent,
                    Intervals(vec![(t("2026-11-03T00:00:00Z"), t("2026-11-04T02:00:00Z"))])
                ),
            ]
        );
        assert_eq!(
            plan.sources(&open),
            [
                (
                    Raw::Clicks,
                    Intervals(vec![(t("2026-11-02T10:00:00Z"), t("2026-11-02T13:00:00Z"))])
                ),
                (
                    Raw::Recent,
                    Intervals(vec![(t("2026-11-04T00:00:00Z"), t("2026-11-04T02:00:00Z"))])
                ),
            ]
        );
        // Off the hour: open, even on a rolled day.
        let r = range("2026-11-02T00:00:00Z", "2026-11-04T00:00:01Z", Tz::UTC);
        let (days, open) = plan.whole_days(&r);
        assert_eq!(days, [day(2), day(3)]);
        assert_eq!(
            open,
            Intervals(vec![(t("2026-11-04T00:00:00Z"), t("2026-11-04T00:00:01Z"))])
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
