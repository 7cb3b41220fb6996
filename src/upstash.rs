//! A small typed client for the Upstash REST protocol over `worker::Fetch`.
//!
//! `upstash-redis-rs` targets native reqwest, not `worker::Fetch`, so it does not build for the
//! Workers runtime (see docs/DEPENDENCIES.md); the edge needs one command, `GET`.
//!
//! Upstash answers within milliseconds. A call that times out, cannot connect or gets a 5xx
//! opens this isolate's circuit breaker ([`smo1_core::breaker`]): for `EDGE_REDIS_RETRY_AFTER_MS`
//! every lookup skips Upstash and goes straight to the origin, then one request probes. So an
//! Upstash outage costs one timeout per isolate and retry period, not one per request.

use crate::clock::now_ms;
use crate::fetch::{self, Auth, FetchError};
use serde::Deserialize;
use smo1_core::breaker::Breaker;
use std::cell::RefCell;
use std::time::Duration;
use worker::Method;

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
    /// Not asked: the breaker is open after a recent failure.
    Skipped,
}

impl std::fmt::Display for UpstashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fetch(e) => write!(f, "upstash {e}"),
            Self::Status(status, msg) => write!(f, "upstash answered {status}: {msg}"),
            Self::Protocol(msg) => write!(f, "upstash protocol error: {msg}"),
            Self::Skipped => f.write_str("upstash skipped: it failed moments ago"),
        }
    }
}

/// This isolate's Upstash client.
pub struct Upstash {
    url: String,
    token: String,
    timeout: Duration,
    breaker: RefCell<Breaker>,
}

impl Upstash {
    /// A client of `url` that gives up on a call after `timeout` and, after a failure, skips
    /// Upstash for `retry_after`.
    pub fn new(url: String, token: String, timeout: Duration, retry_after: Duration) -> Self {
        Self {
            url,
            token,
            timeout,
            // A probe's answer comes within `timeout`; past twice that it was cancelled.
            breaker: RefCell::new(Breaker::new(retry_after, timeout * 2)),
        }
    }

    /// `GET key`: the string value, or `None` when the key does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<String>, UpstashError> {
        if !self.breaker.borrow_mut().admit(now_ms()) {
            return Err(UpstashError::Skipped);
        }
        let result = self.call(key).await;
        let mut breaker = self.breaker.borrow_mut();
        match &result {
            Err(UpstashError::Fetch(_)) | Err(UpstashError::Status(500..=599, _)) => {
                breaker.failure(now_ms());
            }
            _ => {
                breaker.success();
            }
        }
        result
    }

    async fn call(&self, key: &str) -> Result<Option<String>, UpstashError> {
        let body = serde_json::json!(["GET", key]).to_string();
        let mut response = fetch::send(
            Method::Post,
            &self.url,
            Auth::Bearer(&self.token),
            Some(body),
            self.timeout,
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
