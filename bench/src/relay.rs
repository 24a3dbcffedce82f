//! A lossy-link relay for the [`lossy`](crate::lossy) benchmark: it sits between one client and one server on
//! loopback and, per direction, delays every datagram, drops a share of them at random, and lets
//! them through no faster than a given bit rate (a FIFO queue; datagrams that would wait longer
//! than [`MAX_QUEUE`] are dropped, like a router's tail drop). This kernel has no `netem`, so
//! this is how a 300 ms / 5% loss / 256 kbit/s township link is reproduced here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use tokio::net::UdpSocket;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

/// Longest a datagram may wait in the rate limiter before it is dropped.
pub(crate) const MAX_QUEUE: Duration = Duration::from_secs(2);

/// What the link does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkSpec {
    /// Delay each way (half the round-trip time).
    pub(crate) one_way: Duration,
    /// Share of datagrams lost, 0..1.
    pub(crate) loss: f64,
    /// Bits per second each way.
    pub(crate) rate_bps: u64,
}

/// Bytes and datagrams through the relay, per direction (0: client to server, 1: back).
#[derive(Debug, Default)]
pub(crate) struct RelayStats {
    pub(crate) bytes: [AtomicU64; 2],
    pub(crate) dropped: [AtomicU64; 2],
}

impl RelayStats {
    /// Bytes relayed so far, per direction.
    pub(crate) fn bytes_now(&self) -> [u64; 2] {
        [
            self.bytes[0].load(Ordering::Relaxed),
            self.bytes[1].load(Ordering::Relaxed),
        ]
    }
}

/// A running relay; dropping it stops it.
pub(crate) struct Relay {
    pub(crate) addr: SocketAddr,
    pub(crate) stats: Arc<RelayStats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A small deterministic random source (xorshift64*).
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One direction: admits datagrams at the link rate, delays and drops them, delivers in order.
struct Pipe {
    tx: mpsc::Sender<(Instant, Vec<u8>)>,
    next_free: Instant,
    rng: Rng,
    spec: LinkSpec,
    dir: usize,
    stats: Arc<RelayStats>,
}

impl Pipe {
    fn admit(&mut self, datagram: Vec<u8>) {
        let now = Instant::now();
        if self.rng.unit() < self.spec.loss {
            self.stats.dropped[self.dir].fetch_add(1, Ordering::Relaxed);
            return;
        }
        let start = self.next_free.max(now);
        if start.duration_since(now) > MAX_QUEUE {
            self.stats.dropped[self.dir].fetch_add(1, Ordering::Relaxed);
            return;
        }
        let wire = Duration::from_secs_f64(datagram.len() as f64 * 8.0 / self.spec.rate_bps as f64);
        self.next_free = start + wire;
        self.stats.bytes[self.dir].fetch_add(datagram.len() as u64, Ordering::Relaxed);
        let _ = self
            .tx
            .try_send((self.next_free + self.spec.one_way, datagram));
    }
}

impl Relay {
    /// Starts a relay in front of `server`.
    pub(crate) async fn start(server: SocketAddr, spec: LinkSpec, seed: u64) -> Result<Relay> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        back.connect(server).await?;
        let addr = front.local_addr()?;
        let stats = Arc::new(RelayStats::default());
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let mut tasks = Vec::new();
        let (up_tx, mut up_rx) = mpsc::channel::<(Instant, Vec<u8>)>(65_536);
        let (down_tx, mut down_rx) = mpsc::channel::<(Instant, Vec<u8>)>(65_536);
        // Deliveries.
        let b = back.clone();
        tasks.push(tokio::spawn(async move {
            while let Some((at, d)) = up_rx.recv().await {
                tokio::time::sleep_until(at).await;
                let _ = b.send(&d).await;
            }
        }));
        let (f, c) = (front.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            while let Some((at, d)) = down_rx.recv().await {
                tokio::time::sleep_until(at).await;
                if let Some(to) = *c.lock().await {
                    let _ = f.send_to(&d, to).await;
                }
            }
        }));
        // Intake, client to server.
        let mut up = Pipe {
            tx: up_tx,
            next_free: Instant::now(),
            rng: Rng(seed | 1),
            spec,
            dir: 0,
            stats: stats.clone(),
        };
        let (f, c) = (front.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, from)) = f.recv_from(&mut buf).await {
                c.lock().await.get_or_insert(from);
                up.admit(buf[..n].to_vec());
            }
        }));
        // Intake, server to client.
        let mut down = Pipe {
            tx: down_tx,
            next_free: Instant::now(),
            rng: Rng(seed.rotate_left(17) | 1),
            spec,
            dir: 1,
            stats: stats.clone(),
        };
        let b = back.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                match b.recv(&mut buf).await {
                    Ok(n) => down.admit(buf[..n].to_vec()),
                    // The server is down for a moment (a restart): the kernel reports the
                    // datagrams it could not deliver; keep relaying once it is back.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(_) => break,
                }
            }
        }));
        Ok(Relay { addr, stats, tasks })
    }
}
