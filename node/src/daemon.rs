//! The node process: opens its data directory, starts the storage thread, serves the control
//! socket, and on shutdown stops accepting, finishes the requests in hand, waits for the
//! storage thread's last commit and removes the socket. Every write acknowledged before the
//! shutdown signal is durable, because every write is committed before it is acknowledged.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use crate::datadir::{DataDir, DataDirError};
use crate::service::Service;
use crate::storage::{StoreError, worker};

/// The node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Another node already runs on this directory.
    #[error("a node is already running on {0} (its database is locked); stop it first")]
    AlreadyRunning(String),
    /// The data directory is unusable.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The control socket could not be created.
    #[error("cannot serve the control socket {path}")]
    Socket {
        /// The socket path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs a node on `dir` until `shutdown` completes.
pub async fn run(dir: &Path, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    use std::os::unix::fs::PermissionsExt;
    let dd = DataDir::new(dir);
    let (cfg, key) = dd.load()?;
    let node_id = key.node_id();
    let store = match dd.open_store(node_id, &cfg) {
        Ok(s) => s,
        Err(DataDirError::Store {
            source: StoreError::InUse,
            ..
        }) => return Err(NodeError::AlreadyRunning(dir.display().to_string())),
        Err(e) => return Err(e.into()),
    };
    // A full file-size limit must surface as a write error (EFBIG), not kill the process.
    let _xfsz =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ));
    let (handle, thread) = worker::spawn(store);

    let sock = dd.socket_path();
    let socket_err = |source| NodeError::Socket {
        path: sock.display().to_string(),
        source,
    };
    // We hold the database lock, so any socket file left here is stale (a killed node).
    match std::fs::remove_file(&sock) {
        Ok(()) => tracing::info!("removed a stale control socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(socket_err(e)),
    }
    let listener = tokio::net::UnixListener::bind(&sock).map_err(socket_err)?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).map_err(socket_err)?;

    let service = Arc::new(Service::new(handle, node_id, cfg.facility.clone(), true));
    tracing::info!(
        node = %node_id,
        facility = %cfg.facility.code,
        kind = %cfg.facility.kind,
        socket = %sock.display(),
        "node ready"
    );
    crate::control::server::serve(listener, service.clone(), shutdown).await;

    tracing::info!("shutting down: waiting for the last commit");
    drop(service);
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    let _ = std::fs::remove_file(&sock);
    tracing::info!("node stopped cleanly");
    Ok(())
}

/// Completes on the first SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the node with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
