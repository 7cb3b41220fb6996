//! Classifying a visitor from the request: browser, OS, device type, and whether it is a bot.
//!
//! Bot verdicts come from the pattern list of the `isbot` npm project (maintained, current:
//! AI crawlers and agents, scanners, headless browsers, monitors, HTTP clients), vendored in
//! `core/data/bot-patterns.tsv` and split by `scripts/update-bot-patterns` into plain substrings
//! (one Aho–Corasick pass over the lower-cased User-Agent) plus a few small `regex-lite` checks.
//! The worker cannot afford the `regex` crate (most of its bundle before), nor woothee, which
//! needs it: browser, OS and device come from the product tokens browsers send. On top of the
//! verdicts we only decide *why* something is a bot, since analytics reports link-preview
//! fetchers apart from crawlers.

use aho_corasick::AhoCorasick;
use regex_lite::Regex;

use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Why a click was labelled as a bot. Bots are stored and labelled, never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotReason {
    /// A chat or social app fetching the page to render a preview card.
    LinkPreview,
    /// A crawler, monitor, scanner, headless browser or HTTP library (per `isbot`'s list).
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Link-preview fetchers, matched case-insensitively as substrings of the User-Agent. `isbot`'s
/// list knows most as bots; this list sorts them into [`BotReason::LinkPreview`].
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

/// Security scanners that announce themselves but are missing from isbot's list (checked like
/// [`PREVIEW_FETCHERS`]); `no_real_browser_is_flagged` guards them too.
const SCANNERS: &[&str] = &["nikto", "acunetix", "qualys"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    pub device_type: DeviceType,
    pub bot: Option<BotReason>,
}

/// One way a substring found by the Aho–Corasick pass makes the User-Agent a bot.
enum Check {
    /// The substring alone (`at_start`: only at the very start).
    Literal { at_start: bool },
    /// The substring, not right after nor right before any of these literals, and followed by
    /// `tail` if there is one (isbot's look-around patterns).
    Around {
        not_before: Vec<String>,
        not_after: Vec<String>,
        tail: Option<Regex>,
    },
    /// The substring (`at_start`: at the start) is only a hint: the whole pattern decides.
    Confirm { at_start: bool, pattern: Regex },
}

impl Check {
    fn holds(&self, ua: &str, start: usize, end: usize) -> bool {
        match self {
            Self::Literal { at_start } => !at_start || start == 0,
            Self::Around {
                not_before,
                not_after,
                tail,
            } => {
                !not_before.iter().any(|b| ua[..start].ends_with(b.as_str()))
                    && !not_after.iter().any(|a| ua[end..].starts_with(a.as_str()))
                    && tail
                        .as_ref()
                        .is_none_or(|t| t.find_at(ua, end).is_some_and(|m| m.start() == end))
            }
            Self::Confirm { at_start, pattern } => {
                (!at_start || start == 0) && pattern.is_match(ua)
            }
        }
    }
}

/// isbot's list, compiled once per process (per isolate at the edge).
struct BotPatterns {
    /// Every needle, lower case; `checks[i]` are the patterns that need needle `i`.
    needles: AhoCorasick,
    checks: Vec<Vec<Check>>,
    /// Patterns without a usable needle, tried on every User-Agent no needle decided.
    always: Vec<Regex>,
}

const BOT_PATTERNS: &str = include_str!("../data/bot-patterns.tsv");

impl BotPatterns {
    fn parse(table: &str) -> Self {
        let regex = |pattern: &str| {
            Regex::new(pattern).unwrap_or_else(|e| panic!("bot pattern {pattern:?}: {e}"))
        };
        let list = |field: &str| -> Vec<String> {
            field
                .split('|')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let mut needles: Vec<String> = Vec::new();
        let mut checks: Vec<Vec<Check>> = Vec::new();
        let mut always = Vec::new();
        let mut add = |needle: &str, check: Check| {
            let index = needles.iter().position(|n| n == needle).unwrap_or_else(|| {
                needles.push(needle.to_owned());
                checks.push(Vec::new());
                needles.len() - 1
            });
            checks[index].push(check);
        };
        for line in table.lines().filter(|l| !l.starts_with('#')) {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["literal", needle] => {
                    let (needle, at_start) = anchored(needle);
                    add(needle, Check::Literal { at_start });
                }
                ["around", needle, before, after, tail] => add(
                    needle,
                    Check::Around {
                        not_before: list(before),
                        not_after: list(after),
                        tail: (!tail.is_empty()).then(|| regex(tail)),
                    },
                ),
                ["confirm", needle, pattern] => {
                    let (needle, at_start) = anchored(needle);
                    add(
                        needle,
                        Check::Confirm {
                            at_start,
                            pattern: regex(pattern),
                        },
                    );
                }
                ["always", pattern] => always.push(regex(pattern)),
                _ => panic!("malformed line in core/data/bot-patterns.tsv: {line:?}"),
            }
        }
        Self {
            needles: AhoCorasick::new(&needles).expect("bot needles build an automaton"),
            checks,
            always,
        }
    }

    /// `lower`: the User-Agent in ASCII lower case (isbot matches case-insensitively).
    fn is_bot(&self, lower: &str) -> bool {
        self.needles.find_overlapping_iter(lower).any(|m| {
            self.checks[m.pattern().as_usize()]
                .iter()
                .any(|check| check.holds(lower, m.start(), m.end()))
        }) || self.always.iter().any(|pattern| pattern.is_match(lower))
    }
}

/// `("^foo")` → `("foo", true)`.
fn anchored(needle: &str) -> (&str, bool) {
    needle
        .strip_prefix('^')
        .map_or((needle, false), |rest| (rest, true))
}

fn bot_patterns() -> &'static BotPatterns {
    static PATTERNS: OnceLock<BotPatterns> = OnceLock::new();
    PATTERNS.get_or_init(|| BotPatterns::parse(BOT_PATTERNS))
}

