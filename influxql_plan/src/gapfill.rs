//! `GROUP BY time(...) fill(...)`: one row per time bucket of every series, as a DataFusion
//! plan node.
//!
//! The aggregate below emits only the buckets that hold points. [`GapFill`] (logical) and
//! [`GapFillExec`] (physical) add the missing ones between the query's bounds and fill their
//! values as `fill(null|previous|linear|<number>)` asks (`fill(none)` plans no node at all).
//!
//! ```text
//!   Aggregate(influx_time_bucket(time), tags) ─▶ [sorted by series, time] ─▶ GapFillExec ─▶ rows per bucket
//! ```
//!
//! Both nodes carry plain parameters ([`GapFillParams`]), so [`super::codec`] can ship them
//! to another node.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, Float64Array, Int64Array, PrimitiveArray,
    RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::{cast, partition, take};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DFSchemaRef, DataFusionError, Result, exec_err, plan_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::{
    EquivalenceProperties, LexRequirement, OrderingRequirements, PhysicalExpr, PhysicalSortExpr,
    PhysicalSortRequirement,
};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::time_bucket::bucket_start_or_min;

/// What a missing bucket's values become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Serialize, Deserialize)]
pub enum FillValue {
    /// `fill(null)`, the default.
    Null,
    /// `fill(previous)`: the series' last non-null value of the column.
    Previous,
    /// `fill(linear)`: on the line between the neighbouring non-null values.
    Linear,
    /// `fill(<integer>)`.
    Integer(i64),
    /// `fill(<float>)`, kept as its bits so the node stays `Eq` and `Hash`.
    Float(u64),
}

impl FillValue {
    pub fn float(f: f64) -> Self {
        Self::Float(f.to_bits())
    }
}

/// The parameters of a gap fill; everything the node needs besides its input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Serialize, Deserialize)]
pub struct GapFillParams {
    /// The bucket start column (`Int64`, nanoseconds).
    pub time: String,
    /// The columns that tell series apart (the input is sorted by them, then by time).
    pub series: Vec<String>,
    /// The value columns to fill; any other column is carried from the bucket's row (null
    /// in a filled bucket).
    pub values: Vec<String>,
    pub interval: i64,
    /// Where buckets start, modulo `interval`.
    pub offset: i64,
    /// The first bucket of every series; `None` starts each series at its first bucket.
    pub start: Option<i64>,
    /// The last time a bucket may start at (inclusive).
    pub end: i64,
    pub fill: FillValue,
    /// Refuse a series longer than this many buckets (1.x's `max-select-buckets`).
    pub max_buckets: i64,
}

impl GapFillParams {
    fn output_schema(&self, input: &Schema) -> Schema {
        Schema::new(
            input
                .fields()
                .iter()
                .map(|f| {
                    if self.series.contains(f.name()) || *f.name() == self.time {
                        Arc::clone(f)
                    } else {
                        // Values and carried columns are null where a bucket is missing.
                        Arc::new(Field::new(f.name(), f.data_type().clone(), true))
                    }
                })
                .collect::<Vec<_>>(),
        )
    }

    fn bucket(&self, t: i64) -> i64 {
        bucket_start_or_min(t, self.interval, self.offset)
    }
}

/// The logical node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapFill {
    pub input: LogicalPlan,
    pub params: GapFillParams,
    schema: DFSchemaRef,
}

impl GapFill {
    pub fn try_new(input: LogicalPlan, params: GapFillParams) -> Result<Self> {
        let in_schema = input.schema();
        for name in std::iter::once(&params.time)
            .chain(&params.series)
            .chain(&params.values)
        {
            if in_schema.field_with_unqualified_name(name).is_err() {
                return plan_err!("GapFill: no column {name} in its input");
            }
        }
        if params.interval <= 0 {
            return plan_err!("GapFill: the interval must be positive");
        }
        let arrow = params.output_schema(in_schema.as_arrow());
        let qualifiers = (0..in_schema.fields().len())
            .map(|i| in_schema.qualified_field(i).0.cloned())
            .collect();
        let schema = DFSchema::from_field_specific_qualified_schema(qualifiers, &Arc::new(arrow))?;
        Ok(Self {
            input,
            params,
            schema: Arc::new(schema),
        })
    }
}

