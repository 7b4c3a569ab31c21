//! Accepting connections: limits, implicit TLS, one task per session.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::limits::ConnectionLimiter;
use crate::session::{SessionContext, run_session};
use crate::{ListenerKind, Peer};

/// A bound listener and what it is for.
#[derive(Debug)]
pub struct Listener {
    pub kind: ListenerKind,
    pub tcp: TcpListener,
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections on `listener` until `shutdown` turns true, then
/// waits up to `grace` for open sessions to finish.
pub async fn serve(
    listener: Listener,
    ctx: Arc<SessionContext>,
    limiter: Arc<ConnectionLimiter>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut sessions = JoinSet::new();
    let kind = listener.kind;
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.tcp.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(listener = kind.as_str(), error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            // The guard wait_for yields is dropped inside, keeping this Send.
            () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => break,
        };
        // Reap finished sessions so the set does not grow.
        while sessions.try_join_next().is_some() {}
        let Ok(local) = stream.local_addr() else { continue };
        let _ = stream.set_nodelay(true);
        let peer = Peer { remote, local };
        let Some(slot) = limiter.admit(remote.ip()) else {
            tracing::info!(client = %remote, "connection refused: too many connections");
            crate::metrics::closed(kind, "too_many_connections");
            sessions.spawn(async move {
                let mut stream = stream;
                let _ = stream
                    .write_all(b"421 4.7.0 Too many connections; try again later\r\n")
                    .await;
                let _ = stream.shutdown().await;
            });
            continue;
        };
        let ctx = ctx.clone();
        let session = async move {
            let _slot = slot;
            if kind == ListenerKind::SubmissionTls {
                let Some(acceptor) = ctx.tls.clone() else { return };
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => run_session(tls, peer, kind, true, ctx).await,
                    Ok(Err(e)) => {
                        crate::metrics::closed(kind, "tls_failed");
                        tracing::debug!(client = %remote, error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        crate::metrics::closed(kind, "tls_failed");
                        tracing::debug!(client = %remote, "TLS handshake timed out");
                    }
                }
            } else {
                run_session(stream, peer, kind, false, ctx).await;
            }
        };
        // A bug that panics ends its own session only, and is logged with
        // the client it served (the connection slot is released on unwind).
        sessions.spawn(async move {
            if let Err(e) = tokio::spawn(session).await
                && e.is_panic()
            {
                let panic = e.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                tracing::error!(client = %remote, listener = kind.as_str(), panic = %message, "SMTP session ended by a bug");
            }
        });
    }
    let drain = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!(
            listener = kind.as_str(),
            "sessions still open after the shutdown grace period were cut off"
        );
    }
}
