//! The PostgreSQL data model (SPEC §2) as the migrations create it.

use smo1_testkit::TestDb;
use sqlx::PgPool;

async fn pool(db: &TestDb) -> PgPool {
    PgPool::connect(&db.url).await.expect("connect")
}

async fn user(pool: &PgPool, email: &str) -> uuid::Uuid {
    sqlx::query_scalar("INSERT INTO users (email) VALUES ($1) RETURNING id")
        .bind(email)
        .fetch_one(pool)
        .await
        .expect("insert user")
}

fn constraint(error: sqlx::Error) -> String {
    error
        .as_database_error()
        .and_then(|e| e.constraint().map(str::to_owned))
        .unwrap_or_else(|| panic!("expected a constraint violation, got {error}"))
}

#[tokio::test]
async fn every_table_enum_and_extension_exists() {
    let db = TestDb::new().await;
    let pool = pool(&db).await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'
           AND table_name <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "achievements",
            "api_keys",
            "cache_invalidations",
            "click_outbox",
            "click_outbox_quarantine",
            "domains",
            "invites",
            "link_cache_invalidations",
            "links",
            "protection_attempts",
            "sign_in_tokens",
            "user_achievements",
            "users",
            "webhook_events",
            "xp_events"
        ]
    );
    let enums: Vec<String> =
        sqlx::query_scalar("SELECT typname::text FROM pg_type WHERE typtype = 'e' ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        enums,
        [
            "achievement_category",
            "domain_status",
            "link_status",
            "protection_type",
            "subscription_tier",
            "xp_event_type"
        ]
    );
    let extensions: Vec<String> = sqlx::query_scalar(
        "SELECT extname::text FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(extensions, ["pg_trgm", "uuid-ossp"]);
}

/// Takes the queued cache invalidations, sorted.
async fn take_queued(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "WITH taken AS (DELETE FROM link_cache_invalidations RETURNING slug)
         SELECT slug FROM taken ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("take queued")
}

#[tokio::test]
async fn link_changes_queue_their_slugs_for_cache_invalidation_but_click_syncs_do_not() {
    let db = TestDb::new().await;
    let pool = pool(&db).await;
    let owner = user(&pool, "a@example.com").await;
    let run = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query(sql).execute(&pool).await.expect(sql) }
    };
    sqlx::query(
        "INSERT INTO links (user_id, uid, custom_slug, destination)
         VALUES ($1, 'uid0001', 'one', 'https://example.com/')",
    )
    .bind(owner)
    .execute(&pool)
    .await
    .expect("insert");
    assert_eq!(take_queued(&pool).await, ["one", "uid0001"]);
    run("UPDATE links SET total_clicks = 5").await;
    assert!(
        take_queued(&pool).await.is_empty(),
        "a click sync is not a change"
    );
    run("UPDATE links SET custom_slug = 'two'").await;
    assert_eq!(take_queued(&pool).await, ["one", "two", "uid0001"]);
    run("UPDATE links SET status = 'disabled'").await;
    assert_eq!(take_queued(&pool).await, ["two", "uid0001"]);
    run("DELETE FROM users").await;
    assert_eq!(
        take_queued(&pool).await,
        ["two", "uid0001"],
        "deleted with its owner"
    );
}

/// Takes the queued per-domain invalidations as `domain/slug` (`default`, and `-` for a domain's
/// own entry), sorted.
async fn take_queued_entries(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "WITH taken AS (DELETE FROM cache_invalidations RETURNING domain, slug)
         SELECT coalesce(domain, 'default') || '/' || coalesce(slug, '-') FROM taken ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("take queued entries")
}

