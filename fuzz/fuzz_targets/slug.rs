//! Slug rules: a slug a user may claim is always one the resolver accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smo1_core::slug;

fuzz_target!(|segment: &str| {
    let resolvable = slug::is_resolvable(segment);
    if slug::validate_custom(segment).is_ok() {
        assert!(resolvable, "claimable but unresolvable: {segment:?}");
    }
});
