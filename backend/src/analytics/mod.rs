//! Analytics over ClickHouse: totals, time series, breakdowns and recent clicks per link and per
//! account (`/v1/links/{id}/analytics/*`, `/v1/analytics/*`), the one escaping function for
//! values in analytics SQL, the task that rolls finished days into plain numbers, and the task
//! that mirrors click totals into `links.total_clicks`.

pub mod escape;
pub mod queries;
pub mod rollup;
pub mod sync;
