-- The `qr` breakdown (scanned QR codes, `?qr=1`, against every other click) joins the rollups'
-- dimensions (backend/src/analytics/dimensions.rs). The rollup task writes it for every day it
-- rolls from now on; this adds it to the days rolled before, from the same rows and with the
-- same counts the task writes (values_sql in backend/src/analytics/rollup.rs), so rolled days stay
-- current and are not rolled again.
--
-- Safe while clicks arrive and the rollup task runs: a row that lands for a day after its rollup
-- makes the day not current (link_clicks_arrivals), so the API reads it from link_clicks whatever
-- these rows say, until the task rolls it again with a newer version; and version 0 is older
-- than every version the task writes, so a row of a newer rollup always wins (FINAL).
-- link_clicks_recent has no is_qr: open days of this dimension are read from link_clicks.
INSERT INTO link_clicks_rollup_values (user_id, dimension, link_id, day, value, version,
    clicks, human_clicks, bot_clicks, visitors, human_visitors)
SELECT user_id, 'qr' AS dimension, link_id, toDate(clicked_at) AS day,
       if(is_qr = 1, 'qr', 'link') AS value, toUInt64(0),
       uniqExact(click_id), uniqExactIf(click_id, is_bot = 0), uniqExactIf(click_id, is_bot = 1),
       uniqExact(visitor_id), uniqExactIf(visitor_id, is_bot = 0)
FROM link_clicks
WHERE toDate(clicked_at) IN (SELECT day FROM link_clicks_rollups)
GROUP BY user_id, dimension, link_id, day, value;

-- The same per account (link_id = ''), where a visitor of two of the user's links is one.
INSERT INTO link_clicks_rollup_values (user_id, dimension, link_id, day, value, version,
    clicks, human_clicks, bot_clicks, visitors, human_visitors)
SELECT user_id, 'qr' AS dimension, '' AS link_id, toDate(clicked_at) AS day,
       if(is_qr = 1, 'qr', 'link') AS value, toUInt64(0),
       uniqExact(click_id), uniqExactIf(click_id, is_bot = 0), uniqExactIf(click_id, is_bot = 1),
       uniqExact(visitor_id), uniqExactIf(visitor_id, is_bot = 0)
FROM link_clicks
WHERE toDate(clicked_at) IN (SELECT day FROM link_clicks_rollups)
GROUP BY user_id, dimension, link_id, day, value;
