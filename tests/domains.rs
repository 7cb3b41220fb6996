//! End to end: custom domains through the built wasm worker in workerd — a domain verified
//! against a real DNS server (hickory-server, `DnsServer`) serves its own links by `Host` and no
//! other domain's, an unverified one shows the page saying it serves nothing, and its root and
//! unknown-slug targets and its removal reach the edge within the cache bound.

mod support;

use reqwest::StatusCode;
use smo1_origin::domains::repo::DomainStatus;
use smo1_origin::domains::service::{self as domains, TargetsPatch};
use smo1_origin::links::service;
use smo1_origin::users::repo;
use smo1_testkit::DnsServer;
use support::{Stack, Wiring};

/// `path` at the edge with `host` as the `Host` header.
async fn visit(stack: &Stack, host: &str, path: &str) -> reqwest::Response {
    stack
        .http
        .get(format!("{}{path}", stack.worker_url))
        .header("host", host)
        .send()
        .await
        .expect("request to worker")
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn says_domain_serves_nothing(response: reqwest::Response) -> bool {
    response.status() == StatusCode::NOT_FOUND
        && response
            .text()
            .await
            .is_ok_and(|html| html.contains("<title>This domain serves no links</title>"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verified_custom_domain_serves_its_own_links_at_the_edge() {
    let dns = DnsServer::start().await;
    let addr = dns.addr;
    let stack = Stack::start_configured(Wiring::default(), move |c| {
        c.domains.dns_resolver = Some(addr);
    })
    .await;
    let state = &stack.state;
    let user = repo::upsert_user(&state.db, "owner@example.com")
        .await
        .unwrap();
    let domain = domains::add(state, user, "go.brand.test").await.unwrap();
    dns.set_txt(
        &domain.verification.name,
        &[domain.verification.value.as_str()],
    )
    .await;
    let domain = domains::verify(state, user, domain.id).await.unwrap();
    assert_eq!(domain.status, DomainStatus::Verified, "{domain:?}");
    domains::add(state, user, "waiting.brand.test")
        .await
        .unwrap();
    let link = |slug: &str, destination: &str, domain: Option<&str>| service::CreateLink {
        custom_slug: Some(slug.into()),
        destination: destination.into(),
        domain: domain.map(str::to_owned),
        ..Default::default()
    };
    service::create(
        state,
        user,
        link(
            "spring",
            "https://example.com/branded",
            Some("go.brand.test"),
        ),
    )
    .await
    .unwrap();
    service::create(
        state,
        user,
        link("plain", "https://example.com/default", None),
    )
    .await
    .unwrap();

    let branded = visit(&stack, "Go.Brand.Test", "/spring").await;
    assert_eq!(branded.status(), StatusCode::FOUND);
    assert_eq!(
        location(&branded).as_deref(),
        Some("https://example.com/branded")
    );
    // Each domain serves only its own slugs.
    assert_eq!(
        visit(&stack, "go.brand.test", "/plain").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        visit(&stack, "sho.rt", "/spring").await.status(),
        StatusCode::NOT_FOUND
    );
    let plain = stack.get("/plain").await;
    assert_eq!(
        location(&plain).as_deref(),
        Some("https://example.com/default")
    );
    assert_eq!(
        visit(&stack, "go.brand.test", "/").await.status(),
        StatusCode::OK
    );
    // Pending and unknown hosts answer the page saying so, whatever the path.
    for (host, path) in [
        ("waiting.brand.test", "/spring"),
        ("waiting.brand.test", "/"),
        ("nobody.brand.test", "/plain"),
    ] {
        assert!(
            says_domain_serves_nothing(visit(&stack, host, path).await).await,
            "{host}{path}"
        );
    }

    // Root and unknown-slug targets.
    domains::update(
        state,
        user,
        domain.id,
        TargetsPatch {
            root_redirect: Some(Some("https://brand.example/".into())),
            not_found_redirect: Some(Some("https://brand.example/missing".into())),
        },
    )
    .await
    .unwrap();
    stack
        .within_link_cache_bound("root target", || async {
            let root = visit(&stack, "go.brand.test", "/").await;
            root.status() == StatusCode::FOUND
                && location(&root).as_deref() == Some("https://brand.example/")
        })
        .await;
    for path in ["/plain", "/unknown-slug", "/not.a.slug"] {
        let unknown = visit(&stack, "go.brand.test", path).await;
        assert_eq!(unknown.status(), StatusCode::FOUND, "{path}");
        assert_eq!(
            location(&unknown).as_deref(),
            Some("https://brand.example/missing"),
            "{path}"
        );
    }
    assert_eq!(
        location(&visit(&stack, "go.brand.test", "/spring").await).as_deref(),
        Some("https://example.com/branded")
    );

    // Removed: its links and its host stop at once (within the isolate's bound).
    domains::remove(state, user, domain.id).await.unwrap();
    stack
        .within_link_cache_bound("removed domain", || async {
            says_domain_serves_nothing(visit(&stack, "go.brand.test", "/spring").await).await
        })
        .await;
    assert_eq!(
        location(&stack.get("/plain").await).as_deref(),
        Some("https://example.com/default")
    );
}
