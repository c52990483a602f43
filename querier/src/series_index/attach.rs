//! Attaching indexes to a plan: each Parquet scan's files indexed (and their dictionary pages
//! kept), the scan rebuilt with a row selection per file and in-place readers.

use super::*;

impl SeriesIndexes {
    /// `plan` with a row selection on every file of its Parquet scans (loading the indexes it
    /// lacks), and what each scan selected. A scan any of whose files cannot be indexed is left
    /// as it is.
    pub async fn attach(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        task: &TaskContext,
    ) -> Result<(Arc<dyn ExecutionPlan>, Vec<ScanSelection>)> {
        self.load(&plan, task).await?;
        let mut selections = Vec::new();
        let plan = plan
            .transform_up(|node| {
                let Some(scan) = node.downcast_ref::<DataSourceExec>() else {
                    return Ok(Transformed::no(node));
                };
                let Some((config, source)) = scan.downcast_to_file_source::<ParquetSource>() else {
                    return Ok(Transformed::no(node));
                };
                Ok(match self.attached(config, source) {
                    Some((attached, selected)) => {
                        selections.push(selected);
                        let attached = scan.clone().with_data_source(Arc::new(attached));
                        Transformed::yes(RescanExec::replacing(&node, attached))
                    }
                    None => Transformed::no(node),
                })
            })?
            .data;
        Ok((plan, selections))
    }

