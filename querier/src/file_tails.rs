//! Each Parquet file's tail, kept for queries of last values.
//!
//! A query of each series' last values (`last(*)`, TSBS's `lastpoint`: `SELECT * ...
//! GROUP BY hostname ORDER BY time DESC LIMIT 1`) needs from a file only the rows at or after
//! the file's last-value bound ([`ingester::ParquetFileMeta::last_value_bounds`]: every series'
//! newest value of each field in the file is at or after it). On a compacted file of 100 hosts
//! those are a hundred rows, but reading them from Parquet reads and decodes a page per host
//! and column, about 1200 pages, every time. A file never changes and its name is never
//! reused, so its tail is read once and kept here, and the scan reads it from memory as it
//! reads rows of a file with tombstones ([`crate::memory_rows::MemoryBatch::unindexed`]).
//!
//! ```text
//!  scan of last values, file f without newer tombstones, bound b = f's smallest field bound
//!    ├─ estimated tail (f's rows × the part of its time span at or after b) > TAIL_ROWS
//!    │     ─▶ read from Parquet as any file
//!    └─ else (path, b) kept? ─▶ its batches ; not kept ─▶ read rows with time >= b, keep them
//! ```
//!
//! Kept tails are bounded by [`TAIL_BYTES`] (the oldest go first); nothing here reads a file
//! itself or knows about shards.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use ingester::manifest::ParquetFileMeta;

/// A file's tail is kept only when it is estimated at no more rows than this.
pub const TAIL_ROWS: f64 = 65_536.0;

/// What all kept tails may hold together (their Arrow buffers).
const TAIL_BYTES: usize = 64 << 20;

/// A file (its local path) and the bound its tail starts at.
type TailKey = (String, i64);

/// The kept tails.
#[derive(Default)]
pub struct FileTails {
    inner: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    tails: HashMap<TailKey, Arc<Vec<RecordBatch>>>,
    /// Insertion order, oldest first.
    order: VecDeque<TailKey>,
    bytes: usize,
}

impl std::fmt::Debug for FileTails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.inner.lock().map(|k| k.tails.len()).unwrap_or(0);
        f.debug_struct("FileTails").field("kept", &kept).finish()
    }
}

/// Where `file`'s tail for `fields` starts, when it is worth keeping: the smallest of the
/// file's bounds of those fields, if its tail is estimated at no more than [`TAIL_ROWS`] rows
/// (rows spread evenly over the file's time span).
pub fn tail_start(file: &ParquetFileMeta, fields: &[String]) -> Option<i64> {
    let bounds = file.last_value_bounds.as_ref()?;
    let start = fields.iter().filter_map(|f| bounds.get(f)).min().copied()?;
    let span = (file.max_time as f64 - file.min_time as f64) + 1.0;
    let tail = (file.max_time as f64 - start as f64) + 1.0;
    let estimate = file.rows as f64 * (tail / span).clamp(0.0, 1.0);
    (estimate <= TAIL_ROWS).then_some(start)
}

impl FileTails {
    /// The kept tail of `path` from `start`.
    pub fn get(&self, path: &str, start: i64) -> Option<Arc<Vec<RecordBatch>>> {
        let kept = self.inner.lock().ok()?;
        kept.tails.get(&(path.to_string(), start)).cloned()
    }