/// Hashes the parameters only: the optimizer hashes plan nodes as it rewrites them, and hashing
/// the input would walk the whole plan below each time. Equal nodes have equal parameters, so
/// their hashes agree.
impl std::hash::Hash for GapFill {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.params.hash(state);
    }
}

// The schema follows from the input and the parameters.
impl PartialOrd for GapFill {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        match self.input.partial_cmp(&other.input) {
            Some(std::cmp::Ordering::Equal) => self.params.partial_cmp(&other.params),
            o => o,
        }
    }
}

impl UserDefinedLogicalNodeCore for GapFill {
    fn name(&self) -> &str {
        "GapFill"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt_params(&self.params, f)
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        match inputs.pop() {
            Some(input) if inputs.is_empty() => Self::try_new(input, self.params.clone()),
            _ => plan_err!("GapFill takes one input"),
        }
    }
}

fn fmt_params(p: &GapFillParams, f: &mut fmt::Formatter) -> fmt::Result {
    write!(
        f,
        "GapFill: time={}, series=[{}], interval={}ns, offset={}ns, start={}, end={}, fill={:?}",
        p.time,
        p.series.join(", "),
        p.interval,
        p.offset,
        p.start.map_or("first point".to_string(), |s| s.to_string()),
        p.end,
        p.fill
    )
}

/// The physical node: gathers its (small, aggregated) input into one partition sorted by
/// series and time, and emits every bucket of every series.
#[derive(Debug)]
pub struct GapFillExec {
    input: Arc<dyn ExecutionPlan>,
    params: GapFillParams,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl GapFillExec {
    pub fn try_new(input: Arc<dyn ExecutionPlan>, params: GapFillParams) -> Result<Self> {
        let in_schema = input.schema();
        for name in std::iter::once(&params.time)
            .chain(&params.series)
            .chain(&params.values)
        {
            in_schema.index_of(name)?;
        }
        let schema = Arc::new(params.output_schema(&in_schema));
        // Rows come out in the order they are required to come in (series, then time): a sort
        // by them above is not needed.
        let ordering = sort_order(&params, &schema)?
            .into_iter()
            .map(PhysicalSortExpr::from)
            .collect::<Vec<_>>();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new_with_orderings(Arc::clone(&schema), [ordering]),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Ok(Self {
            input,
            params,
            schema,
            properties,
        })
    }

    pub fn params(&self) -> &GapFillParams {
        &self.params
    }

    /// This node with other bounds of its range (a kept plan's new query): the output's
    /// schema and ordering do not depend on them, so its properties are kept.
    pub fn with_range(&self, start: Option<i64>, end: i64) -> Self {
        let mut params = self.params.clone();
        (params.start, params.end) = (start, end);
        self.keeping(Arc::clone(&self.input), params)
    }

    /// This node over `input` with `params`, with its schema and properties (for an input and
    /// parameters that do not change them).
    fn keeping(&self, input: Arc<dyn ExecutionPlan>, params: GapFillParams) -> Self {
        Self {
            input,
            params,
            schema: Arc::clone(&self.schema),
            properties: Arc::clone(&self.properties),
        }
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    /// Series columns ascending (nulls first), then time ascending.
    fn ordering(&self) -> Result<LexRequirement> {
        LexRequirement::new(sort_order(&self.params, &self.input.schema())?)
            .ok_or_else(|| DataFusionError::Internal("GapFill: empty ordering".into()))
    }
}

/// Series columns ascending (nulls first), then time ascending, in `schema`: the order of
/// GapFill's input and of its output.
fn sort_order(params: &GapFillParams, schema: &Schema) -> Result<Vec<PhysicalSortRequirement>> {
    params
        .series
        .iter()
        .chain([&params.time])
        .map(|name| {
            let expr: Arc<dyn PhysicalExpr> = Arc::new(
                datafusion::physical_expr::expressions::Column::new_with_schema(name, schema)?,
            );
            Ok(PhysicalSortRequirement::new(
                expr,
                Some(datafusion::arrow::compute::SortOptions {
                    descending: false,
                    nulls_first: true,
                }),
            ))
        })
        .collect()
}

impl DisplayAs for GapFillExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "GapFillExec: ")?;
        fmt_params(&self.params, f)
    }
}

