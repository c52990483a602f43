//! Dictionary pages of indexed files, kept in memory for the scans that read them again.
//!
//! A light query reads a few pages of a few columns, but a dictionary-encoded column chunk
//! cannot be decoded without its dictionary page, which every query touching that row group
//! reads whole. A field of random-walk values with two decimals has about ten thousand distinct
//! values per row group: an 80 KB dictionary beside the one or two 2 KB data pages a host's
//! hour needs. Reading those dictionaries was most of the bytes, and a sixth of the CPU, of the
//! TSBS queries for one host (`cpu-max-all-1` reads ten of them).
//!
//! ```text
//!   FileIndex::load ──▶ FilePages::of(metadata): where each column chunk's dictionary page lies
//!     └─ SeriesIndexes::load: all of them read and kept at once, if they fit what is left of
//!        the budget
//!   scan of an indexed file (InPlaceReader) asks a byte range
//!     ├─ a dictionary page kept:      its bytes, shared (no read)
//!     ├─ a dictionary page not kept:  read, then DictionaryPages::keep (within the budget)
//!     └─ any other range:             read
//! ```
//!
//! The budget is shared by all files; when a page would pass it, every file's kept pages are
//! let go and keeping starts again (the pages of files still queried come back on their next
//! read). Memory held is at most the budget, plus the pages of files dropped since the last
//! time the budget was passed (counted until then). What it must not do: keep data pages (each
//! query wants other ones), or decide what a scan reads.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use datafusion::parquet::file::metadata::ParquetMetaData;

/// Bytes of dictionary pages kept at most by default, over all files.
pub const BUDGET: usize = 64 << 20;

/// One file's dictionary pages: where they lie, and those kept.
#[derive(Debug, Default)]
pub struct FilePages {
    /// Dictionary pages by first byte: their end.
    ranges: HashMap<u64, u64>,
    kept: Mutex<HashMap<u64, Bytes>>,
}

impl FilePages {
    /// Where the dictionary pages of the file of `metadata` lie: from a column chunk's start to
    /// its first data page, as the Parquet reader asks for them when it reads selected pages.
    pub fn of(metadata: &ParquetMetaData) -> Self {
        let mut ranges = HashMap::new();
        for (rg, group) in metadata.row_groups().iter().enumerate() {
            for (c, column) in group.columns().iter().enumerate() {
                if column.dictionary_page_offset().is_none() {
                    continue;
                }
                let (start, _) = column.byte_range();
                let first_page = metadata
                    .offset_index()
                    .and_then(|o| {
                        o.get(rg)?
                            .get(c)?
                            .page_locations()
                            .first()
                            .map(|p| p.offset)
                    })
                    .unwrap_or(column.data_page_offset());
                if let Ok(end) = u64::try_from(first_page)
                    && end > start
                {
                    ranges.insert(start, end);
                }
            }
        }
        Self {
            ranges,
            kept: Mutex::default(),
        }
    }

    /// The file's dictionary pages, in file order.
    pub fn ranges(&self) -> Vec<Range<u64>> {
        let mut ranges: Vec<Range<u64>> = self.ranges.iter().map(|(s, e)| *s..*e).collect();
        ranges.sort_by_key(|r| r.start);
        ranges
    }

    /// Whether `range` is exactly one of the file's dictionary pages.
    pub fn is_dictionary(&self, range: &Range<u64>) -> bool {
        self.ranges.get(&range.start) == Some(&range.end)
    }

    /// The dictionary page starting at `start`, if kept.
    pub fn get(&self, start: u64) -> Option<Bytes> {
        self.kept.lock().ok()?.get(&start).cloned()
    }

    /// Bytes kept.
    pub fn kept_bytes(&self) -> usize {
        self.kept
            .lock()
            .map(|k| k.values().map(Bytes::len).sum())
            .unwrap_or(0)
    }

    fn clear(&self) {
        if let Ok(mut k) = self.kept.lock() {
            k.clear();
        }
    }
}

