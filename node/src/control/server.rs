//! The control socket server. Accepts connections up to [`MAX_CONNECTIONS`] at once (further
//! clients wait: backpressure, not unbounded tasks), reads one request frame at a time with
//! size and time limits, and answers through the [`Service`]. A malformed or oversized frame
//! gets an error response naming the problem; the connection is then closed, and the node keeps
//! serving everyone else. On shutdown it stops accepting, lets each connection finish the
//! request in hand, and returns once all are closed.

use std::future::Future;
use std::sync::Arc;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::proto::{self, ErrorKind, FRAME_TIMEOUT, IDLE_TIMEOUT, MAX_FRAME, Request, Response};
use crate::framing::{self, FrameError};
use crate::service::Service;

/// Control connections served at once.
pub const MAX_CONNECTIONS: usize = 64;

/// Serves `listener` until `shutdown` completes, then drains open connections.
pub async fn serve(
    listener: UnixListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service = service.clone();
        let stop = stop_rx.clone();
        conns.spawn(async move {
            serve_connection(stream, &service, stop).await;
            drop(permit);
        });
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
}

async fn serve_connection(
    mut stream: UnixStream,
    service: &Service,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let frame = tokio::select! {
            biased;
            _ = stop.changed() => return,
            f = framing::read_frame(&mut stream, MAX_FRAME, IDLE_TIMEOUT, FRAME_TIMEOUT) => f,
        };
        let (response, close) = match frame {
            Ok(None) => return,
            Ok(Some(bytes)) => match proto::decode::<Request>(&bytes) {
                Ok(req) => (service.handle(req).await, false),
                Err(message) => {
                    tracing::warn!(%message, "bad control request");
                    (protocol_error(message), true)
                }
            },
            Err(FrameError::Timeout(_)) => return,
            Err(e @ FrameError::TooLarge { .. }) => {
                tracing::warn!(error = %e, "control request refused");
                (protocol_error(e.to_string()), true)
            }
            Err(e) => {
                tracing::debug!(error = %e, "control connection ended");
                return;
            }
        };
        let bytes = proto::encode(&response);
        if let Err(e) = framing::write_frame(&mut stream, &bytes, MAX_FRAME).await {
            tracing::debug!(error = %e, "control response not delivered");
            return;
        }
        if close {
            return;
        }
    }
}

fn protocol_error(message: String) -> Response {
    Response::Error {
        kind: ErrorKind::Protocol,
        message,
    }
}
