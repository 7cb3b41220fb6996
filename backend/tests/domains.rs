//! Custom domains at the origin: the `/v1/domains` API with its errors pinned, verification by a
//! DNS TXT record against a real DNS server started here (hickory-server, `DnsServer`), the
//! periodic re-check, links on domains (slugs unique per domain), loops refused, and the origin's
//! own redirects resolved by `Host`.

mod common;

use common::{closed_port, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use smo1_testkit::DnsServer;
use std::time::Duration;

fn error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

/// The origin asking `dns` for TXT records.
async fn app_over(dns: &DnsServer) -> TestApp {
    let addr = dns.addr;
    TestApp::start_with(move |c| c.domains.dns_resolver = Some(addr)).await
}

/// Adds `hostname` for `key` and answers the domain's JSON.
async fn add(app: &TestApp, key: &str, hostname: &str) -> Value {
    let (status, domain) = app
        .call(
            Method::POST,
            "/v1/domains",
            key,
            Some(json!({"hostname": hostname})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{domain}");
    domain
}

async fn verify(app: &TestApp, key: &str, domain: &Value) -> Value {
    let id = domain["id"].as_str().expect("id");
    let (status, checked) = app
        .call(Method::POST, &format!("/v1/domains/{id}/verify"), key, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    checked
}

/// Adds `hostname`, publishes its token and verifies it.
async fn verified(app: &TestApp, dns: &DnsServer, key: &str, hostname: &str) -> Value {
    let domain = add(app, key, hostname).await;
    publish(dns, &domain).await;
    let checked = verify(app, key, &domain).await;
    assert_eq!(checked["status"], "verified", "{checked}");
    checked
}

/// Creates the TXT record the domain asks for.
async fn publish(dns: &DnsServer, domain: &Value) {
    dns.set_txt(
        domain["verification"]["name"].as_str().expect("name"),
        &[domain["verification"]["value"].as_str().expect("value")],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn domains_are_added_listed_read_changed_and_removed() {
    let dns = DnsServer::start().await;
    let app = app_over(&dns).await;
    let user = app.api_user("owner@example.com").await;

    let domain = add(&app, &user.key, " Go.Brand.TEST. ").await;
    assert_eq!(domain["hostname"], "go.brand.test");
    assert_eq!(domain["status"], "pending");
    assert_eq!(domain["failure_reason"], Value::Null);
    assert_eq!(domain["verification"]["record_type"], "TXT");
    assert_eq!(
        domain["verification"]["name"],
        "_smo1-challenge.go.brand.test"
    );
    let token = domain["verification"]["value"].as_str().unwrap();
    assert!(
        token.starts_with("smo1-verify-") && token.len() == 44,
        "{token}"
    );
    let id = domain["id"].as_str().unwrap();

    let (status, body) = app
        .call(
            Method::POST,
            "/v1/domains",
            &user.key,
            Some(json!({"hostname": "go.brand.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        error("domain_taken", "this account already has this domain")
    );
    for (hostname, message) in [
        (
            "localhost",
            "hostname must have at least two labels (links.example.com)",
        ),
        ("sho.rt", "hostname is one of this service's own domains"),
        ("SHO.RT.", "hostname is one of this service's own domains"),
        ("under_score.test", "hostname is not a valid DNS name"),
        ("10.0.0.1", "hostname must be a DNS name, not an IP address"),
    ] {
        let (status, body) = app
            .call(
                Method::POST,
                "/v1/domains",
                &user.key,
                Some(json!({"hostname": hostname})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{hostname}");
        assert_eq!(body, error("validation_failed", message), "{hostname}");
    }

    let (status, list) = app.call(Method::GET, "/v1/domains", &user.key, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (status, read) = app
        .call(Method::GET, &format!("/v1/domains/{id}"), &user.key, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["id"], domain["id"]);

    let (status, changed) = app
        .call(
            Method::PATCH,
            &format!("/v1/domains/{id}"),
            &user.key,
            Some(json!({"root_redirect": "https://brand.example/", "not_found_redirect": "https://brand.example/404"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["root_redirect"], "https://brand.example/");
    assert_eq!(changed["not_found_redirect"], "https://brand.example/404");
    let (status, cleared) = app
        .call(
            Method::PATCH,
            &format!("/v1/domains/{id}"),
            &user.key,
            Some(json!({"root_redirect": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cleared["root_redirect"], Value::Null);
    assert_eq!(cleared["not_found_redirect"], "https://brand.example/404");
    // A domain's targets may not point at the domain itself, verified or not.
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/v1/domains/{id}"),
            &user.key,
            Some(json!({"not_found_redirect": "https://GO.brand.test./x"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        error(
            "validation_failed",
            "not_found_redirect: destination must not point at this short domain"
        )
    );

    // Another account sees none of it.
    let other = app.api_user("other@example.com").await;
    for (method, path) in [
        (Method::GET, format!("/v1/domains/{id}")),
        (Method::POST, format!("/v1/domains/{id}/verify")),
        (Method::DELETE, format!("/v1/domains/{id}")),
        (Method::GET, "/v1/domains/not-a-uuid".to_owned()),
    ] {
        let (status, body) = app.call(method, &path, &other.key, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, error("not_found", "domain not found"));
    }

    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/domains/{id}"),
            &user.key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call(Method::GET, &format!("/v1/domains/{id}"), &user.key, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_reads_the_txt_record_from_a_real_dns_server() {
    let dns = DnsServer::start().await;
    let app = app_over(&dns).await;
    let user = app.api_user("owner@example.com").await;

    // The token among other TXT values of the name: verified.
    let good = add(&app, &user.key, "good.brand.test").await;
    let token = good["verification"]["value"].as_str().unwrap().to_owned();
    dns.set_txt(
        "_smo1-challenge.good.brand.test",
        &["v=other", token.as_str()],
    )
    .await;
    let checked = verify(&app, &user.key, &good).await;
    assert_eq!(checked["status"], "verified");
    assert_eq!(checked["failure_reason"], Value::Null);
    assert!(checked["verified_at"].is_string() && checked["last_checked_at"].is_string());

    // Another value only.
    let wrong = add(&app, &user.key, "wrong.brand.test").await;
    dns.set_txt(
        "_smo1-challenge.wrong.brand.test",
        &["smo1-verify-not-this-one"],
    )
    .await;
    let checked = verify(&app, &user.key, &wrong).await;
    assert_eq!(checked["status"], "pending");
    assert_eq!(
        checked["failure_reason"],
        "the TXT record at _smo1-challenge.wrong.brand.test does not carry this domain's token (found \"smo1-verify-not-this-one\")"
    );
    assert_eq!(checked["consecutive_failures"], 1);

    // The name exists, without a TXT record.
    let bare = add(&app, &user.key, "bare.brand.test").await;
    dns.set_a("_smo1-challenge.bare.brand.test").await;
    let checked = verify(&app, &user.key, &bare).await;
    assert_eq!(checked["status"], "pending");
    assert_eq!(
        checked["failure_reason"],
        "no TXT record at _smo1-challenge.bare.brand.test"
    );

    // Nothing at all there.
    let absent = add(&app, &user.key, "absent.brand.test").await;
    let checked = verify(&app, &user.key, &absent).await;
    assert_eq!(checked["status"], "pending");
    assert_eq!(
        checked["failure_reason"],
        "_smo1-challenge.absent.brand.test does not exist (NXDOMAIN)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_dns_server_is_reported_and_changes_nothing() {
    let port = closed_port();
    let app = TestApp::start_with(move |c| {
        c.domains.dns_resolver = Some(format!("127.0.0.1:{port}").parse().unwrap());
    })
    .await;
    let user = app.api_user("owner@example.com").await;
    let domain = add(&app, &user.key, "quiet.brand.test").await;

    let checked = verify(&app, &user.key, &domain).await;

    assert_eq!(checked["status"], "pending");
    assert_eq!(checked["consecutive_failures"], 0);
    let reason = checked["failure_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the DNS lookup of _smo1-challenge.quiet.brand.test ")
            && reason.ends_with("; it will be retried"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_recheck_fails_a_domain_whose_record_stays_gone_and_restores_it_when_back() {
    let dns = DnsServer::start().await;
    let addr = dns.addr;
    let app = TestApp::start_with(move |c| {
        c.domains.dns_resolver = Some(addr);
        c.domains.domain_recheck_interval = Duration::from_millis(300);
        c.domains.domain_failures_before_unverified = 2;
    })
    .await;
    let user = app.api_user("owner@example.com").await;
    let domain = verified(&app, &dns, &user.key, "flip.brand.test").await;
    let id = domain["id"].as_str().unwrap().to_owned();
    let read = || {
        let path = format!("/v1/domains/{id}");
        let app = &app;
        let key = user.key.clone();
        async move { app.call(Method::GET, &path, &key, None).await.1 }
    };

    dns.set_txt("_smo1-challenge.flip.brand.test", &[]).await;
    let failed = wait_for(&read, |d| d["status"] == "failed").await;
    assert_eq!(
        failed["failure_reason"],
        "_smo1-challenge.flip.brand.test does not exist (NXDOMAIN)"
    );
    assert_eq!(failed["consecutive_failures"], 2);

    publish(&dns, &domain).await;
    let back = wait_for(&read, |d| d["status"] == "verified").await;
    assert_eq!(back["failure_reason"], Value::Null);
    assert_eq!(back["consecutive_failures"], 0);
}

/// Polls `read` until `done` holds (10 s at most).
async fn wait_for<F, Fut>(read: F, done: impl Fn(&Value) -> bool) -> Value
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let value = read().await;
        if done(&value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {value} after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn links_live_on_verified_domains_with_slugs_unique_per_domain() {
    let dns = DnsServer::start().await;
    let app = app_over(&dns).await;
    let user = app.api_user("owner@example.com").await;
    verified(&app, &dns, &user.key, "go.brand.test").await;
    add(&app, &user.key, "later.brand.test").await;

    let on_domain = app
        .api_link(
            &user.key,
            json!({"destination": "https://example.com/a", "custom_slug": "guide", "domain": "GO.brand.test."}),
        )
        .await;
    assert_eq!(on_domain["domain"], "go.brand.test");
    let on_default = app
        .api_link(
            &user.key,
            json!({"destination": "https://example.com/b", "custom_slug": "guide"}),
        )
        .await;
    assert_eq!(on_default["domain"], Value::Null);

    let create = |body: Value| app.call(Method::POST, "/v1/links", &user.key, Some(body));
    let (status, body) = create(
        json!({"destination": "https://example.com/c", "custom_slug": "guide", "domain": "go.brand.test"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body, error("slug_taken", "this slug is already taken"));
    let (status, body) =
        create(json!({"destination": "https://example.com/c", "domain": "later.brand.test"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        error(
            "domain_not_verified",
            "domain later.brand.test is not verified; links can be created on it once it is"
        )
    );
    let (status, body) =
        create(json!({"destination": "https://example.com/c", "domain": "else.brand.test"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        error(
            "validation_failed",
            "domain else.brand.test is not one of your domains"
        )
    );
    // Another account cannot use it either.
    let other = app.api_user("other@example.com").await;
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/links",
            &other.key,
            Some(json!({"destination": "https://example.com/c", "domain": "go.brand.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        error(
            "validation_failed",
            "domain go.brand.test is not one of your domains"
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn destinations_and_targets_at_a_verified_domain_are_refused_as_loops() {
    let dns = DnsServer::start().await;
    let app = app_over(&dns).await;
    let owner = app.api_user("owner@example.com").await;
    verified(&app, &dns, &owner.key, "go.brand.test").await;
    let other = app.api_user("other@example.com").await;
    let pending = add(&app, &other.key, "mine.other.test").await;

    let loop_error = error(
        "validation_failed",
        "destination must not point at this short domain",
    );
    for destination in [
        "https://go.brand.test/x",
        "http://GO.Brand.Test./x",
        "https://go.brand.test:8443/",
    ] {
        let (status, body) = app
            .call(
                Method::POST,
                "/v1/links",
                &other.key,
                Some(json!({"destination": destination})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{destination}");
        assert_eq!(body, loop_error, "{destination}");
    }
    let link = app
        .api_link(&other.key, json!({"destination": "https://example.com/"}))
        .await;
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/v1/links/{}", link["id"].as_str().unwrap()),
            &other.key,
            Some(json!({"destination": "https://Go.Brand.Test/"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body, loop_error);
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/v1/domains/{}", pending["id"].as_str().unwrap()),
            &other.key,
            Some(json!({"root_redirect": "https://go.brand.test."})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        error(
            "validation_failed",
            "root_redirect: destination must not point at this short domain"
        )
    );
    // A pending domain is not ours yet: pointing there is allowed.
    app.api_link(
        &owner.key,
        json!({"destination": "https://mine.other.test/"}),
    )
    .await;
}

/// A visitor at the origin, with `host` as the `Host` header.
async fn visit(app: &TestApp, host: &str, path: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .header("host", host)
        .send()
        .await
        .expect("request")
}

fn location(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_origin_resolves_by_host() {
    let dns = DnsServer::start().await;
    let app = app_over(&dns).await;
    let user = app.api_user("owner@example.com").await;
    let domain = verified(&app, &dns, &user.key, "go.brand.test").await;
    let id = domain["id"].as_str().unwrap().to_owned();
    app.api_link(
        &user.key,
        json!({"destination": "https://example.com/branded", "custom_slug": "spring", "domain": "go.brand.test"}),
    )
    .await;
    app.api_link(
        &user.key,
        json!({"destination": "https://example.com/default", "custom_slug": "plain"}),
    )
    .await;
    add(&app, &user.key, "waiting.brand.test").await;

    let branded = visit(&app, "Go.Brand.Test.:8080", "/spring").await;
    assert_eq!(branded.status(), StatusCode::FOUND);
    assert_eq!(location(&branded), Some("https://example.com/branded"));
    // Each domain serves only its own links.
    assert_eq!(
        visit(&app, "go.brand.test", "/plain").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        visit(&app, "sho.rt", "/spring").await.status(),
        StatusCode::NOT_FOUND
    );
    let plain = visit(&app, "sho.rt", "/plain").await;
    assert_eq!(location(&plain), Some("https://example.com/default"));
    // The home page until a root target is set.
    assert_eq!(
        visit(&app, "go.brand.test", "/").await.status(),
        StatusCode::OK
    );

    // Unverified and unknown hosts serve nothing but the page saying so.
    for host in ["waiting.brand.test", "nobody.brand.test"] {
        let response = visit(&app, host, "/spring").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{host}");
        let html = response.text().await.unwrap();
        assert!(
            html.contains("<title>This domain serves no links</title>"),
            "{html}"
        );
    }

    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/domains/{id}"),
            &user.key,
            Some(json!({"root_redirect": "https://brand.example/", "not_found_redirect": "https://brand.example/missing"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let root = visit(&app, "go.brand.test", "/").await;
    assert_eq!(root.status(), StatusCode::FOUND);
    assert_eq!(location(&root), Some("https://brand.example/"));
    for path in ["/plain", "/no-such-slug", "/not.a.slug"] {
        let unknown = visit(&app, "go.brand.test", path).await;
        assert_eq!(unknown.status(), StatusCode::FOUND, "{path}");
        assert_eq!(location(&unknown), Some("https://brand.example/missing"));
    }

    // Removed: its links and its host go at once.
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/domains/{id}"),
            &user.key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gone = visit(&app, "go.brand.test", "/spring").await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert!(gone
        .text()
        .await
        .unwrap()
        .contains("This domain serves no links"));
}

/// Has the edge's lookups fill the entries of `go.brand.test` and of its links `cached` and `uid`.
async fn fill_entries(app: &TestApp, uid: &str) {
    for path in [
        "/internal/domains/go.brand.test".to_owned(),
        "/internal/domains/go.brand.test/links/cached".to_owned(),
        format!("/internal/domains/go.brand.test/links/{uid}"),
    ] {
        assert_eq!(app.internal_get(&path).await.status(), StatusCode::OK);
    }
}

/// Which of the entries [`fill_entries`] fills are in Redis.
async fn cached_entries(app: &TestApp, uid: &str) -> (bool, bool, bool) {
    let redis = &app.state.redis;
    let link = |slug| redis.get_link(Some("go.brand.test"), slug);
    (
        redis.get_domain("go.brand.test").await.unwrap().is_some(),
        link("cached").await.unwrap().is_some(),
        link(uid).await.unwrap().is_some(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn domain_changes_invalidate_the_domain_and_its_links_entries() {
    let dns = DnsServer::start().await;
    let app = app_over(&dns).await;
    let user = app.api_user("owner@example.com").await;
    let domain = verified(&app, &dns, &user.key, "go.brand.test").await;
    let id = domain["id"].as_str().unwrap().to_owned();
    let link = app
        .api_link(
            &user.key,
            json!({"destination": "https://example.com/x", "custom_slug": "cached", "domain": "go.brand.test"}),
        )
        .await;
    let uid = link["uid"].as_str().unwrap().to_owned();
    let fill_all = || fill_entries(&app, &uid);
    let cached = || cached_entries(&app, &uid);
    fill_all().await;
    assert_eq!(cached().await, (true, true, true));

    // New targets: the domain's entry goes.
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/domains/{id}"),
            &user.key,
            Some(json!({"root_redirect": "https://brand.example/"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cached().await, (false, true, true));

    // Its record gone long enough to fail: everything goes.
    fill_all().await;
    dns.set_txt("_smo1-challenge.go.brand.test", &[]).await;
    for _ in 0..3 {
        verify(&app, &user.key, &domain).await;
    }
    let (_, failed) = app
        .call(Method::GET, &format!("/v1/domains/{id}"), &user.key, None)
        .await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(cached().await, (false, false, false));
    let refilled = app
        .internal_get("/internal/domains/go.brand.test")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(refilled, r#"{"v":1,"kind":"unserved"}"#);

    // Removed: everything goes again.
    publish(&dns, &domain).await;
    verify(&app, &user.key, &domain).await;
    fill_all().await;
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/domains/{id}"),
            &user.key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(cached().await, (false, false, false));
}
