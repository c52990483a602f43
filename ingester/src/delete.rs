//! Deletes: which rows a `DELETE`, `DROP SERIES` or `DROP MEASUREMENT` removes.
//!
//! A delete that covers a whole measurement of a shard removes its files at once. Any other
//! delete becomes a [`Tombstone`] in the shard's manifest: it hides the matching rows of every
//! file older than itself (by generation) from the moment it is recorded, and compaction
//! rewrites those files without the rows and then forgets the tombstone.

use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, BooleanBuilder, TimestampNanosecondArray};
use arrow::compute::{and, cast, filter_record_batch, not, or};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::schema::TIME;

/// A condition on tag values; a tag a row does not have reads as the empty string (1.x).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TagPredicate {
    And(Box<TagPredicate>, Box<TagPredicate>),
    Or(Box<TagPredicate>, Box<TagPredicate>),
    Eq(String, String),
    NotEq(String, String),
    Regex(String, String),
    NotRegex(String, String),
}

impl TagPredicate {
    /// Rows of `batch` for which the predicate holds.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray, ArrowError> {
        match self {
            TagPredicate::And(a, b) => and(&a.evaluate(batch)?, &b.evaluate(batch)?),
            TagPredicate::Or(a, b) => or(&a.evaluate(batch)?, &b.evaluate(batch)?),
            TagPredicate::Eq(k, v) => compare(batch, k, |s| s == v),
            TagPredicate::NotEq(k, v) => compare(batch, k, |s| s != v),
            TagPredicate::Regex(k, re) | TagPredicate::NotRegex(k, re) => {
                let re = regex::Regex::new(re)
                    .map_err(|e| ArrowError::InvalidArgumentError(e.to_string()))?;
                let hit = compare(batch, k, |s| re.is_match(s))?;
                if matches!(self, TagPredicate::NotRegex(..)) {
                    not(&hit)
                } else {
                    Ok(hit)
                }
            }
        }
    }
}

impl TagPredicate {
    /// Whether the predicate holds for a point whose tag values `tag` gives (the empty string
    /// for a tag it does not have).
    pub fn matches<'t>(&self, tag: &dyn Fn(&str) -> &'t str) -> bool {
        let regex = |re: &str, v: &str| regex::Regex::new(re).is_ok_and(|r| r.is_match(v));
        match self {
            TagPredicate::And(a, b) => a.matches(tag) && b.matches(tag),
            TagPredicate::Or(a, b) => a.matches(tag) || b.matches(tag),
            TagPredicate::Eq(k, v) => tag(k) == v,
            TagPredicate::NotEq(k, v) => tag(k) != v,
            TagPredicate::Regex(k, re) => regex(re, tag(k)),
            TagPredicate::NotRegex(k, re) => !regex(re, tag(k)),
        }
    }
}

fn compare(
    batch: &RecordBatch,
    key: &str,
    f: impl Fn(&str) -> bool,
) -> Result<BooleanArray, ArrowError> {
    let n = batch.num_rows();
    let Some(col) = batch.column_by_name(key) else {
        return Ok(BooleanArray::from(vec![f(""); n]));
    };
    let strings = cast(col, &DataType::Utf8)?;
    let strings = strings.as_string::<i32>();
    let mut out = BooleanBuilder::with_capacity(n);
    for i in 0..n {
        out.append_value(f(if strings.is_null(i) {
            ""
        } else {
            strings.value(i)
        }));
    }
    Ok(out.finish())
}

/// Rows of one measurement deleted at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub measurement: String,
    /// Inclusive time bounds.
    pub min_time: i64,
    pub max_time: i64,
    /// `None` deletes every series in the time range.
    pub predicate: Option<TagPredicate>,
    /// Files with a lower generation are older than the delete and lose the matching rows.
    pub generation: u64,
}

impl Tombstone {
    /// Removes the rows this tombstone deletes from a batch of a file of `file_generation`.
    pub fn apply(
        &self,
        batch: &RecordBatch,
        file_generation: u64,
    ) -> Result<RecordBatch, ArrowError> {
        if file_generation >= self.generation || batch.num_rows() == 0 {
            return Ok(batch.clone());
        }
        let times = batch
            .column_by_name(TIME)
            .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
            .ok_or_else(|| ArrowError::SchemaError("batch has no nanosecond time column".into()))?;
        let in_range: BooleanArray = times
            .iter()
            .map(|t| t.map(|t| t >= self.min_time && t <= self.max_time))
            .collect();
        let hit = match &self.predicate {
            Some(p) => and(&in_range, &p.evaluate(batch)?)?,
            None => in_range,
        };
        filter_record_batch(batch, &not(&hit)?)
    }
}

/// Applies every tombstone of `measurement` to a batch of a file of `generation`.
pub fn apply_all(
    tombstones: &[Arc<Tombstone>],
    measurement: &str,
    batch: RecordBatch,
    generation: u64,
) -> Result<RecordBatch, ArrowError> {
    let mut b = batch;
    for t in tombstones.iter().filter(|t| t.measurement == measurement) {
        b = t.apply(&b, generation)?;
    }
    Ok(b)
}
