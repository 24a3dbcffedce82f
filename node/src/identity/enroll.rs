//! Enrollment: a node asks its alliance CA for a certificate and installs what comes back.
//!
//! The request (`yilian enroll request`) is JSON: the facility, the node id, and a PKCS#10
//! request signed with the node key (proof that the node holds the key). The bundle
//! (`yilian ca issue`) is JSON: the alliance, the CA certificate, the node certificate and the
//! latest revocation list. Installing checks that the bundle is for this node's key and
//! facility, from this node's alliance (if it already has one), signed by the bundled CA, and
//! currently valid, before anything is written. Installed files: `ca.crt`, `node.crt`,
//! `crl.pem` in the data directory.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ca::{pem_der, write_file};
use super::cert::{self, CertError, CertInfo, CrlInfo};
use super::keys::NodeKey;
use crate::config::FacilityConfig;
use crate::datadir::DataDir;
use crate::ids::NodeId;

/// A node's request for a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentRequest {
    /// Always [`EnrollmentRequest::FORMAT`].
    pub format: String,
    /// The facility the node serves.
    pub facility: FacilityConfig,
    /// The node id.
    pub node_id: NodeId,
    /// PKCS#10 request signed by the node key (PEM).
    pub csr_pem: String,
}

impl EnrollmentRequest {
    /// The format tag.
    pub const FORMAT: &'static str = "yilian-enrollment-request/1";
}

/// What the CA sends back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// Always [`Bundle::FORMAT`].
    pub format: String,
    /// The alliance.
    pub alliance: String,
    /// The CA certificate (PEM).
    pub ca_cert_pem: String,
    /// The node certificate (PEM).
    pub cert_pem: String,
    /// The latest revocation list (PEM).
    pub crl_pem: Option<String>,
}

impl Bundle {
    /// The format tag.
    pub const FORMAT: &'static str = "yilian-bundle/1";
}

/// Enrollment that failed; nothing was installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    /// The bundle cannot be used, and why.
    #[error("{0}")]
    Refused(String),
    /// A certificate in the bundle is unreadable.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// Writing failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A revocation list that is not newer than the installed one.
    #[error(
        "this revocation list (number {got}) is not newer than the installed one (number {have})"
    )]
    NotNewer {
        /// The installed list's number.
        have: u64,
        /// The offered list's number.
        got: u64,
    },
    /// Building the request failed.
    #[error("cannot build the request: {0}")]
    Request(String),
}

/// Builds this node's enrollment request.
pub fn make_request(
    key: &NodeKey,
    facility: &FacilityConfig,
) -> Result<EnrollmentRequest, EnrollError> {
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, facility.code.as_str());
    let csr = params
        .serialize_request(key.key_pair())
        .and_then(|c| c.pem())
        .map_err(|e| EnrollError::Request(e.to_string()))?;
    Ok(EnrollmentRequest {
        format: EnrollmentRequest::FORMAT.to_string(),
        facility: facility.clone(),
        node_id: key.node_id(),
        csr_pem: csr,
    })
}

