//! `GROUP BY time(interval[, offset])`'s bucket: `influx_time_bucket(time, interval, offset)`,
//! the start of the interval a point's time falls in, as integer nanoseconds.
//!
//! Buckets are aligned as 1.x aligns them: `offset + floor((time - offset) / interval) *
//! interval` (so before the epoch too), which is DataFusion's `date_bin` for an interval of
//! nanoseconds. It is a function of its own because a plan hashes its grouping expressions
//! each time an optimizer rule rebuilds an aggregate, and hashing `date_bin` hashes its whole
//! signature (every timestamp unit and time zone it accepts): 6% of a one-host, one-hour
//! query's CPU. This one's signature is three arguments of any type, checked by
//! [`TimeBucket::return_type`], and it returns the integer the rest of the plan wants without
//! a cast.
//!
//! [`bucket_start`] is the one bucket alignment in Fletch: `GapFill` and `integral`'s windows
//! call it too.

use datafusion::arrow::array::{Array, AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampNanosecondType};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::{Arc, LazyLock};

/// The function; register [`TimeBucket::udf`] in a session that decodes plans using it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TimeBucket {
    signature: Signature,
}

impl Default for TimeBucket {
    fn default() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

impl TimeBucket {
    pub const NAME: &'static str = "influx_time_bucket";

    /// The function, built once per process.
    pub fn udf() -> Arc<ScalarUDF> {
        static UDF: LazyLock<Arc<ScalarUDF>> =
            LazyLock::new(|| Arc::new(ScalarUDF::new_from_impl(TimeBucket::default())));
        Arc::clone(&UDF)
    }

