//! Filling a node with many documents fast, through its public API only: documents are
//! imported (`Request::DocImport`, what `yilian doc import` sends) over several control-socket
//! connections at once, so the node's storage thread commits many of them in one transaction
//! (group commit). Tests and benchmarks use this to give a node thousands of documents.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, bail};
use yilian_node::control::{ControlClient, Request, Response};
use yilian_node::documents::DocKind;
use yilian_node::ids::{DocId, FacilityCode};
use yilian_node::reexports::automerge::{self, ObjType, ROOT, transaction::Transactable};

use crate::control::call;
use crate::process::NodeProcess;

/// How many connections [`concurrently`] uses: enough for the storage thread to commit dozens of
/// documents per transaction, well below the node's 64 connections served at once.
pub const IMPORT_CONNECTIONS: usize = 32;

/// Sends `count` requests to the running node whose control socket is `socket`, over
/// [`IMPORT_CONNECTIONS`] connections at once; `make(i)` builds request `i` (called on several
/// tasks at once). A refusal fails the whole run. Returns the answers, in `i` order.
pub async fn concurrently<F>(socket: &Path, count: usize, make: F) -> Result<Vec<Response>>
where
    F: Fn(usize) -> Request + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..IMPORT_CONNECTIONS.min(count) {
        let mut client = ControlClient::connect(socket).await?;
        let (make, next) = (make.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok(done);
                }
                done.push((i, call(&mut client, make(i)).await?));
            }
        }));
    }
    let mut all = Vec::with_capacity(count);
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort_unstable_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, r)| r).collect())
}

/// Imports `count` documents of `kind` into the running node whose control socket is
/// `socket` (see [`concurrently`]); `make(i)` gives the Automerge bytes of document `i`. The
/// node adds its own facility to `audience`. Returns the new ids, in `i` order.
pub async fn import_docs<F>(
    socket: &Path,
    count: usize,
    kind: DocKind,
    audience: &[FacilityCode],
    make: F,
) -> Result<Vec<DocId>>
where
    F: Fn(usize) -> Vec<u8> + Send + Sync + 'static,
{
    let audience = audience.to_vec();
    concurrently(socket, count, move |i| Request::DocImport {
        bytes: make(i),
        kind,
        audience: audience.clone(),
    })
    .await?
    .into_iter()
    .map(|r| match r {
        Response::Written(info) => Ok(info.id),
        other => bail!("the node answered an import with {other:?}"),
    })
    .collect()
}

/// Imports documents as [`import_docs`] does into the node of `dir`, which must not be
/// running: starts it for the import and stops it cleanly afterwards. For synchronous
/// callers (it runs its own async runtime, so it must not be called from async code).
pub fn fill_stopped_node<F>(
    dir: &Path,
    count: usize,
    kind: DocKind,
    audience: &[FacilityCode],
    make: F,
) -> Vec<DocId>
where
    F: Fn(usize) -> Vec<u8> + Send + Sync + 'static,
{
    let mut cmd = crate::cli::yilian(dir);
    // One log line per imported document would only slow the import down.
    cmd.env("RUST_LOG", "warn");
    let node = NodeProcess::start_with(dir, cmd);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("an async runtime");
    let ids = runtime
        .block_on(import_docs(
            &node.socket_path(),
            count,
            kind,
            audience,
            make,
        ))
        .unwrap_or_else(|e| {
            panic!(
                "importing {count} documents failed: {e:#}\n{}",
                node.log_text()
            )
        });
    assert_eq!(node.stop(), 0, "the filled node did not stop cleanly");
    ids
}

/// Adds `n` notes of about `size` bytes each (incompressible text), with the given audience,
/// to the node of `dir`, which must not be running (see [`fill_stopped_node`]). Returns their
/// ids.
pub fn bulk_notes(dir: &Path, n: usize, size: usize, audience: &[&str]) -> Vec<String> {
    let codes: Vec<FacilityCode> = audience
        .iter()
        .map(|c| c.parse().expect("a facility code"))
        .collect();
    fill_stopped_node(dir, n, DocKind::Note, &codes, move |i| note_bytes(i, size))
        .iter()
        .map(DocId::to_string)
        .collect()
}

/// A note document (`schema`, `title`, a `body` of `size` random letters, empty `entries`).
fn note_bytes(i: usize, size: usize) -> Vec<u8> {
    let text: String = pseudo_random_bytes(i as u64 + 1, size)
        .into_iter()
        .map(|b| (b'a' + b % 26) as char)
        .collect();
    let mut doc = automerge::Automerge::new();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "schema", 1u64)?;
        tx.put(ROOT, "title", format!("bulk {i}"))?;
        tx.put(ROOT, "body", text.as_str())?;
        tx.put_object(ROOT, "entries", ObjType::List)?;
        Ok(())
    })
    .expect("a note document");
    doc.save()
}

/// Deterministic pseudo-random bytes (xorshift64), for incompressible test payloads.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
