//! Helpers for the cross-crate integration tests in `tests/tests/`: the real `yilian` binary,
//! real data directories in temporary folders, real sockets. Nothing here is mocked.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `yilian` binary of this workspace, built if it is missing.
///
/// `cargo test --workspace` builds it before any test runs. When running only this crate's
/// tests (`cargo test -p yilian-tests`), build it first (`cargo build -p yilian`): a stale
/// binary is not rebuilt from here, because cargo holds its build lock while tests run.
pub fn yilian_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>/yilian
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable lives in target/<profile>/deps");
        let bin = profile_dir.join("yilian");
        if !bin.exists() {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-p", "yilian", "--bin", "yilian"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building the yilian binary failed");
        }
        bin
    })
    .clone()
}

/// A command for the `yilian` binary on a data directory.
pub fn yilian(dir: &Path) -> Command {
    let mut c = Command::new(yilian_bin());
    c.arg("--dir")
        .arg(dir)
        .env_remove("YILIAN_DIR")
        .env("RUST_LOG", "info");
    c
}

/// Runs `yilian --dir DIR ARGS...` to completion.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    yilian(dir).args(args).output().expect("run yilian")
}

/// Runs a command that must succeed and returns its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "yilian {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs a command that must print JSON and parses it.
pub fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let text = ok(dir, args);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("yilian {args:?} printed invalid JSON ({e}): {text}"))
}

