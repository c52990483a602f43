//! What one owner holds of a shard, in little: per measurement and series, the number of
//! points, the first and last time, and a checksum of the rows that does not depend on their
//! order (the wrapping sum of each row's FNV-1a hash of its time and field values).
//!
//! A measurement's digest is kept ([`DigestCache`]) with the Parquet files and tombstones it
//! was read from (`Ingester::table_version`): the next check of a shard whose files have not
//! changed reads nothing. Rows still buffered are read every time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimestampNanosecondType, UInt64Type,
};
use futures::TryStreamExt;
use ingester::{Ingester, TableSchema, TableVersion};
use querier::ExecError;
use querier::select::TimeRange;
use querier::shard_source::{ScanRequest, ShardSource};
use serde::{Deserialize, Serialize};

/// One series of one measurement in one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesDigest {
    pub points: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub checksum: u64,
}

/// One owner's copy of a shard: measurement ─▶ series key (`tag=value,...`, tags in name
/// order, empty values left out) ─▶ digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardDigest {
    pub measurements: BTreeMap<String, BTreeMap<String, SeriesDigest>>,
    /// When the owner last wrote to the shard (ns), if it knows: a shard still being written
    /// (a backfill into an old group, say) is not compared by the periodic check.
    #[serde(default)]
    pub last_write: Option<i64>,
}

impl ShardDigest {
    pub fn points(&self) -> u64 {
        self.measurements
            .values()
            .flat_map(|s| s.values())
            .map(|d| d.points)
            .sum()
    }

    /// Series (per measurement) that `other` lacks or holds differently.
    pub fn missing_from(&self, other: &ShardDigest) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (m, series) in &self.measurements {
            let theirs = other.measurements.get(m);
            for (key, d) in series {
                if theirs.and_then(|t| t.get(key)) != Some(d) {
                    out.entry(m.clone()).or_default().push(key.clone());
                }
            }
        }
        out
    }
}

fn fnv(h: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *h ^= b as u64;
        *h = h.wrapping_mul(0x100000001b3);
    }
}

/// The Arrow schema a scan of every column of `schema` asks for (tags as dictionaries).
pub fn scan_schema(schema: &TableSchema) -> SchemaRef {
    let arrow = schema.arrow();
    std::sync::Arc::new(Schema::new(
        arrow
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), f.is_nullable()))
            .collect::<Vec<_>>(),
    ))
}

/// The rows of one batch, read for digests and copies: each row's series key, time and
/// non-null field values.
pub struct Rows<'a> {
    batch: &'a RecordBatch,
    tags: Vec<(String, datafusion::arrow::array::ArrayRef)>,
    fields: Vec<(String, &'a dyn Array)>,
    times: &'a datafusion::arrow::array::PrimitiveArray<TimestampNanosecondType>,
}

/// A field value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    String(String),
    Boolean(bool),
}

