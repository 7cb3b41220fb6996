//! Custom domains: an account's own hostnames (rows in PostgreSQL, `repo`), verified by a DNS TXT
//! record (`dns`), re-checked in the background and cached for the edge as `domain:{hostname}`
//! (`service`). Their links live in `crate::links` with a domain.

pub mod dns;
pub mod repo;
pub mod service;

pub use repo::Domain;