    /// Keeps `batches` as the tail of `path` from `start`, letting the oldest tails go to stay
    /// within [`TAIL_BYTES`]; a tail larger than that is not kept.
    pub fn keep(&self, path: &str, start: i64, batches: Vec<RecordBatch>) -> Arc<Vec<RecordBatch>> {
        let batches = Arc::new(batches);
        let size: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        if size > TAIL_BYTES {
            return batches;
        }
        let Ok(mut kept) = self.inner.lock() else {
            return batches;
        };
        let key = (path.to_string(), start);
        if let Some(old) = kept.tails.insert(key.clone(), Arc::clone(&batches)) {
            // Read twice by queries that raced: the one kept replaces the other.
            kept.bytes -= old
                .iter()
                .map(RecordBatch::get_array_memory_size)
                .sum::<usize>();
            kept.order.retain(|k| *k != key);
        }
        kept.order.push_back(key);
        kept.bytes += size;
        while kept.bytes > TAIL_BYTES {
            let Some(oldest) = kept.order.pop_front() else {
                break;
            };
            if let Some(gone) = kept.tails.remove(&oldest) {
                kept.bytes -= gone
                    .iter()
                    .map(RecordBatch::get_array_memory_size)
                    .sum::<usize>();
            }
        }
        batches
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use datafusion::arrow::array::{Int64Array, RecordBatch};

    use super::*;

    fn file(rows: u64, min: i64, max: i64, bounds: &[(&str, i64)]) -> ParquetFileMeta {
        ParquetFileMeta {
            id: 1,
            generation: 1,
            path: "f.parquet".into(),
            rows,
            min_time: min,
            max_time: max,
            size_bytes: 0,
            sort_key: vec![],
            last_value_bounds: Some(
                bounds
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect::<BTreeMap<_, _>>(),
            ),
        }
    }

    fn fields(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_tail_starts_at_the_smallest_bound_of_the_fields_asked_for() {
        // 100 hosts x 12 h every 10 s: the tail is the last 10 s, about 100 rows.
        let h12 = 12 * 3600 * 1_000_000_000i64;
        let f = file(432_000, 0, h12, &[("a", h12 - 10), ("b", h12 - 20)]);
        assert_eq!(tail_start(&f, &fields(&["a", "b"])), Some(h12 - 20));
        assert_eq!(tail_start(&f, &fields(&["a", "x"])), Some(h12 - 10));
        // No bound of any field asked for, or none recorded: no tail.
        assert_eq!(tail_start(&f, &fields(&["x"])), None);
        let mut unknown = f.clone();
        unknown.last_value_bounds = None;
        assert_eq!(tail_start(&unknown, &fields(&["a"])), None);
    }

    #[test]
    fn a_tail_estimated_larger_than_the_limit_is_not_kept() {
        // 100,000 hosts with three rows each, 10 s apart: the tail is a third of the file.
        let s = 1_000_000_000i64;
        let f = file(300_000, 0, 20 * s, &[("a", 20 * s)]);
        assert_eq!(tail_start(&f, &fields(&["a"])), Some(20 * s));
        let f = file(300_000, 0, 20 * s, &[("a", 10 * s)]);
        assert_eq!(tail_start(&f, &fields(&["a"])), None);
        // One instant: the whole file is its tail.
        let f = file(70_000, 5, 5, &[("a", 5)]);
        assert_eq!(tail_start(&f, &fields(&["a"])), None);
        let f = file(1000, 5, 5, &[("a", 5)]);
        assert_eq!(tail_start(&f, &fields(&["a"])), Some(5));
    }

    fn rows(n: usize) -> Vec<RecordBatch> {
        let a = Int64Array::from_iter_values(0..n as i64);
        vec![RecordBatch::try_from_iter([("a", Arc::new(a) as _)]).unwrap()]
    }

    #[test]
    fn kept_tails_are_found_by_file_and_start_and_the_oldest_go_past_the_budget() {
        let tails = FileTails::default();
        assert!(tails.get("f", 1).is_none());
        tails.keep("f", 1, rows(10));
        assert_eq!(tails.get("f", 1).unwrap()[0].num_rows(), 10);
        assert!(tails.get("f", 2).is_none(), "another start is another tail");
        assert!(tails.get("g", 1).is_none());
        // Kept twice (two queries raced): one copy counts.
        tails.keep("f", 1, rows(10));
        let one = rows(10)[0].get_array_memory_size();
        assert_eq!(tails.inner.lock().unwrap().bytes, one);

        // Tails of about a quarter of the budget each: the fifth lets the first go.
        let quarter = TAIL_BYTES / 4 / 8 - 64;
        for i in 0..5 {
            tails.keep(&format!("big{i}"), 0, rows(quarter));
        }
        assert!(tails.get("f", 1).is_none());
        assert!(tails.get("big0", 0).is_none());
        assert!(tails.get("big4", 0).is_some());
        assert!(tails.inner.lock().unwrap().bytes <= TAIL_BYTES);
        // A tail larger than the budget is answered but not kept.
        let huge = tails.keep("huge", 0, rows(TAIL_BYTES / 8 + 1));
        assert_eq!(huge[0].num_rows(), TAIL_BYTES / 8 + 1);
        assert!(tails.get("huge", 0).is_none());
    }
}
