//! InfluxQL's aggregates that SQL lacks, as DataFusion aggregate functions:
//! `percentile(x, p)` (nearest rank), `mode(x)`, `integral(x, unit)`.
//!
//! Each is called as `fn(value, time)` with `time` as `Int64` nanoseconds, and carries its
//! parameter in the function itself ([`InfluxAggregate`]), so the codec can ship it. A lone
//! `percentile` is a selector: the same function with [`Output::Time`] gives the time of the
//! point it picked.
//!
//! `integral` over `GROUP BY time` buckets is not local to a bucket in 1.x: the area runs on
//! to the bucket's end, interpolated towards the series' next point, and starts where the
//! previous bucket's ended. It is called as `integral(value, time, previous, next)`, where
//! `previous` and `next` are `{t, v}` structs of the neighbouring points (`lag`/`lead` over
//! the series, ignoring nulls).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::{cast, concat, filter, is_not_null};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, TypeSignature, Volatility,
};
use serde::{Deserialize, Serialize};

use super::time_bucket::bucket_start_or_min;

/// Which InfluxQL aggregate, with its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AggregateKind {
    /// Nearest-rank percentile; the percentage as `f64` bits (so the function stays `Eq`).
    Percentile(u64),
    /// The most frequent value.
    Mode,
    /// The area under the points (trapezoids), per `unit` nanoseconds; `window` is the
    /// `GROUP BY time` interval and offset.
    Integral {
        unit: i64,
        window: Option<(i64, i64)>,
    },
    /// `holt_winters(...)` of a series' buckets: its forecast (after the fitted values, with
    /// `with_fit`) as a list of `{time, value}`, to be unnested into rows.
    HoltWinters {
        h: u32,
        m: u32,
        with_fit: bool,
        interval: i64,
    },
}

/// The fields of an element of `holt_winters`' list: a point's time (ns) and value.
fn holt_winters_point() -> datafusion::arrow::datatypes::Fields {
    vec![
        Field::new("time", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
    ]
    .into()
}

fn holt_winters_type() -> DataType {
    DataType::new_list(DataType::Struct(holt_winters_point()), true)
}

/// Whether the function gives the value or the time of the point it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Output {
    Value,
    Time,
    /// The value of a third argument at the point selected: a field or tag selected beside a
    /// lone selector (`SELECT max(f), g, host`), taken from the same point, as 1.x does.
    Aux,
}

/// An InfluxQL aggregate as a DataFusion aggregate function.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InfluxAggregate {
    pub kind: AggregateKind,
    pub output: Output,
    #[serde(skip, default = "signature")]
    signature: Signature,
}

fn signature() -> Signature {
    Signature::new(
        TypeSignature::OneOf(vec![
            TypeSignature::Any(2),
            TypeSignature::Any(3),
            TypeSignature::Any(4),
        ]),
        Volatility::Immutable,
    )
}

impl InfluxAggregate {
    pub fn new(kind: AggregateKind, output: Output) -> Self {
        Self {
            kind,
            output,
            signature: signature(),
        }
    }

    pub fn percentile(p: f64, output: Output) -> Self {
        Self::new(AggregateKind::Percentile(p.to_bits()), output)
    }

    pub fn udaf(self) -> AggregateUDF {
        AggregateUDF::new_from_impl(self)
    }
}

