//! Polar billing: subscription events (`POST /webhooks/polar`) become the user's
//! `subscription_tier` (which sets their API rate limit on their next request).
//!
//! Every delivery is verified (Standard Webhooks signature, 5-minute tolerance) before anything
//! is stored. Events are stored in `webhook_events` (unique `event_id`) and processed exactly
//! once, in the same transaction that marks them processed; concurrent duplicate deliveries
//! serialise on the unique index. A delivery whose processing fails is stored unprocessed with
//! its error and answered 500, so Polar's retry processes it again.
//!
//! Events change a tier in the order Polar created them (their `timestamp`), not the order they
//! arrive: the user row remembers the time of the event that set its tier, and an older event
//! is stored and acknowledged (`superseded`) without changing it. Two events of the same instant
//! apply in arrival order.

pub mod signature;
pub mod tiers;

use crate::error::{AppError, Result};
use crate::users::SubscriptionTier;
use serde::Deserialize;
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

pub use tiers::ProductTiers;

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    /// When Polar created the event.
    timestamp: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    data: Value,
}

/// Stores a verified delivery and processes it exactly once; answers what became of it:
/// `processed`, `ignored` (not a subscription change), `superseded` (a newer event already set
/// the tier) or `duplicate` (processed before).
#[tracing::instrument(skip(db, products, body))]
pub async fn process(
    db: &PgPool,
    products: &ProductTiers,
    event_id: &str,
    body: &[u8],
) -> Result<&'static str> {
    let event: Event = serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("webhook body is not a Polar event: {e}")))?;
    let payload: Value = serde_json::from_slice(body).expect("parsed above");

    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO webhook_events (event_id, type, payload) VALUES ($1, $2, $3)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(&event.kind)
    .bind(&payload)
    .execute(&mut *tx)
    .await?;
    // A concurrent delivery of the same id waits here until the first one commits.
    let processed: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "SELECT processed_at FROM webhook_events WHERE event_id = $1 FOR UPDATE",
    )
    .bind(event_id)
    .fetch_one(&mut *tx)
    .await?;
    if processed.is_some() {
        tx.commit().await?;
        metrics::counter!(crate::metrics::WEBHOOKS_DUPLICATE).increment(1);
        return Ok("duplicate");
    }
    match apply(&mut tx, products, &event).await {
        Ok(outcome) => {
            sqlx::query(
                "UPDATE webhook_events SET processed_at = now(), last_error = NULL WHERE event_id = $1",
            )
            .bind(event_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            metrics::counter!(crate::metrics::WEBHOOKS_PROCESSED).increment(1);
            Ok(outcome)
        }
        Err(failure) => {
            tx.rollback().await?;
            // Keep the event, unprocessed, with the reason: Polar's retry will process it.
            sqlx::query(
                "INSERT INTO webhook_events (event_id, type, payload, last_error) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (event_id) DO UPDATE SET last_error = EXCLUDED.last_error",
            )
            .bind(event_id)
            .bind(&event.kind)
            .bind(&payload)
            .bind(&failure)
            .execute(db)
            .await?;
            metrics::counter!(crate::metrics::WEBHOOKS_FAILED).increment(1);
            Err(AppError::WebhookFailed(failure))
        }
    }
}

/// The tier a subscription event implies: `Ok(None)` when it changes nothing.
fn implied_tier(
    products: &ProductTiers,
    kind: &str,
    data: &Value,
) -> std::result::Result<Option<SubscriptionTier>, String> {
    if kind == "subscription.revoked" {
        return Ok(Some(SubscriptionTier::Free));
    }
    if !matches!(
        kind,
        "subscription.created"
            | "subscription.updated"
            | "subscription.active"
            | "subscription.canceled"
    ) {
        return Ok(None);
    }
    match data["status"].as_str().unwrap_or_default() {
        // Canceled at period end stays "active" until then.
        "active" | "trialing" => {
            let product = data["product_id"]
                .as_str()
                .or_else(|| data["product"]["id"].as_str())
                .ok_or("subscription has no product_id")?;
            products
                .0
                .get(product)
                .copied()
                .map(Some)
                .ok_or_else(|| format!("product {product} is not in POLAR_PRODUCT_TIERS"))
        }
        "canceled" | "revoked" | "unpaid" | "incomplete_expired" => {
            Ok(Some(SubscriptionTier::Free))
        }
        _ => Ok(None),
    }
}

/// Applies one event inside the caller's transaction; `Err` leaves it retryable.
async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    products: &ProductTiers,
    event: &Event,
) -> std::result::Result<&'static str, String> {
    let Some(tier) = implied_tier(products, &event.kind, &event.data)? else {
        return Ok("ignored");
    };
    let customer = &event.data["customer"];
    let external_id = customer["external_id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok());
    let email = customer["email"].as_str();
    // The row lock orders concurrent events of one user; the condition is checked again on the
    // row the other one committed, so the newest event wins whatever the arrival order.
    let updated = sqlx::query(
        "UPDATE users SET subscription_tier = $3, subscription_event_at = $4
          WHERE (id = $1 OR ($1 IS NULL AND lower(email) = lower($2)))
            AND (subscription_event_at IS NULL OR subscription_event_at <= $4)",
    )
    .bind(external_id)
    .bind(email)
    .bind(tier)
    .bind(event.timestamp)
    .execute(&mut **tx)
    .await
    .map_err(|e| format!("database: {e}"))?;
    if updated.rows_affected() > 0 {
        return Ok("processed");
    }
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 OR ($1 IS NULL AND lower(email) = lower($2)))",
    )
    .bind(external_id)
    .bind(email)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| format!("database: {e}"))?;
    if known {
        return Ok("superseded");
    }
    // The customer may sign up after paying: a later retry can still match.
    Err(format!(
        "no user matches customer external_id {external_id:?} / email {email:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn products() -> ProductTiers {
        "prod_pro=pro, prod_biz=business".parse().unwrap()
    }
    #[test]
    fn subscription_events_map_to_tiers() {
        let p = products();
        let active = json!({"status": "active", "product_id": "prod_biz"});
        for kind in [
            "subscription.created",
            "subscription.updated",
            "subscription.active",
        ] {
            assert_eq!(
                implied_tier(&p, kind, &active),
                Ok(Some(SubscriptionTier::Business))
            );
        }
        assert_eq!(
            implied_tier(&p, "subscription.canceled", &active),
            Ok(Some(SubscriptionTier::Business)),
            "canceled at period end keeps the tier until then"
        );
        let ended = json!({"status": "canceled", "product_id": "prod_biz"});
        assert_eq!(
            implied_tier(&p, "subscription.canceled", &ended),
            Ok(Some(SubscriptionTier::Free))
        );
        assert_eq!(
            implied_tier(&p, "subscription.revoked", &active),
            Ok(Some(SubscriptionTier::Free))
        );
        assert_eq!(implied_tier(&p, "order.created", &active), Ok(None));
        let past_due = json!({"status": "past_due", "product_id": "prod_biz"});
        assert_eq!(
            implied_tier(&p, "subscription.updated", &past_due),
            Ok(None)
        );
        let unknown = json!({"status": "active", "product_id": "prod_x"});
        assert!(implied_tier(&p, "subscription.updated", &unknown).is_err());
    }
}
