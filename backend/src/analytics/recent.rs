//! Recent clicks, newest first, a page at a time. They are read from `link_clicks` row by row,
//! never from the rollups, so they need no plan.
//!
//! Two reads: which clicks make the page (id, time and link: three narrow columns over the
//! range), then every column of those clicks only, found through the table's sort key (link,
//! time). Reading every column of the range's rows before keeping the newest few took most of
//! the analytics page's time at 10M clicks.

use super::calendar::{local_rfc3339, Range};
use super::escape::quote;
use super::subject::Subject;
use crate::clickhouse::{ClickHouse, ClickHouseError};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeSet;
use utoipa::ToSchema;

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

/// A click of the page as the first read finds it: what the second read fetches.
#[derive(Debug, Clone, Deserialize)]
pub struct ClickKey {
    pub click_id: String,
    pub clicked_unix: i64,
    pub link_id: String,
}

/// The first read: the newest `limit` clicks of `subject` in `range`, strictly after `before`.
pub fn clicks_sql(
    subject: &Subject,
    range: &Range,
    before: Option<&ClickCursor>,
    limit: u32,
) -> String {
    let mut filter = format!(
        "{} AND clicked_at >= toDateTime({}) AND clicked_at < toDateTime({})",
        subject.filter(),
        range.from.timestamp(),
        range.to.timestamp()
    );
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
        "SELECT click_id, toUInt32(clicked_at) AS clicked_unix, link_id FROM link_clicks \
         WHERE {filter} ORDER BY clicked_at DESC, click_id DESC LIMIT 1 BY click_id LIMIT {limit}"
    )
}

/// The second read: every column of the clicks `keys` name (not empty), newest first.
pub fn click_rows_sql(subject: &Subject, keys: &[ClickKey]) -> String {
    let quoted =
        |values: BTreeSet<&str>| values.into_iter().map(quote).collect::<Vec<_>>().join(", ");
    let links = quoted(keys.iter().map(|k| k.link_id.as_str()).collect());
    let ids = quoted(keys.iter().map(|k| k.click_id.as_str()).collect());
    let times = keys.iter().map(|k| k.clicked_unix);
    let (from, to) = (times.clone().min(), times.max());
    format!(
        "SELECT {RECENT_COLUMNS} FROM link_clicks WHERE {} AND link_id IN ({links}) \
         AND clicked_at >= toDateTime({}) AND clicked_at <= toDateTime({}) AND click_id IN ({ids}) \
         ORDER BY clicked_at DESC, click_id DESC LIMIT 1 BY click_id",
        subject.filter(),
        from.unwrap_or_default(),
        to.unwrap_or_default()
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
    let keys: Vec<ClickKey> = ch.query(&clicks_sql(subject, range, before, limit)).await?;
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<RecentClick> = ch.query(&click_rows_sql(subject, &keys)).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
