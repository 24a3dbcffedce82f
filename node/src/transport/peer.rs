//! A peer's identity, read from the certificate it proved during the handshake, and the
//! authorisation every connection passes before anything else happens on it.

use serde::{Deserialize, Serialize};

use crate::config::FacilityKind;
use crate::identity::cert::{self, Role};
use crate::ids::{FacilityCode, NodeId};

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerIdentity {
    /// Its node id (derived from its key).
    pub node_id: NodeId,
    /// Its facility code.
    pub facility: FacilityCode,
    /// Its facility's name.
    pub name: String,
    /// Its facility kind.
    pub kind: FacilityKind,
    /// Roles the CA granted it.
    pub roles: Vec<Role>,
    /// Its certificate's serial number (hex).
    pub serial: String,
    /// Its certificate's end of validity (seconds since the Unix epoch).
    pub cert_not_after: i64,
}

/// Reads and authorises the peer of an established connection: it must present a yilian node
/// certificate of `alliance` and must not be this node itself.
pub fn authorize(
    conn: &quinn::Connection,
    alliance: &str,
    me: NodeId,
) -> Result<PeerIdentity, String> {
    let certs = conn
        .peer_identity()
        .and_then(|any| {
            any.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .ok_or("the peer presented no certificate")?;
    let first = certs
        .first()
        .ok_or("the peer presented an empty certificate chain")?;
    let info = cert::parse_node_cert(first.as_ref()).map_err(|e| e.to_string())?;
    if info.claims.alliance != alliance {
        return Err(format!(
            "the peer belongs to alliance {:?}, not {alliance:?}",
            info.claims.alliance
        ));
    }
    if info.claims.node == me {
        return Err("the peer is this node itself (a peer address points back here)".into());
    }
    Ok(PeerIdentity {
        node_id: info.claims.node,
        facility: info.claims.facility,
        name: info.claims.name,
        kind: info.claims.kind,
        roles: info.claims.roles,
        serial: info.serial,
        cert_not_after: info.not_after,
    })
}
