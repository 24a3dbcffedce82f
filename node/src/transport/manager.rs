//! The connection manager: one task per configured peer address dials it with jittered
//! exponential backoff; one task accepts incoming connections, with at most
//! [`MAX_HANDSHAKES`] handshakes in progress and a time limit on each; every authenticated
//! connection is registered under its peer's node id. When two nodes dial each other at once,
//! both keep the connection dialed by the lower node id, so they agree without talking.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::AbortHandle;

use super::close;
use super::endpoint;
use super::peer::{self, PeerIdentity};
use crate::documents::now_ms;
use crate::identity::cert::NODE_SAN;
use crate::identity::tls::TlsMaterial;
use crate::ids::NodeId;

/// Handshakes in progress at once; further incoming connections are refused.
pub const MAX_HANDSHAKES: usize = 64;
/// Longest a handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// First retry delay after a failed dial.
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Longest retry delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// A connection that stays up this long resets the dial backoff.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Capacity of the channel announcing new connections to the sync layer.
pub const EVENTS_CAPACITY: usize = 64;

/// The network could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The UDP socket could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] crate::identity::tls::TlsError),
}

/// Where a peer connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerState {
    /// Connected and authenticated.
    Connected,
    /// A dial is in progress.
    Connecting,
    /// The last dial failed; waiting before the next.
    Waiting,
}

/// One peer, as `yilian status` and `peer list` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The configured address, if this node dials the peer.
    pub addr: Option<String>,
    /// The connected socket address.
    pub remote: Option<SocketAddr>,
    /// Connection state.
    pub state: PeerState,
    /// Who it is, once known.
    pub peer: Option<PeerIdentity>,
    /// Whether the live connection was dialed by this node.
    pub outbound: Option<bool>,
    /// When the live connection was established (ms since the Unix epoch).
    pub connected_since_ms: Option<u64>,
    /// When the peer was last connected (ms since the Unix epoch).
    pub last_seen_ms: Option<u64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due (ms since the Unix epoch).
    pub next_attempt_ms: Option<u64>,
}

/// A new authenticated connection, for the sync layer.
#[derive(Debug, Clone)]
pub struct Established {
    /// The peer.
    pub peer: PeerIdentity,
    /// The connection.
    pub conn: quinn::Connection,
    /// Whether this node dialed it (the dialer opens the sync stream).
    pub outbound: bool,
}

struct Live {
    conn: quinn::Connection,
    peer: PeerIdentity,
    outbound: bool,
    remote: SocketAddr,
    since_ms: u64,
}

struct Dialer {
    task: Option<AbortHandle>,
    state: PeerState,
    node: Option<NodeId>,
    last_error: Option<String>,
    next_attempt_ms: Option<u64>,
    last_seen_ms: Option<u64>,
}

#[derive(Default)]
struct State {
    conns: HashMap<NodeId, Live>,
    dialers: BTreeMap<String, Dialer>,
    last_seen: HashMap<NodeId, u64>,
}

struct Inner {
    endpoint: quinn::Endpoint,
    me: NodeId,
    alliance: String,
    link: endpoint::LinkOptions,
    client: Mutex<quinn::ClientConfig>,
    state: Mutex<State>,
    handshakes: Arc<Semaphore>,
    stop: watch::Sender<bool>,
    events: Option<mpsc::Sender<Established>>,
}

/// The node's network: a cheap, cloneable handle.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("me", &self.inner.me)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock must not take the network down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Exponential backoff with jitter: a random delay in [d/2, d], d = base * 2^(attempt-1).
fn backoff(attempt: u32) -> Duration {
    let d = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    let r = u64::from_le_bytes(crate::identity::random_bytes::<8>());
    let half = d.as_millis() as u64 / 2;
    Duration::from_millis(half + r % (half + 1))
}

