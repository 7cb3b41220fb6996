//! Extractors that answer bad input in the one error shape instead of axum's plain-text
//! rejections.
//!
//! Policy for request bodies and query strings: unknown fields are **rejected** (422
//! `validation_failed`, naming the field), so a misspelt option never silently does nothing.

use super::MAX_BODY_BYTES;
use crate::client_ip;
use crate::error::AppError;
use crate::state::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

/// `axum::Json`, with rejections as [`AppError`]s.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType,
        JsonRejection::JsonSyntaxError(e) => AppError::BadRequest(format!("malformed JSON: {e}")),
        // Well-formed JSON of the wrong shape: unknown field, wrong type, missing field.
        JsonRejection::JsonDataError(e) => AppError::Validation(e.body_text()),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge {
            max_bytes: MAX_BODY_BYTES,
        },
        other => AppError::BadRequest(other.body_text()),
    }
}

/// `axum::extract::Query`, with rejections as [`AppError`]s.
pub struct AppQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(AppError::Validation(e.body_text()))
            }
            Err(other) => Err(AppError::BadRequest(other.body_text())),
        }
    }
}

/// The earliest instant a date parameter may name: the Unix epoch.
pub const EARLIEST_INSTANT: &str = "1970-01-01T00:00:00Z";
/// The first instant a date parameter may no longer name (ClickHouse's `DateTime` ends in 2106).
pub const INSTANT_LIMIT: &str = "2100-01-01T00:00:00Z";

/// `at` (the parameter `name`), when it lies in the range every date parameter must
/// ([`EARLIEST_INSTANT`] to [`INSTANT_LIMIT`]): far-off dates parse but would overflow later
/// arithmetic and the stores, so they are refused before anything else looks at them.
pub fn supported_instant(
    name: &str,
    at: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, AppError> {
    let bound = |rfc3339| {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("the bounds are RFC 3339")
            .to_utc()
    };
    match at {
        Some(at) if at < bound(EARLIEST_INSTANT) || at >= bound(INSTANT_LIMIT) => {
            Err(AppError::Validation(format!(
                "{name} must be from {EARLIEST_INSTANT} and before {INSTANT_LIMIT}"
            )))
        }
        _ => Ok(at),
    }
}

/// Deserializes a field that distinguishes "absent" (`None`) from "null" (`Some(None)`), for
/// PATCH bodies: `#[serde(default, deserialize_with = "extract::nullable")]`.
pub fn nullable<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// The client address ([`crate::client_ip::client_ip`]): the TCP peer, or what a trusted proxy
/// says it is (`TRUSTED_PROXIES`, `CLIENT_IP_HEADER`).
pub struct ClientIp(pub std::net::IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .copied()
            .ok_or_else(|| AppError::Internal("the server records no peer address".into()))?;
        let config = &state.config.client_address;
        Ok(Self(client_ip::client_ip(
            peer.ip(),
            &parts.headers,
            &config.trusted_proxies,
            &config.client_ip_header,
        )))
    }
}
