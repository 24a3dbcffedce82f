//! The data directory a node owns, and what `yilian init` puts in it:
//!
//! | file | what |
//! | --- | --- |
//! | `yilian.toml` | configuration ([`crate::config::NodeConfig`]) |
//! | `node.key` | the node's private key, PKCS#8 PEM, mode 0600 |
//! | `store.redb` | the document store |
//! | `control.sock` | the control socket (mode 0600), present while the node runs |
//! | `store.holder` | which process opened the store last (pid and command, no arguments) |
//!
//! The directory itself is created with mode 0700. The redb file lock is what keeps two
//! processes from opening the store at once; `store.holder` only explains who holds it.

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, FacilityConfig, NetworkConfig, NodeConfig, StorageConfig};
use crate::identity::{KeyError, NodeKey};
use crate::ids::NodeId;
use crate::storage::{Store, StoreError, StoreOptions};

/// Configuration file name.
pub const CONFIG_FILE: &str = "yilian.toml";
/// Private key file name.
pub const KEY_FILE: &str = "node.key";
/// Store file name.
pub const STORE_FILE: &str = "store.redb";
/// Control socket file name.
pub const SOCKET_FILE: &str = "control.sock";
/// The record of which process opened the store last.
pub const HOLDER_FILE: &str = "store.holder";

/// How long a process that finds the store in use keeps trying before it gives up (an offline
/// command holds it for a moment; a node that is starting binds its socket within this time).
pub const STORE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// How often a process waiting for the store tries again.
pub const STORE_LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// A process that opened the store, as it recorded itself in [`HOLDER_FILE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreHolder {
    /// Its process id.
    pub pid: u32,
    /// What it is (`yilian node run`, `yilian status`, ...): program and command, never
    /// argument values.
    pub command: String,
}

impl std::fmt::Display for StoreHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} ({})", self.pid, self.command)
    }
}

/// A data directory that could not be created or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// `init` on a directory that already holds a node.
    #[error("{0} already holds a yilian node (found {CONFIG_FILE}); refusing to overwrite it")]
    AlreadyInitialised(String),
    /// Opening a directory that holds no node.
    #[error(
        "{0} is not a yilian data directory (no {CONFIG_FILE}): run `yilian init --dir {0}` first"
    )]
    NotInitialised(String),
    /// A file system failure.
    #[error("{path}")]
    Io {
        /// What was being accessed.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The configuration file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key file is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store is unusable.
    #[error("store {path}")]
    Store {
        /// The store file.
        path: String,
        /// Why.
        source: StoreError,
    },
}

/// The paths of a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// A data directory at `root` (nothing is checked yet).
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }
    /// The private key file.
    pub fn key_path(&self) -> PathBuf {
        self.root.join(KEY_FILE)
    }
    /// The store file.
    pub fn store_path(&self) -> PathBuf {
        self.root.join(STORE_FILE)
    }
    /// The control socket.
    pub fn socket_path(&self) -> PathBuf {
        self.root.join(SOCKET_FILE)
    }
    /// The record of the store's last holder.
    pub fn holder_path(&self) -> PathBuf {
        self.root.join(HOLDER_FILE)
    }

    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError {
        let path = path.display().to_string();
        move |source| DataDirError::Io { path, source }
    }

    /// Creates a node's data directory: configuration, key pair and an empty store. Refuses a
    /// directory that already holds a node. Returns the new node's id.
    pub fn init(
        &self,
        facility: FacilityConfig,
        network: NetworkConfig,
    ) -> Result<NodeId, DataDirError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if self.config_path().exists() || self.store_path().exists() {
            return Err(DataDirError::AlreadyInitialised(
                self.root.display().to_string(),
            ));
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(self.io(&self.root))?;
        std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))
            .map_err(self.io(&self.root))?;
        let key = NodeKey::generate()?;
        key.write_new(&self.key_path())?;
        let cfg = NodeConfig {
            facility,
            storage: StorageConfig::default(),
            network,
            recognition: Default::default(),
            reports: Default::default(),
        };
        let store = Store::create(&self.store_path(), key.node_id(), StoreOptions::default())
            .map_err(|source| DataDirError::Store {
                path: self.store_path().display().to_string(),
                source,
            })?;
        drop(store);
        // The config goes last: its presence marks a complete directory.
        cfg.save(&self.config_path())?;
        Ok(key.node_id())
    }

    /// Reads the configuration and key of an initialised directory.
    pub fn load(&self) -> Result<(NodeConfig, NodeKey), DataDirError> {
        if !self.root.is_dir() {
            return Err(DataDirError::NotInitialised(
                self.root.display().to_string(),
            ));
        }
        if !self.config_path().exists() {
            return Err(DataDirError::NotInitialised(
                self.root.display().to_string(),
            ));
        }
        let cfg = NodeConfig::load(&self.config_path())?;
        let key = NodeKey::load(&self.key_path())?;
        Ok((cfg, key))
    }

    /// Opens the store (fails with [`StoreError::InUse`] while another process has it open),
    /// recording this process as its holder under the name of the running program.
    pub fn open_store(&self, node: NodeId, cfg: &NodeConfig) -> Result<Store, DataDirError> {
        let program = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "a program using yilian".into());
        self.open_store_as(node, cfg, &program)
    }

    /// Opens the store like [`DataDir::open_store`], recording this process as its holder with
    /// `command` (say `yilian status`; never argument values, which may name patients).
    pub fn open_store_as(
        &self,
        node: NodeId,
        cfg: &NodeConfig,
        command: &str,
    ) -> Result<Store, DataDirError> {
        let store = Store::open(
            &self.store_path(),
            node,
            StoreOptions {
                cache_docs: cfg.storage.cache_docs,
                ..StoreOptions::default()
            },
        )
        .map_err(|source| DataDirError::Store {
            path: self.store_path().display().to_string(),
            source,
        })?;
        // Only an explanation for whoever finds the store locked: failing to write it must not
        // stop the process that holds the store.
        let record = format!(
            "pid={}\ncommand={}\n",
            std::process::id(),
            command.replace('\n', " ")
        );
        if let Err(e) = std::fs::write(self.holder_path(), record) {
            tracing::debug!(error = %e, "cannot record the store's holder");
        }
        Ok(store)
    }

    /// The process that holds the store now, as far as its record tells: `None` when there is
    /// no record, or when it names a process that no longer exists.
    pub fn store_holder(&self) -> Option<StoreHolder> {
        let text = std::fs::read_to_string(self.holder_path()).ok()?;
        let mut pid = None;
        let mut command = None;
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pid", v)) => pid = v.trim().parse::<u32>().ok(),
                Some(("command", v)) => command = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let pid = pid?;
        let proc_dir = Path::new("/proc");
        if proc_dir.is_dir() && !proc_dir.join(pid.to_string()).exists() {
            return None;
        }
        Some(StoreHolder {
            pid,
            command: command.unwrap_or_else(|| "unknown command".into()),
        })
    }
}
