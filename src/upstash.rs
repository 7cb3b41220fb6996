//! A small typed client for the Upstash REST protocol over `worker::Fetch`.
//!
//! `upstash-redis-rs` targets native reqwest, not `worker::Fetch`, so it does not build for the
//! Workers runtime (see docs/DEPENDENCIES.md); the edge needs one command, `GET`.

use crate::fetch::{self, Auth, FetchError};
use serde::Deserialize;
use std::time::Duration;
use worker::Method;

/// Redis answers within milliseconds; past this the edge falls back to the origin.
const TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Deserialize)]
struct Reply {
    result: Option<serde_json::Value>,
    error: Option<String>,
}

#[derive(Debug)]
pub enum UpstashError {
    Fetch(FetchError),
    Status(u16, String),
    Protocol(String),
}

impl std::fmt::Display for UpstashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fetch(e) => write!(f, "upstash {e}"),
            Self::Status(status, msg) => write!(f, "upstash answered {status}: {msg}"),
            Self::Protocol(msg) => write!(f, "upstash protocol error: {msg}"),
        }
    }
}

pub struct Upstash<'a> {
    pub url: &'a str,
    pub token: &'a str,
}

impl Upstash<'_> {
    /// `GET key`: the string value, or `None` when the key does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<String>, UpstashError> {
        let body = serde_json::json!(["GET", key]).to_string();
        let mut response = fetch::send(
            Method::Post,
            self.url,
            Auth::Bearer(self.token),
            Some(body),
            TIMEOUT,
        )
        .await
        .map_err(UpstashError::Fetch)?;
        let status = response.status_code();
        let text = response
            .text()
            .await
            .map_err(|e| UpstashError::Protocol(e.to_string()))?;
        let reply: Reply = serde_json::from_str(&text)
            .map_err(|_| UpstashError::Status(status, text.chars().take(200).collect()))?;
        if let Some(error) = reply.error {
            return Err(UpstashError::Status(status, error));
        }
        match reply.result {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(value)) => Ok(Some(value)),
            Some(other) => Err(UpstashError::Protocol(format!(
                "GET returned a non-string: {other}"
            ))),
        }
    }
}
