//! Reaching a node: over its control socket when it runs, or by opening its data directory
//! directly when it does not (the design lets offline commands work on the files).

use std::path::Path;

use anyhow::{Context, Result, bail};
use yilian_node::control::{ClientError, ControlClient, Request, Response};
use yilian_node::datadir::{DataDir, DataDirError, STORE_LOCK_POLL, STORE_LOCK_WAIT};
use yilian_node::identity::tls::TlsMaterial;
use yilian_node::revocation::Revocation;
use yilian_node::service::{Service, ServiceParts};
use yilian_node::storage::{StoreError, worker};

use crate::output::NodeRefused;

/// A way to send requests to a node.
pub(crate) enum Conn {
    Remote(ControlClient),
    Local {
        service: Box<Service>,
        thread: worker::StoreThread,
    },
}

/// Whether a node is running on `dir` (its control socket answers).
pub(crate) async fn node_running(dir: &Path) -> bool {
    ControlClient::connect(&DataDir::new(dir).socket_path())
        .await
        .is_ok()
}

/// What this process is, for the store's holder record: `yilian` and the command words, never
/// argument values (they may name patients).
fn holder_description() -> String {
    let mut words = vec!["yilian".to_string()];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--dir" {
            args.next();
            continue;
        }
        let command_word = !a.is_empty()
            && a.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
            && !a.starts_with('-');
        if !command_word || words.len() > 2 {
            break;
        }
        words.push(a);
    }
    words.join(" ")
}

/// Connects to the node running on `dir`, or opens `dir` directly if none runs. Another
/// process may hold the store for a moment (a node starting, another offline command): wait
/// for it, up to [`STORE_LOCK_WAIT`].
pub(crate) async fn connect(dir: &Path) -> Result<Conn> {
    let dd = DataDir::new(dir);
    let started = std::time::Instant::now();
    let (cfg, key, store) = loop {
        match ControlClient::connect(&dd.socket_path()).await {
            Ok(c) => return Ok(Conn::Remote(c)),
            Err(ClientError::NotRunning(_)) => {}
            Err(e) => return Err(e).context("cannot reach the node"),
        }
        let (cfg, key) = dd.load()?;
        match dd.open_store_as(key.node_id(), &cfg, &holder_description()) {
            Ok(s) => break (cfg, key, s),
            Err(DataDirError::Store {
                source: StoreError::InUse,
                ..
            }) if started.elapsed() < STORE_LOCK_WAIT => {
                tokio::time::sleep(STORE_LOCK_POLL).await;
            }
            Err(DataDirError::Store {
                source: StoreError::InUse,
                ..
            }) => bail!(
                "{} is in use by {}, and no node answers on its control socket; \
                 try again once it has finished",
                dir.display(),
                dd.store_holder()
                    .map_or_else(|| "another process".to_string(), |h| h.to_string())
            ),
            Err(e) => return Err(e.into()),
        }
    };
    let tls = TlsMaterial::load(&dd, &key).context("the installed certificates are unusable")?;
    let (handle, thread) = worker::spawn(store);
    crate::output::note(format_args!(
        "(no node running on {}: working on its files directly)",
        dir.display()
    ));
    Ok(Conn::Local {
        service: Box::new(Service::new(ServiceParts {
            dir: dd.clone(),
            config: cfg,
            node_id: key.node_id(),
            store: handle,
            revocation: std::sync::Arc::new(Revocation::new(dd.clone(), tls, None)),
            network: None,
            sync: None,
            network_off: None,
            online: false,
        })),
        thread,
    })
}

impl Conn {
    /// Sends a request; a refusal from the node becomes an error carrying its kind.
    pub(crate) async fn call(&mut self, req: Request) -> Result<Response> {
        let resp = match self {
            Conn::Remote(c) => c.call(&req).await.context("the node did not answer")?,
            Conn::Local { service, .. } => service.handle(req).await,
        };
        match resp {
            Response::Error { kind, message } => Err(NodeRefused { kind, message }.into()),
            other => Ok(other),
        }
    }

    /// Closes the connection; for local access, waits until the store is closed.
    pub(crate) async fn close(self) {
        if let Conn::Local { service, thread } = self {
            drop(service);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Sends one request on a fresh connection and closes it.
pub(crate) async fn one(dir: &Path, req: Request) -> Result<Response> {
    let mut conn = connect(dir).await?;
    let resp = conn.call(req).await;
    conn.close().await;
    resp
}
