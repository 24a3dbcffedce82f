//! Requests over a node's control socket from async code (benchmarks, measuring tests): one
//! request on a fresh connection, a refusal turned into an error, the node's status.

use std::path::Path;

use anyhow::{Context, Result, bail};
use yilian_node::control::{ControlClient, Request, Response, StatusReport};

/// Sends `req` on `client`; an `Error` answer from the node becomes an error naming it.
pub async fn call(client: &mut ControlClient, req: Request) -> Result<Response> {
    match client.call(&req).await.context("the node did not answer")? {
        Response::Error { kind, message } => bail!("the node refused ({kind:?}): {message}"),
        r => Ok(r),
    }
}

/// Sends one request to the node whose control socket is `socket`, on a fresh connection.
pub async fn ask(socket: &Path, req: Request) -> Result<Response> {
    let mut client = ControlClient::connect(socket)
        .await
        .with_context(|| format!("cannot reach the node at {}", socket.display()))?;
    call(&mut client, req).await
}

/// The node's status report.
pub async fn status(socket: &Path) -> Result<StatusReport> {
    match ask(socket, Request::Status).await? {
        Response::Status(s) => Ok(*s),
        other => bail!("the node answered status with {other:?}"),
    }
}
