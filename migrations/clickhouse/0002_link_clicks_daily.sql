-- Per link per day, pre-aggregated so dashboards never scan raw rows. Counts are exact distinct
-- click_ids, so a duplicate delivery never inflates them; visitors are exact distinct visitor_ids
-- (merge the states across days for multi-day uniques: they are not the sum of daily uniques).
-- Keyed by user first: the API always knows the owner, and per-account totals read one prefix.
CREATE TABLE IF NOT EXISTS link_clicks_daily
(
    link_id        String,
    user_id        String,
    day            Date,
    clicks         AggregateFunction(uniqExact, String),
    human_clicks   AggregateFunction(uniqExactIf, String, UInt8),
    bot_clicks     AggregateFunction(uniqExactIf, String, UInt8),
    visitors       AggregateFunction(uniqExact, String),
    human_visitors AggregateFunction(uniqExactIf, String, UInt8)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (user_id, link_id, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS link_clicks_daily_mv TO link_clicks_daily AS
SELECT
    link_id,
    user_id,
    toDate(clicked_at) AS day,
    uniqExactState(click_id) AS clicks,
    uniqExactIfState(click_id, is_bot = 0) AS human_clicks,
    uniqExactIfState(click_id, is_bot = 1) AS bot_clicks,
    uniqExactState(visitor_id) AS visitors,
    uniqExactIfState(visitor_id, is_bot = 0) AS human_visitors
FROM link_clicks
GROUP BY link_id, user_id, day;
