//! 1.x's checks of a statement's fields before it runs: each field reads a variable, does not
//! mix an aggregate with a bare variable, and combines only types that go together
//! (`type error: s::string + 1: incompatible types: string and integer`).
//!
//! The type rules are those of 1.x's `TypeValuerEval`: a variable has its field's type (its
//! cast's, when cast), `tag` for a tag, none when the measurements lack it; a call has its
//! function's result type; an operator is checked on the two sides' types, and an unknown side
//! takes the other's. Arithmetic needs two numbers; `&`, `|` and `^` two integers, or a boolean
//! on the left; comparisons and `AND`/`OR` are not checked. Checked once the measurements are
//! loaded (the types are theirs), as 1.x checks after mapping the sources' types.

use ingester::{FieldType, TableSchema};

use super::functions::{self, Returns};
use super::query_err;
use crate::executor::ExecError;
use crate::influxql::{BinaryOp, Expr, SelectStatement, VarType};

/// A type as 1.x's checks name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Unknown,
    Float,
    Integer,
    Unsigned,
    String,
    Boolean,
    Tag,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Unknown => "unknown",
            Ty::Float => "float",
            Ty::Integer => "integer",
            Ty::Unsigned => "unsigned",
            Ty::String => "string",
            Ty::Boolean => "boolean",
            Ty::Tag => "tag",
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Ty::Float | Ty::Integer | Ty::Unsigned)
    }

    fn of_field(t: FieldType) -> Self {
        match t {
            FieldType::Float => Ty::Float,
            FieldType::Integer => Ty::Integer,
            FieldType::Unsigned => Ty::Unsigned,
            FieldType::String => Ty::String,
            FieldType::Boolean => Ty::Boolean,
        }
    }
}

/// The checks 1.x makes when it compiles a statement, before any source is read: every field
/// reads a variable, and none combines an aggregate with a bare variable.
pub(super) fn check_fields(stmt: &SelectStatement) -> Result<(), ExecError> {
    for f in &stmt.fields {
        // A function of a literal: 1.x names the function whose argument is no field.
        let mut literal = None;
        f.expr.walk(&mut |e| {
            if let Expr::Call { name, args } = e
                && literal.is_none()
                && (functions::is_aggregate(name) || functions::is_transform(name))
                // 1.x checks a sample's count before its field.
                && (name != "sample" || matches!(args.get(1), Some(Expr::Integer(n)) if *n > 0))
                && let Some(
                    arg @ (Expr::Integer(_)
                    | Expr::Number(_)
                    | Expr::String(_)
                    | Expr::Boolean(_)
                    | Expr::Duration(_)),
                ) = args.first()
            {
                literal = Some(if name == "top" || name == "bottom" {
                    format!("expected first argument to be a field in {name}(), found {arg}")
                } else {
                    format!("expected field argument in {name}()")
                });
            }
        });
        if let Some(text) = literal {
            return Err(query_err(text));
        }
        let mut reads = false;
        f.expr.walk(&mut |e| {
            reads |= matches!(e, Expr::VarRef { .. } | Expr::Wildcard(_) | Expr::Regex(_))
        });
        if !reads {
            return Err(query_err("field must contain at least one variable"));
        }
        if f.expr.has_call() && bare_var(&f.expr) {
            return Err(query_err(
                "mixing aggregate and non-aggregate queries is not supported",
            ));
        }
    }
    Ok(())
}

/// Whether `e` reads a variable outside any call.
fn bare_var(e: &Expr) -> bool {
    match e {
        Expr::VarRef { .. } => true,
        Expr::Paren(inner) => bare_var(inner),
        Expr::Binary { lhs, rhs, .. } => bare_var(lhs) || bare_var(rhs),
        _ => false,
    }
}

