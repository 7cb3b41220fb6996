//! Passwordless sign-in and dashboard sessions against the real PostgreSQL, Redis and an SMTP
//! server (maildev from the root `package.json`, started per test on free ports).

mod common;

use smo1_origin::cache::Redis;
use smo1_origin::config::{Registration, SessionConfig, SignInConfig};
use smo1_origin::error::AppError;
use smo1_origin::mail::Mailer;
use smo1_origin::sessions::Sessions;
use smo1_origin::sign_in::{self, SignIn};
use smo1_testkit::{self as testkit, TestDb};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A test's own database and Redis key prefix.
struct Env {
    pool: PgPool,
    redis: Redis,
    prefix: String,
    // Dropped last: drops the database.
    _db: TestDb,
}

impl Env {
    async fn new() -> Self {
        let db = TestDb::new().await;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&db.url)
            .await
            .expect("connect to the test database");
        let prefix = testkit::redis_prefix();
        Self {
            redis: Redis::new(
                &testkit::redis_url(),
                prefix.clone(),
                testkit::redis_timeouts(),
            )
            .expect("redis client"),
            prefix,
            pool,
            _db: db,
        }
    }

    async fn user(&self, email: &str) -> Uuid {
        smo1_origin::users::repo::upsert_user(&self.pool, email)
            .await
            .expect("user")
    }

    fn sign_in(&self, config: SignInConfig, mailer: Option<Mailer>) -> SignIn {
        SignIn {
            db: self.pool.clone(),
            redis: self.redis.clone(),
            mailer,
            config: Arc::new(config),
        }
    }

    fn sessions(&self, idle: Duration, absolute: Duration) -> Sessions {
        Sessions::new(
            self.redis.clone(),
            &SessionConfig {
                session_idle: idle,
                session_absolute: absolute,
            },
        )
    }

    async fn users_named(&self, email: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM users WHERE lower(email) = lower($1)")
            .bind(email)
            .fetch_one(&self.pool)
            .await
            .expect("count users")
    }

    async fn redis_pttl(&self, key: &str) -> i64 {
        let mut conn = self.redis.conn().await.expect("redis");
        redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("PTTL")
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn is_invalid_link<T: std::fmt::Debug>(result: Result<T, AppError>) -> bool {
    matches!(result, Err(AppError::SignInLinkInvalid))
}

// ---------------------------------------------------------------- tokens and registration modes

#[tokio::test]
async fn closed_registration_issues_links_to_existing_users_only() {
    let env = Env::new().await;
    let ann = env.user("Ann@Example.com").await;

    let issued = sign_in::issue(
        &env.pool,
        Registration::Closed,
        " ann@example.COM ",
        Some(ip("203.0.113.7")),
    )
    .await
    .unwrap()
    .expect("an existing user gets a link");
    assert_eq!(issued.token.len(), sign_in::token::TOKEN_LEN);
    let ttl = issued.expires_at - chrono::Utc::now();
    assert!(ttl > chrono::TimeDelta::minutes(14) && ttl <= sign_in::TOKEN_TTL);

    // Stored as a hash, with whom and where it was for.
    let (email, user_id, requested_ip): (String, Option<Uuid>, String) = sqlx::query_as(
        "SELECT email, user_id, host(requested_ip) FROM sign_in_tokens WHERE token_hash = $1",
    )
    .bind(sign_in::token::hash(&issued.token).as_slice())
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        (email.as_str(), user_id, requested_ip.as_str()),
        ("ann@example.COM", Some(ann), "203.0.113.7")
    );
    let holds_token: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sign_in_tokens t WHERE strpos(t::text, $1) > 0)",
    )
    .bind(&issued.token)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(!holds_token, "the token itself must not be stored");

    let unknown = sign_in::issue(&env.pool, Registration::Closed, "bob@example.com", None)
        .await
        .unwrap();
    assert!(unknown.is_none(), "unknown emails get nothing under closed");
    assert!(matches!(
        sign_in::issue(&env.pool, Registration::Closed, "not-an-email", None).await,
        Err(AppError::Validation(_))
    ));
}

