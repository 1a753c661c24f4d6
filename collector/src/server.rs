//! The HTTP/1.1 accept loop: a connection cap, the `Host` check, and connections that a
//! response can ask to reset or to leave hanging.
//!
//! `axum::serve` cannot drop a connection without answering, and two injected faults need
//! exactly that (see [`crate::conn_control`]). So this loop serves each accepted socket with
//! hyper directly and keeps a duplicate of its file descriptor:
//! - `Reset`: the response is withheld, `SO_LINGER` is set to 0 and the connection dropped, so
//!   the kernel sends a TCP RST instead of a FIN (a FIN after a complete request could look like
//!   a clean, if empty, close);
//! - `Hang`: hyper's side of the connection is dropped without a response, while the duplicate
//!   descriptor keeps the socket open; the loop then reads and discards until the client closes
//!   (or [`MAX_HANG`] passes), so the client sees a request that is never answered.
//!
//! At most `max_connections` connections are served at once: the loop takes a semaphore permit
//! before accepting, so further clients wait in the kernel's accept queue instead of costing
//! memory here.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Request;
use axum::middleware::from_fn_with_state;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tower::ServiceExt;

use crate::conn_control::ConnectionControl;
use crate::guard::{self, AllowedHosts};
use crate::routes::app;
use crate::state::AppState;

/// Longest a hanging connection is held open if the client never gives up.
pub const MAX_HANG: Duration = Duration::from_secs(600);
/// Time allowed for a request's headers to arrive (the body has its own limit).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
    let hosts = AllowedHosts::for_addr(listener.local_addr()?, &state.config().allowed_hosts);
    let permits = Arc::new(Semaphore::new(state.config().max_connections.max(1)));
    let router = app(state).layer(from_fn_with_state(Arc::new(hosts), guard::check_host));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => return Ok(()),
            permit = Arc::clone(&permits).acquire_owned() => permit,
        };
        let Ok(permit) = permit else {
            return Ok(()); // the semaphore is never closed
        };
        let accepted = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let router = router.clone();
                tokio::spawn(async move {
                    serve_connection(stream, router).await;
                    drop(permit);
                });
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
    // A second descriptor for the same socket, to reset it or keep it open after hyper is done.
    let socket = socket2::SockRef::from(&stream).try_clone().ok();
    let can_control = socket.is_some();
    let requested: Arc<Mutex<Option<ConnectionControl>>> = Arc::new(Mutex::new(None));
    let notify = Arc::new(Notify::new());
    let service = {
        let requested = Arc::clone(&requested);
        let notify = Arc::clone(&notify);
        service_fn(move |request: Request<Incoming>| {
            let router = router.clone();
            let requested = Arc::clone(&requested);
            let notify = Arc::clone(&notify);
            async move {
                let response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                let control = response.extensions().get::<ConnectionControl>().copied();
                if let (true, Some(control)) = (can_control, control) {
                    if let Ok(mut slot) = requested.lock() {
                        *slot = Some(control);
                    }
                    notify.notify_one();
                    // Never answer; the connection task drops this future with the connection.
                    std::future::pending::<()>().await;
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    // Boxed rather than pinned on the stack, so a hang can drop it while keeping the socket.
    let mut connection = Box::pin(
        http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service),
    );
    tokio::select! {
        _result = connection.as_mut() => return,
        () = notify.notified() => {}
    }
    let control = requested.lock().ok().and_then(|slot| *slot);
    let Some(socket) = socket else { return };
    match control {
        Some(ConnectionControl::Reset) | None => {
            let _ = socket.set_linger(Some(Duration::ZERO));
            // Dropping the connection and `socket` closes both descriptors; with a zero linger
            // the last close sends RST.
        }
        Some(ConnectionControl::Hang) => {
            drop(connection);
            hang(socket).await;
        }
    }
}

/// Keeps `socket` open and silent until the peer closes it or [`MAX_HANG`] passes.
async fn hang(socket: socket2::Socket) {
    let std_stream: std::net::TcpStream = socket.into();
    if std_stream.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(mut stream) = TcpStream::from_std(std_stream) else { return };
    let drain = async {
        let mut buf = [0u8; 4096];
        // Ok(0) is the client's FIN; an error is a reset. Either way it gave up.
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(MAX_HANG, drain).await;
}