/// Browsers by their product token, most specific first (Edge and Opera also say `Chrome/`,
/// Chrome also says `Safari/`): (token, name, where the version is).
const BROWSERS: &[(&str, &str, Version)] = &[
    ("Edg/", "Edge", Version::Token),
    ("EdgA/", "Edge", Version::Token),
    ("EdgiOS/", "Edge", Version::Token),
    ("Edge/", "Edge", Version::Token),
    ("OPR/", "Opera", Version::Token),
    ("Opera", "Opera", Version::After("Version/")),
    ("YaBrowser/", "Yandex Browser", Version::Token),
    ("Vivaldi/", "Vivaldi", Version::Token),
    ("SamsungBrowser/", "Samsung Internet", Version::Token),
    ("UCBrowser/", "UCBrowser", Version::Token),
    ("FxiOS/", "Firefox", Version::Token),
    ("CriOS/", "Chrome", Version::Token),
    ("Firefox/", "Firefox", Version::Token),
    ("Chrome/", "Chrome", Version::Token),
    ("MSIE ", "Internet Explorer", Version::Token),
    ("Trident/", "Internet Explorer", Version::After("rv:")),
    ("Safari/", "Safari", Version::After("Version/")),
];

#[derive(Clone, Copy)]
enum Version {
    /// Right after the token.
    Token,
    /// After this other marker.
    After(&'static str),
}

/// The version that follows `marker` in `ua` (up to a space, `;` or `)`), `_` read as `.`.
fn version_after(ua: &str, marker: &str) -> String {
    ua.find(marker)
        .map(|i| {
            ua[i + marker.len()..]
                .split([' ', ';', ')'])
                .next()
                .unwrap_or_default()
                .replace('_', ".")
        })
        .unwrap_or_default()
}

fn browser(ua: &str) -> (&'static str, String) {
    BROWSERS
        .iter()
        .find(|(token, ..)| ua.contains(token))
        .map_or(("", String::new()), |(token, name, version)| {
            let version = match version {
                Version::Token => version_after(ua, token),
                Version::After(marker) => version_after(ua, marker),
            };
            (name, version)
        })
}

/// Windows NT versions by their marketing names (as woothee named them, so stored values stay).
const WINDOWS: &[(&str, &str)] = &[
    ("10.0", "Windows 10"),
    ("6.3", "Windows 8.1"),
    ("6.2", "Windows 8"),
    ("6.1", "Windows 7"),
    ("6.0", "Windows Vista"),
    ("5.1", "Windows XP"),
];

/// (OS, its version, whether it is a phone or tablet OS).
fn os(ua: &str) -> (&'static str, String, bool) {
    if ua.contains("Windows Phone") {
        (
            "Windows Phone OS",
            version_after(ua, "Windows Phone "),
            true,
        )
    } else if ua.contains("Windows NT ") {
        let nt = version_after(ua, "Windows NT ");
        let name = WINDOWS
            .iter()
            .find(|(version, _)| *version == nt)
            .map_or("Windows", |(_, name)| *name);
        (name, format!("NT {nt}"), false)
    } else if ua.contains("iPad") {
        ("iPad", version_after(ua, "CPU OS "), true)
    } else if ua.contains("iPhone") {
        ("iPhone", version_after(ua, "iPhone OS "), true)
    } else if ua.contains("iPod") {
        ("iPod", version_after(ua, "iPhone OS "), true)
    } else if ua.contains("Android") {
        ("Android", version_after(ua, "Android "), true)
    } else if ua.contains("CrOS") {
        ("ChromeOS", String::new(), false)
    } else if ua.contains("Mac OS X") {
        ("Mac OSX", version_after(ua, "Mac OS X "), false)
    } else if ua.contains("Linux") {
        ("Linux", String::new(), false)
    } else {
        ("", String::new(), false)
    }
}

/// Classifies a request by its method, User-Agent and prefetch headers
/// (`Sec-Purpose`, `Purpose`, `X-Purpose`, `X-Moz`, whichever is present).
pub fn classify(method: &str, user_agent: &str, purpose: Option<&str>) -> Visitor {
    let mut visitor = by_user_agent(user_agent);
    if visitor.bot.is_none() {
        visitor.bot = if method.eq_ignore_ascii_case("HEAD") {
            Some(BotReason::HeadRequest)
        } else if purpose.is_some_and(|p| {
            let p = p.to_ascii_lowercase();
            p.contains("prefetch") || p.contains("prerender") || p.contains("preview")
        }) {
            Some(BotReason::Prefetch)
        } else {
            None
        };
        if visitor.bot.is_some() {
            visitor.device_type = DeviceType::Bot;
        }
    }
    visitor
}

/// Most distinct User-Agents one thread remembers (a worker isolate has one thread); when full
/// the memo starts over, so its memory stays bounded whatever visitors send.
const MEMO_ENTRIES: usize = 1024;

/// Longer User-Agents are classified every time rather than remembered.
const MEMO_MAX_LEN: usize = 512;

thread_local! {
    /// What [`parse`] said about User-Agents this thread saw recently: traffic repeats a few
    /// browsers' strings, and classifying one is the costliest part of recording a click.
    static MEMO: RefCell<HashMap<Box<str>, Visitor>> = RefCell::new(HashMap::new());
}

/// [`parse`], remembered per thread.
fn by_user_agent(user_agent: &str) -> Visitor {
    if user_agent.len() > MEMO_MAX_LEN {
        return parse(user_agent);
    }
    if let Some(visitor) = MEMO.with_borrow(|memo| memo.get(user_agent).cloned()) {
        return visitor;
    }
    let visitor = parse(user_agent);
    MEMO.with_borrow_mut(|memo| {
        if memo.len() >= MEMO_ENTRIES {
            memo.clear();
        }
        memo.insert(user_agent.into(), visitor.clone());
    });
    visitor
}

/// What the User-Agent alone says: browser, OS, device, and the bot verdicts it decides.
fn parse(user_agent: &str) -> Visitor {
    let lower = user_agent.to_ascii_lowercase();
    let bot = if user_agent.trim().is_empty() {
        Some(BotReason::MissingUserAgent)
    } else if PREVIEW_FETCHERS.iter().any(|f| lower.contains(f)) {
        Some(BotReason::LinkPreview)
    } else if SCANNERS.iter().any(|s| lower.contains(s)) || bot_patterns().is_bot(&lower) {
        Some(BotReason::Crawler)
    } else {
        None
    };
    let (browser, browser_version) = browser(user_agent);
    let (os, os_version, handheld) = os(user_agent);
    let device_type = if bot.is_some() {
        DeviceType::Bot
    } else if handheld {
        if os == "iPad" || (os == "Android" && !user_agent.contains("Mobile")) {
            DeviceType::Tablet
        } else {
            DeviceType::Mobile
        }
    } else if os.is_empty() {
        DeviceType::Other
    } else {
        DeviceType::Desktop
    };
    Visitor {
        browser: browser.to_owned(),
        browser_version,
        os: os.to_owned(),
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
                "",
                "",
                DeviceType::Bot,
                Some(BotReason::Crawler),
            ),
            (
                "curl/8.5.0",
                "GET",
                None,
                "",
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
                "",
                "",
                DeviceType::Bot,
                Some(BotReason::LinkPreview),
            ),
            (
                "Twitterbot/1.0",
                "GET",
                None,
                "",
                "",
                DeviceType::Bot,
                Some(BotReason::LinkPreview),
            ),
            (
                "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
                "GET",
                None,
                "",
                "",
                DeviceType::Bot,
                Some(BotReason::LinkPreview),
            ),
            (
                "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
                "GET",
                None,
                "",
                "",
                DeviceType::Bot,
                Some(BotReason::LinkPreview),
            ),
            (
                "Mastodon/4.3.1 (http.rb/5.2.0; +https://mastodon.social/) Bot",
                "GET",
                None,
                "",
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
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "GET",
                None,
                "Edge",
                "Windows 10",
                DeviceType::Desktop,
                None,
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
                "GET",
                None,
                "Samsung Internet",
                "Android",
                DeviceType::Mobile,
                None,
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/131.0 Mobile/15E148 Safari/605.1.15",
                "GET",
                None,
                "Firefox",
                "iPhone",
                DeviceType::Mobile,
                None,
            ),
            (
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "GET",
                None,
                "Chrome",
                "ChromeOS",
                DeviceType::Desktop,
                None,
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

    fn corpus(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.trim().is_empty()).collect()
    }

    /// (flagged as bots, not flagged)
    fn split<'a>(user_agents: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
        user_agents
            .iter()
            .partition(|ua| classify("GET", ua, None).bot.is_some())
    }

