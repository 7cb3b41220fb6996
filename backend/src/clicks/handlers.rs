//! `POST /internal/clicks`: clicks the edge could not deliver to ClickHouse.

use super::outbox;
use crate::error::{AppError, Result};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use smo1_core::click::ClickEvent;

/// Takes a JSON array of click events and stores the valid ones durably in the outbox before
/// answering `202 {"accepted": n}`. Invalid events are refused with `400 invalid_click_event`
/// naming each one by index; the valid ones of the same batch are still stored.
#[tracing::instrument(skip_all)]
pub async fn receive(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>)> {
    let items: Vec<Value> = serde_json::from_slice(&body).map_err(|e| {
        AppError::InvalidClickEvents(format!("body must be a JSON array of click events: {e}"))
    })?;
    let mut valid = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match serde_json::from_value::<ClickEvent>(item)
            .map_err(|e| e.to_string())
            .and_then(|event| event.validate().map(|()| event))
        {
            Ok(event) => valid.push(event),
            Err(reason) => rejected.push(format!("#{index}: {reason}")),
        }
    }
    if !valid.is_empty() {
        outbox::store(&state.db, &valid).await?;
        metrics::counter!("smo1_clicks_received_total").increment(valid.len() as u64);
    }
    if rejected.is_empty() {
        return Ok((StatusCode::ACCEPTED, Json(json!({"accepted": valid.len()}))));
    }
    metrics::counter!("smo1_clicks_rejected_total").increment(rejected.len() as u64);
    Err(AppError::InvalidClickEvents(format!(
        "{} of {} events rejected ({}); the other {} were accepted",
        rejected.len(),
        rejected.len() + valid.len(),
        rejected.join("; "),
        valid.len()
    )))
}