    /// Loads the indexes `plan`'s Parquet scans with a predicate lack (the plan walk of
    /// [`Self::attached`] is synchronous).
    pub async fn load(&self, plan: &Arc<dyn ExecutionPlan>, task: &TaskContext) -> Result<()> {
        let mut wanted: Vec<(ObjectStoreUrl, PartitionedFile)> = Vec::new();
        plan.apply(|node| {
            if let Some(scan) = node.downcast_ref::<DataSourceExec>()
                && let Some((config, source)) = scan.downcast_to_file_source::<ParquetSource>()
                && source.filter().is_some()
            {
                for f in config.file_groups.iter().flat_map(|g| g.iter()) {
                    wanted.push((config.object_store_url.clone(), f.clone()));
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        for (url, file) in wanted {
            let location = &file.object_meta.location;
            if self.get(location).is_some() || self.skipped(location) {
                continue;
            }
            let store = task.runtime_env().object_store(&url)?;
            self.load_file(store, file).await;
        }
        Ok(())
    }

    /// Loads and keeps `file`'s index (and its dictionary pages); a file that cannot be
    /// indexed is remembered as skipped. `None` when it is not kept.
    async fn load_file(
        &self,
        store: Arc<dyn ObjectStore>,
        file: PartitionedFile,
    ) -> Option<Arc<FileIndex>> {
        let location = file.object_meta.location.clone();
        match FileIndex::load(Arc::clone(&store), file).await {
            Ok(index) => {
                self.preload_dictionaries(&store, &location, &index).await;
                let index = Arc::new(index);
                self.put(location.clone(), Arc::clone(&index));
                self.get(&location)
            }
            Err(e) => {
                tracing::debug!(%location, error = %e, "no series index");
                self.skip(location);
                None
            }
        }
    }

    /// The index of the local file at `path` (absolute), loaded if no query has yet; `None`
    /// when it cannot be indexed or is too large to keep.
    pub async fn local_file(&self, path: &std::path::Path) -> Option<Arc<FileIndex>> {
        let location = Path::from_absolute_path(path).ok()?;
        if let Some(index) = self.get(&location) {
            return Some(index);
        }
        if self.skipped(&location) {
            return None;
        }
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let meta = match datafusion::object_store::ObjectStoreExt::head(&store, &location).await {
            Ok(meta) => meta,
            Err(e) => {
                tracing::debug!(%location, error = %e, "no series index");
                return None;
            }
        };
        self.load_file(store, PartitionedFile::from(meta)).await
    }

    /// Reads and keeps all of a newly indexed file's dictionary pages, if they fit in what is
    /// left of the budget (never letting other files' pages go for them). Each query of a row
    /// group it has not read before would read that row group's dictionary pages (80 KB per
    /// float column of TSBS's data): in a run of light queries of random hosts, most of them
    /// did. Read here in one pass, at the file's first query, which loads its index anyway.
    /// A failed read only leaves the pages to be read as scans ask for them.
    pub(super) async fn preload_dictionaries(
        &self,
        store: &Arc<dyn ObjectStore>,
        location: &Path,
        index: &FileIndex,
    ) {
        let pages = &index.dictionaries;
        let ranges = pages.ranges();
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        if usize::try_from(total).map_or(true, |t| t > self.kept_pages.room()) {
            return;
        }
        match store.get_ranges(location, &ranges).await {
            Ok(read) => {
                for (range, bytes) in ranges.iter().zip(read) {
                    self.kept_pages.keep(pages, range.start, &bytes);
                }
            }
            Err(e) => tracing::debug!(%location, error = %e, "dictionary pages not preloaded"),
        }
    }

    /// A Parquet scan's `config` (of `source`) with a row selection on every file, and what
    /// it selected; `None` when the scan has no predicate or a file's index is not loaded
    /// ([`Self::load`]).
    pub fn attached(
        &self,
        config: &FileScanConfig,
        source: &ParquetSource,
    ) -> Option<(FileScanConfig, ScanSelection)> {
        let predicate = source.filter()?;
        let table = config.file_schema();
        // Each file's index and selection, once (a file split into byte ranges is in several
        // groups).
        let mut files: Vec<(Arc<FileIndex>, Selected)> = Vec::new();
        let mut locations: Vec<&Path> = Vec::new();
        for f in config.file_groups.iter().flat_map(|g| g.iter()) {
            let location = &f.object_meta.location;
            if !locations.contains(&location) {
                let index = self.get(location)?;
                let selected = index.select(&predicate, table.as_ref());
                files.push((index, selected));
                locations.push(location);
            }
        }
        // How each conjunct was used: the same in every file, else not at all.
        let uses = files.iter().map(|(_, s)| s.uses.clone()).reduce(|a, b| {
            a.into_iter()
                .zip(b)
                .map(|(a, b)| match (a, b) {
                    (a, b) if a == b => a,
                    (Use::Pages | Use::Within, Use::Pages | Use::Within) => Use::Pages,
                    _ => Use::None,
                })
                .collect()
        })?;
        let mut shown = ScanSelection {
            files: files.len(),
            ..Default::default()
        };
        for (index, selected) in &files {
            shown.runs += index.runs();
            shown.runs_selected += selected.runs;
            shown.rows += index.rows();
            shown.rows_selected += selected.selection.row_count();
        }
        // DataFusion's pruning is left on for a conjunct the index does not use, unless the
        // selection is already so small that it could skip a page or two at most.
        shown.pruning = uses.contains(&Use::None) && shown.rows_selected > FEW_ROWS;
        let of = |location: &Path| {
            let at = locations.iter().position(|l| *l == location)?;
            Some(&files[at])
        };
        let mut groups = config.file_groups.clone();
        for group in &mut groups {
            for i in 0..group.len() {
                let (index, selected) = of(&group[i].object_meta.location)?;
                let file = &mut group[i];
                file.extensions
                    .insert(ParquetRowSelection::new(selected.selection.clone()));
                file.arrow_schema = Some(Arc::clone(&index.schema));
                if !shown.pruning {
                    // The selection holds everything the file's statistics could tell (files
                    // were chosen by their time span).
                    file.statistics = None;
                }
            }
        }
        let mut source = source.clone();
        if !shown.pruning {
            let mut options = source.table_parquet_options().clone();
            options.global.pruning = false;
            options.global.enable_page_index = false;
            // The row filter's cache of the columns it shares with the projection (time) widens
            // their reads to whole batches (8192 rows) around the selection: for a few selected
            // pages, decoding them twice costs less.
            options.global.max_predicate_cache_size = Some(0);
            source = source.with_table_parquet_options(options);
        }
        // Conjuncts every file's selection satisfies exactly need not be evaluated on its rows.
        let rest: Vec<Arc<dyn PhysicalExpr>> = split_conjunction(&predicate)
            .into_iter()
            .zip(&uses)
            .filter(|(_, u)| !matches!(u, Use::Runs | Use::Within))
            .map(|(c, _)| Arc::clone(c))
            .collect();
        if rest.len() < uses.len() {
            let rest = rest
                .into_iter()
                .reduce(|a, b| Arc::new(BinaryExpr::new(a, Operator::And, b)) as _)
                .unwrap_or_else(|| Arc::new(Literal::new(ScalarValue::Boolean(Some(true)))));
            source = source.with_predicate(rest);
        }
        if config.object_store_url == ObjectStoreUrl::local_filesystem() {
            let indexes = locations
                .iter()
                .zip(&files)
                .map(|(l, (index, _))| ((*l).clone(), Arc::clone(index)))
                .collect();
            source = source.with_parquet_file_reader_factory(Arc::new(IndexedReaders {
                files: indexes,
                kept_pages: Arc::clone(&self.kept_pages),
            }));
        }
        let config = FileScanConfigBuilder::from(config.clone())
            .with_file_groups(groups)
            .with_source(Arc::new(source))
            .build();
        self.attached
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some((config, shown))
    }
}
