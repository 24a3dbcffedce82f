//! The node key pair (Ed25519), stored as PKCS#8 PEM with mode 0600, and the ids derived from it.

use std::io::Write;
use std::path::Path;

use automerge::ActorId;

use crate::ids::NodeId;

/// A node key that could not be made, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("{path}")]
    Io {
        /// The key file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key file holds no usable key.
    #[error("{path} does not hold a usable node key: {reason}")]
    Invalid {
        /// The key file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// Key generation failed.
    #[error("could not generate a key pair: {0}")]
    Generate(String),
}

/// This node's key pair.
pub struct NodeKey {
    pair: rcgen::KeyPair,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "NodeKey({})", self.node_id())
    }
}

impl NodeKey {
    /// A fresh Ed25519 key pair.
    pub fn generate() -> Result<NodeKey, KeyError> {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map(|pair| NodeKey { pair })
            .map_err(|e| KeyError::Generate(e.to_string()))
    }

    /// Reads a key written by [`NodeKey::write_new`].
    pub fn load(path: &Path) -> Result<NodeKey, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        rcgen::KeyPair::from_pem(&pem)
            .map(|pair| NodeKey { pair })
            .map_err(|e| KeyError::Invalid {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
    }

    /// Writes the key to a new file with mode 0600; refuses to overwrite an existing one.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        f.write_all(self.pair.serialize_pem().as_bytes())
            .map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// The raw public key bytes.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key_raw()
    }

    /// The rcgen key pair, for certificate requests.
    pub fn key_pair(&self) -> &rcgen::KeyPair {
        &self.pair
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        node_id_of(self.public_key())
    }
}

/// The node id for a public key: the first 16 bytes of its SHA-256.
pub fn node_id_of(public_key: &[u8]) -> NodeId {
    let digest = ring::digest::digest(&ring::digest::SHA256, public_key);
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest.as_ref()[..16]);
    NodeId(id)
}

/// The Automerge actor id a node writes with: its node id followed by an 8-byte incarnation
/// that changes whenever the store is re-created or restored, so two copies of one node never
/// write with the same actor id. A receiver can read the author's node id from the first 16
/// bytes.
pub fn actor_id(node: NodeId, incarnation: [u8; 8]) -> ActorId {
    let mut bytes = Vec::with_capacity(24);
    bytes.extend_from_slice(node.as_bytes());
    bytes.extend_from_slice(&incarnation);
    ActorId::from(bytes)
}

/// The node id inside an actor id written by [`actor_id`], if it has that shape.
pub fn node_of_actor(actor: &ActorId) -> Option<NodeId> {
    let bytes = actor.to_bytes();
    if bytes.len() != 24 {
        return None;
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[..16]);
    Some(NodeId(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = NodeKey::generate().unwrap();
        key.write_new(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = NodeKey::load(&path).unwrap();
        assert_eq!(again.node_id(), key.node_id());
        assert!(key.write_new(&path).is_err(), "overwrote an existing key");
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }

    #[test]
    fn actor_ids_carry_the_node_id() {
        let key = NodeKey::generate().unwrap();
        let a = actor_id(key.node_id(), [1; 8]);
        let b = actor_id(key.node_id(), [2; 8]);
        assert_ne!(a, b);
        assert_eq!(node_of_actor(&a), Some(key.node_id()));
        assert_eq!(node_of_actor(&ActorId::random()), None);
    }
}
