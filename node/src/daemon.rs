//! The node process: opens its data directory, starts the storage thread, serves the control
//! socket, and on shutdown stops accepting, finishes the requests in hand, waits for the
//! storage thread's last commit and removes the socket. Every write acknowledged before the
//! shutdown signal is durable, because every write is committed before it is acknowledged.
//!
//! [`run`] serves until a shutdown future completes (`yilian node run` passes
//! [`shutdown_signal`]); [`start`] runs a node inside the calling process and returns a
//! [`Daemon`] handle once it serves, for programs that start and stop nodes themselves (the
//! demo, benchmarks).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::datadir::{DataDir, DataDirError};
use crate::identity::enroll::date;
use crate::identity::tls::TlsMaterial;
use crate::revocation::Revocation;
use crate::service::{Service, ServiceParts};
use crate::storage::{StoreError, worker};
use crate::sync::SyncManager;
use crate::transport::Network;

/// The node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Another node already runs on this directory (its control socket answers).
    #[error("a node is already running on {0} (its control socket answers); stop it first")]
    AlreadyRunning(String),
    /// Another process kept the store for longer than the node waits.
    #[error(
        "the store of {dir} is in use by {holder} and was not released within {waited_secs} s; \
         stop that process or start the node again once it has finished"
    )]
    StoreBusy {
        /// The data directory.
        dir: String,
        /// Who holds it, as far as its record tells.
        holder: String,
        /// How long the node waited.
        waited_secs: u64,
    },
    /// The data directory is unusable.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The network could not start (e.g. the UDP port is taken).
    #[error(transparent)]
    Network(#[from] crate::transport::NetworkError),
    /// The installed certificates are unusable.
    #[error(transparent)]
    Tls(#[from] crate::identity::tls::TlsError),
    /// The control socket could not be created.
    #[error("cannot serve the control socket {path}")]
    Socket {
        /// The socket path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A node started with [`start`] ended without finishing its shutdown (its task panicked
    /// or its runtime went away).
    #[error("the node on {0} ended abnormally (its task panicked or was cancelled)")]
    Aborted(String),
}

/// Runs a node on `dir` until `shutdown` completes.
pub async fn run(dir: &Path, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    serve_until(dir, shutdown, None).await
}

/// Where a node started with [`start`] can be reached.
#[derive(Debug, Clone)]
struct Endpoints {
    socket: PathBuf,
    local_addr: Option<SocketAddr>,
}

/// A node running inside this process, started by [`start`].
///
/// [`Daemon::stop`] shuts it down and waits for its last commit. Dropping the handle without
/// calling `stop` also shuts the node down, in the background, without waiting.
#[derive(Debug)]
pub struct Daemon {
    dir: PathBuf,
    endpoints: Endpoints,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), NodeError>>,
}

/// Starts a node on `dir` inside this process (a tokio task on the current runtime) and
/// returns once its control socket accepts connections. Fails as [`run`] would, e.g. when a
/// node already runs on `dir`.
pub async fn start(dir: &Path) -> Result<Daemon, NodeError> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let owned = dir.to_path_buf();
    let task = tokio::spawn(async move {
        let shutdown = async {
            // A dropped handle stops the node too.
            let _ = stopped.await;
        };
        serve_until(&owned, shutdown, Some(ready_tx)).await
    });
    match ready_rx.await {
        Ok(endpoints) => Ok(Daemon {
            dir: dir.to_path_buf(),
            endpoints,
            stop,
            task,
        }),
        // The node ended before it served: its task holds the reason.
        Err(_) => match task.await {
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) | Err(_) => Err(NodeError::Aborted(dir.display().to_string())),
        },
    }
}

impl Daemon {
    /// The data directory the node runs on.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The node's control socket.
    pub fn socket_path(&self) -> &Path {
        &self.endpoints.socket
    }

