//! Achievements and XP.
//!
//! Progress is never incremented by events: [`evaluate`] derives it from facts in PostgreSQL
//! (links, UTM and protection use, creation streaks, `total_clicks`), so an event that arrives
//! twice, late or concurrently cannot miscount. XP is only ever an `xp_events` row, unique per
//! (user, type, reference): an award inserted twice is inserted once, and `users.xp` grows by
//! exactly the rows this call inserted. [`rebuild`] recomputes `xp`/`level` from the trail.

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// XP for each link created.
pub const LINK_CREATED_XP: i32 = 5;

/// Level for an XP total: level `n` starts at `50·(n−1)²` XP (0, 50, 200, 450, 800, …).
pub fn level_for(xp: i64) -> i32 {
    let mut level = 1;
    while xp >= level_start(level + 1) {
        level += 1;
    }
    level
}

/// XP at which `level` starts.
pub fn level_start(level: i32) -> i64 {
    50 * i64::from(level - 1).pow(2)
}

/// Adds the amounts of xp_events rows just inserted to the user's XP and level.
async fn credit(
    tx: &mut Transaction<'_, Postgres>,
    user_id: Uuid,
    inserted: i64,
) -> sqlx::Result<()> {
    if inserted == 0 {
        return Ok(());
    }
    let xp: i64 = sqlx::query_scalar("UPDATE users SET xp = xp + $2 WHERE id = $1 RETURNING xp")
        .bind(user_id)
        .bind(inserted)
        .fetch_one(&mut **tx)
        .await?;
    sqlx::query("UPDATE users SET level = $2 WHERE id = $1")
        .bind(user_id)
        .bind(level_for(xp))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Brings the user's achievements and XP up to date with the facts; returns the codes unlocked
/// by this call. Safe to call any number of times, concurrently.
#[tracing::instrument(skip(db))]
pub async fn evaluate(db: &PgPool, user_id: Uuid) -> sqlx::Result<Vec<String>> {
    let mut tx = db.begin().await?;
    // XP for every link created (catching up on any an earlier call missed).
    let link_xp: Option<i64> = sqlx::query_scalar(
        "WITH awarded AS (
             INSERT INTO xp_events (user_id, type, amount, reference)
             SELECT user_id, 'link_created', $2, id::text FROM links WHERE user_id = $1
             ON CONFLICT (user_id, type, reference) DO NOTHING
             RETURNING amount)
         SELECT sum(amount)::bigint FROM awarded",
    )
    .bind(user_id)
    .bind(LINK_CREATED_XP)
    .fetch_one(&mut *tx)
    .await?;
    credit(&mut tx, user_id, link_xp.unwrap_or(0)).await?;

    // Progress per category, from the facts.
    sqlx::query(
        "WITH facts AS (
             SELECT count(*) AS links,
                    count(*) FILTER (WHERE coalesce(utm_source, utm_medium, utm_campaign,
                                                    utm_term, utm_content) IS NOT NULL) AS utm,
                    count(*) FILTER (WHERE protection_type <> 'none') AS protection,
                    coalesce(sum(total_clicks), 0) AS clicks
               FROM links WHERE user_id = $1),
         days AS (
             SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date AS day FROM links WHERE user_id = $1),
         streak AS (
             SELECT coalesce(max(run), 0) AS days FROM (
                 SELECT count(*) AS run FROM (
                     SELECT day, day - (row_number() OVER (ORDER BY day))::int AS grp FROM days) d
                 GROUP BY grp) runs)
         INSERT INTO user_achievements (user_id, achievement_id, progress, unlocked_at)
         SELECT $1, a.id, p.value, CASE WHEN p.value >= a.threshold THEN now() END
           FROM achievements a
           JOIN facts f ON true JOIN streak s ON true
           CROSS JOIN LATERAL (SELECT CASE a.category
                 WHEN 'links' THEN f.links WHEN 'utm' THEN f.utm
                 WHEN 'protection' THEN f.protection WHEN 'clicks' THEN f.clicks
                 WHEN 'streak' THEN s.days END AS value) p
         ON CONFLICT (user_id, achievement_id) DO UPDATE
            SET progress = GREATEST(user_achievements.progress, EXCLUDED.progress),
                unlocked_at = coalesce(user_achievements.unlocked_at, EXCLUDED.unlocked_at)",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?;

    // XP for each unlocked achievement, once.
    let unlocked: Vec<(String, i32)> = sqlx::query_as(
        "INSERT INTO xp_events (user_id, type, amount, reference)
         SELECT ua.user_id, 'achievement_unlocked', a.xp_reward, a.code
           FROM user_achievements ua JOIN achievements a ON a.id = ua.achievement_id
          WHERE ua.user_id = $1 AND ua.unlocked_at IS NOT NULL
         ON CONFLICT (user_id, type, reference) DO NOTHING
         RETURNING reference, amount",
    )
    .bind(user_id)
    .fetch_all(&mut *tx)
    .await?;
    credit(
        &mut tx,
        user_id,
        unlocked.iter().map(|(_, xp)| i64::from(*xp)).sum(),
    )
    .await?;
    tx.commit().await?;
    for (code, _) in &unlocked {
        metrics::counter!(crate::metrics::ACHIEVEMENTS_UNLOCKED).increment(1);
        tracing::info!(%user_id, code, "achievement unlocked");
    }
    Ok(unlocked.into_iter().map(|(code, _)| code).collect())
}

/// [`evaluate`] after a change the user made (a link created, a link protected). The change
/// stands whatever happens here; a failed evaluation is caught up by the next one, since
/// progress is derived from the facts.
pub async fn catch_up(db: &PgPool, user_id: Uuid) {
    if let Err(e) = evaluate(db, user_id).await {
        tracing::warn!(error = %e, %user_id, "achievements not evaluated");
    }
}

/// Users whose stored XP or level differs from their `xp_events` trail: (id, stored xp, trail xp).
pub async fn drift(db: &PgPool) -> sqlx::Result<Vec<(Uuid, i64, i64)>> {
    sqlx::query_as(
        "SELECT u.id, u.xp, coalesce(sum(e.amount), 0)::bigint AS trail
           FROM users u LEFT JOIN xp_events e ON e.user_id = u.id
          GROUP BY u.id
         HAVING u.xp <> coalesce(sum(e.amount), 0)",
    )
    .fetch_all(db)
    .await
}

/// Recomputes every user's XP and level from `xp_events`; returns how many users changed.
pub async fn rebuild(db: &PgPool) -> sqlx::Result<u64> {
    let mut tx = db.begin().await?;
    let totals: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT u.id, coalesce(sum(e.amount), 0)::bigint
           FROM users u LEFT JOIN xp_events e ON e.user_id = u.id
          GROUP BY u.id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut changed = 0;
    for (id, xp) in totals {
        changed += sqlx::query(
            "UPDATE users SET xp = $2, level = $3 WHERE id = $1 AND (xp <> $2 OR level <> $3)",
        )
        .bind(id)
        .bind(xp)
        .bind(level_for(xp))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_grow_quadratically() {
        assert_eq!(level_for(0), 1);
        assert_eq!(level_for(49), 1);
        assert_eq!(level_for(50), 2);
        assert_eq!(level_for(199), 2);
        assert_eq!(level_for(200), 3);
        assert_eq!(level_start(4), 450);
    }
}
