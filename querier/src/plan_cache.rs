//! Physical plans kept per query shape, so that a light query is not planned again.
//!
//! Planning is about half of what a light query costs (`single-groupby-1-1-1`: 3.1 ms of
//! server CPU planned, 1.6 ms from a kept plan). Dashboards and the TSBS queries ask the same
//! question again and again with another host or time range; this module keeps the physical
//! plan of each *shape* and binds the new values into it.
//!
//! ```text
//!  logical plan ──▶ Shape::of: the plan's text with the literals of the filters on the scan
//!                   and GapFill's range taken out (the key), and those values (the params)
//!   ├─ miss: plan it; keep (plan, params)
//!   └─ hit:  take the kept plan out (a plan serves one query at a time), bind a copy:
//!            each Parquet scan's predicate: the kept param literals replaced by the new
//!            ones, the scan finished by the caller (the series indexes' row selections,
//!            so that each scan is built once) and standing in for the planned one
//!            ([`crate::rescan`]), without the dynamic filters pushed into it (they hold
//!            the last run's state, and the nodes above get new ones); GapFillExec: the new
//!            range; then reset_plan_states (TopK and aggregate dynamic filters hold
//!            state). The kept plan goes back as it was planned.
//! ```
//!
//! A kept plan is only used when the binding is checked complete: every scan's predicate
//! holds each param exactly as often as the filters did (nothing folded or rewritten by the
//! optimizer); a value that changes sits only under expressions that keep nothing computed
//! from their literals (an `IN` list, which keeps a set of them, is built again; a `CASE` or a
//! function call may hold values that stay the same, such as the `''` of the
//! `coalesce(tag, '')` a tag comparison becomes); no other node holds a value that changes;
//! and every node is of a kind whose expressions are checked. Anything else plans afresh. The
//! key includes the files the scan reads (persistence and compaction make new files, and file
//! names are never reused within a process) and the session's partitions. A scan of rows in
//! memory ([`crate::memory_rows::BufferScanExec`]) is kept without its batches: binding gives
//! it the new values and the running query's batches (it reports no statistics, so nothing
//! planned above it depends on the batches it was planned with).
//!
//! With plans kept, building the logical plan and its shape was about a fifth of a light
//! query. A statement's [`Template`] skips them: the first statement of a template (the
//! statement without its condition's values, plus everything else its logical plan is built
//! from: the plan's derived interval and open range ends, the schemas, the files and
//! partitions, its scan filters with their literals masked; `select::Plan::template_key`)
//! records the shape it was planned as, and a later statement of the same template takes its
//! values straight from its scan filters, as [`Shape::of`] would, and runs the kept plan. A
//! template is only kept when those derived values reproduce the planned shape exactly, and
//! debug builds build every such statement's logical plan anyway and check that it plans as
//! the shape the template derived (so every test exercises the check).
//!
//! What it must not do: keep data (a kept plan holds file names, never batches), or serve a
//! plan to two queries at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CastExpr, Column, DynamicFilterPhysicalExpr, InListExpr, IsNotNullExpr, IsNullExpr,
    Literal, NegativeExpr, NotExpr, TryCastExpr, in_list, lit,
};
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};
use datafusion::physical_plan::{DisplayFormatType, ExecutionPlan, Partitioning};

use crate::memory_rows::{BufferScanExec, MemoryBatch};
use crate::plan::gapfill::{GapFill, GapFillExec};
use crate::rescan::RescanExec;

/// Shapes kept at most; the cache is emptied when it would grow past this.
const CAPACITY: usize = 512;

/// A logical plan's shape: its key and the values taken out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    key: String,
    params: Vec<ScalarValue>,
    /// GapFill's `(start, end)`, in plan order.
    ranges: Vec<(Option<i64>, i64)>,
}