#[tokio::test]
async fn a_link_signs_in_exactly_once() {
    let env = Env::new().await;
    let ann = env.user("ann@example.com").await;
    let issued = sign_in::issue(&env.pool, Registration::Closed, "ann@example.com", None)
        .await
        .unwrap()
        .unwrap();
    let (a, b) = tokio::join!(
        sign_in::redeem(&env.pool, Registration::Closed, &issued.token),
        sign_in::redeem(&env.pool, Registration::Closed, &issued.token),
    );
    let winners: Vec<Uuid> = [a, b].into_iter().filter_map(Result::ok).collect();
    assert_eq!(
        winners,
        vec![ann],
        "two redemptions at once: exactly one wins"
    );
    assert!(is_invalid_link(
        sign_in::redeem(&env.pool, Registration::Closed, &issued.token).await
    ));
    let used: bool = sqlx::query_scalar("SELECT used_at IS NOT NULL FROM sign_in_tokens")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(used);
}

#[tokio::test]
async fn expired_unknown_and_malformed_links_are_one_error() {
    let env = Env::new().await;
    env.user("ann@example.com").await;
    let issued = sign_in::issue(&env.pool, Registration::Closed, "ann@example.com", None)
        .await
        .unwrap()
        .unwrap();
    sqlx::query("UPDATE sign_in_tokens SET expires_at = now() - interval '1 second'")
        .execute(&env.pool)
        .await
        .unwrap();
    let expired = sign_in::redeem(&env.pool, Registration::Closed, &issued.token).await;
    let unknown = sign_in::token::generate().secret;
    let unknown = sign_in::redeem(&env.pool, Registration::Closed, &unknown).await;
    let malformed = sign_in::redeem(&env.pool, Registration::Closed, "abc'; --").await;
    for result in [expired, unknown, malformed] {
        let error = result.unwrap_err();
        assert_eq!(error.code(), "sign_in_link_invalid");
        assert_eq!(error.status_code(), 400);
    }
    // An expired token stays unused; pruning removes it.
    let pruned = sign_in::repo::delete_expired(&env.pool, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(pruned, 1);
}

#[tokio::test]
async fn invite_registration_admits_invited_emails_and_creates_them() {
    let env = Env::new().await;
    let mode = Registration::Invite;
    assert!(sign_in::issue(&env.pool, mode, "cy@example.com", None)
        .await
        .unwrap()
        .is_none());

    assert!(sign_in::invite(&env.pool, "Cy@Example.com").await.unwrap());
    assert!(!sign_in::invite(&env.pool, "cy@example.com").await.unwrap());
    let issued = sign_in::issue(&env.pool, mode, "cy@example.com", None)
        .await
        .unwrap()
        .expect("invited");
    assert_eq!(env.users_named("cy@example.com").await, 0);
    let user = sign_in::redeem(&env.pool, mode, &issued.token)
        .await
        .unwrap();
    assert_eq!(env.users_named("cy@example.com").await, 1);
    let accepted: bool = sqlx::query_scalar("SELECT accepted_at IS NOT NULL FROM invites")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(accepted);

    // Now an existing user: the next link names them.
    let again = sign_in::issue(&env.pool, mode, "CY@example.com", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        sign_in::redeem(&env.pool, mode, &again.token)
            .await
            .unwrap(),
        user
    );

    // An invite withdrawn between the mail and the click lets nobody in.
    sign_in::invite(&env.pool, "dee@example.com").await.unwrap();
    let issued = sign_in::issue(&env.pool, mode, "dee@example.com", None)
        .await
        .unwrap()
        .unwrap();
    sqlx::query("DELETE FROM invites WHERE email = 'dee@example.com'")
        .execute(&env.pool)
        .await
        .unwrap();
    assert!(is_invalid_link(
        sign_in::redeem(&env.pool, mode, &issued.token).await
    ));
    assert_eq!(env.users_named("dee@example.com").await, 0);
}

#[tokio::test]
async fn open_registration_creates_the_user_at_the_first_sign_in() {
    let env = Env::new().await;
    let issued = sign_in::issue(&env.pool, Registration::Open, "eve@example.com", None)
        .await
        .unwrap()
        .expect("anyone may sign up");
    assert_eq!(
        env.users_named("eve@example.com").await,
        0,
        "not before the click"
    );
    let eve = sign_in::redeem(&env.pool, Registration::Open, &issued.token)
        .await
        .unwrap();
    let user = smo1_origin::users::repo::find(&env.pool, eve)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.email, "eve@example.com");

    // Registration closed between the mail and the click: that link no longer signs anyone up.
    let late = sign_in::issue(&env.pool, Registration::Open, "fay@example.com", None)
        .await
        .unwrap()
        .unwrap();
    assert!(is_invalid_link(
        sign_in::redeem(&env.pool, Registration::Closed, &late.token).await
    ));
    assert_eq!(env.users_named("fay@example.com").await, 0);
}

