//! End to end: protected links through the built worker in workerd — the form, wrong entries and
//! the lockout counted by the origin in PostgreSQL, the unlock cookie, and protection changes.

mod support;

use reqwest::StatusCode;
use smo1_core::link::Protection;
use smo1_core::unlock;
use smo1_origin::links::{protection, service, Link};
use smo1_origin::users::repo;
use support::Stack;

const IP: &str = "198.51.100.7";

async fn protected(stack: &Stack, slug: &str, kind: Protection, secret: &str) -> Link {
    let user = repo::upsert_user(&stack.state.db, "owner@example.com")
        .await
        .expect("user");
    let input = service::CreateLink {
        custom_slug: Some(slug.into()),
        destination: "https://example.com/secret-plans".into(),
        ..Default::default()
    };
    let link = service::create(&stack.state, user, input)
        .await
        .expect("create link");
    protection::set(&stack.state, user, link.id, kind, secret.into())
        .await
        .expect("protect")
}

async fn submit(stack: &Stack, path: &str, secret: &str) -> reqwest::Response {
    stack
        .http
        .post(format!("{}{path}", stack.worker_url))
        .header("cf-connecting-ip", IP)
        .form(&[("secret", secret)])
        .send()
        .await
        .expect("post to worker")
}

async fn failed_attempts(stack: &Stack, link: &Link) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM protection_attempts
          WHERE link_id = $1 AND ip_address = $2::inet AND NOT succeeded",
    )
    .bind(link.id)
    .bind(IP)
    .fetch_one(&stack.state.db)
    .await
    .expect("count attempts")
}