    /// The UDP address the node listens on for peers, if its network is up (it is off until
    /// the node is enrolled).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.endpoints.local_addr
    }

    /// Shuts the node down as `node run` does on SIGTERM and waits until the storage thread
    /// has made its last commit and the socket is removed.
    pub async fn stop(self) -> Result<(), NodeError> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            Err(_) => Err(NodeError::Aborted(self.dir.display().to_string())),
        }
    }
}

/// Runs a node on `dir` until `shutdown` completes; tells `ready` where it can be reached once
/// its control socket accepts connections.
async fn serve_until(
    dir: &Path,
    shutdown: impl Future<Output = ()>,
    ready: Option<tokio::sync::oneshot::Sender<Endpoints>>,
) -> Result<(), NodeError> {
    use std::os::unix::fs::PermissionsExt;
    let dd = DataDir::new(dir);
    let (cfg, key) = dd.load()?;
    let node_id = key.node_id();
    let store = open_store_waiting(&dd, node_id, &cfg).await?;
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

    let tls = TlsMaterial::load(&dd, &key)?;
    let (events_tx, events_rx) =
        tokio::sync::mpsc::channel(crate::transport::manager::EVENTS_CAPACITY);
    let (network, network_off) = match &tls {
        None => {
            tracing::warn!(
                "not enrolled in an alliance yet: networking is off, local work continues \
                 (yilian enroll request, then yilian enroll install)"
            );
            (None, Some("not enrolled in an alliance yet".to_string()))
        }
        Some(t) => match certificate_problem(t) {
            Some(problem) => {
                tracing::error!(%problem, "networking is off");
                (None, Some(problem))
            }
            None => {
                let net = Network::start(
                    cfg.network.listen,
                    t,
                    crate::transport::endpoint::LinkOptions {
                        mtu_discovery: cfg.network.mtu_discovery,
                        congestion: cfg.network.congestion,
                    },
                    &cfg.network.peers,
                    Some(events_tx),
                )?;
                tracing::info!(
                    listen = %net.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                    alliance = %t.info().claims.alliance,
                    peers = cfg.network.peers.len(),
                    "network up"
                );
                (Some(net), None)
            }
        },
    };

    let revocation = Arc::new(Revocation::new(dd.clone(), tls, network.clone()));
    let sync = network.as_ref().map(|_| {
        SyncManager::spawn(
            handle.clone(),
            cfg.facility.code.clone(),
            cfg.facility.kind,
            Some(revocation.clone()),
            events_rx,
        )
    });
    let service = Arc::new(Service::new(ServiceParts {
        dir: dd.clone(),
        config: cfg.clone(),
        node_id,
        store: handle,
        revocation,
        network: network.clone(),
        sync: sync.clone(),
        network_off,
        online: true,
    }));
    tracing::info!(
        node = %node_id,
        facility = %cfg.facility.code,
        kind = %cfg.facility.kind,
        socket = %sock.display(),
        "node ready"
    );
    if let Some(ready) = ready {
        // The listener is bound: connections made from now on are accepted once serving
        // starts below. A starter that stopped waiting is no reason to stop the node.
        let _ = ready.send(Endpoints {
            socket: sock.clone(),
            local_addr: network.as_ref().and_then(Network::local_addr),
        });
    }
    crate::control::server::serve(listener, service.clone(), shutdown).await;

    tracing::info!("shutting down: closing connections, waiting for the last commit");
    if let Some(n) = &network {
        n.shutdown().await;
    }
    if let Some(s) = &sync {
        s.shutdown().await;
    }
    // Every store handle must be gone before the storage thread can finish.
    drop(sync);
    drop(service);
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    let _ = std::fs::remove_file(&sock);
    tracing::info!("node stopped cleanly");
    Ok(())
}

