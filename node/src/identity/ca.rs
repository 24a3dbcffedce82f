//! The alliance certificate authority, kept offline by county IT in its own directory:
//!
//! | file | what |
//! | --- | --- |
//! | `ca.key` | the CA's private key (Ed25519, PKCS#8 PEM, mode 0600) |
//! | `ca.crt` | the CA certificate (PEM); its subject organisation is the alliance name |
//! | `ledger.json` | every certificate issued and revoked, and the last revocation list number |
//! | `crl.pem` | the latest signed revocation list |
//!
//! The CA signs enrollment requests into bundles and revokes nodes by issuing a newer
//! revocation list. Keys are never printed.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::cert::{CertError, IDENTITY_OID, IdentityClaims, NODE_SAN, Role, hex};
use super::enroll::{Bundle, EnrollmentRequest};
use super::keys::node_id_of;
use crate::ids::NodeId;

/// Default validity of a node certificate: rural clocks drift and links are rare, so long.
pub const DEFAULT_NODE_DAYS: u32 = 5 * 365;
/// Validity of the CA certificate.
pub const CA_DAYS: i64 = 20 * 365;
/// Certificates start one day early, so a node whose clock is a little behind accepts them.
pub const BACKDATE: Duration = Duration::days(1);

/// A CA operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// `ca init` on a directory that already has a CA.
    #[error("{0} already holds a CA; refusing to overwrite it")]
    Exists(String),
    /// Not a CA directory.
    #[error("{0} is not a yilian CA directory (no ca.crt/ca.key): run `yilian ca init` first")]
    Missing(String),
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A request or file that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A certificate could not be read.
    #[error(transparent)]
    Cert(#[from] CertError),
}

/// One certificate the CA issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCert {
    /// Serial number, hex.
    pub serial: String,
    /// The node.
    pub node: NodeId,
    /// Its facility code.
    pub facility: String,
    /// Issued at (seconds since the Unix epoch).
    pub issued_at: i64,
    /// Valid until.
    pub not_after: i64,
    /// Revoked at, if revoked.
    pub revoked_at: Option<i64>,
}

/// What the CA remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Every certificate issued.
    pub issued: Vec<IssuedCert>,
    /// Number of the latest revocation list.
    pub crl_number: u64,
}

/// Validity of a certificate being issued.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    /// Start.
    pub not_before: OffsetDateTime,
    /// End.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From one day ago (clock drift) to `days` from now.
    pub fn days_from_now(days: u32) -> Validity {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - BACKDATE,
            not_after: now + Duration::days(days as i64),
        }
    }
}

/// An open CA directory.
pub struct Ca {
    root: PathBuf,
    key: KeyPair,
    cert_pem: String,
    alliance: String,
    ledger: Ledger,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("root", &self.root)
            .field("alliance", &self.alliance)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaError {
    let path = path.display().to_string();
    move |source| CaError::Io { path, source }
}

/// Writes a file atomically (temporary file + rename), with the given mode.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

impl Ca {
    /// Creates a CA for an alliance in `root`.
    pub fn init(root: &Path, alliance: &str) -> Result<Ca, CaError> {
        use std::os::unix::fs::DirBuilderExt;
        let alliance = alliance.trim();
        if alliance.is_empty() || alliance.len() > 64 {
            return Err(CaError::Invalid(
                "the alliance name must be 1 to 64 characters".into(),
            ));
        }
        if root.join("ca.key").exists() || root.join("ca.crt").exists() {
            return Err(CaError::Exists(root.display().to_string()));
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io(root))?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{alliance} yilian CA"));
        dn.push(DnType::OrganizationName, alliance);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + Duration::days(CA_DAYS);
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        let key_path = root.join("ca.key");
        write_file(&key_path, key.serialize_pem().as_bytes(), 0o600).map_err(io(&key_path))?;
        let crt_path = root.join("ca.crt");
        write_file(&crt_path, cert.pem().as_bytes(), 0o644).map_err(io(&crt_path))?;
        let mut ca = Ca {
            root: root.to_path_buf(),
            key,
            cert_pem: cert.pem(),
            alliance: alliance.to_string(),
            ledger: Ledger::default(),
        };
        ca.write_crl()?;
        Ok(ca)
    }

