//! A small alliance inside this process, for `demo` and `bench`: a CA and enrolled nodes in a
//! temporary directory, started as in-process nodes listening on 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use yilian_node::config::{FacilityConfig, FacilityKind, NetworkConfig};
use yilian_node::control::{ControlClient, Request, Response, StatusReport};
use yilian_node::datadir::DataDir;
use yilian_node::identity::ca::{Ca, Validity};
use yilian_node::identity::enroll;

use super::demo::{InProcessNode, ask};

/// One enrolled node.
pub(crate) struct Member {
    pub(crate) code: String,
    pub(crate) dir: PathBuf,
    pub(crate) node: Option<InProcessNode>,
}

/// Creates a CA and enrolls a node per `(code, name, kind)` under `root`.
pub(crate) fn enroll_all(
    root: &Path,
    alliance: &str,
    specs: &[(&str, &str, FacilityKind)],
) -> Result<Vec<Member>> {
    enroll_with_roles(root, alliance, specs, &[])
}

/// As [`enroll_all`], granting `county_roles` to county-hospital nodes (e.g. pharmacy).
pub(crate) fn enroll_with_roles(
    root: &Path,
    alliance: &str,
    specs: &[(&str, &str, FacilityKind)],
    county_roles: &[yilian_node::identity::cert::Role],
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
        let roles = if *kind == FacilityKind::CountyHospital {
            county_roles
        } else {
            &[]
        };
        let bundle = ca.issue(&req, roles, Validity::days_from_now(365))?;
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

impl Member {
    pub(crate) async fn start(&mut self) -> Result<()> {
        self.node = Some(InProcessNode::start(&self.dir).await?);
        Ok(())
    }

    pub(crate) async fn stop(&mut self) -> Result<()> {
        if let Some(n) = self.node.take() {
            n.stop().await?;
        }
        Ok(())
    }

    pub(crate) async fn client(&self) -> Result<ControlClient> {
        Ok(ControlClient::connect(&DataDir::new(&self.dir).socket_path()).await?)
    }

    pub(crate) async fn ask(&self, req: Request) -> Result<Response> {
        ask(&mut self.client().await?, req).await
    }

    pub(crate) async fn status(&self) -> Result<StatusReport> {
        match self.ask(Request::Status).await? {
            Response::Status(s) => Ok(*s),
            _ => bail!("unexpected answer to status"),
        }
    }

    pub(crate) async fn addr(&self) -> Result<SocketAddr> {
        self.status()
            .await?
            .network
            .listen
            .context("the node is not listening")
    }
}

/// Waits until every given node has `peers` connected peers and is caught up with all of them.
pub(crate) async fn settle(
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