#[tokio::test]
async fn operators_get_a_link_for_existing_users_without_mail() {
    let env = Env::new().await;
    let ann = env.user("ann@example.com").await;
    let link = sign_in::operator_link(&env.pool, "https://links.example.com", "ANN@example.com")
        .await
        .unwrap();
    let token = link
        .strip_prefix("https://links.example.com/dashboard/sign-in/confirm?token=")
        .expect("a confirm link under PUBLIC_URL");
    assert_eq!(
        sign_in::redeem(&env.pool, Registration::Closed, token)
            .await
            .unwrap(),
        ann
    );
    assert!(matches!(
        sign_in::operator_link(&env.pool, "https://links.example.com", "nobody@example.com").await,
        Err(AppError::NotFound("user"))
    ));
}

// ---------------------------------------------------------------- request limits

#[tokio::test]
async fn requests_are_limited_per_email_and_per_ip() {
    let env = Env::new().await;
    env.user("ann@example.com").await;
    let service = env.sign_in(
        SignInConfig {
            limit_per_email: 3,
            limit_per_ip: 5,
            ..SignInConfig::default()
        },
        None,
    );
    let home = ip("198.51.100.1");
    for _ in 0..3 {
        service.request("ann@example.com", home).await.unwrap();
    }
    // Per email, whatever the address, the case, or whether the account exists.
    let over = service.request("ANN@example.com", ip("198.51.100.2")).await;
    assert!(
        matches!(over, Err(AppError::RateLimited { retry_after_secs }) if retry_after_secs > 0),
        "{over:?}"
    );
    for _ in 0..3 {
        service
            .request("ghost@example.com", ip("198.51.100.3"))
            .await
            .unwrap();
    }
    assert!(matches!(
        service
            .request("ghost@example.com", ip("198.51.100.3"))
            .await,
        Err(AppError::RateLimited { .. })
    ));

    // Per IP: the sixth request from one address is refused, whatever the email.
    service.request("a@example.com", home).await.unwrap();
    service.request("b@example.com", home).await.unwrap();
    let over = service.request("c@example.com", home).await.unwrap_err();
    assert_eq!(over.code(), "rate_limited");

    // IPv6 clients share their /64.
    let v6 = |suffix: &str| ip(&format!("2001:db8:7:7:{suffix}"));
    for i in 0..5 {
        service
            .request(&format!("v6-{i}@example.com"), v6(&format!("{i}::1")))
            .await
            .unwrap();
    }
    assert!(matches!(
        service.request("v6-x@example.com", v6("ffff::1")).await,
        Err(AppError::RateLimited { .. })
    ));
    service
        .request("v6-x@example.com", ip("2001:db8:7:8::1"))
        .await
        .unwrap();

    // Only limit counters under this test's prefix, and no email in any key.
    let mut conn = env.redis.conn().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", env.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    assert!(
        keys.iter()
            .all(|k| k.starts_with(&format!("{}rate:signin-", env.prefix)) && !k.contains('@')),
        "{keys:?}"
    );
}

// ---------------------------------------------------------------- mail

