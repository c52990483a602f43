//! The statement's time range: the `time` conditions of `WHERE` (with `now()`, durations and
//! RFC3339 strings) as inclusive bounds, and the rest of the condition.

use super::*;

/// Inclusive time bounds in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub min: i64,
    pub max: i64,
}

impl TimeRange {
    pub const ALL: TimeRange = TimeRange {
        min: i64::MIN,
        max: i64::MAX,
    };
}

pub(super) fn is_time_ref(e: &Expr) -> bool {
    matches!(e, Expr::VarRef { name, .. } if name.eq_ignore_ascii_case(TIME))
}

/// Evaluates a time literal: RFC3339 string, integer nanoseconds, duration, `now()` and
/// arithmetic on them.
pub(super) fn time_value(e: &Expr, now: i64) -> Result<i64, ExecError> {
    match e {
        Expr::Integer(n) => Ok(*n),
        Expr::Number(n) => Ok(*n as i64),
        Expr::Duration(d) => Ok(*d),
        Expr::String(s) => {
            // A string that is not a time stays a string literal in 1.x, which then refuses
            // to compare it with time.
            parse_rfc3339(s).ok_or_else(|| {
                query_err("invalid operation: time and *influxql.StringLiteral are not compatible")
            })
        }
        Expr::Call { name, args } if name == "now" && args.is_empty() => Ok(now),
        Expr::Paren(inner) => time_value(inner, now),
        Expr::Binary {
            op: op @ (BinaryOp::Add | BinaryOp::Sub),
            lhs,
            rhs,
        } => {
            // A side that is no time leaves 1.x an expression it cannot reduce.
            let (Ok(l), Ok(r)) = (time_value(lhs, now), time_value(rhs, now)) else {
                return Err(query_err(
                    "invalid operation: time and *influxql.BinaryExpr are not compatible",
                ));
            };
            Ok(if *op == BinaryOp::Add {
                l.saturating_add(r)
            } else {
                l.saturating_sub(r)
            })
        }
        other => Err(query_err(format!("invalid time expression: {other}"))),
    }
}

/// Parses RFC3339 (with or without fraction / offset) and plain dates.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt();
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
        return t.and_utc().timestamp_nanos_opt();
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(0, 0, 0)?
        .and_utc()
        .timestamp_nanos_opt()
}

/// Splits top-level `AND`ed time comparisons off the condition.
/// Whether `cond` puts a time comparison under an `OR` (1.x then selects nothing).
pub(crate) fn time_under_or(cond: Option<&Expr>) -> bool {
    match cond {
        Some(Expr::Paren(inner)) => time_under_or(Some(inner)),
        Some(Expr::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        }) => time_under_or(Some(lhs)) || time_under_or(Some(rhs)),
        Some(
            e @ Expr::Binary {
                op: BinaryOp::Or, ..
            },
        ) => {
            let mut has_time = false;
            e.walk(&mut |x| has_time |= is_time_ref(x));
            has_time
        }
        _ => false,
    }
}

pub(crate) fn split_time_range(
    cond: Option<&Expr>,
    now: i64,
) -> Result<(TimeRange, Option<Expr>), ExecError> {
    let mut range = TimeRange::ALL;
    let Some(cond) = cond else {
        return Ok((range, None));
    };
    pub(super) fn walk(
        e: &Expr,
        now: i64,
        range: &mut TimeRange,
        rest: &mut Vec<Expr>,
    ) -> Result<(), ExecError> {
        match e {
            Expr::Paren(inner) => walk(inner, now, range, rest),
            Expr::Binary {
                op: BinaryOp::And,
                lhs,
                rhs,
            } => {
                walk(lhs, now, range, rest)?;
                walk(rhs, now, range, rest)
            }
            Expr::Binary { op, lhs, rhs }
                if op.is_comparison() && (is_time_ref(lhs) || is_time_ref(rhs)) =>
            {
                let (op, other) = if is_time_ref(lhs) {
                    (*op, rhs)
                } else {
                    (flip(*op), lhs)
                };
                let t = time_value(other, now)?;
                match op {
                    BinaryOp::Gt => range.min = range.min.max(t.saturating_add(1)),
                    BinaryOp::GtEq => range.min = range.min.max(t),
                    BinaryOp::Lt => range.max = range.max.min(t.saturating_sub(1)),
                    BinaryOp::LtEq => range.max = range.max.min(t),
                    BinaryOp::Eq => {
                        range.min = range.min.max(t);
                        range.max = range.max.min(t);
                    }
                    _ => return Err(query_err("invalid time comparison operator")),
                }
                Ok(())
            }
            other => {
                let mut has_time = false;
                other.walk(&mut |e| has_time |= is_time_ref(e));
                if has_time {
                    return Err(query_err("time conditions must be combined with AND"));
                }
                rest.push(other.clone());
                Ok(())
            }
        }
    }
    let mut rest = Vec::new();
    walk(cond, now, &mut range, &mut rest)?;
    let rest = rest.into_iter().reduce(|a, b| Expr::Binary {
        op: BinaryOp::And,
        lhs: Box::new(a),
        rhs: Box::new(b),
    });
    Ok((range, rest))
}

pub(super) fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        o => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ranges_from_conditions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:01:00Z"), Some(60_000_000_000));
        assert_eq!(parse_rfc3339("2020-01-01"), Some(1_577_836_800_000_000_000));
        let q = crate::influxql::parse_query(
            "SELECT v FROM m WHERE time >= 10 AND host = 'a' AND time < now() - 1s",
        )
        .unwrap();
        let crate::influxql::Statement::Select(s) = &q[0] else {
            panic!()
        };
        let (r, rest) = split_time_range(s.condition.as_ref(), 5_000_000_000).unwrap();
        assert_eq!(
            r,
            TimeRange {
                min: 10,
                max: 3_999_999_999
            }
        );
        assert_eq!(rest.unwrap().to_string(), "host = 'a'");
    }
}