impl ExecutionPlan for GapFillExec {
    fn name(&self) -> &str {
        "GapFillExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        vec![self.ordering().ok().map(OrderingRequirements::new)]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = match children.pop() {
            Some(input) if children.is_empty() => input,
            _ => return exec_err!("GapFillExec takes one input"),
        };
        Ok(Arc::new(match options.children_properties {
            // The input's properties are the ones this node was built on.
            ChildrenPropertiesMode::Keep => self.keeping(input, self.params.clone()),
            ChildrenPropertiesMode::Recompute => Self::try_new(input, self.params.clone())?,
        }))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return exec_err!("GapFillExec has one partition, not {partition}");
        }
        let input = self.input.execute(0, context)?;
        let in_schema = self.input.schema();
        let schema = Arc::clone(&self.schema);
        let params = self.params.clone();
        let out_schema = Arc::clone(&schema);
        let fut = async move {
            let batches: Vec<RecordBatch> = input.try_collect().await?;
            let batch = datafusion::arrow::compute::concat_batches(&in_schema, &batches)?;
            fill_batch(&batch, &params, &out_schema)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::once(fut),
        )))
    }
}

/// Fills one batch sorted by series and time.
pub fn fill_batch(batch: &RecordBatch, p: &GapFillParams, out: &SchemaRef) -> Result<RecordBatch> {
    let schema = batch.schema();
    let time_idx = schema.index_of(&p.time)?;
    let times = cast(batch.column(time_idx), &DataType::Int64)?;
    let times = times.as_primitive::<Int64Type>();
    let series_cols: Vec<ArrayRef> = p
        .series
        .iter()
        .map(|s| Ok(Arc::clone(batch.column(schema.index_of(s)?))))
        .collect::<Result<_>>()?;
    let ranges = if batch.num_rows() == 0 {
        Vec::new()
    } else if series_cols.is_empty() {
        vec![0..batch.num_rows()]
    } else {
        partition(&series_cols)?.ranges()
    };

    // Per output row: the bucket, the series' first input row, and the input row holding the
    // bucket (if any).
    let mut out_times: Vec<i64> = Vec::new();
    let mut series_row: Vec<u32> = Vec::new();
    let mut present: Vec<Option<u32>> = Vec::new();
    let mut series_bounds: Vec<std::ops::Range<usize>> = Vec::new();
    for range in ranges {
        let first_data = p.bucket(times.value(range.start));
        let start = p.start.map_or(first_data, |s| p.bucket(s));
        let span = p.end.saturating_sub(start);
        let count = if span < 0 { 0 } else { span / p.interval + 1 };
        if count > p.max_buckets {
            return Err(DataFusionError::Execution(format!(
                "max-select-buckets limit exceeded: ({count}/{})",
                p.max_buckets
            )));
        }
        let begin = out_times.len();
        let mut row = range.start;
        let mut t = start;
        for _ in 0..count {
            // Skip input rows before this bucket (outside the range).
            while row < range.end && times.value(row) < t {
                row += 1;
            }
            // Every input row of this bucket (distinct() gives several), or one empty row.
            if row < range.end && times.value(row) == t {
                while row < range.end && times.value(row) == t {
                    out_times.push(t);
                    series_row.push(range.start as u32);
                    present.push(Some(row as u32));
                    row += 1;
                }
            } else {
                out_times.push(t);
                series_row.push(range.start as u32);
                present.push(None);
            }
            t = match t.checked_add(p.interval) {
                Some(n) => n,
                None => break,
            };
        }
        series_bounds.push(begin..out_times.len());
    }

    let series_idx = UInt32Array::from(series_row);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let col = batch.column(i);
        let out_type = out.field(i).data_type();
        let array = if i == time_idx {
            cast(
                &(Arc::new(Int64Array::from(out_times.clone())) as ArrayRef),
                field.data_type(),
            )?
        } else if p.series.contains(field.name()) {
            take(col.as_ref(), &series_idx, None)?
        } else if !p.values.contains(field.name()) {
            // Carried along from the bucket's row; null in a filled bucket.
            let idx: UInt32Array = present.iter().copied().collect();
            take(col.as_ref(), &idx, None)?
        } else {
            let col = cast(col, out_type)?;
            fill_column(&col, &present, &series_bounds, &out_times, p.fill)?
        };
        columns.push(array);
    }
    Ok(RecordBatch::try_new(Arc::clone(out), columns)?)
}

