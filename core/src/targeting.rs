//! Targeting rules: where a link sends a visitor depends on who they are.
//!
//! A link has an ordered list of [`Rule`]s. Each rule names a destination and conditions on the
//! visitor's country, device type, operating system, preferred language and the time; every
//! condition a rule sets must hold, conditions it leaves out hold for everyone. The first rule
//! that holds picks the destination ([`choose`]); when none does, the link's own destination
//! applies. The edge and the origin both evaluate rules here, from what they know of the request
//! ([`Visitor`]). The User-Agent is classified only when a rule asks about device or OS, and only
//! links with rules pay for any of it.

use crate::useragent::{self, DeviceType};
use serde::{Deserialize, Serialize};
use std::cell::OnceCell;

/// Most rules a link may have.
pub const MAX_RULES: usize = 20;

/// One rule, as the cache record carries it (times in unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Assigned by the API when the rule is created and kept across edits, so clicks and
    /// analytics can name the rule that sent them.
    pub id: String,
    /// Where a visitor this rule matches goes (UTM parameters are merged as for the default).
    pub destination: String,
    /// ISO 3166-1 alpha-2 codes, upper case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub countries: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os: Vec<Os>,
    /// Primary language subtags, lower case (`de` matches `de`, `de-AT`, `de-CH`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// The rule applies from this instant on (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<i64>,
    /// The rule no longer applies from this instant on (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<i64>,
}

/// Operating-system families a rule can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Os {
    /// iPhone, iPad and iPod.
    Ios,
    Android,
    Windows,
    WindowsPhone,
    Macos,
    Chromeos,
    Linux,
}

impl Os {
    /// The family of an OS as [`useragent::classify`] names it; `None` for an unknown OS.
    pub fn of(name: &str) -> Option<Self> {
        match name {
            "iPhone" | "iPad" | "iPod" => Some(Self::Ios),
            "Android" => Some(Self::Android),
            "Windows Phone OS" => Some(Self::WindowsPhone),
            windows if windows.starts_with("Windows") => Some(Self::Windows),
            "Mac OSX" => Some(Self::Macos),
            "ChromeOS" => Some(Self::Chromeos),
            "Linux" => Some(Self::Linux),
            _ => None,
        }
    }
}

/// What the redirecting side knows about a visitor, read only when a link has rules.
#[derive(Debug, Clone, Default)]
pub struct Visitor {
    pub method: String,
    /// ISO 3166-1 alpha-2 (Cloudflare's `request.cf.country` or `CF-IPCountry`).
    pub country: Option<String>,
    pub user_agent: Option<String>,
    pub accept_language: Option<String>,
    /// The first prefetch marker present (`Sec-Purpose`, `Purpose`, …): a prefetch is a bot.
    pub purpose: Option<String>,
}

/// The primary subtag of the visitor's most preferred language, lower case: the tag with the
/// highest q-value (the first of equals), leaving out `*` and tags refused with `q=0`.
pub fn preferred_language(accept_language: &str) -> Option<String> {
    accept_language::parse_with_quality(accept_language)
        .into_iter()
        .find(|(tag, quality)| *quality > 0.0 && tag != "*")
        .map(|(tag, _)| {
            tag.split(['-', '_'])
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
}

/// The visitor's facts, each worked out at most once and only when a rule asks.
struct Facts<'v> {
    visitor: &'v Visitor,
    now: i64,
    classified: OnceCell<useragent::Visitor>,
    language: OnceCell<Option<String>>,
}

impl Facts<'_> {
    fn classified(&self) -> &useragent::Visitor {
        self.classified.get_or_init(|| {
            useragent::classify(
                &self.visitor.method,
                self.visitor.user_agent.as_deref().unwrap_or_default(),
                self.visitor.purpose.as_deref(),
            )
        })
    }

    fn language(&self) -> Option<&str> {
        self.language
            .get_or_init(|| {
                self.visitor
                    .accept_language
                    .as_deref()
                    .and_then(preferred_language)
            })
            .as_deref()
    }
}

impl Rule {
    /// A rule sending visitors to `destination`, with no condition yet.
    pub fn new(id: &str, destination: &str) -> Self {
        Self {
            id: id.into(),
            destination: destination.into(),
            countries: Vec::new(),
            devices: Vec::new(),
            os: Vec::new(),
            languages: Vec::new(),
            starts_at: None,
            ends_at: None,
        }
    }

