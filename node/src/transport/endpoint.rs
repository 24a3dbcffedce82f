//! The QUIC endpoint and its tuning. quinn's defaults suit 100 Mbit/s links; township links run
//! at 100-300 kbit/s with 200-600 ms RTT, so the windows, initial RTT and timers here follow
//! `../shared/design.md`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

use crate::config::Congestion;
use crate::identity::tls::{TlsError, TlsMaterial};

/// Per-stream receive window.
pub const STREAM_WINDOW: u32 = 256 * 1024;
/// Per-connection receive window.
pub const CONNECTION_WINDOW: u32 = 2 * 1024 * 1024;
/// RTT assumed before the first measurement.
pub const INITIAL_RTT: Duration = Duration::from_millis(500);
/// Unidirectional streams the peer may have open at once.
pub const MAX_UNI_STREAMS: u32 = 512;
/// Keep-alive interval: an idle connection sends a packet this often, so a peer that restarted
/// answers it with a stateless reset within this time (a few dozen bytes each way).
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Idle timeout: a peer silent this long (six keep-alives) is taken for gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Link options from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkOptions {
    /// Path MTU discovery on or off.
    pub mtu_discovery: bool,
    /// Congestion controller.
    pub congestion: Congestion,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            mtu_discovery: true,
            congestion: Congestion::default(),
        }
    }
}

/// Transport tuning shared by both directions.
pub fn transport_config(link: LinkOptions) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.stream_receive_window(STREAM_WINDOW.into())
        .receive_window(CONNECTION_WINDOW.into())
        .send_window(CONNECTION_WINDOW as u64)
        .initial_rtt(INITIAL_RTT)
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_concurrent_bidi_streams(16u32.into())
        // Every push and reply travels on a stream of its own (see `sync::proto`): room for
        // both sides' in-flight windows, and the receive window still bounds the memory.
        .max_concurrent_uni_streams(MAX_UNI_STREAMS.into())
        // Complete one stream before the next instead of interleaving them all: each push
        // arrives as early as it can, and fewer frames are split across datagrams.
        .send_fairness(false);
    if let Ok(idle) = IDLE_TIMEOUT.try_into() {
        t.max_idle_timeout(Some(idle));
    }
    if !link.mtu_discovery {
        t.mtu_discovery_config(None);
    }
    match link.congestion {
        Congestion::Cubic => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::CubicConfig::default()))
        }
        Congestion::NewReno => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::NewRenoConfig::default()))
        }
        Congestion::Bbr => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()))
        }
    };
    t
}

/// The quinn server configuration for a node's TLS material.
pub fn server_config(
    tls: &TlsMaterial,
    link: LinkOptions,
) -> Result<quinn::ServerConfig, TlsError> {
    let crypto = QuicServerConfig::try_from(tls.server_config()?)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(Arc::new(transport_config(link)));
    Ok(cfg)
}

/// The quinn client configuration for a node's TLS material.
pub fn client_config(
    tls: &TlsMaterial,
    link: LinkOptions,
) -> Result<quinn::ClientConfig, TlsError> {
    let crypto = QuicClientConfig::try_from(tls.client_config()?)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(Arc::new(transport_config(link)));
    Ok(cfg)
}

/// The endpoint configuration: connection ids and stateless-reset tokens keyed by the node key
/// ([`TlsMaterial::connection_id_key`], [`TlsMaterial::stateless_reset_key`]), so that they
/// survive a restart. A restarted node then recognises a packet of a connection its previous
/// process had, and answers it with a reset the peer can verify: the peer drops the dead
/// connection at once and dials again, instead of waiting for the idle timeout.
pub fn endpoint_config(tls: &TlsMaterial) -> quinn::EndpointConfig {
    let mut cfg = match tls.stateless_reset_key() {
        Some(key) => quinn::EndpointConfig::new(Arc::new(key)),
        None => quinn::EndpointConfig::default(),
    };
    if let Some(key) = tls.connection_id_key() {
        cfg.cid_generator(move || {
            Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(key))
        });
    }
    cfg
}

/// Binds a server-and-client endpoint on `listen`.
pub fn bind(
    listen: SocketAddr,
    tls: &TlsMaterial,
    link: LinkOptions,
) -> Result<quinn::Endpoint, std::io::Error> {
    let server = server_config(tls, link).map_err(std::io::Error::other)?;
    let client = client_config(tls, link).map_err(std::io::Error::other)?;
    let socket = std::net::UdpSocket::bind(listen)?;
    let mut ep = quinn::Endpoint::new(
        endpoint_config(tls),
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )?;
    ep.set_default_client_config(client);
    Ok(ep)
}
