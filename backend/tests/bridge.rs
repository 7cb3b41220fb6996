//! The local Upstash REST bridge, over the real Redis: protocol shapes, auth, errors, encoding,
//! and Upstash's own JS client working against it unchanged.

use reqwest::StatusCode;
use serde_json::{json, Value};
use smo1_testkit::{self as testkit, RunningServer, TEST_UPSTASH_TOKEN};

struct Bridge {
    server: RunningServer,
    http: reqwest::Client,
    prefix: String,
}

impl Bridge {
    async fn start() -> Self {
        Self {
            server: testkit::start_bridge().await,
            http: reqwest::Client::new(),
            prefix: testkit::redis_prefix(),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.server.url()))
            .bearer_auth(TEST_UPSTASH_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("request");
        (response.status(), response.json().await.expect("json body"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn single_commands_answer_result() {
    let bridge = Bridge::start().await;
    let key = bridge.key("k");
    assert_eq!(
        bridge.post("/", json!(["SET", key, "v", "EX", 60])).await,
        (StatusCode::OK, json!({"result": "OK"}))
    );
    assert_eq!(
        bridge.post("/", json!(["GET", key])).await,
        (StatusCode::OK, json!({"result": "v"}))
    );
    assert_eq!(
        bridge.post("/", json!(["GET", bridge.key("none")])).await,
        (StatusCode::OK, json!({"result": null}))
    );
    assert_eq!(
        bridge
            .post("/", json!(["INCRBY", bridge.key("n"), 3]))
            .await,
        (StatusCode::OK, json!({"result": 3}))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn command_errors_are_400_with_the_redis_message() {
    let bridge = Bridge::start().await;
    let (status, body) = bridge.post("/", json!(["GET"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("wrong number of arguments"),
        "{body}"
    );
    let (status, body) = bridge.post("/", json!({"not": "a command"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "ERR a command must be a non-empty JSON array"})
    );
    let (status, body) = bridge.post("/", json!(["SET", "k", {"nested": 1}])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .starts_with("ERR command arguments"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_answers_each_command() {
    let bridge = Bridge::start().await;
    let (status, body) = bridge
        .post(
            "/pipeline",
            json!([
                ["SET", bridge.key("a"), "1"],
                ["INCR", bridge.key("a")],
                ["LPUSH", bridge.key("a"), "x"]
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0], json!({"result": "OK"}));
    assert_eq!(body[1], json!({"result": 2}));
    assert!(
        body[2]["error"].as_str().unwrap().contains("WRONGTYPE"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_exec_runs_a_transaction() {
    let bridge = Bridge::start().await;
    let (status, body) = bridge
        .post(
            "/multi-exec",
            json!([
                ["SET", bridge.key("t"), "1"],
                ["INCR", bridge.key("t")],
                ["GET", bridge.key("t")]
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([{"result": "OK"}, {"result": 2}, {"result": "2"}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_in_the_path_work() {
    let bridge = Bridge::start().await;
    let key = bridge.key("path/with slash");
    let encoded = key.replace('/', "%2F").replace(' ', "%20");
    let response = bridge
        .http
        .post(format!("{}/set/{encoded}", bridge.server.url()))
        .bearer_auth(TEST_UPSTASH_TOKEN)
        .body("body value")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"result": "OK"})
    );
    let response = bridge
        .http
        .get(format!(
            "{}/get/{encoded}?_token={TEST_UPSTASH_TOKEN}",
            bridge.server.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"result": "body value"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_or_missing_tokens_are_401_everywhere() {
    let bridge = Bridge::start().await;
    for path in ["/", "/pipeline", "/multi-exec", "/get/x"] {
        for token in [None, Some("wrong")] {
            let mut request = bridge
                .http
                .post(format!("{}{path}", bridge.server.url()))
                .json(&json!(["GET", "x"]));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(
                response.json::<Value>().await.unwrap(),
                json!({"error": "Unauthorized"})
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn base64_encoding_encodes_every_string_but_ok() {
    let bridge = Bridge::start().await;
    let key = bridge.key("b");
    let send = |body: Value| {
        bridge
            .http
            .post(format!("{}/pipeline", bridge.server.url()))
            .bearer_auth(TEST_UPSTASH_TOKEN)
            .header("Upstash-Encoding", "base64")
            .json(&body)
            .send()
    };
    let body: Value = send(json!([
        ["SET", key, "hi"],
        ["GET", key],
        ["PING"],
        ["EXISTS", key]
    ]))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        body,
        json!([{"result": "OK"}, {"result": "aGk="}, {"result": "UE9ORw=="}, {"result": 1}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upstash_official_client_works_unchanged() {
    let bridge = Bridge::start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/upstash_client.mjs");
    let output = tokio::process::Command::new("node")
        .arg(script)
        .arg(bridge.server.url())
        .arg(TEST_UPSTASH_TOKEN)
        .arg(&bridge.prefix)
        .output()
        .await
        .expect("run node (installed by scripts/test)");
    assert!(
        output.status.success(),
        "@upstash/redis against the bridge failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
