//! Kept plans and statement templates ([`crate::plan_cache`]): running a statement's frame from
//! a kept plan of its shape, keeping a template, and (debug builds) checking one.

use datafusion::physical_plan::{SendableRecordBatchStream, execute_stream};

use super::*;

impl<'a> Plan<'a> {
    /// Runs a statement's finished `df` (its answer's value columns `columns`, after the
    /// group tags) and keeps its template; or, for a statement that ran from its template
    /// (debug builds), checks the template against `df` and answers as it did.
    pub(super) async fn collect_answer(
        &self,
        df: DataFrame,
        reuse: Reuse<'_>,
        templated: Templated<'_>,
        group_tags: &[String],
        columns: &[(String, DfExpr)],
    ) -> Result<Answer, ExecError> {
        let names: Vec<String> = std::iter::once(TIME.to_string())
            .chain(columns.iter().map(|(n, _)| n.clone()))
            .collect();
        let keep = match templated {
            Templated::Verify(v) => {
                return Ok(Answer::FromTemplate(v.check(&df, group_tags, &names)?));
            }
            Templated::Keep {
                cache,
                key,
                params,
                now,
            } => Some((cache, key, params, now)),
            Templated::No => None,
        };
        let (batches, shape) = stream_shaped(df, reuse).await?;
        if let (Some((cache, key, params, now)), Some(shape)) = (keep, shape) {
            let t = Template::new(&shape, group_tags.to_vec(), names);
            let ranges = vec![self.gap_range(now); t.gapfills()];
            cache.keep_template(key, t, &shape, &params, &ranges);
        }
        Ok(Answer::Stream(batches))
    }

    /// The filters on the scan, in the order they are applied: the time range's bounds, then
    /// the condition. Their literals are what a kept plan binds ([`crate::plan_cache`]).
    pub(super) fn scan_filters(
        &self,
        schema: &TableSchema,
        condition: Option<&Expr>,
    ) -> Result<Vec<DfExpr>, ExecError> {
        let time = |t: i64| lit(ScalarValue::TimestampNanosecond(Some(t), None));
        let mut filters = Vec::new();
        if self.range.min != i64::MIN {
            filters.push(ident(TIME).gt_eq(time(self.range.min)));
        }
        if self.range.max != i64::MAX {
            filters.push(ident(TIME).lt_eq(time(self.range.max)));
        }
        if let Some(c) = condition {
            filters.push(condition_to_df(c, schema)?);
        }
        Ok(filters)
    }

    /// GapFill's first and last time: the query's range, up to `now` when it has no end.
    pub(super) fn gap_range(&self, now: i64) -> (Option<i64>, i64) {
        let start = (self.range.min != i64::MIN).then_some(self.range.min);
        let end = if self.range.max == i64::MAX {
            now
        } else {
            self.range.max
        };
        (start, end)
    }

    /// The statement's template key, for one measurement read from `files` in a session of
    /// `partitions` partitions, and the values its scan `filters` hold (outermost filter first,
    /// as a shape takes them out). The key holds everything the logical plan is built from
    /// except those values and GapFill's range: the statement without its condition, the plan's
    /// derived interval and open ends, the schemas, and the filters with their literals masked.
    /// The time of a row of an aggregate without `GROUP BY time` is the range's start, a value
    /// outside the filters: it is in the key.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn template_key(
        &self,
        measurement: &str,
        files: &str,
        partitions: usize,
        schema: &TableSchema,
        all_sources: &TableSchema,
        filters: &[DfExpr],
    ) -> Result<(String, Vec<ScalarValue>), ExecError> {
        use std::fmt::Write;
        let SelectStatement {
            fields,
            into,
            sources,
            condition: _,
            dimensions,
            fill,
            order_desc,
            limit,
            offset,
            slimit,
            soffset,
            timezone,
        } = self.stmt;
        let mut key =
            format!("{partitions}\n{files}\n{measurement}\n{schema:?}\n{all_sources:?}\n");
        let _ = writeln!(
            key,
            "{fields:?} {into:?} {sources:?} {dimensions:?} {fill:?} {order_desc} {limit:?} \
             {offset:?} {slimit:?} {soffset:?} {timezone:?}"
        );
        let row_time = (self.projection != Projection::Raw && self.interval.is_none())
            .then_some(self.range.min);
        // Aggregates beside transformations are cut to the asked range by a literal of it.
        let asked = self
            .aggregates_beside_transforms()
            .then_some((self.asked.min, self.asked.max));
        let _ = writeln!(
            key,
            "{:?} {} {} {row_time:?} {asked:?}",
            self.interval,
            self.range.min == i64::MIN,
            self.range.max == i64::MAX
        );
        let mut params = Vec::new();
        for f in filters.iter().rev() {
            let masked = crate::plan_cache::mask(f, &mut params)?;
            let _ = writeln!(key, "{masked}");
        }
        Ok((key, params))
    }
}

/// What running a statement's plans may reuse: the kept plan of its shape, when its scan reads
/// files only (the cache and those files, [`crate::plan_cache`]), and the files' series indexes
/// ([`crate::series_index`]).
#[derive(Clone, Copy)]
pub(crate) struct Reuse<'a> {
    pub plans: Option<(&'a PlanCache, &'a str)>,
    pub indexes: &'a SeriesIndexes,
    /// The rows in memory the frame reads (a kept plan's buffered-rows scan is given them).
    pub buffered: Option<&'a std::sync::Arc<Vec<MemoryBatch>>>,
}