impl Shape {
    /// The shape of `plan`, reading `sources` (an identity of the data the scan reads), in a
    /// session of `partitions` partitions.
    pub fn of(plan: &LogicalPlan, sources: &str, partitions: usize) -> Result<Self> {
        let mut key = format!("{partitions}\n{sources}\n");
        let mut params = Vec::new();
        let mut ranges = Vec::new();
        plan.apply(|node| {
            match node {
                LogicalPlan::Filter(f) if on_scan(&f.input) => {
                    let masked = mask(&f.predicate, &mut params)?;
                    key.push_str(&format!("Filter: {masked}"));
                }
                LogicalPlan::Extension(ext) => {
                    if let Some(g) = ext.node.as_any().downcast_ref::<GapFill>() {
                        let mut p = g.params.clone();
                        ranges.push((p.start, p.end));
                        p.start = p.start.map(|_| 0);
                        p.end = 0;
                        key.push_str(&format!("GapFill: {p:?}"));
                    } else {
                        key.push_str(&format!("{} {:?}", node.display(), ext.node));
                    }
                }
                other => key.push_str(&other.display().to_string()),
            }
            functions_of(node, &mut key)?;
            key.push_str(&format!(" [{}]\n", node.inputs().len()));
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(Self {
            key,
            params,
            ranges,
        })
    }

    /// The shape a [`Template`] recorded, with a new statement's values: the literals of its
    /// scan filters (as [`mask`] takes them out, outermost filter first) and GapFill's ranges.
    pub fn of_template(
        template: &Template,
        params: Vec<ScalarValue>,
        ranges: Vec<(Option<i64>, i64)>,
    ) -> Self {
        Self {
            key: template.shape_key.clone(),
            params,
            ranges,
        }
    }
}

/// The functions `node` calls, as their implementations print themselves, appended to `key`:
/// InfluxQL's carry parameters that their names (all a plan's display shows) do not
/// (`integral`'s unit, `percentile`'s p, an indicator's periods), and two plans that differ
/// only there must not share a kept plan.
fn functions_of(node: &LogicalPlan, key: &mut String) -> Result<()> {
    use std::fmt::Write;
    node.apply_expressions(|e| {
        e.apply(|x| {
            let _ = match x {
                Expr::ScalarFunction(f) => write!(key, " {:?}", f.func.inner()),
                Expr::AggregateFunction(f) => write!(key, " {:?}", f.func.inner()),
                Expr::WindowFunction(w) => write!(key, " {:?}", w.fun),
                _ => Ok(()),
            };
            Ok(TreeNodeRecursion::Continue)
        })
    })?;
    Ok(())
}

/// `predicate` with each literal replaced by a placeholder of its position and type, the
/// literals appended to `params` (children before their parent, left to right): how a shape
/// takes the values out of a filter on its scan.
pub fn mask(predicate: &Expr, params: &mut Vec<ScalarValue>) -> Result<Expr> {
    Ok(predicate
        .clone()
        .transform_up(|e| match e {
            Expr::Literal(v, _) => {
                let id = format!("${}:{}", params.len(), v.data_type());
                params.push(v);
                Ok(Transformed::yes(Expr::Placeholder(Placeholder {
                    id,
                    field: None,
                })))
            }
            other => Ok(Transformed::no(other)),
        })?
        .data)
}

/// What a statement's template recorded the first time it was planned: the shape of its plan
/// (whose kept physical plan a later statement of the template binds its values into, without
/// building its logical plan again) and how that plan's batches become the result.
#[derive(Debug)]
pub struct Template {
    shape_key: String,
    /// The tags the result is grouped by (each batch's columns after `time`).
    pub group_tags: Vec<String>,
    /// The result's column names, `time` first.
    pub names: Vec<String>,
    /// GapFill nodes in the plan (each bound to the statement's range).
    gapfills: usize,
}

impl Template {
    /// The template of a statement planned as `shape`.
    pub fn new(shape: &Shape, group_tags: Vec<String>, names: Vec<String>) -> Self {
        Self {
            shape_key: shape.key.clone(),
            group_tags,
            names,
            gapfills: shape.ranges.len(),
        }
    }

    /// Value columns after the tags.
    pub fn ncols(&self) -> usize {
        self.names.len().saturating_sub(1)
    }

    /// GapFill nodes in the plan.
    pub fn gapfills(&self) -> usize {
        self.gapfills
    }
}

/// A filter directly on a scan (through other filters only): the optimizer pushes it into the
/// scan.
fn on_scan(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::TableScan(_) => true,
        LogicalPlan::Filter(f) => on_scan(&f.input),
        _ => false,
    }
}

/// A kept plan of a shape, taken out of the cache (a plan serves one query at a time) until
/// [`PlanCache::put_back`] returns it.
pub struct Kept {
    plan: Arc<dyn ExecutionPlan>,
    shape: Shape,
}

/// What becomes of each Parquet scan's configuration once a kept plan's values are bound into
/// it (the series indexes attach their row selections there, so that the scan is built once):
/// `None` leaves it as bound.
pub type FinishScan<'a> = &'a dyn Fn(&FileScanConfig, &ParquetSource) -> Option<FileScanConfig>;

impl Kept {
    /// The plan as it was planned (its scans without the values of any later query).
    pub fn plan(&self) -> &Arc<dyn ExecutionPlan> {
        &self.plan
    }

