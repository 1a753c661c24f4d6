//! Who may call what: the `Host` check (DNS rebinding), the `Origin` check (other web pages) and
//! the bearer token on the read and admin endpoints.
//!
//! - Every request served by [`crate::serve`] must name an allowed host in `Host`: the listen
//!   address, `localhost`/`127.0.0.1`/`[::1]` with the listen port, or an `--allowed-host`.
//!   Anything else is 421: a page on `evil.example` whose name was re-pointed at 127.0.0.1 sends
//!   `Host: evil.example`, so it cannot read the API even though the browser thinks it is
//!   same-origin.
//! - A request carrying an `Origin` whose host and port differ from its `Host` comes from
//!   another site's page: `/api/*` and `/admin/*` refuse it (403), and `/v1/logs` accepts it
//!   only from a `--cors-origin`. Requests without `Origin` (curl, the device's own service
//!   worker for same-origin GETs, native clients) pass.
//! - With `--token`, `/api/*` and `/admin/*` require `Authorization: Bearer TOKEN` (401), like
//!   `/v1/logs` does in its handler.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// The `Host` values a collector answers to, lowercased.
#[derive(Debug, Clone)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// The hosts for a collector listening on `addr`, plus `extra` (`--allowed-host`); an extra
    /// name without a port is accepted bare and with the listen port.
    pub fn for_addr(addr: SocketAddr, extra: &[String]) -> Self {
        let port = addr.port();
        let ip = match addr {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        };
        let mut hosts = vec![
            format!("{ip}:{port}"),
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ];
        for host in extra {
            let host = host.trim().to_ascii_lowercase();
            if split_port(&host).1.is_none() {
                hosts.push(format!("{host}:{port}"));
            }
            hosts.push(host);
        }
        AllowedHosts(hosts)
    }

    /// Whether `host` (a `Host` header value) is one of them.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        self.0.contains(&host)
    }
}

/// Middleware: 421 unless `Host` is allowed.
pub async fn check_host(
    State(allowed): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    match host {
        Some(host) if allowed.allows(host) => next.run(request).await,
        Some(host) => ApiError::MisdirectedHost(format!(
            "this collector does not serve host {host:?} (see --allowed-host)"
        ))
        .into_response(),
        None => ApiError::MisdirectedHost("missing Host header".to_owned()).into_response(),
    }
}

/// Middleware for `/api/*` and `/admin/*`: same-origin only, and the token when configured.
pub async fn protect(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Err(e) = same_origin(request.headers()) {
        return e.into_response();
    }
    if let Err(e) = crate::auth::check(state.config().token.as_deref(), request.headers()) {
        return e.into_response();
    }
    next.run(request).await
}

/// Middleware for `/v1/logs`: same-origin, or an origin from `--cors-origin`.
pub async fn logs_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if same_origin(request.headers()).is_err() {
        let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let listed = origin.is_some_and(|o| {
            state.config().cors_origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(o))
        });
        if !listed {
            return ApiError::Forbidden(format!(
                "origin {} may not send logs here (see --cors-origin)",
                origin.unwrap_or("<invalid>")
            ))
            .into_response();
        }
    }
    next.run(request).await
}

/// Ok when there is no `Origin`, or it names the same host and port as `Host`.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let forbidden = || {
        ApiError::Forbidden(format!(
            "cross-origin request refused (Origin {:?})",
            origin.to_str().unwrap_or("<invalid>")
        ))
    };
    let origin = origin.to_str().map_err(|_| forbidden())?.trim().to_ascii_lowercase();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|h| h.trim().to_ascii_lowercase())
        .ok_or_else(forbidden)?;
    let (scheme, authority) = origin.split_once("://").ok_or_else(forbidden)?;
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return Err(forbidden()),
    };
    let with_port = |authority: &str, default: &str| -> String {
        match split_port(authority) {
            (name, Some(port)) => format!("{name}:{port}"),
            (name, None) => format!("{name}:{default}"),
        }
    };
    // This server speaks plain HTTP: a `Host` without a port means port 80.
    if with_port(authority, default_port) == with_port(&host, "80") {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// Splits `host[:port]` (IPv6 in brackets) into the name and the port, if any.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rfind(':') {
        Some(i)
            if !authority[i..].contains(']')
                && (!authority.starts_with('[') || authority[..i].ends_with(']')) =>
        {
            (&authority[..i], Some(&authority[i + 1..]))
        }
        _ => (authority, None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn allowed_hosts() {
        let hosts = AllowedHosts::for_addr("127.0.0.1:8080".parse().unwrap(), &["Box.lan".into()]);
        for (host, ok) in [
            ("127.0.0.1:8080", true),
            ("LOCALHOST:8080", true),
            ("[::1]:8080", true),
            ("box.lan", true),
            ("box.lan:8080", true),
            ("box.lan:9", false),
            ("localhost", false),
            ("evil.example:8080", false),
            ("127.0.0.1:8081", false),
        ] {
            assert_eq!(hosts.allows(host), ok, "{host}");
        }
    }

    #[test]
    fn same_origin_table() {
        for (origin, host, ok) in [
            (None, Some("127.0.0.1:8080"), true),
            (Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080"), true),
            (Some("http://LOCALHOST:8080"), Some("localhost:8080"), true),
            (Some("http://localhost"), Some("localhost"), true),
            (Some("http://localhost:80"), Some("localhost"), true),
            (Some("http://[::1]:8080"), Some("[::1]:8080"), true),
            (Some("http://evil.example"), Some("127.0.0.1:8080"), false),
            (Some("http://127.0.0.1:9999"), Some("127.0.0.1:8080"), false),
            (Some("https://127.0.0.1:8080"), Some("127.0.0.1:8080"), true),
            (Some("null"), Some("127.0.0.1:8080"), false),
            (Some("http://127.0.0.1:8080"), None, false),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(o) = origin {
                headers.insert(header::ORIGIN, HeaderValue::from_static(o));
            }
            if let Some(h) = host {
                headers.insert(header::HOST, HeaderValue::from_static(h));
            }
            assert_eq!(same_origin(&headers).is_ok(), ok, "{origin:?} {host:?}");
        }
    }
}