#[tokio::test]
async fn the_sign_in_mail_arrives_with_a_working_link() {
    let env = Env::new().await;
    let ann = env.user("ann@example.com").await;
    let maildev = testkit::MailDev::start().await;
    let mail = maildev.config();
    let mailer = Mailer::from_config(&mail)
        .unwrap()
        .expect("SMTP configured");
    let service = env.sign_in(
        SignInConfig {
            public_url: "https://links.example.com".into(),
            mail,
            ..SignInConfig::default()
        },
        Some(mailer),
    );

    // Unknown first: if it sent anything, it would arrive before Ann's.
    service
        .request("nobody@example.com", ip("192.0.2.1"))
        .await
        .unwrap();
    service
        .request("ann@example.com", ip("192.0.2.1"))
        .await
        .unwrap();
    testkit::eventually("the sign-in mail", || async {
        !maildev.try_inbox().await.unwrap_or_default().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let inbox = maildev.inbox().await;
    assert_eq!(inbox.len(), 1, "only Ann gets mail: {inbox:#?}");
    let email = &inbox[0];
    assert_eq!(email["to"][0]["address"], "ann@example.com");
    assert_eq!(email["from"][0]["address"], "sign-in@smo1.test");
    assert_eq!(email["subject"], "Your SMO1 sign-in link");

    let text = email["text"].as_str().expect("a plain text part");
    let prefix = "https://links.example.com/dashboard/sign-in/confirm?token=";
    let start = text.find(prefix).expect("the link in the text") + prefix.len();
    let token = &text[start..start + sign_in::token::TOKEN_LEN];
    let html = email["html"].as_str().expect("an HTML part");
    assert!(
        html.contains(&format!("href=\"{prefix}{token}\"")),
        "{html}"
    );

    assert_eq!(service.redeem(token).await.unwrap(), ann);
    assert!(is_invalid_link(service.redeem(token).await));
}

// ---------------------------------------------------------------- sessions

const DAY: Duration = Duration::from_secs(24 * 3600);

#[tokio::test]
async fn sessions_are_created_read_and_stored_by_hash() {
    let env = Env::new().await;
    let sessions = env.sessions(7 * DAY, 30 * DAY);
    let user = Uuid::new_v4();
    let new = sessions.create(user).await.unwrap();
    assert_eq!(new.id.len(), 43);
    let got = sessions.get(&new.id).await.unwrap().expect("live session");
    assert_eq!(got, new.session);
    assert_eq!(got.user_id, user);
    let absolute = got.absolute_expires_at - got.created_at;
    assert_eq!(absolute, chrono::TimeDelta::days(30));

    // Keys hold a hash of the id, never the id.
    let key = sessions.key(&new.id);
    assert!(key.starts_with(&format!("{}session:", env.prefix)));
    assert!(!key.contains(&new.id));
    let mut conn = env.redis.conn().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", env.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.iter().all(|k| !k.contains(&new.id)), "{keys:?}");
    let idle_ms = i64::try_from((7 * DAY).as_millis()).unwrap();
    let ttl = env.redis_pttl(&key).await;
    assert!(ttl > idle_ms - 5_000 && ttl <= idle_ms, "{ttl}");

    // Ids that are not ours cost no lookup and find nothing.
    assert!(sessions.get("nope").await.unwrap().is_none());
    let other = sessions.create(user).await.unwrap();
    assert_ne!(other.id, new.id);
    assert!(sessions
        .get(&smo1_origin::sign_in::token::generate().secret)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn using_a_session_refreshes_its_idle_expiry_at_most_once_a_minute() {
    let env = Env::new().await;
    let sessions = env.sessions(Duration::from_secs(600), DAY);
    let new = sessions.create(Uuid::new_v4()).await.unwrap();
    let key = sessions.key(&new.id);
    let mut conn = env.redis.conn().await.unwrap();

    // Used 30 s after the last refresh: within the resolution, no write.
    let _: () = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(570_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    sessions.get(&new.id).await.unwrap().unwrap();
    assert!(env.redis_pttl(&key).await <= 570_000);

    // Used after two idle minutes: back to the full idle bound.
    let _: () = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(480_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    sessions.get(&new.id).await.unwrap().unwrap();
    assert!(env.redis_pttl(&key).await > 595_000);
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_absolute_expiry() {
    let env = Env::new().await;
    let idle = env.sessions(Duration::from_secs(2), DAY);
    let session = idle.create(Uuid::new_v4()).await.unwrap();
    assert!(idle.get(&session.id).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert!(idle.get(&session.id).await.unwrap().is_none(), "idled out");

    // Used all the time, a session still ends at its absolute expiry, and its TTL never
    // reaches past it.
    let absolute = env.sessions(DAY, Duration::from_secs(3));
    let session = absolute.create(Uuid::new_v4()).await.unwrap();
    let key = absolute.key(&session.id);
    assert!(env.redis_pttl(&key).await <= 3_000);
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(absolute.get(&session.id).await.unwrap().is_some());
    }
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert!(absolute.get(&session.id).await.unwrap().is_none());
    assert_eq!(env.redis_pttl(&key).await, -2, "the key is gone");

    // The absolute bound is checked on read even if the key outlived it (e.g. restored).
    let session = absolute.create(Uuid::new_v4()).await.unwrap();
    let mut conn = env.redis.conn().await.unwrap();
    let _: () = redis::cmd("PERSIST")
        .arg(absolute.key(&session.id))
        .query_async(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert!(absolute.get(&session.id).await.unwrap().is_none());
}

#[tokio::test]
async fn sign_out_ends_one_session_and_sign_out_everywhere_ends_all() {
    let env = Env::new().await;
    let sessions = env.sessions(DAY, 30 * DAY);
    let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let laptop = sessions.create(ann).await.unwrap();
    let phone = sessions.create(ann).await.unwrap();
    let tablet = sessions.create(ann).await.unwrap();
    let bobs = sessions.create(bob).await.unwrap();

    assert!(sessions.delete(&laptop.id).await.unwrap());
    assert!(!sessions.delete(&laptop.id).await.unwrap(), "already ended");
    assert!(sessions.get(&laptop.id).await.unwrap().is_none());
    assert!(sessions.get(&phone.id).await.unwrap().is_some());

    assert_eq!(sessions.delete_all_for_user(ann).await.unwrap(), 2);
    for id in [&phone.id, &tablet.id] {
        assert!(sessions.get(id).await.unwrap().is_none());
    }
    assert!(
        sessions.get(&bobs.id).await.unwrap().is_some(),
        "others stay"
    );
    assert_eq!(sessions.delete_all_for_user(ann).await.unwrap(), 0);

    // Signing in again afterwards works as usual.
    let again = sessions.create(ann).await.unwrap();
    assert!(sessions.get(&again.id).await.unwrap().is_some());
    assert_eq!(sessions.delete_all_for_user(ann).await.unwrap(), 1);
}

// ---------------------------------------------------------------- Redis down

#[tokio::test]
async fn without_redis_sign_in_says_it_is_unavailable() {
    let env = Env::new().await;
    env.user("ann@example.com").await;
    let down = Redis::new(
        &format!("redis://127.0.0.1:{}", common::closed_port()),
        testkit::redis_prefix(),
        testkit::redis_timeouts(),
    )
    .unwrap();
    let sessions = Sessions::new(down.clone(), &SessionConfig::default());
    let service = SignIn {
        db: env.pool.clone(),
        redis: down,
        mailer: None,
        config: Arc::new(SignInConfig::default()),
    };
    let started = std::time::Instant::now();
    // Each call waits out one reconnect attempt of `Redis::conn` (about 1.5 s), no more.
    let results = [
        sessions.create(Uuid::new_v4()).await.map(|_| ()),
        sessions
            .get(&sign_in::token::generate().secret)
            .await
            .map(|_| ()),
        sessions
            .delete(&sign_in::token::generate().secret)
            .await
            .map(|_| ()),
        sessions
            .delete_all_for_user(Uuid::new_v4())
            .await
            .map(|_| ()),
        service.request("ann@example.com", ip("192.0.2.9")).await,
    ];
    for result in results {
        let error = result.unwrap_err();
        assert!(matches!(error, AppError::SignInUnavailable(_)), "{error:?}");
        assert_eq!(error.code(), "sign_in_unavailable");
        assert_eq!(error.status_code(), 503);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5 * 5),
        "no call waits long: {:?}",
        started.elapsed()
    );
    // Nothing was issued while limits could not be counted.
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM sign_in_tokens")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(tokens, 0);
}

/// Statuses of sign-in requests over HTTP, each claiming a new `x-forwarded-for` address.
async fn forwarded_requests(app: &common::TestApp, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..count {
        let response = app
            .http
            .post(app.url("/v1/auth/sign-in"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&serde_json::json!({"email": format!("u{i}@example.com")}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread")]
async fn the_per_ip_limit_believes_forwarded_for_only_from_a_trusted_proxy() {
    let limited = |c: &mut smo1_origin::config::OriginConfig| c.sign_in.limit_per_ip = 2;
    let app = common::TestApp::start_with(limited).await;
    assert_eq!(forwarded_requests(&app, 3).await, [202, 202, 429]);

    let app = common::TestApp::start_with(|c| {
        limited(c);
        c.client_address.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    assert_eq!(forwarded_requests(&app, 3).await, [202, 202, 202]);
}
