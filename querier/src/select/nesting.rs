//! Fields that combine several transformations (`derivative(f) + derivative(i)`), or a
//! `holt_winters` forecast with other functions (`holt_winters(mean(f), 2, 0) * 2`,
//! `derivative(holt_winters(...))`, `holt_winters(derivative(mean(f)), 2, 0)`), run as a
//! subquery: the inner statement computes each transformation or forecast as a column of its
//! own, the outer one combines them, as 1.x lines up the points of a field's calls by time.
//!
//! ```text
//!  SELECT derivative(f) + derivative(i) FROM m WHERE c GROUP BY host
//!    ─▶ SELECT "__nested0" + "__nested1" AS derivative_derivative
//!         FROM (SELECT derivative(f) AS "__nested0", derivative(i) AS "__nested1"
//!               FROM m WHERE c GROUP BY host)
//!         WHERE <c's time range> GROUP BY host
//! ```
//!
//! A row of the inner statement is a time at which one of the calls has a point; where another
//! has none, the combination is null there (1.x: `cumulative_sum(f) * difference(f)` is null
//! at the first point). A transformation around a forecast takes the forecast's points as its
//! input, per `GROUP BY` interval when it has no unit, as it would the buckets; a forecast of a
//! transformation fits the transformation's buckets.

use crate::influxql::{BinaryOp, Dimension, Expr, Field, SelectStatement, Source};

use super::time_range::TimeRange;
use super::{functions, query_err};
use crate::executor::ExecError;

/// The name of the inner statement's column `j`.
fn part(j: usize) -> String {
    format!("__nested{j}")
}

fn var(name: String) -> Expr {
    Expr::VarRef { name, typ: None }
}

/// Whether `e` is a transformation or forecast call.
fn is_windowed(e: &Expr) -> bool {
    matches!(e, Expr::Call { name, .. } if functions::is_transform(name) || functions::is_forecast(name))
}

/// Whether a field needs the subquery: two transformations or forecasts, or a forecast that is
/// not the whole field.
pub(super) fn needs_nesting(f: &Field) -> bool {
    let (mut transforms, mut forecasts) = (0, 0);
    f.expr.walk(&mut |e| {
        if let Expr::Call { name, .. } = e {
            transforms += usize::from(functions::is_transform(name));
            forecasts += usize::from(functions::is_forecast(name));
        }
    });
    let top_forecast = matches!(&f.expr, Expr::Call { name, .. } if functions::is_forecast(name));
    transforms > 1
        || (forecasts > 0 && (!top_forecast || forecasts > 1 || transforms > 0))
        || (transforms + forecasts > 0 && aggregate_outside_calls(&f.expr))
}

/// Whether an aggregate stands in `e` outside every transformation and forecast
/// (`moving_average(mean(f), 2) * count(f)`).
fn aggregate_outside_calls(e: &Expr) -> bool {
    match e {
        _ if is_windowed(e) => false,
        Expr::Call { name, .. } if functions::is_aggregate(name) => true,
        Expr::Call { args, .. } => args.iter().any(aggregate_outside_calls),
        Expr::Binary { lhs, rhs, .. } => {
            aggregate_outside_calls(lhs) || aggregate_outside_calls(rhs)
        }
        Expr::Paren(inner) => aggregate_outside_calls(inner),
        _ => false,
    }
}

/// The statement as a subquery when one of its fields needs it.
pub(super) fn as_subquery(
    stmt: &SelectStatement,
    range: TimeRange,
) -> Result<Option<SelectStatement>, ExecError> {
    if !stmt.fields.iter().any(needs_nesting) {
        return Ok(None);
    }
    let interval = stmt.dimensions.iter().find_map(|d| match d {
        Dimension::Time { interval, .. } if *interval > 0 => Some(*interval),
        _ => None,
    });
    let mut parts: Vec<Expr> = Vec::new();
    let mut outer_fields = Vec::with_capacity(stmt.fields.len());
    let mut outer_by_time = false;
    for f in &stmt.fields {
        let alias = f
            .alias
            .clone()
            .unwrap_or_else(|| super::column_name(&f.expr));
        // A field that needs no nesting is a column of the inner statement as it is.
        let expr = if needs_nesting(f) {
            outer_expr(&f.expr, &mut parts, interval, &mut outer_by_time)?
        } else {
            parts.push(f.expr.clone());
            var(part(parts.len() - 1))
        };
        outer_fields.push(Field {
            expr,
            alias: Some(alias),
        });
    }
    let inner = SelectStatement {
        fields: parts
            .into_iter()
            .enumerate()
            .map(|(j, expr)| Field {
                expr,
                alias: Some(part(j)),
            })
            .collect(),
        into: None,
        limit: None,
        offset: None,
        slimit: None,
        soffset: None,
        ..stmt.clone()
    };
    // The outer statement groups by the same tags; by time too when it forecasts.
    let dimensions = stmt
        .dimensions
        .iter()
        .filter(|d| outer_by_time || !matches!(d, Dimension::Time { .. }))
        .cloned()
        .collect();
    Ok(Some(SelectStatement {
        fields: outer_fields,
        into: stmt.into.clone(),
        sources: vec![Source::Subquery(Box::new(inner))],
        // The inner statement bounds what it reads; the outer one reads all it answers (a
        // forecast's points lie past the range), but buckets need the range.
        condition: if outer_by_time {
            time_condition(range)
        } else {
            None
        },
        dimensions,
        fill: None,
        order_desc: stmt.order_desc,
        limit: stmt.limit,
        offset: stmt.offset,
        slimit: stmt.slimit,
        soffset: stmt.soffset,
        timezone: stmt.timezone.clone(),
    }))
}