/// Runs a command that must fail; returns (exit code, stderr).
pub fn fails(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = run(dir, args);
    assert!(
        !out.status.success(),
        "yilian {args:?} succeeded but should have failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Initialises a data directory for a facility.
pub fn init(dir: &Path, code: &str, kind: &str) {
    ok(
        dir,
        &[
            "init",
            "--facility",
            code,
            "--name",
            &format!("{code} test facility"),
            "--kind",
            kind,
        ],
    );
}

/// A `yilian node run` child process.
pub struct NodeProcess {
    /// The data directory.
    pub dir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl NodeProcess {
    /// Starts `yilian node run` and waits until its control socket answers.
    pub fn start(dir: &Path) -> NodeProcess {
        Self::start_with(dir, yilian(dir))
    }

    /// Starts a node from a prepared command (e.g. wrapped in `prlimit`), appending
    /// `node run` and waiting for the socket.
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
        let deadline = Instant::now() + Duration::from_secs(20);
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
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("node did not open its socket in time:\n{}", self.log_text());
    }

    /// The node's stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
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
        let deadline = Instant::now() + Duration::from_secs(20);
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

/// A fresh temporary directory for a test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("yl-")
        .tempdir()
        .expect("tempdir")
}

/// Waits until `f` holds, polling; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// An alliance CA in a temporary directory, driven through the real CLI.
pub struct Alliance {
    /// The CA directory.
    pub ca: PathBuf,
    /// Where node directories go.
    pub root: PathBuf,
}

impl Alliance {
    /// `yilian ca init` in `root/ca`.
    pub fn new(root: &Path, name: &str) -> Alliance {
        let ca = root.join("ca");
        ok(&ca, &["ca", "init", "--alliance", name]);
        Alliance {
            ca,
            root: root.to_path_buf(),
        }
    }

    /// Initialises a node listening on an ephemeral loopback port and enrolls it through the
    /// CLI (request, issue with `roles`, install). Returns its data directory.
    pub fn node(&self, code: &str, kind: &str, roles: &str) -> PathBuf {
        let dir = self.root.join(code.to_lowercase());
        ok(
            &dir,
            &[
                "init",
                "--facility",
                code,
                "--name",
                &format!("{code} facility"),
                "--kind",
                kind,
                "--listen",
                "127.0.0.1:0",
            ],
        );
        let req = self.root.join(format!("{code}.req"));
        let bundle = self.root.join(format!("{code}.bundle"));
        ok(&dir, &["enroll", "request", "--out", req.to_str().unwrap()]);
        let mut args = vec![
            "ca",
            "issue",
            "--ca",
            self.ca.to_str().unwrap(),
            "--request",
            req.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
        ];
        if !roles.is_empty() {
            args.extend(["--roles", roles]);
        }
        ok(&dir, &args);
        ok(&dir, &["enroll", "install", bundle.to_str().unwrap()]);
        dir
    }
}

/// Sets the facility's time zone (`[facility] time_zone`) in a data directory's
/// configuration, so a test reads dates the same on any machine.
pub fn set_time_zone(dir: &Path, zone: &str) {
    let path = yilian_node::datadir::DataDir::new(dir).config_path();
    let mut cfg = yilian_node::config::NodeConfig::load(&path).expect("configuration");
    cfg.facility.time_zone = Some(zone.parse().expect("a time zone name"));
    cfg.save(&path).expect("write configuration");
}

/// The UDP address a running node listens on, from `yilian status --json`.
pub fn node_addr(dir: &Path) -> std::net::SocketAddr {
    let s = json(dir, &["status", "--json"]);
    s["network"]["listen"]
        .as_str()
        .unwrap_or_else(|| panic!("node has no network: {s}"))
        .parse()
        .expect("socket address")
}

/// The peers of a running node, from `yilian peer list --json`.
pub fn peers(dir: &Path) -> Vec<serde_json::Value> {
    json(dir, &["peer", "list", "--json"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Whether a node lists `facility` as a connected peer.
pub fn connected_to(dir: &Path, facility: &str) -> bool {
    peers(dir)
        .iter()
        .any(|p| p["state"] == "connected" && p["peer"]["facility"] == facility)
}

/// Dials `addr` with a raw QUIC client using `cfg` (ALPN and server name set here) and
/// reports how the attempt ended: `Ok(())` if the connection stayed up for `hold`, otherwise
/// the error or close reason.
pub async fn quic_attempt(
    addr: std::net::SocketAddr,
    mut cfg: rustls::ClientConfig,
    hold: Duration,
) -> Result<(), String> {
    cfg.alpn_protocols = vec![yilian_node::identity::tls::ALPN.to_vec()];
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(cfg).map_err(|e| e.to_string())?;
    let client = quinn::ClientConfig::new(std::sync::Arc::new(crypto));
    let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).map_err(|e| e.to_string())?;
    let conn = ep
        .connect_with(client, addr, yilian_node::identity::cert::NODE_SAN)
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    let outcome = tokio::time::timeout(hold, conn.closed()).await;
    ep.close(0u32.into(), b"done");
    match outcome {
        Err(_) => Ok(()),
        Ok(reason) => Err(reason.to_string()),
    }
}

/// Enrols a throwaway township node `code` with the alliance CA in `ca_dir` and connects it
/// to the node at `addr` as yilian nodes do; it then does whatever the test makes it do.
pub async fn enrolled_client(
    ca_dir: &Path,
    code: &str,
    addr: std::net::SocketAddr,
) -> (quinn::Endpoint, quinn::Connection) {
    use yilian_node::identity::NodeKey;
    use yilian_node::identity::ca::{Ca, Validity};
    let mut ca = Ca::open(ca_dir).unwrap();
    let key = NodeKey::generate().unwrap();
    let facility = yilian_node::config::FacilityConfig {
        code: code.parse().unwrap(),
        name: format!("test client {code}"),
        kind: yilian_node::config::FacilityKind::TownshipCenter,
        time_zone: None,
    };
    let bundle = ca
        .issue(
            &yilian_node::identity::enroll::make_request(&key, &facility).unwrap(),
            &[],
            Validity::days_from_now(5),
        )
        .unwrap();
    let tls = yilian_node::identity::tls::TlsMaterial::from_pem(
        bundle.ca_cert_pem.as_bytes(),
        bundle.cert_pem.as_bytes(),
        &key,
        None,
    )
    .unwrap();
    let client = yilian_node::transport::endpoint::client_config(&tls, Default::default()).unwrap();
    let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let conn = ep
        .connect_with(client, addr, yilian_node::identity::cert::NODE_SAN)
        .unwrap()
        .await
        .unwrap();
    (ep, conn)
}

/// A rustls client configuration (ring, TLS 1.3) that trusts `ca_pem` and presents
/// `client` (certificate PEM and PKCS#8 key DER) if given.
pub fn client_tls(ca_pem: &str, client: Option<(&str, Vec<u8>)>) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    match client {
        None => b.with_no_client_auth(),
        Some((cert_pem, key_der)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
            )
            .unwrap(),
    }
}

/// Deterministic pseudo-random bytes (xorshift64), for incompressible test payloads.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Adds `n` notes of about `size` bytes each, with the given audience, directly to the store of
/// a stopped node (real redb file, through the library). Returns their ids.
pub fn bulk_notes(dir: &Path, n: usize, size: usize, audience: &[&str]) -> Vec<String> {
    use automerge::transaction::Transactable;
    let dd = yilian_node::datadir::DataDir::new(dir);
    let (cfg, key) = dd.load().expect("data dir");
    let mut store = dd
        .open_store(key.node_id(), &cfg)
        .expect("store (is the node stopped?)");
    let mut codes: Vec<yilian_node::ids::FacilityCode> =
        audience.iter().map(|c| c.parse().unwrap()).collect();
    codes.push(cfg.facility.code.clone());
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut b = store.batch().expect("batch");
        for i in chunk {
            let mut doc = automerge::Automerge::new().with_actor(b.actor().clone());
            let text: String = pseudo_random_bytes(*i as u64 + 1, size)
                .into_iter()
                .map(|b| (b'a' + b % 26) as char)
                .collect();
            doc.transact::<_, _, automerge::AutomergeError>(|tx| {
                tx.put(automerge::ROOT, "schema", 1u64)?;
                tx.put(automerge::ROOT, "title", format!("bulk {i}"))?;
                tx.put(automerge::ROOT, "body", text.as_str())?;
                tx.put_object(automerge::ROOT, "entries", automerge::ObjType::List)?;
                Ok(())
            })
            .unwrap();
            let info = b
                .create(
                    yilian_node::documents::DocKind::Note,
                    yilian_node::documents::Audience::new(codes.clone()),
                    doc,
                )
                .expect("create");
            ids.push(info.id.to_string());
        }
        b.commit().expect("commit");
    }
    ids
}

/// The heads of a document on a running node, or None if it does not hold it.
pub fn heads_of(dir: &Path, id: &str) -> Option<serde_json::Value> {
    let out = run(dir, &["doc", "show", id, "--json"]);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .map(|v| v["heads"].clone())
}

/// Document id -> heads, for every document a running node holds.
pub fn all_heads(dir: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    json(dir, &["doc", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap().to_string(), d["heads"].clone()))
        .collect()
}

/// Waits until every node holds `id` with the same heads; returns them.
pub fn wait_converged(dirs: &[&Path], id: &str, timeout: Duration) -> serde_json::Value {
    let mut last = Vec::new();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        last = dirs.iter().map(|d| heads_of(d, id)).collect();
        if last.iter().all(|h| h.is_some() && *h == last[0]) {
            return last[0].clone().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("document {id} did not converge within {timeout:?}: {last:?}");
}