impl Network {
    /// Binds the endpoint and starts accepting and dialing. `events` receives every new
    /// authenticated connection (the sync layer).
    pub fn start(
        listen: SocketAddr,
        tls: &TlsMaterial,
        link: endpoint::LinkOptions,
        peers: &[String],
        events: Option<mpsc::Sender<Established>>,
    ) -> Result<Network, NetworkError> {
        let endpoint = endpoint::bind(listen, tls, link).map_err(|source| NetworkError::Bind {
            addr: listen,
            source,
        })?;
        let client = endpoint::client_config(tls, link)?;
        let (stop, _) = watch::channel(false);
        let net = Network {
            inner: Arc::new(Inner {
                endpoint,
                me: tls.info().claims.node,
                alliance: tls.info().claims.alliance.clone(),
                link,
                client: Mutex::new(client),
                state: Mutex::new(State::default()),
                handshakes: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
                stop,
                events,
            }),
        };
        tokio::spawn(accept_loop(net.inner.clone()));
        for p in peers {
            net.add_peer(p);
        }
        Ok(net)
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.endpoint.local_addr().ok()
    }

    /// Starts dialing a peer address (no-op if already configured).
    pub fn add_peer(&self, addr: &str) {
        let mut st = lock(&self.inner.state);
        if st.dialers.contains_key(addr) {
            return;
        }
        let task = tokio::spawn(dial_loop(self.inner.clone(), addr.to_string())).abort_handle();
        st.dialers.insert(
            addr.to_string(),
            Dialer {
                task: Some(task),
                state: PeerState::Connecting,
                node: None,
                last_error: None,
                next_attempt_ms: None,
                last_seen_ms: None,
            },
        );
    }

    /// Stops dialing a peer address and closes the connection it made. Returns whether it
    /// was configured.
    pub fn remove_peer(&self, addr: &str) -> bool {
        let mut st = lock(&self.inner.state);
        let Some(d) = st.dialers.remove(addr) else {
            return false;
        };
        if let Some(t) = d.task {
            t.abort();
        }
        if let Some(live) = d.node.and_then(|n| st.conns.get(&n)).filter(|l| l.outbound) {
            live.conn.close(close::SHUTDOWN.into(), b"peer removed");
        }
        true
    }

    /// Every configured peer and every connected one.
    pub fn peers(&self) -> Vec<PeerStatus> {
        let st = lock(&self.inner.state);
        let mut out = Vec::new();
        let mut shown = std::collections::HashSet::new();
        for (addr, d) in &st.dialers {
            let live = d.node.and_then(|n| st.conns.get(&n));
            if let Some(n) = d.node {
                shown.insert(n);
            }
            out.push(match live {
                Some(l) => live_status(Some(addr.clone()), l),
                None => PeerStatus {
                    addr: Some(addr.clone()),
                    remote: None,
                    state: d.state,
                    peer: None,
                    outbound: None,
                    connected_since_ms: None,
                    last_seen_ms: d
                        .last_seen_ms
                        .or_else(|| d.node.and_then(|n| st.last_seen.get(&n).copied())),
                    last_error: d.last_error.clone(),
                    next_attempt_ms: d.next_attempt_ms,
                },
            });
        }
        for (node, l) in &st.conns {
            if !shown.contains(node) {
                out.push(live_status(None, l));
            }
        }
        out
    }

    /// The live connection to a node, if any.
    pub fn connection(&self, node: &NodeId) -> Option<(PeerIdentity, quinn::Connection)> {
        let st = lock(&self.inner.state);
        st.conns.get(node).map(|l| (l.peer.clone(), l.conn.clone()))
    }

    /// Switches to new TLS material (a newer revocation list) for future handshakes and closes
    /// live connections to peers whose certificate serial is in `revoked`. Returns the peers
    /// dropped.
    pub fn update_trust(
        &self,
        tls: &TlsMaterial,
        revoked: &[String],
    ) -> Result<Vec<PeerIdentity>, NetworkError> {
        let server = endpoint::server_config(tls, self.inner.link)?;
        let client = endpoint::client_config(tls, self.inner.link)?;
        self.inner.endpoint.set_server_config(Some(server));
        *lock(&self.inner.client) = client;
        let st = lock(&self.inner.state);
        let mut dropped = Vec::new();
        for l in st.conns.values() {
            if revoked.contains(&l.peer.serial) {
                tracing::warn!(peer = %l.peer.node_id, facility = %l.peer.facility, "closing connection: peer certificate revoked");
                l.conn.close(close::REVOKED.into(), b"certificate revoked");
                dropped.push(l.peer.clone());
            }
        }
        Ok(dropped)
    }

