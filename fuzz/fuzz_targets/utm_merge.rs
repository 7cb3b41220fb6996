//! UTM merge over any destination, link UTM and visitor query: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smo1_core::link::Utm;
use smo1_core::utm;

type Input<'a> = (&'a str, [Option<String>; 5], Option<&'a str>);

fuzz_target!(|input: Input<'_>| {
    let (destination, [source, medium, campaign, term, content], visitor_query) = input;
    let utm = Utm {
        source,
        medium,
        campaign,
        term,
        content,
    };
    utm::merge(destination, &utm, visitor_query);
});
