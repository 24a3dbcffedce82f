//! Nodes for the benchmarks: `yilian node run` processes started through the testkit (warnings
//! only in their logs), off the async workers; filling a node with referral-sized documents over
//! its control socket; and the county-township pair most sync scenarios use.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use yilian_node::control::{Request, StatusReport};
use yilian_node::documents::DocKind;
use yilian_node::ids::{DocId, FacilityCode, NodeId};
use yilian_node::reexports::automerge::transaction::Transactable;
use yilian_node::reexports::automerge::{ActorId, Automerge, AutomergeError, ObjType, ROOT};
use yilian_node::sync::PeerSyncStatus;
use yilian_testkit::{Alliance, NodeProcess};

/// Under `cargo run`, builds the `yilian` binary of this build profile first, so that the nodes
/// run the code in the tree. Skipped when `YILIAN_BIN` names the binary (the smoke test passes
/// its own) or when this program was started directly (the binary beside it is used).
pub(crate) fn prepare_node_binary() {
    if std::env::var_os(yilian_testkit::bin::YILIAN_BIN_ENV).is_none()
        && std::env::var_os("CARGO").is_some()
    {
        yilian_testkit::bin::build("yilian", "yilian");
    }
}

/// Starts `yilian node run` on `dir` and waits until its control socket answers.
pub(crate) async fn start(dir: &Path) -> Result<NodeProcess> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut cmd = yilian_testkit::yilian(&dir);
        cmd.env("RUST_LOG", "warn");
        NodeProcess::start_with(&dir, cmd)
    })
    .await
    .context("the node did not start")
}

/// Stops a node with SIGTERM and waits for its clean exit.
pub(crate) async fn stop(node: NodeProcess) -> Result<()> {
    let code = tokio::task::spawn_blocking(move || node.stop()).await?;
    if code != 0 {
        bail!("a node exited with code {code} on SIGTERM");
    }
    Ok(())
}

/// Kills a node with SIGKILL: it gets no chance to close its connections.
pub(crate) async fn kill9(node: NodeProcess) -> Result<()> {
    Ok(tokio::task::spawn_blocking(move || node.kill9()).await?)
}

/// Asks a node process something over its control socket.
pub(crate) async fn ask(
    node: &NodeProcess,
    req: Request,
) -> Result<yilian_node::control::Response> {
    yilian_testkit::control::ask(&node.socket_path(), req).await
}

/// A node process's status.
pub(crate) async fn status(node: &NodeProcess) -> Result<StatusReport> {
    yilian_testkit::control::status(&node.socket_path()).await
}

/// The UDP address a node listens on.
pub(crate) async fn listen_addr(node: &NodeProcess) -> Result<std::net::SocketAddr> {
    status(node)
        .await?
        .network
        .listen
        .context("the node is not listening")
}

/// A referral-sized document (about 17 fields and a 5-entry history), shaped as a note so the
/// node's note commands can edit it; written by `actor`.
pub(crate) fn referral_doc(actor: ActorId, i: usize) -> Vec<u8> {
    let mut doc = Automerge::new().with_actor(actor);
    let _ = doc.transact::<_, _, AutomergeError>(|tx| {
        tx.put(ROOT, "schema", 1u64)?;
        tx.put(ROOT, "title", format!("转诊 referral {i}"))?;
        tx.put(ROOT, "patient_name", format!("患者{i:05}"))?;
        tx.put(ROOT, "sex", if i.is_multiple_of(2) { "F" } else { "M" })?;
        tx.put(
            ROOT,
            "birth_date",
            format!("19{:02}-0{}-1{}", 40 + i % 50, 1 + i % 9, i % 10),
        )?;
        tx.put(ROOT, "id_number", format!("4301021960{:08}", i))?;
        tx.put(ROOT, "from", "TC-01")?;
        tx.put(ROOT, "to", "CH-01")?;
        tx.put(ROOT, "department", "普外科 General surgery")?;
        tx.put(ROOT, "icd10", "K35.800")?;
        tx.put(
            ROOT,
            "diagnosis",
            "急性阑尾炎 acute appendicitis, suspected",
        )?;
        tx.put(
            ROOT,
            "urgency",
            if i.is_multiple_of(7) {
                "green-channel"
            } else {
                "routine"
            },
        )?;
        tx.put(
            ROOT,
            "reason",
            "Right lower quadrant pain for 12 h, fever 38.2, WBC 13.1; needs surgical evaluation",
        )?;
        tx.put(
            ROOT,
            "treatment",
            "IV fluids, ceftriaxone 2 g, analgesia withheld pending exam",
        )?;
        tx.put(ROOT, "doctor", "Dr. Wang, attending")?;
        tx.put(ROOT, "phone", "0731-8888-1234")?;
        tx.put(ROOT, "created_ms", 1_790_000_000_000u64 + i as u64)?;
        let entries = tx.put_object(ROOT, "entries", ObjType::List)?;
        for (k, act) in [
            "requested",
            "viewed",
            "accepted",
            "slot 2026-12-01 09:30",
            "arrived",
        ]
        .iter()
        .enumerate()
        {
            let e = tx.insert_object(&entries, k, ObjType::Map)?;
            tx.put(&e, "at", 1_790_000_000_000u64 + k as u64 * 60_000)?;
            tx.put(
                &e,
                "by",
                if k.is_multiple_of(2) {
                    "TC-01"
                } else {
                    "CH-01"
                },
            )?;
            tx.put(&e, "text", *act)?;
        }
        Ok(())
    });
    doc.save()
}

