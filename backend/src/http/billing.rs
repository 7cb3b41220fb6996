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
    let outcome = billing::process(
        &state.db,
        &state.config.billing.polar_product_tiers,
        &event_id,
        &body,
    )
    .await?;
    Ok(Json(json!({"status": outcome})))
}
