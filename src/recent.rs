//! Link records this isolate read recently, reused for a bounded time (`EDGE_LINK_CACHE_MS`) so a
//! hot link costs no Upstash round trip and no parse per request. An entry is never served past
//! its age limit, so an edit, disable, delete or protection change reaches the edge within that
//! bound; found and missing answers are kept alike (a new link shows within the bound too).

use smo1_core::link::CacheEntry;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// Most slugs one isolate keeps; past it expired entries go, then everything (memory stays
/// bounded whatever the traffic, and a full clear costs one Upstash read per hot slug).
const MAX_ENTRIES: usize = 10_000;

struct Remembered {
    entry: Rc<CacheEntry>,
    read_at_ms: u64,
}

thread_local! {
    static RECENT: RefCell<HashMap<String, Remembered>> = RefCell::new(HashMap::new());
}

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

fn fresh(r: &Remembered, now: u64, max_age: Duration) -> bool {
    u128::from(now.saturating_sub(r.read_at_ms)) < max_age.as_millis()
}

/// The entry for `slug` if this isolate read it less than `max_age` ago.
pub fn get(slug: &str, max_age: Duration) -> Option<Rc<CacheEntry>> {
    if max_age.is_zero() {
        return None;
    }
    let now = now_ms();
    RECENT.with_borrow(|recent| {
        recent
            .get(slug)
            .filter(|r| fresh(r, now, max_age))
            .map(|r| Rc::clone(&r.entry))
    })
}

/// Remembers `entry`, just read for `slug`.
pub fn put(slug: &str, entry: Rc<CacheEntry>, max_age: Duration) {
    if max_age.is_zero() {
        return;
    }
    let now = now_ms();
    RECENT.with_borrow_mut(|recent| {
        if recent.len() >= MAX_ENTRIES && !recent.contains_key(slug) {
            recent.retain(|_, r| fresh(r, now, max_age));
            if recent.len() >= MAX_ENTRIES {
                recent.clear();
            }
        }
        recent.insert(
            slug.to_owned(),
            Remembered {
                entry,
                read_at_ms: now,
            },
        );
    });
}
