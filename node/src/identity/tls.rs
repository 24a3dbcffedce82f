//! Mutual TLS for node-to-node QUIC: TLS 1.3 only, rustls with the ring provider, ALPN
//! [`ALPN`]. Both sides verify the other's chain to the alliance CA, its validity dates and the
//! alliance's revocation list with rustls' WebPki verifiers; yilian then reads the peer's
//! identity from its certificate ([`super::cert`]) and authorises in its own code.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, client::WebPkiServerVerifier};

use super::cert::{self, CertError, CertInfo};
use super::enroll::{CA_FILE, CERT_FILE, CRL_FILE};
use super::keys::NodeKey;
use crate::datadir::DataDir;

/// The QUIC application protocol of yilian node-to-node connections.
pub const ALPN: &[u8] = b"yilian/1";

/// TLS material that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file is missing or unreadable.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file holds no usable object.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The node certificate does not belong to this node.
    #[error("{0}")]
    Mismatch(String),
    /// A certificate is unreadable.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

/// Everything a node needs for mutual TLS.
#[derive(Clone)]
pub struct TlsMaterial {
    ca: CertificateDer<'static>,
    cert: CertificateDer<'static>,
    key: Arc<PrivateKeyDer<'static>>,
    crl: Option<CertificateRevocationListDer<'static>>,
    info: CertInfo,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.display().to_string(),
        source,
    })
}

impl TlsMaterial {
    /// Loads the installed certificates of a data directory; `None` if the node is not
    /// enrolled yet.
    pub fn load(dd: &DataDir, key: &NodeKey) -> Result<Option<TlsMaterial>, TlsError> {
        let cert_path = dd.root().join(CERT_FILE);
        if !cert_path.exists() {
            return Ok(None);
        }
        let ca = read(&dd.root().join(CA_FILE))?;
        let cert = read(&cert_path)?;
        let crl_path = dd.root().join(CRL_FILE);
        let crl = if crl_path.exists() {
            Some(read(&crl_path)?)
        } else {
            None
        };
        let m = TlsMaterial::from_pem(&ca, &cert, key, crl.as_deref())?;
        if m.info.claims.node != key.node_id() {
            return Err(TlsError::Mismatch(format!(
                "{} belongs to node {}, not this node ({})",
                cert_path.display(),
                m.info.claims.node,
                key.node_id()
            )));
        }
        Ok(Some(m))
    }

    /// Material from PEM bytes (CA certificate, node certificate, optional revocation list)
    /// and a key. The certificate is not checked against the key here; a mismatched pair fails
    /// every handshake.
    pub fn from_pem(
        ca_pem: &[u8],
        cert_pem: &[u8],
        key: &NodeKey,
        crl_pem: Option<&[u8]>,
    ) -> Result<TlsMaterial, TlsError> {
        let pem = |what: &str, e: rustls::pki_types::pem::Error| TlsError::Pem {
            path: what.to_string(),
            reason: e.to_string(),
        };
        let ca = CertificateDer::from_pem_slice(ca_pem).map_err(|e| pem(CA_FILE, e))?;
        let cert = CertificateDer::from_pem_slice(cert_pem).map_err(|e| pem(CERT_FILE, e))?;
        let crl = crl_pem
            .map(|p| CertificateRevocationListDer::from_pem_slice(p).map_err(|e| pem(CRL_FILE, e)))
            .transpose()?;
        let info = cert::parse_node_cert(cert.as_ref())?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.key_pair().serialize_der()));
        Ok(TlsMaterial {
            ca,
            cert,
            key: Arc::new(key),
            crl,
            info,
        })
    }

    /// 32 bytes derived from the node key for one purpose (HKDF-SHA256 with `label` as the
    /// salt): stable across restarts, different for every node and purpose, and telling
    /// nothing about the key.
    fn derived(&self, label: &[u8]) -> Option<[u8; 32]> {
        struct Len32;
        impl ring::hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let prk =
            ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, label).extract(self.key.secret_der());
        let mut out = [0u8; 32];
        // Expanding to 32 bytes cannot fail (HKDF-SHA256 allows up to 8,160).
        prk.expand(&[], Len32).ok()?.fill(&mut out).ok()?;
        Some(out)
    }

    /// The key QUIC derives its stateless-reset tokens from, derived from the node key: the
    /// same across restarts, so a peer still holding a connection to the previous process is
    /// told at its next packet that the connection is gone, instead of waiting for the idle
    /// timeout. `None` only if the derivation fails.
    pub fn stateless_reset_key(&self) -> Option<ring::hmac::Key> {
        self.derived(b"yilian/quic-stateless-reset/v1")
            .map(|k| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &k))
    }

    /// The key QUIC signs its connection ids with (see [`Self::stateless_reset_key`]): a
    /// restarted node must recognise the ids its previous process handed out, or it drops
    /// their packets instead of answering them with a stateless reset.
    pub fn connection_id_key(&self) -> Option<u64> {
        let k = self.derived(b"yilian/quic-connection-id/v1")?;
        let mut b = [0u8; 8];
        b.copy_from_slice(&k[..8]);
        Some(u64::from_le_bytes(b))
    }

    /// The node's own certificate, read.
    pub fn info(&self) -> &CertInfo {
        &self.info
    }

    /// The CA certificate (DER).
    pub fn ca_der(&self) -> &[u8] {
        self.ca.as_ref()
    }

    /// A copy with another revocation list.
    pub fn with_crl_pem(&self, crl_pem: &[u8]) -> Result<TlsMaterial, TlsError> {
        let crl =
            CertificateRevocationListDer::from_pem_slice(crl_pem).map_err(|e| TlsError::Pem {
                path: CRL_FILE.into(),
                reason: e.to_string(),
            })?;
        Ok(TlsMaterial {
            crl: Some(crl),
            ..self.clone()
        })
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, TlsError> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca.clone())
            .map_err(|e| TlsError::Rustls(format!("CA certificate: {e}")))?;
        Ok(Arc::new(roots))
    }

    /// The server side: requires and verifies a client certificate.
    pub fn server_config(&self) -> Result<ServerConfig, TlsError> {
        let r = |e: rustls::Error| TlsError::Rustls(e.to_string());
        let mut vb = WebPkiClientVerifier::builder_with_provider(self.roots()?, provider());
        if let Some(crl) = &self.crl {
            vb = vb
                .with_crls([crl.clone()])
                .only_check_end_entity_revocation();
        }
        let verifier = vb.build().map_err(|e| TlsError::Rustls(e.to_string()))?;
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(r)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(r)?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        Ok(cfg)
    }

    /// The client side: presents the node certificate and verifies the server's.
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        let r = |e: rustls::Error| TlsError::Rustls(e.to_string());
        let mut vb = WebPkiServerVerifier::builder_with_provider(self.roots()?, provider());
        if let Some(crl) = &self.crl {
            vb = vb
                .with_crls([crl.clone()])
                .only_check_end_entity_revocation();
        }
        let verifier = vb.build().map_err(|e| TlsError::Rustls(e.to_string()))?;
        let mut cfg = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(r)?
            .with_webpki_verifier(verifier)
            .with_client_auth_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(r)?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        Ok(cfg)
    }
}