    /// Closes every connection and stops the endpoint.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        {
            let mut st = lock(&self.inner.state);
            for d in st.dialers.values_mut() {
                if let Some(t) = d.task.take() {
                    t.abort();
                }
            }
        }
        self.inner
            .endpoint
            .close(close::SHUTDOWN.into(), b"node shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.inner.endpoint.wait_idle()).await;
    }
}

fn live_status(addr: Option<String>, l: &Live) -> PeerStatus {
    PeerStatus {
        addr,
        remote: Some(l.remote),
        state: PeerState::Connected,
        peer: Some(l.peer.clone()),
        outbound: Some(l.outbound),
        connected_since_ms: Some(l.since_ms),
        last_seen_ms: Some(now_ms()),
        last_error: None,
        next_attempt_ms: None,
    }
}

impl Inner {
    /// Registers an authenticated connection and returns the connection kept for that peer
    /// (the new one, or an existing one that wins the tie-break).
    fn register(
        self: &Arc<Self>,
        conn: quinn::Connection,
        peer: PeerIdentity,
        outbound: bool,
    ) -> quinn::Connection {
        let node = peer.node_id;
        let mut st = lock(&self.state);
        if let Some(old) = st.conns.get(&node)
            && old.conn.close_reason().is_none()
        {
            {
                let lower = self.me.min(node);
                let initiator = |out: bool| if out { self.me } else { node };
                let (new_init, old_init) = (initiator(outbound), initiator(old.outbound));
                let keep_new = new_init == old_init || new_init == lower;
                if !keep_new {
                    conn.close(close::DUPLICATE.into(), b"duplicate connection");
                    return old.conn.clone();
                }
                old.conn
                    .close(close::DUPLICATE.into(), b"duplicate connection");
            }
        }
        tracing::info!(
            peer = %node,
            facility = %peer.facility,
            kind = %peer.kind,
            remote = %conn.remote_address(),
            outbound,
            "peer connected"
        );
        st.conns.insert(
            node,
            Live {
                conn: conn.clone(),
                peer: peer.clone(),
                outbound,
                remote: conn.remote_address(),
                since_ms: now_ms(),
            },
        );
        drop(st);
        let inner = self.clone();
        let watched = conn.clone();
        tokio::spawn(async move {
            let reason = watched.closed().await;
            let mut st = lock(&inner.state);
            if st
                .conns
                .get(&node)
                .is_some_and(|l| l.conn.stable_id() == watched.stable_id())
            {
                st.conns.remove(&node);
                st.last_seen.insert(node, now_ms());
                tracing::info!(peer = %node, %reason, "peer disconnected");
            }
        });
        let lagging = self.events.as_ref().is_some_and(|events| {
            events
                .try_send(Established {
                    peer,
                    conn: conn.clone(),
                    outbound,
                })
                .is_err()
        });
        if lagging {
            tracing::warn!(peer = %node, "sync layer is not keeping up with new connections");
        }
        conn
    }

    fn update_dialer(&self, addr: &str, f: impl FnOnce(&mut Dialer)) {
        if let Some(d) = lock(&self.state).dialers.get_mut(addr) {
            f(d);
        }
    }

    /// The live connection to the node behind a dialer's address, if it is known and alive.
    fn live_for(&self, addr: &str) -> Option<quinn::Connection> {
        let st = lock(&self.state);
        let node = st.dialers.get(addr)?.node?;
        st.conns.get(&node).map(|l| l.conn.clone())
    }