/// Checks a bundle against this node and installs it. `now` is seconds since the Unix epoch.
pub fn install(
    dd: &DataDir,
    key: &NodeKey,
    facility: &FacilityConfig,
    bundle: &Bundle,
    now: i64,
) -> Result<CertInfo, EnrollError> {
    if bundle.format != Bundle::FORMAT {
        return Err(EnrollError::Refused(format!(
            "not a yilian bundle (format {:?}, expected {:?})",
            bundle.format,
            Bundle::FORMAT
        )));
    }
    let refused = |m: String| EnrollError::Refused(m);
    let ca_der = pem_der(&bundle.ca_cert_pem, Path::new("bundle CA certificate"))
        .map_err(|e| refused(e.to_string()))?;
    let cert_der = pem_der(&bundle.cert_pem, Path::new("bundle node certificate"))
        .map_err(|e| refused(e.to_string()))?;
    if let Ok(existing) = std::fs::read_to_string(dd.root().join(CA_FILE)) {
        let existing_der =
            pem_der(&existing, &dd.root().join(CA_FILE)).map_err(|e| refused(e.to_string()))?;
        if existing_der != ca_der {
            let mine = cert::ca_alliance(&existing_der).unwrap_or_else(|_| "?".into());
            return Err(refused(format!(
                "this bundle is from alliance {:?}, but this node belongs to alliance {mine:?}; \
                 refusing to switch alliances",
                bundle.alliance
            )));
        }
    }
    if !cert::signed_by(&cert_der, &ca_der)? {
        return Err(refused(
            "the node certificate is not signed by the bundle's CA".into(),
        ));
    }
    let info = cert::parse_node_cert(&cert_der)?;
    if info.claims.node != key.node_id() {
        return Err(refused(format!(
            "this bundle was issued for node {}, but this node is {}; \
             send this node's own `yilian enroll request` to the CA",
            info.claims.node,
            key.node_id()
        )));
    }
    if info.claims.facility != facility.code {
        return Err(refused(format!(
            "this bundle names facility {}, but this node serves {}",
            info.claims.facility, facility.code
        )));
    }
    if info.not_after <= now {
        return Err(refused(format!(
            "the certificate expired on {}; ask the CA for a new one",
            date(info.not_after)
        )));
    }
    if info.not_before > now {
        return Err(refused(format!(
            "the certificate is only valid from {}; is this machine's clock right (it says {})?",
            date(info.not_before),
            date(now)
        )));
    }
    let crl = match &bundle.crl_pem {
        Some(pem) => Some(check_crl(pem, &ca_der)?),
        None => None,
    };
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| EnrollError::Io { path, source }
    };
    let ca_path = dd.root().join(CA_FILE);
    write_file(&ca_path, bundle.ca_cert_pem.as_bytes(), 0o644).map_err(io(&ca_path))?;
    let cert_path = dd.root().join(CERT_FILE);
    write_file(&cert_path, bundle.cert_pem.as_bytes(), 0o644).map_err(io(&cert_path))?;
    if let (Some(pem), Some(new)) = (&bundle.crl_pem, &crl) {
        let current = installed_crl(dd)
            .ok()
            .flatten()
            .map(|c| c.number)
            .unwrap_or(0);
        if new.number >= current {
            let p = dd.root().join(CRL_FILE);
            write_file(&p, pem.as_bytes(), 0o644).map_err(io(&p))?;
        }
    }
    Ok(info)
}

/// Checks a revocation list (PEM) against the CA (DER).
pub fn check_crl(pem: &str, ca_der: &[u8]) -> Result<CrlInfo, EnrollError> {
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| EnrollError::Refused(format!("not a PEM revocation list ({e})")))?;
    Ok(cert::parse_crl(der.as_ref(), ca_der)?)
}

/// Installs a newer revocation list; refuses an older one or one from another CA.
pub fn install_crl(dd: &DataDir, pem: &str) -> Result<CrlInfo, EnrollError> {
    let ca_path = dd.root().join(CA_FILE);
    let ca_pem = std::fs::read_to_string(&ca_path).map_err(|_| {
        EnrollError::Refused(
            "this node is not enrolled yet (no ca.crt): install a bundle first".into(),
        )
    })?;
    let ca_der = pem_der(&ca_pem, &ca_path).map_err(|e| EnrollError::Refused(e.to_string()))?;
    let new = check_crl(pem, &ca_der)?;
    if let Some(current) = installed_crl(dd)?
        && new.number <= current.number
    {
        return Err(EnrollError::NotNewer {
            have: current.number,
            got: new.number,
        });
    }
    let p = dd.root().join(CRL_FILE);
    write_file(&p, pem.as_bytes(), 0o644).map_err(|source| EnrollError::Io {
        path: p.display().to_string(),
        source,
    })?;
    Ok(new)
}

/// The installed revocation list, if any.
pub fn installed_crl(dd: &DataDir) -> Result<Option<CrlInfo>, EnrollError> {
    let Ok(pem) = std::fs::read_to_string(dd.root().join(CRL_FILE)) else {
        return Ok(None);
    };
    let ca_path = dd.root().join(CA_FILE);
    let ca_pem = std::fs::read_to_string(&ca_path).map_err(|source| EnrollError::Io {
        path: ca_path.display().to_string(),
        source,
    })?;
    let ca_der = pem_der(&ca_pem, &ca_path).map_err(|e| EnrollError::Refused(e.to_string()))?;
    check_crl(&pem, &ca_der).map(Some)
}

/// CA certificate file in a data directory.
pub const CA_FILE: &str = "ca.crt";
/// Node certificate file in a data directory.
pub const CERT_FILE: &str = "node.crt";
/// Revocation list file in a data directory.
pub const CRL_FILE: &str = "crl.pem";

/// A Unix time as a UTC date.
pub fn date(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| secs.to_string())
}
