//! The origin over real PostgreSQL, Redis and ClickHouse: health, the edge's internal lookup, its
//! own redirect path, and link changes invalidating the cache.

mod common;

use common::{closed_port, custom, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use smo1_core::link::{CacheEntry, CachedLink, Utm};
use smo1_origin::config::Secret;
use smo1_origin::links::service;

#[tokio::test(flavor = "multi_thread")]
async fn healthz_is_always_ok() {
    let app =
        TestApp::start_with(|c| c.data.redis_url = format!("redis://127.0.0.1:{}", closed_port()))
            .await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_reports_every_dependency_to_operators() {
    let app = TestApp::start().await;
    let response = app.operator_get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({
            "status": "ready",
            "postgres": {"status": "up"},
            "redis": {"status": "up"},
            "clickhouse": {"status": "up"},
        })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_names_the_dependencies_that_are_down() {
    let app = TestApp::start_with(|c| {
        c.data.redis_url = format!("redis://127.0.0.1:{}", closed_port());
        c.data.clickhouse.clickhouse_url = format!("http://127.0.0.1:{}", closed_port());
    })
    .await;
    let response = app.operator_get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["postgres"], json!({"status": "up"}));
    assert_eq!(body["redis"]["status"], "down");
    assert_eq!(body["clickhouse"]["status"], "down");
    assert!(body["clickhouse"]["error"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_public_sees_only_whether_the_origin_is_ready() {
    let app = TestApp::start_with(|c| {
        c.data.clickhouse.clickhouse_url = format!("http://127.0.0.1:{}", closed_port());
    })
    .await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "degraded"}),
        "no dependency, host or error"
    );
    for token in [None, Some("wrong")] {
        let mut request = app.http.get(app.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    // Without a METRICS_TOKEN there is no /metrics at all.
    let app = TestApp::start_with(|c| c.metrics_token = Secret::new("")).await;
    assert_eq!(
        app.operator_get("/metrics").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.operator_get("/readyz")
            .await
            .json::<Value>()
            .await
            .unwrap(),
        json!({"status": "ready"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_lookup_requires_the_shared_secret() {
    let app = TestApp::start().await;
    for token in [None, Some("wrong")] {
        let mut request = app.http.get(app.url("/internal/links/abc"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"error": {"code": "unauthorized", "message": "missing or invalid credentials"}})
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_lookup_answers_and_caches_the_entry() {
    let app = TestApp::start().await;
    let mut input = custom("lookup", "https://example.com/x");
    input.utm = Utm {
        source: Some("s".into()),
        ..Utm::default()
    };
    let link = app.create_link(input).await;

    let response = app
        .internal_get("/internal/domains/default/links/lookup")
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let entry = CacheEntry::from_json(&response.text().await.unwrap()).expect("entry");
    let CachedLink::Found(record) = &entry.link else {
        panic!("expected found, got {entry:?}");
    };
    assert_eq!(record.link_id, link.id.to_string());
    assert_eq!(record.slug, "lookup");
    assert_eq!(record.utm.source.as_deref(), Some("s"));
    assert_eq!(
        app.state.redis.get_link(None, "lookup").await.unwrap(),
        Some(entry.clone())
    );
    // The uid answers too, and is cached under its own key.
    let by_uid = app
        .internal_get(&format!("/internal/domains/default/links/{}", link.uid))
        .await;
    assert_eq!(by_uid.status(), StatusCode::OK);
    assert!(app
        .state
        .redis
        .get_link(None, &link.uid)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_lookup_of_an_unknown_slug_caches_a_negative_entry() {
    let app = TestApp::start().await;
    let response = app
        .internal_get("/internal/domains/default/links/unknown")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"v":2,"kind":"missing"}"#
    );
    assert_eq!(
        app.state.redis.get_link(None, "unknown").await.unwrap(),
        Some(CacheEntry::missing())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_lookup_refuses_malformed_slugs() {
    let app = TestApp::start().await;
    for path in ["/internal/domains/default/links/a.b", "/internal/links/a.b"] {
        let response = app.internal_get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"error": {"code": "not_found", "message": "link not found"}})
        );
    }
    let response = app
        .internal_get("/internal/domains/Not_A_Host/links/abc")
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": {"code": "not_found", "message": "domain not found"}})
    );
}

/// Workers of before custom domains keep calling `/internal/links/{slug}` during a rollout: they
/// get the default domain's entry in the version they read, under the key they read.
#[tokio::test(flavor = "multi_thread")]
async fn the_legacy_lookup_answers_old_workers_in_their_version_and_key() {
    let app = TestApp::start().await;
    let link = app
        .create_link(custom("old-worker", "https://example.com/old"))
        .await;

    let response = app.internal_get("/internal/links/old-worker").await;

    assert_eq!(response.status(), StatusCode::OK);
    let answered: Value = response.json().await.unwrap();
    assert_eq!(answered["v"], json!(1));
    assert_eq!(answered["kind"], json!("found"));
    assert_eq!(answered["link_id"], json!(link.id.to_string()));
    let legacy_key = smo1_core::link::legacy_cache_key(&app.prefix, "old-worker");
    let mut redis = app.state.redis.conn().await.unwrap();
    let stored: String = redis::AsyncCommands::get(&mut redis, &legacy_key)
        .await
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&stored).unwrap(), answered);

    // An edit deletes the legacy key too, so old workers see it as soon as new ones do.
    smo1_origin::links::service::update_destination(&app.state, link.id, "https://example.com/new")
        .await
        .unwrap();
    let gone: Option<String> = redis::AsyncCommands::get(&mut redis, &legacy_key)
        .await
        .unwrap();
    assert_eq!(gone, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_redirects_with_the_same_semantics_as_the_edge() {
    let app = TestApp::start().await;
    let mut input = custom("same", "https://example.com/p?a=1");
    input.utm = Utm {
        campaign: Some("c".into()),
        ..Utm::default()
    };
    input.redirect_type = smo1_core::link::RedirectType::Temporary;
    app.create_link(input).await;

    let response = app.get("/same?ref=x").await;
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        "https://example.com/p?a=1&utm_campaign=c&ref=x"
    );
    assert_eq!(response.headers()["cache-control"], "private, max-age=0");

    let head = app.http.head(app.url("/same")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::TEMPORARY_REDIRECT);
    assert!(head.bytes().await.unwrap().is_empty());

    assert_eq!(app.get("/nope").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/a.b").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_redirects_from_postgres_while_redis_is_down() {
    let app =
        TestApp::start_with(|c| c.data.redis_url = format!("redis://127.0.0.1:{}", closed_port()))
            .await;
    let user = smo1_origin::users::repo::upsert_user(&app.state.db, "a@example.com")
        .await
        .unwrap();
    // Creating needs the cache for invalidation; insert the row directly instead.
    sqlx::query(
        "INSERT INTO links (user_id, uid, custom_slug, destination) VALUES ($1, 'Abc1234', 'nocache', 'https://example.com/')",
    )
    .bind(user)
    .execute(&app.state.db)
    .await
    .unwrap();

    let response = app.get("/nocache").await;

    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()["location"], "https://example.com/");
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_fail_loudly_when_the_cache_cannot_be_invalidated() {
    let app =
        TestApp::start_with(|c| c.data.redis_url = format!("redis://127.0.0.1:{}", closed_port()))
            .await;
    let user = smo1_origin::users::repo::upsert_user(&app.state.db, "a@example.com")
        .await
        .unwrap();
    let result = service::create(&app.state, user, custom("stale", "https://example.com/")).await;
    assert!(matches!(
        result,
        Err(smo1_origin::error::AppError::Redis(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_destinations_and_slugs_are_refused() {
    let app = TestApp::start().await;
    let user = smo1_origin::users::repo::upsert_user(&app.state.db, "a@example.com")
        .await
        .unwrap();
    for (slug, destination, message) in [
        (
            "fine",
            "javascript:alert(1)",
            "destination must use http or https",
        ),
        (
            "fine",
            "https://sho.rt/loop",
            "destination must not point at this short domain",
        ),
        (
            "fine",
            "https://u:p@example.com/",
            "destination must not contain a user name or password",
        ),
        ("api", "https://example.com/", "slug is reserved"),
        (
            "a/b",
            "https://example.com/",
            "slug may contain only letters, digits, '-' and '_'",
        ),
    ] {
        let error = service::create(&app.state, user, custom(slug, destination))
            .await
            .expect_err(destination);
        assert_eq!(error.code(), "validation_failed");
        assert_eq!(error.to_string(), message);
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM links")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn test_databases_are_isolated() {
    let a = TestApp::start().await;
    let b = TestApp::start().await;
    a.create_link(custom("isolated", "https://example.com/"))
        .await;
    assert_eq!(b.get("/isolated").await.status(), StatusCode::NOT_FOUND);
    assert_ne!(a.db.name, b.db.name);
    assert_ne!(a.prefix, b.prefix);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_lookups_and_cache_failures() {
    let app =
        TestApp::start_with(|c| c.data.redis_url = format!("redis://127.0.0.1:{}", closed_port()))
            .await;
    app.internal_get("/internal/domains/default/links/unknown")
        .await;

    let text = app.metrics().await;
    assert!(
        text.contains(r#"smo1_link_lookups_total{outcome="missing"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("smo1_link_cache_write_failures_total 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_endpoints_answer_in_the_shape_of_their_surface() {
    let app = TestApp::start().await;
    let response = app.get("/v1/nothing/here").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": {"code": "not_found", "message": "endpoint not found"}})
    );
    let response = app.http.put(app.url("/v1/me")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": {"code": "method_not_allowed", "message": "this method is not allowed on this endpoint"}})
    );
    let response = app.get("/a/b").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Link not found"));
    let response = app.http.delete(app.url("/some-slug")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
}
