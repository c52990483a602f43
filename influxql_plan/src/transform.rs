//! InfluxQL's transformations as DataFusion window functions: `derivative`,
//! `non_negative_derivative`, `difference`, `non_negative_difference`, `cumulative_sum`,
//! `moving_average`, `elapsed`, and the technical-analysis functions of [`crate::technical`].
//!
//! Each is called as `fn(value, time) OVER (PARTITION BY <series> ORDER BY time)` with `time` as
//! `Int64` nanoseconds and carries its parameter in the function ([`InfluxTransform`]). Null
//! values are skipped, as 1.x skips them; a row the transformation has no value for (the first
//! point of a derivative, the first n-1 of a moving average) gets null, and the planner drops
//! rows where every transformed column is null.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, TypeSignature, Volatility, WindowUDF, WindowUDFImpl,
};
use serde::{Deserialize, Serialize};

use crate::technical::Technical;

/// A transformation of a series' ordered values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TransformKind {
    Derivative {
        unit: i64,
        non_negative: bool,
    },
    Difference {
        non_negative: bool,
    },
    CumulativeSum,
    MovingAverage(usize),
    Elapsed(i64),
    /// `exponential_moving_average(...)` and the other technical-analysis functions.
    Technical(Technical),
}

/// An InfluxQL transformation as a DataFusion window function.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InfluxTransform {
    pub kind: TransformKind,
    #[serde(skip, default = "signature")]
    signature: Signature,
}

fn signature() -> Signature {
    Signature::new(TypeSignature::Any(2), Volatility::Immutable)
}

impl InfluxTransform {
    pub fn new(kind: TransformKind) -> Self {
        Self {
            kind,
            signature: signature(),
        }
    }

    pub fn udwf(self) -> WindowUDF {
        WindowUDF::new_from_impl(self)
    }

    /// The output type for an input value of this type.
    fn output_type(&self, input: &DataType) -> DataType {
        match self.kind {
            TransformKind::Derivative { .. }
            | TransformKind::MovingAverage(_)
            | TransformKind::Technical(_) => DataType::Float64,
            TransformKind::Elapsed(_) => DataType::Int64,
            TransformKind::Difference { .. } | TransformKind::CumulativeSum => match input {
                DataType::Int64 | DataType::Int32 | DataType::Int16 | DataType::Int8 => {
                    DataType::Int64
                }
                _ => DataType::Float64,
            },
        }
    }
}

impl WindowUDFImpl for InfluxTransform {
    fn name(&self) -> &str {
        match self.kind {
            TransformKind::Derivative {
                non_negative: false,
                ..
            } => "derivative",
            TransformKind::Derivative { .. } => "non_negative_derivative",
            TransformKind::Difference {
                non_negative: false,
            } => "difference",
            TransformKind::Difference { .. } => "non_negative_difference",
            TransformKind::CumulativeSum => "cumulative_sum",
            TransformKind::MovingAverage(_) => "moving_average",
            TransformKind::Elapsed(_) => "elapsed",
            TransformKind::Technical(t) => t.func.name(),
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(Evaluator { kind: self.kind }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        let input = match field_args.get_input_field(0) {
            Some(f) => f.data_type().clone(),
            None => return exec_err!("{} takes a value and a time", self.name()),
        };
        Ok(Arc::new(Field::new(
            field_args.name(),
            self.output_type(&input),
            true,
        )))
    }
}

#[derive(Debug)]
struct Evaluator {
    kind: TransformKind,
}

impl PartitionEvaluator for Evaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let [value, time] = values else {
            return exec_err!("InfluxQL transformations take a value and a time");
        };
        let time = cast(time, &DataType::Int64)?;
        let time = time.as_primitive::<Int64Type>();
        // The rows holding a value, in the window's order.
        let points: Vec<usize> = (0..num_rows).filter(|&i| value.is_valid(i)).collect();
        let t = |i: usize| time.value(i);
        let integers = matches!(
            value.data_type(),
            DataType::Int64 | DataType::Int32 | DataType::Int16 | DataType::Int8
        );
        let floats = || -> Result<Float64Array> {
            match value.data_type() {
                DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    exec_err!(
                        "unsupported {} type for the transformation's field",
                        value.data_type()
                    )
                }
                _ => Ok(cast(value, &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone()),
            }
        };
        // A derivative or difference takes the first of points at the same time (several
        // series read as one) and skips the rest, as 1.x's reducers do.
        let first_at_each_time = || -> Vec<usize> {
            let mut kept: Vec<usize> = Vec::with_capacity(points.len());
            for &i in &points {
                if kept.last().is_none_or(|&k| time.value(k) != time.value(i)) {
                    kept.push(i);
                }
            }
            kept
        };
        let array: ArrayRef = match self.kind {
            TransformKind::Derivative { unit, non_negative } => {
                let points = first_at_each_time();
                let v = floats()?;
                let mut out = vec![None; num_rows];
                for w in points.windows(2) {
                    let (a, b) = (w[0], w[1]);
                    let dt = (t(b) - t(a)).unsigned_abs() as f64 / unit as f64;
                    if dt <= 0.0 {
                        continue;
                    }
                    let d = (v.value(b) - v.value(a)) / dt;
                    if !(non_negative && d < 0.0) {
                        out[b] = Some(d);
                    }
                }
                Arc::new(Float64Array::from(out))
            }
            TransformKind::Difference { non_negative } if integers => {
                let points = first_at_each_time();
                let v = cast(value, &DataType::Int64)?;
                let v = v.as_primitive::<Int64Type>();
                let mut out = vec![None; num_rows];
                for w in points.windows(2) {
                    let d = v.value(w[1]).wrapping_sub(v.value(w[0]));
                    if !(non_negative && d < 0) {
                        out[w[1]] = Some(d);
                    }
                }
                Arc::new(Int64Array::from(out))
            }
            TransformKind::Difference { non_negative } => {
                let points = first_at_each_time();
                let v = floats()?;
                let mut out = vec![None; num_rows];
                for w in points.windows(2) {
                    let d = v.value(w[1]) - v.value(w[0]);
                    if !(non_negative && d < 0.0) {
                        out[w[1]] = Some(d);
                    }
                }
                Arc::new(Float64Array::from(out))
            }
            TransformKind::CumulativeSum if integers => {
                let v = cast(value, &DataType::Int64)?;
                let v = v.as_primitive::<Int64Type>();
                let mut out = vec![None; num_rows];
                let mut sum = 0i64;
                for &i in &points {
                    sum = sum.wrapping_add(v.value(i));
                    out[i] = Some(sum);
                }
                Arc::new(Int64Array::from(out))
            }
            TransformKind::CumulativeSum => {
                let v = floats()?;
                let mut out = vec![None; num_rows];
                let mut sum = 0f64;
                for &i in &points {
                    sum += v.value(i);
                    out[i] = Some(sum);
                }
                Arc::new(Float64Array::from(out))
            }
            TransformKind::MovingAverage(n) => {
                // A running sum, as 1.x keeps it (so the floating point results agree).
                let v = floats()?;
                let mut out = vec![None; num_rows];
                let mut sum = 0.0;
                for (k, &i) in points.iter().enumerate() {
                    if k >= n {
                        sum -= v.value(points[k - n]);
                    }
                    sum += v.value(i);
                    if k + 1 >= n {
                        out[i] = Some(sum / n as f64);
                    }
                }
                Arc::new(Float64Array::from(out))
            }
            TransformKind::Technical(t) => {
                // NaN is a value (1.x emits the point, answered as null), not a missing one.
                let v = floats()?;
                let mut out = vec![None; num_rows];
                let values = t.run(points.iter().map(|&i| v.value(i)));
                for (&i, x) in points.iter().zip(values) {
                    out[i] = x;
                }
                Arc::new(Float64Array::from(out))
            }
            TransformKind::Elapsed(unit) => {
                let mut out = vec![None; num_rows];
                for w in points.windows(2) {
                    out[w[1]] = Some((t(w[1]) - t(w[0])) / unit);
                }
                Arc::new(Int64Array::from(out))
            }
        };
        Ok(array)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: TransformKind, values: ArrayRef, times: Vec<i64>) -> ArrayRef {
        let n = values.len();
        Evaluator { kind }
            .evaluate_all(&[values, Arc::new(Int64Array::from(times))], n)
            .unwrap()
    }

