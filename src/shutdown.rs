//! Stopping the server on a signal. SIGTERM drains: the server stops
//! accepting connections, lets the open ones finish what they are doing
//! (for at most [`SHUTDOWN_TIMEOUT_SECS`]), then exits. SIGINT and SIGQUIT
//! stop at once.
//!
//! Why not actix's own graceful stop: in actix-server 2.6 a worker may see
//! its connection channel close (the accept thread stopping) before it sees
//! the stop command, and then exits at once, dropping the requests it was
//! serving (fixed upstream in actix/actix-net#945, in releases that need a
//! newer Rust than this crate's `rust-version`). Pausing the accept thread
//! and waiting for the open connections to close ourselves avoids that path:
//! when the server is finally stopped, no connection is left to drop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;

/// How long open connections may take to finish after SIGTERM before the
/// server exits anyway.
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 30;
/// How often the drain checks whether every connection has closed.
const DRAIN_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The connections this process has open, counted from accept to close
/// (a connection's guard lives in its extensions, dropped with it).
#[derive(Clone, Default)]
pub struct OpenConnections(Arc<AtomicUsize>);

/// Counts one open connection until dropped.
pub struct ConnectionGuard(Arc<AtomicUsize>);

impl OpenConnections {
    /// Counts a newly accepted connection.
    #[must_use]
    pub fn open(&self) -> ConnectionGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        ConnectionGuard(Arc::clone(&self.0))
    }

    /// How many connections are open now.
    #[must_use]
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits for a stop signal, then stops the server: drained on SIGTERM, at
/// once on SIGINT or SIGQUIT.
#[cfg(unix)]
pub async fn stop_on_signal(handle: ServerHandle, connections: OpenConnections) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt), Ok(mut quit)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
    ) else {
        tracing::error!("cannot listen for signals: stop the server with SIGKILL");
        return;
    };
    let graceful = tokio::select! {
        _ = terminate.recv() => true,
        _ = interrupt.recv() => false,
        _ = quit.recv() => false,
    };
    if graceful {
        drain(&handle, &connections).await;
    } else {
        tracing::info!("interrupted: stopping at once");
    }
    handle.stop(false).await;
}

/// Waits for Ctrl-C, then stops the server at once (no SIGTERM here).
#[cfg(not(unix))]
pub async fn stop_on_signal(handle: ServerHandle, _connections: OpenConnections) {
    if tokio::signal::ctrl_c().await.is_ok() {
        handle.stop(false).await;
    }
}

/// Stops accepting, then waits until every open connection has closed (an
/// idle keep-alive connection closes within actix's keep-alive time) or
/// [`SHUTDOWN_TIMEOUT_SECS`] have passed.
async fn drain(handle: &ServerHandle, connections: &OpenConnections) {
    tracing::info!(
        open = connections.count(),
        "SIGTERM: no longer accepting; finishing the open connections"
    );
    handle.pause().await;
    let deadline = Instant::now() + Duration::from_secs(SHUTDOWN_TIMEOUT_SECS);
    while connections.count() > 0 {
        if Instant::now() >= deadline {
            tracing::warn!(
                open = connections.count(),
                "shutdown timeout: closing the remaining connections"
            );
            return;
        }
        actix_web::rt::time::sleep(DRAIN_POLL_INTERVAL).await;
    }
    tracing::info!("every connection has closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_counts_until_its_guard_drops() {
        let connections = OpenConnections::default();
        let first = connections.open();
        let second = connections.open();
        assert_eq!(connections.count(), 2);
        drop(first);
        assert_eq!(connections.count(), 1);
        drop(second);
        assert_eq!(connections.count(), 0);
    }
}
