//! Classifying a visitor from the request: browser, OS, device type, and whether it is a bot.
//!
//! Parsing uses `woothee` (the woothee project's shared data set); bot detection uses `isbot`
//! (the pattern list of the `isbot` npm project). On top of their verdicts we only decide *why*
//! something is a bot, since analytics reports link-preview fetchers apart from crawlers.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Why a click was labelled as a bot. Bots are stored and labelled, never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotReason {
    /// A chat or social app fetching the page to render a preview card.
    LinkPreview,
    /// A crawler, monitor or HTTP library (per `isbot` / woothee).
    Crawler,
    /// No `User-Agent` at all: browsers always send one.
    MissingUserAgent,
    /// `HEAD` requests come from link checkers, never from a person following a link.
    HeadRequest,
    /// Speculative prefetch/prerender (`Sec-Purpose`/`Purpose` headers): nobody clicked yet.
    Prefetch,
}

impl BotReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LinkPreview => "link_preview",
            Self::Crawler => "crawler",
            Self::MissingUserAgent => "missing_user_agent",
            Self::HeadRequest => "head_request",
            Self::Prefetch => "prefetch",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceType {
    Desktop,
    Mobile,
    Tablet,
    Bot,
    Other,
}

impl DeviceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Desktop => "desktop",
            Self::Mobile => "mobile",
            Self::Tablet => "tablet",
            Self::Bot => "bot",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Desktop,
            Self::Mobile,
            Self::Tablet,
            Self::Bot,
            Self::Other,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// Link-preview fetchers, matched case-insensitively as substrings of the User-Agent. `isbot`
/// already knows them all as bots; this list only sorts them into [`BotReason::LinkPreview`].
const PREVIEW_FETCHERS: &[&str] = &[
    "slackbot",
    "slack-imgproxy",
    "twitterbot",
    "facebookexternalhit",
    "facebot",
    "discordbot",
    "mastodon",
    "telegrambot",
    "whatsapp",
    "linkedinbot",
    "skypeuripreview",
    "pinterestbot",
    "redditbot",
    "embedly",
    "iframely",
    "bingpreview",
    "google web preview",
    "yahoo link preview",
    "bluesky",
    "vkshare",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    pub device_type: DeviceType,
    pub bot: Option<BotReason>,
}

fn bots() -> &'static isbot::Bots {
    static BOTS: OnceLock<isbot::Bots> = OnceLock::new();
    BOTS.get_or_init(isbot::Bots::default)
}

fn known(value: &str) -> String {
    if value == woothee::woothee::VALUE_UNKNOWN {
        String::new()
    } else {
        value.to_owned()
    }
}

