//! `TestApp`: the origin served in-process over its own database and Redis key prefix.

#![allow(dead_code)] // each test binary uses a different part of this module

use smo1_origin::config::OriginConfig;
use smo1_origin::links::{repo, service};
use smo1_origin::state::AppState;
use smo1_origin::testkit::{self, RunningServer, TestDb};

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
