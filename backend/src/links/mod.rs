//! Links: rows in PostgreSQL, the read-through cache in Redis, the edge's internal lookup and the
//! `/v1/links` API.

pub mod attempts;
pub mod protection;
pub mod repo;
pub mod service;

pub use repo::Link;
