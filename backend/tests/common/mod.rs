//! `TestApp`: the origin served in-process over its own database and Redis key prefix.

#![allow(dead_code)] // each test binary uses a different part of this module

use reqwest::Method;
use serde_json::Value;
use smo1_origin::config::OriginConfig;
use smo1_origin::links::service;
use smo1_origin::state::AppState;
use smo1_origin::users::repo;
use smo1_origin::users::SubscriptionTier;
use smo1_testkit::{self as testkit, RunningServer, TestDb};
use uuid::Uuid;

/// A user created the way an operator does (`admin create-user`), with its first, all-scopes key.
pub struct ApiUser {
    pub id: Uuid,
    pub key: String,
}

pub struct TestApp {
    pub state: AppState,
    pub server: RunningServer,
    pub http: reqwest::Client,
    pub db: TestDb,
    pub prefix: String,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts the origin after `adjust` has changed its config (e.g. to break a dependency).
    pub async fn start_with(adjust: impl FnOnce(&mut OriginConfig)) -> Self {
        let db = TestDb::new().await;
        let prefix = testkit::redis_prefix();
        let mut config = testkit::origin_config(&db, &prefix);
        adjust(&mut config);
        let (state, server) = testkit::start_origin(config).await;
        Self {
            state,
            server,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            db,
            prefix,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    /// `path` as an operator: with the `METRICS_TOKEN` bearer.
    pub async fn operator_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(testkit::TEST_METRICS_TOKEN)
            .send()
            .await
            .expect("request")
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.operator_get("/metrics")
            .await
            .text()
            .await
            .expect("metrics")
    }

    pub async fn internal_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(testkit::TEST_INTERNAL_SECRET)
            .send()
            .await
            .expect("request")
    }

    pub async fn create_link(&self, input: service::CreateLink) -> smo1_origin::links::Link {
        let user = repo::upsert_user(&self.state.db, "owner@example.com")
            .await
            .expect("user");
        service::create(&self.state, user, input)
            .await
            .expect("create link")
    }
}

impl TestApp {
    pub async fn api_user(&self, email: &str) -> ApiUser {
        self.api_user_with_tier(email, SubscriptionTier::Free).await
    }

    pub async fn api_user_with_tier(&self, email: &str, tier: SubscriptionTier) -> ApiUser {
        let (user, key) = smo1_origin::api_keys::bootstrap_user(&self.state.db, email, None, tier)
            .await
            .expect("bootstrap user")
            .expect("email is new");
        ApiUser { id: user.id, key }
    }

    /// A request to the API with `key` as the bearer token.
    pub fn api(&self, method: Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(key)
    }

    /// Sends `body` as JSON; answers the status and the JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut request = self.api(method, path, key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, body)
    }

    /// Creates a link through the API and answers its JSON.
    pub async fn api_link(&self, key: &str, body: Value) -> Value {
        let (status, link) = self.call(Method::POST, "/v1/links", key, Some(body)).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{link}");
        link
    }

    /// Whether `link:{slug}` is in Redis.
    pub async fn cached(&self, slug: &str) -> bool {
        self.state
            .redis
            .get_link(None, slug)
            .await
            .expect("redis")
            .is_some()
    }
}

/// Where `GET url` redirects to; `None` unless it answers 302.
pub async fn redirect_target(http: &reqwest::Client, url: &str) -> Option<String> {
    let response = http.get(url).send().await.expect("request");
    (response.status() == reqwest::StatusCode::FOUND).then(|| {
        response.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned()
    })
}

pub fn custom(slug: &str, destination: &str) -> service::CreateLink {
    service::CreateLink {
        custom_slug: Some(slug.into()),
        destination: destination.into(),
        ..Default::default()
    }
}

/// An address nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
