//! Each file's rows at or after a last-value bound, kept for the queries of last values.
//!
//! A query of each series' last values (`last(*)`, or TSBS's `lastpoint`, `SELECT * FROM cpu
//! GROUP BY hostname ORDER BY time DESC LIMIT 1`) reads every shard of this node from the
//! shard's last-value bound ([`ingester::TableSnapshot::last_value_bound`], see
//! [`crate::scan`]). In a file at rest that is about one row per series, each series' newest;
//! but reaching it in Parquet takes a page of every column per series (a read, a skip to the
//! row, a dictionary decoded per row group): 2,100 pages for 100 hosts of TSBS's 21 columns,
//! most of the query.
//!
//! ```text
//!  frame_of, last values, shard bound b ─▶ file f (no delete hides its rows)
//!     ├─ kept (f, b, table schema) ─▶ its rows, in memory (crate::memory_rows)
//!     └─ not kept ─▶ scan f where time >= b (at most MAX_ROWS rows, else f is scanned as
//!                    before and that is kept) ─▶ kept ─▶ its rows, in memory
//! ```
//!
//! A file never changes and its name is never used again within a process, so its rows at or
//! after a bound stay true for every later query with that bound; the table schema they were
//! read as is kept with them (a new field elsewhere makes a new schema). The rows are exactly
//! those the file's scan would give, so every statement answers the same from them. Deletes are
//! not this module's concern: a file with newer tombstones is read whole and filtered
//! ([`crate::scan`]) and never asked for here.
//!
//! Bounded: at most [`MAX_ROWS`] rows and [`MAX_ENTRY_BYTES`] per file and bound, and at most
//! [`BUDGET_BYTES`] in all; emptied when full, as [`crate::scan::Listings`] is. Files that
//! compaction replaced are never asked for again and go with the next emptying.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use ingester::TableSchema;

/// Rows at or after a bound kept per file at most; a file with more (a series that stopped
/// long ago holds its shard's bound back) is scanned as before.
pub const MAX_ROWS: usize = 16_384;

/// Bytes of one file's kept rows at most.
pub const MAX_ENTRY_BYTES: usize = 4 << 20;

/// Bytes of all kept rows at most.
pub const BUDGET_BYTES: usize = 16 << 20;

/// A file's path and a bound.
type Key = (String, i64);

/// What is known of a file's rows at or after a bound, read as a table schema.
#[derive(Clone)]
pub enum Kept {
    /// The rows.
    Rows(Arc<Vec<RecordBatch>>),
    /// More than [`MAX_ROWS`] or [`MAX_ENTRY_BYTES`]: scan the file.
    TooMany,
}

/// The kept rows (see the module's essay).
#[derive(Default)]
pub struct LastRows {
    kept: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, (TableSchema, Kept)>,
    bytes: usize,
}

impl std::fmt::Debug for LastRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LastRows").finish_non_exhaustive()
    }
}

impl LastRows {
    /// What is kept of file `path` from `bound`, read as `schema`.
    pub fn get(&self, path: &str, bound: i64, schema: &TableSchema) -> Option<Kept> {
        let kept = self.kept.lock().ok()?;
        match kept.entries.get(&(path.to_string(), bound)) {
            Some((s, k)) if s == schema => Some(k.clone()),
            _ => None,
        }
    }

    /// Keeps `rows`, file `path`'s rows from `bound` read as `schema` (all of them: the caller
    /// read at most [`MAX_ROWS`] + 1), or that there are too many; what it keeps.
    pub fn keep(
        &self,
        path: &str,
        bound: i64,
        schema: &TableSchema,
        rows: Vec<RecordBatch>,
    ) -> Kept {
        let count: usize = rows.iter().map(RecordBatch::num_rows).sum();
        let bytes: usize = rows.iter().map(RecordBatch::get_array_memory_size).sum();
        let kept = if count > MAX_ROWS || bytes > MAX_ENTRY_BYTES {
            Kept::TooMany
        } else {
            Kept::Rows(Arc::new(rows))
        };
        let cost = match &kept {
            Kept::Rows(_) => bytes,
            Kept::TooMany => 0,
        } + path.len()
            + 64;
        if let Ok(mut state) = self.kept.lock() {
            if state.bytes + cost > BUDGET_BYTES {
                state.entries.clear();
                state.bytes = 0;
            }
            let key = (path.to_string(), bound);
            if !state.entries.contains_key(&key) {
                state.bytes += cost;
                state.entries.insert(key, (schema.clone(), kept.clone()));
            }
        }
        kept
    }

    /// Each bound kept, with the rows kept from it (`None`: too many), in order (for tests and
    /// diagnostics).
    pub fn bounds(&self) -> Vec<(i64, Option<usize>)> {
        let Ok(state) = self.kept.lock() else {
            return Vec::new();
        };
        let mut bounds: Vec<(i64, Option<usize>)> = state
            .entries
            .iter()
            .map(|((_, bound), (_, kept))| {
                let rows = match kept {
                    Kept::Rows(r) => Some(r.iter().map(RecordBatch::num_rows).sum()),
                    Kept::TooMany => None,
                };
                (*bound, rows)
            })
            .collect();
        bounds.sort();
        bounds
    }

    /// Files and bounds kept.
    pub fn len(&self) -> usize {
        self.kept.lock().map(|s| s.entries.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn rows(n: usize) -> Vec<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let values = Int64Array::from_iter_values(0..n as i64);
        vec![RecordBatch::try_new(schema, vec![Arc::new(values)]).expect("a batch")]
    }

    #[test]
    fn kept_per_file_bound_and_schema() {
        let kept = LastRows::default();
        let schema = TableSchema::default();
        assert!(kept.get("a", 1, &schema).is_none());
        assert!(matches!(kept.keep("a", 1, &schema, rows(3)), Kept::Rows(_)));
        match kept.get("a", 1, &schema) {
            Some(Kept::Rows(r)) => assert_eq!(r[0].num_rows(), 3),
            _ => panic!("rows kept"),
        }
        assert!(kept.get("a", 2, &schema).is_none(), "another bound");
        assert!(kept.get("b", 1, &schema).is_none(), "another file");
        let mut other = TableSchema::default();
        other.tags.insert("host".into());
        assert!(kept.get("a", 1, &other).is_none(), "another schema");
    }

    #[test]
    fn too_many_rows_are_remembered_not_kept() {
        let kept = LastRows::default();
        let schema = TableSchema::default();
        assert!(matches!(
            kept.keep("a", 1, &schema, rows(MAX_ROWS + 1)),
            Kept::TooMany
        ));
        assert!(matches!(kept.get("a", 1, &schema), Some(Kept::TooMany)));
    }

    #[test]
    fn emptied_when_the_budget_is_spent() {
        let kept = LastRows::default();
        let schema = TableSchema::default();
        // About 128 KiB each: the budget holds fewer than 200 of them.
        for i in 0..200 {
            kept.keep(&format!("f{i}"), 1, &schema, rows(MAX_ROWS));
        }
        assert!(kept.len() < 200);
        assert!(kept.get("f199", 1, &schema).is_some(), "the newest stays");
    }
}
