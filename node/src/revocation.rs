//! The alliance revocation list a running node enforces. One place installs a list, whether it
//! came from the operator (`yilian crl install`) or from a peer over sync: it checks the CA's
//! signature and that the list is newer than the installed one, writes it, switches the TLS
//! configuration, drops connections to revoked peers, and announces the list so every live sync
//! session forwards it to peers that hold an older one.

use std::sync::Mutex;

use tokio::sync::watch;

use crate::datadir::DataDir;
use crate::identity::cert::CrlInfo;
use crate::identity::enroll::{self, EnrollError};
use crate::identity::tls::TlsMaterial;
use crate::transport::{Network, PeerIdentity};

/// An installed revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlFile {
    /// Its number.
    pub number: u64,
    /// The list, PEM.
    pub pem: String,
}

/// The node's revocation state.
#[derive(Debug)]
pub struct Revocation {
    dir: DataDir,
    tls: Mutex<Option<TlsMaterial>>,
    network: Option<Network>,
    current: watch::Sender<Option<CrlFile>>,
}

impl Revocation {
    /// The state of a data directory, with the installed list (if any).
    pub fn new(dir: DataDir, tls: Option<TlsMaterial>, network: Option<Network>) -> Revocation {
        let current = enroll::installed_crl(&dir).ok().flatten().and_then(|info| {
            std::fs::read_to_string(dir.root().join(enroll::CRL_FILE))
                .ok()
                .map(|pem| CrlFile {
                    number: info.number,
                    pem,
                })
        });
        Revocation {
            dir,
            tls: Mutex::new(tls),
            network,
            current: watch::channel(current).0,
        }
    }

    /// The node's TLS material, if enrolled.
    pub fn tls(&self) -> Option<TlsMaterial> {
        self.tls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The installed list, and its changes.
    pub fn subscribe(&self) -> watch::Receiver<Option<CrlFile>> {
        self.current.subscribe()
    }

    /// The installed list's number (0 if none).
    pub fn number(&self) -> u64 {
        self.current.borrow().as_ref().map_or(0, |c| c.number)
    }

    /// Installs a newer list signed by the alliance CA; returns it and the peers dropped.
    pub fn install(&self, pem: &str) -> Result<(CrlInfo, Vec<PeerIdentity>), EnrollError> {
        let mut tls = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        let crl = enroll::install_crl(&self.dir, pem)?;
        let mut dropped = Vec::new();
        if let Some(current) = tls.as_ref() {
            let updated = current
                .with_crl_pem(pem.as_bytes())
                .map_err(|e| EnrollError::Refused(e.to_string()))?;
            if let Some(n) = &self.network {
                dropped = n
                    .update_trust(&updated, &crl.revoked)
                    .map_err(|e| EnrollError::Refused(e.to_string()))?;
            }
            *tls = Some(updated);
        }
        self.current.send_replace(Some(CrlFile {
            number: crl.number,
            pem: pem.to_string(),
        }));
        tracing::info!(
            number = crl.number,
            revoked = crl.revoked.len(),
            dropped = dropped.len(),
            "revocation list installed"
        );
        Ok((crl, dropped))
    }
}
