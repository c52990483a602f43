//! A statement's rows as 1.x series: split by tag set, times formatted, LIMIT/OFFSET per series.

use super::*;

impl<'a> Plan<'a> {
    /// Splits rows into series by their tag values, formats the times, and applies LIMIT and
    /// OFFSET inside each series unless the plan did (`limited`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn into_series(
        &self,
        measurement: &str,
        group_tags: &[String],
        columns: Vec<String>,
        types: Vec<Option<FieldType>>,
        rows: Rows,
        qctx: &QueryContext,
        limited: bool,
    ) -> Vec<Series> {
        let mut by_tags: BTreeMap<Vec<Option<String>>, Vec<Vec<Value>>> = BTreeMap::new();
        for (tags, t, vals) in rows {
            let mut row = Vec::with_capacity(vals.len() + 1);
            row.push(match (self.timezone, qctx.epoch.as_deref()) {
                (Some(tz), None) => format_time_in(t, tz),
                _ => format_time(t, qctx.epoch.as_deref()),
            });
            row.extend(vals);
            by_tags.entry(tags).or_default().push(row);
        }
        let (offset, limit) = if limited {
            (0, usize::MAX)
        } else {
            (
                self.stmt.offset.unwrap_or(0) as usize,
                self.stmt
                    .limit
                    .filter(|l| *l > 0)
                    .map_or(usize::MAX, |l| l as usize),
            )
        };
        let grouped = !self
            .stmt
            .dimensions
            .iter()
            .all(|d| matches!(d, Dimension::Time { .. }));
        let mut out = Vec::new();
        // 1.x walks series in descending key order too when time goes backwards.
        let by_tags: Box<dyn Iterator<Item = _>> = if self.stmt.order_desc {
            Box::new(by_tags.into_iter().rev())
        } else {
            Box::new(by_tags.into_iter())
        };
        for (tags, values) in by_tags {
            let values: Vec<Vec<Value>> = values.into_iter().skip(offset).take(limit).collect();
            if values.is_empty() {
                continue;
            }
            let tags = grouped.then(|| {
                group_tags
                    .iter()
                    .cloned()
                    .zip(tags.into_iter().map(|v| v.unwrap_or_default()))
                    .collect()
            });
            out.push(Series {
                name: Some(measurement.to_string()),
                tags,
                columns: columns.clone(),
                values,
                partial: false,
                types: types.clone(),
            });
        }
        out
    }
}

/// Reads result batches as rows: tag values, time, and the value columns as JSON.
pub(super) type Rows = Vec<(Vec<Option<String>>, i64, Vec<Value>)>;

/// The InfluxQL type of a result column (the element type for collected lists).
pub(super) fn column_type(dt: &DataType) -> Option<FieldType> {
    match dt {
        // A tag selected as a column.
        DataType::Dictionary(_, _) => Some(FieldType::String),
        other => FieldType::from_arrow(other),
    }
}

pub(super) fn collect_typed(
    batches: Vec<RecordBatch>,
    ntags: usize,
    ncols: usize,
) -> Result<(Rows, Vec<Option<FieldType>>), ExecError> {
    let types = match batches.first() {
        Some(b) => (0..ncols)
            .map(|c| column_type(b.schema().field(1 + ntags + c).data_type()))
            .collect(),
        None => vec![None; ncols],
    };
    Ok((collect_rows(batches, ntags, ncols)?, types))
}

