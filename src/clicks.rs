//! Sending one click event per redirect, after the response (`ctx.wait_until`).
//!
//! First choice: one `INSERT … FORMAT JSONEachRow` to ClickHouse over HTTP. If that fails
//! (network, non-2xx), the event goes to the origin's `/internal/clicks`, which stores it durably
//! and replays it. Only with both down is the click lost; the visitor's redirect never waits.

use crate::config::ClickConfig;
use crate::fetch::{self, Auth};
use smo1_core::click::{self, ClickEvent, InsertTarget, VisitorRequest};
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

/// What the click needs from the request, copied out so the event can be built after the
/// response is sent (User-Agent parsing is the expensive part).
pub struct Capture {
    click_id: String,
    now_unix: u32,
    record: LinkCacheRecord,
    location: String,
    method: String,
    ip: String,
    user_agent: String,
    referrer: Option<String>,
    country: Option<String>,
    region: Option<String>,
    city: Option<String>,
    purpose: Option<String>,
    qr: bool,
}

/// Copies the click's facts from the request's edge metadata (`request.cf`, absent under
/// `wrangler dev`) with header fallbacks. `None` when the runtime cannot make a click id.
pub fn capture(
    req: &Request,
    record: &LinkCacheRecord,
    location: &str,
    qr: bool,
    now_unix: u32,
) -> Option<Capture> {
    let headers = req.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let cf = req.cf();
    Some(Capture {
        click_id: random_uuid()?,
        now_unix,
        record: record.clone(),
        location: location.to_owned(),
        method: req.method().to_string(),
        ip: header(click::HEADER_CLIENT_IP).unwrap_or_default(),
        user_agent: header("user-agent").unwrap_or_default(),
        referrer: header("referer"),
        country: cf
            .and_then(|cf| cf.country())
            .or_else(|| header(click::HEADER_COUNTRY)),
        region: cf
            .and_then(|cf| cf.region())
            .or_else(|| header(click::HEADER_REGION)),
        city: cf
            .and_then(|cf| cf.city())
            .or_else(|| header(click::HEADER_CITY)),
        purpose: click::PURPOSE_HEADERS.iter().find_map(|h| header(h)),
        qr,
    })
}

/// Builds the event (after the response) and delivers it.
pub async fn record(capture: Capture, config: ClickConfig) {
    let request = VisitorRequest {
        method: &capture.method,
        ip: &capture.ip,
        user_agent: &capture.user_agent,
        referrer: capture.referrer.as_deref(),
        country: capture.country.as_deref(),
        region: capture.region.as_deref(),
        city: capture.city.as_deref(),
        purpose: capture.purpose.as_deref(),
        qr: capture.qr,
    };
    let event = ClickEvent::build(
        capture.click_id,
        capture.now_unix,
        &capture.record,
        &capture.location,
        &request,
        &config.visitor_salt,
    );
    send(event, config).await;
}

/// Delivers `event`: ClickHouse first, the origin's outbox second.
async fn send(event: ClickEvent, config: ClickConfig) {
    let row = serde_json::to_string(&event).expect("a click event always serializes");
    let target = InsertTarget::new(config.clickhouse_async_insert);
    let settings: String = target
        .settings
        .iter()
        .map(|(name, value)| format!("&{name}={value}"))
        .collect();
    let url = format!(
        "{}/?database={}&query=INSERT%20INTO%20{}%20FORMAT%20JSONEachRow{settings}",
        config.clickhouse_url, config.clickhouse_database, target.table
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
