//! Sending one click event per redirect, after the response (`ctx.wait_until`).
//!
//! First choice: one `INSERT … FORMAT JSONEachRow` to ClickHouse over HTTP. If that fails
//! (network, non-2xx), the event goes to the origin's `/internal/clicks`, which stores it durably
//! and replays it. Only with both down is the click lost; the visitor's redirect never waits.

use crate::config::ClickConfig;
use crate::fetch::{self, Auth};
use smo1_core::click::{self, ClickEvent, VisitorRequest};
use smo1_core::link::LinkCacheRecord;
use std::time::Duration;
use worker::{console_error, Method, Request};

const CLICKHOUSE_TIMEOUT: Duration = Duration::from_secs(5);
const ORIGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A click id from the runtime's CSPRNG (`crypto.randomUUID()`).
fn random_uuid() -> Option<String> {
    use worker::wasm_bindgen::JsCast;
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).ok()?;
    let random_uuid = js_sys::Reflect::get(&crypto, &"randomUUID".into())
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    random_uuid.call0(&crypto).ok()?.as_string()
}

/// The event for a redirect of `record` to `location`, from the request's edge metadata
/// (`request.cf`, absent under `wrangler dev`) with header fallbacks.
pub fn build(
    req: &Request,
    record: &LinkCacheRecord,
    location: &str,
    qr: bool,
    now_unix: u32,
    salt: &str,
) -> Option<ClickEvent> {
    let headers = req.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let cf = req.cf();
    let country = cf
        .and_then(|cf| cf.country())
        .or_else(|| header(click::HEADER_COUNTRY));
    let region = cf
        .and_then(|cf| cf.region())
        .or_else(|| header(click::HEADER_REGION));
    let city = cf
        .and_then(|cf| cf.city())
        .or_else(|| header(click::HEADER_CITY));
    let ip = header(click::HEADER_CLIENT_IP).unwrap_or_default();
    let user_agent = header("user-agent").unwrap_or_default();
    let referrer = header("referer");
    let purpose = click::PURPOSE_HEADERS.iter().find_map(|h| header(h));
    let method = req.method();
    let request = VisitorRequest {
        method: method.as_ref(),
        ip: &ip,
        user_agent: &user_agent,
        referrer: referrer.as_deref(),
        country: country.as_deref(),
        region: region.as_deref(),
        city: city.as_deref(),
        purpose: purpose.as_deref(),
        qr,
    };
    Some(ClickEvent::build(
        random_uuid()?,
        now_unix,
        record,
        location,
        &request,
        salt,
    ))
}

/// Delivers `event`: ClickHouse first, the origin's outbox second.
pub async fn send(event: ClickEvent, config: ClickConfig) {
    let row = serde_json::to_string(&event).expect("a click event always serializes");
    let (table, settings) = if config.clickhouse_async_insert {
        ("link_clicks", "&async_insert=1&wait_for_async_insert=1")
    } else {
        ("link_clicks_buffer", "")
    };
    let url = format!(
        "{}/?database={}&query=INSERT%20INTO%20{table}%20FORMAT%20JSONEachRow{settings}",
        config.clickhouse_url, config.clickhouse_database
    );
    let auth = Auth::Basic {
        user: &config.clickhouse_user,
        password: &config.clickhouse_password,
    };
    let direct = fetch::send(Method::Post, &url, auth, Some(row), CLICKHOUSE_TIMEOUT).await;
    let failure = match direct {
        Ok(response) if (200..300).contains(&response.status_code()) => return,
        Ok(response) => format!("clickhouse answered {}", response.status_code()),
        Err(e) => format!("clickhouse {e}"),
    };
    let body = format!("[{}]", serde_json::to_string(&event).expect("serializes"));
    let url = format!("{}/internal/clicks", config.origin_url);
    let auth = Auth::Bearer(&config.internal_secret);
    match fetch::send(Method::Post, &url, auth, Some(body), ORIGIN_TIMEOUT).await {
        Ok(response) if response.status_code() == 202 => {}
        Ok(response) => console_error!(
            "click {} lost: {failure}; origin answered {}",
            event.click_id,
            response.status_code()
        ),
        Err(e) => console_error!("click {} lost: {failure}; origin {e}", event.click_id),
    }
}
