//! [`FetchTransport`]: the outbox's [`Transport`] over the worker's `fetch`.
//!
//! Any answer, whatever its status, is a response (the syncer classifies it); only a request
//! that got no answer (offline, reset connection, CORS failure) is a network error. Two answers
//! are not taken as answers:
//!
//! - a request (headers and body) that takes longer than the deadline is aborted through its
//!   `AbortController` and reported as [`TransportError::Timeout`], so a connection that never
//!   answers cannot keep a flush running for ever;
//! - a redirect is not followed (`redirect: "manual"`): a captive portal or a moved endpoint
//!   must not turn a batch into a `200 text/html` that looks delivered. The opaque redirect is a
//!   network error, retried like one.

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::outbox::{HttpRequest, HttpResponse, Transport, TransportError};

/// Default deadline for one request, response body included.
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;

/// `fetch` from the current global scope (service worker, worker or window), with a deadline.
#[derive(Debug, Clone, Copy)]
pub struct FetchTransport {
    timeout_ms: u32,
}

impl Default for FetchTransport {
    fn default() -> Self {
        FetchTransport { timeout_ms: DEFAULT_TIMEOUT_MS }
    }
}

impl FetchTransport {
    /// A transport that aborts every request after `timeout_ms` (at least 1 ms).
    pub fn with_timeout_ms(timeout_ms: u32) -> FetchTransport {
        FetchTransport { timeout_ms: timeout_ms.max(1) }
    }

    /// The deadline of one request, in ms.
    pub fn timeout_ms(&self) -> u32 {
        self.timeout_ms
    }
}

fn message_of(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

fn fetch(request: &web_sys::Request) -> Result<js_sys::Promise, JsValue> {
    let global = js_sys::global();
    match global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        Some(worker) => Ok(worker.fetch_with_request(request)),
        None => js_sys::Reflect::get(&global, &"fetch".into())?
            .dyn_into::<js_sys::Function>()?
            .call1(&global, request)?
            .dyn_into::<js_sys::Promise>(),
    }
}

/// Why [`exchange`] got no response: the endpoint redirected, or `fetch` (or reading the body)
/// failed, which includes being aborted at the deadline.
enum NoAnswer {
    Redirect,
    Js(JsValue),
}

impl From<JsValue> for NoAnswer {
    fn from(e: JsValue) -> Self {
        NoAnswer::Js(e)
    }
}

async fn exchange(
    req: HttpRequest,
    signal: &web_sys::AbortSignal,
) -> Result<HttpResponse, NoAnswer> {
    let headers = web_sys::Headers::new()?;
    for (name, value) in &req.headers {
        headers.append(name, value)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method(req.method);
    init.set_headers(&headers);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    init.set_signal(Some(signal));
    let body = js_sys::Uint8Array::from(req.body.as_slice());
    init.set_body(&body);
    let request = web_sys::Request::new_with_str_and_init(&req.url, &init)?;
    let response: web_sys::Response = JsFuture::from(fetch(&request)?).await?.dyn_into()?;
    if response.type_() == web_sys::ResponseType::Opaqueredirect {
        return Err(NoAnswer::Redirect);
    }
    let mut out = HttpResponse::status(response.status());
    for name in ["retry-after", "content-type"] {
        if let Some(value) = response.headers().get(name)? {
            out = out.with_header(name, &value);
        }
    }
    let bytes = JsFuture::from(response.array_buffer()?).await?;
    Ok(out.with_body(js_sys::Uint8Array::new(&bytes).to_vec()))
}

impl Transport for FetchTransport {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        let url = req.url.clone();
        let controller =
            web_sys::AbortController::new().map_err(|e| TransportError::Network(message_of(&e)))?;
        let signal = controller.signal();
        let timed_out = Rc::new(Cell::new(false));
        let flag = Rc::clone(&timed_out);
        // Dropped (and so cleared) when this function returns, answered or not.
        let _deadline = Timeout::new(self.timeout_ms, move || {
            flag.set(true);
            controller.abort();
        });
        match exchange(req, &signal).await {
            Ok(response) => Ok(response),
            Err(_) if timed_out.get() => Err(TransportError::Timeout),
            Err(NoAnswer::Redirect) => Err(TransportError::Network(format!(
                "{url} answered with a redirect, which is not followed"
            ))),
            Err(NoAnswer::Js(e)) => Err(TransportError::Network(message_of(&e))),
        }
    }
}
