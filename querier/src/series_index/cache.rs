//! The indexes kept for the process: per file, up to a capacity of runs in all; files that
//! cannot be indexed remembered so as not to be tried again.

use super::*;

/// The indexes of the files queries read, kept by location.
pub struct SeriesIndexes {
    pub(super) kept: Mutex<HashMap<Path, Arc<FileIndex>>>,
    /// Files with more runs than `capacity` (or that could not be read as indexes): scanned
    /// as DataFusion plans them, without loading them again for every query.
    pub(super) skipped: Mutex<std::collections::HashSet<Path>>,
    /// Runs kept at most, over all files.
    pub(super) capacity: usize,
    /// The dictionary pages the scans of indexed files keep.
    pub(super) kept_pages: Arc<DictionaryPages>,
    /// Scans given row selections.
    pub(super) attached: std::sync::atomic::AtomicU64,
}

impl Default for SeriesIndexes {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl std::fmt::Debug for SeriesIndexes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesIndexes").finish_non_exhaustive()
    }
}

impl SeriesIndexes {
    /// Indexes of up to `capacity` runs in all.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            kept: Mutex::default(),
            skipped: Mutex::default(),
            capacity,
            kept_pages: Arc::default(),
            attached: Default::default(),
        }
    }

    /// Scans given row selections so far.
    pub fn scans_attached(&self) -> u64 {
        self.attached.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The index of `location`, when it has been loaded.
    pub fn get(&self, location: &Path) -> Option<Arc<FileIndex>> {
        self.kept.lock().ok()?.get(location).cloned()
    }

    pub(super) fn put(&self, location: Path, index: Arc<FileIndex>) {
        if index.runs() > self.capacity {
            self.skip(location);
            return;
        }
        if let Ok(mut m) = self.kept.lock() {
            let kept: usize = m.values().map(|i| i.runs()).sum();
            if kept + index.runs() > self.capacity {
                m.clear();
            }
            m.insert(location, index);
        }
    }

    pub(super) fn skip(&self, location: Path) {
        if let Ok(mut s) = self.skipped.lock() {
            if s.len() >= 4096 {
                s.clear();
            }
            s.insert(location);
        }
    }

    pub(super) fn skipped(&self, location: &Path) -> bool {
        self.skipped.lock().is_ok_and(|s| s.contains(location))
    }

    /// Files indexed.
    pub fn len(&self) -> usize {
        self.kept.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