    /// Recall on a public corpus isbot's list is not derived from: every `instances` entry of
    /// monperrus/crawler-user-agents (core/tests/data/README.md).
    #[test]
    fn recall_on_crawler_user_agents_is_at_least_97_percent() {
        let crawlers = corpus(include_str!("../tests/data/crawler-user-agents.txt"));
        let found = split(&crawlers).0.len();
        let recall = found as f64 / crawlers.len() as f64;
        println!("recall {recall:.4} ({found} of {})", crawlers.len());
        assert!(
            recall >= 0.97,
            "recall {recall:.4} ({found} of {})",
            crawlers.len()
        );
    }

    #[test]
    fn every_bot_of_isbots_fixtures_is_found() {
        let crawlers = corpus(include_str!("../tests/data/isbot-crawlers.txt"));
        let (_, missed) = split(&crawlers);
        assert!(
            missed.is_empty(),
            "missed {} bots: {missed:#?}",
            missed.len()
        );
    }

    #[test]
    fn no_real_browser_is_flagged() {
        let browsers = corpus(include_str!("../tests/data/isbot-browsers.txt"));
        let (flagged, _) = split(&browsers);
        assert!(flagged.is_empty(), "browsers flagged as bots: {flagged:#?}");
    }

    /// The families older lists missed, one or more current User-Agents each.
    #[test]
    fn ai_agents_scanners_headless_monitors_and_clients_are_bots() {
        let families: &[(&str, &[&str])] = &[
            (
                "AI crawlers and agents",
                &[
                    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
                    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot",
                    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; OAI-SearchBot/1.0; +https://openai.com/searchbot",
                    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
                    "Claude-User (claude-code/1.0.0; +https://support.anthropic.com/)",
                    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)",
                    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Perplexity-User/1.0; +https://perplexity.ai/perplexity-user)",
                    "CCBot/2.0 (https://commoncrawl.org/faq/)",
                    "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
                    "Mozilla/5.0 (compatible; Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot)",
                    "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
                ],
            ),
            (
                "security scanners",
                &[
                    "Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)",
                    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
                    "sqlmap/1.8#stable (https://sqlmap.org)",
                    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000001)",
                    "Mozilla/5.0 zgrab/0.x",
                    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
                    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
                    "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Acunetix-Product",
                    "Mozilla/5.0 (compatible; Qualys)",
                    "Expanse, a Palo Alto Networks company, searches across the global IPv4 space multiple times per day to identify customers' presences on the Internet.",
                ],
            ),
            (
                "headless automation",
                &[
                    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
                    "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
                    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Cypress/13.6.0 Chrome/118.0.5993.159 Electron/27.1.3 Safari/537.36",
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36 Playwright",
                ],
            ),
            (
                "synthetic monitors",
                &[
                    "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
                    "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
                    "Mozilla/5.0 (compatible; Site24x7)",
                    "Datadog/Synthetics",
                    "Amazon-Route53-Health-Check-Service (ref b0eb04d5-cb5e-40e7-839b-558e52fc3f0d; report http://amzn.to/1vsZADi)",
                ],
            ),
            (
                "HTTP client libraries",
                &[
                    "curl/8.5.0",
                    "Wget/1.21.4",
                    "python-requests/2.32.3",
                    "python-httpx/0.27.0",
                    "Python/3.12 aiohttp/3.9.5",
                    "Go-http-client/2.0",
                    "okhttp/4.12.0",
                    "axios/1.7.2",
                    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
                    "undici",
                    "Java/21.0.2",
                    "Apache-HttpClient/4.5.14 (Java/17.0.9)",
                    "libwww-perl/6.72",
                    "Faraday v2.9.0",
                    "GuzzleHttp/7",
                    "PostmanRuntime/7.39.0",
                    "Deno/1.44.0",
                    "Bun/1.1.0",
                    "fasthttp",
                ],
            ),
        ];
        let missed: Vec<String> = families
            .iter()
            .flat_map(|(family, uas)| {
                split(uas)
                    .1
                    .into_iter()
                    .map(move |ua| format!("{family}: {ua}"))
            })
            .collect();
        assert!(missed.is_empty(), "not flagged: {missed:#?}");
    }

    #[test]
    fn a_remembered_user_agent_still_answers_for_its_method_and_purpose() {
        let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0 memo-test";
        for _ in 0..2 {
            assert_eq!(classify("GET", ua, None).bot, None);
            assert_eq!(classify("GET", ua, None).device_type, DeviceType::Desktop);
            let head = classify("HEAD", ua, None);
            assert_eq!(head.bot, Some(BotReason::HeadRequest));
            assert_eq!(head.device_type, DeviceType::Bot);
            let prefetch = classify("GET", ua, Some("prefetch;prerender"));
            assert_eq!(prefetch.bot, Some(BotReason::Prefetch));
            assert_eq!(prefetch.browser, "Firefox");
        }
    }

    #[test]
    fn the_memo_gives_what_parsing_gives_and_stays_bounded() {
        for i in 0..MEMO_ENTRIES * 2 + 7 {
            let ua = format!(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{i} like Mac OS X) Mobile Safari/604.1"
            );
            assert_eq!(classify("GET", &ua, None), parse(&ua));
            assert_eq!(classify("GET", &ua, None), parse(&ua), "remembered {ua}");
            assert!(MEMO.with_borrow(HashMap::len) <= MEMO_ENTRIES);
        }
        let long = format!("Mozilla/5.0 {}", "x".repeat(MEMO_MAX_LEN));
        classify("GET", &long, None);
        assert!(!MEMO.with_borrow(|memo| memo.contains_key(long.as_str())));
    }

    #[test]
    fn versions_are_reported() {
        let v = classify("GET", CHROME_WIN, None);
        assert_eq!(v.browser_version, "131.0.0.0");
        let v = classify("GET", SAFARI_IPHONE, None);
        assert_eq!(v.os_version, "17.5");
    }
}
