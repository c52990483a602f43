//! Parquet files through `object_store`: how a sorted, deduplicated batch of one measurement
//! becomes a file, and how files are read back (compaction; later the querier).
//!
//! Layout inside a file: tag columns (dictionary-encoded), field columns, `time`; rows sorted
//! by series (the tag with the most values first) then time; page-level statistics and row
//! groups of [`ROW_GROUP_ROWS`] rows or [`MAX_ROW_GROUP_SERIES`] series, so a reader can skip
//! pages and row groups by tag and time. The
//! Arrow schema (with the column kinds) is embedded, so pyarrow or DataFusion read the files
//! with nothing from Fletch.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::AsyncArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::batch::{LastValueBounds, RunsAcrossBatches};
use crate::error::StorageError;
use crate::schema::{MEASUREMENT_KEY, TIME};

/// Rows per row group: small enough that time and tag statistics prune, large enough to
/// compress well.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Series per row group at most, once it holds [`MIN_ROW_GROUP_ROWS`]: a reader of any row of
/// a row group decodes the dictionary page of every column it reads, and a tag's dictionary
/// holds a value per series of the group. With 100,000 hosts of three rows each, a row group
/// of [`ROW_GROUP_ROWS`] held 43,000 host names, and a query of one host spent a fifth of its
/// time decoding them (and the floats' dictionaries, as large). Series with many rows each
/// never reach the limit before the row count does.
pub const MAX_ROW_GROUP_SERIES: usize = 1024;

/// Rows a row group holds at least before [`MAX_ROW_GROUP_SERIES`] ends it, so that tiny series
/// do not make tiny row groups (each costs metadata, and a page per column).
pub const MIN_ROW_GROUP_ROWS: usize = 16 * 1024;

/// Rows per data page (at most; the writer checks every 1024 rows). Files are sorted by series
/// then time, so a page holds about one series' stretch of time, and the page index prunes by
/// time within a series: a query of one host's last hour, or of each series' last values,
/// decodes a few pages per series instead of the 20k-row pages that span several hosts' whole
/// range (`single-groupby-1-1-1` 4.6 → 3.4 ms, `cpu-max-all-1` 9.6 → 6.3 ms; files 6% larger).
pub const PAGE_ROWS: usize = 1024;

/// Average rows per series below which a file's float columns are written without a
/// dictionary ([`FileWriter`] judges the first batch it is given). Below it, row groups end at
/// [`MAX_ROW_GROUP_SERIES`] series and [`MIN_ROW_GROUP_ROWS`] rows (this is their ratio), and a
/// row group's float dictionary holds about as many values as it has rows: 100,000 hosts of
/// three rows made dictionaries of 8,000 values per 16 Ki rows, which saved a third of the
/// plain values' bytes while every read of one host's rows decoded ten of them (8% of such
/// a query's CPU). Plain pages of [`PAGE_ROWS`] values are read and skipped without a
/// dictionary. Series with more rows (both TSBS sets: 360 and 4320 per host) repeat their
/// values within a row group and keep dictionaries (80 KB for 128 Ki rows).
pub const PLAIN_FLOATS_BELOW_ROWS_PER_SERIES: usize = MIN_ROW_GROUP_ROWS / MAX_ROW_GROUP_SERIES;

/// Rows are sorted by series ([`crate::batch::sort_key`]) then time, but the files do not
/// declare it (`sorting_columns`): DataFusion would then plan order-preserving aggregations for
/// `GROUP BY <first tag>`, which measured slower than hashing (`double-groupby-all` 32 ms →
/// 54 ms).
///
/// Float fields are written uncompressed, every other column with ZSTD (see
/// [`column_compression`]); with `plain_floats`, float columns have no dictionary
/// ([`PLAIN_FLOATS_BELOW_ROWS_PER_SERIES`]).
fn writer_properties(measurement: &str, schema: &Schema, plain_floats: bool) -> WriterProperties {
    let mut builder = WriterProperties::builder();
    for field in schema.fields() {
        let column = ColumnPath::from(field.name().as_str());
        if let Some(codec) = column_compression(field.data_type()) {
            builder = builder.set_column_compression(column.clone(), codec);
        }
        if plain_floats && field.data_type() == &DataType::Float64 {
            builder = builder.set_column_dictionary_enabled(column, false);
        }
    }
    builder
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_column_dictionary_enabled(ColumnPath::from(TIME), false)
        .set_column_encoding(ColumnPath::from(TIME), Encoding::DELTA_BINARY_PACKED)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            MEASUREMENT_KEY.to_string(),
            measurement.to_string(),
        )]))
        .build()
}

