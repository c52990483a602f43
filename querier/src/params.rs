//! Bound parameters: `$name` in a query, values from the `params` JSON object. As in 1.x, they
//! are bound when the query is parsed, in every statement, and a missing one fails the query.

use serde_json::{Map, Value};

use crate::influxql::{Expr, SelectStatement, Source, Statement};

/// A JSON value as an InfluxQL literal: plain JSON, or 1.x's typed form `{"string": "x"}`,
/// `{"integer": 1}`, `{"float": 1.5}`, `{"boolean": true}`, `{"duration": "1h"}`.
fn literal(name: &str, v: &Value) -> Result<Expr, String> {
    let bad = || format!("unable to bind parameter {name} with value {v}");
    Ok(match v {
        Value::String(s) => Expr::String(s.clone()),
        Value::Bool(b) => Expr::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Expr::Integer(i),
            None => Expr::Number(n.as_f64().ok_or_else(bad)?),
        },
        Value::Object(typed) if typed.len() == 1 => {
            let (kind, inner) = typed.iter().next().ok_or_else(bad)?;
            match (kind.as_str(), inner) {
                ("string" | "str", Value::String(s)) => Expr::String(s.clone()),
                ("integer" | "int", v) => Expr::Integer(v.as_i64().ok_or_else(bad)?),
                ("float" | "number", v) => Expr::Number(v.as_f64().ok_or_else(bad)?),
                ("boolean" | "bool", Value::Bool(b)) => Expr::Boolean(*b),
                ("duration", Value::String(d)) => {
                    Expr::Duration(crate::influxql::lexer::parse_duration(d).ok_or_else(bad)?)
                }
                ("duration", v) => Expr::Duration(v.as_i64().ok_or_else(bad)?),
                _ => return Err(bad()),
            }
        }
        _ => return Err(bad()),
    })
}

fn bind_expr(e: &mut Expr, p: &Map<String, Value>) -> Result<(), String> {
    match e {
        Expr::BoundParam(name) => {
            let v = p
                .get(name.as_str())
                .ok_or_else(|| format!("missing parameter: {name}"))?;
            *e = literal(name, v)?;
        }
        Expr::Call { args, .. } => args.iter_mut().try_for_each(|a| bind_expr(a, p))?,
        Expr::Binary { lhs, rhs, .. } => {
            bind_expr(lhs, p)?;
            bind_expr(rhs, p)?;
        }
        Expr::Paren(inner) => bind_expr(inner, p)?,
        _ => {}
    }
    Ok(())
}

fn bind_opt(e: &mut Option<Expr>, p: &Map<String, Value>) -> Result<(), String> {
    e.as_mut().map_or(Ok(()), |e| bind_expr(e, p))
}

fn bind_select(s: &mut SelectStatement, p: &Map<String, Value>) -> Result<(), String> {
    bind_opt(&mut s.condition, p)?;
    for f in &mut s.fields {
        bind_expr(&mut f.expr, p)?;
    }
    for src in &mut s.sources {
        if let Source::Subquery(inner) = src {
            bind_select(inner, p)?;
        }
    }
    Ok(())
}

/// Replaces every `$name` in `statements`; the error is 1.x's text (after `error parsing
/// query: `).
pub fn bind(statements: &mut [Statement], p: &Map<String, Value>) -> Result<(), String> {
    for s in statements {
        match s {
            Statement::Select(sel) | Statement::Explain { select: sel, .. } => bind_select(sel, p)?,
            Statement::ShowMeasurements { condition, .. }
            | Statement::DropSeries { condition, .. }
            | Statement::Delete { condition, .. } => bind_opt(condition, p)?,
            Statement::ShowTagKeys(f)
            | Statement::ShowFieldKeys(f)
            | Statement::ShowSeries(f)
            | Statement::ShowTagValues { filter: f, .. } => bind_opt(&mut f.condition, p)?,
            Statement::ShowCardinality { inner, .. } => {
                bind(std::slice::from_mut(inner.as_mut()), p)?
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(q: &str, params: serde_json::Value) -> Result<String, String> {
        let mut stmts = crate::influxql::parse_query(q).map_err(|e| e.to_string())?;
        bind(&mut stmts, params.as_object().unwrap())?;
        Ok(stmts
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("; "))
    }

    #[test]
    fn binds_plain_and_typed_values_everywhere() {
        let p =
            serde_json::json!({"h": "a", "n": 2, "t": {"duration": "1h"}, "s": {"string": "x"}});
        assert_eq!(
            bound("SELECT v * $n FROM (SELECT v FROM m WHERE host = $h) WHERE time > now() - $t; SHOW SERIES WHERE r = $s", p).unwrap(),
            "SELECT v * 2 FROM (SELECT v FROM m WHERE host = 'a') WHERE time > now() - 1h; SHOW SERIES WHERE r = 'x'"
        );
        assert_eq!(
            bound("SELECT v FROM m WHERE host = $x", serde_json::json!({})),
            Err("missing parameter: x".into())
        );
        assert!(
            bound(
                "SELECT v FROM m WHERE host = $h",
                serde_json::json!({"h": [1]})
            )
            .is_err()
        );
    }
}