/// The budget of kept dictionary pages, shared by all files (see the module's essay).
#[derive(Debug)]
pub struct DictionaryPages {
    budget: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Bytes kept since the budget was last passed.
    used: usize,
    /// The files that kept some since then.
    holders: Vec<Weak<FilePages>>,
}

impl Default for DictionaryPages {
    fn default() -> Self {
        Self::with_budget(BUDGET)
    }
}

impl DictionaryPages {
    pub fn with_budget(budget: usize) -> Self {
        Self {
            budget,
            state: Mutex::default(),
        }
    }

    /// Bytes that can still be kept before the budget is passed (and every file's pages let
    /// go).
    pub fn room(&self) -> usize {
        self.state
            .lock()
            .map_or(0, |s| self.budget.saturating_sub(s.used))
    }

    /// Keeps `bytes`, the dictionary page of `file` starting at `start`.
    pub fn keep(&self, file: &Arc<FilePages>, start: u64, bytes: &Bytes) {
        let len = bytes.len();
        let known = file.kept.lock().map_or(true, |k| k.contains_key(&start));
        if len > self.budget || known {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.used + len > self.budget {
            for held in state.holders.drain(..) {
                if let Some(f) = held.upgrade() {
                    f.clear();
                }
            }
            state.used = 0;
        }
        let Ok(mut kept) = file.kept.lock() else {
            return;
        };
        if kept.is_empty() {
            state.holders.push(Arc::downgrade(file));
        }
        if kept.insert(start, bytes.clone()).is_none() {
            state.used += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(pages: &[(u64, u64)]) -> Arc<FilePages> {
        Arc::new(FilePages {
            ranges: pages.iter().copied().collect(),
            kept: Mutex::default(),
        })
    }

    #[test]
    fn pages_are_kept_within_the_budget_and_let_go_together() {
        let budget = DictionaryPages::with_budget(100);
        let (a, b) = (file(&[(0, 40), (100, 140)]), file(&[(0, 50)]));
        assert!(a.is_dictionary(&(0..40)));
        assert!(!a.is_dictionary(&(0..39)) && !a.is_dictionary(&(40..100)));
        assert_eq!(budget.room(), 100);
        budget.keep(&a, 0, &Bytes::from(vec![1u8; 40]));
        budget.keep(&a, 100, &Bytes::from(vec![2u8; 40]));
        assert_eq!(a.get(0).as_deref(), Some(&[1u8; 40][..]));
        assert_eq!(a.kept_bytes(), 80);
        // What a file's pages must fit in to be read ahead without letting any go.
        assert_eq!(budget.room(), 20);
        assert_eq!(a.ranges(), [0..40, 100..140]);
        // Keeping the same page again counts it once.
        budget.keep(&a, 0, &Bytes::from(vec![1u8; 40]));
        assert_eq!(a.kept_bytes(), 80);
        // b's page would pass the budget: a's are let go, b's kept.
        budget.keep(&b, 0, &Bytes::from(vec![3u8; 50]));
        assert_eq!((a.kept_bytes(), b.kept_bytes()), (0, 50));
        assert_eq!(budget.room(), 50);
        assert_eq!(a.get(0), None);
        // A page larger than the whole budget is never kept.
        budget.keep(&a, 100, &Bytes::from(vec![0u8; 101]));
        assert_eq!((a.kept_bytes(), b.kept_bytes()), (0, 50));
        // A dropped file's pages are counted until the budget is next passed.
        drop(b);
        budget.keep(&a, 0, &Bytes::from(vec![1u8; 40]));
        assert_eq!(a.kept_bytes(), 40);
        budget.keep(&a, 100, &Bytes::from(vec![2u8; 40]));
        assert_eq!(
            a.kept_bytes(),
            40,
            "50 + 40 + 40 passes 100: let go, then kept"
        );
        assert_eq!(a.get(100).map(|b| b.len()), Some(40));
    }
}
