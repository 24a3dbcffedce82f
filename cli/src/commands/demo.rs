//! `yilian demo`: a node in a temporary directory, driven through its control socket, stopped
//! and started again to show that what it acknowledged is still there.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use yilian_node::config::{FacilityConfig, FacilityKind, NetworkConfig};
use yilian_node::control::{ControlClient, Request, Response};
use yilian_node::datadir::DataDir;
use yilian_node::documents::DocKind;

use crate::cli::DemoArgs;
use crate::output;

/// A node started inside this process, stopped by [`InProcessNode::stop`].
pub(crate) struct InProcessNode {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), yilian_node::daemon::NodeError>>,
}

impl InProcessNode {
    /// Starts a node on `dir` and waits until its control socket answers.
    pub(crate) async fn start(dir: &Path) -> Result<InProcessNode> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let owned = dir.to_path_buf();
        let task = tokio::spawn(async move {
            yilian_node::daemon::run(&owned, async {
                let _ = stopped.await;
            })
            .await
        });
        let sock = DataDir::new(dir).socket_path();
        for _ in 0..500 {
            if ControlClient::connect(&sock).await.is_ok() {
                return Ok(InProcessNode { stop, task });
            }
            if task.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop.send(());
        match task.await {
            Ok(Err(e)) => Err(e).context("the node did not start"),
            _ => bail!("the node did not open its control socket within 5 s"),
        }
    }

    /// Stops the node and waits for its last commit.
    pub(crate) async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the node task failed")??;
        Ok(())
    }
}

/// Sends a request, turning a refusal into an error.
pub(crate) async fn ask(c: &mut ControlClient, req: Request) -> Result<Response> {
    match c.call(&req).await? {
        Response::Error { message, .. } => bail!("the node refused: {message}"),
        r => Ok(r),
    }
}

pub(crate) async fn run(args: DemoArgs) -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("yilian-demo-").tempdir()?;
    let dir = tmp.path().join("ch-01");
    output::line(format_args!(
        "yilian demo: one county-hospital node in {}",
        dir.display()
    ));

    let node_id = DataDir::new(&dir).init(
        FacilityConfig {
            code: "CH-01".parse()?,
            name: "县人民医院 County People's Hospital".into(),
            kind: FacilityKind::CountyHospital,
        },
        NetworkConfig {
            listen: "127.0.0.1:0".parse()?,
            ..NetworkConfig::default()
        },
    )?;
    output::line(format_args!("1. initialised CH-01, node id {node_id}"));

    let node = InProcessNode::start(&dir).await?;
    let sock = DataDir::new(&dir).socket_path();
    let mut c = ControlClient::connect(&sock).await?;
    output::line("2. node running; writing through its control socket");

    let notices = [
        ("流感季门诊安排 Flu-season clinic hours", "TC-01,TC-02"),
        ("医共体药品目录更新 Catalog update", "TC-01,TC-02,TC-03"),
        ("义诊排班 Outreach roster", "TC-03"),
    ];
    let mut ids = Vec::new();
    for (title, audience) in notices {
        let audience = yilian_node::documents::parse_audience(audience)?;
        let Response::Written(info) = ask(
            &mut c,
            Request::NoteAdd {
                title: title.into(),
                text: Some("posted by county IT".into()),
                audience: audience.0.into_iter().collect(),
            },
        )
        .await?
        else {
            bail!("unexpected answer");
        };
        output::line(format_args!(
            "   note {} -> audience {}",
            info.id,
            info.audience
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ));
        ids.push(info.id);
    }
    for i in 0..5 {
        ask(
            &mut c,
            Request::NoteAppend {
                id: ids[0].to_string()[..8].to_string(),
                text: format!("update {i}: clinic opens at 08:00"),
            },
        )
        .await?;
    }
    output::line("   appended 5 entries to the first note (addressed by an 8-character id prefix)");

    let Response::Doc { info, json } = ask(
        &mut c,
        Request::DocShow {
            id: ids[0].to_string(),
        },
    )
    .await?
    else {
        bail!("unexpected answer");
    };
    let heads_before = info.heads.clone();
    let content: serde_json::Value = serde_json::from_str(&json)?;
    output::line(format_args!(
        "3. the first note has {} entries, heads {}",
        content["entries"].as_array().map_or(0, Vec::len),
        info.heads_hex().join(",")
    ));

    drop(c);
    node.stop().await?;
    output::line("4. node stopped (SIGTERM path: requests finished, last commit flushed)");

    let node = InProcessNode::start(&dir).await?;
    let mut c = ControlClient::connect(&sock).await?;
    let Response::Docs(docs) = ask(
        &mut c,
        Request::DocList {
            kind: Some(DocKind::Note),
        },
    )
    .await?
    else {
        bail!("unexpected answer");
    };
    let Response::Doc { info, .. } = ask(
        &mut c,
        Request::DocShow {
            id: ids[0].to_string(),
        },
    )
    .await?
    else {
        bail!("unexpected answer");
    };
    output::line(format_args!(
        "5. restarted: {} notes stored, first note heads {}",
        docs.len(),
        if info.heads == heads_before {
            "unchanged"
        } else {
            "CHANGED (bug!)"
        }
    ));
    if info.heads != heads_before || docs.len() != ids.len() {
        bail!("the store lost data across a restart");
    }
    let Response::Status(s) = ask(&mut c, Request::Status).await? else {
        bail!("unexpected answer");
    };
    output::line(format_args!(
        "6. status: {} documents, {} KiB store, change sequence at {}",
        s.store.docs_total,
        s.store.file_bytes / 1024,
        s.store.last_seq
    ));
    drop(c);
    node.stop().await?;

    if args.keep {
        let kept = tmp.keep();
        output::line(format_args!(
            "kept the data directory: {}",
            kept.join("ch-01").display()
        ));
    } else {
        output::line("done; temporary directory removed");
    }
    Ok(())
}
