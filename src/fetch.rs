//! Outgoing HTTP with a deadline: a hung dependency must not hold a visitor longer than that.

use base64::Engine;
use futures_util::future::{select, Either};
use std::time::Duration;
use worker::wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, Response};

#[derive(Debug)]
pub enum FetchError {
    Timeout,
    Network(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out"),
            Self::Network(e) => write!(f, "network error: {e}"),
        }
    }
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    Bearer(&'a str),
    Basic { user: &'a str, password: &'a str },
}

impl Auth<'_> {
    fn header(self) -> String {
        match self {
            Self::Bearer(token) => format!("Bearer {token}"),
            Self::Basic { user, password } => {
                let pair = format!("{user}:{password}");
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
        }
    }
}

/// Sends one request with credentials and an optional JSON body, aborting after `timeout`.
pub async fn send(
    method: Method,
    url: &str,
    auth: Auth<'_>,
    json_body: Option<String>,
    timeout: Duration,
) -> Result<Response, FetchError> {
    let network = |e: worker::Error| FetchError::Network(e.to_string());
    let headers = Headers::new();
    headers
        .set("Authorization", &auth.header())
        .map_err(network)?;
    let mut init = RequestInit::new();
    init.with_method(method);
    if let Some(body) = json_body {
        headers
            .set("Content-Type", "application/json")
            .map_err(network)?;
        init.with_body(Some(JsValue::from_str(&body)));
    }
    init.with_headers(headers);
    let request = Request::new_with_init(url, &init).map_err(network)?;
    let controller = AbortController::default();
    let fetch = Fetch::Request(request);
    let signal = controller.signal();
    let sending = fetch.send_with_signal(&signal);
    let deadline = Delay::from(timeout);
    futures_util::pin_mut!(sending);
    match select(sending, deadline).await {
        Either::Left((response, _)) => response.map_err(network),
        Either::Right(_) => {
            controller.abort();
            Err(FetchError::Timeout)
        }
    }
}
