//! The analytics API over a known fixture of clicks in a real ClickHouse: exact totals, series,
//! breakdowns and uniques, the bot toggle, time zone edges, empty ranges, access control,
//! validation, escaping, and `links.total_clicks` following ClickHouse.

mod common;

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use smo1_core::click::ClickEvent;
use smo1_origin::analytics::escape::quote;
use smo1_origin::analytics::{rollup, sync};
use smo1_testkit as testkit;
use std::time::{Duration, Instant};

fn error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

fn unix(rfc3339: &str) -> u32 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp()
        .try_into()
        .unwrap()
}

/// A human click from Germany on Firefox, without referrer, unless changed afterwards.
fn click(link: &LinkOf, click_id: &str, at: &str, visitor: &str) -> ClickEvent {
    ClickEvent {
        click_id: click_id.into(),
        clicked_at: unix(at),
        link_id: link.id.clone(),
        user_id: link.user_id.to_string(),
        slug: link.slug.clone(),
        destination: "https://example.com/".into(),
        visitor_id: visitor.into(),
        country: "DE".into(),
        region: "BE".into(),
        city: "Berlin".into(),
        device_type: "desktop".into(),
        browser: "Firefox".into(),
        browser_version: "133.0".into(),
        os: "Linux".into(),
        os_version: String::new(),
        referrer: String::new(),
        referrer_domain: String::new(),
        utm_source: String::new(),
        utm_medium: String::new(),
        utm_campaign: String::new(),
        utm_term: String::new(),
        utm_content: String::new(),
        method: "GET".into(),
        is_qr: 0,
        is_bot: 0,
        bot_reason: String::new(),
        rule_id: String::new(),
    }
}

/// A link and its owner, as a click names them.
struct LinkOf {
    id: String,
    user_id: uuid::Uuid,
    slug: String,
}

impl LinkOf {
    fn new(link: &Value, user_id: uuid::Uuid) -> Self {
        Self {
            id: link["id"].as_str().unwrap().into(),
            user_id,
            slug: link["slug"].as_str().unwrap().into(),
        }
    }
}

const HOSTILE_REFERRER_DOMAIN: &str = "evil'.com\\";
const HOSTILE_SLUG: &str = "x'); DROP TABLE link_clicks; --";

struct Fixture {
    app: TestApp,
    /// Owner of `l1` and `l2`.
    key: String,
    user_id: uuid::Uuid,
    /// Owner of `l3` only.
    other_key: String,
    l1: String,
    l2: String,
}

/// Visitor ids are salted per UTC day, as the edge makes them: `v*` on the 2nd, `w*` on the 3rd,
/// `x*` on the 4th. Link L1 of user A:
/// - c1 (v1, DE) 2026-11-02 10:00Z, delivered twice; c2 (v2, US, Chrome, from HN) 10:30Z;
/// - c3 (w1, DE) 2026-11-03 00:30Z; c9 (w1 again, DE) 12:00Z; c4 (w3, US, bot) 23:30Z;
/// - c5 (x4, FR, hostile referrer) 2026-11-04 05:00Z.
///
/// Link L2 of user A: c6 (v1, DE) 2026-11-02 12:00Z. Link L3 of user B: c7 (v9) 2026-11-02 12:00Z.
async fn fixture() -> Fixture {
    fixture_with(TestApp::start().await).await
}

/// The fixture in an app with room for many calls a minute (free accounts get 60).
async fn roomy_fixture() -> Fixture {
    fixture_with(TestApp::start_with(|c| c.rate_limits.free_per_minute = 1000).await).await
}

async fn fixture_with(app: TestApp) -> Fixture {
    let a = app.api_user("a@example.com").await;
    let b = app.api_user("b@example.com").await;
    let l1 = LinkOf::new(
        &app.api_link(&a.key, json!({"destination": "https://example.com/1"}))
            .await,
        a.id,
    );
    let l2 = LinkOf::new(
        &app.api_link(&a.key, json!({"destination": "https://example.com/2"}))
            .await,
        a.id,
    );
    let l3 = LinkOf::new(
        &app.api_link(&b.key, json!({"destination": "https://example.com/3"}))
            .await,
        b.id,
    );

    let c1 = click(&l1, "c1", "2026-11-02T10:00:00Z", "v1");
    let mut c2 = click(&l1, "c2", "2026-11-02T10:30:00Z", "v2");
    c2.country = "US".into();
    c2.city = "Boston".into();
    c2.browser = "Chrome".into();
    c2.referrer = "https://news.ycombinator.com/item?id=1".into();
    c2.referrer_domain = "news.ycombinator.com".into();
    c2.utm_source = "hn".into();
    let c3 = click(&l1, "c3", "2026-11-03T00:30:00Z", "w1");
    let c9 = click(&l1, "c9", "2026-11-03T12:00:00Z", "w1");
    let mut c4 = click(&l1, "c4", "2026-11-03T23:30:00Z", "w3");
    c4.country = "US".into();
    c4.is_bot = 1;
    c4.bot_reason = "crawler".into();
    c4.device_type = "bot".into();
    let mut c5 = click(&l1, "c5", "2026-11-04T05:00:00Z", "x4");
    c5.country = "FR".into();
    c5.referrer_domain = HOSTILE_REFERRER_DOMAIN.into();
    c5.slug = HOSTILE_SLUG.into();
    let c6 = click(&l2, "c6", "2026-11-02T12:00:00Z", "v1");
    let c7 = click(&l3, "c7", "2026-11-02T12:00:00Z", "v9");

    let mut body = Vec::new();
    for event in [&c1, &c1, &c2, &c3, &c9, &c4, &c5, &c6, &c7] {
        serde_json::to_writer(&mut body, event).unwrap();
        body.push(b'\n');
    }
    app.db
        .clickhouse()
        .insert_json_rows("link_clicks", &[], body)
        .await
        .unwrap();
    Fixture {
        key: a.key,
        user_id: a.id,
        other_key: b.key,
        l1: l1.id,
        l2: l2.id,
        app,
    }
}

