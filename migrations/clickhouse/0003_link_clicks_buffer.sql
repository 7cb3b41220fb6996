-- Absorbs many tiny inserts (one per redirect from the edge) in memory and flushes them to
-- link_clicks in large blocks: after 10 s, or 100k rows, or 10 MB, whichever comes first
-- (16 layers; at least 1 s, 1k rows). ClickHouse 24+ deployments may instead insert straight into
-- link_clicks with async_insert=1 (CLICKHOUSE_ASYNC_INSERT). Rows still in the buffer are lost
-- if the ClickHouse server crashes: see docs/OPERATIONS.md.
CREATE TABLE IF NOT EXISTS link_clicks_buffer AS link_clicks
ENGINE = Buffer(currentDatabase(), link_clicks, 16, 1, 10, 1000, 100000, 1000000, 10000000);
