//! Analytics over ClickHouse: totals, time series, breakdowns and recent clicks per link and per
//! account (`/v1/links/{id}/analytics/*`, `/v1/analytics/*`), the one escaping function for
//! values in analytics SQL, the task that rolls finished days into plain numbers, and the task
//! that mirrors click totals into `links.total_clicks`.
//!
//! The read side is layered, each layer using only those below it: [`queries`] (the questions,
//! and the public face of the read side) over `recent` (recent clicks, which need no plan),
//! `measures` (what is counted and how parts add up), `plan` (which days come from the rollups),
//! `calendar` (ranges, local buckets, UTC days) and the leaves `subject`, `dimensions` and
//! [`escape`]. [`rollup`] writes the rollups and tells `plan` which days are current; it and
//! [`sync`] use only the leaves of the read side, never the layers above.

mod calendar;
mod dimensions;
pub mod escape;
mod measures;
mod plan;
pub mod queries;
mod recent;
pub mod rollup;
mod subject;
pub mod sync;