    /// Whether the rule sets any condition at all (one without would shadow every later rule
    /// and the link's own destination).
    pub fn has_conditions(&self) -> bool {
        !(self.countries.is_empty()
            && self.devices.is_empty()
            && self.os.is_empty()
            && self.languages.is_empty()
            && self.starts_at.is_none()
            && self.ends_at.is_none())
    }

    /// Cheap conditions first; the User-Agent is classified only if they all hold.
    fn holds(&self, facts: &Facts<'_>) -> bool {
        self.starts_at.is_none_or(|at| facts.now >= at)
            && self.ends_at.is_none_or(|at| facts.now < at)
            && (self.countries.is_empty()
                || facts.visitor.country.as_deref().is_some_and(|country| {
                    self.countries
                        .iter()
                        .any(|c| c.eq_ignore_ascii_case(country.trim()))
                }))
            && (self.languages.is_empty()
                || facts
                    .language()
                    .is_some_and(|language| self.languages.iter().any(|l| l == language)))
            && (self.devices.is_empty() || self.devices.contains(&facts.classified().device_type))
            && (self.os.is_empty()
                || Os::of(&facts.classified().os).is_some_and(|os| self.os.contains(&os)))
    }
}

/// The first of `rules` that holds for `visitor` at `now` (unix seconds); `None`: the link's
/// own destination applies.
pub fn choose<'r>(rules: &'r [Rule], visitor: &Visitor, now: i64) -> Option<&'r Rule> {
    let facts = Facts {
        visitor,
        now,
        classified: OnceCell::new(),
        language: OnceCell::new(),
    };
    rules.iter().find(|rule| rule.holds(&facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
    const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
    const WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";
    const LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    const CHROMEOS: &str = "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const WINDOWS_PHONE: &str = "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.14977";

    fn visitor(user_agent: &str) -> Visitor {
        Visitor {
            method: "GET".into(),
            user_agent: Some(user_agent.into()),
            ..Visitor::default()
        }
    }

    fn chosen<'r>(rules: &'r [Rule], visitor: &Visitor) -> Option<&'r str> {
        choose(rules, visitor, 1_000).map(|rule| rule.id.as_str())
    }

    #[test]
    fn os_families_cover_what_the_classifier_names() {
        for (ua, os) in [
            (IPHONE, Os::Ios),
            (IPAD, Os::Ios),
            (ANDROID, Os::Android),
            (WINDOWS, Os::Windows),
            (MAC, Os::Macos),
            (LINUX, Os::Linux),
            (CHROMEOS, Os::Chromeos),
            (WINDOWS_PHONE, Os::WindowsPhone),
        ] {
            let name = useragent::classify("GET", ua, None).os;
            assert_eq!(Os::of(&name), Some(os), "{ua}");
        }
        assert_eq!(Os::of(""), None);
    }

    #[test]
    fn the_first_rule_that_holds_wins_else_none() {
        let mut ios = Rule::new("ios", "https://apps.apple.com/app");
        ios.os = vec![Os::Ios];
        let mut android = Rule::new("android", "https://play.google.com/app");
        android.os = vec![Os::Android];
        let mut mobile = Rule::new("mobile", "https://m.example.com/");
        mobile.devices = vec![DeviceType::Mobile, DeviceType::Tablet];
        let rules = [ios, android, mobile];
        assert_eq!(chosen(&rules, &visitor(IPHONE)), Some("ios"));
        assert_eq!(chosen(&rules, &visitor(IPAD)), Some("ios"));
        assert_eq!(chosen(&rules, &visitor(ANDROID)), Some("android"));
        assert_eq!(chosen(&rules, &visitor(WINDOWS_PHONE)), Some("mobile"));
        assert_eq!(chosen(&rules, &visitor(WINDOWS)), None);
        assert_eq!(chosen(&[], &visitor(IPHONE)), None);
    }

    #[test]
    fn every_condition_a_rule_sets_must_hold() {
        let mut rule = Rule::new("de-ios", "https://example.de/app");
        rule.countries = vec!["DE".into(), "AT".into()];
        rule.os = vec![Os::Ios];
        let rules = [rule];
        let mut at_iphone = visitor(IPHONE);
        at_iphone.country = Some("at".into());
        assert_eq!(chosen(&rules, &at_iphone), Some("de-ios"));
        let mut de_android = visitor(ANDROID);
        de_android.country = Some("DE".into());
        assert_eq!(chosen(&rules, &de_android), None);
        let mut fr_iphone = visitor(IPHONE);
        fr_iphone.country = Some("FR".into());
        assert_eq!(chosen(&rules, &fr_iphone), None);
        assert_eq!(chosen(&rules, &visitor(IPHONE)), None, "no country known");
    }

    #[test]
    fn devices_are_the_click_device_classes() {
        let mut bots = Rule::new("bots", "https://example.com/preview");
        bots.devices = vec![DeviceType::Bot];
        let mut desktop = Rule::new("desktop", "https://example.com/desktop");
        desktop.devices = vec![DeviceType::Desktop];
        let rules = [bots, desktop];
        let mut head = visitor(WINDOWS);
        head.method = "HEAD".into();
        assert_eq!(chosen(&rules, &head), Some("bots"));
        let mut prefetch = visitor(WINDOWS);
        prefetch.purpose = Some("prefetch".into());
        assert_eq!(chosen(&rules, &prefetch), Some("bots"));
        assert_eq!(
            chosen(&rules, &visitor("Slackbot-LinkExpanding 1.0")),
            Some("bots")
        );
        assert_eq!(chosen(&rules, &visitor(WINDOWS)), Some("desktop"));
    }

    #[test]
    fn languages_match_the_preferred_primary_tag() {
        assert_eq!(preferred_language("de-AT,de;q=0.9").as_deref(), Some("de"));
        assert_eq!(
            preferred_language("en-US;q=0.5, fr-CH, de;q=0.9").as_deref(),
            Some("fr")
        );
        assert_eq!(preferred_language("*, pt-BR;q=0.4").as_deref(), Some("pt"));
        assert_eq!(preferred_language("de;q=0, EN").as_deref(), Some("en"));
        assert_eq!(preferred_language("de;q=0"), None);
        assert_eq!(preferred_language(""), None);

        let mut german = Rule::new("de", "https://example.de/");
        german.languages = vec!["de".into()];
        let rules = [german];
        let speaking = |header: &str| Visitor {
            accept_language: Some(header.into()),
            ..visitor(WINDOWS)
        };
        assert_eq!(chosen(&rules, &speaking("de-AT")), Some("de"));
        assert_eq!(chosen(&rules, &speaking("en-GB, de;q=0.8")), None);
        assert_eq!(chosen(&rules, &speaking("en;q=0.3, de;q=0.8")), Some("de"));
        assert_eq!(chosen(&rules, &speaking("de;q=0, en")), None);
        assert_eq!(chosen(&rules, &visitor(WINDOWS)), None);
    }

    #[test]
    fn time_windows_are_half_open() {
        let mut sale = Rule::new("sale", "https://example.com/sale");
        sale.starts_at = Some(100);
        sale.ends_at = Some(200);
        let rules = [sale];
        let at = |now| choose(&rules, &visitor(WINDOWS), now).map(|r| r.id.as_str());
        assert_eq!(at(99), None);
        assert_eq!(at(100), Some("sale"));
        assert_eq!(at(199), Some("sale"));
        assert_eq!(at(200), None);
    }

    #[test]
    fn the_user_agent_is_classified_only_when_a_rule_asks() {
        let mut country = Rule::new("fr", "https://example.fr/");
        country.countries = vec!["FR".into()];
        let facts_of = |visitor| Facts {
            visitor,
            now: 0,
            classified: OnceCell::new(),
            language: OnceCell::new(),
        };
        let fr = Visitor {
            country: Some("FR".into()),
            ..visitor(IPHONE)
        };
        let facts = facts_of(&fr);
        assert!(country.holds(&facts));
        assert!(facts.classified.get().is_none());
        let mut ios = country.clone();
        ios.os = vec![Os::Ios];
        assert!(ios.holds(&facts));
        assert!(facts.classified.get().is_some());
    }

    #[test]
    fn rules_round_trip_and_leave_unset_conditions_out() {
        let mut rule = Rule::new("r1", "https://example.com/");
        rule.os = vec![Os::WindowsPhone];
        rule.devices = vec![DeviceType::Tablet];
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(
            json,
            r#"{"id":"r1","destination":"https://example.com/","devices":["tablet"],"os":["windows_phone"]}"#
        );
        assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), rule);
        assert!(rule.has_conditions());
        assert!(!Rule::new("r2", "https://example.com/").has_conditions());
    }
}
