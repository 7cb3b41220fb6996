//! Link and domain records this isolate read recently, reused for a bounded time
//! (`EDGE_LINK_CACHE_MS`) so a hot link costs no Upstash round trip and no parse per request. An
//! entry is never served past its age limit, so an edit, disable, delete or protection change —
//! or a domain's verification, failure, removal or new targets — reaches the edge within that
//! bound; found and missing answers are kept alike (a new link shows within the bound too).
//! Entries are named by their Redis key without the prefix (`link:{domain}:{slug}`,
//! `domain:{hostname}`).

use crate::clock::now_ms;
use smo1_core::domain::DomainEntry;
use smo1_core::link::CacheEntry;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// Most entries one isolate keeps; past it expired entries go, then everything (memory stays
/// bounded whatever the traffic, and a full clear costs one Upstash read per hot entry).
const MAX_ENTRIES: usize = 10_000;

/// A remembered record.
#[derive(Clone)]
pub enum Record {
    Link(Rc<CacheEntry>),
    Domain(Rc<DomainEntry>),
}

struct Remembered {
    record: Record,
    read_at_ms: u64,
}

thread_local! {
    static RECENT: RefCell<HashMap<String, Remembered>> = RefCell::new(HashMap::new());
}

fn fresh(r: &Remembered, now: u64, max_age: Duration) -> bool {
    u128::from(now.saturating_sub(r.read_at_ms)) < max_age.as_millis()
}

/// The record named `name` if this isolate read it less than `max_age` ago.
pub fn get(name: &str, max_age: Duration) -> Option<Record> {
    if max_age.is_zero() {
        return None;
    }
    let now = now_ms();
    RECENT.with_borrow(|recent| {
        recent
            .get(name)
            .filter(|r| fresh(r, now, max_age))
            .map(|r| r.record.clone())
    })
}

/// Remembers `record`, just read as `name`.
pub fn put(name: &str, record: Record, max_age: Duration) {
    if max_age.is_zero() {
        return;
    }
    let now = now_ms();
    RECENT.with_borrow_mut(|recent| {
        if recent.len() >= MAX_ENTRIES && !recent.contains_key(name) {
            recent.retain(|_, r| fresh(r, now, max_age));
            if recent.len() >= MAX_ENTRIES {
                recent.clear();
            }
        }
        recent.insert(
            name.to_owned(),
            Remembered {
                record,
                read_at_ms: now,
            },
        );
    });
}
