//! What a node certificate says. Every node certificate carries yilian's identity extension
//! (OID [`IDENTITY_OID`], a private arc; value: UTF-8 JSON of [`IdentityClaims`]) and the DNS
//! name [`NODE_SAN`], so rustls' standard WebPki verifiers check chain, dates and revocation
//! and yilian then authorises from the claims. The claimed node id must equal the id derived
//! from the certificate's public key, or the certificate is refused.

use serde::{Deserialize, Serialize};
use x509_parser::prelude::*;

use crate::config::FacilityKind;
use crate::identity::keys::node_id_of;
use crate::ids::{FacilityCode, NodeId};

/// OID of yilian's identity extension (private enterprise arc, documented in
/// `docs/architecture.md`).
pub const IDENTITY_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 1];

/// The DNS name in every node certificate; clients verify servers against it.
pub const NODE_SAN: &str = "node.yilian";

/// A role granted by the alliance CA, on top of the facility kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Role {
    /// The county pharmacy: may edit the shared drug catalog.
    Pharmacy,
    /// A quality-control office: may record QC certifications.
    Qc,
}

impl Role {
    /// The name used on the command line and in certificates.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Pharmacy => "pharmacy",
            Role::Qc => "qc",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pharmacy" => Ok(Role::Pharmacy),
            "qc" => Ok(Role::Qc),
            other => Err(format!("unknown role {other:?}: use pharmacy or qc")),
        }
    }
}

/// The identity a certificate grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityClaims {
    /// Claims format version.
    pub v: u32,
    /// The alliance's name (the CA's).
    pub alliance: String,
    /// The facility code.
    pub facility: FacilityCode,
    /// The facility's name.
    pub name: String,
    /// The facility kind.
    pub kind: FacilityKind,
    /// The node id (derived from the certificate's key).
    pub node: NodeId,
    /// Roles granted.
    pub roles: Vec<Role>,
}

/// A node certificate, read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// The identity it grants.
    pub claims: IdentityClaims,
    /// Serial number, hex.
    pub serial: String,
    /// Valid from (seconds since the Unix epoch).
    pub not_before: i64,
    /// Valid until (seconds since the Unix epoch).
    pub not_after: i64,
}

/// A certificate that is not a usable yilian node certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// Not parseable X.509.
    #[error("not a valid X.509 certificate: {0}")]
    Parse(String),
    /// No yilian identity extension.
    #[error("the certificate carries no yilian identity (not issued by a yilian alliance CA)")]
    NoIdentity,
    /// The identity extension is unreadable.
    #[error("the certificate's yilian identity is unreadable: {0}")]
    BadIdentity(String),
    /// The claimed node id is not the key's.
    #[error("the certificate claims node {claimed} but its key belongs to node {actual}")]
    NodeMismatch {
        /// Claimed.
        claimed: NodeId,
        /// Derived from the key.
        actual: NodeId,
    },
}

/// Reads a node certificate (DER).
pub fn parse_node_cert(der: &[u8]) -> Result<CertInfo, CertError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CertError::Parse(e.to_string()))?;
    let oid = x509_parser::der_parser::oid::Oid::from(IDENTITY_OID)
        .map_err(|_| CertError::Parse("bad identity OID".into()))?;
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid == oid)
        .ok_or(CertError::NoIdentity)?;
    let claims: IdentityClaims =
        serde_json::from_slice(ext.value).map_err(|e| CertError::BadIdentity(e.to_string()))?;
    let actual = node_id_of(&cert.public_key().subject_public_key.data);
    if actual != claims.node {
        return Err(CertError::NodeMismatch {
            claimed: claims.node,
            actual,
        });
    }
    Ok(CertInfo {
        claims,
        serial: hex(cert.raw_serial()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Whether `cert_der` carries a valid signature by the CA certificate `ca_der`.
pub fn signed_by(cert_der: &[u8], ca_der: &[u8]) -> Result<bool, CertError> {
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| CertError::Parse(e.to_string()))?;
    let (_, ca) = X509Certificate::from_der(ca_der).map_err(|e| CertError::Parse(e.to_string()))?;
    Ok(cert.verify_signature(Some(ca.public_key())).is_ok())
}

/// The subject's organisation (the alliance name) of a CA certificate.
pub fn ca_alliance(ca_der: &[u8]) -> Result<String, CertError> {
    let (_, ca) = X509Certificate::from_der(ca_der).map_err(|e| CertError::Parse(e.to_string()))?;
    ca.subject()
        .iter_organization()
        .next()
        .and_then(|o| o.as_str().ok())
        .map(str::to_string)
        .ok_or_else(|| CertError::Parse("the CA certificate names no alliance".into()))
}

/// A revocation list, read and checked against its CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInfo {
    /// The list's sequence number; a newer list has a larger one.
    pub number: u64,
    /// Revoked serial numbers, hex.
    pub revoked: Vec<String>,
    /// Issued at (seconds since the Unix epoch).
    pub this_update: i64,
}

/// Reads a revocation list (DER) and checks that the CA `ca_der` signed it.
pub fn parse_crl(crl_der: &[u8], ca_der: &[u8]) -> Result<CrlInfo, CertError> {
    let (_, crl) = CertificateRevocationList::from_der(crl_der)
        .map_err(|e| CertError::Parse(format!("not a valid revocation list: {e}")))?;
    let (_, ca) = X509Certificate::from_der(ca_der).map_err(|e| CertError::Parse(e.to_string()))?;
    crl.verify_signature(ca.public_key()).map_err(|_| {
        CertError::Parse("the revocation list is not signed by this alliance's CA".into())
    })?;
    let number = crl
        .crl_number()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    Ok(CrlInfo {
        number,
        revoked: crl
            .iter_revoked_certificates()
            .map(|r| hex(r.raw_serial()))
            .collect(),
        this_update: crl.last_update().timestamp(),
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
