//! The storage thread. It owns the [`Store`]; everyone else holds a [`StoreHandle`] and sends
//! it jobs over a bounded channel. The thread drains whatever is queued (up to
//! [`MAX_BATCH`] jobs) into one write transaction, commits it durably, and only then answers
//! each caller: one fsync serves many writers, and nothing is acknowledged before it is on
//! disk. A job that panics rolls the whole batch back and its callers get an error; the thread
//! keeps running.

use std::panic::AssertUnwindSafe;
use std::thread::JoinHandle;

use tokio::sync::{broadcast, mpsc, oneshot};

use super::error::StoreError;
use super::store::{Batch, ChangeEvent, Store, panic_text};

/// Jobs waiting for the storage thread before senders wait (backpressure).
pub const QUEUE_CAPACITY: usize = 1024;

/// Most jobs committed in one transaction.
pub const MAX_BATCH: usize = 256;

/// Change notifications buffered per subscriber; a subscriber that falls further behind is
/// told it lagged (and rescans the change sequence) instead of slowing the store down.
pub const CHANGE_EVENTS_CAPACITY: usize = 4096;

type Completion = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;
/// A queued operation: given the batch (or `None` when no batch could be started), it runs and
/// returns the completion that answers its caller once the batch's fate is known.
type Job = Box<dyn for<'a, 'b> FnOnce(Option<&'a mut Batch<'b>>) -> Completion + Send>;

/// A cloneable handle to the storage thread. The thread stops when every handle is dropped.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Job>,
    events: broadcast::Sender<ChangeEvent>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreHandle")
    }
}

/// The running storage thread; join it to know every batch has been committed.
#[derive(Debug)]
pub struct StoreThread {
    join: JoinHandle<()>,
}

impl StoreThread {
    /// Waits until the thread has finished its last batch (every handle must be dropped first).
    pub fn join(self) {
        if self.join.join().is_err() {
            tracing::error!("the storage thread ended with a panic");
        }
    }
}

/// Starts the storage thread for an open store.
pub fn spawn(store: Store) -> (StoreHandle, StoreThread) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let (events, _) = broadcast::channel(CHANGE_EVENTS_CAPACITY);
    let publish = events.clone();
    let join = std::thread::Builder::new()
        .name("yilian-store".into())
        .spawn(move || run(store, rx, publish))
        .map_err(|e| tracing::error!(error = %e, "cannot start the storage thread"));
    match join {
        Ok(join) => (StoreHandle { tx, events }, StoreThread { join }),
        // Without a thread the handle's receiver is gone: every call answers `Closed`.
        Err(()) => (
            StoreHandle { tx, events },
            StoreThread {
                join: std::thread::spawn(|| {}),
            },
        ),
    }
}

fn run(mut store: Store, mut rx: mpsc::Receiver<Job>, events: broadcast::Sender<ChangeEvent>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut batch = match store.batch() {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot start a storage batch");
                for job in jobs.drain(..) {
                    job(None)(Err(&e));
                }
                continue;
            }
        };
        let mut completions = Vec::with_capacity(jobs.len());
        let mut panicked = None;
        for job in jobs.drain(..) {
            if panicked.is_some() {
                completions.push(job(None));
                continue;
            }
            match std::panic::catch_unwind(AssertUnwindSafe(|| job(Some(&mut batch)))) {
                Ok(done) => completions.push(done),
                Err(p) => panicked = Some(panic_text(&p)),
            }
        }
        let result = match panicked {
            Some(msg) => {
                tracing::error!(panic = %msg, "a storage operation panicked; batch rolled back");
                batch.rollback();
                Err(StoreError::Internal(msg))
            }
            None => batch.commit(),
        };
        if let Err(e) = &result {
            tracing::warn!(error = %e, jobs = completions.len(), "storage batch failed");
        }
        for done in completions {
            done(result.as_ref().map(|_| ()));
        }
        if let Ok(changed) = result {
            for e in changed {
                // No subscriber is fine.
                let _ = events.send(e);
            }
        }
    }
    tracing::debug!("storage thread stopped");
}

impl StoreHandle {
    /// Notifications of every committed document change, in commit order.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.events.subscribe()
    }

    /// Queues `op` (waiting only for queue space) and calls `done` with its result on the
    /// storage thread once the batch is durably committed. Operations submitted one after
    /// another run in that order. `done` must not block.
    pub async fn submit<R, F, D>(&self, op: F, done: D) -> Result<(), StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<R, StoreError> + Send + 'static,
        D: FnOnce(Result<R, StoreError>) + Send + 'static,
    {
        let job: Job = Box::new(move |batch: Option<&mut Batch<'_>>| {
            let out = batch.map(op);
            Box::new(move |committed: Result<(), &StoreError>| {
                done(match (out, committed) {
                    (Some(Err(e)), _) => Err(e),
                    (_, Err(e)) => Err(e.clone()),
                    (Some(Ok(r)), Ok(())) => Ok(r),
                    (None, Ok(())) => Err(StoreError::Closed),
                })
            }) as Completion
        });
        self.tx.send(job).await.map_err(|_| StoreError::Closed)
    }

    /// Runs `op` on the storage thread inside a batch and returns its result once the batch
    /// is durably committed. An operation that fails does not write; a commit that fails
    /// fails every operation in the batch.
    pub async fn call<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job = Box::new(move |batch: Option<&mut Batch<'_>>| {
            let out = batch.map(op);
            Box::new(move |committed: Result<(), &StoreError>| {
                let answer = match (out, committed) {
                    (Some(Err(e)), _) => Err(e),
                    (_, Err(e)) => Err(e.clone()),
                    (Some(Ok(r)), Ok(())) => Ok(r),
                    (None, Ok(())) => Err(StoreError::Closed),
                };
                let _ = reply_tx.send(answer);
            }) as Completion
        });
        self.tx.send(job).await.map_err(|_| StoreError::Closed)?;
        reply_rx.await.unwrap_or(Err(StoreError::Closed))
    }
}
