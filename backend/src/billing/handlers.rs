//! The Polar webhook receiver and its event processing.

use super::signature::{self, Delivery, SignatureError};
use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::users::SubscriptionTier;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use std::str::FromStr;
use uuid::Uuid;

/// `POLAR_PRODUCT_TIERS`: which Polar product grants which tier (`prod_123=pro,prod_456=business`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductTiers(pub HashMap<String, SubscriptionTier>);

impl FromStr for ProductTiers {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (product, tier) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("{pair:?} is not product_id=tier"))?;
                let tier = match tier.trim() {
                    "free" => SubscriptionTier::Free,
                    "pro" => SubscriptionTier::Pro,
                    "business" => SubscriptionTier::Business,
                    other => return Err(format!("{other:?} is not free, pro or business")),
                };
                Ok((product.trim().to_owned(), tier))
            })
            .collect::<std::result::Result<_, _>>()
            .map(Self)
    }
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

#[tracing::instrument(skip_all)]
pub async fn polar(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>> {
    let secret = state.config.billing.polar_webhook_secret.expose();
    if secret.is_empty() {
        return Err(AppError::NotFound("endpoint"));
    }
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(SignatureError::Header(name))
    };
    let verified = (|| {
        let delivery = Delivery {
            id: header("webhook-id")?,
            timestamp: header("webhook-timestamp")?,
            signatures: header("webhook-signature")?,
        };
        signature::verify(secret, &delivery, &body, chrono::Utc::now().timestamp())?;
        Ok::<_, SignatureError>(delivery.id.to_owned())
    })();
    let event_id = match verified {
        Ok(id) => id,
        Err(SignatureError::Header(name)) => {
            return Err(AppError::BadRequest(format!(
                "missing or malformed {name} header"
            )))
        }
        Err(e) => {
            metrics::counter!("smo1_webhooks_rejected_total").increment(1);
            return Err(AppError::InvalidSignature(e.to_string()));
        }
    };
    let event: Event = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("webhook body is not a Polar event: {e}")))?;
    let payload: Value = serde_json::from_slice(&body).expect("parsed above");

    let mut tx = state.db.begin().await?;
    sqlx::query(
        "INSERT INTO webhook_events (event_id, type, payload) VALUES ($1, $2, $3)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event_id)
    .bind(&event.kind)
    .bind(&payload)
    .execute(&mut *tx)
    .await?;
    // A concurrent delivery of the same id waits here until the first one commits.
    let processed: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "SELECT processed_at FROM webhook_events WHERE event_id = $1 FOR UPDATE",
    )
    .bind(&event_id)
    .fetch_one(&mut *tx)
    .await?;
    if processed.is_some() {
        tx.commit().await?;
        metrics::counter!("smo1_webhooks_duplicate_total").increment(1);
        return Ok(Json(json!({"status": "duplicate"})));
    }
    match apply(&mut tx, &state.config.billing.polar_product_tiers, &event).await {
        Ok(outcome) => {
            sqlx::query(
                "UPDATE webhook_events SET processed_at = now(), last_error = NULL WHERE event_id = $1",
            )
            .bind(&event_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            metrics::counter!("smo1_webhooks_processed_total").increment(1);
            Ok(Json(json!({"status": outcome})))
        }
        Err(failure) => {
            tx.rollback().await?;
            // Keep the event, unprocessed, with the reason: Polar's retry will process it.
            sqlx::query(
                "INSERT INTO webhook_events (event_id, type, payload, last_error) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (event_id) DO UPDATE SET last_error = EXCLUDED.last_error",
            )
            .bind(&event_id)
            .bind(&event.kind)
            .bind(&payload)
            .bind(&failure)
            .execute(&state.db)
            .await?;
            metrics::counter!("smo1_webhooks_failed_total").increment(1);
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
    let updated = sqlx::query(
        "UPDATE users SET subscription_tier = $3
          WHERE id = $1 OR ($1 IS NULL AND lower(email) = lower($2))",
    )
    .bind(external_id)
    .bind(email)
    .bind(tier)
    .execute(&mut **tx)
    .await
    .map_err(|e| format!("database: {e}"))?;
    if updated.rows_affected() == 0 {
        // The customer may sign up after paying: a later retry can still match.
        return Err(format!(
            "no user matches customer external_id {external_id:?} / email {email:?}"
        ));
    }
    Ok("processed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn products() -> ProductTiers {
        "prod_pro=pro, prod_biz=business".parse().unwrap()
    }

    #[test]
    fn product_tiers_parse() {
        assert_eq!(products().0.len(), 2);
        assert!("prod=gold".parse::<ProductTiers>().is_err());
        assert!("nonsense".parse::<ProductTiers>().is_err());
        assert_eq!("".parse::<ProductTiers>(), Ok(ProductTiers::default()));
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