pub(super) fn collect_rows(
    batches: Vec<RecordBatch>,
    ntags: usize,
    ncols: usize,
) -> Result<Vec<(Vec<Option<String>>, i64, Vec<Value>)>, ExecError> {
    let mut out = Vec::new();
    for b in batches {
        let time = cast(b.column(0), &DataType::Int64)?;
        let time = time.as_primitive::<Int64Type>();
        let tags: Vec<ArrayRef> = (0..ntags)
            .map(|i| cast(b.column(1 + i), &DataType::Utf8))
            .collect::<Result<_, _>>()?;
        // Tags selected as columns come as dictionaries: decoded once per batch, not per cell.
        let values: Vec<ArrayRef> = (0..ncols)
            .map(|c| {
                let a = b.column(1 + ntags + c);
                match a.data_type() {
                    DataType::Dictionary(_, _) => cast(a, &DataType::Utf8),
                    _ => Ok(a.clone()),
                }
            })
            .collect::<Result<_, _>>()?;
        for r in 0..b.num_rows() {
            let tag_vals = tags
                .iter()
                .map(|a| (!a.is_null(r)).then(|| a.as_string::<i32>().value(r).to_string()))
                .collect();
            let vals = values.iter().map(|a| json_cell(a, r)).collect();
            out.push((
                tag_vals,
                if time.is_null(r) { 0 } else { time.value(r) },
                vals,
            ));
        }
    }
    Ok(out)
}

/// A float as 1.x prints it: integral values without a fraction.
pub(super) fn json_number(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

pub(super) fn json_cell(a: &ArrayRef, r: usize) -> Value {
    if a.is_null(r) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Float64 => json_number(
            a.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(r),
        ),
        DataType::Int64 => Value::from(a.as_primitive::<Int64Type>().value(r)),
        DataType::UInt64 => Value::from(
            a.as_primitive::<datafusion::arrow::datatypes::UInt64Type>()
                .value(r),
        ),
        DataType::Boolean => Value::from(a.as_boolean().value(r)),
        DataType::Utf8 => Value::from(a.as_string::<i32>().value(r)),
        DataType::Timestamp(_, _) => {
            Value::from(a.as_primitive::<TimestampNanosecondType>().value(r))
        }
        DataType::List(_) => {
            let items = a.as_list::<i32>().value(r);
            Value::Array((0..items.len()).map(|i| json_cell(&items, i)).collect())
        }
        DataType::Struct(fields) => {
            let st = a.as_struct();
            Value::Object(
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.name().clone(), json_cell(st.column(i), r)))
                    .collect(),
            )
        }
        // Anything else as text, one cell at a time (casting the whole array here would
        // make a result quadratic in its rows).
        _ => match ScalarValue::try_from_array(a, r).and_then(|v| v.cast_to(&DataType::Utf8)) {
            Ok(ScalarValue::Utf8(Some(s))) => Value::from(s),
            _ => Value::Null,
        },
    }
}

/// RFC3339 in a time zone, with the zone's offset (`tz('Europe/Oslo')`).
pub(super) fn format_time_in(t: i64, tz: chrono_tz::Tz) -> Value {
    use chrono::Offset;
    let dt = chrono::DateTime::from_timestamp_nanos(t).with_timezone(&tz);
    let mut out = rfc3339_local(&dt, t);
    // `+HH:MM` as chrono's `%:z` writes it (a historical offset's seconds rounded to the
    // nearest minute).
    let offset = dt.offset().fix().local_minus_utc();
    out.push(if offset < 0 { '-' } else { '+' });
    let minutes = (offset.unsigned_abs() + 30) / 60;
    push_digits(&mut out, minutes / 60, 2);
    out.push(':');
    push_digits(&mut out, minutes % 60, 2);
    Value::from(out)
}

/// Formats a time as 1.x does: RFC3339 with as many fraction digits as needed, or an integer in
/// the `epoch` unit.
pub fn format_time(t: i64, epoch: Option<&str>) -> Value {
    let div = match epoch {
        Some("ns") | Some("n") => 1,
        Some("u") | Some("µ") | Some("us") => 1_000,
        Some("ms") => 1_000_000,
        Some("s") => 1_000_000_000,
        Some("m") => 60_000_000_000,
        Some("h") => 3_600_000_000_000,
        _ => 0,
    };
    if div > 0 {
        return Value::from(t.div_euclid(div));
    }
    Value::from(rfc3339_utc(t))
}

/// `t` as RFC3339 in UTC with as many fraction digits as needed (none for a whole second), as
/// 1.x prints times. Written digit by digit: a result of raw points formats one per row, and
/// chrono's `format` parses its pattern and allocates on every call (3% of `high-cpu-1`).
/// Every `i64` of nanoseconds falls in the years 1677-2262, so the year has four digits.
pub(super) fn rfc3339_utc(t: i64) -> String {
    let mut out = rfc3339_local(&chrono::DateTime::from_timestamp_nanos(t), t);
    out.push('Z');
    out
}

