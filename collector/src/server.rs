//! The HTTP/1.1 accept loop, which can hard-reset a connection on a handler's request.
//!
//! `axum::serve` cannot drop a connection without answering, and the `reset` faults need exactly
//! that: the client must see a connection error, not a status. So this loop serves each
//! accepted socket with hyper directly and keeps a duplicate of its file descriptor. A handler
//! asks for a reset by returning [`reset_connection`]'s response, which carries a
//! [`ResetConnection`] marker; the per-connection service then withholds the response, sets
//! `SO_LINGER` to 0 on the socket and drops the connection, so the kernel sends a TCP RST
//! instead of a FIN (a FIN after a complete request could look like a clean, if empty, close).
//!
//! Served any other way (e.g. `tower::ServiceExt::oneshot` in tests), the marker response is
//! a plain 500 explaining that resets need [`serve`].

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::routes::app;
use crate::state::AppState;

/// Response extension asking the accept loop to reset the connection instead of answering.
#[derive(Debug, Clone, Copy)]
pub struct ResetConnection;

/// A response that [`serve`] turns into a TCP reset.
pub fn reset_connection() -> Response {
    let body = serde_json::json!({
        "error": "injected fault: connection reset (only effective when served by collector::serve)"
    })
    .to_string();
    let mut response =
        (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "application/json")], body)
            .into_response();
    response.extensions_mut().insert(ResetConnection);
    response
}

/// Serves the app on `listener` until the process ends.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    serve_with_shutdown(listener, state, std::future::pending()).await
}

/// Serves the app on `listener` until `shutdown` completes (connections in flight are dropped;
/// every request's storage is one transaction, so nothing half-written remains).
pub async fn serve_with_shutdown(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = app(state);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                tokio::spawn(serve_connection(stream, router.clone()));
            }
            Err(e) => {
                // E.g. EMFILE: back off briefly rather than spin or exit.
                crate::log::warn(format_args!("accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, router: Router) {
    let _ = stream.set_nodelay(true);
    // A second descriptor for the same socket, so we can set SO_LINGER after hyper owns the stream.
    let socket = socket2::SockRef::from(&stream).try_clone().ok();
    let can_reset = socket.is_some();
    let reset = Arc::new(Notify::new());
    let service = {
        let reset = Arc::clone(&reset);
        service_fn(move |request: Request<Incoming>| {
            let router = router.clone();
            let reset = Arc::clone(&reset);
            async move {
                let response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                if can_reset && response.extensions().get::<ResetConnection>().is_some() {
                    reset.notify_one();
                    // Never answer; the connection task drops this future with the connection.
                    std::future::pending::<()>().await;
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _result = connection.as_mut() => {}
        () = reset.notified() => {
            if let Some(socket) = &socket {
                let _ = socket.set_linger(Some(Duration::ZERO));
            }
            // Dropping the connection and `socket` closes both descriptors; with a zero
            // linger the last close sends RST.
        }
    }
}
