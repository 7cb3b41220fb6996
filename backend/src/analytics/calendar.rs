//! Time: the range a question covers, its buckets in the asker's zone (local hours and days,
//! DST and half-hour zones included), and the UTC-day arithmetic the rollups are cut on.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub(super) const HOUR: i64 = 3_600;
pub(super) const DAY: i64 = 86_400;

/// Start of the UTC day containing `unix`.
pub(super) fn utc_day(unix: i64) -> i64 {
    unix - unix.rem_euclid(DAY)
}

/// `[start, end)` cut at UTC midnights: each piece as (its day's start, piece start, piece end).
pub(super) fn by_utc_day(start: i64, end: i64) -> impl Iterator<Item = (i64, i64, i64)> {
    let piece = move |at: i64| {
        let day = utc_day(at);
        (day, at, end.min(day + DAY))
    };
    std::iter::successors(
        (start < end).then(|| piece(start)),
        move |&(_, _, piece_end)| (piece_end < end).then(|| piece(piece_end)),
    )
}

pub(super) fn date_of(unix: i64) -> NaiveDate {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .date_naive()
}

/// Intervals `[start, end)` in unix seconds, adjacent ones joined.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Intervals(pub(super) Vec<(i64, i64)>);

impl Intervals {
    pub(super) fn push(&mut self, start: i64, end: i64) {
        match self.0.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => self.0.push((start, end)),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The parts before `cutoff` and from it on.
    pub(super) fn split_at(&self, cutoff: i64) -> (Self, Self) {
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

    pub(super) fn condition(&self, time: &str) -> String {
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

impl Range {
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

pub(super) fn local_rfc3339(tz: Tz, unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .with_timezone(&tz)
        .to_rfc3339()
}

/// The longest span a range may cover.
pub fn max_span(interval: Interval) -> Duration {
    match interval {
        Interval::Hour => Duration::days(31),
        Interval::Day => Duration::days(366),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An instant written in RFC 3339, for the analytics tests.
    pub(in crate::analytics) fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    /// A range without bots, for the analytics tests.
    pub(in crate::analytics) fn range(from: &str, to: &str, tz: Tz) -> Range {
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
}
