//! [`FetchTransport`]: the outbox's [`Transport`] over the worker's `fetch`.
//!
//! Any answer, whatever its status, is a response (the syncer classifies it); only a request
//! that got no answer (offline, reset connection, CORS failure) is a network error.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::outbox::{HttpRequest, HttpResponse, Transport, TransportError};

/// `fetch` from the current global scope (service worker, worker or window).
#[derive(Debug, Default, Clone, Copy)]
pub struct FetchTransport;

fn network(e: JsValue) -> TransportError {
    TransportError::Network(
        e.dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .or_else(|| e.as_string())
            .unwrap_or_else(|| format!("{e:?}")),
    )
}

async fn send(req: HttpRequest) -> Result<HttpResponse, JsValue> {
    let headers = web_sys::Headers::new()?;
    for (name, value) in &req.headers {
        headers.append(name, value)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method(req.method);
    init.set_headers(&headers);
    let body = js_sys::Uint8Array::from(req.body.as_slice());
    init.set_body(&body);
    let request = web_sys::Request::new_with_str_and_init(&req.url, &init)?;
    let global = js_sys::global();
    let promise = match global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        Some(worker) => worker.fetch_with_request(&request),
        None => js_sys::Reflect::get(&global, &"fetch".into())?
            .dyn_into::<js_sys::Function>()?
            .call1(&global, &request)?
            .dyn_into::<js_sys::Promise>()?,
    };
    let response: web_sys::Response = JsFuture::from(promise).await?.dyn_into()?;
    let mut out = HttpResponse::status(response.status());
    if let Some(retry_after) = response.headers().get("retry-after")? {
        out = out.with_header("retry-after", &retry_after);
    }
    let bytes = JsFuture::from(response.array_buffer()?).await?;
    Ok(out.with_body(js_sys::Uint8Array::new(&bytes).to_vec()))
}

impl Transport for FetchTransport {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        send(req).await.map_err(network)
    }
}
