//! The public `/v1` API over real PostgreSQL and Redis: authentication and scopes, users, API
//! keys, links (and the cache invalidation every change must do), rate limits, error shapes and
//! the OpenAPI document.

mod common;

use common::{closed_port, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use smo1_origin::users::SubscriptionTier;

fn error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

/// Posts `body` with `Transfer-Encoding: chunked` (no announced length) over a raw connection;
/// answers the whole response as text.
async fn chunked_post(app: &TestApp, path: &str, key: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.server.addr)
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.as_bytes().chunks(8192) {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        stream.write_all(chunk).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    // The server may answer and close before reading everything.
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response
}

/// Sends `n` requests at once; answers every response.
async fn parallel(
    n: usize,
    request: impl Fn(usize) -> reqwest::RequestBuilder,
) -> Vec<reqwest::Response> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        set.spawn(request(i).send());
    }
    set.join_all()
        .await
        .into_iter()
        .map(|r| r.expect("request"))
        .collect()
}

// ---- authentication, users ----

#[tokio::test(flavor = "multi_thread")]
async fn me_answers_the_keys_user_and_tier() {
    let app = TestApp::start().await;
    let user = app
        .api_user_with_tier("Ada@Example.com", SubscriptionTier::Pro)
        .await;

    let (status, body) = app.call(Method::GET, "/v1/me", &user.key, None).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], user.id.to_string());
    assert_eq!(body["email"], "Ada@Example.com");
    assert_eq!(body["subscription_tier"], "pro");
    assert_eq!(body["xp"], 0);
    assert_eq!(body["level"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_a_valid_key_are_401() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let tampered = format!("{}x", user.key);
    for token in [
        None,
        Some(""),
        Some("smo1_nonsense"),
        Some(tampered.as_str()),
    ] {
        let mut request = app.http.get(app.url("/v1/me"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            error("unauthorized", "missing or invalid credentials")
        );
    }
    // The internal secret is not an API key.
    let (status, _) = app
        .call(
            Method::GET,
            "/v1/me",
            smo1_testkit::TEST_INTERNAL_SECRET,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_create_user_prints_a_working_key() {
    let app = TestApp::start().await;
    let run = |email: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_smo1-origin"))
            .args([
                "admin",
                "create-user",
                "--email",
                email,
                "--tier",
                "business",
            ])
            .env("DATABASE_URL", &app.db.url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run smo1-origin")
    };

    let output = run("owner@example.com");

    assert!(output.status.success(), "{output:?}");
    let key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("smo1_"), "{key}");
    let (status, me) = app.call(Method::GET, "/v1/me", &key, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], "owner@example.com");
    assert_eq!(me["subscription_tier"], "business");
    let (_, keys) = app.call(Method::GET, "/v1/api-keys", &key, None).await;
    assert_eq!(
        keys["data"][0]["scopes"],
        json!(["links:read", "links:write", "keys:read", "keys:write"])
    );
    // Only the hash is stored.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(stored, smo1_origin::api_keys::secret::hash(&key).to_vec());

    let again = run("OWNER@example.com");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

// ---- API keys ----

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_are_shown_once_listed_without_secret_and_revoked_at_once() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;

    let (status, created) = app
        .call(
            Method::POST,
            "/v1/api-keys",
            &user.key,
            Some(json!({"name": "ci"})),
        )
        .await;

    assert_eq!(status, StatusCode::CREATED);
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["scopes"], json!(["links:read", "links:write"]));
    assert_eq!(created["revoked_at"], Value::Null);
    let (status, _) = app.call(Method::GET, "/v1/links", &key, None).await;
    assert_eq!(status, StatusCode::OK);

    let (_, list) = app.call(Method::GET, "/v1/api-keys", &user.key, None).await;
    let listed = list["data"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], created["id"]);
    assert_eq!(listed[0]["name"], "ci");
    assert!(listed.iter().all(|k| k.get("key").is_none()));
    assert!(!list.to_string().contains(&key));

    let id = created["id"].as_str().unwrap();
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{id}"),
            &user.key,
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, body) = app.call(Method::GET, "/v1/links", &key, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        error("unauthorized", "missing or invalid credentials")
    );
    let (_, list) = app.call(Method::GET, "/v1/api-keys", &user.key, None).await;
    assert!(list["data"][0]["revoked_at"].is_string());
    // Revoking again is a no-op.
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{id}"),
            &user.key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_of_other_users_cannot_be_revoked() {
    let app = TestApp::start().await;
    let alice = app.api_user("alice@example.com").await;
    let bob = app.api_user("bob@example.com").await;
    let (_, keys) = app.call(Method::GET, "/v1/api-keys", &bob.key, None).await;
    let bobs = keys["data"][0]["id"].as_str().unwrap().to_owned();

    for id in [
        bobs.as_str(),
        "00000000-0000-0000-0000-000000000000",
        "nope",
    ] {
        let (status, body) = app
            .call(
                Method::DELETE,
                &format!("/v1/api-keys/{id}"),
                &alice.key,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, error("not_found", "API key not found"));
    }
    let (status, _) = app.call(Method::GET, "/v1/me", &bob.key, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_key_input_is_validated() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let cases = [
        (
            json!({"name": " "}),
            "name must be 1 to 100 characters".to_owned(),
        ),
        (
            json!({"name": "x", "scopes": []}),
            "scopes must not be empty".to_owned(),
        ),
    ];
    for (body, message) in cases {
        let (status, answer) = app
            .call(Method::POST, "/v1/api-keys", &user.key, Some(body))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(answer, error("validation_failed", &message));
    }
    let (status, answer) = app
        .call(
            Method::POST,
            "/v1/api-keys",
            &user.key,
            Some(json!({"name": "x", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["code"], "validation_failed");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown variant `admin`"));
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_keys_can_read_but_not_write_or_escalate() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let (_, created) = app
        .call(
            Method::POST,
            "/v1/api-keys",
            &user.key,
            Some(json!({"name": "dashboard", "scopes": ["links:read", "keys:read"]})),
        )
        .await;
    let read_only = created["key"].as_str().unwrap().to_owned();

    let (status, _) = app.call(Method::GET, "/v1/links", &read_only, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(Method::GET, "/v1/api-keys", &read_only, None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app
        .call(
            Method::POST,
            "/v1/links",
            &read_only,
            Some(json!({"destination": "https://example.com/"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        error(
            "insufficient_scope",
            "this API key lacks the links:write scope"
        )
    );
    // The scope is checked before the body is read.
    let response = app
        .api(Method::POST, "/v1/links", &read_only)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/api-keys",
            &read_only,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        error(
            "insufficient_scope",
            "this API key lacks the keys:write scope"
        )
    );

    // A key without keys:read or keys:write can neither see nor mint keys.
    let (_, links_only) = app
        .call(
            Method::POST,
            "/v1/api-keys",
            &user.key,
            Some(json!({"name": "links", "scopes": ["links:read", "links:write"]})),
        )
        .await;
    let links_only = links_only["key"].as_str().unwrap().to_owned();
    let (status, _) = app
        .call(Method::GET, "/v1/api-keys", &links_only, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_cannot_mint_scopes_they_lack() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let (_, manager) = app
        .call(
            Method::POST,
            "/v1/api-keys",
            &user.key,
            Some(json!({"name": "m", "scopes": ["keys:write", "links:read"]})),
        )
        .await;
    let manager = manager["key"].as_str().unwrap().to_owned();

    let (status, body) = app
        .call(
            Method::POST,
            "/v1/api-keys",
            &manager,
            Some(json!({"name": "x", "scopes": ["links:read", "links:write"]})),
        )
        .await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        error(
            "insufficient_scope",
            "this API key lacks the links:write scope"
        )
    );
    let (status, _) = app
        .call(
            Method::POST,
            "/v1/api-keys",
            &manager,
            Some(json!({"name": "x", "scopes": ["links:read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread")]
async fn last_used_at_is_written_at_most_once_a_minute() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let last_used = || async {
        sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "SELECT last_used_at FROM api_keys",
        )
        .fetch_one(&app.state.db)
        .await
        .unwrap()
    };
    assert_eq!(last_used().await, None);

    app.call(Method::GET, "/v1/me", &user.key, None).await;
    let first = last_used().await.expect("set on first use");
    app.call(Method::GET, "/v1/me", &user.key, None).await;
    assert_eq!(last_used().await, Some(first));

    sqlx::query("UPDATE api_keys SET last_used_at = now() - interval '2 minutes'")
        .execute(&app.state.db)
        .await
        .unwrap();
    app.call(Method::GET, "/v1/me", &user.key, None).await;
    assert!(last_used().await.unwrap() > first);
}

// ---- links: create ----

#[tokio::test(flavor = "multi_thread")]
async fn links_are_created_with_a_random_uid_or_a_custom_slug() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;

    let random = app
        .api_link(&user.key, json!({"destination": "https://example.com/a"}))
        .await;
    let uid = random["uid"].as_str().unwrap();
    assert_eq!(uid.len(), 7);
    assert_eq!(random["slug"], uid);
    assert_eq!(random["custom_slug"], Value::Null);
    assert_eq!(random["redirect_type"], 302);
    assert_eq!(random["status"], "active");
    assert_eq!(random["protection"], "none");
    assert_eq!(random["utm"], json!({}));

    let full = app
        .api_link(
            &user.key,
            json!({
                "destination": "https://example.com/b?x=1",
                "custom_slug": "spring-sale",
                "title": "Spring sale",
                "utm": {"source": "newsletter", "campaign": "spring", "term": ""},
                "redirect_type": 301,
                "expires_at": "2099-01-01T00:00:00Z",
            }),
        )
        .await;
    assert_eq!(full["slug"], "spring-sale");
    assert_eq!(full["custom_slug"], "spring-sale");
    assert_eq!(full["title"], "Spring sale");
    assert_eq!(
        full["utm"],
        json!({"source": "newsletter", "campaign": "spring"})
    );
    assert_eq!(full["redirect_type"], 301);
    assert_eq!(full["expires_at"], "2099-01-01T00:00:00Z");
    assert_eq!(full["total_clicks"], 0);

    // The origin serves both at once; the custom link also by its uid.
    let response = app.get("/spring-sale").await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        response.headers()["location"],
        "https://example.com/b?x=1&utm_source=newsletter&utm_campaign=spring"
    );
    assert_eq!(
        app.get(&format!("/{uid}")).await.status(),
        StatusCode::FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn creating_a_link_clears_a_cached_negative_entry() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    assert_eq!(app.get("/fresh").await.status(), StatusCode::NOT_FOUND);
    assert!(app.cached("fresh").await);

    app.api_link(
        &user.key,
        json!({"destination": "https://example.com/", "custom_slug": "fresh"}),
    )
    .await;

    assert!(!app.cached("fresh").await);
    assert_eq!(app.get("/fresh").await.status(), StatusCode::FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_links_are_refused_with_exact_errors() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let long = "t".repeat(201);
    let cases = [
        (
            json!({"destination": "javascript:alert(1)"}),
            "destination must use http or https",
        ),
        (
            json!({"destination": "data:text/html,x"}),
            "destination must use http or https",
        ),
        (
            json!({"destination": "https://u:p@example.com/"}),
            "destination must not contain a user name or password",
        ),
        (
            json!({"destination": "https://sho.rt/x"}),
            "destination must not point at this short domain",
        ),
        (
            // The origin's own PUBLIC_URL host, in another case and with a trailing dot.
            json!({"destination": "http://127.0.0.1.:8080/dashboard/"}),
            "destination must not point at this short domain",
        ),
        (
            json!({"destination": format!("https://example.com/{}", "a".repeat(2048))}),
            "destination is longer than 2048 characters",
        ),
        (
            json!({"destination": "https://example.com/", "custom_slug": "v1"}),
            "slug must be at least 3 characters",
        ),
        (
            json!({"destination": "https://example.com/", "custom_slug": "admin"}),
            "slug is reserved",
        ),
        (
            json!({"destination": "https://example.com/", "custom_slug": "a b c"}),
            "slug may contain only letters, digits, '-' and '_'",
        ),
        (
            json!({"destination": "https://example.com/", "title": long}),
            "title must be at most 200 characters",
        ),
        (
            json!({"destination": "https://example.com/", "utm": {"source": long}}),
            "utm.source must be at most 200 characters",
        ),
        (
            json!({"destination": "https://example.com/", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at must be in the future",
        ),
    ];
    for (body, message) in cases {
        let (status, answer) = app
            .call(Method::POST, "/v1/links", &user.key, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(answer, error("validation_failed", message), "{body}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM links")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_get_the_one_error_shape() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let post = |body: String, json: bool| {
        let request = app.api(Method::POST, "/v1/links", &user.key).body(body);
        if json {
            request.header("content-type", "application/json")
        } else {
            request
        }
    };
    let cases = [
        (
            post(
                r#"{"destination": "https://example.com/", "slug": "x"}"#.into(),
                true,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            post(
                r#"{"destination": "https://example.com/", "redirect_type": 303}"#.into(),
                true,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            post(r#"{"destination": 5}"#.into(), true),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            post(r#"{"title": "no destination"}"#.into(), true),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            post(r#"{"destination": "#.into(), true),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            post(r#"{"destination": "https://example.com/"}"#.into(), false),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
    }

    let (_, unknown) = app
        .call(
            Method::POST,
            "/v1/links",
            &user.key,
            Some(json!({"destination": "https://example.com/", "utm": {"sauce": "x"}})),
        )
        .await;
    assert_eq!(
        unknown,
        error(
            "validation_failed",
            "Failed to deserialize the JSON body into the target type: utm.sauce: unknown field `sauce`, expected one of `source`, `medium`, `campaign`, `term`, `content` at line 1 column 52"
        )
    );
    let (_, unsupported) = app.call(Method::POST, "/v1/links", &user.key, None).await;
    assert_eq!(
        unsupported,
        error(
            "unsupported_media_type",
            "request body must be JSON (Content-Type: application/json)"
        )
    );

    // Over the cap: refused with our shape whether or not the length is announced.
    let huge = format!(
        r#"{{"destination": "https://example.com/{}"}}"#,
        "a".repeat(70_000)
    );
    let response = post(huge.clone(), true).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        error(
            "payload_too_large",
            "request body is larger than 65536 bytes"
        )
    );
    let streamed = chunked_post(&app, "/v1/links", &user.key, &huge).await;
    assert!(streamed.starts_with("HTTP/1.1 413"), "{streamed}");
    assert!(
        streamed.ends_with(
            &error(
                "payload_too_large",
                "request body is larger than 65536 bytes"
            )
            .to_string()
        ),
        "{streamed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn taken_slugs_are_409_whether_custom_slug_or_uid() {
    let app = TestApp::start().await;
    let alice = app.api_user("alice@example.com").await;
    let bob = app.api_user("bob@example.com").await;
    let first = app
        .api_link(
            &alice.key,
            json!({"destination": "https://example.com/", "custom_slug": "promo"}),
        )
        .await;

    for slug in ["promo", first["uid"].as_str().unwrap()] {
        let (status, body) = app
            .call(
                Method::POST,
                "/v1/links",
                &bob.key,
                Some(json!({"destination": "https://example.org/", "custom_slug": slug})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{slug}");
        assert_eq!(body, error("slug_taken", "this slug is already taken"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_creates_of_one_custom_slug_have_exactly_one_winner() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let responses = parallel(16, |i| {
        app.api(Method::POST, "/v1/links", &user.key).json(
            &json!({"destination": format!("https://example.com/{i}"), "custom_slug": "race"}),
        )
    })
    .await;

    let mut results = Vec::new();
    for response in responses {
        let status = response.status();
        results.push((status, response.json::<Value>().await.unwrap()));
    }

    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let taken = results
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["error"]["code"] == "slug_taken")
        .count();
    assert_eq!((created, taken), (1, 15), "{results:?}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM links WHERE custom_slug = 'race'")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

// ---- links: read ----

#[tokio::test(flavor = "multi_thread")]
async fn links_are_visible_to_their_owner_only() {
    let app = TestApp::start().await;
    let alice = app.api_user("alice@example.com").await;
    let bob = app.api_user("bob@example.com").await;
    let link = app
        .api_link(&alice.key, json!({"destination": "https://example.com/"}))
        .await;
    let path = format!("/v1/links/{}", link["id"].as_str().unwrap());

    let (status, got) = app.call(Method::GET, &path, &alice.key, None).await;
    assert_eq!((status, &got), (StatusCode::OK, &link));

    let not_found = error("not_found", "link not found");
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"title": "mine"}))),
        (Method::DELETE, None),
    ] {
        let (status, answer) = app.call(method.clone(), &path, &bob.key, body).await;
        assert_eq!(
            (status, &answer),
            (StatusCode::NOT_FOUND, &not_found),
            "{method}"
        );
    }
    for action in ["disable", "enable"] {
        let (status, answer) = app
            .call(Method::POST, &format!("{path}/{action}"), &bob.key, None)
            .await;
        assert_eq!((status, &answer), (StatusCode::NOT_FOUND, &not_found));
    }
    let (status, answer) = app
        .call(Method::GET, "/v1/links/not-a-uuid", &alice.key, None)
        .await;
    assert_eq!((status, answer), (StatusCode::NOT_FOUND, not_found));
    let (_, list) = app.call(Method::GET, "/v1/links", &bob.key, None).await;
    assert_eq!(list, json!({"data": [], "next_cursor": null}));
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_pages_through_every_link_with_a_cursor() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let mut created = Vec::new();
    for i in 0..5 {
        let link = app
            .api_link(
                &user.key,
                json!({"destination": format!("https://example.com/{i}")}),
            )
            .await;
        created.push(link["id"].as_str().unwrap().to_owned());
    }
    created.reverse();

    let mut seen = Vec::new();
    let mut path = "/v1/links?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = app.call(Method::GET, &path, &user.key, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/links?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "newest first, each once");
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_filters_by_status_protection_creation_time_and_fuzzy_search() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let spring = app
        .api_link(
            &user.key,
            json!({"destination": "https://example.com/1", "custom_slug": "spring-sale", "title": "Garden"}),
        )
        .await;
    let winter = app
        .api_link(
            &user.key,
            json!({"destination": "https://example.com/2", "title": "Winter boots"}),
        )
        .await;
    let old = app
        .api_link(&user.key, json!({"destination": "https://example.com/3"}))
        .await;
    sqlx::query("UPDATE links SET created_at = '2020-06-01T00:00:00Z' WHERE id = $1::uuid")
        .bind(old["id"].as_str().unwrap())
        .execute(&app.state.db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE links SET protection_type = 'pin', protection_hash = '$argon2id$stub'
          WHERE id = $1::uuid",
    )
    .bind(old["id"].as_str().unwrap())
    .execute(&app.state.db)
    .await
    .unwrap();
    app.call(
        Method::POST,
        &format!("/v1/links/{}/disable", winter["id"].as_str().unwrap()),
        &user.key,
        None,
    )
    .await;
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (app, key) = (&app, user.key.as_str());
    let list = move |query: &'static str| async move {
        let (status, page) = app
            .call(Method::GET, &format!("/v1/links?{query}"), key, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        page
    };
    let id = |link: &Value| link["id"].as_str().unwrap().to_owned();

    assert_eq!(ids(&list("status=disabled").await), [id(&winter)]);
    assert_eq!(ids(&list("status=active").await), [id(&spring), id(&old)]);
    assert_eq!(ids(&list("protected=true").await), [id(&old)]);
    assert_eq!(
        ids(&list("protected=false").await),
        [id(&winter), id(&spring)]
    );
    assert_eq!(
        ids(&list("created_before=2021-01-01T00:00:00Z").await),
        [id(&old)]
    );
    assert_eq!(
        ids(&list("created_after=2021-01-01T00:00:00Z").await),
        [id(&winter), id(&spring)]
    );
    // A typo still finds the slug (trigram word similarity); a substring finds the title.
    assert_eq!(ids(&list("q=sprng").await), [id(&spring)]);
    assert_eq!(ids(&list("q=boots").await), [id(&winter)]);
    assert_eq!(ids(&list("q=100%25").await), Vec::<String>::new());
    assert_eq!(
        ids(&list("q=sale&status=disabled").await),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_listing_parameters_are_422() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    for (query, message) in [
        ("limit=0", "limit must be 1 to 100"),
        ("limit=101", "limit must be 1 to 100"),
        ("cursor=garbage", "invalid cursor"),
        (
            &format!("q={}", "x".repeat(101)) as &str,
            "q must be at most 100 characters",
        ),
    ] {
        let (status, body) = app
            .call(Method::GET, &format!("/v1/links?{query}"), &user.key, None)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(body, error("validation_failed", message), "{query}");
    }
    for query in [
        "status=gone",
        "created_after=yesterday",
        "sort=title",
        "limit=x",
    ] {
        let (status, body) = app
            .call(Method::GET, &format!("/v1/links?{query}"), &user.key, None)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(body["error"]["code"], "validation_failed", "{query}");
    }
    let (_, body) = app
        .call(Method::GET, "/v1/links?order=title", &user.key, None)
        .await;
    assert_eq!(
        body,
        error(
            "validation_failed",
            "Failed to deserialize query string: order: unknown field `order`, expected one of `limit`, `cursor`, `status`, `created_after`, `created_before`, `q`, `sort`, `protected`"
        )
    );
    let (_, body) = app
        .call(Method::GET, "/v1/links?sort=title", &user.key, None)
        .await;
    assert_eq!(
        body,
        error(
            "validation_failed",
            "Failed to deserialize query string: sort: unknown variant `title`, expected `created` or `clicks`"
        )
    );
}

// ---- links: changes invalidate the cache at once ----

/// Requests `slug` from the origin so that `link:{slug}` is cached, and checks it is.
async fn warm(app: &TestApp, slug: &str) -> reqwest::Response {
    let response = app.get(&format!("/{slug}")).await;
    assert!(app.cached(slug).await, "{slug} should be cached");
    response
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_invalidate_the_cache_and_show_at_once() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let link = app
        .api_link(
            &user.key,
            json!({"destination": "https://example.com/old", "custom_slug": "edit-me", "title": "T"}),
        )
        .await;
    let path = format!("/v1/links/{}", link["id"].as_str().unwrap());
    let uid = link["uid"].as_str().unwrap().to_owned();
    assert_eq!(
        warm(&app, "edit-me").await.headers()["location"],
        "https://example.com/old"
    );
    warm(&app, &uid).await;

    let (status, updated) = app
        .call(
            Method::PATCH,
            &path,
            &user.key,
            Some(json!({
                "destination": "https://example.com/new",
                "title": null,
                "utm": {"medium": "email"},
                "redirect_type": 307,
            })),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["destination"], "https://example.com/new");
    assert_eq!(updated["title"], Value::Null);
    assert_eq!(updated["utm"], json!({"medium": "email"}));
    assert_eq!(updated["redirect_type"], 307);
    assert_eq!(updated["custom_slug"], "edit-me", "absent fields stay");
    assert!(!app.cached("edit-me").await);
    assert!(!app.cached(&uid).await);
    let response = app.get("/edit-me").await;
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        "https://example.com/new?utm_medium=email"
    );

    // Renaming: the old slug is gone at once, the new one answers.
    warm(&app, "edit-me").await;
    let (status, renamed) = app
        .call(
            Method::PATCH,
            &path,
            &user.key,
            Some(json!({"custom_slug": "edited"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renamed["slug"], "edited");
    assert!(!app.cached("edit-me").await);
    assert_eq!(app.get("/edit-me").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/edited").await.status(),
        StatusCode::TEMPORARY_REDIRECT
    );

    // Expiry: a past expiry is refused, a future one kept, null clears it.
    let (status, _) = app
        .call(
            Method::PATCH,
            &path,
            &user.key,
            Some(json!({"expires_at": "2001-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, expiring) = app
        .call(
            Method::PATCH,
            &path,
            &user.key,
            Some(json!({"expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(expiring["expires_at"], "2099-01-01T00:00:00Z");
    let (_, cleared) = app
        .call(
            Method::PATCH,
            &path,
            &user.key,
            Some(json!({"expires_at": null, "custom_slug": null})),
        )
        .await;
    assert_eq!(cleared["expires_at"], Value::Null);
    assert_eq!(
        cleared["slug"], uid,
        "without a custom slug the uid is the slug"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_are_validated_and_slugs_stay_unique() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let taken = app
        .api_link(
            &user.key,
            json!({"destination": "https://example.com/", "custom_slug": "taken"}),
        )
        .await;
    let link = app
        .api_link(&user.key, json!({"destination": "https://example.com/"}))
        .await;
    let path = format!("/v1/links/{}", link["id"].as_str().unwrap());

    for slug in ["taken", taken["uid"].as_str().unwrap()] {
        let (status, body) = app
            .call(
                Method::PATCH,
                &path,
                &user.key,
                Some(json!({"custom_slug": slug})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body, error("slug_taken", "this slug is already taken"));
    }
    for (body, message) in [
        (
            json!({"destination": "ftp://example.com/"}),
            "destination must use http or https",
        ),
        (json!({"custom_slug": "login"}), "slug is reserved"),
    ] {
        let (status, answer) = app.call(Method::PATCH, &path, &user.key, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(answer, error("validation_failed", message));
    }
    let (status, answer) = app
        .call(Method::PATCH, &path, &user.key, Some(json!({"uid": "x"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["code"], "validation_failed");
    // Keeping one's own slug is not a conflict.
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/links/{}", taken["id"].as_str().unwrap()),
            &user.key,
            Some(json!({"custom_slug": "taken"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_and_enable_show_at_once() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let link = app
        .api_link(
            &user.key,
            json!({"destination": "https://example.com/", "custom_slug": "toggle"}),
        )
        .await;
    let path = format!("/v1/links/{}", link["id"].as_str().unwrap());
    assert_eq!(warm(&app, "toggle").await.status(), StatusCode::FOUND);

    let (status, disabled) = app
        .call(Method::POST, &format!("{path}/disable"), &user.key, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(disabled["status"], "disabled");
    assert!(!app.cached("toggle").await);
    assert_eq!(warm(&app, "toggle").await.status(), StatusCode::GONE);

    let (status, enabled) = app
        .call(Method::POST, &format!("{path}/enable"), &user.key, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(enabled["status"], "active");
    assert!(!app.cached("toggle").await);
    assert_eq!(app.get("/toggle").await.status(), StatusCode::FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_link_invalidates_it_at_once() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let link = app
        .api_link(
            &user.key,
            json!({"destination": "https://example.com/", "custom_slug": "doomed"}),
        )
        .await;
    let path = format!("/v1/links/{}", link["id"].as_str().unwrap());
    let uid = link["uid"].as_str().unwrap().to_owned();
    warm(&app, "doomed").await;
    warm(&app, &uid).await;

    let (status, body) = app.call(Method::DELETE, &path, &user.key, None).await;

    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert!(!app.cached("doomed").await);
    assert!(!app.cached(&uid).await);
    assert_eq!(app.get("/doomed").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("/{uid}")).await.status(),
        StatusCode::NOT_FOUND
    );
    let (status, body) = app.call(Method::DELETE, &path, &user.key, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, error("not_found", "link not found"));
}

// ---- protection ----

#[tokio::test(flavor = "multi_thread")]
async fn protection_is_set_as_an_argon2id_hash_and_cleared_at_once() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let link = app
        .api_link(
            &user.key,
            json!({"destination": "https://example.com/", "custom_slug": "vault"}),
        )
        .await;
    let id = link["id"].as_str().unwrap();
    let path = format!("/v1/links/{id}/protection");
    assert_eq!(warm(&app, "vault").await.status(), StatusCode::FOUND);

    let (status, body) = app
        .call(
            Method::PUT,
            &path,
            &user.key,
            Some(json!({"type": "pin", "secret": "4821"})),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["protection"], "pin");
    assert!(body.get("secret").is_none() && !body.to_string().contains("4821"));
    assert!(!app.cached("vault").await, "setting protection invalidates");
    let hash: String = sqlx::query_scalar("SELECT protection_hash FROM links WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    let form = warm(&app, "vault").await;
    assert_eq!(form.status(), StatusCode::FORBIDDEN);
    assert!(form
        .text()
        .await
        .unwrap()
        .contains("<label for=\"secret\">PIN</label>"));
    let cached = app
        .state
        .redis
        .get_link(None, "vault")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !format!("{cached:?}").contains("argon2"),
        "no hash in the cache"
    );

    let (status, body) = app
        .call(
            Method::PUT,
            &path,
            &user.key,
            Some(json!({"type": "password", "secret": "correct horse"})),
        )
        .await;
    assert_eq!(
        (status, &body["protection"]),
        (StatusCode::OK, &json!("password"))
    );

    let (status, body) = app.call(Method::DELETE, &path, &user.key, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["protection"], "none");
    assert!(
        !app.cached("vault").await,
        "clearing protection invalidates"
    );
    assert_eq!(app.get("/vault").await.status(), StatusCode::FOUND);
    let hash: Option<String> =
        sqlx::query_scalar("SELECT protection_hash FROM links WHERE id = $1::uuid")
            .bind(id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(hash, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn protection_input_is_validated_with_exact_errors() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let other = app.api_user("b@example.com").await;
    let link = app
        .api_link(&user.key, json!({"destination": "https://example.com/"}))
        .await;
    let path = format!("/v1/links/{}/protection", link["id"].as_str().unwrap());
    let cases = [
        (
            json!({"type": "pin", "secret": "12a4"}),
            "a PIN is 4 to 8 digits",
        ),
        (
            json!({"type": "pin", "secret": "123456789"}),
            "a PIN is 4 to 8 digits",
        ),
        (
            json!({"type": "password", "secret": "short"}),
            "a password is 8 to 128 characters",
        ),
        (
            json!({"type": "none", "secret": "12345678"}),
            "Failed to deserialize the JSON body into the target type: type: unknown variant `none`, \
             expected `pin` or `password` at line 1 column 34",
        ),
        (json!({"type": "pin"}), "Failed to deserialize the JSON body into the target type: missing field `secret` at line 1 \
             column 14"),
        (
            json!({"type": "pin", "secret": "1234", "hint": "year"}),
            "Failed to deserialize the JSON body into the target type: hint: unknown field `hint`, \
             expected `type` or `secret` at line 1 column 7",
        ),
    ];
    for (body, message) in cases {
        let (status, answer) = app
            .call(Method::PUT, &path, &user.key, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(answer, error("validation_failed", message), "{body}");
    }
    let (status, answer) = app
        .call(
            Method::PUT,
            &path,
            &other.key,
            Some(json!({"type": "pin", "secret": "1234"})),
        )
        .await;
    assert_eq!(
        (status, answer),
        (StatusCode::NOT_FOUND, error("not_found", "link not found"))
    );
    let (status, answer) = app.call(Method::DELETE, &path, &other.key, None).await;
    assert_eq!(
        (status, answer),
        (StatusCode::NOT_FOUND, error("not_found", "link not found"))
    );
    let (_, created) = app
        .call(
            Method::POST,
            "/v1/api-keys",
            &user.key,
            Some(json!({"name": "dashboard", "scopes": ["links:read"]})),
        )
        .await;
    let read_only = created["key"].as_str().unwrap();
    let scope = error(
        "insufficient_scope",
        "this API key lacks the links:write scope",
    );
    let (status, answer) = app
        .call(
            Method::PUT,
            &path,
            read_only,
            Some(json!({"type": "pin", "secret": "1234"})),
        )
        .await;
    assert_eq!((status, answer), (StatusCode::FORBIDDEN, scope.clone()));
    let (status, answer) = app.call(Method::DELETE, &path, read_only, None).await;
    assert_eq!((status, answer), (StatusCode::FORBIDDEN, scope));
    let (status, answer) = app
        .call(
            Method::PUT,
            "/v1/links/not-a-uuid/protection",
            &user.key,
            Some(json!({"type": "pin", "secret": "1234"})),
        )
        .await;
    assert_eq!(
        (status, answer),
        (StatusCode::NOT_FOUND, error("not_found", "link not found"))
    );
}

// ---- rate limits ----

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_exact_under_parallel_load() {
    let app = TestApp::start_with(|c| c.rate_limits.free_per_minute = 5).await;
    let user = app.api_user("a@example.com").await;
    let other = app.api_user("b@example.com").await;

    let responses = parallel(20, |_| app.api(Method::GET, "/v1/me", &user.key)).await;

    let mut ok = 0;
    let mut limited = Vec::new();
    for response in responses {
        assert_eq!(response.headers()["x-ratelimit-limit"], "5");
        match response.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => limited.push(response),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, limited.len()), (5, 15));
    let response = limited.pop().unwrap();
    assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=120).contains(&retry), "{retry}");
    let reset: u64 = response.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&reset), "{reset}");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        error(
            "rate_limited",
            &format!("rate limit exceeded; retry in {retry} s")
        )
    );
    // Limits are per account.
    let response = app
        .api(Method::GET, "/v1/me", &other.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-ratelimit-remaining"], "4");
}

#[tokio::test(flavor = "multi_thread")]
async fn all_keys_of_an_account_share_one_rate_limit() {
    let app = TestApp::start_with(|c| c.rate_limits.free_per_minute = 6).await;
    let user = app.api_user("a@example.com").await;
    let (status, second) = app
        .call(
            Method::POST,
            "/v1/api-keys",
            &user.key,
            Some(json!({"name": "second"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second = second["key"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    for i in 0..6 {
        let key = if i % 2 == 0 { &second } else { &user.key };
        statuses.push(app.call(Method::GET, "/v1/me", key, None).await.0.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429], "one budget of 6");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_number_of_live_keys_is_bounded_by_the_tier() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    let create = |name: String| {
        app.call(
            Method::POST,
            "/v1/api-keys",
            &user.key,
            Some(json!({"name": name})),
        )
    };
    let mut created = Vec::new();
    for i in 1..5 {
        let (status, key) = create(format!("k{i}")).await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        created.push(key["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        create("k5".into()).await,
        (
            StatusCode::CONFLICT,
            error(
                "api_key_limit_reached",
                "this account already holds 5 API keys, the most its tier allows; revoke one first"
            )
        )
    );
    let revoke = format!("/v1/api-keys/{}", created[0]);
    let (status, _) = app.call(Method::DELETE, &revoke, &user.key, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(create("k5".into()).await.0, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_follow_the_subscription_tier() {
    let app = TestApp::start_with(|c| {
        c.rate_limits.free_per_minute = 2;
        c.rate_limits.pro_per_minute = 7;
        c.rate_limits.business_per_minute = 11;
    })
    .await;
    for (email, tier, limit) in [
        ("f@example.com", SubscriptionTier::Free, "2"),
        ("p@example.com", SubscriptionTier::Pro, "7"),
        ("b@example.com", SubscriptionTier::Business, "11"),
    ] {
        let user = app.api_user_with_tier(email, tier).await;
        let response = app
            .api(Method::GET, "/v1/me", &user.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-ratelimit-limit"], limit);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_counters_follow_the_key_scheme() {
    let app = TestApp::start().await;
    let user = app.api_user("a@example.com").await;
    app.call(Method::GET, "/v1/me", &user.key, None).await;
    let mut conn = app.state.redis.conn().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}rate:*", app.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((3590..=3600).contains(&ttl), "{ttl}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_fail_open_when_redis_is_down() {
    let app =
        TestApp::start_with(|c| c.data.redis_url = format!("redis://127.0.0.1:{}", closed_port()))
            .await;
    let user = app.api_user("a@example.com").await;

    let response = app
        .api(Method::GET, "/v1/me", &user.key)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("x-ratelimit-limit").is_none());
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("smo1_rate_limit_fail_open_total 1"),
        "{metrics}"
    );
}

// ---- the OpenAPI document ----

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_covers_every_endpoint_and_its_errors() {
    let app = TestApp::start().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();

    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut operations: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    operations.sort();
    assert_eq!(
        operations,
        [
            "DELETE /v1/api-keys/{id}",
            "DELETE /v1/auth/session",
            "DELETE /v1/auth/sessions",
            "DELETE /v1/domains/{id}",
            "DELETE /v1/links/{id}",
            "DELETE /v1/links/{id}/protection",
            "GET /v1/achievements",
            "GET /v1/analytics/breakdown/{dimension}",
            "GET /v1/analytics/clicks",
            "GET /v1/analytics/dashboard",
            "GET /v1/analytics/summary",
            "GET /v1/analytics/timeseries",
            "GET /v1/api-keys",
            "GET /v1/auth/session",
            "GET /v1/domains",
            "GET /v1/domains/{id}",
            "GET /v1/links",
            "GET /v1/links/{id}",
            "GET /v1/links/{id}/analytics/breakdown/{dimension}",
            "GET /v1/links/{id}/analytics/clicks",
            "GET /v1/links/{id}/analytics/dashboard",
            "GET /v1/links/{id}/analytics/summary",
            "GET /v1/links/{id}/analytics/timeseries",
            "GET /v1/links/{id}/qr",
            "GET /v1/me",
            "GET /v1/xp",
            "PATCH /v1/domains/{id}",
            "PATCH /v1/links/{id}",
            "POST /v1/api-keys",
            "POST /v1/auth/session",
            "POST /v1/auth/sign-in",
            "POST /v1/domains",
            "POST /v1/domains/{id}/verify",
            "POST /v1/links",
            "POST /v1/links/{id}/disable",
            "POST /v1/links/{id}/enable",
            "PUT /v1/links/{id}/protection",
        ]
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            if method != "get" {
                assert!(responses.contains_key("403"), "{method} {path} lacks 403");
            }
            if path == "/v1/auth/sign-in" || (path == "/v1/auth/session" && method == "post") {
                // Asking for and redeeming a sign-in link: no credential yet.
                assert!(operation.get("security").is_none(), "{method} {path}");
                continue;
            }
            for status in ["401", "429"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
            assert!(operation["security"].is_array(), "{method} {path}");
        }
    }
    assert_eq!(
        doc["paths"]["/v1/links"]["post"]["responses"]["409"]["description"],
        "`slug_taken`: the custom slug is another link's slug on the same domain"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"],
        json!({"type": "http", "scheme": "bearer"})
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["in"],
        "cookie"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["name"],
        "smo1_session"
    );
    assert_eq!(
        doc["paths"]["/v1/links"]["post"]["security"],
        json!([{"api_key": ["links:write"]}, {"session": []}])
    );
    assert!(
        doc["paths"]["/v1/links"]["post"]["responses"]["403"]["description"]
            .as_str()
            .unwrap()
            .contains("`forbidden_origin`")
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // No authentication needed to read it.
    assert!(doc["paths"].get("/openapi.json").is_none());
}
