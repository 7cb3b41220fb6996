//! The origin's half of the click pipeline.
//!
//! - [`ClickSink`]: the origin's own redirects enqueue clicks in memory (never waiting on a
//!   database); a batching writer inserts them into ClickHouse by size or time.
//! - When an insert fails, the batch goes to the PostgreSQL `click_outbox`; so do clicks the edge
//!   could not deliver (`POST /internal/clicks`), before they are acknowledged.
//! - A replayer drains the outbox into ClickHouse whenever it is reachable.
//!
//! Retries and replays may write a click twice; every count is over distinct `click_id`.

pub mod outbox;
mod writer;

pub use writer::{replay_all, start, ClickSink, Pipeline};