impl<'a> Reuse<'a> {
    /// What a frame read from `files` (files and at most one table of rows in memory,
    /// `buffered`: its plan may be kept) may reuse.
    pub(super) fn of(
        ex: &'a Executor,
        files: Option<&'a str>,
        buffered: Option<&'a std::sync::Arc<Vec<MemoryBatch>>>,
    ) -> Self {
        Self {
            plans: files.map(|f| (ex.plans(), f)),
            indexes: ex.indexes(),
            buffered,
        }
    }

    /// The same without kept plans.
    pub(super) fn unkept(self) -> Self {
        Self {
            plans: None,
            ..self
        }
    }
}

/// Runs `df`: from a kept plan of its shape where `reuse` allows, with its Parquet scans
/// reading only the rows their files' series indexes select. Its batches stream as the plan
/// produces them.
pub(super) async fn stream(
    df: DataFrame,
    reuse: Reuse<'_>,
) -> Result<SendableRecordBatchStream, ExecError> {
    Ok(stream_shaped(df, reuse).await?.0)
}

/// [`stream`], and the shape `df` was run as (when it may be kept).
pub(super) async fn stream_shaped(
    df: DataFrame,
    reuse: Reuse<'_>,
) -> Result<(SendableRecordBatchStream, Option<Shape>), ExecError> {
    let (state, logical) = df.into_parts();
    let task = std::sync::Arc::new(datafusion::execution::TaskContext::from(&state));
    let Some((cache, files)) = reuse.plans else {
        let plan = state.create_physical_plan(&logical).await?;
        let (run, _) = reuse.indexes.attach(plan, &task).await?;
        return Ok((execute_stream(run, task)?, None));
    };
    let shape = Shape::of(&logical, files, state.config().target_partitions())?;
    if let Some(batches) = run_kept(cache, &shape, reuse, &task).await? {
        return Ok((batches, Some(shape)));
    }
    let plan = state.create_physical_plan(&logical).await?;
    let (run, _) = reuse
        .indexes
        .attach(std::sync::Arc::clone(&plan), &task)
        .await?;
    let batches = execute_stream(run, task)?;
    cache.put(shape.clone(), plan);
    Ok((batches, Some(shape)))
}

/// What a statement's template did before its logical plan was built (see [`Plan::run`]).
pub(super) enum Templated<'a> {
    /// No template applies (no kept plans for this scan, or `EXPLAIN`).
    No,
    /// The first statement of its template: keep the template under `key` once planned, if
    /// `params` (its scan filters' values) and its range at `now` reproduce the planned shape.
    Keep {
        cache: &'a PlanCache,
        key: String,
        params: Vec<ScalarValue>,
        now: i64,
    },
    /// It ran from its template (debug builds): check that against the logical plan.
    Verify(Verify<'a>),
}

/// A statement's answer: its batches as the plan produces them, or (debug builds) the batches
/// its template gave, checked.
pub(super) enum Answer {
    Stream(SendableRecordBatchStream),
    FromTemplate(Vec<RecordBatch>),
}

/// A statement run from its template, checked in debug builds against its logical plan (see
/// [`Plan::run`]).
pub(super) struct Verify<'a> {
    /// The shape the template derived.
    pub(super) shape: Shape,
    /// What the scan read: files and partitions.
    pub(super) files: &'a str,
    pub(super) partitions: usize,
    pub(super) template: std::sync::Arc<Template>,
    /// The answer from the template.
    pub(super) batches: Vec<RecordBatch>,
}

impl Verify<'_> {
    /// The template's answer, if `df` (the statement's logical plan, built anyway) plans as the
    /// shape the template derived and its answer is shaped as the template shaped it.
    pub(super) fn check(
        self,
        df: &DataFrame,
        group_tags: &[String],
        names: &[String],
    ) -> Result<Vec<RecordBatch>, ExecError> {
        let shape = Shape::of(df.logical_plan(), self.files, self.partitions)?;
        let t = &self.template;
        if shape != self.shape || t.group_tags != group_tags || t.names != names {
            return Err(ExecError::Internal(format!(
                "a statement's template derived {:?} ({t:?}), planned {shape:?} ({group_tags:?}, {names:?})",
                self.shape
            )));
        }
        Ok(self.batches)
    }
}

/// Runs the kept plan of `shape` with its values bound, if there is one and the binding is
/// complete (see [`crate::plan_cache`]).
pub(super) async fn run_kept(
    cache: &PlanCache,
    shape: &Shape,
    reuse: Reuse<'_>,
    task: &std::sync::Arc<datafusion::execution::TaskContext>,
) -> Result<Option<SendableRecordBatchStream>, ExecError> {
    let indexes = reuse.indexes;
    let Some(kept) = cache.take(shape) else {
        return Ok(None);
    };
    // The kept plan stays without selections (they depend on the values bound into it): a
    // copy is bound and given them, each scan built once.
    if let Err(e) = indexes.load(kept.plan(), task).await {
        cache.put_back(kept, false);
        return Err(e.into());
    }
    let finish = |config: &_, source: &_| indexes.attached(config, source).map(|a| a.0);
    let bound = kept.bind(shape, &finish, reuse.buffered);
    cache.put_back(kept, matches!(bound, Ok(Some(_))));
    match bound? {
        Some(run) => Ok(Some(execute_stream(run, std::sync::Arc::clone(task))?)),
        None => Ok(None),
    }
}
