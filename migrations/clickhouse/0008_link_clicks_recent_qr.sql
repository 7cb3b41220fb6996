-- link_clicks_recent again, with `is_qr`: the account page's QR-vs-link card read today's part
-- from link_clicks (sorted by link, so an account's day there is a scan of the month) because
-- the first copy had no QR flag. Its old rows cannot be given one (a column added now would say
-- "not QR" for every earlier click), so this is a new table filled the same way: the view first,
-- so no click inserted from here on is missed, then the days already stored (a row inserted
-- meanwhile may be copied twice: counts are over distinct ids, so that changes nothing).
--
-- link_clicks_recent and its view stay while origins of the previous release may still read
-- them (upgrades run old and new side by side); the rollup task drops old days of both, and a
-- later migration drops the first copy (docs/OPERATIONS.md, "Upgrades").
CREATE TABLE IF NOT EXISTS link_clicks_recent_v2
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
    is_qr           UInt8,
    is_bot          UInt8
)
ENGINE = MergeTree
PARTITION BY toDate(clicked_at)
ORDER BY (user_id, link_id, clicked_at);

CREATE MATERIALIZED VIEW IF NOT EXISTS link_clicks_recent_v2_mv TO link_clicks_recent_v2 AS
SELECT click_id, clicked_at, link_id, user_id, visitor_id, country, region, city, device_type,
       browser, os, referrer_domain, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
       is_qr, is_bot
FROM link_clicks;

INSERT INTO link_clicks_recent_v2
SELECT click_id, clicked_at, link_id, user_id, visitor_id, country, region, city, device_type,
       browser, os, referrer_domain, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
       is_qr, is_bot
FROM link_clicks
WHERE clicked_at >= now() - 4 * 86400;
