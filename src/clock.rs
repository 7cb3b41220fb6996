//! The isolate's clock.

/// Unix milliseconds, read without allocating a `Date` (which `worker::Date::now` does).
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}
