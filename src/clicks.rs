//! Clicks, batched per isolate and sent after the response (`ctx.wait_until`).
//!
//! Each redirect's click joins its isolate's open batch as the facts copied from its request
//! ([`Capture`]); the batch goes to ClickHouse as one `INSERT … FORMAT JSONEachRow` when it holds
//! `EDGE_CLICK_BATCH_SIZE` clicks or `EDGE_CLICK_FLUSH_MS` after its first click, whichever comes
//! first. The events (User-Agent classification, visitor hash, JSON) are built then, in one pass
//! by the request that sends the batch. If the insert fails (network, non-2xx) the whole batch
//! goes to the origin's `/internal/clicks` in one call, which stores it durably and replays it.
//! Only with both down is a batch lost; the visitor's redirect never waits.
//!
//! Who sends a batch: the request that filled it, else the one that opened it once its wait is
//! over, each in its own `wait_until`. So while clicks sit in memory, a request of this isolate
//! is still in flight and the runtime does not evict the isolate. The other requests of the
//! batch only add their click and hold no `wait_until` at all: workerd cancels a request whose
//! `wait_until` waits on I/O started by another request (as hung), so every send is issued and
//! awaited by one request.

use crate::config::ClickConfig;
use crate::fetch::{self, Auth};
use smo1_core::click::{self, ClickEvent, InsertTarget, VisitorRequest};
use smo1_core::link::LinkCacheRecord;
use smo1_core::visit::Click;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use wasm_bindgen::prelude::*;
use worker::worker_sys::ext::RequestExt;
use worker::{console_error, web_sys, Cf, Delay, Method};

const CLICKHOUSE_TIMEOUT: Duration = Duration::from_secs(5);
const ORIGIN_TIMEOUT: Duration = Duration::from_secs(10);

#[wasm_bindgen(inline_js = r#"
export function clickFacts(request, names) {
  const cf = request.cf || {};
  const headers = request.headers;
  let facts = "=" + crypto.randomUUID();
  const add = (v) => {
    facts += v == null ? "\0" : "\0=" + v;
  };
  add(cf.country);
  add(cf.region);
  add(cf.city);
  for (const name of names) add(headers.get(name));
  return facts;
}
"#)]
extern "C" {
    /// Everything a click takes from its request, in one call across the wasm boundary (each
    /// call there costs more than the value it fetches): a click id from the runtime's CSPRNG
    /// (`crypto.randomUUID()`), the edge's country, region and city (`request.cf`, absent under
    /// `wrangler dev`), then the headers `names`. NUL-separated, each present value after `=`
    /// (no header value holds a NUL).
    #[wasm_bindgen(js_name = clickFacts, catch)]
    fn click_facts(request: &web_sys::Request, names: &js_sys::Array) -> Result<String, JsValue>;
}

thread_local! {
    /// The headers [`click_facts`] reads, in the order [`capture`] takes them.
    static FACT_HEADERS: js_sys::Array = [
        click::HEADER_CLIENT_IP,
        "user-agent",
        "referer",
        click::HEADER_COUNTRY,
        click::HEADER_REGION,
        click::HEADER_CITY,
    ]
    .into_iter()
    .chain(click::PURPOSE_HEADERS)
    .map(JsValue::from_str)
    .collect();
}

/// What the click needs from the request, copied out so the event can be built when its batch
/// is sent.
pub struct Capture {
    click_id: String,
    now_unix: u32,
    record: Arc<LinkCacheRecord>,
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
    rule: Option<String>,
}

/// The visitor's country: the request's edge metadata (`request.cf`, absent under
/// `wrangler dev`), else the `CF-IPCountry` header.
pub fn country(req: &web_sys::Request, header: impl Fn(&str) -> Option<String>) -> Option<String> {
    req.cf()
        .and_then(|cf| Cf::from(cf).country())
        .or_else(|| header(click::HEADER_COUNTRY))
}

/// Copies the click's facts from the request's edge metadata (`request.cf`, absent under
/// `wrangler dev`) with header fallbacks. `None` when the runtime cannot make a click id.
pub fn capture(
    req: &web_sys::Request,
    method: &str,
    visit: Click<'_>,
    location: &str,
    now_unix: u32,
) -> Option<Capture> {
    let facts = match FACT_HEADERS.with(|names| click_facts(req, names)) {
        Ok(facts) => facts,
        Err(e) => {
            console_error!("no click id: {e:?}");
            return None;
        }
    };
    let mut facts = facts.split('\0').map(|fact| fact.strip_prefix('='));
    let mut next = || facts.next().flatten().map(str::to_owned);
    let click_id = next()?;
    let (cf_country, cf_region, cf_city) = (next(), next(), next());
    let (ip, user_agent, referrer) = (next(), next(), next());
    let (country, region, city) = (next(), next(), next());
    Some(Capture {
        click_id,
        now_unix,
        record: visit.record.clone(),
        location: location.to_owned(),
        method: method.to_owned(),
        ip: ip.unwrap_or_default(),
        user_agent: user_agent.unwrap_or_default(),
        referrer,
        country: cf_country.or(country),
        region: cf_region.or(region),
        city: cf_city.or(city),
        purpose: click::PURPOSE_HEADERS.iter().find_map(|_| next()),
        qr: visit.qr,
        rule: visit.rule.map(str::to_owned),
    })
}

