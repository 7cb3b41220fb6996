//! Achievements and XP over real PostgreSQL: unlocks happen once under concurrent triggers,
//! XP always equals its audit trail, and the API reports progress.

mod common;

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use smo1_origin::achievements;

async fn xp_of(app: &TestApp, user: uuid::Uuid) -> (i64, i32, i64) {
    sqlx::query_as(
        "SELECT u.xp, u.level, (SELECT coalesce(sum(amount), 0)::bigint FROM xp_events WHERE user_id = u.id)
           FROM users u WHERE u.id = $1",
    )
    .bind(user)
    .fetch_one(&app.state.db)
    .await
    .unwrap()
}

async fn unlocked(app: &TestApp, user: uuid::Uuid) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT a.code FROM user_achievements ua JOIN achievements a ON a.id = ua.achievement_id
          WHERE ua.user_id = $1 AND ua.unlocked_at IS NOT NULL ORDER BY a.code",
    )
    .bind(user)
    .fetch_all(&app.state.db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_link_unlocks_an_achievement_and_earns_xp() {
    let app = TestApp::start().await;
    let user = app.api_user("new@example.com").await;
    let (status, _) = app
        .call(
            Method::POST,
            "/v1/links",
            &user.key,
            Some(json!({"destination": "https://example.com/", "utm": {"source": "mail"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    assert_eq!(unlocked(&app, user.id).await, ["links_1", "utm_1"]);
    // 5 for the link, 10 + 25 for the achievements.
    assert_eq!(xp_of(&app, user.id).await, (40, 1, 40));

    let (status, body) = app
        .call(Method::GET, "/v1/xp?limit=10", &user.key, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["xp"], 40);
    assert_eq!(body["level"], 1);
    assert_eq!(body["next_level_xp"], 50);
    assert_eq!(body["progress"], 0.8);
    let mut kinds: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "achievement_unlocked",
            "achievement_unlocked",
            "link_created"
        ]
    );

    let (status, body) = app
        .call(Method::GET, "/v1/achievements", &user.key, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let links_10 = body
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == "links_10")
        .unwrap();
    assert_eq!(links_10["progress"], 1);
    assert_eq!(links_10["threshold"], 10);
    assert_eq!(links_10["unlocked_at"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_triggers_unlock_each_achievement_once() {
    let app = TestApp::start().await;
    let user = app.api_user("busy@example.com").await;
    for i in 0..10 {
        sqlx::query(
            "INSERT INTO links (user_id, uid, destination, utm_campaign) VALUES ($1, $2, 'https://e.com/', 'c')",
        )
        .bind(user.id)
        .bind(format!("uid{i:04}"))
        .execute(&app.state.db)
        .await
        .unwrap();
    }

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let db = app.state.db.clone();
        tasks.spawn(async move { achievements::evaluate(&db, user.id).await.unwrap() });
    }
    let mut codes: Vec<String> = tasks.join_all().await.into_iter().flatten().collect();
    codes.sort();

    assert_eq!(
        codes,
        ["links_1", "links_10", "utm_1", "utm_10"],
        "each unlocked by one call"
    );
    // 10 links × 5 + 10 + 50 + 25 + 50.
    assert_eq!(xp_of(&app, user.id).await, (185, 2, 185));
    assert!(achievements::drift(&app.state.db).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn click_milestones_follow_total_clicks_once() {
    let app = TestApp::start().await;
    let user = app.api_user("popular@example.com").await;
    sqlx::query("INSERT INTO links (user_id, uid, destination, total_clicks) VALUES ($1, 'Pop0001', 'https://e.com/', 1500)")
        .bind(user.id)
        .execute(&app.state.db)
        .await
        .unwrap();

    let first = achievements::evaluate(&app.state.db, user.id)
        .await
        .unwrap();
    let again = achievements::evaluate(&app.state.db, user.id)
        .await
        .unwrap();

    let mut first = first;
    first.sort();
    assert_eq!(first, ["clicks_100", "clicks_1k", "links_1"]);
    assert!(again.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn seven_consecutive_days_make_a_streak() {
    let app = TestApp::start().await;
    let user = app.api_user("steady@example.com").await;
    for day in 0..7 {
        sqlx::query(
            "INSERT INTO links (user_id, uid, destination, created_at)
             VALUES ($1, $2, 'https://e.com/', now() - make_interval(days => $3))",
        )
        .bind(user.id)
        .bind(format!("day{day:04}"))
        .bind(day)
        .execute(&app.state.db)
        .await
        .unwrap();
    }
    achievements::evaluate(&app.state.db, user.id)
        .await
        .unwrap();
    assert!(unlocked(&app, user.id)
        .await
        .contains(&"streak_7".to_owned()));
}

#[tokio::test(flavor = "multi_thread")]
async fn rebuilding_xp_from_the_trail_finds_and_fixes_drift() {
    let app = TestApp::start().await;
    let user = app.api_user("drift@example.com").await;
    app.call(
        Method::POST,
        "/v1/links",
        &user.key,
        Some(json!({"destination": "https://example.com/"})),
    )
    .await;
    assert!(
        achievements::drift(&app.state.db).await.unwrap().is_empty(),
        "live state matches"
    );
    sqlx::query("UPDATE users SET xp = 999, level = 9 WHERE id = $1")
        .bind(user.id)
        .execute(&app.state.db)
        .await
        .unwrap();
    assert_eq!(
        achievements::drift(&app.state.db).await.unwrap(),
        [(user.id, 999, 15)]
    );

    assert_eq!(achievements::rebuild(&app.state.db).await.unwrap(), 1);

    assert_eq!(xp_of(&app, user.id).await, (15, 1, 15));
    assert!(achievements::drift(&app.state.db).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn xp_history_limits_are_validated() {
    let app = TestApp::start().await;
    let user = app.api_user("limits@example.com").await;
    let (status, body) = app
        .call(Method::GET, "/v1/xp?limit=0", &user.key, None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({"error": {"code": "validation_failed", "message": "limit must be between 1 and 100"}})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn protecting_a_link_unlocks_keeper_of_secrets() {
    let app = TestApp::start().await;
    let user = app.api_user("careful@example.com").await;
    let (_, link) = app
        .call(
            Method::POST,
            "/v1/links",
            &user.key,
            Some(json!({"destination": "https://example.com/"})),
        )
        .await;
    let id = link["id"].as_str().unwrap();
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/v1/links/{id}/protection"),
            &user.key,
            Some(json!({"type": "pin", "secret": "4321"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unlocked(&app, user.id).await, ["links_1", "protection_1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_total_clicks_sync_unlocks_click_milestones() {
    let app = TestApp::start().await;
    let user = app.api_user("clicked@example.com").await;
    let (_, link) = app
        .call(
            Method::POST,
            "/v1/links",
            &user.key,
            Some(json!({"destination": "https://example.com/"})),
        )
        .await;
    let mut rows = Vec::new();
    for i in 0..100 {
        let row = json!({
            "click_id": format!("c-{i}"), "clicked_at": 1_764_000_000 + i,
            "link_id": link["id"], "user_id": user.id.to_string(), "slug": link["slug"],
            "destination": "https://example.com/", "visitor_id": format!("v{i}"),
            "country": "", "region": "", "city": "", "device_type": "desktop", "browser": "",
            "browser_version": "", "os": "", "os_version": "", "referrer": "",
            "referrer_domain": "", "utm_source": "", "utm_medium": "", "utm_campaign": "",
            "utm_term": "", "utm_content": "", "method": "GET", "is_qr": 0, "is_bot": 0,
            "bot_reason": ""
        });
        rows.extend(serde_json::to_vec(&row).unwrap());
        rows.push(b'\n');
    }
    app.db
        .clickhouse()
        .insert_json_rows("link_clicks", &[], rows)
        .await
        .unwrap();

    smo1_testkit::eventually("clicks_100 unlocked by the sync", || async {
        unlocked(&app, user.id)
            .await
            .contains(&"clicks_100".to_owned())
    })
    .await;
    // 5 for the link, 10 for links_1, 50 for clicks_100.
    assert_eq!(xp_of(&app, user.id).await, (65, 2, 65));
}
