//! A shard's manifest: which Parquet files are live, per measurement, with their schema.
//!
//! ```text
//!   <data dir>/shards/<shard id>/manifest.json
//!   <data dir>/shards/<shard id>/<file id>.parquet
//! ```
//!
//! A Parquet file is written and fsynced first; only then is it added to the manifest, which is
//! replaced atomically (write a temporary file, fsync, rename, fsync the directory). A crash at
//! any point leaves either the old or the new manifest, never a reference to a partial file.
//! Files that no manifest names (left by a crash mid-persist or mid-compaction) are deleted
//! when the shard is opened.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::schema::TableSchema;

pub const MANIFEST: &str = "manifest.json";

/// One live Parquet file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParquetFileMeta {
    pub id: u64,
    /// Orders files by age of their data: where two files hold the same series and time, the
    /// higher generation wins. A persisted file's generation is its id; a compacted file takes
    /// the highest generation of its inputs.
    pub generation: u64,
    /// Object store path, relative to the data directory.
    pub path: String,
    pub rows: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub size_bytes: u64,
    /// The tag columns the rows are sorted by, before time (empty: not recorded, as in files
    /// written before it was).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort_key: Vec<String>,
    /// Per field, [`crate::batch::last_value_bounds`] of the file's rows; `None` when not
    /// known (files written before it was recorded, and, before compaction took it from its
    /// output rows, files compacted with deletes applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_value_bounds: Option<BTreeMap<String, i64>>,
}

/// The live files of one measurement in one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFiles {
    pub schema: TableSchema,
    pub files: Vec<ParquetFileMeta>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub shard_id: u64,
    pub database: String,
    pub retention_policy: String,
    pub next_file_id: u64,
    pub tables: BTreeMap<String, TableFiles>,
    /// Deletes not yet applied by compaction.
    #[serde(default)]
    pub tombstones: Vec<std::sync::Arc<crate::delete::Tombstone>>,
    /// The Raft index of the last delete recorded in the catalog that this shard has applied
    /// (each is applied once: a delete applied again would hide points written since).
    #[serde(default)]
    pub applied_delete: u64,
    /// The recorded deletes applied here lately (a week): a write routed before one of them
    /// and arriving only now (from a hinted handoff queue, say) loses the points it removes.
    #[serde(default)]
    pub recent_deletes: Vec<AppliedDelete>,
}

/// A recorded delete as a shard applied it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedDelete {
    /// Its Raft index in the catalog.
    pub index: u64,
    pub scope: crate::DeleteScope,
    /// When this shard applied it (Unix nanos).
    pub applied_at: i64,
}

impl Manifest {
    pub fn new(shard_id: u64, database: &str, retention_policy: &str) -> Self {
        Self {
            shard_id,
            database: database.to_string(),
            retention_policy: retention_policy.to_string(),
            next_file_id: 1,
            tables: BTreeMap::new(),
            tombstones: Vec::new(),
            applied_delete: 0,
            recent_deletes: Vec::new(),
        }
    }

    /// The shard's directory under the data directory.
    pub fn shard_dir(data_dir: &Path, shard_id: u64) -> PathBuf {
        data_dir.join("shards").join(shard_id.to_string())
    }

    /// Where a shard's files are, as the manifests name them (`shards/7/`).
    pub fn shard_prefix(shard_id: u64) -> String {
        format!("shards/{shard_id}/")
    }

    /// The object store path of a file of this shard.
    pub fn file_path(&self, file_id: u64) -> String {
        format!(
            "{}{:020}.parquet",
            Self::shard_prefix(self.shard_id),
            file_id
        )
    }

    pub fn allocate_file_id(&mut self) -> u64 {
        let id = self.next_file_id;
        self.next_file_id += 1;
        id
    }

    pub fn load(path: &Path) -> Result<Self, StorageError> {
        let bytes = fs::read(path).map_err(|e| StorageError::io(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| StorageError::Manifest {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Replaces the manifest on disk atomically.
    pub fn store(&self, data_dir: &Path) -> Result<(), StorageError> {
        let dir = Self::shard_dir(data_dir, self.shard_id);
        fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let tmp = dir.join("manifest.json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| StorageError::Manifest {
            path: tmp.display().to_string(),
            message: e.to_string(),
        })?;
        let mut f = File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| StorageError::io(&tmp, e))?;
        let dst = dir.join(MANIFEST);
        fs::rename(&tmp, &dst).map_err(|e| StorageError::io(&dst, e))?;
        sync_dir(&dir)
    }

    /// Every file the manifest names, as object store paths.
    pub fn live_paths(&self) -> impl Iterator<Item = &str> {
        self.tables
            .values()
            .flat_map(|t| t.files.iter().map(|f| f.path.as_str()))
    }
}

pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

/// fsyncs a file written through the object store (the local store does not).
pub fn sync_file(path: &Path) -> Result<(), StorageError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StorageError::io(path, e))
}
