-- The last few days of clicks again, sorted by account first, one partition per UTC day: what
-- the rollups do not cover yet (today, mostly) is read from here, where a whole account's rows
-- of the day are adjacent (link_clicks is sorted by link, so an account's day there means
-- scanning the month). Only the columns analytics count or group by. The rollup task drops
-- the partitions of days older than three days; older pieces are read from link_clicks.
-- One insert into link_clicks now touches a partition here per UTC day it spans: ClickHouse
-- 19+ refuses blocks over max_partitions_per_insert_block (100) days, which only a bulk load
-- (generate-clicks --days > 100) or a replay after a 100-day outage would reach.
CREATE TABLE IF NOT EXISTS link_clicks_recent
(
    click_id        String,
    clicked_at      DateTime('UTC'),
    link_id         String,
    user_id         String,
    visitor_id      String,
    country         String,
    region          String,
    city            String,
    device_type     String,
    browser         String,
    os              String,
    referrer_domain String,
    utm_source      String,
    utm_medium      String,
    utm_campaign    String,
    utm_term        String,
    utm_content     String,
    is_bot          UInt8
)
ENGINE = MergeTree
PARTITION BY toDate(clicked_at)
ORDER BY (user_id, link_id, clicked_at);

CREATE MATERIALIZED VIEW IF NOT EXISTS link_clicks_recent_mv TO link_clicks_recent AS
SELECT click_id, clicked_at, link_id, user_id, visitor_id, country, region, city, device_type,
       browser, os, referrer_domain, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
       is_bot
FROM link_clicks;

-- The days already stored (a row inserted meanwhile may be copied twice: counts are over
-- distinct ids, so that changes nothing).
INSERT INTO link_clicks_recent
SELECT click_id, clicked_at, link_id, user_id, visitor_id, country, region, city, device_type,
       browser, os, referrer_domain, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
       is_bot
FROM link_clicks
WHERE clicked_at >= now() - 4 * 86400;