impl Capture {
    /// The click's event; classifying the User-Agent is its costly part.
    fn event(self, visitor_salt: &str) -> ClickEvent {
        let request = VisitorRequest {
            method: &self.method,
            ip: &self.ip,
            user_agent: &self.user_agent,
            referrer: self.referrer.as_deref(),
            country: self.country.as_deref(),
            region: self.region.as_deref(),
            city: self.city.as_deref(),
            purpose: self.purpose.as_deref(),
            qr: self.qr,
            rule: self.rule.as_deref(),
        };
        ClickEvent::build(
            self.click_id,
            self.now_unix,
            &self.record,
            &self.location,
            &request,
            visitor_salt,
        )
    }
}

/// Adds the click to this isolate's open batch. Returns what this request must do after its
/// response (`ctx.wait_until`): send the batch now if this click filled it, or after the wait
/// if this click opened it; `None` when another request sends the batch.
pub fn record(capture: Capture, config: &Rc<ClickConfig>) -> Option<impl Future<Output = ()>> {
    let sending = match join(capture, config.batch_size) {
        Joined::Filled(captures) => Sending::Now(captures),
        Joined::Opened(batch) => Sending::AfterWait(batch),
        Joined::Added => return None,
    };
    let config = Rc::clone(config);
    Some(async move {
        let captures = match sending {
            Sending::Now(captures) => captures,
            Sending::AfterWait(batch) => {
                Delay::from(config.flush_after).await;
                close(&batch)
            }
        };
        if !captures.is_empty() {
            let events: Vec<ClickEvent> = captures
                .into_iter()
                .map(|capture| capture.event(&config.visitor_salt))
                .collect();
            send(&events, &config).await;
        }
    })
}

enum Sending {
    Now(Vec<Capture>),
    AfterWait(Batch),
}

type Batch = Rc<RefCell<Vec<Capture>>>;

thread_local! {
    /// The batch new clicks join until it is full or its wait is over.
    static OPEN: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

enum Joined {
    /// The click filled the batch: its request sends it now.
    Filled(Vec<Capture>),
    /// The click opened a batch: its request sends it when the wait is over (unless filled).
    Opened(Batch),
    /// The click joined a batch another request sends.
    Added,
}

fn join(capture: Capture, batch_size: usize) -> Joined {
    OPEN.with_borrow_mut(|open| {
        let (batch, opened) = match open {
            Some(batch) => (Rc::clone(batch), false),
            None => (Rc::clone(open.insert(Batch::default())), true),
        };
        let size = {
            let mut captures = batch.borrow_mut();
            captures.push(capture);
            captures.len()
        };
        if size >= batch_size {
            *open = None;
            Joined::Filled(batch.take())
        } else if opened {
            Joined::Opened(batch)
        } else {
            Joined::Added
        }
    })
}

/// Takes `batch`'s clicks and stops new ones joining it; empty if a click filled it meanwhile.
fn close(batch: &Batch) -> Vec<Capture> {
    OPEN.with_borrow_mut(|open| {
        if open.as_ref().is_some_and(|b| Rc::ptr_eq(b, batch)) {
            *open = None;
        }
    });
    batch.take()
}

/// Delivers `events`: ClickHouse first, the origin's outbox second, each in one request.
async fn send(events: &[ClickEvent], config: &ClickConfig) {
    let mut rows = Vec::with_capacity(events.len() * 512);
    for event in events {
        serde_json::to_writer(&mut rows, event).expect("a click event always serializes");
        rows.push(b'\n');
    }
    let rows = String::from_utf8(rows).expect("serde_json writes UTF-8");
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
    let direct = fetch::send(Method::Post, &url, auth, Some(rows), CLICKHOUSE_TIMEOUT).await;
    let failure = match direct {
        Ok(response) if (200..300).contains(&response.status_code()) => return,
        Ok(response) => format!("clickhouse answered {}", response.status_code()),
        Err(e) => format!("clickhouse {e}"),
    };
    let body = serde_json::to_string(events).expect("click events always serialize");
    let url = format!("{}/internal/clicks", config.origin_url);
    let auth = Auth::Bearer(&config.internal_secret);
    let lost = events.len();
    match fetch::send(Method::Post, &url, auth, Some(body), ORIGIN_TIMEOUT).await {
        Ok(response) if response.status_code() == 202 => {}
        Ok(response) => console_error!(
            "{lost} clicks lost: {failure}; origin answered {}",
            response.status_code()
        ),
        Err(e) => console_error!("{lost} clicks lost: {failure}; origin {e}"),
    }
}
