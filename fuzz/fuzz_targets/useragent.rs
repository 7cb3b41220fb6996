//! User-Agent classification of any request: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smo1_core::useragent;

fuzz_target!(|input: (&str, &str, Option<&str>)| {
    let (method, user_agent, purpose) = input;
    useragent::classify(method, user_agent, purpose);
});