impl<'a> Rows<'a> {
    /// `batch` of a scan of `schema`'s columns.
    pub fn new(batch: &'a RecordBatch, schema: &TableSchema) -> Result<Self, ExecError> {
        let mut tags = Vec::new();
        for t in &schema.tags {
            if let Some(c) = batch.column_by_name(t) {
                tags.push((t.clone(), cast(c, &DataType::Utf8)?));
            }
        }
        let fields = schema
            .fields
            .keys()
            .filter_map(|f| batch.column_by_name(f).map(|c| (f.clone(), c.as_ref())))
            .collect();
        let times = batch
            .column_by_name(ingester::schema::TIME)
            .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
            .ok_or_else(|| ExecError::Internal("a scan without its time column".into()))?;
        Ok(Self {
            batch,
            tags,
            fields,
            times,
        })
    }

    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`'s tags with a value, in name order.
    pub fn tags(&self, i: usize) -> Vec<(&str, &str)> {
        self.tags
            .iter()
            .filter_map(|(k, c)| {
                let c = c.as_string::<i32>();
                (!c.is_null(i) && !c.value(i).is_empty()).then(|| (k.as_str(), c.value(i)))
            })
            .collect()
    }

    /// Row `i`'s series key.
    pub fn series_key(&self, i: usize) -> String {
        self.tags(i)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn time(&self, i: usize) -> i64 {
        self.times.value(i)
    }

    /// Row `i`'s field values, in name order.
    pub fn fields(&self, i: usize) -> Vec<(&str, Value)> {
        self.fields
            .iter()
            .filter(|(_, c)| !c.is_null(i))
            .filter_map(|(k, c)| {
                let v = match c.data_type() {
                    DataType::Float64 => Value::Float(c.as_primitive::<Float64Type>().value(i)),
                    DataType::Int64 => Value::Integer(c.as_primitive::<Int64Type>().value(i)),
                    DataType::UInt64 => Value::Unsigned(c.as_primitive::<UInt64Type>().value(i)),
                    DataType::Utf8 => Value::String(c.as_string::<i32>().value(i).to_string()),
                    DataType::Boolean => Value::Boolean(c.as_boolean().value(i)),
                    _ => return None,
                };
                Some((k.as_str(), v))
            })
            .collect()
    }

    /// A hash of row `i`'s time and field values.
    fn hash(&self, i: usize) -> u64 {
        let mut h: u64 = 0xcbf29ce484222325;
        fnv(&mut h, &self.time(i).to_le_bytes());
        for (k, v) in self.fields(i) {
            fnv(&mut h, k.as_bytes());
            match v {
                Value::Float(f) => fnv(&mut h, &f.to_bits().to_le_bytes()),
                Value::Integer(n) => fnv(&mut h, &n.to_le_bytes()),
                Value::Unsigned(n) => fnv(&mut h, &n.to_le_bytes()),
                Value::String(s) => {
                    fnv(&mut h, b"s");
                    fnv(&mut h, s.as_bytes())
                }
                Value::Boolean(b) => fnv(&mut h, &[b'b', b as u8]),
            }
        }
        h
    }
}

/// Every row of measurement `m` of `shard` that `source` holds, as a stream of batches.
pub async fn scan_all(
    source: &dyn ShardSource,
    database: &str,
    shard: u64,
    m: &str,
    schema: &TableSchema,
) -> Result<datafusion::execution::SendableRecordBatchStream, ExecError> {
    source
        .scan(ScanRequest {
            database: database.to_string(),
            measurement: m.to_string(),
            shards: vec![shard],
            range: TimeRange::ALL,
            schema: scan_schema(schema),
            filters: Vec::new(),
            last_values: false,
        })
        .await
}

/// `source`'s digest of `shard` of `database`, read whole.
pub async fn of(
    source: &dyn ShardSource,
    database: &str,
    shard: u64,
) -> Result<ShardDigest, ExecError> {
    of_cached(source, None, database, shard).await
}

/// The digests of one node's measurements, each with the files it was read from.
#[derive(Debug, Default)]
pub struct DigestCache {
    entries: Mutex<HashMap<(u64, String), (TableVersion, Series)>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Series key ─▶ digest, of one measurement.
type Series = BTreeMap<String, SeriesDigest>;

impl DigestCache {
    /// Measurements answered from the cache, and read, so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn get(&self, shard: u64, m: &str, version: &TableVersion) -> Option<Series> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (v, series) = entries.get(&(shard, m.to_string()))?;
        (v == version).then(|| series.clone())
    }

    fn put(&self, shard: u64, m: &str, version: TableVersion, series: &Series) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert((shard, m.to_string()), (version, series.clone()));
    }

    /// Lets go of what `shard` no longer holds, and of shards `ingester` no longer has.
    fn retain(&self, ingester: &Ingester, shard: u64, measurements: &BTreeSet<String>) {
        let shards = ingester.shard_ids();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(s, m), _| shards.contains(s) && (*s != shard || measurements.contains(m)));
    }
}

/// [`of`], reusing (and keeping) in `cache` the digest of each measurement whose rows are all
/// in files of `ingester` that have not changed since it was read.
pub async fn of_cached(
    source: &dyn ShardSource,
    cache: Option<(&Ingester, &DigestCache)>,
    database: &str,
    shard: u64,
) -> Result<ShardDigest, ExecError> {
    let mut out = ShardDigest::default();
    let measurements = source.measurements(database, &[shard]).await?;
    for m in &measurements {
        let version = cache.and_then(|(ing, _)| ing.table_version(shard, m));
        if let (Some((_, c)), Some(v)) = (cache, &version) {
            if let Some(series) = c.get(shard, m, v) {
                c.hits.fetch_add(1, Ordering::Relaxed);
                out.measurements.insert(m.clone(), series);
                continue;
            }
            c.misses.fetch_add(1, Ordering::Relaxed);
        }
        let Some(schema) = source.schema(database, &[shard], m).await? else {
            continue;
        };
        let series = measurement(source, database, shard, m, &schema).await?;
        // Kept only if the files did not change while they were read.
        if let (Some((ing, c)), Some(v)) = (cache, version) {
            if ing.table_version(shard, m).as_ref() == Some(&v) {
                c.put(shard, m, v, &series);
            }
        }
        if !series.is_empty() {
            out.measurements.insert(m.clone(), series);
        }
    }
    if let Some((ing, c)) = cache {
        c.retain(ing, shard, &measurements);
    }
    Ok(out)
}

/// How long a digest read rests for each moment it works: it works at most 1/40 of the time,
/// so that comparing replicas in the background costs ingest little (a 1.7M-row read took
/// a full core away from a loaded 2-core machine without it; see docs/benchmarks.md).
const REST_PER_WORK: u32 = 39;

/// The series digests of measurement `m` of `shard`, read whole, in short bursts.
async fn measurement(
    source: &dyn ShardSource,
    database: &str,
    shard: u64,
    m: &str,
    schema: &TableSchema,
) -> Result<Series, ExecError> {
    let mut series = Series::new();
    let mut stream = scan_all(source, database, shard, m, schema).await?;
    loop {
        let started = std::time::Instant::now();
        let Some(batch) = stream.try_next().await? else {
            break;
        };
        let rows = Rows::new(&batch, schema)?;
        for i in 0..rows.len() {
            let d = series.entry(rows.series_key(i)).or_insert(SeriesDigest {
                min_time: i64::MAX,
                max_time: i64::MIN,
                ..Default::default()
            });
            let t = rows.time(i);
            d.points += 1;
            d.min_time = d.min_time.min(t);
            d.max_time = d.max_time.max(t);
            d.checksum = d.checksum.wrapping_add(rows.hash(i));
        }
        tokio::time::sleep(started.elapsed() * REST_PER_WORK).await;
    }
    Ok(series)
}