#[tokio::test]
async fn domain_changes_queue_the_domain_and_its_links() {
    let db = TestDb::new().await;
    let pool = pool(&db).await;
    let owner = user(&pool, "a@example.com").await;
    let run = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query(sql).execute(&pool).await.expect(sql) }
    };
    sqlx::query(
        "INSERT INTO domains (id, user_id, hostname, verification_token)
         VALUES ('00000000-0000-0000-0000-0000000000d1', $1, 'go.brand.test', 'smo1-verify-0123456789')",
    )
    .bind(owner)
    .execute(&pool)
    .await
    .expect("insert domain");
    sqlx::query(
        "INSERT INTO links (user_id, uid, custom_slug, destination, domain_id)
         VALUES ($1, 'uid0001', 'one', 'https://example.com/', '00000000-0000-0000-0000-0000000000d1'),
                ($1, 'uid0002', 'one', 'https://example.com/', NULL)",
    )
    .bind(owner)
    .execute(&pool)
    .await
    .expect("the same custom slug on two domains");
    assert_eq!(
        take_queued_entries(&pool).await,
        [
            "default/one",
            "default/uid0002",
            "go.brand.test/one",
            "go.brand.test/uid0001"
        ]
    );
    assert_eq!(
        take_queued(&pool).await,
        ["one", "uid0002"],
        "the legacy queue has the default domain's slugs only"
    );
    run("UPDATE domains SET root_redirect = 'https://brand.example/'").await;
    assert_eq!(take_queued_entries(&pool).await, ["go.brand.test/-"]);
    run("UPDATE domains SET status = 'verified'").await;
    assert_eq!(
        take_queued_entries(&pool).await,
        [
            "go.brand.test/-",
            "go.brand.test/one",
            "go.brand.test/uid0001"
        ]
    );
    run("UPDATE domains SET last_checked_at = now(), failure_reason = 'x'").await;
    assert!(
        take_queued_entries(&pool).await.is_empty(),
        "a check that changes nothing served is not a change"
    );
    run("DELETE FROM domains").await;
    assert_eq!(
        take_queued_entries(&pool).await,
        [
            "go.brand.test/-",
            "go.brand.test/one",
            "go.brand.test/uid0001"
        ],
        "removed with its links"
    );
    assert!(take_queued(&pool).await.is_empty());
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM links")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 1, "the default domain's link stays");
}

#[tokio::test]
async fn custom_slugs_are_unique_only_where_set() {
    let db = TestDb::new().await;
    let pool = pool(&db).await;
    let owner = user(&pool, "a@example.com").await;
    let insert = |uid: &'static str, slug: Option<&'static str>| {
        sqlx::query(
            "INSERT INTO links (user_id, uid, custom_slug, destination) VALUES ($1, $2, $3, 'https://e.com/')",
        )
        .bind(owner)
        .bind(uid)
        .bind(slug)
        .execute(&pool)
    };
    insert("aaaaaaa", None).await.unwrap();
    insert("bbbbbbb", None).await.unwrap();
    insert("ccccccc", Some("mine")).await.unwrap();
    let error = insert("ddddddd", Some("mine")).await.unwrap_err();
    assert_eq!(constraint(error), "links_custom_slug_key");
    let error = insert("aaaaaaa", None).await.unwrap_err();
    assert_eq!(constraint(error), "links_uid_key");
}

#[tokio::test]
async fn emails_are_unique_regardless_of_case() {
    let db = TestDb::new().await;
    let pool = pool(&db).await;
    user(&pool, "Ann@Example.com").await;
    let error = sqlx::query("INSERT INTO users (email) VALUES ('ann@example.COM')")
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(constraint(error), "users_email_lower_key");
}

#[tokio::test]
async fn updated_at_follows_every_update() {
    let db = TestDb::new().await;
    let pool = pool(&db).await;
    let id = user(&pool, "t@example.com").await;
    sqlx::query("UPDATE users SET created_at = now() - interval '1 day', updated_at = now() - interval '1 day' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET display_name = 'T' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let fresh: bool = sqlx::query_scalar(
        "SELECT updated_at > now() - interval '1 minute' AND created_at < now() - interval '1 hour' FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(fresh);
}

#[tokio::test]
async fn slug_search_uses_the_trigram_index() {
    let db = TestDb::new().await;
    let pool = pool(&db).await;
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'links' AND indexdef LIKE '%gin_trgm_ops%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(indexes.len(), 1, "{indexes:?}");
}

#[tokio::test]
async fn protected_links_always_carry_a_hash() {
    let db = TestDb::new().await;
    let pool = pool(&db).await;
    let owner = user(&pool, "p@example.com").await;
    let error = sqlx::query(
        "INSERT INTO links (user_id, uid, destination, protection_type) VALUES ($1, 'ppppppp', 'https://e.com/', 'pin')",
    )
    .bind(owner)
    .execute(&pool)
    .await
    .unwrap_err();
    assert_eq!(constraint(error), "links_protection_hash_matches");
}

#[tokio::test]
async fn total_clicks_changes_do_not_move_a_links_version() {
    let db = TestDb::new().await;
    let pool = pool(&db).await;
    let owner = user(&pool, "v@example.com").await;
    let id: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO links (user_id, uid, destination, updated_at)
         VALUES ($1, 'vvvvvvv', 'https://e.com/', now() - interval '1 day') RETURNING id",
    )
    .bind(owner)
    .fetch_one(&pool)
    .await
    .unwrap();
    let version = || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT updated_at < now() - interval '1 hour' FROM links WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    sqlx::query("UPDATE links SET total_clicks = 42 WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        version().await,
        "a click count sync is not a change of the link"
    );
    sqlx::query("UPDATE links SET destination = 'https://e.com/new' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    assert!(!version().await, "a real change moves updated_at");
}