fn cookie_of(response: &reqwest::Response) -> String {
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_form_is_served_and_a_head_has_no_body() {
    let stack = Stack::start().await;
    protected(&stack, "vault", Protection::Pin, "4821").await;

    let response = stack.get("/vault?ref=tw").await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<form method=\"post\" action=\"/vault?ref=tw\">"),
        "{html}"
    );
    assert!(html.contains("<label for=\"secret\">PIN</label>"));
    assert!(!html.contains("cannot ask for yet"));
    let cached = stack.cached("vault").await.expect("cached");
    assert!(cached.contains("\"protection\":\"pin\""));
    assert!(
        !cached.contains("argon2"),
        "the hash never reaches the edge"
    );

    let head = stack.head("/vault").await;
    assert_eq!(head.status(), StatusCode::FORBIDDEN);
    assert!(head.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_pins_are_counted_and_the_sixth_attempt_is_locked_out() {
    let stack = Stack::start().await;
    let link = protected(&stack, "vault", Protection::Pin, "4821").await;

    let response = submit(&stack, "/vault", "0000").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get("set-cookie").is_none());
    let html = response.text().await.unwrap();
    assert!(
        html.contains("role=\"alert\">That PIN is not right. 4 attempts left.</p>"),
        "{html}"
    );
    assert_eq!(failed_attempts(&stack, &link).await, 1);

    for _ in 0..4 {
        assert_eq!(
            submit(&stack, "/vault", "0000").await.status(),
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(failed_attempts(&stack, &link).await, 5);

    // Locked: even the right PIN is refused, and nothing more is recorded.
    let locked = submit(&stack, "/vault", "4821").await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (890..=900).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert!(locked.text().await.unwrap().contains("Too many attempts"));
    assert_eq!(failed_attempts(&stack, &link).await, 5);

    // Once the window has passed the right PIN opens the link.
    sqlx::query("UPDATE protection_attempts SET created_at = created_at - interval '16 minutes'")
        .execute(&stack.state.db)
        .await
        .unwrap();
    let response = submit(&stack, "/vault?ref=tw", "4821").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "https://example.com/secret-plans?ref=tw"
    );
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(set_cookie.starts_with("smo1_unlock_vault="), "{set_cookie}");
    assert!(
        set_cookie.ends_with("; Path=/vault; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"),
        "{set_cookie}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cookie_skips_the_form_and_a_forged_one_does_not() {
    let stack = Stack::start().await;
    protected(&stack, "diary", Protection::Password, "correct horse").await;
    let unlocked = submit(&stack, "/diary", "correct horse").await;
    assert_eq!(unlocked.status(), StatusCode::SEE_OTHER);
    let cookie = cookie_of(&unlocked);

    let again = stack
        .http
        .get(format!("{}/diary", stack.worker_url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::FOUND);
    assert_eq!(
        again.headers()["location"],
        "https://example.com/secret-plans"
    );

    let (name, value) = cookie.split_once('=').unwrap();
    let (expires, mac) = value.split_once('.').unwrap();
    let later: i64 = expires.parse::<i64>().unwrap() + 86_400;
    for forged in [
        format!("{name}={later}.{mac}"),
        format!("{name}={expires}.{}", "0".repeat(64)),
        format!("{name}=garbage"),
        format!("{}={value}", unlock::cookie_name("other")),
    ] {
        let response = stack
            .http
            .get(format!("{}/diary", stack.worker_url))
            .header("cookie", &forged)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{forged}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clicks_are_recorded_for_the_redirect_only() {
    let stack = Stack::start().await;
    protected(&stack, "counted", Protection::Pin, "4821").await;
    assert_eq!(stack.get("/counted").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        submit(&stack, "/counted", "1111").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        submit(&stack, "/counted", "4821").await.status(),
        StatusCode::SEE_OTHER
    );

    stack
        .eventually("1 click in ClickHouse", || async {
            stack.clicks_in_clickhouse().await >= 1
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        stack.clicks_in_clickhouse().await,
        1,
        "form views are not clicks"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn clearing_or_changing_protection_shows_within_the_link_cache_bound() {
    let stack = Stack::start().await;
    let link = protected(&stack, "toggle", Protection::Pin, "4821").await;
    let unlocked = submit(&stack, "/toggle", "4821").await;
    let cookie = cookie_of(&unlocked);
    let with_cookie = || async {
        stack
            .http
            .get(format!("{}/toggle", stack.worker_url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(with_cookie().await.status(), StatusCode::FOUND);

    // A new PIN invalidates earlier unlocks.
    protection::set(
        &stack.state,
        link_owner(&stack).await,
        link.id,
        Protection::Pin,
        "9999".into(),
    )
    .await
    .unwrap();
    stack
        .within_link_cache_bound("a new PIN", || async {
            with_cookie().await.status() == StatusCode::FORBIDDEN
        })
        .await;

    protection::clear(&stack.state, link_owner(&stack).await, link.id)
        .await
        .unwrap();
    stack
        .within_link_cache_bound("clearing protection", || async {
            let response = stack.get("/toggle").await;
            response.status() == StatusCode::FOUND
                && response.headers()["location"] == "https://example.com/secret-plans"
        })
        .await;
}

async fn link_owner(stack: &Stack) -> uuid::Uuid {
    repo::upsert_user(&stack.state.db, "owner@example.com")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_posts_get_clear_answers() {
    let stack = Stack::start().await;
    let link = protected(&stack, "strict", Protection::Pin, "4821").await;
    let url = format!("{}/strict", stack.worker_url);

    let json = stack
        .http
        .post(&url)
        .json(&serde_json::json!({"secret": "4821"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(json.text().await.unwrap().contains("Unsupported request"));

    let huge = stack
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("secret={}", "1".repeat(10_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let empty = submit(&stack, "/strict", "").await;
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert!(empty
        .text()
        .await
        .unwrap()
        .contains("Enter the PIN to continue."));

    let binary = stack
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff_u8, 0xfe, 0x00, 0x3d])
        .send()
        .await
        .unwrap();
    assert_eq!(binary.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        failed_attempts(&stack, &link).await,
        0,
        "none of these is an attempt"
    );

    // POST to a link that is not protected, or to the home page.
    service::create(
        &stack.state,
        link_owner(&stack).await,
        service::CreateLink {
            custom_slug: Some("open".into()),
            destination: "https://example.com/".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let open = submit(&stack, "/open", "1234").await;
    assert_eq!(open.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(open.headers()["allow"], "GET, HEAD");
    assert_eq!(
        submit(&stack, "/", "1234").await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunked_form_is_read_only_up_to_its_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Stack::start().await;
    protected(&stack, "vault", Protection::Pin, "4821").await;
    let address = stack.worker_url.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket
        .write_all(
            b"POST /vault HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
    // Twice the limit, and then the body never ends: a worker that waits for all of it never
    // answers, one that stops at the limit answers at once.
    let chunk = format!("1000\r\n{}\r\n", "a".repeat(0x1000));
    for _ in 0..(2 * unlock::MAX_FORM_BYTES / 0x1000) {
        socket.write_all(chunk.as_bytes()).await.unwrap();
    }
    let mut answer = vec![0; 12];
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        socket.read_exact(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "no answer while the body was still open");
    assert_eq!(String::from_utf8_lossy(&answer), "HTTP/1.1 413");
}