fn fill_column(
    col: &ArrayRef,
    present: &[Option<u32>],
    series: &[std::ops::Range<usize>],
    times: &[i64],
    fill: FillValue,
) -> Result<ArrayRef> {
    let present_rows = || -> Result<ArrayRef> {
        let idx: UInt32Array = present.iter().copied().collect();
        Ok(take(col.as_ref(), &idx, None)?)
    };
    // A bucket whose row has no value of this column (the series has points of other fields
    // there) is missing for it, as 1.x fills each field's buckets on their own.
    let present: Vec<Option<u32>> = present
        .iter()
        .map(|p| p.filter(|r| col.is_valid(*r as usize)))
        .collect();
    let present = present.as_slice();
    match fill {
        FillValue::Null => present_rows(),
        FillValue::Linear => linear(&present_rows()?, series, times),
        FillValue::Integer(n) => constant(&present_rows()?, present, n as f64, Some(n)),
        FillValue::Float(bits) => constant(&present_rows()?, present, f64::from_bits(bits), None),
        FillValue::Previous => {
            let mut idx: Vec<Option<u32>> = Vec::with_capacity(present.len());
            for range in series {
                let mut last: Option<u32> = None;
                for row in present[range.clone()].iter() {
                    match row {
                        Some(r) => {
                            last = Some(*r);
                            idx.push(Some(*r));
                        }
                        None => idx.push(last),
                    }
                }
            }
            let idx: UInt32Array = idx.into_iter().collect();
            Ok(take(col.as_ref(), &idx, None)?)
        }
    }
}

/// Missing buckets get the number in the column's type, as 1.x casts it (`fill(1.5)` on a
/// count gives 1); a column that cannot hold a number (strings, booleans) keeps nulls.
fn constant(
    taken: &ArrayRef,
    present: &[Option<u32>],
    f: f64,
    int: Option<i64>,
) -> Result<ArrayRef> {
    Ok(match taken.data_type() {
        DataType::Float64 => Arc::new(fill_missing(
            taken.as_primitive::<Float64Type>(),
            present,
            f,
        )),
        DataType::Int64 => Arc::new(fill_missing(
            taken.as_primitive::<Int64Type>(),
            present,
            int.unwrap_or(f as i64),
        )),
        DataType::UInt64 => constant(&cast(taken, &DataType::Int64)?, present, f, int)?,
        _ => Arc::clone(taken),
    })
}

/// `a` with `v` in the rows of missing buckets.
fn fill_missing<T: ArrowPrimitiveType>(
    a: &PrimitiveArray<T>,
    present: &[Option<u32>],
    v: T::Native,
) -> PrimitiveArray<T> {
    (0..a.len())
        .map(|i| match present[i] {
            Some(_) => a.is_valid(i).then(|| a.value(i)),
            None => Some(v),
        })
        .collect()
}

