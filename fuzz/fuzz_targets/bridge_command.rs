//! The Upstash bridge's request parsing (JSON bodies and `/cmd/arg…` paths): never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smo1_origin::http::bridge;

fuzz_target!(|input: (&str, &[u8])| {
    let (path, body) = input;
    let _ = bridge::commands(body);
    let _ = bridge::path_to_command(path, body);
});