/// 1.x's type check of every field against the loaded measurements' columns, and its refusal
/// of transformations, `top` and `bottom` over strings and booleans (named after 1.x's
/// iterators: `unsupported derivative iterator type: *query.stringInterruptIterator`).
pub(super) fn check_types(stmt: &SelectStatement, schema: &TableSchema) -> Result<(), ExecError> {
    for f in &stmt.fields {
        if let Expr::Call { name, args } = &f.expr
            && let Some(Expr::VarRef { name: field, typ }) = args.first()
        {
            let spaced;
            let label = match name.as_str() {
                "derivative" | "non_negative_derivative" => Some("derivative"),
                "difference" | "non_negative_difference" => Some("difference"),
                "cumulative_sum" => Some("cumulative sum"),
                "moving_average" => Some("moving average"),
                "top" | "bottom" => Some(name.as_str()),
                _ if crate::plan::technical::TaFunc::from_name(name).is_some() => {
                    spaced = name.replace('_', " ");
                    Some(spaced.as_str())
                }
                _ => None,
            };
            let kind = match var_type(field, *typ, schema) {
                Ty::String => Some("string"),
                Ty::Boolean => Some("boolean"),
                _ => None,
            };
            if let (Some(label), Some(kind)) = (label, kind) {
                return Err(query_err(format!(
                    "unsupported {label} iterator type: *query.{kind}InterruptIterator"
                )));
            }
        }
        // A forecast of strings or booleans: 1.x's holt_winters names its elapsed iterator.
        if let Expr::Call { name, args } = &f.expr
            && functions::is_forecast(name)
            && let Some(inner @ Expr::Call { .. }) = args.first()
        {
            let kind = match type_of(inner, schema)? {
                Ty::String => Some("string"),
                Ty::Boolean => Some("boolean"),
                _ => None,
            };
            if let Some(kind) = kind {
                return Err(query_err(format!(
                    "unsupported elapsed iterator type: *query.{kind}InterruptIterator"
                )));
            }
        }
        type_of(&f.expr, schema)?;
    }
    Ok(())
}

fn var_type(name: &str, cast: Option<VarType>, schema: &TableSchema) -> Ty {
    match cast {
        Some(VarType::Float) => Ty::Float,
        Some(VarType::Integer) => Ty::Integer,
        Some(VarType::Unsigned) => Ty::Unsigned,
        Some(VarType::String) => Ty::String,
        Some(VarType::Boolean) => Ty::Boolean,
        Some(VarType::Tag) => Ty::Tag,
        Some(VarType::Field) => schema
            .fields
            .get(name)
            .map_or(Ty::Unknown, |t| Ty::of_field(*t)),
        None => match schema.fields.get(name) {
            Some(t) => Ty::of_field(*t),
            None if schema.tags.contains(name) => Ty::Tag,
            None => Ty::Unknown,
        },
    }
}

fn type_of(e: &Expr, schema: &TableSchema) -> Result<Ty, ExecError> {
    Ok(match e {
        Expr::VarRef { name, typ } => var_type(name, *typ, schema),
        Expr::Integer(_) | Expr::Duration(_) => Ty::Integer,
        Expr::Number(_) => Ty::Float,
        Expr::String(_) => Ty::String,
        Expr::Boolean(_) => Ty::Boolean,
        Expr::Paren(inner) => type_of(inner, schema)?,
        Expr::Call { name, args } => {
            let arg = match args.first() {
                Some(a) => type_of(a, schema)?,
                None => Ty::Unknown,
            };
            for a in args.iter().skip(1) {
                type_of(a, schema)?;
            }
            match functions::returns(name) {
                Some(Returns::Float) => Ty::Float,
                Some(Returns::Integer) => Ty::Integer,
                Some(Returns::Arg) => arg,
                None => Ty::Unknown,
            }
        }
        Expr::Binary { op, lhs, rhs } => {
            let (l, r) = (type_of(lhs, schema)?, type_of(rhs, schema)?);
            binary(*op, l, r).ok_or_else(|| {
                query_err(format!(
                    "type error: {}: incompatible types: {} and {}",
                    typed(e, schema),
                    l.name(),
                    r.name()
                ))
            })?
        }
        Expr::Regex(_) | Expr::Wildcard(_) | Expr::BoundParam(_) => Ty::Unknown,
    })
}

/// The type `l op r` has, `None` when 1.x finds the two incompatible.
fn binary(op: BinaryOp, l: Ty, r: Ty) -> Option<Ty> {
    use BinaryOp::*;
    if l == Ty::Unknown {
        return Some(r);
    }
    if r == Ty::Unknown {
        return Some(l);
    }
    match op {
        Add | Sub | Mul | Div | Mod => {
            if !(l.numeric() && r.numeric()) {
                return None;
            }
            Some(if l == Ty::Float || r == Ty::Float || op == Div {
                Ty::Float
            } else {
                l
            })
        }
        BitAnd | BitOr | BitXor => match (l, r) {
            (Ty::Boolean, _) => Some(Ty::Boolean),
            (Ty::Integer, Ty::Integer) | (Ty::Unsigned, Ty::Unsigned) => Some(l),
            (Ty::Integer, Ty::Unsigned) | (Ty::Unsigned, Ty::Integer) => Some(Ty::Unsigned),
            _ => None,
        },
        _ => Some(Ty::Boolean),
    }
}