    /// A copy of the plan with `shape`'s values bound, each Parquet scan finished by `finish`
    /// and each scan of rows in memory reading `buffered`, its states reset; `None` when the
    /// binding cannot be shown complete.
    pub fn bind(
        &self,
        shape: &Shape,
        finish: FinishScan<'_>,
        buffered: Option<&Arc<Vec<MemoryBatch>>>,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        match bind(&self.plan, &self.shape, shape, finish, buffered)? {
            Some(plan) => Ok(Some(reset_plan_states(plan)?)),
            None => Ok(None),
        }
    }
}

/// Physical plans by shape (see the module's essay).
#[derive(Default)]
pub struct PlanCache {
    kept: Mutex<HashMap<String, Kept>>,
    templates: Mutex<HashMap<String, Arc<Template>>>,
    hits: AtomicU64,
    template_hits: AtomicU64,
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanCache").finish_non_exhaustive()
    }
}

impl PlanCache {
    /// The kept plan of `shape`, taken out of the cache until [`Self::put_back`] returns it.
    pub fn take(&self, shape: &Shape) -> Option<Kept> {
        self.kept.lock().ok()?.remove(&shape.key)
    }

    /// Keeps `plan`, planned for `shape`, unless its scans cannot be built again as planned
    /// (see [`unshared`]).
    pub fn put(&self, shape: Shape, plan: Arc<dyn ExecutionPlan>) {
        if !rebuilds_as_planned(&plan).unwrap_or(false) {
            return;
        }
        // A kept plan holds no data: its scans of rows in memory are kept without them.
        let Ok(plan) = plan.transform_up(|node| match node.downcast_ref::<BufferScanExec>() {
            Some(scan) => Ok(Transformed::yes(
                Arc::new(scan.without_batches()) as Arc<dyn ExecutionPlan>
            )),
            None => Ok(Transformed::no(node)),
        }) else {
            return;
        };
        self.keep(Kept {
            plan: plan.data,
            shape,
        });
    }