    /// Opens an existing CA directory.
    pub fn open(root: &Path) -> Result<Ca, CaError> {
        let key_path = root.join("ca.key");
        let crt_path = root.join("ca.crt");
        if !key_path.exists() || !crt_path.exists() {
            return Err(CaError::Missing(root.display().to_string()));
        }
        let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| CaError::Invalid(format!("{}: {e}", key_path.display())))?;
        let cert_pem = std::fs::read_to_string(&crt_path).map_err(io(&crt_path))?;
        let alliance = super::cert::ca_alliance(&pem_der(&cert_pem, &crt_path)?)?;
        let ledger_path = root.join("ledger.json");
        let ledger = match std::fs::read(&ledger_path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| CaError::Invalid(format!("{}: {e}", ledger_path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ledger::default(),
            Err(e) => return Err(io(&ledger_path)(e)),
        };
        Ok(Ca {
            root: root.to_path_buf(),
            key,
            cert_pem,
            alliance,
            ledger,
        })
    }

    /// The alliance name.
    pub fn alliance(&self) -> &str {
        &self.alliance
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// What the CA has issued.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, CaError> {
        Ok(Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?)
    }

    /// Signs an enrollment request into a bundle for the node.
    pub fn issue(
        &mut self,
        req: &EnrollmentRequest,
        roles: &[Role],
        validity: Validity,
    ) -> Result<Bundle, CaError> {
        let csr = rcgen::CertificateSigningRequestParams::from_pem(&req.csr_pem).map_err(|e| {
            CaError::Invalid(format!(
                "the enrollment request's signature or key is invalid ({e}): ask the node for a new request"
            ))
        })?;
        let node = node_id_of(rcgen::PublicKeyData::der_bytes(&csr.public_key));
        if node != req.node_id {
            return Err(CaError::Invalid(format!(
                "the request claims node {} but is signed by node {node}'s key",
                req.node_id
            )));
        }
        if validity.not_after <= validity.not_before {
            return Err(CaError::Invalid(
                "the certificate would end before it starts".into(),
            ));
        }
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        let claims = IdentityClaims {
            v: 1,
            alliance: self.alliance.clone(),
            facility: req.facility.code.clone(),
            name: req.facility.name.clone(),
            kind: req.facility.kind,
            node,
            roles,
        };
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, req.facility.code.as_str());
        dn.push(DnType::OrganizationName, self.alliance.as_str());
        params.distinguished_name = dn;
        params.subject_alt_names =
            vec![SanType::DnsName(NODE_SAN.try_into().map_err(
                |e: rcgen::Error| CaError::Invalid(e.to_string()),
            )?)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let serial = random_serial();
        params.serial_number = Some(serial.clone());
        params.use_authority_key_identifier_extension = true;
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            IDENTITY_OID,
            serde_json::to_vec(&claims).map_err(|e| CaError::Invalid(e.to_string()))?,
        )];
        let cert = params.signed_by(&csr.public_key, &self.issuer()?)?;
        self.ledger.issued.push(IssuedCert {
            serial: hex(serial.as_ref()),
            node,
            facility: req.facility.code.to_string(),
            issued_at: OffsetDateTime::now_utc().unix_timestamp(),
            not_after: validity.not_after.unix_timestamp(),
            revoked_at: None,
        });
        self.save_ledger()?;
        Ok(Bundle {
            format: Bundle::FORMAT.to_string(),
            alliance: self.alliance.clone(),
            ca_cert_pem: self.cert_pem.clone(),
            cert_pem: cert.pem(),
            crl_pem: Some(self.crl_pem()?),
        })
    }

