-- Which targeting rule picked the click's destination (issue 15): the rule's id, '' when the
-- link's own destination applied (every click before rules existed). Inserts leave the field
-- out when it is empty, so peers one version apart keep writing while this runs.
--
-- The Buffer table in front of link_clicks cannot safely change structure while it holds rows
-- (ClickHouse 18.16 refuses a block of the new shape next to one of the old), so it is dropped,
-- which flushes its rows to link_clicks, and made again from the altered table. An insert into
-- it in that moment fails like any insert with ClickHouse away: the edge hands its batch to the
-- origin's outbox and the origin's writer retries, so no click is lost.
DROP TABLE IF EXISTS link_clicks_buffer;

ALTER TABLE link_clicks ADD COLUMN rule_id String DEFAULT '';

CREATE TABLE IF NOT EXISTS link_clicks_buffer AS link_clicks
ENGINE = Buffer(currentDatabase(), link_clicks, 16, 1, 10, 1000, 100000, 1000000, 10000000);

-- The `rule` breakdown joins the rollups' dimensions (backend/src/analytics/dimensions.rs), as
-- `qr` did in 0007: the rollup task writes it for every day it rolls from now on, and this adds
-- it to the days rolled before, with the same counts the task writes, so rolled days stay
-- current. Safe while clicks arrive and the task runs, for the reasons 0007 gives.
-- link_clicks_recent has no rule_id: open days of this dimension are read from link_clicks.
INSERT INTO link_clicks_rollup_values (user_id, dimension, link_id, day, value, version,
    clicks, human_clicks, bot_clicks, visitors, human_visitors)
SELECT user_id, 'rule' AS dimension, link_id, toDate(clicked_at) AS day,
       rule_id AS value, toUInt64(0),
       uniqExact(click_id), uniqExactIf(click_id, is_bot = 0), uniqExactIf(click_id, is_bot = 1),
       uniqExact(visitor_id), uniqExactIf(visitor_id, is_bot = 0)
FROM link_clicks
WHERE toDate(clicked_at) IN (SELECT day FROM link_clicks_rollups)
GROUP BY user_id, dimension, link_id, day, value;

-- The same per account (link_id = ''), where a visitor of two of the user's links is one.
INSERT INTO link_clicks_rollup_values (user_id, dimension, link_id, day, value, version,
    clicks, human_clicks, bot_clicks, visitors, human_visitors)
SELECT user_id, 'rule' AS dimension, '' AS link_id, toDate(clicked_at) AS day,
       rule_id AS value, toUInt64(0),
       uniqExact(click_id), uniqExactIf(click_id, is_bot = 0), uniqExactIf(click_id, is_bot = 1),
       uniqExact(visitor_id), uniqExactIf(visitor_id, is_bot = 0)
FROM link_clicks
WHERE toDate(clicked_at) IN (SELECT day FROM link_clicks_rollups)
GROUP BY user_id, dimension, link_id, day, value;