    /// `influx_time_bucket(time, interval, offset)` with both durations in nanoseconds.
    pub fn call(time: Expr, interval: i64, offset: i64) -> Expr {
        Expr::ScalarFunction(ScalarFunction::new_udf(
            Self::udf(),
            vec![
                time,
                Expr::Literal(ScalarValue::Int64(Some(interval)), None),
                Expr::Literal(ScalarValue::Int64(Some(offset)), None),
            ],
        ))
    }
}

/// The start of the bucket `time` falls in; `None` where that start is not a representable
/// time (only for times within one interval of the ends of `i64`).
pub fn bucket_start(time: i64, interval: i64, offset: i64) -> Option<i64> {
    let (t, i, o) = (i128::from(time), i128::from(interval), i128::from(offset));
    i64::try_from(o + (t - o).div_euclid(i) * i).ok()
}

/// [`bucket_start`] where a plan needs a time either way (gap filling, `integral`'s windows):
/// a start before the smallest time is the smallest time.
pub fn bucket_start_or_min(time: i64, interval: i64, offset: i64) -> i64 {
    bucket_start(time, interval, offset).unwrap_or(i64::MIN)
}

impl ScalarUDFImpl for TimeBucket {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [
                DataType::Timestamp(TimeUnit::Nanosecond, _) | DataType::Int64,
                DataType::Int64,
                DataType::Int64,
            ] => Ok(DataType::Int64),
            other => plan_err!(
                "{}(time, interval, offset) takes a nanosecond time and two integers, got {other:?}",
                Self::NAME
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [time, interval, offset] = args.args.as_slice() else {
            return exec_err!("{} takes three arguments", Self::NAME);
        };
        let (
            ColumnarValue::Scalar(ScalarValue::Int64(Some(interval))),
            ColumnarValue::Scalar(ScalarValue::Int64(Some(offset))),
        ) = (interval, offset)
        else {
            return exec_err!("{}: interval and offset must be constants", Self::NAME);
        };
        let (interval, offset) = (*interval, *offset);
        if interval <= 0 {
            return exec_err!("{}: interval must be positive, got {interval}", Self::NAME);
        }
        let bucket = |t: i64| bucket_start(t, interval, offset);
        match time {
            ColumnarValue::Array(a) => {
                let out: Int64Array = match a.data_type() {
                    DataType::Timestamp(TimeUnit::Nanosecond, _) => a
                        .as_primitive::<TimestampNanosecondType>()
                        .unary_opt::<_, Int64Type>(bucket),
                    DataType::Int64 => a
                        .as_primitive::<Int64Type>()
                        .unary_opt::<_, Int64Type>(bucket),
                    other => {
                        return exec_err!("{}: time of type {other}", Self::NAME);
                    }
                };
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            ColumnarValue::Scalar(
                ScalarValue::TimestampNanosecond(t, _) | ScalarValue::Int64(t),
            ) => Ok(ColumnarValue::Scalar(ScalarValue::Int64(
                t.and_then(bucket),
            ))),
            ColumnarValue::Scalar(other) => {
                exec_err!("{}: time of type {}", Self::NAME, other.data_type())
            }
        }
    }

    /// Bucket starts keep the order of the times (interval and offset are constants).
    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        match input {
            [time, interval, offset]
                if interval.sort_properties == SortProperties::Singleton
                    && offset.sort_properties == SortProperties::Singleton =>
            {
                Ok(time.sort_properties)
            }
            _ => Ok(SortProperties::Unordered),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::TimestampNanosecondArray;
    use datafusion::arrow::datatypes::Field;
    use datafusion::config::ConfigOptions;

    fn run(time: ColumnarValue, interval: i64, offset: i64) -> Result<ColumnarValue> {
        let rows = match &time {
            ColumnarValue::Array(a) => a.len(),
            ColumnarValue::Scalar(_) => 1,
        };
        TimeBucket::default().invoke_with_args(ScalarFunctionArgs {
            arg_fields: vec![
                Arc::new(Field::new("t", time.data_type(), true)),
                Arc::new(Field::new("i", DataType::Int64, false)),
                Arc::new(Field::new("o", DataType::Int64, false)),
            ],
            args: vec![
                time,
                ColumnarValue::Scalar(ScalarValue::Int64(Some(interval))),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(offset))),
            ],
            number_rows: rows,
            return_field: Arc::new(Field::new("b", DataType::Int64, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    #[test]
    fn buckets_start_where_1x_starts_them() {
        // Before and after the epoch, on a boundary, with an offset.
        assert_eq!(bucket_start(25, 10, 0), Some(20));
        assert_eq!(bucket_start(20, 10, 0), Some(20));
        assert_eq!(bucket_start(-1, 10, 0), Some(-10));
        assert_eq!(bucket_start(-10, 10, 0), Some(-10));
        assert_eq!(bucket_start(25, 10, 3), Some(23));
        assert_eq!(bucket_start(22, 10, 3), Some(13));
        // A start below the smallest time is not a time.
        assert_eq!(bucket_start(i64::MIN + 1, 10, 0), None);
        assert_eq!(bucket_start(i64::MAX, 10, 0), Some(i64::MAX - 7));
    }

    #[test]
    fn arrays_and_scalars_of_either_time_type() {
        let times = TimestampNanosecondArray::from(vec![Some(-1), None, Some(19), Some(20)]);
        let ColumnarValue::Array(out) =
            run(ColumnarValue::Array(Arc::new(times)), 10, 0).expect("runs")
        else {
            panic!("an array in, an array out");
        };
        let out: Vec<Option<i64>> = out.as_primitive::<Int64Type>().iter().collect();
        assert_eq!(out, vec![Some(-10), None, Some(10), Some(20)]);

        let ints = Int64Array::from(vec![Some(7)]);
        let ColumnarValue::Array(out) =
            run(ColumnarValue::Array(Arc::new(ints)), 5, 1).expect("runs")
        else {
            panic!("an array in, an array out");
        };
        assert_eq!(out.as_primitive::<Int64Type>().value(0), 6);

        let scalar = ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(Some(99), None));
        assert!(matches!(
            run(scalar, 50, 0).expect("runs"),
            ColumnarValue::Scalar(ScalarValue::Int64(Some(50)))
        ));
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        let t = || ColumnarValue::Scalar(ScalarValue::Int64(Some(1)));
        assert!(run(t(), 0, 0).is_err());
        assert!(run(t(), -5, 0).is_err());
        let text = ColumnarValue::Scalar(ScalarValue::Utf8(Some("x".into())));
        assert!(run(text, 10, 0).is_err());
        assert!(
            TimeBucket::default()
                .return_type(&[DataType::Utf8, DataType::Int64, DataType::Int64])
                .is_err()
        );
    }
}