    /// Revokes every certificate issued to `node` and writes a newer revocation list.
    /// Returns how many certificates were newly revoked.
    pub fn revoke(&mut self, node: NodeId) -> Result<usize, CaError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut n = 0;
        let mut known = false;
        for c in self.ledger.issued.iter_mut().filter(|c| c.node == node) {
            known = true;
            if c.revoked_at.is_none() {
                c.revoked_at = Some(now);
                n += 1;
            }
        }
        if !known {
            return Err(CaError::Invalid(format!(
                "this CA never issued a certificate to node {node}"
            )));
        }
        self.write_crl()?;
        Ok(n)
    }

    /// The latest revocation list (PEM).
    pub fn crl_pem(&self) -> Result<String, CaError> {
        let p = self.root.join("crl.pem");
        std::fs::read_to_string(&p).map_err(io(&p))
    }

    /// Path of the latest revocation list.
    pub fn crl_path(&self) -> PathBuf {
        self.root.join("crl.pem")
    }

    fn write_crl(&mut self) -> Result<(), CaError> {
        self.ledger.crl_number += 1;
        let now = OffsetDateTime::now_utc();
        let mut revoked = Vec::new();
        for c in &self.ledger.issued {
            if let Some(at) = c.revoked_at {
                let serial = unhex(&c.serial).ok_or_else(|| {
                    CaError::Invalid(format!("ledger serial {:?} is not hex", c.serial))
                })?;
                revoked.push(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial),
                    revocation_time: OffsetDateTime::from_unix_timestamp(at).unwrap_or(now),
                    reason_code: None,
                    invalidity_date: None,
                });
            }
        }
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(365),
            crl_number: SerialNumber::from(self.ledger.crl_number),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer()?)?;
        let path = self.root.join("crl.pem");
        write_file(&path, crl.pem()?.as_bytes(), 0o644).map_err(io(&path))?;
        self.save_ledger()
    }

    fn save_ledger(&self) -> Result<(), CaError> {
        let path = self.root.join("ledger.json");
        let bytes =
            serde_json::to_vec_pretty(&self.ledger).map_err(|e| CaError::Invalid(e.to_string()))?;
        write_file(&path, &bytes, 0o600).map_err(io(&path))
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = super::random_bytes();
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // no leading zero byte, so the hex form is stable
    SerialNumber::from_slice(&bytes)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// The DER bytes of the first PEM block in `pem`.
pub(crate) fn pem_der(pem: &str, what: &Path) -> Result<Vec<u8>, CaError> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.as_ref().to_vec())
        .map_err(|e| CaError::Invalid(format!("{}: not a PEM certificate ({e})", what.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FacilityConfig, FacilityKind};
    use crate::identity::NodeKey;
    use crate::identity::cert::{parse_crl, parse_node_cert};
    use crate::identity::enroll::make_request;

    fn request(code: &str) -> (NodeKey, EnrollmentRequest) {
        let key = NodeKey::generate().unwrap();
        let fac = FacilityConfig {
            code: code.parse().unwrap(),
            name: "卫生院".into(),
            kind: FacilityKind::TownshipCenter,
            time_zone: None,
        };
        let req = make_request(&key, &fac).unwrap();
        (key, req)
    }

    fn der(pem: &str) -> Vec<u8> {
        pem_der(pem, Path::new("test")).unwrap()
    }

    #[test]
    fn issued_certificates_carry_the_identity_and_revocation_lists_grow() {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = Ca::init(&dir.path().join("ca"), "测试医共体").unwrap();
        assert!(
            Ca::init(&dir.path().join("ca"), "again").is_err(),
            "overwrote a CA"
        );
        let (key, req) = request("TC-05");
        let bundle = ca
            .issue(
                &req,
                &[Role::Pharmacy, Role::Pharmacy],
                Validity::days_from_now(10),
            )
            .unwrap();
        let info = parse_node_cert(&der(&bundle.cert_pem)).unwrap();
        assert_eq!(info.claims.node, key.node_id());
        assert_eq!(info.claims.facility.as_str(), "TC-05");
        assert_eq!(info.claims.alliance, "测试医共体");
        assert_eq!(info.claims.roles, vec![Role::Pharmacy]);
        assert!(
            crate::identity::cert::signed_by(&der(&bundle.cert_pem), &der(ca.cert_pem())).unwrap()
        );

        let first = parse_crl(&crl_der(&ca), &der(ca.cert_pem())).unwrap();
        assert!(first.revoked.is_empty());
        assert_eq!(ca.revoke(key.node_id()).unwrap(), 1);
        assert_eq!(ca.revoke(key.node_id()).unwrap(), 0, "already revoked");
        let second = parse_crl(&crl_der(&ca), &der(ca.cert_pem())).unwrap();
        assert!(second.number > first.number);
        assert_eq!(second.revoked, vec![info.serial.clone()]);

        // The ledger survives reopening.
        let reopened = Ca::open(&dir.path().join("ca")).unwrap();
        assert_eq!(reopened.ledger().issued.len(), 1);
        assert!(reopened.ledger().issued[0].revoked_at.is_some());
        assert!(
            ca.revoke(crate::ids::NodeId([9; 16])).is_err(),
            "revoked an unknown node"
        );
    }

    fn crl_der(ca: &Ca) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateRevocationListDer::from_pem_slice(
            ca.crl_pem().unwrap().as_bytes(),
        )
        .unwrap()
        .as_ref()
        .to_vec()
    }

    #[test]
    fn a_request_whose_claimed_node_is_not_its_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = Ca::init(dir.path(), "A").unwrap();
        let (_, mut req) = request("TC-06");
        req.node_id = crate::ids::NodeId([1; 16]);
        let err = ca
            .issue(&req, &[], Validity::days_from_now(10))
            .unwrap_err();
        assert!(err.to_string().contains("signed by node"), "{err}");
        let (_, mut req) = request("TC-06");
        req.csr_pem = req.csr_pem.replace('A', "B");
        assert!(ca.issue(&req, &[], Validity::days_from_now(10)).is_err());
    }

    #[test]
    fn refusal_reasons_are_explained_in_plain_words() {
        use crate::transport::manager::explain;
        assert!(explain("invalid peer certificate: UnknownIssuer").contains("alliance's CA"));
        assert!(explain("invalid peer certificate: Revoked").contains("revoked"));
        assert!(explain("certificate expired: verification time").contains("expired"));
        assert!(explain("peer sent no certificates").contains("no certificate"));
    }
}
