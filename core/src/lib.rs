//! Pure logic shared by the SMO1 edge worker (wasm32) and the origin (native).
//!
//! Everything here is deterministic and I/O free so it compiles into both binaries and is unit
//! tested natively: the circuit breaker in front of Redis, slug rules, the cached link record,
//! how a record resolves to a response, UTM merging, destination validation, the HTML pages
//! visitors see, the unlock cookie of protected links, targeting rules ([`targeting`]) and the
//! visitor flow around them ([`visit`]).

pub mod breaker;
pub mod click;
pub mod destination;
pub mod domain;
pub mod link;
pub mod pages;
pub mod resolve;
pub mod slug;
pub mod targeting;
pub mod unlock;
pub mod useragent;
pub mod utm;
pub mod visit;
