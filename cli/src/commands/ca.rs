//! `yilian ca ...`, `yilian enroll ...`, `yilian crl ...`: the alliance's trust set-up.

use std::path::Path;

use anyhow::{Context, Result, bail};
use yilian_node::control::{Request, Response};
use yilian_node::datadir::DataDir;
use yilian_node::identity::ca::{Ca, Validity};
use yilian_node::identity::enroll::{self, Bundle, EnrollmentRequest, date};

use crate::cli::{CaCommand, CrlCommand, EnrollCommand};
use crate::connect::{connect, node_running};
use crate::output;

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not a {what}", path.display()))
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

pub(crate) fn ca(dir: Option<&Path>, cmd: CaCommand) -> Result<()> {
    match cmd {
        CaCommand::Init { alliance } => {
            let dir = dir.context("pass the CA directory with --dir CADIR")?;
            if DataDir::new(dir).config_path().exists() {
                bail!(
                    "{} is a node's data directory; keep the CA in its own directory (and offline)",
                    dir.display()
                );
            }
            let ca = Ca::init(dir, &alliance)
                .with_context(|| format!("cannot create a CA in {}", dir.display()))?;
            output::line(format_args!(
                "created the CA of alliance {:?} in {}\nkeep {} offline and backed up: whoever holds it can admit nodes",
                ca.alliance(),
                dir.display(),
                dir.join("ca.key").display()
            ));
            Ok(())
        }
        CaCommand::Issue {
            ca,
            request,
            out,
            roles,
            valid_days,
        } => {
            let mut authority = Ca::open(&ca)?;
            let req: EnrollmentRequest = read_json(&request, "yilian enrollment request")?;
            if req.format != EnrollmentRequest::FORMAT {
                bail!(
                    "{} is not a yilian enrollment request (format {:?})",
                    request.display(),
                    req.format
                );
            }
            let bundle = authority
                .issue(&req, &roles, Validity::days_from_now(valid_days))
                .with_context(|| format!("cannot sign {}", request.display()))?;
            write_new(&out, &serde_json::to_vec_pretty(&bundle)?)?;
            let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            output::line(format_args!(
                "issued a certificate for {} {} ({}), node {}, roles [{}], valid {valid_days} days\nbundle written to {}: give it to the node (yilian enroll install)",
                req.facility.code,
                req.facility.name,
                req.facility.kind,
                req.node_id,
                roles.join(", "),
                out.display()
            ));
            Ok(())
        }
        CaCommand::Revoke { ca, node } => {
            let mut authority = Ca::open(&ca)?;
            let n = authority.revoke(node)?;
            output::line(format_args!(
                "revoked {n} certificate(s) of node {node}; revocation list number {} written to {}\n\
                 install it on every node: yilian crl install {}",
                authority.ledger().crl_number,
                authority.crl_path().display(),
                authority.crl_path().display()
            ));
            Ok(())
        }
        CaCommand::List { ca, json } => {
            let authority = Ca::open(&ca)?;
            let ledger = authority.ledger();
            if json.json {
                return output::json(ledger);
            }
            let mut t = output::table(&["facility", "node", "serial", "valid until", "revoked"]);
            for c in &ledger.issued {
                t.add_row(vec![
                    c.facility.clone(),
                    c.node.to_string(),
                    c.serial.clone(),
                    date(c.not_after),
                    c.revoked_at.map(date).unwrap_or_else(|| "-".into()),
                ]);
            }
            output::line(t);
            Ok(())
        }
    }
}

pub(crate) async fn enroll(dir: &Path, cmd: EnrollCommand) -> Result<()> {
    let dd = DataDir::new(dir);
    match cmd {
        EnrollCommand::Request { out } => {
            let (cfg, key) = dd.load()?;
            let req = enroll::make_request(&key, &cfg.facility)?;
            write_new(&out, &serde_json::to_vec_pretty(&req)?)?;
            output::line(format_args!(
                "wrote the enrollment request of {} ({}), node {} to {}\nsend it to county IT (yilian ca issue)",
                cfg.facility.code,
                cfg.facility.name,
                key.node_id(),
                out.display()
            ));
            Ok(())
        }
        EnrollCommand::Install { bundle } => {
            if node_running(dir).await {
                bail!(
                    "a node is running on {}: stop it before installing a bundle",
                    dir.display()
                );
            }
            let (cfg, key) = dd.load()?;
            let b: Bundle = read_json(&bundle, "yilian bundle")?;
            let now = jiff::Timestamp::now().as_second();
            let info = enroll::install(&dd, &key, &cfg.facility, &b, now)
                .with_context(|| format!("refused {}", bundle.display()))?;
            output::line(format_args!(
                "installed: {} is now a member of alliance {:?} (certificate valid until {})",
                info.claims.facility,
                info.claims.alliance,
                date(info.not_after)
            ));
            Ok(())
        }
    }
}

pub(crate) async fn crl(dir: &Path, cmd: CrlCommand) -> Result<()> {
    match cmd {
        CrlCommand::Install { file } => {
            let pem = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let mut conn = connect(dir).await?;
            let resp = conn.call(Request::CrlInstall { pem }).await;
            conn.close().await;
            let Response::CrlInstalled {
                number,
                revoked,
                dropped,
            } = resp.with_context(|| format!("refused {}", file.display()))?
            else {
                bail!("the node answered with something else");
            };
            output::line(format_args!(
                "installed revocation list number {number} ({revoked} revoked certificate(s))"
            ));
            for p in dropped {
                output::line(format_args!(
                    "dropped the connection to {} (node {}): revoked",
                    p.facility, p.node_id
                ));
            }
            Ok(())
        }
    }
}