/// Gives the stopped node of `dir` `n` referral-sized documents for `audience` (its own
/// facility is added): starts it, imports them over its control socket, stops it, so that the
/// scenario then starts a fresh process with the documents on disk. Returns their ids.
pub(crate) async fn fill(dir: &Path, n: usize, audience: &[&str]) -> Result<Vec<DocId>> {
    let codes: Vec<FacilityCode> = audience
        .iter()
        .map(|c| c.parse())
        .collect::<Result<_, _>>()?;
    let node = start(dir).await?;
    // One actor for every document, as when one node wrote them all.
    let actor = ActorId::random();
    let ids = yilian_testkit::fill::import_docs(
        &node.socket_path(),
        n,
        DocKind::Note,
        &codes,
        move |i| referral_doc(actor.clone(), i),
    )
    .await?;
    stop(node).await?;
    Ok(ids)
}

/// A county hospital and a township center enrolled in one alliance, running as processes; the
/// township has no peer yet.
pub(crate) struct Pair {
    pub(crate) ch: NodeProcess,
    pub(crate) tc: NodeProcess,
    _tmp: tempfile::TempDir,
}

impl Pair {
    /// Enrolls the pair, gives the county `docs` referral-sized documents for the township,
    /// and starts both. Returns the documents' ids.
    pub(crate) async fn start(docs: usize) -> Result<(Pair, Vec<DocId>)> {
        let tmp = tempfile::Builder::new().prefix("yilian-bench-").tempdir()?;
        let root = tmp.path().to_path_buf();
        let (ch_dir, tc_dir) = tokio::task::spawn_blocking(move || {
            let alliance = Alliance::new(&root, "Bench Alliance");
            (
                alliance.node("CH-01", "county-hospital", ""),
                alliance.node("TC-01", "township-center", ""),
            )
        })
        .await?;
        let ids = fill(&ch_dir, docs, &["TC-01"]).await?;
        let ch = start(&ch_dir).await?;
        let tc = start(&tc_dir).await?;
        Ok((Pair { ch, tc, _tmp: tmp }, ids))
    }

    /// Connects the township to the county and waits until it holds `docs` documents and its
    /// session (started at or after `after_ms`) is caught up. Returns the township's view of the
    /// session.
    pub(crate) async fn connect_and_wait(
        &self,
        docs: u64,
        after_ms: u64,
        timeout: Duration,
    ) -> Result<PeerSyncStatus> {
        let addr = listen_addr(&self.ch).await?.to_string();
        ask(&self.tc, Request::PeerAdd { addr }).await?;
        let started = Instant::now();
        loop {
            let s = status(&self.tc).await?;
            let done = s.network.sync.iter().find(|x| {
                x.connected
                    && x.session_started_ms >= after_ms
                    && x.caught_up
                    && s.store.docs_total >= docs
            });
            if let Some(peer) = done {
                return Ok(peer.clone());
            }
            if started.elapsed() > timeout {
                bail!("no catch-up within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Removes the county from the township's peers and waits until the session has ended.
    pub(crate) async fn disconnect(&self) -> Result<()> {
        let addr = listen_addr(&self.ch).await?.to_string();
        ask(&self.tc, Request::PeerRemove { addr }).await?;
        for _ in 0..500 {
            if status(&self.tc)
                .await?
                .network
                .sync
                .iter()
                .all(|x| !x.connected)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bail!("the session did not end")
    }

    /// The township's figures for its session with the county, read after a moment so that
    /// any trailing frame is counted; `connected` picks the live session only.
    pub(crate) async fn settled_session(&self, node_id: Option<NodeId>) -> Result<PeerSyncStatus> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        status(&self.tc)
            .await?
            .network
            .sync
            .into_iter()
            .find(|x| match node_id {
                Some(id) => x.node_id == id,
                None => x.connected,
            })
            .context("no session")
    }

    /// Stops the county and starts it again with its documents on disk; returns how long it
    /// took from starting the process until its control socket answered.
    pub(crate) async fn restart_county(self) -> Result<(Pair, Duration)> {
        let Pair { ch, tc, _tmp } = self;
        let dir = ch.dir.clone();
        stop(ch).await?;
        let t0 = Instant::now();
        let ch = start(&dir).await?;
        Ok((Pair { ch, tc, _tmp }, t0.elapsed()))
    }

    /// Stops both nodes cleanly.
    pub(crate) async fn stop(self) -> Result<()> {
        stop(self.tc).await?;
        stop(self.ch).await
    }
}
