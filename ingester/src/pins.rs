//! Files that readers may still open, so that compaction and deletes never remove a file a
//! query is about to read.
//!
//! A [`crate::TableSnapshot`] lists the files live when it was taken, and the query reading it
//! opens them later, while compaction may meanwhile replace them and a delete drop them. Each
//! snapshot therefore pins its files ([`Pinned`], released when the last clone of the snapshot's
//! pin is dropped); a file that compaction, a delete or the removal of its whole shard
//! (retention, `DROP DATABASE`) retires is removed at once if nothing pins it, else by the
//! release of its last pin.
//!
//! ```text
//!  table_snapshot (state read lock) ─▶ pin its files
//!  compaction / delete / shard removal: manifest updated (state write lock) ─▶ retire files
//!    ├─ not pinned: removed now
//!    └─ pinned: removed when the last snapshot listing it is dropped
//! ```
//!
//! Snapshots are pinned under the state lock that compaction takes to swap the manifest, so a
//! snapshot either lists a retired file and pinned it before it was retired, or does not list it.
//! A retired file not yet removed when the process stops is named by no manifest and is removed
//! when the data directory is opened again.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::StorageError;

/// The files pinned by readers, and those retired while pinned (see the module's essay).
#[derive(Debug)]
pub struct FilePins {
    /// Where the files' paths (relative, as the manifests name them) are.
    data_dir: PathBuf,
    state: Mutex<PinState>,
}

#[derive(Debug, Default)]
struct PinState {
    /// Pins per file.
    pins: HashMap<String, usize>,
    /// Files retired while pinned: removed when their last pin goes.
    retired: HashSet<String>,
}

impl FilePins {
    pub fn new(data_dir: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            data_dir,
            state: Mutex::default(),
        })
    }

    fn state(&self) -> MutexGuard<'_, PinState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pins `paths` until the returned pin is dropped.
    pub fn pin(self: &Arc<Self>, paths: Vec<String>) -> Pinned {
        let mut state = self.state();
        for p in &paths {
            *state.pins.entry(p.clone()).or_default() += 1;
        }
        Pinned {
            pins: Arc::clone(self),
            paths,
        }
    }

    /// Retires `paths`: those nothing pins are removed now, the others when their last pin is
    /// released. A file already gone is no error.
    pub fn retire(&self, paths: Vec<String>) -> Result<(), StorageError> {
        let mut now = Vec::new();
        {
            let mut state = self.state();
            for p in paths {
                if state.pins.contains_key(&p) {
                    state.retired.insert(p);
                } else {
                    now.push(p);
                }
            }
        }
        for p in now {
            let path = self.data_dir.join(&p);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(&path, e)),
            }
        }
        Ok(())
    }

    /// Files retired and still pinned.
    pub fn waiting(&self) -> usize {
        self.state().retired.len()
    }

    /// Whether a file under `prefix` (a shard's directory, as the manifests name it: `shards/7/`)
    /// is retired and still pinned.
    pub fn waiting_under(&self, prefix: &str) -> bool {
        self.state().retired.iter().any(|p| p.starts_with(prefix))
    }

    fn release(&self, paths: &[String]) {
        let mut doomed = Vec::new();
        {
            let mut state = self.state();
            for p in paths {
                let Some(n) = state.pins.get_mut(p) else {
                    continue;
                };
                *n -= 1;
                if *n == 0 {
                    state.pins.remove(p);
                    if state.retired.remove(p) {
                        doomed.push(p.clone());
                    }
                }
            }
        }
        for p in doomed {
            let path = self.data_dir.join(&p);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::debug!(file = %path.display(), "removed a retired file after its last reader")
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // Named by no manifest, it is removed when the data directory is opened again.
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "could not remove a retired file")
                }
            }
        }
    }
}

/// Files a snapshot lists, pinned until this is dropped.
#[derive(Debug)]
pub struct Pinned {
    pins: Arc<FilePins>,
    paths: Vec<String>,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        self.pins.release(&self.paths);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retired_file_goes_with_its_last_pin() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a", "b"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let pins = FilePins::new(dir.path().to_path_buf());
        let first = pins.pin(vec!["a".into()]);
        let second = pins.pin(vec!["a".into()]);
        // Nothing pins b: removed now.
        pins.retire(vec!["a".into(), "b".into()]).unwrap();
        assert!(!dir.path().join("b").exists());
        assert!(dir.path().join("a").exists());
        assert_eq!(pins.waiting(), 1);
        drop(first);
        assert!(dir.path().join("a").exists(), "still pinned once");
        drop(second);
        assert!(!dir.path().join("a").exists());
        assert_eq!(pins.waiting(), 0);
        // Released pins of files never retired remove nothing.
        std::fs::write(dir.path().join("c"), b"x").unwrap();
        drop(pins.pin(vec!["c".into()]));
        assert!(dir.path().join("c").exists());
    }
}
