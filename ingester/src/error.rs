//! Errors of the write path, one variant per cause. The gateway maps them to HTTP statuses.

use std::path::Path;

/// A WAL failure. `Clone` because one group commit answers many requests.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WalError {
    #[error("WAL I/O on {path}: {message}")]
    Io {
        path: String,
        message: String,
        disk_full: bool,
    },
    #[error("WAL entry: {0}")]
    Decode(String),
    #[error("WAL is unusable until restart: {0}")]
    Broken(String),
    #[error("WAL writer has stopped")]
    Stopped,
}

impl WalError {
    pub fn io(path: &Path, e: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            disk_full: e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28),
            message: e.to_string(),
        }
    }
}

/// Why a shard write failed as a whole (nothing of it was written).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "cache-max-memory-size exceeded: ({used}/{limit}): the write buffer is full until persistence catches up; retry later"
    )]
    BufferFull { used: usize, limit: usize },
    #[error("write failed: {0}")]
    Wal(#[from] WalError),
    #[error("the data node is shutting down")]
    ShuttingDown,
}

/// Persistence, compaction and startup failures.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("manifest {path}: {message}")]
    Manifest { path: String, message: String },
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Meta(#[from] catalog::MetaError),
    /// Work handed to a blocking thread panicked or was cancelled.
    #[error("background task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl StorageError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
