//! [`Transport`]: the one HTTP exchange the syncer needs, injected.
//!
//! The web layer implements it with `fetch`; tests script it. A transport reports what the
//! server answered, whatever the status: deciding what a status means is the syncer's job
//! ([`super::retry::classify`]). Only a request that got no answer at all is a
//! [`TransportError`].

use std::future::Future;
use std::rc::Rc;

use super::error::TransportError;

/// An HTTP request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Always `"POST"` for OTLP export.
    pub method: &'static str,
    /// Absolute URL.
    pub url: String,
    /// Header names in lower case, values as sent.
    pub headers: Vec<(String, String)>,
    /// The body bytes (gzipped when `content-encoding: gzip` is among the headers).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// An HTTP response, any status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Response headers; at least `retry-after` must be passed on when present.
    pub headers: Vec<(String, String)>,
    /// Response body (read for `partialSuccess` on 2xx, kept as the reason otherwise).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with `status` and nothing else.
    pub fn status(status: u16) -> HttpResponse {
        HttpResponse { status, ..HttpResponse::default() }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> HttpResponse {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> HttpResponse {
        self.body = body.into();
        self
    }

    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Sends one request and waits for the whole response.
pub trait Transport {
    /// Sends `request`. `Err` only when no HTTP response arrived (the batch is then retried).
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>>;
}

impl<T: Transport + ?Sized> Transport for Rc<T> {
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> {
        (**self).send(request)
    }
}

impl<T: Transport + ?Sized> Transport for &T {
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> {
        (**self).send(request)
    }
}
