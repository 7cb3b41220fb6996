//! Links: rows in PostgreSQL, the read-through cache in Redis (`service`) and in the origin's
//! memory (`local_cache`), PIN/password
//! protection with its attempt counting and bounded argon2id work, and targeting rules (`rules`).

pub mod attempts;
pub mod local_cache;
pub mod protection;
pub mod qr;
pub mod repo;
pub mod rules;
pub mod service;
pub mod verifier;

pub use repo::Link;