/// Classifies a request by its method, User-Agent and prefetch headers
/// (`Sec-Purpose`, `Purpose`, `X-Purpose`, `X-Moz`, whichever is present).
pub fn classify(method: &str, user_agent: &str, purpose: Option<&str>) -> Visitor {
    let parsed = woothee::parser::Parser::new().parse(user_agent);
    let lower = user_agent.to_ascii_lowercase();
    let crawler_category = parsed.as_ref().is_some_and(|p| p.category == "crawler");
    let bot = if user_agent.trim().is_empty() {
        Some(BotReason::MissingUserAgent)
    } else if PREVIEW_FETCHERS.iter().any(|f| lower.contains(f)) {
        Some(BotReason::LinkPreview)
    } else if crawler_category || bots().is_bot(user_agent) {
        Some(BotReason::Crawler)
    } else if method.eq_ignore_ascii_case("HEAD") {
        Some(BotReason::HeadRequest)
    } else if purpose.is_some_and(|p| {
        let p = p.to_ascii_lowercase();
        p.contains("prefetch") || p.contains("prerender") || p.contains("preview")
    }) {
        Some(BotReason::Prefetch)
    } else {
        None
    };
    let (browser, browser_version, os, os_version, category) = match &parsed {
        Some(p) => (
            known(p.name),
            known(p.version),
            known(p.os),
            known(&p.os_version),
            p.category,
        ),
        None => Default::default(),
    };
    let device_type = if bot.is_some() {
        DeviceType::Bot
    } else {
        match category {
            "pc" => DeviceType::Desktop,
            "smartphone" if os == "iPad" || (os == "Android" && !user_agent.contains("Mobile")) => {
                DeviceType::Tablet
            }
            "smartphone" | "mobilephone" => DeviceType::Mobile,
            _ => DeviceType::Other,
        }
    };
    Visitor {
        browser,
        browser_version,
        os,
        os_version,
        device_type,
        bot,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    const SAFARI_IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
    const CHROME_ANDROID_PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
    const CHROME_ANDROID_TABLET: &str = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const FIREFOX_LINUX: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    const SAFARI_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";

    /// (user agent, method, purpose header) → (browser, os, device, bot reason)
    type Case = (
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static str,
        &'static str,
        DeviceType,
        Option<BotReason>,
    );

    #[test]
    fn user_agent_table() {
        let cases: &[Case] = &[
            (
                CHROME_WIN,
                "GET",
                None,
                "Chrome",
                "Windows 10",
                DeviceType::Desktop,
                None,
            ),
            (
                SAFARI_MAC,
                "GET",
                None,
                "Safari",
                "Mac OSX",
                DeviceType::Desktop,
                None,
            ),
            (
                FIREFOX_LINUX,
                "GET",
                None,
                "Firefox",
                "Linux",
                DeviceType::Desktop,
                None,
            ),
            (
                SAFARI_IPHONE,
                "GET",
                None,
                "Safari",
                "iPhone",
                DeviceType::Mobile,
                None,
            ),
            (
                SAFARI_IPAD,
                "GET",
                None,
                "Safari",
                "iPad",
                DeviceType::Tablet,
                None,
            ),
            (
                CHROME_ANDROID_PHONE,
                "GET",
                None,
                "Chrome",
                "Android",
                DeviceType::Mobile,
                None,
            ),
            (
                CHROME_ANDROID_TABLET,
                "GET",
                None,
                "Chrome",
                "Android",
                DeviceType::Tablet,
                None,
            ),
            (
                CHROME_WIN,
                "HEAD",
                None,
                "Chrome",
                "Windows 10",
                DeviceType::Bot,
                Some(BotReason::HeadRequest),
            ),
            (
                CHROME_WIN,
                "GET",
                Some("prefetch;prerender"),
                "Chrome",
                "Windows 10",
                DeviceType::Bot,
                Some(BotReason::Prefetch),
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                "GET",
                None,
                "Googlebot",
                "",
                DeviceType::Bot,
                Some(BotReason::Crawler),
            ),
            (
                "curl/8.5.0",
                "GET",
                None,
                "HTTP Library",
                "",
                DeviceType::Bot,
                Some(BotReason::Crawler),
            ),
            (
                "python-requests/2.32.3",
                "GET",
                None,
                "",
                "",
                DeviceType::Bot,
                Some(BotReason::Crawler),
            ),
            (
                "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
                "GET",
                None,
                "misc crawler",
                "",
                DeviceType::Bot,
                Some(BotReason::LinkPreview),
            ),
            (
                "Twitterbot/1.0",
                "GET",
                None,
                "twitter",
                "",
                DeviceType::Bot,
                Some(BotReason::LinkPreview),
            ),
            (
                "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
                "GET",
                None,
                "facebook",
                "",
                DeviceType::Bot,
                Some(BotReason::LinkPreview),
            ),
            (
                "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
                "GET",
                None,
                "misc crawler",
                "",
                DeviceType::Bot,
                Some(BotReason::LinkPreview),
            ),
            (
                "Mastodon/4.3.1 (http.rb/5.2.0; +https://mastodon.social/) Bot",
                "GET",
                None,
                "misc crawler",
                "",
                DeviceType::Bot,
                Some(BotReason::LinkPreview),
            ),
            (
                "",
                "GET",
                None,
                "",
                "",
                DeviceType::Bot,
                Some(BotReason::MissingUserAgent),
            ),
        ];
        let mismatches: Vec<String> = cases
            .iter()
            .filter_map(|(ua, method, purpose, browser, os, device, bot)| {
                let v = classify(method, ua, *purpose);
                let got = (v.browser.as_str(), v.os.as_str(), v.device_type, v.bot);
                (got != (*browser, *os, *device, *bot))
                    .then(|| format!("{ua:?} {method}: got {got:?}"))
            })
            .collect();
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn versions_are_reported() {
        let v = classify("GET", CHROME_WIN, None);
        assert_eq!(v.browser_version, "131.0.0.0");
        let v = classify("GET", SAFARI_IPHONE, None);
        assert_eq!(v.os_version, "17.5");
    }
}
