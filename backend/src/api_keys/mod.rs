//! API keys: how integrations authenticate. A key is shown once, at creation; PostgreSQL keeps
//! only its SHA-256 hash and a short visible prefix for listings.

pub mod repo;
pub mod secret;

pub use repo::{ApiKey, Scope};

/// Creates a user with a first API key holding every scope, in one transaction; `None` when
/// the email is taken. Returns the user and the key's secret (shown once, never stored).
pub async fn bootstrap_user(
    db: &sqlx::PgPool,
    email: &str,
    display_name: Option<&str>,
    tier: crate::users::SubscriptionTier,
) -> sqlx::Result<Option<(crate::users::User, String)>> {
    let mut tx = db.begin().await?;
    let Some(user) = crate::users::repo::create(&mut *tx, email, display_name, tier).await? else {
        return Ok(None);
    };
    let key = secret::generate();
    repo::insert(
        &mut *tx,
        user.id,
        "bootstrap",
        &key.prefix,
        &key.hash,
        &Scope::ALL,
    )
    .await?;
    tx.commit().await?;
    Ok(Some((user, key.secret)))
}
