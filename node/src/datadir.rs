//! The data directory a node owns, and what `yilian init` puts in it:
//!
//! | file | what |
//! | --- | --- |
//! | `yilian.toml` | configuration ([`crate::config::NodeConfig`]) |
//! | `node.key` | the node's private key, PKCS#8 PEM, mode 0600 |
//! | `store.redb` | the document store |
//! | `control.sock` | the control socket (mode 0600), present while the node runs |
//!
//! The directory itself is created with mode 0700. The redb file lock is what keeps two
//! processes from opening the store at once.

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

    /// Opens the store (fails with [`StoreError::InUse`] while a node runs on it).
    pub fn open_store(&self, node: NodeId, cfg: &NodeConfig) -> Result<Store, DataDirError> {
        Store::open(
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
        })
    }
}