/// `dt` (the time `t` in some zone) as `YYYY-MM-DDTHH:MM:SS[.fraction]`, without the zone.
pub(super) fn rfc3339_local<Tz: chrono::TimeZone>(dt: &chrono::DateTime<Tz>, t: i64) -> String {
    use chrono::{Datelike, Timelike};
    let mut out = String::with_capacity(32);
    push_digits(&mut out, dt.year().unsigned_abs(), 4);
    for (sep, n) in [
        ('-', dt.month()),
        ('-', dt.day()),
        ('T', dt.hour()),
        (':', dt.minute()),
        (':', dt.second()),
    ] {
        out.push(sep);
        push_digits(&mut out, n, 2);
    }
    let (mut frac, mut width) = (t.rem_euclid(1_000_000_000) as u32, 9);
    if frac > 0 {
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        out.push('.');
        push_digits(&mut out, frac, width);
    }
    out
}

/// `n`'s last `width` (at most 9) decimal digits, zero-padded.
pub(super) fn push_digits(out: &mut String, mut n: u32, width: usize) {
    let mut buf = [b'0'; 9];
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend(buf[..width].iter().map(|b| char::from(*b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_like_1x() {
        assert_eq!(format_time(77, None), "1970-01-01T00:00:00.000000077Z");
        assert_eq!(format_time(60_000_000_000, None), "1970-01-01T00:01:00Z");
        assert_eq!(format_time(1_000, None), "1970-01-01T00:00:00.000001Z");
        // The same text as chrono's own formatting, across the whole range of times.
        let chrono_text = |t: i64| {
            let dt = chrono::DateTime::from_timestamp_nanos(t);
            let nanos = t.rem_euclid(1_000_000_000);
            let mut s = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
            if nanos > 0 {
                s.push('.');
                s.push_str(format!("{nanos:09}").trim_end_matches('0'));
            }
            s + "Z"
        };
        let mut t = i64::MIN;
        for step in 0..20_000u64 {
            assert_eq!(rfc3339_utc(t), chrono_text(t), "{t}");
            // Steps of uneven size (about 10^15 ns, plus digits that vary) reach the end.
            t = t.saturating_add(922_337_203_685_477 + (step * 7_919 % 1_000_003) as i64);
        }
        for t in [
            i64::MAX,
            -1,
            0,
            1,
            999_999_999,
            1_000_000_000,
            -1_000_000_001,
            1_451_606_400_120_000_000,
        ] {
            assert_eq!(rfc3339_utc(t), chrono_text(t), "{t}");
        }
        // In a zone: the same text as chrono's `%:z` formatting, historical offsets included.
        for zone in [
            chrono_tz::Europe::Oslo,
            chrono_tz::Asia::Kolkata,
            chrono_tz::America::New_York,
            chrono_tz::Europe::Amsterdam,
        ] {
            for t in [
                i64::MIN,
                -2_208_988_800_000_000_001,
                0,
                1_451_606_400_120_000_000,
                i64::MAX,
            ] {
                let dt = chrono::DateTime::from_timestamp_nanos(t).with_timezone(&zone);
                let mut expected = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
                let nanos = t.rem_euclid(1_000_000_000);
                if nanos > 0 {
                    expected.push('.');
                    expected.push_str(format!("{nanos:09}").trim_end_matches('0'));
                }
                expected.push_str(&dt.format("%:z").to_string());
                assert_eq!(format_time_in(t, zone), expected, "{t} in {zone}");
            }
        }
        assert_eq!(format_time(60_000_000_000, Some("s")), 60);
        assert_eq!(parse_rfc3339("1970-01-01T00:01:00Z"), Some(60_000_000_000));
        assert_eq!(parse_rfc3339("2020-01-01"), Some(1_577_836_800_000_000_000));
    }
}
