//! The workspace's binaries. Tests and benchmarks run the real `yilian` binary built from this
//! workspace, in the same profile (debug or release) as the program asking for it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Environment variable naming the `yilian` binary to run instead of the one beside the
/// running program (a benchmark started by a test passes it on, so both use the same build).
pub const YILIAN_BIN_ENV: &str = "YILIAN_BIN";

/// The `yilian` binary: `$YILIAN_BIN` if set, else the one in this program's profile directory
/// (`target/<profile>/yilian`), built with cargo if it is missing.
///
/// `cargo test --workspace` builds it before any test runs. When running only some crate's
/// tests (`cargo test -p yilian-tests`), build it first (`cargo build -p yilian`): a stale
/// binary is not rebuilt from here, because cargo holds its build lock while tests run.
pub fn yilian_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os(YILIAN_BIN_ENV) {
        Some(path) => PathBuf::from(path),
        None => workspace_bin("yilian", "yilian"),
    })
    .clone()
}

/// The `yilian-bench` binary of this program's profile, built with cargo if it is missing
/// (`cargo test --workspace` builds it).
pub fn bench_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| workspace_bin("yilian-bench", "yilian-bench"))
        .clone()
}

/// A command for the `yilian-bench` binary whose nodes run this program's `yilian` binary
/// (passed on in `YILIAN_BIN`, so the benchmark never builds one while cargo holds its lock).
pub fn bench_command() -> Command {
    let mut c = Command::new(bench_bin());
    c.env(YILIAN_BIN_ENV, yilian_bin()).env_remove("YILIAN_DIR");
    c
}

/// This program's profile directory: `target/<profile>` (a test executable lives one level
/// down, in `deps/`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the running program's path");
    let dir = exe.parent().expect("the running program's directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// Binary `bin` of workspace package `package` in [`profile_dir`], built if it is missing.
pub fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    let dir = profile_dir();
    let path = dir.join(bin);
    if !path.exists() {
        build(package, bin);
    }
    path
}

/// Builds binary `bin` of workspace package `package` with cargo (`$CARGO`, else the cargo
/// that built this crate), in the profile of [`profile_dir`]. Must not be called while cargo
/// holds the build lock (from a test run by `cargo test`); under `cargo run` it is free.
pub fn build(package: &str, bin: &str) {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into()));
    cmd.args(["build", "-p", package, "--bin", bin])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir().file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "building the {bin} binary failed");
}