/// Whether `op` computes a number (or bits) rather than a truth value.
pub(super) fn is_arithmetic(op: BinaryOp) -> bool {
    use BinaryOp::*;
    matches!(op, Add | Sub | Mul | Div | Mod | BitAnd | BitOr | BitXor)
}

/// The type of `e` where a type error is not this check's to report (a condition's operands:
/// an incompatible pair inside is lowered to null).
fn loose_type(e: &Expr, schema: &TableSchema) -> Ty {
    type_of(e, schema).unwrap_or(Ty::Unknown)
}

pub(super) fn is_boolean(e: &Expr, schema: &TableSchema) -> bool {
    loose_type(e, schema) == Ty::Boolean
}

/// A string, boolean or tag (a math function of one is null in 1.x).
pub(super) fn not_numeric(e: &Expr, schema: &TableSchema) -> bool {
    matches!(loose_type(e, schema), Ty::String | Ty::Boolean | Ty::Tag)
}

/// How a binary operator of a condition is evaluated, as 1.x evaluates it on points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InCondition {
    AsIs,
    /// Never true: values of types that do not compare (`f > 'x'`, `s > 1`, `f =~ /x/`),
    /// or strings and booleans ordered (`s > 'a'`: 1.x orders only numbers).
    False,
    /// No value: arithmetic of types that do not combine (`s + 1`).
    Null,
}

pub(super) fn in_condition(
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
    schema: &TableSchema,
) -> InCondition {
    use BinaryOp::*;
    // A name the measurement lacks is an empty tag in a condition (1.x compares it as '').
    let side = |e: &Expr| match loose_type(e, schema) {
        Ty::Unknown if matches!(e, Expr::VarRef { name, .. } if !name.eq_ignore_ascii_case("time")) => {
            Ty::Tag
        }
        t => t,
    };
    // `now()` outside a time condition is a time, which compares with no value (1.x).
    let is_now =
        |e: &Expr| matches!(e, Expr::Call { name, args } if name == "now" && args.is_empty());
    if is_now(lhs) || is_now(rhs) {
        return InCondition::False;
    }
    let (l, r) = (side(lhs), side(rhs));
    let stringy = |t: Ty| matches!(t, Ty::String | Ty::Tag);
    match op {
        EqRegex | NotEqRegex if l.numeric() || l == Ty::Boolean => InCondition::False,
        Eq | NotEq | Lt | LtEq | Gt | GtEq => {
            let equality = matches!(op, Eq | NotEq);
            if l == Ty::Unknown || r == Ty::Unknown || (l.numeric() && r.numeric()) {
                InCondition::AsIs
            } else if (stringy(l) && stringy(r)) || (l == Ty::Boolean && r == Ty::Boolean) {
                if equality {
                    InCondition::AsIs
                } else {
                    InCondition::False
                }
            } else {
                InCondition::False
            }
        }
        _ if is_arithmetic(op) && binary(op, l, r).is_none() => InCondition::Null,
        _ => InCondition::AsIs,
    }
}

/// `e` as 1.x prints it in a type error: every variable with its type (`s::string`).
fn typed(e: &Expr, schema: &TableSchema) -> String {
    let mut e = e.clone();
    annotate(&mut e, schema);
    e.to_string()
}

