//! `yilian`: the operator tool for yilian alliance nodes. It turns raw arguments into validated
//! values, talks to a running node over its control socket (or opens the data directory
//! directly when no node runs), prints tables or `--json`, and maps failures to exit codes.
//!
//! # Layout
//!
//! | module | owns |
//! | --- | --- |
//! | `cli` | every command, option and its validation (clap); larger groups in submodules |
//! | `commands` | one module per command group, dispatched from `commands/mod.rs` |
//! | `connect` | reaching a node: its control socket, or its files when no node runs |
//! | `output` | tables, JSON, errors, exit codes, the display time zone |
//!
//! Benchmarks live in the `yilian-bench` crate, test harnesses in `yilian-testkit`.

mod cli;
mod commands;
mod connect;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::error(&anyhow::anyhow!("cannot start the async runtime: {e}"));
            return ExitCode::from(output::EXIT_FAILURE);
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&e);
            ExitCode::from(output::exit_code(&e))
        }
    }
}