    /// Returns a plan [`Self::take`] took, counting it as a hit when `bound` (a query was given
    /// a copy of it).
    pub fn put_back(&self, kept: Kept, bound: bool) {
        if bound {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        self.keep(kept);
    }

    fn keep(&self, kept: Kept) {
        if let Ok(mut m) = self.kept.lock() {
            if m.len() >= CAPACITY && !m.contains_key(&kept.shape.key) {
                m.clear();
            }
            m.insert(kept.shape.key.clone(), kept);
        }
    }

    /// The template kept under `key` (see [`Template`]).
    pub fn template(&self, key: &str) -> Option<Arc<Template>> {
        self.templates.lock().ok()?.get(key).cloned()
    }

    /// Keeps `template` (of a statement planned as `planned`) under `key`, unless `params`
    /// and `ranges`, the values the caller derives from the statement without planning it,
    /// are not the planned shape's: a template is only kept when that shortcut reproduces the
    /// planned shape exactly.
    pub fn keep_template(
        &self,
        key: String,
        template: Template,
        planned: &Shape,
        params: &[ScalarValue],
        ranges: &[(Option<i64>, i64)],
    ) {
        if planned.params != params || planned.ranges != ranges {
            return;
        }
        if let Ok(mut m) = self.templates.lock() {
            if m.len() >= CAPACITY && !m.contains_key(&key) {
                m.clear();
            }
            m.insert(key, Arc::new(template));
        }
    }

    /// Counts a statement that ran from its template without a logical plan.
    pub fn template_hit(&self) {
        self.template_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Statements that ran from their template without a logical plan.
    pub fn template_hits(&self) -> u64 {
        self.template_hits.load(Ordering::Relaxed)
    }

    /// Queries that ran a kept plan.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Metrics the kept plans hold. A run of a kept plan counts into metrics of its own, so
    /// this does not grow with the runs.
    pub fn metrics_held(&self) -> usize {
        let Ok(kept) = self.kept.lock() else {
            return 0;
        };
        let mut held = 0;
        for k in kept.values() {
            let _ = k.plan.apply(|node| {
                held += node.metrics().map_or(0, |m| m.iter().count());
                Ok(TreeNodeRecursion::Continue)
            });
        }
        held
    }

    /// Shapes kept.
    pub fn len(&self) -> usize {
        self.kept.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A dictionary's value as itself: the optimizer casts tag literals to the column's type.
fn plain(v: &ScalarValue) -> &ScalarValue {
    match v {
        ScalarValue::Dictionary(_, inner) => plain(inner),
        other => other,
    }
}

/// Whether a predicate's node can have a changed literal below it: it keeps nothing computed
/// from its children, or (an `IN` list's set of values) it is built again when bound. Other
/// nodes (`CASE`, function calls) are fine where nothing below them changes.
pub(crate) fn stateless(e: &Arc<dyn PhysicalExpr>) -> bool {
    e.is::<Literal>()
        || e.is::<Column>()
        || e.is::<BinaryExpr>()
        || e.is::<NotExpr>()
        || e.is::<IsNullExpr>()
        || e.is::<IsNotNullExpr>()
        || e.is::<CastExpr>()
        || e.is::<TryCastExpr>()
        || e.is::<NegativeExpr>()
        || e.is::<InListExpr>()
}

/// Whether `e` has a literal of a value that changes (the first of one of `changed`'s pairs).
fn holds_any(e: &Arc<dyn PhysicalExpr>, changed: &[(&ScalarValue, &ScalarValue)]) -> Result<bool> {
    let mut found = false;
    e.apply(|x| {
        if let Some(l) = x.downcast_ref::<Literal>()
            && changed.iter().any(|(o, _)| *o == plain(l.value()))
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(found)
}

/// What changes from `old` to `new`: pairs of (old value, new value), or `None` when a value
/// would have to become two different ones.
fn changes(old: &Shape, new: &Shape) -> Option<Vec<(ScalarValue, ScalarValue)>> {
    if old.params.len() != new.params.len() || old.ranges.len() != new.ranges.len() {
        return None;
    }
    let mut map: Vec<(ScalarValue, ScalarValue)> = Vec::new();
    for (o, n) in old.params.iter().zip(&new.params) {
        match map.iter().find(|(k, _)| plain(k) == plain(o)) {
            Some((_, m)) if plain(m) != plain(n) => return None,
            Some(_) => {}
            None => map.push((o.clone(), n.clone())),
        }
    }
    Some(map)
}

/// `plan` (kept for `old`) with `new`'s values, or `None` when that cannot be shown complete.
fn bind(
    plan: &Arc<dyn ExecutionPlan>,
    old: &Shape,
    new: &Shape,
    finish: FinishScan<'_>,
    buffered: Option<&Arc<Vec<MemoryBatch>>>,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(map) = changes(old, new) else {
        return Ok(None);
    };
    let changed: Vec<(&ScalarValue, &ScalarValue)> = map
        .iter()
        .map(|(o, n)| (plain(o), plain(n)))
        .filter(|(o, n)| o != n)
        .collect();
    let mut ranges = old.ranges.iter().zip(&new.ranges);
    let mut ok = true;
    let bound = Arc::clone(plan).transform_down(|node| {
        if !ok {
            return Ok(Transformed::no(node));
        }
        let rebound = if let Some(scan) = node.downcast_ref::<DataSourceExec>() {
            bind_scan(scan, &old.params, &changed, finish)?
                .map(|bound| RescanExec::replacing(&node, bound))
        } else if let Some(scan) = node.downcast_ref::<BufferScanExec>() {
            bind_buffer_scan(scan, &old.params, &changed, buffered)?
                .map(|bound| Arc::new(bound) as Arc<dyn ExecutionPlan>)
        } else if let Some(g) = node.downcast_ref::<GapFillExec>() {
            match ranges.next() {
                Some((o, n)) if (g.params().start, g.params().end) == *o => {
                    Some(Arc::new(g.with_range(n.0, n.1)) as _)
                }
                _ => None,
            }
        } else {
            // Any other node must be of a kind whose expressions are known, and hold no value
            // that changes.
            let Some(exprs) = known_exprs(&node) else {
                ok = false;
                return Ok(Transformed::no(node));
            };
            for e in exprs {
                ok &= !holds_any(&e, &changed)?;
            }
            return Ok(Transformed::no(node));
        };
        match rebound {
            Some(plan) => Ok(Transformed::yes(plan)),
            None => {
                ok = false;
                Ok(Transformed::no(node))
            }
        }
    })?;
    if !ok || ranges.next().is_some() {
        return Ok(None);
    }
    Ok(Some(bound.data))
}

/// A Parquet scan with `changed` values bound into its predicate, or `None` when the binding
/// cannot be shown complete: every param (of `params`) exactly as often as the filters had
/// it, a value that changes only under expressions that keep nothing derived from their
/// literals, and none in the expressions the scan projects.
fn bind_scan(
    scan: &DataSourceExec,
    params: &[ScalarValue],
    changed: &[(&ScalarValue, &ScalarValue)],
    finish: FinishScan<'_>,
) -> Result<Option<DataSourceExec>> {
    let Some((config, source)) = scan.downcast_to_file_source::<ParquetSource>() else {
        return Ok(None);
    };
    for e in source.projection().iter().flat_map(|p| p.iter()) {
        if holds_any(&e.expr, changed)? {
            return Ok(None);
        }
    }
    let Some(fresh) = unshared(source)? else {
        return Ok(None);
    };
    let rebuilt = |source: ParquetSource| {
        let finished = finish(config, &source);
        let config: FileScanConfig = finished.unwrap_or_else(|| {
            FileScanConfigBuilder::from(config.clone())
                .with_source(Arc::new(source))
                .build()
        });
        scan.clone().with_data_source(Arc::new(config))
    };
    let Some(predicate) = source.filter() else {
        return Ok(params.is_empty().then(|| rebuilt(fresh)));
    };
    let schema = config.file_schema().as_ref();
    let Some(rebound) = bind_predicate(&predicate, params, changed, schema)? else {
        return Ok(None);
    };
    Ok(Some(rebuilt(fresh.with_predicate(rebound))))
}

/// A scan of rows in memory with `changed` values bound into its predicate and reading
/// `buffered`, or `None` when the binding cannot be shown complete (as for a Parquet scan's
/// predicate, [`bind_predicate`]) or the query reads no rows in memory.
fn bind_buffer_scan(
    scan: &BufferScanExec,
    params: &[ScalarValue],
    changed: &[(&ScalarValue, &ScalarValue)],
    buffered: Option<&Arc<Vec<MemoryBatch>>>,
) -> Result<Option<BufferScanExec>> {
    let Some(batches) = buffered else {
        return Ok(None);
    };
    let predicate = match scan.predicate() {
        None if params.is_empty() => None,
        None => return Ok(None),
        Some(p) => match bind_predicate(p, params, changed, scan.table_schema())? {
            Some(bound) => Some(bound),
            None => return Ok(None),
        },
    };
    Ok(Some(scan.bound(predicate, Arc::clone(batches))))
}

/// `predicate` with `changed` values bound, or `None` when the binding cannot be shown
/// complete: every param (of `params`) exactly as often as the filters had it, and a value
/// that changes only under expressions that keep nothing derived from their literals.
fn bind_predicate(
    predicate: &Arc<dyn PhysicalExpr>,
    params: &[ScalarValue],
    changed: &[(&ScalarValue, &ScalarValue)],
    schema: &datafusion::arrow::datatypes::Schema,
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let mut found: Vec<&ScalarValue> = Vec::new();
    let mut bindable = true;
    predicate.apply(|e| {
        if !stateless(e) && holds_any(e, changed)? {
            bindable = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        if let Some(l) = e.downcast_ref::<Literal>()
            && let Some(p) = params.iter().find(|p| plain(p) == plain(l.value()))
        {
            found.push(plain(p));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let want: Vec<&ScalarValue> = params.iter().map(plain).collect();
    let count = |of: &[&ScalarValue], x: &ScalarValue| of.iter().filter(|v| **v == x).count();
    if !bindable
        || want.len() != found.len()
        || want.iter().any(|x| count(&want, x) != count(&found, x))
    {
        return Ok(None);
    }
    let mut typed = true;
    let rebound = Arc::clone(predicate)
        .transform_up(|e| {
            // A dynamic filter (a TopK's or an aggregate's, pushed into the scan) holds what
            // the last run of the plan learnt: `reset_plan_states` gives the node above a new
            // one but leaves the scan holding the old, which would drop rows this run needs
            // (`ORDER BY time DESC LIMIT 2` answered one row from the second run on). It
            // only prunes, so the bound plan reads without it.
            if e.is::<DynamicFilterPhysicalExpr>() {
                return Ok(Transformed::yes(lit(true)));
            }
            // Its children are bound by now; its set of them is built again.
            if let Some(il) = e.downcast_ref::<InListExpr>() {
                let list = il.list().to_vec();
                let rebuilt = in_list(Arc::clone(il.expr()), list, &il.negated(), schema)?;
                return Ok(Transformed::yes(rebuilt));
            }
            let Some(l) = e.downcast_ref::<Literal>() else {
                return Ok(Transformed::no(e));
            };
            let Some((_, n)) = changed.iter().find(|(o, _)| *o == plain(l.value())) else {
                return Ok(Transformed::no(e));
            };
            let value = match l.value() {
                ScalarValue::Dictionary(k, _) => {
                    ScalarValue::Dictionary(k.clone(), Box::new((*n).clone()))
                }
                _ => (*n).clone(),
            };
            typed &= value.data_type() == l.value().data_type();
            Ok(Transformed::yes(
                Arc::new(Literal::new(value)) as Arc<dyn PhysicalExpr>
            ))
        })?
        .data;
    if !typed {
        return Ok(None);
    }
    Ok(Some(rebound))
}

/// `source` built again, with metrics of its own (`None` if its projection cannot be).
///
/// A source's clones share its metrics, and every run of a scan adds each file's metrics to
/// them: a kept plan run for every query would hold more each time (14 KB a query on the TSBS
/// queries, without bound). DataFusion has no way to give a source new metrics, so it is built
/// again from what can be read of it; [`rebuilds_as_planned`] checks, once per plan kept, that
/// this gives the same source.
fn unshared(source: &ParquetSource) -> Result<Option<ParquetSource>> {
    let options = source.table_parquet_options();
    let mut fresh = ParquetSource::new(source.table_schema().clone())
        .with_table_parquet_options(options.clone());
    if let Some(factory) = source.parquet_file_reader_factory() {
        fresh = fresh.with_parquet_file_reader_factory(Arc::clone(factory));
    }
    if let Some(hint) = options.global.metadata_size_hint {
        fresh = fresh.with_metadata_size_hint(hint);
    }
    if let Some(predicate) = source.filter() {
        fresh = fresh.with_predicate(predicate);
    }
    if let Some(projection) = source.projection() {
        let Some(projected) = fresh.try_pushdown_projection(projection)? else {
            return Ok(None);
        };
        let Some(projected) = projected.downcast_ref::<ParquetSource>() else {
            return Ok(None);
        };
        fresh = projected.clone();
    }
    Ok(Some(fresh))
}

/// Whether every Parquet scan of `plan` is built again by [`unshared`] as it was planned: the
/// same projection, and the same shown (predicate, pruning, sort pushdown markers).
fn rebuilds_as_planned(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    let shown = |s: &ParquetSource| {
        struct Extra<'a>(&'a ParquetSource);
        impl std::fmt::Display for Extra<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt_extra(DisplayFormatType::Verbose, f)
            }
        }
        Extra(s).to_string()
    };
    let mut same = true;
    plan.apply(|node| {
        if let Some(scan) = node.downcast_ref::<DataSourceExec>()
            && let Some((_, source)) = scan.downcast_to_file_source::<ParquetSource>()
        {
            same &= unshared(source)?.is_some_and(|fresh| {
                fresh.projection() == source.projection() && shown(&fresh) == shown(source)
            });
        }
        Ok(if same {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    })?;
    Ok(same)
}

/// A window node's expressions: each function's arguments, partitioning and ordering (its
/// evaluators are made anew by every execution, so a window keeps nothing between runs).
fn window_exprs(
    w: &[Arc<dyn datafusion::physical_plan::WindowExpr>],
) -> Vec<Arc<dyn PhysicalExpr>> {
    w.iter()
        .flat_map(|e| {
            let mut v = e.expressions();
            v.extend(e.partition_by().iter().cloned());
            v.extend(e.order_by().iter().map(|s| Arc::clone(&s.expr)));
            v
        })
        .collect()
}

/// The expressions of a node of a kind the cache knows (besides scans and gap filling), or
/// `None` for any other kind.
fn known_exprs(node: &Arc<dyn ExecutionPlan>) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
    let sort = |s: &[datafusion::physical_expr::PhysicalSortExpr]| {
        s.iter().map(|s| Arc::clone(&s.expr)).collect::<Vec<_>>()
    };
    Some(if let Some(f) = node.downcast_ref::<FilterExec>() {
        vec![Arc::clone(f.predicate())]
    } else if let Some(p) = node.downcast_ref::<ProjectionExec>() {
        p.expr().iter().map(|e| Arc::clone(&e.expr)).collect()
    } else if let Some(a) = node.downcast_ref::<AggregateExec>() {
        let mut v: Vec<Arc<dyn PhysicalExpr>> = a
            .group_expr()
            .expr()
            .iter()
            .map(|(e, _)| Arc::clone(e))
            .collect();
        for f in a.aggr_expr() {
            v.extend(f.expressions());
            v.extend(sort(f.order_bys()));
        }
        v.extend(a.filter_expr().iter().flatten().cloned());
        v
    } else if let Some(s) = node.downcast_ref::<SortExec>() {
        sort(s.expr())
    } else if let Some(s) = node.downcast_ref::<SortPreservingMergeExec>() {
        sort(s.expr())
    } else if let Some(r) = node.downcast_ref::<RepartitionExec>() {
        match r.partitioning() {
            Partitioning::Hash(exprs, _) => exprs.clone(),
            Partitioning::RoundRobinBatch(_) | Partitioning::UnknownPartitioning(_) => Vec::new(),
            _ => return None,
        }
    } else if node.is::<CoalescePartitionsExec>() || node.is::<UnionExec>() {
        Vec::new()
    } else if let Some(w) = node.downcast_ref::<BoundedWindowAggExec>() {
        window_exprs(w.window_expr())
    } else if let Some(w) = node.downcast_ref::<WindowAggExec>() {
        window_exprs(w.window_expr())
    } else {
        return None;
    })
}