impl AggregateUDFImpl for InfluxAggregate {
    fn name(&self) -> &str {
        match (self.kind, self.output) {
            (AggregateKind::Percentile(_), Output::Value) => "influx_percentile",
            (AggregateKind::Percentile(_), Output::Time) => "influx_percentile_time",
            (AggregateKind::Percentile(_), Output::Aux) => "influx_percentile_aux",
            (AggregateKind::Mode, _) => "influx_mode",
            (AggregateKind::Integral { .. }, _) => "influx_integral",
            (
                AggregateKind::HoltWinters {
                    with_fit: false, ..
                },
                _,
            ) => "influx_holt_winters",
            (AggregateKind::HoltWinters { .. }, _) => "influx_holt_winters_with_fit",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match (self.kind, self.output) {
            (_, Output::Time) => DataType::Int64,
            (AggregateKind::Integral { .. }, _) => DataType::Float64,
            (AggregateKind::HoltWinters { .. }, _) => holt_winters_type(),
            (_, Output::Aux) => match arg_types.get(2) {
                Some(t) => t.clone(),
                None => {
                    return exec_err!("{} takes a value, a time and another column", self.name());
                }
            },
            _ => match arg_types.first() {
                Some(t) => t.clone(),
                None => return exec_err!("{} takes a value and a time", self.name()),
            },
        })
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.expr_fields.len() < 2 {
            return exec_err!("{} takes a value and a time", self.name());
        }
        Ok(Box::new(Points {
            kind: self.kind,
            output: self.output,
            types: args
                .expr_fields
                .iter()
                .map(|f| f.data_type().clone())
                .collect(),
            columns: vec![Vec::new(); args.expr_fields.len()],
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(args
            .input_fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                Arc::new(Field::new(
                    format!("{}_{i}", args.name),
                    DataType::new_list(f.data_type().clone(), true),
                    true,
                ))
            })
            .collect())
    }
}

/// Collects the arguments at the group's non-null values; the answer is computed once at the
/// end. Column 0 is the value, 1 the time, then the neighbours (windowed `integral`).
#[derive(Debug)]
struct Points {
    kind: AggregateKind,
    output: Output,
    types: Vec<DataType>,
    columns: Vec<Vec<ArrayRef>>,
}

/// A neighbouring point, from a `{t, v}` struct column.
fn neighbour(a: &ArrayRef, i: usize) -> Result<Option<(i64, f64)>> {
    let Some(st) = a.as_struct_opt() else {
        return exec_err!("integral's neighbours are {{t, v}} structs");
    };
    if st.is_null(i) || st.num_columns() != 2 {
        return Ok(None);
    }
    let t = cast(st.column(0), &DataType::Int64)?;
    let v = cast(st.column(1), &DataType::Float64)?;
    let (t, v) = (
        t.as_primitive::<Int64Type>(),
        v.as_primitive::<Float64Type>(),
    );
    Ok((t.is_valid(i) && v.is_valid(i)).then(|| (t.value(i), v.value(i))))
}

/// 1.x's `linearFloat`: the value at `t` on the line between two points.
fn linear(t: i64, (t0, v0): (i64, f64), (t1, v1): (i64, f64)) -> f64 {
    (v1 - v0) / (t1 - t0) as f64 * (t - t0) as f64 + v0
}

impl Points {
    fn gathered(&self) -> Result<Vec<ArrayRef>> {
        self.columns
            .iter()
            .zip(&self.types)
            .map(|(parts, ty)| {
                if parts.is_empty() {
                    Ok(datafusion::arrow::array::new_empty_array(ty))
                } else {
                    Ok(concat(
                        &parts.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
                    )?)
                }
            })
            .collect()
    }

    fn answer(&self, columns: &[ArrayRef]) -> Result<ScalarValue> {
        let values = &columns[0];
        let times = cast(&columns[1], &DataType::Int64)?;
        let times = times.as_primitive::<Int64Type>();
        let n = values.len();
        let null = || ScalarValue::try_from(&self.result_type());
        let pick = |i: usize| -> Result<ScalarValue> {
            match self.output {
                Output::Time => Ok(ScalarValue::Int64(Some(times.value(i)))),
                Output::Value => ScalarValue::try_from_array(values, i),
                Output::Aux => match columns.get(2) {
                    Some(aux) => ScalarValue::try_from_array(aux, i),
                    None => {
                        exec_err!("influx_percentile_aux takes a value, a time and another column")
                    }
                },
            }
        };
        match self.kind {
            AggregateKind::Percentile(bits) => {
                let p = f64::from_bits(bits);
                // Nearest rank, as 1.x: index int(p/100 * n + 0.5) - 1 over the points
                // ordered by value, then time.
                let idx = ((p / 100.0) * n as f64 + 0.5).floor() as i64 - 1;
                if p <= 0.0 || p > 100.0 || idx < 0 || idx as usize >= n {
                    return null();
                }
                let mut order: Vec<usize> = (0..n).collect();
                let key = cmp_key(values)?;
                order.sort_by(|&a, &b| key(a, b).then(times.value(a).cmp(&times.value(b))));
                pick(order[idx as usize])
            }
            AggregateKind::Mode => {
                // 1.x's reducer, step for step: the points ordered by value (then time), a
                // run's count rising point by point, a later run taking over only once it is
                // more frequent (or as frequent and no later); the first point of every run
                // but the first is counted without being compared, so among values seen once
                // each, the smallest wins.
                if n == 0 {
                    return null();
                }
                // Booleans have a reducer of their own in 1.x: true unless there are more
                // falses (a tie is true).
                if let Some(bools) = values.as_boolean_opt() {
                    let trues = (0..n).filter(|&i| bools.value(i)).count();
                    let want = trues * 2 >= n;
                    let at = (0..n)
                        .filter(|&i| bools.value(i) == want)
                        .min_by_key(|&i| times.value(i))
                        .unwrap_or(0);
                    return pick(at);
                }
                let key = cmp_key(values)?;
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| key(a, b).then(times.value(a).cmp(&times.value(b))));
                let first = order[0];
                let (mut most_freq, mut curr_freq) = (0usize, 0usize);
                let (mut curr, mut most) = (first, first);
                let (mut curr_time, mut most_time) = (times.value(first), times.value(first));
                for &i in &order {
                    if key(i, curr) != std::cmp::Ordering::Equal {
                        curr_freq = 1;
                        curr = i;
                        curr_time = times.value(i);
                        continue;
                    }
                    curr_freq += 1;
                    if most_freq > curr_freq || (most_freq == curr_freq && curr_time > most_time) {
                        continue;
                    }
                    most_freq = curr_freq;
                    most = i;
                    most_time = times.value(i);
                }
                match self.output {
                    Output::Time => Ok(ScalarValue::Int64(Some(most_time))),
                    Output::Value | Output::Aux => pick(most),
                }
            }
            AggregateKind::Integral { unit, window } => {
                if n == 0 {
                    return Ok(ScalarValue::Float64(Some(0.0)));
                }
                let floats = cast(values, &DataType::Float64)?;
                let floats = floats.as_primitive::<Float64Type>();
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by_key(|&i| times.value(i));
                let point = |i: usize| (times.value(i), floats.value(i));
                let (first, last) = (order[0], order[n - 1]);
                let per_unit = |dt: i64| dt as f64 / unit as f64;
                let mut area = 0.0;
                // With GROUP BY time, the area starts where the previous bucket's ended, on
                // the line towards this bucket's first point.
                let mut prev = None;
                let bucket = window.map(|(interval, offset)| {
                    let start = move |t: i64| bucket_start_or_min(t, interval, offset);
                    (start, interval)
                });
                if let (Some((start, interval)), [_, _, before, _]) = (bucket, columns) {
                    if let Some(q) = neighbour(before, first)? {
                        let end = start(q.0) + interval;
                        prev = Some((end, linear(end, q, point(first))));
                    }
                }
                for &i in &order {
                    let p = point(i);
                    if let Some(q) = prev {
                        if q.0 != p.0 {
                            area += 0.5 * (p.1 + q.1) * per_unit(p.0 - q.0);
                        }
                    }
                    prev = Some(p);
                }
                if let (Some((start, interval)), [_, _, _, after]) = (bucket, columns) {
                    let begin = start(times.value(last));
                    let end = begin + interval;
                    match neighbour(after, last)? {
                        // ... and runs on to the bucket's end, towards the next point.
                        Some(r) => {
                            let pk = point(last);
                            area += 0.5 * (linear(end, pk, r) + pk.1) * per_unit(end - pk.0);
                        }
                        // The series' last bucket has no area if it holds only its start.
                        None if times.value(last) == begin => return null(),
                        None => {}
                    }
                }
                Ok(ScalarValue::Float64(Some(area)))
            }
            AggregateKind::HoltWinters {
                h,
                m,
                with_fit,
                interval,
            } => {
                let floats = cast(values, &DataType::Float64)?;
                let floats = floats.as_primitive::<Float64Type>();
                let mut points: Vec<(i64, f64)> =
                    (0..n).map(|i| (times.value(i), floats.value(i))).collect();
                points.sort_by_key(|p| p.0);
                let forecast = crate::holt_winters::HoltWinters {
                    h: h as usize,
                    m: m as usize,
                    with_fit,
                    interval,
                }
                .forecast(&points);
                let (t, v): (Vec<i64>, Vec<f64>) = forecast.into_iter().unzip();
                let st = datafusion::arrow::array::StructArray::try_new(
                    holt_winters_point(),
                    vec![
                        Arc::new(datafusion::arrow::array::Int64Array::from(t)),
                        Arc::new(datafusion::arrow::array::Float64Array::from(v)),
                    ],
                    None,
                )?;
                Ok(ScalarValue::List(Arc::new(
                    datafusion::common::utils::SingleRowListArrayBuilder::new(Arc::new(st))
                        .build_list_array(),
                )))
            }
        }
    }

