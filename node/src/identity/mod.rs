//! Who this node is: its key pair, the node id derived from it, and the Automerge actor id it
//! writes with. The key is made once at `yilian init` and never leaves the data directory.

mod keys;

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
