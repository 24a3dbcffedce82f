//! One module per command group; each turns validated arguments into requests and prints.
//! This module only dispatches: no command module uses another (shared pieces live in
//! `connect.rs` and `output.rs`).

mod ca;
mod catalog;
mod demo;
mod doc;
mod node;
mod outreach;
mod referral;
mod report;
mod result;
mod sync;

use std::path::PathBuf;

use anyhow::{Result, anyhow};

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<()> {
    let dir = cli.dir;
    if let Some(d) = dir.as_deref() {
        crate::output::use_zone_of(d);
    }
    let need_dir = || -> Result<PathBuf> {
        dir.clone()
            .ok_or_else(|| anyhow!("no data directory: pass --dir DIR or set YILIAN_DIR"))
    };
    match cli.command {
        Command::Init(args) => node::init(&need_dir()?, args),
        Command::Node(cmd) => node::run(&need_dir()?, cmd).await,
        Command::Status(flag) => node::status(&need_dir()?, flag.json).await,
        Command::Doc(cmd) => doc::run(&need_dir()?, cmd).await,
        Command::Note(cmd) => doc::note(&need_dir()?, cmd).await,
        Command::Ca(cmd) => ca::ca(dir.as_deref(), cmd),
        Command::Enroll(cmd) => ca::enroll(&need_dir()?, cmd).await,
        Command::Crl(cmd) => ca::crl(&need_dir()?, cmd).await,
        Command::Peer(cmd) => node::peer(&need_dir()?, cmd).await,
        Command::Referral(cmd) => referral::run(&need_dir()?, cmd).await,
        Command::Result(cmd) => result::run(&need_dir()?, cmd).await,
        Command::Qc(cmd) => result::qc(&need_dir()?, cmd).await,
        Command::Facility(cmd) => result::facilities(&need_dir()?, cmd).await,
        Command::Catalog(cmd) => catalog::run(&need_dir()?, cmd).await,
        Command::Dispensing(cmd) => catalog::dispensing_cmd(&need_dir()?, cmd).await,
        Command::Outreach(cmd) => outreach::run(&need_dir()?, cmd).await,
        Command::Report(cmd) => report::run(&need_dir()?, cmd).await,
        Command::Sync(cmd) => sync::run(&need_dir()?, cmd).await,
        Command::Demo(args) => demo::run(args).await,
    }
}