/// A column's codec where it is not the files' ZSTD.
///
/// Float fields: a row group's float column is dictionary-encoded as long as its distinct values
/// fit (TSBS's readings, two decimals in 0..100, make a 10k-value, 80 KB dictionary per row
/// group), and reading any one value of a row group means decoding its whole dictionary page
/// first. Compressed, that is a ZSTD decompression of every dictionary a query touches: a
/// quarter of `lastpoint`'s CPU on 100 hosts x 12 h, which reads one row per host and field
/// from each of 4 row groups. ZSTD saved only 17% on these columns (the dictionary indices
/// are already bit-packed); uncompressed, `lastpoint` went from 21.5 to 14-17 ms of server CPU
/// per query, the other query types stayed the same, and files grew 21%. Floats that do not
/// fit a dictionary (full-precision noise) fall back to plain values, which ZSTD shrinks by
/// a tenth at most (a full-precision random walk: 7.4 bytes per value against 8.1).
///
/// Time and tags: time is delta-encoded (a regular interval packs to a few bits per row) and
/// tags are dictionaries whose indices are run-length encoded (rows are sorted by series), so
/// ZSTD has little left to remove, while every column chunk a query reads with it first builds
/// a ZSTD decompression context: 5% of a one-host, one-hour query's CPU.
pub fn column_compression(data_type: &DataType) -> Option<Compression> {
    matches!(
        data_type,
        DataType::Float64 | DataType::Timestamp(_, _) | DataType::Dictionary(_, _)
    )
    .then_some(Compression::UNCOMPRESSED)
}

/// Writes `batch` (already sorted and deduplicated) to `path`.
pub async fn write_file(
    store: &Arc<dyn ObjectStore>,
    path: &str,
    batch: &RecordBatch,
    measurement: &str,
) -> Result<WrittenFile, StorageError> {
    let mut w = FileWriter::create(store, path, batch.schema(), measurement)?;
    w.write(batch).await?;
    w.close().await
}

/// A file written batch by batch (compaction's output): row groups go out as they fill, so
/// memory holds about one row group however long the file gets.
pub struct FileWriter {
    target: Target,
    /// Opened at the first batch, whose series tell whether float columns get dictionaries
    /// ([`PLAIN_FLOATS_BELOW_ROWS_PER_SERIES`]).
    writer: Option<AsyncArrowWriter<BufWriter>>,
    rows: usize,
    /// Where each batch's series begin (a series going on from one batch into the next is
    /// not counted again).
    series: RunsAcrossBatches,
    /// Series begun in the row group in progress. When the writer's own row limit ends a
    /// group in the middle of a batch, the series counted before that point stay counted, so
    /// the next group may end early (never below [`MIN_ROW_GROUP_ROWS`]).
    group_series: usize,
    /// The file's last-value bounds, from the same series runs.
    bounds: LastValueBounds,
}

/// Where and what a [`FileWriter`] writes.
struct Target {
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
    schema: SchemaRef,
    measurement: String,
}

/// A writer of `target`'s file, with float dictionaries unless `plain_floats`.
fn open(target: &Target, plain_floats: bool) -> Result<AsyncArrowWriter<BufWriter>, StorageError> {
    Ok(AsyncArrowWriter::try_new(
        BufWriter::new(target.store.clone(), target.location.clone()),
        target.schema.clone(),
        Some(writer_properties(
            &target.measurement,
            &target.schema,
            plain_floats,
        )),
    )?)
}

/// A file [`FileWriter::close`] finished.
#[derive(Debug)]
pub struct WrittenFile {
    pub size_bytes: u64,
    /// [`crate::batch::last_value_bounds`] of every row written.
    pub last_value_bounds: BTreeMap<String, i64>,
}

