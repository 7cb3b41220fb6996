//! Targeting rules through the links API and the origin's own redirects: stored, validated with
//! exact errors, carried in the cache record, evaluated per visitor, named in the click, and
//! broken down by in analytics.

mod common;

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use smo1_core::link::CachedLink;

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn error(message: &str) -> Value {
    json!({"error": {"code": "validation_failed", "message": message}})
}

fn targeted(slug: &str) -> Value {
    json!({
        "custom_slug": slug,
        "destination": "https://example.com/home",
        "utm": {"source": "campaign"},
        "rules": [
            {"destination": "https://apps.apple.com/app/id1", "os": ["ios"]},
            {"destination": "https://example.de/", "countries": ["de", "AT"], "languages": ["DE"]},
            {"destination": "https://example.com/sale", "starts_at": "2026-01-01T00:00:00Z",
             "ends_at": "2099-01-01T00:00:00Z", "devices": ["desktop", "desktop"]},
        ]
    })
}

/// Where the origin sends a visitor with these headers.
async fn visit(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> String {
    let mut request = app.http.get(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), StatusCode::FOUND, "{path}");
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_are_stored_normalised_with_ids_and_shown_in_order() {
    let app = TestApp::start().await;
    let user = app.api_user("rules@example.com").await;
    let link = app.api_link(&user.key, targeted("shop")).await;
    let rules = link["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 3);
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| id.len() == 7), "{ids:?}");
    assert_eq!(
        rules[1],
        json!({"id": ids[1], "destination": "https://example.de/", "countries": ["DE", "AT"],
               "devices": [], "os": [], "languages": ["de"], "starts_at": null, "ends_at": null})
    );
    assert_eq!(rules[2]["devices"], json!(["desktop"]));
    assert_eq!(rules[2]["starts_at"], "2026-01-01T00:00:00Z");
    let id = link["id"].as_str().unwrap();
    let (status, read) = app
        .call(Method::GET, &format!("/v1/links/{id}"), &user.key, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["rules"], link["rules"]);

    // An edit keeps the ids of the rules it names, gives new rules new ids, drops the rest.
    let (status, edited) = app
        .call(
            Method::PATCH,
            &format!("/v1/links/{id}"),
            &user.key,
            Some(json!({"rules": [
                {"destination": "https://example.fr/", "countries": ["FR"]},
                {"id": ids[0], "destination": "https://apps.apple.com/app/id2", "os": ["ios"]},
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    let kept = edited["rules"].as_array().unwrap();
    assert_eq!(kept[1]["id"], ids[0]);
    assert_eq!(kept[1]["destination"], "https://apps.apple.com/app/id2");
    assert!(!ids.contains(&kept[0]["id"].as_str().unwrap()));
    // Other edits leave the rules alone; `[]` removes them.
    let (_, retitled) = app
        .call(
            Method::PATCH,
            &format!("/v1/links/{id}"),
            &user.key,
            Some(json!({"title": "Shop"})),
        )
        .await;
    assert_eq!(retitled["rules"], edited["rules"]);
    let (_, cleared) = app
        .call(
            Method::PATCH,
            &format!("/v1/links/{id}"),
            &user.key,
            Some(json!({"rules": []})),
        )
        .await;
    assert_eq!(cleared["rules"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_rules_are_refused_with_exact_errors() {
    let app = TestApp::start().await;
    let user = app.api_user("rules@example.com").await;
    let with = |rule: Value| json!({"destination": "https://example.com/", "rules": [rule]});
    let cases = [
        (
            with(json!({"destination": "https://example.de/", "countries": ["XY"]})),
            r#"rules[0].countries: "XY" is not an ISO 3166-1 alpha-2 country code"#,
        ),
        (
            with(json!({"destination": "https://example.de/", "countries": ["Germany"]})),
            r#"rules[0].countries: "Germany" is not an ISO 3166-1 alpha-2 country code"#,
        ),
        (
            with(json!({"destination": "https://example.de/", "languages": ["de-AT"]})),
            r#"rules[0].languages: "de-AT" is not a primary language tag such as "de""#,
        ),
        (
            with(json!({"destination": "https://sho.rt/loop", "os": ["ios"]})),
            "rules[0]: destination must not point at this short domain",
        ),
        (
            with(json!({"destination": "javascript:alert(1)", "os": ["ios"]})),
            "rules[0]: destination must use http or https",
        ),
        (
            with(json!({"destination": "https://example.de/"})),
            "rules[0]: a rule needs at least one condition (countries, devices, os, languages, starts_at or ends_at)",
        ),
        (
            with(json!({"destination": "https://example.de/", "id": "abcdefg", "os": ["ios"]})),
            r#"rules[0].id: "abcdefg" is not one of this link's rules"#,
        ),
        (
            with(json!({"destination": "https://example.de/",
                        "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2029-01-01T00:00:00Z"})),
            "rules[0]: starts_at must be before ends_at",
        ),
        (
            with(json!({"destination": "https://example.de/", "ends_at": "2200-01-01T00:00:00Z"})),
            "rules[0].ends_at must be from 1970-01-01T00:00:00Z and before 2100-01-01T00:00:00Z",
        ),
        (
            json!({"destination": "https://example.com/",
                   "rules": vec![json!({"destination": "https://example.de/", "os": ["ios"]}); 21]}),
            "rules: at most 20 rules",
        ),
        (
            with(json!({"destination": "https://example.de/", "devices": ["phone"]})),
            "Failed to deserialize the JSON body into the target type: rules[0].devices[0]: unknown variant `phone`, expected one of `desktop`, `mobile`, `tablet`, `bot`, `other` at line 1 column 102",
        ),
        (
            with(json!({"destination": "https://example.de/", "os": ["ios", "symbian"]})),
            "Failed to deserialize the JSON body into the target type: rules[0].os[1]: unknown variant `symbian`, expected one of `ios`, `android`, `windows`, `windows_phone`, `macos`, `chromeos`, `linux` at line 1 column 105",
        ),
    ];
    for (body, message) in cases {
        let (status, answer) = app
            .call(Method::POST, "/v1/links", &user.key, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(answer, error(message), "{body}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM links")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_record_carries_the_rules_and_an_edit_invalidates_it() {
    let app = TestApp::start().await;
    let user = app.api_user("rules@example.com").await;
    let link = app.api_link(&user.key, targeted("cached")).await;
    assert_eq!(
        visit(&app, "/cached", &[("user-agent", IPHONE)]).await,
        "https://apps.apple.com/app/id1?utm_source=campaign"
    );
    let entry = app
        .state
        .redis
        .get_link(None, "cached")
        .await
        .unwrap()
        .unwrap();
    let CachedLink::Found(record) = entry.link else {
        panic!("a link");
    };
    let ids: Vec<&str> = link["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let cached: Vec<&str> = record.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(cached, ids);

    let id = link["id"].as_str().unwrap();
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/links/{id}"),
            &user.key,
            Some(json!({"rules": [{"destination": "https://example.com/ios", "os": ["ios"]}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !app.cached("cached").await,
        "the edit invalidated the entry"
    );
    assert_eq!(
        visit(&app, "/cached", &[("user-agent", IPHONE)]).await,
        "https://example.com/ios?utm_source=campaign"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_origin_redirects_by_rule_and_its_clicks_name_the_rule() {
    let app = TestApp::start().await;
    let user = app.api_user("rules@example.com").await;
    let link = app.api_link(&user.key, targeted("origin")).await;
    let rule = |i: usize| link["rules"][i]["id"].as_str().unwrap().to_owned();

    let iphone = visit(&app, "/origin?ref=x", &[("user-agent", IPHONE)]).await;
    assert_eq!(
        iphone,
        "https://apps.apple.com/app/id1?utm_source=campaign&ref=x"
    );
    let german = [
        ("user-agent", WINDOWS),
        ("cf-ipcountry", "AT"),
        ("accept-language", "de-AT,de;q=0.9,en;q=0.5"),
    ];
    assert_eq!(
        visit(&app, "/origin", &german).await,
        "https://example.de/?utm_source=campaign"
    );
    // An Austrian who prefers English is not sent to the German page: the sale rule applies.
    let english = [
        ("user-agent", WINDOWS),
        ("cf-ipcountry", "AT"),
        ("accept-language", "en-GB,de;q=0.8"),
    ];
    assert_eq!(
        visit(&app, "/origin?qr=1", &english).await,
        "https://example.com/sale?utm_source=campaign"
    );
    // No rule holds for an Android phone in France.
    let android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
    assert_eq!(
        visit(
            &app,
            "/origin",
            &[("user-agent", android), ("cf-ipcountry", "FR")]
        )
        .await,
        "https://example.com/home?utm_source=campaign"
    );

    #[derive(serde::Deserialize)]
    struct Row {
        destination: String,
        rule_id: String,
        is_qr: u8,
    }
    let query = "SELECT destination, rule_id, is_qr FROM link_clicks_buffer ORDER BY clicked_at, destination";
    smo1_testkit::eventually("4 clicks in ClickHouse", || async {
        let rows: Vec<Row> = app.db.clickhouse().query(query).await.unwrap();
        rows.len() == 4
    })
    .await;
    let rows: Vec<Row> = app.db.clickhouse().query(query).await.unwrap();
    let by_destination = |prefix: &str| {
        rows.iter()
            .find(|r| r.destination.starts_with(prefix))
            .unwrap_or_else(|| panic!("a click to {prefix}"))
    };
    assert_eq!(by_destination("https://apps.apple.com").rule_id, rule(0));
    assert_eq!(by_destination("https://example.de").rule_id, rule(1));
    let sale = by_destination("https://example.com/sale");
    assert_eq!((sale.rule_id.as_str(), sale.is_qr), (rule(2).as_str(), 1));
    assert_eq!(by_destination("https://example.com/home").rule_id, "");

    // Analytics break the link's clicks down by the rule that sent them (they read link_clicks:
    // the buffer is flushed first).
    app.db
        .clickhouse()
        .execute("OPTIMIZE TABLE link_clicks_buffer")
        .await
        .unwrap();
    let id = link["id"].as_str().unwrap();
    let (status, breakdown) = app
        .call(
            Method::GET,
            &format!("/v1/links/{id}/analytics/breakdown/rule?include_bots=true"),
            &user.key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{breakdown}");
    let mut values: Vec<(String, u64)> = breakdown["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap().to_owned(),
                v["clicks"].as_u64().unwrap(),
            )
        })
        .collect();
    values.sort();
    let mut expected = vec![(String::new(), 1), (rule(0), 1), (rule(1), 1), (rule(2), 1)];
    expected.sort();
    assert_eq!(values, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_protected_link_unlocks_to_the_rule_destination() {
    let app = TestApp::start().await;
    let user = app.api_user("rules@example.com").await;
    let link = app.api_link(&user.key, targeted("locked")).await;
    let id = link["id"].as_str().unwrap();
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/v1/links/{id}/protection"),
            &user.key,
            Some(json!({"type": "pin", "secret": "4821"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let form = app
        .http
        .get(app.url("/locked"))
        .header("user-agent", IPHONE)
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::FORBIDDEN, "the PIN form first");
    let unlocked = app
        .http
        .post(app.url("/locked"))
        .header("user-agent", IPHONE)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("secret=4821")
        .send()
        .await
        .unwrap();
    assert_eq!(unlocked.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        unlocked.headers()["location"],
        "https://apps.apple.com/app/id1?utm_source=campaign"
    );
}
