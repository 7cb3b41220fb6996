//! `POST /webhooks/polar`: Polar's subscription events, verified before anything is stored.

use crate::billing::{
    self,
    signature::{self, Delivery, SignatureError},
};
use crate::error::{AppError, Result};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// `webhook-id`, `webhook-timestamp` and `webhook-signature`.
fn delivery_headers(headers: &HeaderMap) -> Result<[String; 3], SignatureError> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(SignatureError::Header(name))
    };
    Ok([
        header("webhook-id")?,
        header("webhook-timestamp")?,
        header("webhook-signature")?,
    ])
}

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/polar", post(polar))
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
    let verified = match delivery_headers(&headers) {
        Ok([id, timestamp, signatures]) => {
            let (secret, body) = (secret.to_owned(), body.clone());
            // Bounded (one MAC over at most 64 KiB), but still CPU: off the async workers.
            tokio::task::spawn_blocking(move || {
                let delivery = Delivery {
                    id: &id,
                    timestamp: &timestamp,
                    signatures: &signatures,
                };
                signature::verify(&secret, &delivery, &body, chrono::Utc::now().timestamp())
                    .map(|()| id)
            })
            .await
            .map_err(|e| AppError::Internal(format!("signature check failed: {e}")))?
        }
        Err(e) => Err(e),
    };
    let event_id = match verified {
        Ok(id) => id,
        Err(e @ (SignatureError::Header(_) | SignatureError::TooManySignatures)) => {
            metrics::counter!(crate::metrics::WEBHOOKS_REJECTED).increment(1);
            return Err(AppError::BadRequest(e.to_string()));
        }
        Err(SignatureError::BodyTooLarge) => {
            metrics::counter!(crate::metrics::WEBHOOKS_REJECTED).increment(1);
            return Err(AppError::PayloadTooLarge {
                max_bytes: signature::MAX_BODY_BYTES,
            });
        }
        Err(e) => {
            metrics::counter!(crate::metrics::WEBHOOKS_REJECTED).increment(1);
            return Err(AppError::InvalidSignature(e.to_string()));
        }
    };
    let outcome = billing::process(
        &state.db,
        &state.config.billing.polar_product_tiers,
        &event_id,
        &body,
    )
    .await?;
    Ok(Json(json!({"status": outcome})))
}
