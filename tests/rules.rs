//! End to end: targeting rules through the built wasm worker in workerd. Rules made through the
//! public API pick each visitor's destination at the edge (User-Agent, country, language), the
//! click in ClickHouse names the rule, and an edit of the rules shows at the edge within the
//! link cache bound.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::Stack;

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

/// Calls the public API of the stack's origin as a fresh user; answers the JSON body.
struct Api {
    origin: String,
    key: String,
}

impl Api {
    async fn new(stack: &Stack) -> Self {
        let (_, key) = smo1_origin::api_keys::bootstrap_user(
            &stack.state.db,
            "rules@example.com",
            None,
            smo1_origin::users::SubscriptionTier::Business,
        )
        .await
        .expect("bootstrap")
        .expect("new user");
        Self {
            origin: stack.origin.as_ref().expect("origin").url(),
            key,
        }
    }

    async fn call(&self, stack: &Stack, method: Method, path: &str, body: Value) -> Value {
        let response = stack
            .http
            .request(method, format!("{}/v1{path}", self.origin))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .expect("api request");
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert!(status.is_success(), "{status}: {body}");
        body
    }
}

/// Where the worker sends a visitor with these headers.
async fn visit(stack: &Stack, path: &str, headers: &[(&str, &str)]) -> String {
    let mut request = stack.http.get(format!("{}{path}", stack.worker_url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request to worker");
    assert_eq!(response.status(), StatusCode::FOUND, "{path}");
    response.headers()["location"]
        .to_str()
        .expect("ascii location")
        .to_owned()
}

fn rule_ids(link: &Value) -> Vec<String> {
    link["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|rule| rule["id"].as_str().expect("rule id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn visitors_get_their_rule_destination_at_the_edge_and_clicks_name_the_rule() {
    let stack = Stack::start().await;
    let api = Api::new(&stack).await;
    let link = api
        .call(
            &stack,
            Method::POST,
            "/links",
            json!({
                "custom_slug": "get-app",
                "destination": "https://example.com/app",
                "utm": {"medium": "edge"},
                "rules": [
                    {"destination": "https://apps.apple.com/app/id1", "os": ["ios"]},
                    {"destination": "https://example.de/app", "countries": ["DE"]},
                    {"destination": "https://example.fr/app", "languages": ["fr"]},
                ]
            }),
        )
        .await;
    let ids = rule_ids(&link);

    assert_eq!(
        visit(
            &stack,
            "/get-app",
            &[("user-agent", IPHONE), ("cf-ipcountry", "DE")]
        )
        .await,
        "https://apps.apple.com/app/id1?utm_medium=edge",
        "the first rule that holds wins"
    );
    assert_eq!(
        visit(
            &stack,
            "/get-app?qr=1",
            &[("user-agent", FIREFOX), ("cf-ipcountry", "DE")]
        )
        .await,
        "https://example.de/app?utm_medium=edge"
    );
    let french = [
        ("user-agent", FIREFOX),
        ("accept-language", "fr-CH, fr;q=0.9, en;q=0.8"),
    ];
    assert_eq!(
        visit(&stack, "/get-app", &french).await,
        "https://example.fr/app?utm_medium=edge"
    );
    assert_eq!(
        visit(
            &stack,
            "/get-app",
            &[("user-agent", FIREFOX), ("cf-ipcountry", "US")]
        )
        .await,
        "https://example.com/app?utm_medium=edge"
    );

    #[derive(serde::Deserialize)]
    struct Row {
        destination: String,
        rule_id: String,
        is_qr: u8,
        os: String,
    }
    let query = "SELECT destination, rule_id, is_qr, os FROM link_clicks_buffer";
    stack
        .eventually("4 clicks in ClickHouse", || async {
            stack.clicks_in_clickhouse().await >= 4
        })
        .await;
    let rows: Vec<Row> = stack.clickhouse().query(query).await.expect("rows");
    assert_eq!(rows.len(), 4);
    let to = |host: &str| {
        rows.iter()
            .find(|row| row.destination.starts_with(host))
            .unwrap_or_else(|| panic!("a click to {host}"))
    };
    let ios = to("https://apps.apple.com/");
    assert_eq!(
        (ios.rule_id.as_str(), ios.os.as_str()),
        (ids[0].as_str(), "iPhone")
    );
    let german = to("https://example.de/");
    assert_eq!(
        (german.rule_id.as_str(), german.is_qr),
        (ids[1].as_str(), 1)
    );
    assert_eq!(to("https://example.fr/").rule_id, ids[2]);
    assert_eq!(
        to("https://example.com/").rule_id,
        "",
        "the link's own destination"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rule_edits_show_at_the_edge_within_the_link_cache_bound() {
    let stack = Stack::start().await;
    let api = Api::new(&stack).await;
    let link = api
        .call(
            &stack,
            Method::POST,
            "/links",
            json!({
                "custom_slug": "moving",
                "destination": "https://example.com/",
                "rules": [{"destination": "https://example.de/v1", "countries": ["DE"]}]
            }),
        )
        .await;
    let id = link["id"].as_str().expect("link id");
    let ids = rule_ids(&link);
    let german = [("user-agent", FIREFOX), ("cf-ipcountry", "DE")];
    assert_eq!(
        visit(&stack, "/moving", &german).await,
        "https://example.de/v1"
    );

    let edited = api
        .call(
            &stack,
            Method::PATCH,
            &format!("/links/{id}"),
            json!({"rules": [
                {"id": ids[0], "destination": "https://example.de/v2", "countries": ["DE", "AT"]}
            ]}),
        )
        .await;
    assert_eq!(rule_ids(&edited), ids, "the rule keeps its id");
    let took = stack
        .within_link_cache_bound("a rule edit", || async {
            visit(&stack, "/moving", &german).await == "https://example.de/v2"
        })
        .await;
    println!("rule edit visible at the edge after {took:?}");

    api.call(
        &stack,
        Method::PATCH,
        &format!("/links/{id}"),
        json!({"rules": []}),
    )
    .await;
    stack
        .within_link_cache_bound("removing the rules", || async {
            visit(&stack, "/moving", &german).await == "https://example.com/"
        })
        .await;
}