impl FileWriter {
    pub fn create(
        store: &Arc<dyn ObjectStore>,
        path: &str,
        schema: SchemaRef,
        measurement: &str,
    ) -> Result<Self, StorageError> {
        let series = RunsAcrossBatches::new(&schema)?;
        Ok(Self {
            target: Target {
                store: store.clone(),
                location: ObjectPath::from(path),
                schema,
                measurement: measurement.to_string(),
            },
            writer: None,
            rows: 0,
            series,
            group_series: 0,
            bounds: LastValueBounds::default(),
        })
    }

    /// Writes `batch` (sorted by series then time, in the file's schema): a row group ends
    /// where a series begins once the group holds [`MAX_ROW_GROUP_SERIES`] series and
    /// [`MIN_ROW_GROUP_ROWS`] rows, or (the writer's own limit) at [`ROW_GROUP_ROWS`] rows.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), StorageError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let (runs, continues) = self.series.next(batch)?;
        self.bounds.push_runs(batch, &runs, continues)?;
        let writer = match &mut self.writer {
            Some(w) => w,
            w @ None => {
                let plain_floats =
                    runs.len() * PLAIN_FLOATS_BELOW_ROWS_PER_SERIES > batch.num_rows();
                w.insert(open(&self.target, plain_floats)?)
            }
        };
        // Where each series begins in `batch`; the first row only if it is not the series
        // the previous batch ended with.
        let starts = runs.iter().skip(usize::from(continues)).map(|r| r.start);
        let mut from = 0;
        for start in starts {
            // A series begins at `start`: the group ends before it if it is full.
            let group_rows = writer.in_progress_rows() + (start - from);
            if self.group_series >= MAX_ROW_GROUP_SERIES && group_rows >= MIN_ROW_GROUP_ROWS {
                if start > from {
                    writer.write(&batch.slice(from, start - from)).await?;
                }
                writer.flush().await?;
                self.group_series = 0;
                from = start;
            }
            self.group_series += 1;
        }
        writer
            .write(&batch.slice(from, batch.num_rows() - from))
            .await?;
        if writer.in_progress_rows() == 0 {
            // The writer ended the group at its row limit.
            self.group_series = 0;
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Finishes the file; returns its size and last-value bounds.
    pub async fn close(self) -> Result<WrittenFile, StorageError> {
        let writer = match self.writer {
            Some(w) => w,
            None => open(&self.target, false)?,
        };
        writer.close().await?;
        Ok(WrittenFile {
            size_bytes: self.target.store.head(&self.target.location).await?.size,
            last_value_bounds: self.bounds.finish(),
        })
    }
}

/// Reads a whole file (fetched in one request from the object store).
pub async fn read_file(
    store: &Arc<dyn ObjectStore>,
    path: &str,
) -> Result<Vec<RecordBatch>, StorageError> {
    Ok(read_batches(store, path, 1024)
        .await?
        .collect::<Result<Vec<_>, _>>()?)
}

/// Fetches a file and returns a reader that decodes it `batch_rows` rows at a time: memory
/// holds the compressed file and one decoded batch.
pub async fn read_batches(
    store: &Arc<dyn ObjectStore>,
    path: &str,
    batch_rows: usize,
) -> Result<ParquetRecordBatchReader, StorageError> {
    let bytes = store.get(&ObjectPath::from(path)).await?.bytes().await?;
    Ok(ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .with_batch_size(batch_rows)
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{tag_field, time_field, with_kind};
    use arrow::array::{DictionaryArray, Float64Array, TimestampNanosecondArray};
    use arrow::datatypes::{Field, Int32Type};
    use object_store::memory::InMemory;

    /// `hosts` series of `rows` rows each, sorted by host then time, cut into batches of at
    /// most `batch_rows`.
    fn hosts(hosts: usize, rows: usize, batch_rows: usize) -> Vec<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![
            tag_field("host"),
            with_kind(Field::new("v", DataType::Float64, true), "field"),
            time_field(),
        ]));
        let names: Vec<String> = (0..hosts)
            .flat_map(|h| std::iter::repeat_n(format!("host_{h:06}"), rows))
            .collect();
        let host: DictionaryArray<Int32Type> = names.iter().map(String::as_str).collect();
        let n = hosts * rows;
        let all = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(host),
                Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64))),
                Arc::new(TimestampNanosecondArray::from_iter_values(
                    (0..n).map(|i| (i % rows) as i64),
                )),
            ],
        )
        .unwrap();
        (0..n)
            .step_by(batch_rows)
            .map(|at| all.slice(at, batch_rows.min(n - at)))
            .collect()
    }

    /// The file a [`FileWriter`] makes of `batches`.
    async fn written(batches: &[RecordBatch]) -> bytes::Bytes {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut w = FileWriter::create(&store, "f.parquet", batches[0].schema(), "m").unwrap();
        for b in batches {
            w.write(b).await.unwrap();
        }
        w.close().await.unwrap();
        let read = store.get(&ObjectPath::from("f.parquet")).await.unwrap();
        read.bytes().await.unwrap()
    }

    /// Each row group's row count and the hosts it holds, after writing `batches`.
    async fn row_groups(batches: &[RecordBatch]) -> Vec<(usize, Vec<String>)> {
        let bytes = written(batches).await;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
        let groups = builder.metadata().num_row_groups();
        let mut out = Vec::new();
        for g in 0..groups {
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
                .unwrap()
                .with_row_groups(vec![g])
                .build()
                .unwrap();
            let (mut rows, mut names) = (0, Vec::new());
            for b in reader {
                let b = b.unwrap();
                rows += b.num_rows();
                let host = arrow::compute::cast(b.column(0), &DataType::Utf8).unwrap();
                for h in arrow::array::AsArray::as_string::<i32>(&host)
                    .iter()
                    .flatten()
                {
                    if names.last().map(String::as_str) != Some(h) {
                        names.push(h.to_string());
                    }
                }
            }
            out.push((rows, names));
        }
        out
    }

    /// Whether each column of the file `batches` make has a dictionary page, by name, and
    /// the values read back of column `v`.
    async fn dictionaries(batches: &[RecordBatch]) -> (Vec<(String, bool)>, Vec<f64>) {
        let bytes = written(batches).await;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let meta = builder.metadata().clone();
        let mut values = Vec::new();
        for b in builder.build().unwrap() {
            let b = b.unwrap();
            let v = b.column_by_name("v").unwrap();
            values.extend(
                arrow::array::AsArray::as_primitive::<arrow::datatypes::Float64Type>(v)
                    .values()
                    .iter(),
            );
        }
        let columns = meta
            .row_groups()
            .iter()
            .flat_map(|g| g.columns())
            .map(|c| {
                (
                    c.column_path().string(),
                    c.dictionary_page_offset().is_some(),
                )
            })
            .collect();
        (columns, values)
    }

    #[tokio::test]
    async fn floats_of_short_series_are_written_without_dictionaries() {
        // Three rows per host (below PLAIN_FLOATS_BELOW_ROWS_PER_SERIES): every row group's
        // float column is plain; tags keep their dictionaries; the values read back whole.
        let batches = hosts(20_000, 3, 1000);
        let (columns, values) = dictionaries(&batches).await;
        assert!(columns.len() > 3, "several row groups: {columns:?}");
        for (name, dictionary) in &columns {
            match name.as_str() {
                "v" | "time" => assert!(!dictionary, "{name}: {columns:?}"),
                _ => assert!(dictionary, "{name}: {columns:?}"),
            }
        }
        let expected: Vec<f64> = (0..60_000).map(|i| i as f64).collect();
        assert_eq!(values, expected);
        // Exactly at the threshold, and above it, floats keep their dictionaries (the writer
        // judges the first batch).
        for rows in [PLAIN_FLOATS_BELOW_ROWS_PER_SERIES, 360] {
            let (columns, values) = dictionaries(&hosts(100, rows, 8192)).await;
            assert!(
                columns.iter().any(|(n, d)| n == "v" && *d),
                "{rows} rows per series: {columns:?}"
            );
            assert_eq!(values.len(), 100 * rows);
        }
    }

    #[tokio::test]
    async fn many_small_series_end_row_groups_at_a_series_start() {
        // 20,000 hosts of 3 rows, in batches that cut series in two: groups of at least
        // MIN_ROW_GROUP_ROWS rows, ended where a series starts once they hold the series limit.
        let groups = row_groups(&hosts(20_000, 3, 1000)).await;
        let sizes: Vec<(usize, usize)> = groups.iter().map(|(r, n)| (*r, n.len())).collect();
        assert!(groups.len() > 1, "{sizes:?}");
        for (i, &(rows, series)) in sizes.iter().enumerate() {
            if i + 1 < sizes.len() {
                assert!(rows >= MIN_ROW_GROUP_ROWS, "group {i}: {sizes:?}");
            }
            // A series never spans two groups here, and a group ends at the first series
            // start past the limits.
            assert_eq!(rows % 3, 0, "group {i} cut a series: {sizes:?}");
            assert!(series <= MIN_ROW_GROUP_ROWS / 3 + 1, "group {i}: {sizes:?}");
        }
        assert_eq!(sizes.iter().map(|(_, n)| n).sum::<usize>(), 20_000);
    }

    #[tokio::test]
    async fn series_of_some_rows_make_groups_of_the_series_limit() {
        // 3000 hosts of 20 rows, in batches that cut series in two: MAX_ROW_GROUP_SERIES
        // series are more than MIN_ROW_GROUP_ROWS rows, so the series limit ends the groups.
        let groups = row_groups(&hosts(3000, 20, 8190)).await;
        let series: Vec<usize> = groups.iter().map(|(_, n)| n.len()).collect();
        assert_eq!(
            series,
            [
                MAX_ROW_GROUP_SERIES,
                MAX_ROW_GROUP_SERIES,
                3000 - 2 * MAX_ROW_GROUP_SERIES
            ]
        );
    }

    #[tokio::test]
    async fn the_writer_bounds_every_row_it_wrote_and_a_measurement_without_tags_is_one_series() {
        // Series cut by batches: the bounds follow each series into the next batch.
        let batches = hosts(50, 7, 10);
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut w = FileWriter::create(&store, "b.parquet", batches[0].schema(), "m").unwrap();
        for b in &batches {
            w.write(b).await.unwrap();
        }
        let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        assert_eq!(
            w.close().await.unwrap().last_value_bounds,
            crate::batch::last_value_bounds(&all).unwrap()
        );

        // No tags, in 2000 batches of 100 rows: one series, so only the row count ends groups.
        let untagged: Vec<RecordBatch> = batches_without_tags(2000, 100);
        let groups = row_groups(&untagged).await;
        let rows: Vec<usize> = groups.iter().map(|(r, _)| *r).collect();
        assert_eq!(rows, [ROW_GROUP_ROWS, 200_000 - ROW_GROUP_ROWS]);
    }

    fn batches_without_tags(batches: usize, rows: usize) -> Vec<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![
            with_kind(Field::new("v", DataType::Float64, true), "field"),
            time_field(),
        ]));
        (0..batches)
            .map(|b| {
                let t = (b * rows) as i64;
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Float64Array::from_iter_values((0..rows).map(|i| i as f64))),
                        Arc::new(TimestampNanosecondArray::from_iter_values(
                            (0..rows as i64).map(|i| t + i),
                        )),
                    ],
                )
                .unwrap()
            })
            .collect()
    }

    #[tokio::test]
    async fn long_series_fill_row_groups_by_rows() {
        // 4 hosts of 100,000 rows: the row count ends the groups, in the middle of a series.
        let groups = row_groups(&hosts(4, 100_000, 8192)).await;
        let rows: Vec<usize> = groups.iter().map(|(r, _)| *r).collect();
        assert_eq!(
            rows,
            [
                ROW_GROUP_ROWS,
                ROW_GROUP_ROWS,
                ROW_GROUP_ROWS,
                400_000 - 3 * ROW_GROUP_ROWS
            ]
        );
    }
}
