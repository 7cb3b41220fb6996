-- Fewer, larger flushes from link_clicks_buffer (issue 13). With 16 layers each flushed once it
-- was a second old, a busy origin (one insert of 10,000 clicks every ~0.2 s) made a part of
-- link_clicks and of every view for nearly each insert, and ClickHouse spent half its time
-- merging them. Now 4 layers, each flushed once it is 5 s old (and holds 1,000 rows and 1 MB),
-- or at 10 s, 1M rows or 100 MB, whichever comes first: a stream of 40k clicks/s makes a
-- sixth of the parts and costs ClickHouse about two thirds of the CPU or less
-- (docs/BENCHMARKS.md, "Click ingest"). A click still reaches link_clicks within 10 s; the
-- buffer holds at most 400 MB. A batch larger than a layer (100 MB, about 400,000 clicks) is
-- written straight through while its insert waits.
--
-- A Buffer table's parameters cannot be altered, so it is dropped, which flushes its rows to
-- link_clicks, and made again. An insert into it in that moment fails like any insert with
-- ClickHouse away: the edge hands its batch to the origin's outbox and the origin's writer
-- retries, so no click is lost.
DROP TABLE IF EXISTS link_clicks_buffer;

CREATE TABLE IF NOT EXISTS link_clicks_buffer AS link_clicks
ENGINE = Buffer(currentDatabase(), link_clicks, 4, 5, 10, 1000, 1000000, 1000000, 100000000);
