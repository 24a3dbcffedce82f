//! Errors of store operations. Cloneable, so one failed group commit can answer every caller
//! whose write was in it.

use std::sync::Arc;

use crate::ids::DocId;

/// A store operation that failed. Nothing already committed is affected by any of these.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process (usually a running node) has the database open.
    #[error(
        "the database is in use by another process (is a node already running on this directory?)"
    )]
    InUse,
    /// The disk (or the process's file-size limit) is full; the write was not stored.
    #[error("the disk is full: the write was not stored ({0})")]
    DiskFull(Arc<std::io::Error>),
    /// Any other I/O failure.
    #[error("storage I/O failed: {0}")]
    Io(Arc<std::io::Error>),
    /// The database or a record in it is damaged.
    #[error("stored data is damaged: {what}: {reason}")]
    Corrupt {
        /// What was being read.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// The database was written by a newer yilian.
    #[error(
        "the database has schema version {found}; this yilian supports up to {supported}: upgrade yilian"
    )]
    SchemaTooNew {
        /// Version in the file.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
    /// No such document.
    #[error("no document {0}")]
    NotFound(String),
    /// A prefix matches more than one document.
    #[error(
        "{prefix:?} matches more than one document ({first}, {second}, ...): type more of the id"
    )]
    Ambiguous {
        /// What was typed.
        prefix: String,
        /// One match.
        first: DocId,
        /// Another match.
        second: DocId,
    },
    /// Bytes that are not a valid Automerge document, or an edit Automerge refused.
    #[error("invalid document: {0}")]
    InvalidDocument(String),
    /// A request that cannot be carried out as asked.
    #[error("{0}")]
    Invalid(String),
    /// A storage operation panicked; the batch was rolled back.
    #[error("internal error in the store (the write was rolled back): {0}")]
    Internal(String),
    /// The storage thread has stopped (the node is shutting down).
    #[error("the store is closed")]
    Closed,
    /// Any other redb failure.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    /// Whether the failure came from the disk, so the database must be reopened before the
    /// next write (redb refuses further work after an I/O error).
    pub(crate) fn is_io(&self) -> bool {
        matches!(self, StoreError::DiskFull(_) | StoreError::Io(_))
    }
}

fn from_io(e: std::io::Error) -> StoreError {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::EDQUOT) => {
            StoreError::DiskFull(Arc::new(e))
        }
        _ => StoreError::Io(Arc::new(e)),
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        from_io(e)
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        match e {
            redb::StorageError::Io(io) => from_io(io),
            redb::StorageError::PreviousIo => StoreError::Io(Arc::new(std::io::Error::other(
                "an earlier write failed; the database must be reopened",
            ))),
            redb::StorageError::Corrupted(reason) => StoreError::Corrupt {
                what: "database file".into(),
                reason,
            },
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse,
            redb::DatabaseError::Storage(s) => s.into(),
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl From<redb::TransactionError> for StoreError {
    fn from(e: redb::TransactionError) -> Self {
        match e {
            redb::TransactionError::Storage(s) => s.into(),
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl From<redb::TableError> for StoreError {
    fn from(e: redb::TableError) -> Self {
        match e {
            redb::TableError::Storage(s) => s.into(),
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(e: redb::CommitError) -> Self {
        match e {
            redb::CommitError::Storage(s) => s.into(),
            other => StoreError::Database(other.to_string()),
        }
    }
}
