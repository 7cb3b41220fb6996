//! SMO1 edge worker: resolves `/{slug}` from the Upstash cache, falls back to the origin on a
//! miss, and answers with a redirect or a page. This file only wires events to handlers.

mod clicks;
mod clock;
mod config;
mod fetch;
mod origin;
mod protect;
mod recent;
mod redirect;
mod respond;
mod upstash;

use futures_util::task::AtomicWaker;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{self, Poll, Wake, Waker};
use wasm_bindgen::prelude::*;
use worker::{console_error, event, wasm_bindgen_futures, web_sys, worker_sys, Context, Env};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The fetch handler, exported as `#[event(fetch)]` would, but answering without a `Promise`
/// when it can: a hot link in this isolate's recent records needs no I/O before its response,
/// and the promise, task and microtask an async export costs per request were about a tenth of
/// the worker's time. The handler is polled once here; if it waits on I/O, the runtime drives it
/// to the end as a promise.
///
/// Takes and gives the runtime's own request and response: workers-rs' wrappers would cost
/// calls across the wasm boundary the redirect never needs.
#[wasm_bindgen]
pub fn fetch(req: web_sys::Request, env: Env, ctx: worker_sys::Context) -> JsValue {
    let ctx = Context::new(ctx);
    let mut answer: Pin<Box<dyn Future<Output = JsValue>>> =
        Box::pin(async move { response(redirect::handle(req, &env, &ctx).await) });
    let relay = Arc::new(Relay(AtomicWaker::new()));
    let waker = Waker::from(Arc::clone(&relay));
    match answer.as_mut().poll(&mut task::Context::from_waker(&waker)) {
        Poll::Ready(response) => response,
        Poll::Pending => {
            let rest = std::future::poll_fn(move |cx| {
                relay.0.register(cx.waker());
                answer.as_mut().poll(cx)
            });
            wasm_bindgen_futures::future_to_promise(async move { Ok(rest.await) }).into()
        }
    }
}

/// The waker of the first poll, which has no task behind it yet: it wakes whichever task polled
/// the handler last. Needed because some futures keep the waker of their first poll only
/// (`worker::Delay`, the timeout of every outgoing request).
struct Relay(AtomicWaker);

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.0.wake();
    }
}

/// The handler's response, or a bare 500 (logged) as `#[event(fetch)]` answers an error.
fn response(result: worker::Result<web_sys::Response>) -> JsValue {
    match result {
        Ok(response) => response.into(),
        Err(e) => {
            console_error!("{e}");
            worker::Response::error("INTERNAL SERVER ERROR", 500)
                .map(web_sys::Response::from)
                .map_or(JsValue::UNDEFINED, JsValue::from)
        }
    }
}