impl Fixture {
    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.app.call(Method::GET, path, &self.key, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    fn link(&self, rest: &str) -> String {
        format!("/v1/links/{}/analytics/{rest}", self.l1)
    }

    /// Rolls the fixture's days up (they are long over) when entering the "rolled" mode.
    async fn enter(&self, mode: &str) {
        if mode == "rolled" {
            rollup::roll_settled_days(&self.app.db.clickhouse(), chrono::Utc::now())
                .await
                .unwrap();
        }
    }
}

fn points(series: &Value) -> Vec<(String, u64, u64, u64)> {
    series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["start"].as_str().unwrap().to_owned(),
                p["clicks"].as_u64().unwrap(),
                p["unique_visitors"].as_u64().unwrap(),
                p["bot_clicks"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn owned(points: &[(&str, u64, u64, u64)]) -> Vec<(String, u64, u64, u64)> {
    points
        .iter()
        .map(|(s, c, v, b)| ((*s).to_owned(), *c, *v, *b))
        .collect()
}

const RANGE: &str = "from=2026-11-02T00:00:00Z&to=2026-11-05T00:00:00Z";

/// Every answer is checked twice: from the raw data (views and `link_clicks`), and again once
/// the fixture's days are rolled up, when the same answers come from the rollups.
const MODES: [&str; 2] = ["unrolled", "rolled"];

#[tokio::test(flavor = "multi_thread")]
async fn totals_count_distinct_clicks_and_visitors() {
    let f = fixture().await;
    for mode in MODES {
        f.enter(mode).await;
        let summary = f.get(&f.link(&format!("summary?{RANGE}"))).await;
        assert_eq!(
            summary,
            json!({
                "from": "2026-11-02T00:00:00Z", "to": "2026-11-05T00:00:00Z", "include_bots": false,
                "clicks": 5, "unique_visitors": 4, "human_clicks": 5, "bot_clicks": 1,
            }),
            "{mode}"
        );
        let with_bots = f
            .get(&f.link(&format!("summary?{RANGE}&include_bots=true")))
            .await;
        assert_eq!(with_bots["clicks"], 6, "{mode}");
        assert_eq!(with_bots["unique_visitors"], 5, "{mode}");
        assert_eq!(with_bots["bot_clicks"], 1, "{mode}");

        // w1 clicked twice on the 3rd: one visitor that day.
        let series = f.get(&f.link(&format!("timeseries?{RANGE}"))).await;
        assert_eq!(
            points(&series),
            owned(&[
                ("2026-11-02T00:00:00+00:00", 2, 2, 0),
                ("2026-11-03T00:00:00+00:00", 2, 1, 1),
                ("2026-11-04T00:00:00+00:00", 1, 1, 0),
            ]),
            "{mode}"
        );
        let with_bots = f
            .get(&f.link(&format!("timeseries?{RANGE}&include_bots=true")))
            .await;
        assert_eq!(
            points(&with_bots),
            owned(&[
                ("2026-11-02T00:00:00+00:00", 2, 2, 0),
                ("2026-11-03T00:00:00+00:00", 3, 2, 1),
                ("2026-11-04T00:00:00+00:00", 1, 1, 0),
            ]),
            "{mode}"
        );
        assert_eq!(with_bots["interval"], "day");
        assert_eq!(with_bots["timezone"], "UTC");
        assert_eq!(with_bots["include_bots"], true);

        // The whole account: L1 and L2 (v1 clicked both: one visitor), never user B's link.
        let account = f.get(&format!("/v1/analytics/summary?{RANGE}")).await;
        assert_eq!(account["clicks"], 6, "{mode}");
        assert_eq!(account["unique_visitors"], 4, "{mode}");
        assert_eq!(account["bot_clicks"], 1, "{mode}");
        let account_days = f.get(&format!("/v1/analytics/timeseries?{RANGE}")).await;
        assert_eq!(
            points(&account_days)[0],
            ("2026-11-02T00:00:00+00:00".to_owned(), 3, 2, 0),
            "{mode}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_range_edges_are_exact_on_and_off_the_hour() {
    let f = fixture().await;
    for mode in MODES {
        f.enter(mode).await;
        // A whole-hour end stops before c5 (05:00:00)…
        let hourly = f
            .get(&f.link(
                "summary?from=2026-11-02T00:00:00Z&to=2026-11-04T05:00:00Z&include_bots=true",
            ))
            .await;
        assert_eq!(
            (hourly["clicks"].as_u64(), hourly["bot_clicks"].as_u64()),
            (Some(5), Some(1)),
            "{mode}"
        );
        // …one second later the raw table answers, with c5.
        let raw = f
            .get(&f.link(
                "summary?from=2026-11-02T00:00:00Z&to=2026-11-04T05:00:01Z&include_bots=true",
            ))
            .await;
        assert_eq!(raw["clicks"], 6, "{mode}");
        let raw_start = f
            .get(&f.link(
                "summary?from=2026-11-02T10:00:01Z&to=2026-11-05T00:00:00Z&include_bots=true",
            ))
            .await;
        assert_eq!(raw_start["clicks"], 5, "{mode}");
        assert_eq!(raw_start["unique_visitors"], 4, "{mode}");
        // From 01:00 on the 3rd: w1's first click (00:30) is out, its second (12:00) in.
        let late_start = f
            .get(&f.link("summary?from=2026-11-03T01:00:00Z&to=2026-11-04T00:00:00Z"))
            .await;
        assert_eq!(
            (
                late_start["clicks"].as_u64(),
                late_start["unique_visitors"].as_u64()
            ),
            (Some(1), Some(1)),
            "{mode}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn series_are_cut_in_the_requested_time_zone_and_gaps_are_zero() {
    let f = fixture().await;
    for mode in MODES {
        f.enter(mode).await;
        // New York (UTC-5 after 2026-11-01): c3 (00:30Z) falls on the 2nd, c5 (05:00Z) exactly
        // on local midnight of the 4th.
        let ny_range = "from=2026-11-02T05:00:00Z&to=2026-11-05T05:00:00Z&tz=America/New_York";
        let ny = f.get(&f.link(&format!("timeseries?{ny_range}"))).await;
        assert_eq!(ny["timezone"], "America/New_York");
        assert_eq!(
            points(&ny),
            owned(&[
                ("2026-11-02T00:00:00-05:00", 3, 3, 0),
                ("2026-11-03T00:00:00-05:00", 1, 1, 1),
                ("2026-11-04T00:00:00-05:00", 1, 1, 0),
            ]),
            "{mode}"
        );
        // Local days' uniques add up to 5, but w1 is one visitor on both: 4 over the range.
        let ny_total = f.get(&f.link(&format!("summary?{ny_range}"))).await;
        assert_eq!(ny_total["unique_visitors"], 4, "{mode}");
        // Kolkata (UTC+5:30) buckets start at :30 UTC: answered from the raw table, just as
        // exactly.
        let kolkata = f
            .get(&f.link(
                "timeseries?from=2026-11-01T18:30:00Z&to=2026-11-04T18:30:00Z&tz=Asia/Kolkata",
            ))
            .await;
        assert_eq!(
            points(&kolkata),
            owned(&[
                ("2026-11-02T00:00:00+05:30", 2, 2, 0),
                ("2026-11-03T00:00:00+05:30", 2, 1, 0),
                ("2026-11-04T00:00:00+05:30", 1, 1, 1),
            ]),
            "{mode}"
        );
        // Hours with nothing in them are there, as zeros.
        let hours =
            f.get(&f.link(
                "timeseries?from=2026-11-02T09:00:00Z&to=2026-11-02T13:00:00Z&interval=hour",
            ))
            .await;
        assert_eq!(
            points(&hours),
            owned(&[
                ("2026-11-02T09:00:00+00:00", 0, 0, 0),
                ("2026-11-02T10:00:00+00:00", 2, 2, 0),
                ("2026-11-02T11:00:00+00:00", 0, 0, 0),
                ("2026-11-02T12:00:00+00:00", 0, 0, 0),
            ]),
            "{mode}"
        );
        let account_hours = f
            .get("/v1/analytics/timeseries?from=2026-11-02T11:00:00Z&to=2026-11-02T13:00:00Z&interval=hour")
            .await;
        assert_eq!(
            points(&account_hours),
            owned(&[
                ("2026-11-02T11:00:00+00:00", 0, 0, 0),
                ("2026-11-02T12:00:00+00:00", 1, 1, 0),
            ]),
            "{mode}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_ranges_answer_zeros_not_errors() {
    let f = fixture().await;
    let range = "from=2026-12-01T00:00:00Z&to=2026-12-03T00:00:00Z";
    let summary = f.get(&f.link(&format!("summary?{range}"))).await;
    assert_eq!(
        (
            summary["clicks"].as_u64(),
            summary["unique_visitors"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let series = f.get(&f.link(&format!("timeseries?{range}"))).await;
    assert_eq!(
        points(&series),
        owned(&[
            ("2026-12-01T00:00:00+00:00", 0, 0, 0),
            ("2026-12-02T00:00:00+00:00", 0, 0, 0),
        ])
    );
    let countries = f.get(&f.link(&format!("breakdown/country?{range}"))).await;
    assert_eq!(countries["values"], json!([]));
    assert_eq!(
        countries["other"],
        json!({"clicks": 0, "human_clicks": 0, "bot_clicks": 0})
    );
    let clicks = f.get(&f.link(&format!("clicks?{range}"))).await;
    assert_eq!(clicks, json!({"data": [], "next_cursor": null}));
}

fn values(breakdown: &Value) -> Vec<(String, u64, u64, u64)> {
    breakdown["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap().to_owned(),
                v["clicks"].as_u64().unwrap(),
                v["unique_visitors"].as_u64().unwrap(),
                v["bot_clicks"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn breakdowns_rank_values_and_sum_the_rest_as_other() {
    let f = fixture().await;
    for mode in MODES {
        f.enter(mode).await;
        let countries = f
            .get(&f.link(&format!("breakdown/country?{RANGE}&limit=2")))
            .await;
        assert_eq!(countries["dimension"], "country");
        assert_eq!(
            values(&countries),
            owned(&[("DE", 3, 2, 0), ("FR", 1, 1, 0)]),
            "{mode}"
        );
        // US: c2 (human) and c4 (bot).
        assert_eq!(
            countries["other"],
            json!({"clicks": 1, "human_clicks": 1, "bot_clicks": 1}),
            "{mode}"
        );
        let with_bots = f
            .get(&f.link(&format!("breakdown/country?{RANGE}&include_bots=true")))
            .await;
        assert_eq!(
            values(&with_bots),
            owned(&[("DE", 3, 2, 0), ("US", 2, 2, 1), ("FR", 1, 1, 0)]),
            "{mode}"
        );
        assert_eq!(
            with_bots["other"],
            json!({"clicks": 0, "human_clicks": 0, "bot_clicks": 0})
        );

        let referrers = f.get(&f.link(&format!("breakdown/referrer?{RANGE}"))).await;
        assert_eq!(
            values(&referrers),
            owned(&[
                ("", 3, 2, 1),
                (HOSTILE_REFERRER_DOMAIN, 1, 1, 0),
                ("news.ycombinator.com", 1, 1, 0),
            ]),
            "{mode}"
        );
        for (dimension, top) in [
            ("browser", "Firefox"),
            ("city", "Berlin"),
            ("device", "desktop"),
            ("os", "Linux"),
            ("region", "BE"),
            ("utm_source", ""),
        ] {
            let answer = f
                .get(&f.link(&format!("breakdown/{dimension}?{RANGE}&limit=1")))
                .await;
            assert_eq!(answer["values"][0]["value"], top, "{dimension} {mode}");
        }
        let sources = f
            .get(&f.link(&format!("breakdown/utm_source?{RANGE}")))
            .await;
        assert_eq!(
            values(&sources),
            owned(&[("", 4, 3, 1), ("hn", 1, 1, 0)]),
            "{mode}"
        );
        // Off the hour: the partial day comes from the raw table, the rest as before.
        let partial = f
            .get(&f.link(
                "breakdown/country?from=2026-11-02T10:15:00Z&to=2026-11-05T00:00:00Z&limit=1",
            ))
            .await;
        assert_eq!(values(&partial), owned(&[("DE", 2, 1, 0)]), "{mode}");

        // The account: DE has c1, c3, c9 and c6 (v1 on the 2nd, w1 on the 3rd).
        let account = f
            .get(&format!("/v1/analytics/breakdown/country?{RANGE}&limit=1"))
            .await;
        assert_eq!(values(&account), owned(&[("DE", 4, 2, 0)]), "{mode}");
        assert_eq!(
            account["other"],
            json!({"clicks": 2, "human_clicks": 2, "bot_clicks": 1}),
            "{mode}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn recent_clicks_page_newest_first_once_each_without_ips() {
    let f = fixture().await;
    let first = f.get(&f.link(&format!("clicks?{RANGE}&limit=3"))).await;
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["click_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first), ["c5", "c9", "c3"]);
    let newest = &first["data"][0];
    assert_eq!(newest["slug"], HOSTILE_SLUG);
    assert_eq!(newest["referrer_domain"], HOSTILE_REFERRER_DOMAIN);
    assert_eq!(newest["clicked_at"], "2026-11-04T05:00:00+00:00");
    assert_eq!(newest["is_bot"], false);
    let mut fields: Vec<&str> = newest
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "bot_reason",
            "browser",
            "browser_version",
            "city",
            "click_id",
            "clicked_at",
            "country",
            "device_type",
            "is_bot",
            "is_qr",
            "link_id",
            "method",
            "os",
            "os_version",
            "referrer",
            "referrer_domain",
            "region",
            "slug",
            "utm_campaign",
            "utm_content",
            "utm_medium",
            "utm_source",
            "utm_term",
        ]
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = f
        .get(&f.link(&format!("clicks?{RANGE}&limit=3&cursor={cursor}")))
        .await;
    // c1 was delivered twice and is listed once.
    assert_eq!(ids(&second), ["c2", "c1"]);
    assert_eq!(second["next_cursor"], Value::Null);

    let with_bots = f
        .get(&f.link(&format!(
            "clicks?{RANGE}&include_bots=true&tz=Europe/Berlin"
        )))
        .await;
    assert_eq!(ids(&with_bots), ["c5", "c4", "c9", "c3", "c2", "c1"]);
    assert_eq!(with_bots["data"][1]["bot_reason"], "crawler");
    assert_eq!(
        with_bots["data"][0]["clicked_at"],
        "2026-11-04T06:00:00+01:00"
    );

    let account = f.get(&format!("/v1/analytics/clicks?{RANGE}")).await;
    assert_eq!(ids(&account), ["c5", "c9", "c3", "c6", "c2", "c1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn analytics_of_other_users_links_are_404_and_need_links_read() {
    let f = fixture().await;
    for path in [
        f.link("summary"),
        f.link("timeseries"),
        f.link("breakdown/country"),
        f.link("clicks"),
        "/v1/links/not-a-uuid/analytics/summary".into(),
        format!("/v1/links/{}/analytics/summary", uuid::Uuid::new_v4()),
    ] {
        let (status, body) = f.app.call(Method::GET, &path, &f.other_key, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, error("not_found", "link not found"), "{path}");
    }
    // User B's account analytics see only B's click.
    let (_, summary) = f
        .app
        .call(
            Method::GET,
            &format!("/v1/analytics/summary?{RANGE}"),
            &f.other_key,
            None,
        )
        .await;
    assert_eq!(summary["clicks"], 1);

    let (_, created) = f
        .app
        .call(
            Method::POST,
            "/v1/api-keys",
            &f.key,
            Some(json!({"name": "writer", "scopes": ["links:write"]})),
        )
        .await;
    let write_only = created["key"].as_str().unwrap();
    for path in [f.link("summary"), "/v1/analytics/summary".into()] {
        let (status, body) = f.app.call(Method::GET, &path, write_only, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            body,
            error(
                "insufficient_scope",
                "this API key lacks the links:read scope"
            )
        );
    }
    let response = f.app.get("/v1/analytics/summary").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_parameters_are_422_with_exact_errors() {
    let f = fixture().await;
    let cases = [
        (
            f.link("summary?from=2026-11-02T00:00:00Z&to=2026-11-02T00:00:00Z"),
            "from must be before to",
        ),
        (
            f.link("summary?from=2026-11-03T00:00:00Z&to=2026-11-02T00:00:00Z"),
            "from must be before to",
        ),
        (
            f.link("summary?from=2025-01-01T00:00:00Z&to=2026-01-03T00:00:00Z"),
            "the range may span at most 366 days",
        ),
        (
            f.link("timeseries?interval=hour&from=2026-10-01T00:00:00Z&to=2026-11-02T00:00:00Z"),
            "the range may span at most 31 days",
        ),
        (
            f.link("summary?tz=Mars/Olympus_Mons"),
            "tz must be an IANA time zone name such as Europe/Berlin",
        ),
        (
            f.link("timeseries?tz=UTC%27)%20FORMAT%20TSV%20--"),
            "tz must be an IANA time zone name such as Europe/Berlin",
        ),
        (
            f.link("breakdown/ip"),
            "dimension must be one of country, region, city, device, browser, os, referrer, \
             utm_source, utm_medium, utm_campaign, utm_term, utm_content, qr, rule",
        ),
        (
            f.link("breakdown/country?limit=0"),
            "limit must be 1 to 100",
        ),
        (f.link("clicks?limit=101"), "limit must be 1 to 100"),
        (f.link("clicks?cursor=1.x%27y"), "invalid cursor"),
        (
            "/v1/analytics/breakdown/country?limit=500".into(),
            "limit must be 1 to 100",
        ),
    ];
    for (path, message) in cases {
        let (status, body) = f.app.call(Method::GET, &path, &f.key, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(body, error("validation_failed", message), "{path}");
    }
    for path in [
        f.link("summary?interval=day"),
        f.link("timeseries?interval=week"),
        f.link("summary?from=yesterday"),
        f.link("summary?include_bots=maybe"),
    ] {
        let (status, body) = f.app.call(Method::GET, &path, &f.key, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(body["error"]["code"], "validation_failed", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quoted_values_come_back_from_clickhouse_unchanged() {
    let app = TestApp::start().await;
    let ch = app.db.clickhouse();
    for hostile in [
        "plain",
        "",
        "it's",
        r"back\slash",
        r"\'",
        r"trailing\",
        "x'); DROP TABLE link_clicks; --",
        "new\nline\r\ttab\0nul",
        "\u{1b}[31mred\u{7f}\u{85}",
        "Zürich 東京 🚀",
    ] {
        let rows: Vec<Value> = ch
            .query(&format!("SELECT {} AS s", quote(hostile)))
            .await
            .unwrap();
        assert_eq!(rows, [json!({ "s": hostile })], "{hostile:?}");
    }
}

async fn total_clicks(f: &Fixture, id: &str) -> i64 {
    let (_, link) = f
        .app
        .call(Method::GET, &format!("/v1/links/{id}"), &f.key, None)
        .await;
    link["total_clicks"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn total_clicks_follow_clickhouse() {
    let f = fixture().await;
    // The origin's own sync task (every 200 ms in tests) gets there without help.
    let deadline = Instant::now() + Duration::from_secs(15);
    while total_clicks(&f, &f.l1).await != 5 {
        assert!(Instant::now() < deadline, "total_clicks never synced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(total_clicks(&f, &f.l2).await, 1);
    // Listing by clicks reads PostgreSQL only, in pages.
    let first = f.get("/v1/links?sort=clicks&limit=1").await;
    assert_eq!(first["data"][0]["id"], f.l1.as_str());
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = f
        .get(&format!("/v1/links?sort=clicks&limit=1&cursor={cursor}"))
        .await;
    assert_eq!(second["data"][0]["id"], f.l2.as_str());
    assert_eq!(second["next_cursor"], Value::Null);
    let (status, body) = f
        .app
        .call(
            Method::GET,
            &format!("/v1/links?limit=1&cursor={cursor}"),
            &f.key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body, error("validation_failed", "invalid cursor"));
    // A pass with nothing new writes nothing.
    let ch = f.app.db.clickhouse();
    assert_eq!(
        sync::sync_total_clicks(&f.app.state.db, &ch).await.unwrap(),
        0
    );
    // Rolled days are summed from the rollups instead: the same counts, nothing changes.
    f.enter("rolled").await;
    assert_eq!(
        sync::sync_total_clicks(&f.app.state.db, &ch).await.unwrap(),
        0
    );
    let l2 = LinkOf::new(&f.get(&format!("/v1/links/{}", f.l2)).await, f.user_id);
    let more = click(&l2, "c8", "2026-11-05T00:00:00Z", "v5");
    let mut body = serde_json::to_vec(&more).unwrap();
    body.push(b'\n');
    ch.insert_json_rows("link_clicks", &[], body).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while total_clicks(&f, &f.l2).await != 2 {
        assert!(Instant::now() < deadline, "total_clicks did not follow");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Which of the fixture's days have current rollups.
async fn current_days(f: &Fixture) -> Vec<String> {
    let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    rollup::current_days(&f.app.db.clickhouse(), Some((day(1), day(6))))
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn rollups_answer_alone_and_late_clicks_reopen_their_day() {
    let f = fixture().await;
    let ch = f.app.db.clickhouse();
    let summary = f.link(&format!("summary?{RANGE}&include_bots=true"));
    let series = f.link(&format!("timeseries?{RANGE}"));
    let countries = f.link(&format!("breakdown/country?{RANGE}"));
    let account = format!("/v1/analytics/breakdown/city?{RANGE}");
    let before = [
        f.get(&summary).await,
        f.get(&series).await,
        f.get(&countries).await,
        f.get(&account).await,
    ];
    assert!(current_days(&f).await.is_empty());
    let now = chrono::Utc::now();
    assert_eq!(rollup::roll_settled_days(&ch, now).await.unwrap(), 3);
    assert_eq!(
        current_days(&f).await,
        ["2026-11-02", "2026-11-03", "2026-11-04"]
    );
    // Nothing new: nothing to roll.
    assert_eq!(rollup::roll_settled_days(&ch, now).await.unwrap(), 0);

    // With the raw table out of the way, whole rolled days still answer, from the rollups
    // alone, the same.
    ch.execute("RENAME TABLE link_clicks TO link_clicks_away")
        .await
        .unwrap();
    for (path, want) in [&summary, &series, &countries, &account]
        .into_iter()
        .zip(&before)
    {
        assert_eq!(&f.get(path).await, want, "{path}");
    }
    ch.execute("RENAME TABLE link_clicks_away TO link_clicks")
        .await
        .unwrap();

    // A late click for the 3rd (an outbox replay, say) and a late duplicate of c1: the 3rd and
    // the 2nd are read from the raw data at once, exactly, until they are rolled again.
    let l1 = LinkOf::new(&f.get(&format!("/v1/links/{}", f.l1)).await, f.user_id);
    let mut late = click(&l1, "c10", "2026-11-03T18:00:00Z", "w7");
    late.country = "NL".into();
    let duplicate = click(&l1, "c1", "2026-11-02T10:00:00Z", "v1");
    let mut body = Vec::new();
    for event in [&late, &duplicate] {
        serde_json::to_writer(&mut body, event).unwrap();
        body.push(b'\n');
    }
    ch.insert_json_rows("link_clicks", &[], body).await.unwrap();
    assert_eq!(current_days(&f).await, ["2026-11-04"]);
    let check = |summary: Value, countries: Value| {
        assert_eq!(summary["clicks"], 7);
        assert_eq!(summary["unique_visitors"], 6);
        assert!(values(&countries).contains(&("NL".into(), 1, 1, 0)));
        assert_eq!(values(&countries)[0], ("DE".into(), 3, 2, 0));
    };
    check(f.get(&summary).await, f.get(&countries).await);
    assert_eq!(rollup::roll_settled_days(&ch, now).await.unwrap(), 2);
    assert_eq!(
        current_days(&f).await,
        ["2026-11-02", "2026-11-03", "2026-11-04"]
    );
    check(f.get(&summary).await, f.get(&countries).await);

    // Today is never rolled: a day is rolled once it has been over for a while.
    let today = click(
        &l1,
        "c11",
        &now.format("%Y-%m-%dT00:00:00Z").to_string(),
        "t1",
    );
    let mut body = serde_json::to_vec(&today).unwrap();
    body.push(b'\n');
    ch.insert_json_rows("link_clicks", &[], body).await.unwrap();
    assert_eq!(rollup::roll_settled_days(&ch, now).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn recent_days_come_from_the_account_sorted_copy_until_they_age_out() {
    let f = fixture().await;
    let ch = f.app.db.clickhouse();
    let now = chrono::Utc::now();
    let day = |days_ago: i64| (now - chrono::Duration::days(days_ago)).format("%Y-%m-%d");
    let l1 = LinkOf::new(&f.get(&format!("/v1/links/{}", f.l1)).await, f.user_id);
    let l2 = LinkOf::new(&f.get(&format!("/v1/links/{}", f.l2)).await, f.user_id);
    // Today: t1 clicks L1 twice and L2 once. Five days ago: one click on L1.
    let events = [
        click(&l1, "c20", &format!("{}T00:00:00Z", day(0)), "t1"),
        click(&l1, "c21", &format!("{}T00:00:01Z", day(0)), "t1"),
        click(&l2, "c22", &format!("{}T00:00:02Z", day(0)), "t1"),
        click(&l1, "c23", &format!("{}T12:00:00Z", day(5)), "o1"),
    ];
    let mut body = Vec::new();
    for event in &events {
        serde_json::to_writer(&mut body, event).unwrap();
        body.push(b'\n');
    }
    ch.insert_json_rows("link_clicks", &[], body).await.unwrap();
    let today = format!("from={}T00:00:00Z&to={}T00:00:00Z", day(0), day(-1));
    let old = format!("from={}T00:00:00Z&to={}T00:00:00Z", day(5), day(4));
    let counts = |v: &Value| (v["clicks"].as_u64(), v["unique_visitors"].as_u64());

    // Today is never rolled; with link_clicks out of the way it is still there, in full.
    ch.execute("RENAME TABLE link_clicks TO link_clicks_away")
        .await
        .unwrap();
    let link = f.get(&f.link(&format!("summary?{today}"))).await;
    let account = f.get(&format!("/v1/analytics/summary?{today}")).await;
    let countries = f
        .get(&format!("/v1/analytics/breakdown/country?{today}"))
        .await;
    ch.execute("RENAME TABLE link_clicks_away TO link_clicks")
        .await
        .unwrap();
    assert_eq!(counts(&link), (Some(2), Some(1)));
    assert_eq!(counts(&account), (Some(3), Some(1)));
    assert_eq!(values(&countries), owned(&[("DE", 3, 1, 0)]));

    // The pass rolls the old day and drops it (and the fixture's days) from both copies (the
    // first one is still filled for the previous release); the old day still answers, from its
    // rollup.
    let recent_rows = |table: &'static str, day: String| {
        let ch = ch.clone();
        async move {
            let rows: Vec<Value> = ch
                .query(&format!(
                    "SELECT toString(count()) AS n FROM {table} WHERE toDate(clicked_at) = '{day}'"
                ))
                .await
                .unwrap();
            rows[0]["n"].as_str().unwrap().to_owned()
        }
    };
    const COPIES: [&str; 2] = ["link_clicks_recent_v2", "link_clicks_recent"];
    for table in COPIES {
        assert_eq!(recent_rows(table, day(5).to_string()).await, "1", "{table}");
    }
    rollup::roll_settled_days(&ch, now).await.unwrap();
    for table in COPIES {
        assert_eq!(recent_rows(table, day(5).to_string()).await, "0", "{table}");
        assert_eq!(recent_rows(table, day(0).to_string()).await, "3", "{table}");
    }
    let link = f.get(&f.link(&format!("summary?{old}"))).await;
    assert_eq!(counts(&link), (Some(1), Some(1)));

    // A later release drops the first copy; the pass goes on with the one left.
    ch.execute("DROP TABLE link_clicks_recent_mv")
        .await
        .unwrap();
    ch.execute("DROP TABLE link_clicks_recent").await.unwrap();
    let mut body = serde_json::to_vec(&events[3]).unwrap();
    body.push(b'\n');
    ch.insert_json_rows("link_clicks", &[], body).await.unwrap();
    assert_eq!(recent_rows(COPIES[0], day(5).to_string()).await, "1");
    rollup::roll_settled_days(&ch, now).await.unwrap();
    assert_eq!(recent_rows(COPIES[0], day(5).to_string()).await, "0");
}

#[tokio::test(flavor = "multi_thread")]
async fn far_off_dates_are_refused_in_every_date_parameter() {
    let f = fixture().await;
    let late = "%2B262142-12-31T00:00:00Z";
    let early = "-262143-01-01T00:00:00Z";
    let refused = |name: &str| {
        error(
            "validation_failed",
            &format!("{name} must be from 1970-01-01T00:00:00Z and before 2100-01-01T00:00:00Z"),
        )
    };
    let mut cases = Vec::new();
    for endpoint in ["summary", "timeseries", "breakdown/country", "clicks"] {
        for base in [f.link(endpoint), format!("/v1/analytics/{endpoint}")] {
            cases.push((format!("{base}?to={late}"), "to"));
            cases.push((format!("{base}?from={early}"), "from"));
            cases.push((format!("{base}?from={late}&to={late}"), "to"));
        }
    }
    cases.push((format!("/v1/links?created_after={late}"), "created_after"));
    cases.push((
        format!("/v1/links?created_before={early}"),
        "created_before",
    ));
    for (path, name) in cases {
        let (status, body) = f.app.call(Method::GET, &path, &f.key, None).await;
        assert_eq!(
            (status, body),
            (StatusCode::UNPROCESSABLE_ENTITY, refused(name)),
            "{path}"
        );
    }
    let (status, body) = f
        .app
        .call(
            Method::POST,
            "/v1/links",
            &f.key,
            Some(json!({"destination": "https://example.com/", "expires_at": "+262142-12-31T00:00:00Z"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::UNPROCESSABLE_ENTITY, refused("expires_at"))
    );
}

/// The dashboard's parts, each compared with its own endpoint's answer over the same parameters.
async fn assert_dashboard_matches_endpoints(f: &Fixture, base: &str, params: &str, what: &str) {
    let dashboard = f
        .get(&format!("{base}/dashboard?{params}&limit=2&clicks_limit=3"))
        .await;
    assert_eq!(
        dashboard["summary"],
        f.get(&format!(
            "{base}/summary?{}",
            params.replace("&interval=hour", "")
        ))
        .await,
        "summary {what}"
    );
    assert_eq!(
        dashboard["timeseries"],
        f.get(&format!("{base}/timeseries?{params}")).await,
        "timeseries {what}"
    );
    let breakdowns = dashboard["breakdowns"].as_array().unwrap();
    let dimensions: Vec<&str> = breakdowns
        .iter()
        .map(|b| b["dimension"].as_str().unwrap())
        .collect();
    assert_eq!(
        dimensions,
        [
            "country",
            "device",
            "browser",
            "os",
            "referrer",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "qr"
        ]
    );
    let single = params.replace("&interval=hour", "");
    for (breakdown, dimension) in breakdowns.iter().zip(dimensions) {
        assert_eq!(
            breakdown,
            &f.get(&format!("{base}/breakdown/{dimension}?{single}&limit=2"))
                .await,
            "{dimension} {what}"
        );
    }
    assert_eq!(
        dashboard["clicks"],
        f.get(&format!("{base}/clicks?{single}&limit=3")).await,
        "clicks {what}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_answers_what_each_endpoint_answers() {
    let f = roomy_fixture().await;
    let link = format!("/v1/links/{}/analytics", f.l1);
    for mode in MODES {
        f.enter(mode).await;
        for base in [link.as_str(), "/v1/analytics"] {
            for params in [
                RANGE.to_owned(),
                format!("{RANGE}&include_bots=true&interval=hour"),
                "from=2026-11-02T10:15:00Z&to=2026-11-05T00:00:00Z&tz=America/New_York".into(),
            ] {
                assert_dashboard_matches_endpoints(
                    &f,
                    base,
                    &params,
                    &format!("{base} {params} {mode}"),
                )
                .await;
            }
        }
    }
    // The first page's cursor pages on through the clicks endpoint.
    let dashboard = f
        .get(&format!("{link}/dashboard?{RANGE}&clicks_limit=2"))
        .await;
    let cursor = dashboard["clicks"]["next_cursor"].as_str().unwrap();
    let next = f
        .get(&format!("{link}/clicks?{RANGE}&limit=2&cursor={cursor}"))
        .await;
    assert_eq!(next["data"][0]["click_id"], "c3");

    let (status, body) = f
        .app
        .call(
            Method::GET,
            &format!("{link}/dashboard?clicks_limit=0"),
            &f.key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body, error("validation_failed", "limit must be 1 to 100"));
    let (status, _) = f
        .app
        .call(
            Method::GET,
            &format!("{link}/dashboard"),
            &f.other_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn qr_counts(breakdown: &Value) -> Vec<(String, u64, u64, u64)> {
    assert_eq!(breakdown["dimension"], "qr");
    values(breakdown)
}

#[tokio::test(flavor = "multi_thread")]
async fn qr_and_link_clicks_are_counted_exactly() {
    let f = roomy_fixture().await;
    let ch = f.app.db.clickhouse();
    let l2 = LinkOf::new(&f.get(&format!("/v1/links/{}", f.l2)).await, f.user_id);
    // L2 also has c6 (a link click by v1 on the 2nd): scans by v1 and v5, one by a bot.
    let mut scans = Vec::new();
    for (id, at, visitor, bot) in [
        ("q1", "2026-11-02T13:00:00Z", "v1", 0),
        ("q2", "2026-11-02T14:00:00Z", "v5", 0),
        ("q3", "2026-11-03T09:00:00Z", "w5", 1),
    ] {
        let mut scan = click(&l2, id, at, visitor);
        scan.is_qr = 1;
        scan.is_bot = bot;
        scans.push(scan);
    }
    let mut body = Vec::new();
    for event in &scans {
        serde_json::to_writer(&mut body, event).unwrap();
        body.push(b'\n');
    }
    ch.insert_json_rows("link_clicks", &[], body).await.unwrap();
    let l2_qr = format!("/v1/links/{}/analytics/breakdown/qr?{RANGE}", f.l2);
    let account_qr = format!("/v1/analytics/breakdown/qr?{RANGE}&include_bots=true");
    // The account's link clicks: c1, c2, c6 (v1, v2) | c3, c9, c4 (bot) (w1, w3) | c5 (x4).
    let l2_want = owned(&[("qr", 2, 2, 1), ("link", 1, 1, 0)]);
    let account_want = owned(&[("link", 7, 5, 1), ("qr", 3, 3, 1)]);
    for mode in MODES {
        f.enter(mode).await;
        assert_eq!(qr_counts(&f.get(&l2_qr).await), l2_want, "{mode}");
        assert_eq!(qr_counts(&f.get(&account_qr).await), account_want, "{mode}");
    }

    // Days rolled before the dimension existed have no `qr` rows: migration 0007 adds them, and
    // the answers stay exact.
    ch.execute("ALTER TABLE link_clicks_rollup_values DELETE WHERE dimension = 'qr'")
        .await
        .unwrap();
    testkit::eventually("the qr rows deleted", || async {
        let rows: Vec<Value> = ch
            .query("SELECT toString(count()) AS n FROM link_clicks_rollup_values WHERE dimension = 'qr'")
            .await
            .unwrap();
        rows[0]["n"] == "0"
    })
    .await;
    assert_eq!(qr_counts(&f.get(&l2_qr).await), []);
    testkit::rerun_clickhouse_migration(&ch, "0007_rollup_qr").await;
    assert_eq!(qr_counts(&f.get(&l2_qr).await), l2_want);
    assert_eq!(qr_counts(&f.get(&account_qr).await), account_want);

    // Today, through the redirect: a scan (`?qr=1`) and a plain visit, read from the raw data.
    for path in [format!("/{}?qr=1", l2.slug), format!("/{}", l2.slug)] {
        let response = f
            .app
            .http
            .get(f.app.url(&path))
            .header(
                reqwest::header::USER_AGENT,
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            )
            .send()
            .await
            .unwrap();
        assert!(response.status().is_redirection(), "{path}");
    }
    let now = chrono::Utc::now();
    let today = format!(
        "/v1/links/{}/analytics/dashboard?from={}&to={}",
        f.l2,
        now.format("%Y-%m-%dT00:00:00Z"),
        (now + chrono::Duration::days(1)).format("%Y-%m-%dT00:00:00Z")
    );
    testkit::eventually("today's scan and visit counted", || async {
        let dashboard = f.get(&today).await;
        let qr = dashboard["breakdowns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["dimension"] == "qr")
            .unwrap()
            .clone();
        values(&qr) == owned(&[("link", 1, 1, 0), ("qr", 1, 1, 0)])
    })
    .await;
}