    async fn dial(&self, addr: &str) -> Result<(quinn::Connection, PeerIdentity), String> {
        let target = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| format!("cannot resolve {addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("{addr} resolves to no address"))?;
        let client = lock(&self.client).clone();
        let connecting = self
            .endpoint
            .connect_with(client, target, NODE_SAN)
            .map_err(|e| format!("cannot dial {target}: {e}"))?;
        let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
            .await
            .map_err(|_| format!("no answer from {target} within {HANDSHAKE_TIMEOUT:?}"))?
            .map_err(|e| format!("handshake with {target} failed: {e}"))?;
        match peer::authorize(&conn, &self.alliance, self.me) {
            Ok(p) => Ok((conn, p)),
            Err(reason) => {
                conn.close(close::UNAUTHORIZED.into(), reason.as_bytes());
                Err(format!("refused {target}: {reason}"))
            }
        }
    }
}

async fn dial_loop(inner: Arc<Inner>, addr: String) {
    let mut attempt = 0u32;
    loop {
        let conn = match inner.live_for(&addr) {
            Some(conn) => conn,
            None => {
                inner.update_dialer(&addr, |d| d.state = PeerState::Connecting);
                match inner.dial(&addr).await {
                    Ok((conn, peer)) => {
                        inner.update_dialer(&addr, |d| d.node = Some(peer.node_id));
                        // Registration may keep an existing connection to the same node.
                        inner.register(conn, peer, true)
                    }
                    Err(e) => {
                        attempt = attempt.saturating_add(1);
                        let wait = backoff(attempt);
                        tracing::warn!(peer = %addr, error = %e, retry_in = ?wait, "dial failed");
                        inner.update_dialer(&addr, |d| {
                            d.state = PeerState::Waiting;
                            d.last_error = Some(e);
                            d.next_attempt_ms = Some(now_ms() + wait.as_millis() as u64);
                        });
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                }
            }
        };
        inner.update_dialer(&addr, |d| {
            d.state = PeerState::Connected;
            d.last_error = None;
            d.next_attempt_ms = None;
        });
        let up = tokio::time::Instant::now();
        let reason = conn.closed().await;
        // A connection that was up a while and then ended (the peer restarted and reset it,
        // went silent, or ended the session to start afresh) is dialed again at once; failures
        // from there on back off. A connection the peer drops at once (it refused our
        // certificate after the TLS 1.3 handshake completed on our side, say) must not reset
        // the backoff.
        let wait = if up.elapsed() >= STABLE_AFTER {
            attempt = 0;
            Duration::ZERO
        } else {
            attempt = attempt.saturating_add(1);
            backoff(attempt)
        };
        inner.update_dialer(&addr, |d| {
            d.state = PeerState::Waiting;
            d.last_error = Some(format!("connection closed: {reason}"));
            d.last_seen_ms = Some(now_ms());
            d.next_attempt_ms = Some(now_ms() + wait.as_millis() as u64);
        });
        tokio::time::sleep(wait).await;
    }
}

async fn accept_loop(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    loop {
        let incoming = tokio::select! {
            biased;
            _ = stop.changed() => return,
            i = inner.endpoint.accept() => match i {
                Some(i) => i,
                None => return,
            },
        };
        let remote = incoming.remote_address();
        let Ok(permit) = inner.handshakes.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "too many handshakes in progress; connection refused");
            incoming.refuse();
            continue;
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            let handshake = async {
                let connecting = incoming.accept()?;
                connecting.await
            };
            let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await;
            drop(permit);
            match result {
                Err(_) => tracing::warn!(%remote, "peer refused: handshake not completed in time"),
                Ok(Err(e)) => {
                    let detail = e.to_string();
                    tracing::warn!(%remote, reason = explain(&detail), %detail, "peer refused during handshake")
                }
                Ok(Ok(conn)) => match peer::authorize(&conn, &inner.alliance, inner.me) {
                    Ok(peer) => {
                        inner.register(conn, peer, false);
                    }
                    Err(reason) => {
                        tracing::warn!(%remote, %reason, "peer refused after handshake");
                        conn.close(close::UNAUTHORIZED.into(), reason.as_bytes());
                    }
                },
            }
        });
    }
}

/// A plain-language reason for a failed handshake, for the operator reading the log.
pub fn explain(detail: &str) -> &'static str {
    let d = detail.to_ascii_lowercase();
    if d.contains("unknownissuer") || d.contains("badsignature") {
        "its certificate is not issued by this alliance's CA"
    } else if d.contains("expired") {
        "its certificate has expired (or a clock is wrong)"
    } else if d.contains("notvalidyet") || d.contains("not valid yet") {
        "its certificate is not valid yet: check the clocks of both machines"
    } else if d.contains("revoked") {
        "its certificate has been revoked by the alliance"
    } else if d.contains("no certificates") {
        "it presented no certificate"
    } else if d.contains("no_application_protocol") || d.contains("error 120") {
        "it does not speak yilian/1"
    } else if d.contains("timed out") {
        "the handshake timed out"
    } else {
        "the TLS handshake failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for attempt in 1..30 {
            let d = backoff(attempt);
            let full = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(BACKOFF_CAP);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d:?} outside [{:?}, {full:?}]",
                full / 2
            );
        }
        assert!(backoff(40) <= BACKOFF_CAP);
    }
}
