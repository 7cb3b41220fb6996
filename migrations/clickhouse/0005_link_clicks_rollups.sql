-- Finished UTC days, counted once into plain numbers, so a dashboard sums a few hundred rows
-- instead of merging every id of the range (exact-distinct states cost as much as the raw ids:
-- docs/BENCHMARKS.md). The origin's rollup task (backend/src/analytics/rollup.rs) fills them;
-- until a day is rolled, or while it has rows the rollup has not seen, the API reads that day
-- from link_clicks, so answers are exact at every moment. Small granules: a dashboard reads a
-- few hundred rows of one link or account.
--
-- Rows received per UTC day, every delivery and duplicate included. The sum changes whenever a
-- row for the day lands, which tells the task which days to (re)compute and the API which
-- rollups are current. It is a change detector, never a click count.
CREATE TABLE IF NOT EXISTS link_clicks_arrivals
(
    day      Date,
    received UInt64
)
ENGINE = SummingMergeTree
ORDER BY day;

CREATE MATERIALIZED VIEW IF NOT EXISTS link_clicks_arrivals_mv TO link_clicks_arrivals AS
SELECT toDate(clicked_at) AS day, count() AS received
FROM link_clicks
GROUP BY day;

-- Counting rows stored before the view existed (a row inserted meanwhile may count twice,
-- which only causes one extra rollup of its day).
INSERT INTO link_clicks_arrivals
SELECT toDate(clicked_at) AS day, count() AS received
FROM link_clicks
GROUP BY day;

-- One row per rollup of a day: how many rows had been received when it started. A day's
-- rollup is current while this equals the day's sum in link_clicks_arrivals.
CREATE TABLE IF NOT EXISTS link_clicks_rollups
(
    day      Date,
    received UInt64,
    version  UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY day;

-- Per link per UTC hour (link_id = '' for the account: all of the user's links, where one
-- visitor clicking two links is one visitor). Clicks are distinct click_ids. Visitor ids are
-- salted per UTC day, so a day's visitors never reappear on another day; within the day:
-- `visitors` are distinct in the hour, `first_visitors` those whose first click of the day falls
-- in this hour, `last_visitors` those whose last click does. Summing first_visitors over the
-- day's hours before h gives the distinct visitors of hours [0, h); summing last_visitors from h
-- on gives those of [h, 24): any range or local-time bucket on whole hours is a sum of such
-- pieces. `human_*` count only clicks that are not bots.
CREATE TABLE IF NOT EXISTS link_clicks_rollup_hours
(
    user_id              String,
    link_id              String,
    hour                 DateTime('UTC'),
    version              UInt64,
    clicks               UInt64,
    human_clicks         UInt64,
    bot_clicks           UInt64,
    visitors             UInt64,
    human_visitors       UInt64,
    first_visitors       UInt64,
    human_first_visitors UInt64,
    last_visitors        UInt64,
    human_last_visitors  UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
ORDER BY (user_id, link_id, hour)
SETTINGS index_granularity = 1024;

-- Per link (or account, link_id = '') per UTC day per breakdown value: clicks and visitors of
-- that value on that day.
CREATE TABLE IF NOT EXISTS link_clicks_rollup_values
(
    user_id        String,
    dimension      String,
    link_id        String,
    day            Date,
    value          String,
    version        UInt64,
    clicks         UInt64,
    human_clicks   UInt64,
    bot_clicks     UInt64,
    visitors       UInt64,
    human_visitors UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (user_id, dimension, link_id, day, value)
SETTINGS index_granularity = 1024;

-- The hourly view of exact states (0004) is no longer read: merging its states cost more than
-- hashing the raw ids (a one-day piece: ~60 ms against ~8 ms from link_clicks), and the rollups
-- replace it for finished days.
DROP TABLE IF EXISTS link_clicks_hourly_mv;
DROP TABLE IF EXISTS link_clicks_hourly;
