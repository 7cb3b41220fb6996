//! What every answer counts: the measure expressions over the raw table and the rollups, the rows
//! ClickHouse returns them in, how disjoint parts add up, and the [`Counts`] the API shows.
//!
//! Every count is over distinct `click_id`, so duplicate deliveries never inflate it.

use super::calendar::HOUR;
use super::plan::Piece;
use crate::clickhouse::uint64;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The measures over the raw table, exact distinct ids.
const CLICKS: &str = "uniqExact(click_id)";
const HUMAN_CLICKS: &str = "uniqExactIf(click_id, is_bot = 0)";
const BOT_CLICKS: &str = "uniqExactIf(click_id, is_bot = 1)";
const VISITORS: &str = "uniqExact(visitor_id)";
const HUMAN_VISITORS: &str = "uniqExactIf(visitor_id, is_bot = 0)";

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

/// The measures of one group, as ClickHouse answers them: clicks and visitors with bots in or
/// out as asked, and bot clicks.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub(super) struct MeasuresRow {
    #[serde(deserialize_with = "uint64")]
    m_clicks: u64,
    #[serde(deserialize_with = "uint64")]
    m_bot_clicks: u64,
    #[serde(deserialize_with = "uint64")]
    m_visitors: u64,
}

impl MeasuresRow {
    /// Adds the measures of a disjoint part (another UTC day: no shared clicks or visitors).
    pub(super) fn add(&mut self, other: &Self) {
        self.m_clicks += other.m_clicks;
        self.m_bot_clicks += other.m_bot_clicks;
        self.m_visitors += other.m_visitors;
    }

    pub(super) fn counts(&self, include_bots: bool) -> Counts {
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

/// Each measure is an exact set of ids, the costly part of every query (docs/BENCHMARKS.md), so
/// only three are computed; human clicks are all clicks minus bot clicks, since every delivery
/// of a click carries the same verdict. Named `{prefix}_clicks`, `{prefix}_bot_clicks`,
/// `{prefix}_visitors`.
pub(super) fn select_measures(include_bots: bool, prefix: &str) -> String {
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
pub(super) fn rolled(include_bots: bool, column: &str) -> String {
    if include_bots {
        column.to_owned()
    } else {
        format!("human_{column}")
    }
}

/// One hour of a current day, from `link_clicks_rollup_hours`.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub(super) struct HourRow {
    pub(super) hour: i64,
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

impl Piece {
    /// The piece's measures: clicks add up over hours; its distinct visitors are those whose
    /// first click of the day falls in it (a piece from midnight), whose last does (a piece to
    /// midnight), or those of its one hour.
    pub(super) fn measures(&self, hours: &BTreeMap<i64, HourRow>) -> MeasuresRow {
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
