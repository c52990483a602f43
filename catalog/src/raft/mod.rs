//! The catalog as an openraft state machine, in the layout of openraft's `raft-kv-rocksdb`
//! example: type configuration, log store, state machine and network each in their own module.
//! The application API on top lives in [`crate::meta`].

pub mod log_store;
pub mod network;
pub mod state_machine;
pub mod types;

use openraft::{AnyError, StorageError, StorageIOError};

/// Maps any storage failure to openraft's error for the given verb.
pub(crate) fn io_err(
    kind: fn(AnyError) -> StorageIOError<u64>,
    e: impl std::error::Error + 'static,
) -> StorageError<u64> {
    StorageError::from(kind(AnyError::new(&e)))
}