fn annotate(e: &mut Expr, schema: &TableSchema) {
    match e {
        Expr::VarRef { name, typ } if typ.is_none() => {
            *typ = match var_type(name, None, schema) {
                Ty::Float => Some(VarType::Float),
                Ty::Integer => Some(VarType::Integer),
                Ty::Unsigned => Some(VarType::Unsigned),
                Ty::String => Some(VarType::String),
                Ty::Boolean => Some(VarType::Boolean),
                Ty::Tag => Some(VarType::Tag),
                Ty::Unknown => None,
            }
        }
        Expr::Paren(inner) => annotate(inner, schema),
        Expr::Binary { lhs, rhs, .. } => {
            annotate(lhs, schema);
            annotate(rhs, schema);
        }
        Expr::Call { args, .. } => args.iter_mut().for_each(|a| annotate(a, schema)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> TableSchema {
        let mut s = TableSchema::default();
        s.tags.insert("host".into());
        for (n, t) in [
            ("f", FieldType::Float),
            ("g", FieldType::Integer),
            ("s", FieldType::String),
            ("b", FieldType::Boolean),
        ] {
            s.fields.insert(n.into(), t);
        }
        s
    }

    fn check(q: &str) -> Result<(), String> {
        let stmt = match crate::influxql::parse_query(q).unwrap().pop() {
            Some(crate::influxql::Statement::Select(s)) => *s,
            other => panic!("{other:?}"),
        };
        check_fields(&stmt)
            .and_then(|()| check_types(&stmt, &schema()))
            .map_err(|e| e.to_string())
    }

    /// The texts InfluxDB 1.6.7 answered for the same statements over the same columns.
    #[test]
    fn type_errors_read_like_1x() {
        for (q, want) in [
            (
                "SELECT s + 'x' FROM m",
                "type error: s::string + 'x': incompatible types: string and string",
            ),
            (
                "SELECT s + 1 FROM m",
                "type error: s::string + 1: incompatible types: string and integer",
            ),
            (
                "SELECT f + s FROM m",
                "type error: f::float + s::string: incompatible types: float and string",
            ),
            (
                "SELECT host + 1 FROM m",
                "type error: host::tag + 1: incompatible types: tag and integer",
            ),
            (
                "SELECT b + 1 FROM m",
                "type error: b::boolean + 1: incompatible types: boolean and integer",
            ),
            (
                "SELECT -s FROM m",
                "type error: -1 * s::string: incompatible types: integer and string",
            ),
            (
                "SELECT mean(f) * 'x' FROM m",
                "type error: mean(f::float) * 'x': incompatible types: float and string",
            ),
            (
                "SELECT f::string + 'x' FROM m",
                "type error: f::string + 'x': incompatible types: string and string",
            ),
            (
                "SELECT max(f) - min(s) FROM m",
                "type error: max(f::float) - min(s::string): incompatible types: float and string",
            ),
            (
                "SELECT f & g FROM m",
                "type error: f::float & g::integer: incompatible types: float and integer",
            ),
            (
                "SELECT g ^ f FROM m",
                "type error: g::integer ^ f::float: incompatible types: integer and float",
            ),
            (
                "SELECT s & s FROM m",
                "type error: s::string & s::string: incompatible types: string and string",
            ),
            (
                "SELECT mean(f) + s FROM m",
                "mixing aggregate and non-aggregate queries is not supported",
            ),
            (
                "SELECT 1 + 1 FROM m",
                "field must contain at least one variable",
            ),
            (
                "SELECT f, 1 FROM m",
                "field must contain at least one variable",
            ),
            (
                "SELECT derivative(s) FROM m",
                "unsupported derivative iterator type: *query.stringInterruptIterator",
            ),
            (
                "SELECT non_negative_difference(b) FROM m",
                "unsupported difference iterator type: *query.booleanInterruptIterator",
            ),
            (
                "SELECT cumulative_sum(s) FROM m",
                "unsupported cumulative sum iterator type: *query.stringInterruptIterator",
            ),
            (
                "SELECT moving_average(s, 2) FROM m",
                "unsupported moving average iterator type: *query.stringInterruptIterator",
            ),
            (
                "SELECT top(b, 1) FROM m",
                "unsupported top iterator type: *query.booleanInterruptIterator",
            ),
            (
                "SELECT bottom(s, 1) FROM m",
                "unsupported bottom iterator type: *query.stringInterruptIterator",
            ),
        ] {
            assert_eq!(check(q), Err(want.to_string()), "{q}");
        }
        for q in [
            "SELECT f + g, g % 2, g & 1, b & true, b | 1, f / g FROM m",
            "SELECT mean(f) + mean(g), count(s) * 2, nope + 1 FROM m",
            "SELECT f FROM m WHERE s + 1 > 1",
            "SELECT *, count(*) FROM m",
        ] {
            assert_eq!(check(q), Ok(()), "{q}");
        }
    }
}
