//! End to end: custom domains through the built wasm worker in workerd — a domain verified
//! against a real DNS server (hickory-server, `DnsServer`) serves its own links by `Host` and no
//! other domain's, an unverified one shows the page saying it serves nothing, its root and
//! unknown-slug targets and its removal reach the edge within the cache bound, and a protected
//! link on it unlocks through the origin's check of that domain's link.

mod support;

use reqwest::StatusCode;
use smo1_core::link::Protection;
use smo1_origin::domains::repo::{Domain, DomainStatus};
use smo1_origin::domains::service::{self as domains, TargetsPatch};
use smo1_origin::links::{protection, service};
use smo1_origin::users::repo;
use smo1_testkit::DnsServer;
use support::{Stack, Wiring};
use uuid::Uuid;

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

/// A stack whose origin verifies domains against `dns`, and the owner of the links it serves.
async fn stack_over(dns: &DnsServer) -> (Stack, Uuid) {
    let addr = dns.addr;
    let stack = Stack::start_configured(Wiring::default(), move |c| {
        c.domains.dns_resolver = Some(addr);
    })
    .await;
    let user = repo::upsert_user(&stack.state.db, "owner@example.com")
        .await
        .unwrap();
    (stack, user)
}

/// `hostname` added by `user` and verified by its TXT record on `dns`.
async fn verified(stack: &Stack, dns: &DnsServer, user: Uuid, hostname: &str) -> Domain {
    let domain = domains::add(&stack.state, user, hostname).await.unwrap();
    dns.set_txt(
        &domain.verification.name,
        &[domain.verification.value.as_str()],
    )
    .await;
    let domain = domains::verify(&stack.state, user, domain.id)
        .await
        .unwrap();
    assert_eq!(domain.status, DomainStatus::Verified, "{domain:?}");
    domain
}

fn link(slug: &str, destination: &str, domain: Option<&str>) -> service::CreateLink {
    service::CreateLink {
        custom_slug: Some(slug.into()),
        destination: destination.into(),
        domain: domain.map(str::to_owned),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verified_custom_domain_serves_its_own_links_at_the_edge() {
    let dns = DnsServer::start().await;
    let (stack, user) = stack_over(&dns).await;
    let state = &stack.state;
    let domain = verified(&stack, &dns, user, "go.brand.test").await;
    domains::add(state, user, "waiting.brand.test")
        .await
        .unwrap();
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

/// A PIN on a custom domain's link: the edge shows the form for that host, the origin checks the
/// PIN and counts the wrong one against that domain's link, and the cookie opens it after; the
/// default domain's link of the same slug stays open.
#[tokio::test(flavor = "multi_thread")]
async fn a_protected_link_on_a_custom_domain_unlocks_at_the_edge() {
    let dns = DnsServer::start().await;
    let (stack, user) = stack_over(&dns).await;
    let state = &stack.state;
    verified(&stack, &dns, user, "vault.brand.test").await;
    let guarded = service::create(
        state,
        user,
        link(
            "safe",
            "https://example.com/guarded",
            Some("vault.brand.test"),
        ),
    )
    .await
    .unwrap();
    protection::set(state, user, guarded.id, Protection::Pin, "2468".into())
        .await
        .unwrap();
    service::create(state, user, link("safe", "https://example.com/open", None))
        .await
        .unwrap();
    let submit = |secret: &'static str| {
        stack
            .http
            .post(format!("{}/safe", stack.worker_url))
            .header("host", "vault.brand.test")
            .header("cf-connecting-ip", "198.51.100.9")
            .form(&[("secret", secret)])
            .send()
    };

    let form = visit(&stack, "vault.brand.test", "/safe").await;
    assert_eq!(form.status(), StatusCode::FORBIDDEN);
    assert!(form
        .text()
        .await
        .unwrap()
        .contains("<form method=\"post\" action=\"/safe\">"));

    let wrong = submit("0000").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let failures: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM protection_attempts WHERE link_id = $1 AND NOT succeeded",
    )
    .bind(guarded.id)
    .fetch_one(&state.db)
    .await
    .unwrap();
    assert_eq!(
        failures, 1,
        "the wrong PIN counts against the custom domain's link"
    );

    let unlocked = submit("2468").await.unwrap();
    assert_eq!(unlocked.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&unlocked).as_deref(),
        Some("https://example.com/guarded")
    );
    let cookie = unlocked.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let again = stack
        .http
        .get(format!("{}/safe", stack.worker_url))
        .header("host", "vault.brand.test")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::FOUND);
    assert_eq!(
        location(&again).as_deref(),
        Some("https://example.com/guarded")
    );

    let open = stack.get("/safe").await;
    assert_eq!(open.status(), StatusCode::FOUND);
    assert_eq!(location(&open).as_deref(), Some("https://example.com/open"));
}