/// Opens the store for the node. Another process may hold it for a moment (an offline command
/// such as `yilian status` run while the node starts): wait for it, up to
/// [`STORE_LOCK_WAIT`](crate::datadir::STORE_LOCK_WAIT). A node that already runs answers on the
/// control socket and is reported at once.
async fn open_store_waiting(
    dd: &DataDir,
    node: crate::ids::NodeId,
    cfg: &crate::config::NodeConfig,
) -> Result<crate::storage::Store, NodeError> {
    let started = tokio::time::Instant::now();
    let dir = || dd.root().display().to_string();
    loop {
        match dd.open_store_as(node, cfg, "yilian node run") {
            Ok(s) => return Ok(s),
            Err(DataDirError::Store {
                source: StoreError::InUse,
                ..
            }) => {
                if crate::control::ControlClient::connect(&dd.socket_path())
                    .await
                    .is_ok()
                {
                    return Err(NodeError::AlreadyRunning(dir()));
                }
                if started.elapsed() >= crate::datadir::STORE_LOCK_WAIT {
                    return Err(NodeError::StoreBusy {
                        dir: dir(),
                        holder: dd.store_holder().map_or_else(
                            || "another process (it left no record of itself)".to_string(),
                            |h| h.to_string(),
                        ),
                        waited_secs: crate::datadir::STORE_LOCK_WAIT.as_secs(),
                    });
                }
                tokio::time::sleep(crate::datadir::STORE_LOCK_POLL).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Why the node's own certificate cannot be used now, if it cannot.
fn certificate_problem(t: &TlsMaterial) -> Option<String> {
    let now = crate::documents::now_ms() as i64 / 1000;
    let info = t.info();
    if info.not_after <= now {
        Some(format!(
            "the node certificate expired on {}: ask county IT for a new one (yilian enroll request)",
            date(info.not_after)
        ))
    } else if info.not_before > now {
        Some(format!(
            "the node certificate is only valid from {} but this machine's clock says {}: is the clock right?",
            date(info.not_before),
            date(now)
        ))
    } else {
        None
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FacilityConfig, FacilityKind, NetworkConfig};
    use crate::control::{ControlClient, Request, Response};

    fn initialised(root: &Path) -> PathBuf {
        let dir = root.join("node");
        DataDir::new(&dir)
            .init(
                FacilityConfig {
                    code: "CH-01".parse().unwrap(),
                    name: "daemon test".into(),
                    kind: FacilityKind::CountyHospital,
                    time_zone: None,
                },
                NetworkConfig::default(),
            )
            .unwrap();
        dir
    }

    async fn note_add(sock: &Path, title: &str) -> Response {
        let mut c = ControlClient::connect(sock).await.unwrap();
        c.call(&Request::NoteAdd {
            title: title.into(),
            text: None,
            audience: vec![],
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_started_daemon_serves_refuses_a_second_and_stops_durably() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = initialised(tmp.path());
        let node = start(&dir).await.unwrap();
        assert_eq!(node.socket_path(), DataDir::new(&dir).socket_path());
        assert_eq!(node.local_addr(), None, "not enrolled: networking is off");
        let Response::Written(info) = note_add(node.socket_path(), "kept").await else {
            panic!("the started node did not store a note");
        };
        // A second node on the same directory is refused while the first runs.
        match start(&dir).await {
            Err(NodeError::AlreadyRunning(_)) => {}
            other => panic!("a second node was not refused: {other:?}"),
        }
        let sock = node.socket_path().to_path_buf();
        node.stop().await.unwrap();
        assert!(!sock.exists(), "the socket outlived the node");
        // Stopped means closed: the store opens again, with the note in it.
        let again = start(&dir).await.unwrap();
        let mut c = ControlClient::connect(again.socket_path()).await.unwrap();
        let Response::Doc { info: read, .. } = c
            .call(&Request::DocShow {
                id: info.id.to_string(),
            })
            .await
            .unwrap()
        else {
            panic!("the note written before the stop is gone");
        };
        assert_eq!(read.heads, info.heads);
        again.stop().await.unwrap();
    }

    #[tokio::test]
    async fn a_directory_that_is_not_initialised_fails_to_start() {
        let tmp = tempfile::tempdir().unwrap();
        match start(&tmp.path().join("missing")).await {
            Err(NodeError::DataDir(_)) => {}
            other => panic!("expected a data directory error, got {other:?}"),
        }
    }
}
