//! Destination validation: never panics, and whatever it accepts is accepted again as written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smo1_core::destination;

fuzz_target!(|input: (&str, Vec<String>)| {
    let (raw, own_hosts) = input;
    if let Ok(url) = destination::validate(raw, &own_hosts) {
        assert!(
            destination::validate(url.as_str(), &own_hosts).is_ok(),
            "accepted {raw:?} but not its normal form {url}"
        );
    }
});
