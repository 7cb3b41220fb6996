//! Targeting rules against any visitor: never panic, and the language a rule compares is a
//! lower-case primary subtag without separators, whatever `Accept-Language` says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smo1_core::targeting::{self, Os, Rule, Visitor};
use smo1_core::useragent::DeviceType;

fuzz_target!(|input: (&str, &str, &str, &str, i64)| {
    let (country, user_agent, accept_language, method, now) = input;
    if let Some(language) = targeting::preferred_language(accept_language) {
        assert!(
            !language.contains(['-', '_', ',', ';']) && language == language.to_ascii_lowercase(),
            "{accept_language:?} gave {language:?}"
        );
    }
    let rules = [
        Rule {
            starts_at: Some(0),
            ends_at: Some(i64::MAX),
            countries: vec!["DE".into()],
            ..Rule::new("window", "https://example.com/")
        },
        Rule {
            languages: vec!["de".into()],
            ..Rule::new("language", "https://example.com/")
        },
        Rule {
            os: vec![Os::Ios, Os::Android],
            devices: vec![DeviceType::Mobile],
            ..Rule::new("device", "https://example.com/")
        },
    ];
    let visitor = Visitor {
        method: method.into(),
        country: Some(country.into()),
        user_agent: Some(user_agent.into()),
        accept_language: Some(accept_language.into()),
        purpose: None,
    };
    targeting::choose(&rules, &visitor, now);
});