    fn result_type(&self) -> DataType {
        match (self.kind, self.output) {
            (AggregateKind::HoltWinters { .. }, _) => holt_winters_type(),
            (_, Output::Time) => DataType::Int64,
            (AggregateKind::Integral { .. }, _) => DataType::Float64,
            (_, Output::Aux) if self.types.len() > 2 => self.types[2].clone(),
            _ => self.types[0].clone(),
        }
    }
}

/// Compares two rows of `values` (numbers by value, anything else by Arrow's ordering).
fn cmp_key(values: &ArrayRef) -> Result<impl Fn(usize, usize) -> std::cmp::Ordering + '_> {
    let cmp = datafusion::arrow::array::make_comparator(
        values.as_ref(),
        values.as_ref(),
        datafusion::arrow::compute::SortOptions::default(),
    )?;
    Ok(move |a: usize, b: usize| cmp(a, b))
}

impl Accumulator for Points {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if values.len() != self.columns.len() {
            return exec_err!("InfluxQL aggregates take a value and a time");
        }
        let keep = is_not_null(&values[0])?;
        for (parts, a) in self.columns.iter_mut().zip(values) {
            parts.push(filter(a, &keep)?);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let columns = self.gathered()?;
        self.answer(&columns)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .columns
                .iter()
                .flatten()
                .map(|a| a.get_array_memory_size())
                .sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self
            .gathered()?
            .into_iter()
            .map(|a| {
                ScalarValue::List(Arc::new(
                    datafusion::common::utils::SingleRowListArrayBuilder::new(a).build_list_array(),
                ))
            })
            .collect())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        if states.len() != self.columns.len() {
            return exec_err!("InfluxQL aggregate state has one list per argument");
        }
        let lists: Vec<_> = states.iter().map(|s| s.as_list::<i32>()).collect();
        for i in 0..lists[0].len() {
            if lists.iter().all(|l| l.is_valid(i)) {
                for (parts, l) in self.columns.iter_mut().zip(&lists) {
                    parts.push(l.value(i));
                }
            }
        }
        Ok(())
    }
}
