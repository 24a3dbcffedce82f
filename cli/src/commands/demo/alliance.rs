//! The demo's alliance: a CA and enrolled nodes in a temporary directory, made with the node
//! library's identity tools, each node started inside this process (`daemon::start`) on
//! 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use yilian_node::config::{FacilityConfig, FacilityKind, NetworkConfig};
use yilian_node::control::{ControlClient, Request, Response, StatusReport};
use yilian_node::daemon::{self, Daemon};
use yilian_node::datadir::DataDir;
use yilian_node::identity::ca::{Ca, Validity};
use yilian_node::identity::enroll;

/// One enrolled facility and, while it runs, its node.
pub(super) struct Member {
    pub(super) code: String,
    dir: PathBuf,
    node: Option<Daemon>,
}

/// Creates a CA and enrolls a node per `(code, name, kind)` under `root`.
pub(super) fn enroll_all(
    root: &Path,
    alliance: &str,
    specs: &[(&str, &str, FacilityKind)],
) -> Result<Vec<Member>> {
    let mut ca = Ca::init(&root.join("ca"), alliance)?;
    let mut out = Vec::new();
    for (code, name, kind) in specs {
        let dir = root.join(code.to_lowercase());
        let dd = DataDir::new(&dir);
        let facility = FacilityConfig {
            code: code.parse()?,
            name: (*name).to_string(),
            kind: *kind,
            time_zone: None,
        };
        dd.init(
            facility.clone(),
            NetworkConfig {
                listen: "127.0.0.1:0".parse()?,
                ..NetworkConfig::default()
            },
        )?;
        let (_, key) = dd.load()?;
        let req = enroll::make_request(&key, &facility)?;
        let bundle = ca.issue(&req, &[], Validity::days_from_now(365))?;
        enroll::install(
            &dd,
            &key,
            &facility,
            &bundle,
            jiff::Timestamp::now().as_second(),
        )?;
        out.push(Member {
            code: (*code).to_string(),
            dir,
            node: None,
        });
    }
    Ok(out)
}

/// Sends a request, turning a refusal into an error.
async fn ask(c: &mut ControlClient, req: Request) -> Result<Response> {
    match c.call(&req).await? {
        Response::Error { message, .. } => bail!("the node refused: {message}"),
        r => Ok(r),
    }
}

impl Member {
    /// Starts the member's node in this process.
    pub(super) async fn start(&mut self) -> Result<()> {
        let node = daemon::start(&self.dir)
            .await
            .with_context(|| format!("{}'s node did not start", self.code))?;
        self.node = Some(node);
        Ok(())
    }

    /// Stops the member's node and waits for its last commit.
    pub(super) async fn stop(&mut self) -> Result<()> {
        if let Some(n) = self.node.take() {
            n.stop().await?;
        }
        Ok(())
    }

    /// A connection to the member's running node.
    pub(super) async fn client(&self) -> Result<ControlClient> {
        let node = self
            .node
            .as_ref()
            .with_context(|| format!("{}'s node is not running", self.code))?;
        Ok(ControlClient::connect(node.socket_path()).await?)
    }

    /// Sends one request to the member's node; a refusal is an error.
    pub(super) async fn ask(&self, req: Request) -> Result<Response> {
        ask(&mut self.client().await?, req).await
    }

    /// The node's status.
    pub(super) async fn status(&self) -> Result<StatusReport> {
        match self.ask(Request::Status).await? {
            Response::Status(s) => Ok(*s),
            _ => bail!("unexpected answer to status"),
        }
    }

    /// The UDP address the node listens on for peers.
    pub(super) fn addr(&self) -> Result<SocketAddr> {
        self.node
            .as_ref()
            .and_then(Daemon::local_addr)
            .with_context(|| format!("{}'s node is not listening", self.code))
    }
}

/// Waits until every given node has `peers` connected peers and is caught up with all of them.
pub(super) async fn settle(
    members: &[&Member],
    peers: &[usize],
    timeout: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let mut all = true;
        for (m, want) in members.iter().zip(peers) {
            let s = m.status().await?;
            let ok = s
                .network
                .sync
                .iter()
                .filter(|p| p.connected && p.caught_up)
                .count();
            if ok < *want || s.network.sync.iter().any(|p| p.connected && !p.caught_up) {
                all = false;
            }
        }
        if all {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            bail!("the alliance did not settle within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
