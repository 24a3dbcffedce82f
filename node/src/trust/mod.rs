//! Trust on receipt (issue 15), part A: the pure verification core. Everything here is
//! sans-IO and deterministic: it reads bytes, signatures, headers and the signers' certificate
//! claims, and answers which changes may enter a document and why the others may not. It never
//! touches storage, the network or the clock.
//!
//! | module | owns |
//! | --- | --- |
//! | [`chunk`] | splitting concatenated Automerge chunks; parsing one untrusted change chunk (caps, checksum, canonical encoding) |
//! | [`sign`] | the domain-separated signed messages (change, header, legacy attestation), signing with the node key, verifying |
//! | [`header`] | the signed document header (kind, audience, parties fixed at creation) and well-known headers |
//! | [`shadow`] | the structural verifier: sequence, dependencies, op counters, objects, elements, preds, allowed actions; what each change touches; equivocation |
//! | [`rules`] | the write rules per document kind on those touches, and who may create a document of each kind |
//! | [`verify`] | the pipeline for one document: a batch of signed changes, or a whole document received on first sync |
//!
//! Order of checks for each incoming change (the research note `automerge-trust.md` measured
//! why each is needed): bytes ([`chunk::parse_change`]), signer and signature ([`sign`]),
//! structure ([`shadow::Shadow`]), rights ([`rules`]); only then Automerge sees it, as one
//! batch, under `catch_unwind` as the last line.
//!
//! The module is not wired into the store or sync yet (part B of issue 15 does that), hence
//! `dead_code` is allowed here until then.
#![allow(dead_code)]

pub(crate) mod chunk;
pub(crate) mod header;
pub(crate) mod rules;
pub(crate) mod shadow;
pub(crate) mod sign;
pub(crate) mod verify;

#[cfg(test)]
mod tests;

/// A panic caught while Automerge looked at untrusted data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Automerge panicked on this input: {0}")]
pub(crate) struct Panicked(pub(crate) String);

/// Runs `f` (an Automerge call on untrusted data) and turns a panic into an error: the last
/// line of defence behind the checks that should make panics impossible. The caller must throw
/// away whatever `f` was working on when it panicked (Automerge's panics are not atomic).
pub(crate) fn guard<T>(f: impl FnOnce() -> T) -> Result<T, Panicked> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let text = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Panicked(text.chars().take(200).collect())
    })
}