/// 1.x's linear interpolation between the neighbouring non-null values of each series:
/// `slope * (t - t0) + v0`, truncated for integers.
fn linear(taken: &ArrayRef, series: &[std::ops::Range<usize>], times: &[i64]) -> Result<ArrayRef> {
    let integer = matches!(taken.data_type(), DataType::Int64 | DataType::UInt64);
    if !integer && taken.data_type() != &DataType::Float64 {
        return Ok(Arc::clone(taken));
    }
    let values = cast(taken, &DataType::Float64)?;
    let values = values.as_primitive::<Float64Type>();
    let mut out: Vec<Option<f64>> = (0..values.len())
        .map(|i| values.is_valid(i).then(|| values.value(i)))
        .collect();
    for range in series {
        let known: Vec<usize> = range.clone().filter(|&i| values.is_valid(i)).collect();
        for w in known.windows(2) {
            let (i0, i1) = (w[0], w[1]);
            let (t0, t1) = (times[i0], times[i1]);
            let (v0, v1) = (values.value(i0), values.value(i1));
            for (i, slot) in out.iter_mut().enumerate().take(i1).skip(i0 + 1) {
                let x = (times[i] - t0) as f64;
                *slot = Some(if integer {
                    let m = (v1 - v0) / (t1 - t0) as f64;
                    (m * x + v0).trunc()
                } else {
                    (v1 - v0) / (t1 - t0) as f64 * x + v0
                });
            }
        }
    }
    let floats: ArrayRef = Arc::new(Float64Array::from(out));
    Ok(cast(&floats, taken.data_type())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;

    fn input() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("__time", DataType::Int64, false),
            Field::new("__tag0", DataType::Utf8, true),
            Field::new("__c0", DataType::Int64, true),
            Field::new("__c1", DataType::Float64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![10, 40, 20])),
                Arc::new(StringArray::from(vec!["a", "a", "b"])),
                Arc::new(Int64Array::from(vec![Some(1), Some(4), Some(7)])),
                Arc::new(Float64Array::from(vec![Some(1.0), Some(2.5), None])),
            ],
        )
        .unwrap()
    }

    fn params(fill: FillValue) -> GapFillParams {
        GapFillParams {
            time: "__time".into(),
            series: vec!["__tag0".into()],
            values: vec!["__c0".into(), "__c1".into()],
            interval: 10,
            offset: 0,
            start: Some(10),
            end: 45,
            fill,
            max_buckets: 100,
        }
    }

    fn run(fill: FillValue) -> RecordBatch {
        let b = input();
        let p = params(fill);
        let out = Arc::new(p.output_schema(&b.schema()));
        fill_batch(&b, &p, &out).unwrap()
    }

    fn ints(b: &RecordBatch, c: usize) -> Vec<Option<i64>> {
        b.column(c).as_primitive::<Int64Type>().iter().collect()
    }

    fn floats(b: &RecordBatch, c: usize) -> Vec<Option<f64>> {
        b.column(c).as_primitive::<Float64Type>().iter().collect()
    }

    #[test]
    fn every_bucket_of_every_series() {
        let b = run(FillValue::Null);
        assert_eq!(ints(&b, 0), [10, 20, 30, 40, 10, 20, 30, 40].map(Some));
        let tags: Vec<_> = b.column(1).as_string::<i32>().iter().flatten().collect();
        assert_eq!(tags, ["a", "a", "a", "a", "b", "b", "b", "b"]);
        assert_eq!(
            ints(&b, 2),
            [Some(1), None, None, Some(4), None, Some(7), None, None]
        );
    }

    #[test]
    fn previous_linear_and_numbers() {
        let b = run(FillValue::Previous);
        assert_eq!(
            ints(&b, 2),
            [
                Some(1),
                Some(1),
                Some(1),
                Some(4),
                None,
                Some(7),
                Some(7),
                Some(7)
            ]
        );
        // A null value at a present bucket stays null and is not carried.
        assert_eq!(
            floats(&b, 3),
            [
                Some(1.0),
                Some(1.0),
                Some(1.0),
                Some(2.5),
                None,
                None,
                None,
                None
            ]
        );
        let b = run(FillValue::Linear);
        assert_eq!(ints(&b, 2)[..4], [Some(1), Some(2), Some(3), Some(4)]);
        assert_eq!(
            floats(&b, 3)[..4],
            [Some(1.0), Some(1.5), Some(2.0), Some(2.5)]
        );
        let b = run(FillValue::Integer(-1));
        assert_eq!(ints(&b, 2)[..4], [Some(1), Some(-1), Some(-1), Some(4)]);
        let b = run(FillValue::float(1.5));
        assert_eq!(ints(&b, 2)[..4], [Some(1), Some(1), Some(1), Some(4)]);
        assert_eq!(
            floats(&b, 3)[..4],
            [Some(1.0), Some(1.5), Some(1.5), Some(2.5)]
        );
    }

    #[test]
    fn too_many_buckets_is_an_error() {
        let b = input();
        let mut p = params(FillValue::Null);
        p.max_buckets = 3;
        let out = Arc::new(p.output_schema(&b.schema()));
        let err = fill_batch(&b, &p, &out).unwrap_err().to_string();
        assert!(
            err.contains("max-select-buckets limit exceeded: (4/3)"),
            "{err}"
        );
    }
}
