//! The client side of the control socket, used by the `yilian` tool.

use std::path::{Path, PathBuf};

use tokio::net::UnixStream;

use super::proto::{self, FRAME_TIMEOUT, MAX_FRAME, Request, Response};
use crate::framing;

/// Longest a request may wait for its answer (a large import on a slow disk).
pub const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Talking to the node failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No node listens on the socket.
    #[error("no node is running on {0} (start one with `yilian node run --dir DIR`)")]
    NotRunning(PathBuf),
    /// The socket failed mid-conversation.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// The node closed the connection or sent something unreadable.
    #[error("control protocol: {0}")]
    Protocol(String),
}

/// A connection to a running node.
#[derive(Debug)]
pub struct ControlClient {
    stream: UnixStream,
}

impl ControlClient {
    /// Connects to the node's control socket.
    pub async fn connect(path: &Path) -> Result<ControlClient, ClientError> {
        match UnixStream::connect(path).await {
            Ok(stream) => Ok(ControlClient { stream }),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                Err(ClientError::NotRunning(path.to_path_buf()))
            }
            Err(e) => Err(ClientError::Io(e)),
        }
    }

    /// Sends a request and waits for its response.
    pub async fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        let bytes = proto::encode(req);
        framing::write_frame(&mut self.stream, &bytes, MAX_FRAME)
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let frame =
            framing::read_frame(&mut self.stream, MAX_FRAME, RESPONSE_TIMEOUT, FRAME_TIMEOUT)
                .await
                .map_err(|e| ClientError::Protocol(e.to_string()))?
                .ok_or_else(|| ClientError::Protocol("the node closed the connection".into()))?;
        proto::decode(&frame).map_err(ClientError::Protocol)
    }
}
