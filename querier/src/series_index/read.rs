//! Reading indexed local files in place, with the metadata the index holds: no footer read,
//! dictionary pages from memory.

use super::*;

/// Readers of local files for a scan whose files are indexed: the metadata (with the page
/// index) from the index, dictionary pages kept in memory ([`crate::dictionary_pages`]), and
/// other bytes read in place. A read from the page cache takes a few microseconds, less than
/// handing it to a blocking thread and waking the query's task again, as `object_store`'s
/// local store does for every read.
#[derive(Debug)]
pub(super) struct IndexedReaders {
    pub(super) files: HashMap<Path, Arc<FileIndex>>,
    pub(super) kept_pages: Arc<DictionaryPages>,
}

impl ParquetFileReaderFactory for IndexedReaders {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        _metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let location = &file.object_meta.location;
        let index = self.files.get(location).cloned().ok_or_else(|| {
            DataFusionError::Internal(format!("{location} is not among the scan's indexed files"))
        })?;
        Ok(Box::new(InPlaceReader {
            path: LocalFileSystem::new().path_to_filesystem(location)?,
            file: None,
            index,
            kept_pages: Arc::clone(&self.kept_pages),
            metrics: ParquetFileMetrics::new(partition_index, location.as_ref(), metrics),
        }))
    }
}

pub(super) struct InPlaceReader {
    pub(super) path: std::path::PathBuf,
    pub(super) file: Option<std::fs::File>,
    pub(super) index: Arc<FileIndex>,
    pub(super) kept_pages: Arc<DictionaryPages>,
    pub(super) metrics: ParquetFileMetrics,
}

impl InPlaceReader {
    /// The bytes of `range`: a dictionary page kept, or read (and a dictionary page kept).
    fn fetch(&mut self, range: Range<u64>) -> datafusion::parquet::errors::Result<Bytes> {
        let pages = Arc::clone(&self.index.dictionaries);
        if !pages.is_dictionary(&range) {
            return self.read(range);
        }
        if let Some(kept) = pages.get(range.start) {
            return Ok(kept);
        }
        let start = range.start;
        let bytes = self.read(range)?;
        self.kept_pages.keep(&pages, start, &bytes);
        Ok(bytes)
    }

    /// One positioned read per range (`pread`): no seek, and no second read to find the end
    /// that `read_to_end` would make.
    fn read(&mut self, range: Range<u64>) -> datafusion::parquet::errors::Result<Bytes> {
        use std::os::unix::fs::FileExt;
        let file = match &mut self.file {
            Some(f) => f,
            None => self
                .file
                .insert(std::fs::File::open(&self.path).map_err(io_error)?),
        };
        let len = usize::try_from(range.end.saturating_sub(range.start)).map_err(|_| {
            datafusion::parquet::errors::ParquetError::General("a range too long".into())
        })?;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, range.start).map_err(|e| {
            datafusion::parquet::errors::ParquetError::EOF(format!(
                "{}: {len} bytes at {}: {e}",
                self.path.display(),
                range.start,
            ))
        })?;
        self.metrics.bytes_scanned.add(len);
        Ok(Bytes::from(buf))
    }
}

fn io_error(e: std::io::Error) -> datafusion::parquet::errors::ParquetError {
    datafusion::parquet::errors::ParquetError::External(Box::new(e))
}

impl AsyncFileReader for InPlaceReader {
    fn get_bytes(
        &mut self,
        range: Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        futures::future::ready(self.fetch(range)).boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<Bytes>>> {
        let read = ranges.into_iter().map(|r| self.fetch(r)).collect();
        futures::future::ready(read).boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        futures::future::ready(Ok(Arc::clone(&self.index.metadata))).boxed()
    }
}
