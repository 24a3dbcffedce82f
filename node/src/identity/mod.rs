//! Who this node is and whom it trusts: its key pair and the ids derived from it (`keys`), what
//! a node certificate says (`cert`), the alliance CA kept offline by county IT (`ca`),
//! enrollment requests and bundles (`enroll`), and the rustls configurations that enforce
//! mutual TLS against the alliance CA and its revocation list (`tls`).

pub mod ca;
pub mod cert;
pub mod enroll;
mod keys;
pub mod tls;

pub use keys::{KeyError, NodeKey, actor_id, node_id_of, node_of_actor};

use ring::rand::SecureRandom;

/// `N` bytes from the operating system's secure random source.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The system RNG only fails when the OS has no entropy source at all; there is nothing
    // sensible to do then but stop, before any id is reused.
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .expect("the operating system's random source failed");
    out
}
