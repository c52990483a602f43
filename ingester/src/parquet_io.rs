//! Parquet files through `object_store`: how a sorted, deduplicated batch of one measurement
//! becomes a file, and how files are read back (compaction; later the querier).
//!
//! Layout inside a file: tag columns (dictionary-encoded), field columns, `time`; rows sorted
//! by series (the tag with the most values first) then time; page-level statistics and row
//! groups of [`ROW_GROUP_ROWS`] rows, so a reader can skip pages and row groups by tag and time. The
//! Arrow schema (with the column kinds) is embedded, so pyarrow or DataFusion read the files
//! with nothing from Fletch.

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

use crate::error::StorageError;
use crate::schema::{MEASUREMENT_KEY, TIME};

/// Rows per row group: small enough that time and tag statistics prune, large enough to
/// compress well.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Rows per data page (at most; the writer checks every 1024 rows). Files are sorted by series
/// then time, so a page holds about one series' stretch of time, and the page index prunes by
/// time within a series: a query of one host's last hour, or of each series' last values,
/// decodes a few pages per series instead of the 20k-row pages that span several hosts' whole
/// range (`single-groupby-1-1-1` 4.6 → 3.4 ms, `cpu-max-all-1` 9.6 → 6.3 ms; files 6% larger).
pub const PAGE_ROWS: usize = 1024;

/// Rows are sorted by series ([`crate::batch::sort_key`]) then time, but the files do not
/// declare it (`sorting_columns`): DataFusion would then plan order-preserving aggregations for
/// `GROUP BY <first tag>`, which measured slower than hashing (`double-groupby-all` 32 ms →
/// 54 ms).
///
/// Float fields are written uncompressed, every other column with ZSTD (see
/// [`column_compression`]).
fn writer_properties(measurement: &str, schema: &Schema) -> WriterProperties {
    let mut builder = WriterProperties::builder();
    for field in schema.fields() {
        if let Some(codec) = column_compression(field.data_type()) {
            builder =
                builder.set_column_compression(ColumnPath::from(field.name().as_str()), codec);
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

/// Writes `batch` (already sorted and deduplicated) to `path`; returns the file's size.
pub async fn write_file(
    store: &Arc<dyn ObjectStore>,
    path: &str,
    batch: &RecordBatch,
    measurement: &str,
) -> Result<u64, StorageError> {
    let mut w = FileWriter::create(store, path, batch.schema(), measurement)?;
    w.write(batch).await?;
    w.close().await
}

/// A file written batch by batch (compaction's output): row groups go out as they fill, so
/// memory holds about one row group however long the file gets.
pub struct FileWriter {
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
    writer: AsyncArrowWriter<BufWriter>,
    rows: usize,
}

impl FileWriter {
    pub fn create(
        store: &Arc<dyn ObjectStore>,
        path: &str,
        schema: SchemaRef,
        measurement: &str,
    ) -> Result<Self, StorageError> {
        let location = ObjectPath::from(path);
        let sink = BufWriter::new(store.clone(), location.clone());
        let writer = AsyncArrowWriter::try_new(
            sink,
            schema.clone(),
            Some(writer_properties(measurement, &schema)),
        )?;
        Ok(Self {
            store: store.clone(),
            location,
            writer,
            rows: 0,
        })
    }

    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), StorageError> {
        self.writer.write(batch).await?;
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Finishes the file; returns its size.
    pub async fn close(self) -> Result<u64, StorageError> {
        self.writer.close().await?;
        Ok(self.store.head(&self.location).await?.size)
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