/// The outer statement's expression for `e`: each transformation or forecast at the top of
/// the arithmetic becomes a column of the inner statement.
fn outer_expr(
    e: &Expr,
    parts: &mut Vec<Expr>,
    interval: Option<i64>,
    by_time: &mut bool,
) -> Result<Expr, ExecError> {
    let take = |call: Expr, parts: &mut Vec<Expr>| {
        parts.push(call);
        var(part(parts.len() - 1))
    };
    Ok(match e {
        Expr::Call { name, args } if is_windowed(e) => {
            let inner_windowed = args.first().is_some_and(|a| {
                let mut found = false;
                a.walk(&mut |x| found |= is_windowed(x));
                found
            });
            if !inner_windowed {
                return Ok(take(e.clone(), parts));
            }
            if interval.is_none() {
                // 1.x: a call as the argument makes it an aggregate of buckets.
                return Err(query_err(format!(
                    "{name} aggregate requires a GROUP BY interval"
                )));
            }
            let arg = args[0].clone();
            if functions::is_forecast(name) {
                // A forecast of a transformation: the outer statement forecasts the inner
                // one's buckets (one value each).
                *by_time = true;
                let mut outer_args = vec![Expr::Call {
                    name: "last".into(),
                    args: vec![take(arg, parts)],
                }];
                outer_args.extend(args[1..].iter().cloned());
                return Ok(Expr::Call {
                    name: name.clone(),
                    args: outer_args,
                });
            }
            // A transformation of a forecast (or of another transformation): of the inner
            // column's points, per GROUP BY interval when it names no unit.
            let mut outer_args = vec![outer_expr(&arg, parts, interval, by_time)?];
            outer_args.extend(args[1..].iter().cloned());
            let unitless = matches!(name.as_str(), "derivative" | "non_negative_derivative")
                && args.len() == 1;
            if let (true, Some(i)) = (unitless, interval) {
                outer_args.push(Expr::Duration(i));
            }
            Expr::Call {
                name: name.clone(),
                args: outer_args,
            }
        }
        // An aggregate beside them is a column of the inner statement too.
        Expr::Call { name, .. } if functions::is_aggregate(name) => take(e.clone(), parts),
        Expr::Call { name, args } => Expr::Call {
            name: name.clone(),
            args: args
                .iter()
                .map(|a| outer_expr(a, parts, interval, by_time))
                .collect::<Result<_, _>>()?,
        },
        Expr::Binary { op, lhs, rhs } => Expr::Binary {
            op: *op,
            lhs: Box::new(outer_expr(lhs, parts, interval, by_time)?),
            rhs: Box::new(outer_expr(rhs, parts, interval, by_time)?),
        },
        Expr::Paren(inner) => Expr::Paren(Box::new(outer_expr(inner, parts, interval, by_time)?)),
        other => other.clone(),
    })
}

/// `time >= min AND time <= max` of the statement's range (none when unbounded).
fn time_condition(range: TimeRange) -> Option<Expr> {
    let time = || var("time".into());
    let bound = |op, t: i64| Expr::Binary {
        op,
        lhs: Box::new(time()),
        rhs: Box::new(Expr::Integer(t)),
    };
    let lower = (range.min != i64::MIN).then(|| bound(BinaryOp::GtEq, range.min));
    let upper = (range.max != i64::MAX).then(|| bound(BinaryOp::LtEq, range.max));
    match (lower, upper) {
        (Some(l), Some(u)) => Some(Expr::Binary {
            op: BinaryOp::And,
            lhs: Box::new(l),
            rhs: Box::new(u),
        }),
        (l, u) => l.or(u),
    }
}