    #[test]
    fn skips_nulls_and_leaves_the_first_point_empty() {
        let v: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(1.0),
            None,
            Some(5.0),
            Some(3.0),
        ]));
        let d = run(
            TransformKind::Derivative {
                unit: 10,
                non_negative: false,
            },
            Arc::clone(&v),
            vec![0, 10, 20, 30],
        );
        let d: Vec<_> = d.as_primitive::<Float64Type>().iter().collect();
        assert_eq!(d, [None, None, Some(2.0), Some(-2.0)]);
        let d = run(
            TransformKind::Difference { non_negative: true },
            v,
            vec![0, 10, 20, 30],
        );
        let d: Vec<_> = d.as_primitive::<Float64Type>().iter().collect();
        assert_eq!(d, [None, None, Some(4.0), None]);
    }

    #[test]
    fn derivative_and_difference_take_the_first_point_at_a_time() {
        let v: ArrayRef = Arc::new(Float64Array::from(vec![1.0, 10.0, 2.0, 20.0, 5.0, 3.0]));
        let t = vec![0, 0, 60, 60, 60, 120];
        let d = run(
            TransformKind::Difference {
                non_negative: false,
            },
            Arc::clone(&v),
            t.clone(),
        );
        let d: Vec<_> = d.as_primitive::<Float64Type>().iter().collect();
        assert_eq!(d, [None, None, Some(1.0), None, None, Some(1.0)]);
        let d = run(
            TransformKind::Derivative {
                unit: 60,
                non_negative: false,
            },
            v,
            t,
        );
        let d: Vec<_> = d.as_primitive::<Float64Type>().iter().collect();
        assert_eq!(d, [None, None, Some(1.0), None, None, Some(1.0)]);
    }

    #[test]
    fn integers_stay_integers() {
        let v: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let s = run(TransformKind::CumulativeSum, Arc::clone(&v), vec![0, 1, 2]);
        let s: Vec<_> = s.as_primitive::<Int64Type>().iter().collect();
        assert_eq!(s, [Some(1), Some(3), Some(6)]);
        let m = run(
            TransformKind::MovingAverage(2),
            Arc::clone(&v),
            vec![0, 1, 2],
        );
        let m: Vec<_> = m.as_primitive::<Float64Type>().iter().collect();
        assert_eq!(m, [None, Some(1.5), Some(2.5)]);
        let e = run(TransformKind::Elapsed(1), v, vec![0, 5, 9]);
        let e: Vec<_> = e.as_primitive::<Int64Type>().iter().collect();
        assert_eq!(e, [None, Some(5), Some(4)]);
    }
}
