//! Which part of a range is read from the rollups and which from the raw tables.
//!
//! - UTC days whose rollup is current ([`rollup`]) are read from the rollups, plain numbers: hours
//!   (`link_clicks_rollup_hours`) for totals and series, days (`link_clicks_rollup_values`) for
//!   breakdowns. A totals or series bucket takes a day's piece from them when the piece is on
//!   whole hours and its distinct visitors are known: the whole day, its first or last hours, or
//!   one hour. Visitor ids are salted per UTC day, so pieces of different days never share a
//!   visitor and their uniques add up; within a day they never do, and are never added.
//! - Everything else (today, days with late rows, ranges off the hour, pieces in the middle of a
//!   day, zones whose days start at :30) is "open" and read from `link_clicks`, or from its
//!   account-sorted copy of the last days. `link_clicks`' sort key starts with `link_id`, so a
//!   per-link query reads only that link's rows. (Merging exact-distinct states from an aggregate
//!   view costs more than hashing the raw ids on ClickHouse 18.16: docs/BENCHMARKS.md.)

use super::calendar::{by_utc_day, date_of, utc_day, Intervals, Range, DAY, HOUR};
use super::dimensions::Dimension;
use super::rollup;
use crate::clickhouse::{ClickHouse, ClickHouseError};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::collections::BTreeSet;

/// A piece of one UTC day, hours `[from_hour, to_hour)` of the day starting at `day`, that the
/// hour rollups answer exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Piece {
    pub(super) day: i64,
    pub(super) from_hour: i64,
    pub(super) to_hour: i64,
}

/// The raw tables open data is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raw {
    /// Every click, sorted by link.
    Clicks,
    /// The last few days, sorted by account (migration 0008; 0006 made a first copy without
    /// the QR flag).
    Recent,
}

impl Raw {
    pub(super) fn table(self) -> &'static str {
        match self {
            Self::Clicks => "link_clicks",
            Self::Recent => "link_clicks_recent_v2",
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

    /// [`Plan::sources`] for a breakdown by `dimension`: all from `link_clicks` when the recent
    /// copy lacks its column.
    pub fn breakdown_sources(
        &self,
        open: Intervals,
        dimension: Dimension,
    ) -> Vec<(Raw, Intervals)> {
        if dimension.in_recent() {
            self.sources(&open)
        } else if open.is_empty() {
            Vec::new()
        } else {
            vec![(Raw::Clicks, open)]
        }
    }

    /// Splits `[start, end)` at UTC midnights into pieces the hour rollups answer and open
    /// intervals for the rest.
    pub(super) fn split(
        &self,
        start: i64,
        end: i64,
        pieces: &mut Vec<Piece>,
        open: &mut Intervals,
    ) {
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
    pub(super) fn whole_days(&self, range: &Range) -> (Vec<NaiveDate>, Intervals) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;

    use crate::analytics::calendar::tests::{at, range};

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
}
