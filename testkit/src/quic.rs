//! Raw QUIC clients, for tests that play a misbehaving or foreign peer against a real node:
//! a handshake attempt with chosen TLS material, a throwaway enrolled client, and rustls
//! client configurations.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use yilian_node::identity::cert::NODE_SAN;
use yilian_node::identity::tls::ALPN;

/// Dials `addr` with a raw QUIC client using `cfg` (ALPN and server name set here) and
/// reports how the attempt ended: `Ok(())` if the connection stayed up for `hold`, otherwise
/// the error or close reason.
pub async fn quic_attempt(
    addr: SocketAddr,
    mut cfg: rustls::ClientConfig,
    hold: Duration,
) -> Result<(), String> {
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(cfg).map_err(|e| e.to_string())?;
    let client = quinn::ClientConfig::new(Arc::new(crypto));
    let ep = quinn::Endpoint::client(loopback()).map_err(|e| e.to_string())?;
    let conn = ep
        .connect_with(client, addr, NODE_SAN)
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    let outcome = tokio::time::timeout(hold, conn.closed()).await;
    ep.close(0u32.into(), b"done");
    match outcome {
        Err(_) => Ok(()),
        Ok(reason) => Err(reason.to_string()),
    }
}

/// Enrols a throwaway township node `code` with the alliance CA in `ca_dir` and connects it
/// to the node at `addr` as yilian nodes do; it then does whatever the test makes it do.
pub async fn enrolled_client(
    ca_dir: &Path,
    code: &str,
    addr: SocketAddr,
) -> (quinn::Endpoint, quinn::Connection) {
    use yilian_node::config::{FacilityConfig, FacilityKind};
    use yilian_node::identity::NodeKey;
    use yilian_node::identity::ca::{Ca, Validity};
    use yilian_node::identity::tls::TlsMaterial;
    let mut ca = Ca::open(ca_dir).expect("the alliance CA");
    let key = NodeKey::generate().expect("a node key");
    let facility = FacilityConfig {
        code: code.parse().expect("a facility code"),
        name: format!("test client {code}"),
        kind: FacilityKind::TownshipCenter,
        time_zone: None,
    };
    let request = yilian_node::identity::enroll::make_request(&key, &facility)
        .expect("an enrollment request");
    let bundle = ca
        .issue(&request, &[], Validity::days_from_now(5))
        .expect("a certificate");
    let tls = TlsMaterial::from_pem(
        bundle.ca_cert_pem.as_bytes(),
        bundle.cert_pem.as_bytes(),
        &key,
        None,
    )
    .expect("TLS material");
    let client = yilian_node::transport::endpoint::client_config(&tls, Default::default())
        .expect("a QUIC client configuration");
    let ep = quinn::Endpoint::client(loopback()).expect("a client endpoint");
    let conn = ep
        .connect_with(client, addr, NODE_SAN)
        .expect("a connection attempt")
        .await
        .expect("a connection");
    (ep, conn)
}

/// A rustls client configuration (ring, TLS 1.3) that trusts `ca_pem` and presents
/// `client` (certificate PEM and PKCS#8 key DER) if given.
pub fn client_tls(ca_pem: &str, client: Option<(&str, Vec<u8>)>) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert =
        |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).expect("a PEM certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert(ca_pem)).expect("a usable CA certificate");
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots);
    match client {
        None => b.with_no_client_auth(),
        Some((cert_pem, key_der)) => b
            .with_client_auth_cert(
                vec![cert(cert_pem)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
            )
            .expect("a client certificate and key"),
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
