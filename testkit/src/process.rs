//! `yilian node run` as a child process: started on a data directory, ready once its control
//! socket answers, stopped with SIGTERM (a clean shutdown) or SIGKILL (a crash).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::yilian;

/// How long a node may take to open its control socket, or to stop after SIGTERM.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(20);

/// A `yilian node run` child process. Dropping it kills the process (SIGKILL) and removes its
/// log, unless `YILIAN_KEEP_LOGS` is set.
#[derive(Debug)]
pub struct NodeProcess {
    /// The data directory.
    pub dir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl NodeProcess {
    /// Starts `yilian node run` on `dir` and waits until its control socket answers.
    pub fn start(dir: &Path) -> NodeProcess {
        Self::start_with(dir, yilian(dir))
    }

    /// Starts a node from a prepared command: [`yilian`] with other
    /// environment (e.g. `RUST_LOG`), or another program wrapping it (e.g. `prlimit`).
    /// Appends `node run`, sends stderr to the node's log and waits for the socket.
    pub fn start_with(dir: &Path, mut cmd: Command) -> NodeProcess {
        let log = dir.with_extension(format!("log-{}", std::process::id()));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open node log");
        let child = cmd
            .args(["node", "run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn node");
        let mut node = NodeProcess {
            dir: dir.to_path_buf(),
            child: Some(child),
            log,
        };
        node.wait_ready();
        node
    }

    fn wait_ready(&mut self) {
        let sock = dir_socket(&self.dir);
        let deadline = Instant::now() + NODE_TIMEOUT;
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("node exited early ({status}):\n{}", self.log_text());
            }
            // Fine-grained, so that benchmarks can time a node's start-up.
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("node did not open its socket in time:\n{}", self.log_text());
    }

    /// The node's control socket.
    pub fn socket_path(&self) -> PathBuf {
        dir_socket(&self.dir)
    }

    /// The node's stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Peak resident memory so far (`VmHWM`), KiB; 0 if it cannot be read.
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc_status_kib("VmHWM:")
    }

    /// Resident memory now (`VmRSS`), KiB; 0 if it cannot be read.
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    /// Sends SIGKILL and reaps the process: no chance to flush anything.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns its exit code.
    pub fn stop(mut self) -> i32 {
        let Some(mut c) = self.child.take() else {
            return -1;
        };
        signal(c.id(), libc::SIGTERM);
        let deadline = Instant::now() + NODE_TIMEOUT;
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("node ignored SIGTERM:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::env::var_os("YILIAN_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Sends a signal to a process (via the `kill` utility, to keep this crate free of unsafe).
pub fn signal(pid: u32, sig: i32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// The control socket of a data directory.
pub fn dir_socket(dir: &Path) -> PathBuf {
    yilian_node::datadir::DataDir::new(dir).socket_path()
}
