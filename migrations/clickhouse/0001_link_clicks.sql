-- One row per redirect. Written by the edge (HTTP JSONEachRow) and the origin's batching writer.
-- Runs unchanged on ClickHouse 18.16 (local) and 24+ (production); checked by scripts/check_clickhouse_sql.py.
--
-- ReplacingMergeTree over (link_id, clicked_at, click_id): a click delivered twice (retry, replay)
-- collapses to one row on merge; until then every count uses uniqExact(click_id).
CREATE TABLE IF NOT EXISTS link_clicks
(
    click_id        String,
    clicked_at      DateTime('UTC'),
    link_id         String,
    user_id         String,
    slug            String,
    destination     String,
    visitor_id      String,
    country         String,
    region          String,
    city            String,
    device_type     String,
    browser         String,
    browser_version String,
    os              String,
    os_version      String,
    referrer        String,
    referrer_domain String,
    utm_source      String,
    utm_medium      String,
    utm_campaign    String,
    utm_term        String,
    utm_content     String,
    method          String,
    is_qr           UInt8,
    is_bot          UInt8,
    bot_reason      String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(clicked_at)
ORDER BY (link_id, clicked_at, click_id);
