//! The origin's half of the click pipeline.
//!
//! - [`ClickSink`]: the origin's own redirects enqueue a [`PendingClick`] in memory (never waiting
//!   on a database, never classifying); a batching writer enriches them into click events and
//!   inserts them into ClickHouse by size or time. Past the queue, an overflow lane takes clicks
//!   to the outbox in batches.
//! - When an insert fails, the batch goes to the PostgreSQL `click_outbox`; so do clicks the edge
//!   could not deliver (`POST /internal/clicks`), before they are acknowledged.
//! - A replayer drains the outbox into ClickHouse whenever it is reachable; rows it cannot read
//!   are quarantined, not retried forever.
//!
//! Retries and replays may write a click twice; every count is over distinct `click_id`.

pub mod outbox;
mod pending;
mod writer;

pub use pending::PendingClick;
pub use writer::{replay_all, start, ClickSink, Pipeline};
