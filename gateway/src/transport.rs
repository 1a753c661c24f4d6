//! [`HttpTransport`]: the syncer's one HTTP exchange over `reqwest`, with a deadline.

use std::time::Duration;

use edge_anomaly::outbox::{HttpRequest, HttpResponse, Transport, TransportError};

/// POSTs OTLP batches; any answer is passed on, only a request that got none is an error.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    /// A client whose requests give up after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| TransportError::Network(format!("HTTP client: {e}")))?;
        Ok(HttpTransport { client })
    }
}

impl Transport for HttpTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| TransportError::Network(format!("method {}: {e}", request.method)))?;
        let mut builder = self.client.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = builder.body(request.body).send().await.map_err(|e| {
            if e.is_timeout() {
                TransportError::Timeout
            } else {
                TransportError::Network(e.to_string())
            }
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| TransportError::Network(format!("reading the answer: {e}")))?
            .to_vec();
        Ok(HttpResponse { status, headers, body })
    }
}
