//! The signed messages and the Ed25519 signatures over them.
//!
//! Every message starts with a domain tag naming what is signed, so a signature made for one
//! purpose can never be read as another:
//!
//! | message | bytes |
//! | --- | --- |
//! | a change | `b"yilian/change/v1\0"` ‖ document id (16) ‖ change hash (32) |
//! | a document header | `b"yilian/header/v1\0"` ‖ postcard(header) |
//! | a legacy attestation | `b"yilian/legacy/v1\0"` ‖ document id (16) ‖ heads (32 each, sorted, distinct) |
//!
//! The document id in a change message is what stops a valid signature from being replayed
//! into another document (a change with no dependencies would otherwise fit any document).
//! Signing uses the node key (the PKCS#8 document of [`crate::identity::NodeKey`]); verifying
//! needs only the signer's raw 32-byte public key, taken from its certificate.

use automerge::ChangeHash;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use super::header::{DocHeader, HeaderError, SignedHeader};
use crate::identity::node_id_of;
use crate::ids::{DocId, NodeId};

/// An Ed25519 signature.
pub(crate) type Signature = [u8; 64];

/// Domain tag of a change signature.
pub(crate) const CHANGE_TAG: &[u8] = b"yilian/change/v1\0";
/// Domain tag of a header signature.
pub(crate) const HEADER_TAG: &[u8] = b"yilian/header/v1\0";
/// Domain tag of a legacy attestation.
pub(crate) const LEGACY_TAG: &[u8] = b"yilian/legacy/v1\0";

/// A signature that does not verify, or a key that cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SigError {
    /// The signature is not the signer's over this message.
    #[error(
        "the signature does not verify: the content or the document is not what {signer} signed"
    )]
    BadSignature {
        /// The claimed signer.
        signer: NodeId,
    },
    /// The private key cannot be used.
    #[error("the node key cannot sign: {0}")]
    BadKey(String),
}

/// What a change signature covers.
pub(crate) fn change_message(doc: &DocId, hash: &ChangeHash) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHANGE_TAG.len() + 16 + 32);
    m.extend_from_slice(CHANGE_TAG);
    m.extend_from_slice(doc.as_bytes());
    m.extend_from_slice(&hash.0);
    m
}

/// What a header signature covers.
pub(crate) fn header_message(header: &DocHeader) -> Result<Vec<u8>, HeaderError> {
    postcard::to_extend(header, HEADER_TAG.to_vec()).map_err(|e| HeaderError::Encode(e.to_string()))
}

/// What a legacy attestation covers: the document and the heads it held at migration (sorted,
/// duplicates dropped, so the same set always gives the same message).
pub(crate) fn legacy_message(doc: &DocId, heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut m = Vec::with_capacity(LEGACY_TAG.len() + 16 + 32 * sorted.len());
    m.extend_from_slice(LEGACY_TAG);
    m.extend_from_slice(doc.as_bytes());
    for h in &sorted {
        m.extend_from_slice(&h.0);
    }
    m
}

/// Signs with this node's key.
pub(crate) struct Signer {
    pair: Ed25519KeyPair,
    public: [u8; 32],
    node: NodeId,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "Signer({})", self.node)
    }
}

impl Signer {
    /// A signer from the node key's PKCS#8 document (`NodeKey::key_pair().serialize_der()`).
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<Signer, SigError> {
        let pair = Ed25519KeyPair::from_pkcs8(der)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(der))
            .map_err(|e| SigError::BadKey(e.to_string()))?;
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| SigError::BadKey("not an Ed25519 public key".into()))?;
        Ok(Signer {
            node: node_id_of(&public),
            pair,
            public,
        })
    }

    /// The node this key belongs to.
    pub(crate) fn node_id(&self) -> NodeId {
        self.node
    }

    /// The raw public key.
    pub(crate) fn public_key(&self) -> [u8; 32] {
        self.public
    }

    fn sign(&self, message: &[u8]) -> Signature {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }

    /// Signs a change of document `doc`.
    pub(crate) fn sign_change(&self, doc: &DocId, hash: &ChangeHash) -> Signature {
        self.sign(&change_message(doc, hash))
    }

    /// Signs a document header this node creates.
    pub(crate) fn sign_header(&self, header: DocHeader) -> Result<SignedHeader, HeaderError> {
        let sig = self.sign(&header_message(&header)?);
        Ok(SignedHeader { header, sig })
    }

    /// Signs a legacy attestation: this node vouches for the history of `doc` up to `heads`.
    pub(crate) fn sign_legacy(&self, doc: &DocId, heads: &[ChangeHash]) -> Signature {
        self.sign(&legacy_message(doc, heads))
    }
}

/// Checks `sig` by `signer` (whose raw public key is `public_key`) over `message`.
pub(crate) fn verify(
    signer: NodeId,
    public_key: &[u8; 32],
    message: &[u8],
    sig: &Signature,
) -> Result<(), SigError> {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, sig)
        .map_err(|_| SigError::BadSignature { signer })
}

/// Checks a change signature.
pub(crate) fn verify_change(
    signer: NodeId,
    public_key: &[u8; 32],
    doc: &DocId,
    hash: &ChangeHash,
    sig: &Signature,
) -> Result<(), SigError> {
    verify(signer, public_key, &change_message(doc, hash), sig)
}

/// Checks a legacy attestation.
pub(crate) fn verify_legacy(
    signer: NodeId,
    public_key: &[u8; 32],
    doc: &DocId,
    heads: &[ChangeHash],
    sig: &Signature,
) -> Result<(), SigError> {
    verify(signer, public_key, &legacy_message(doc, heads), sig)
}
