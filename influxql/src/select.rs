//! The `SELECT` statement and InfluxQL expressions.

use std::fmt;

use super::ast::{format_duration_literal, quote_ident};

/// A `::type` cast on a variable reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    Field,
    Tag,
    Float,
    Integer,
    Unsigned,
    String,
    Boolean,
}

impl VarType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "field" => Self::Field,
            "tag" => Self::Tag,
            "float" => Self::Float,
            "integer" => Self::Integer,
            "unsigned" => Self::Unsigned,
            "string" => Self::String,
            "boolean" => Self::Boolean,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Field => "field",
            Self::Tag => "tag",
            Self::Float => "float",
            Self::Integer => "integer",
            Self::Unsigned => "unsigned",
            Self::String => "string",
            Self::Boolean => "boolean",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    BitAnd,
    BitOr,
    BitXor,
    And,
    Or,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    EqRegex,
    NotEqRegex,
}

impl BinaryOp {
    pub fn from_token(op: &str) -> Option<Self> {
        Some(match op {
            "+" => Self::Add,
            "-" => Self::Sub,
            "*" => Self::Mul,
            "/" => Self::Div,
            "%" => Self::Mod,
            "&" => Self::BitAnd,
            "|" => Self::BitOr,
            "^" => Self::BitXor,
            "=" => Self::Eq,
            "!=" | "<>" => Self::NotEq,
            "<" => Self::Lt,
            "<=" => Self::LtEq,
            ">" => Self::Gt,
            ">=" => Self::GtEq,
            "=~" => Self::EqRegex,
            "!~" => Self::NotEqRegex,
            _ => return None,
        })
    }

    /// 1.x's precedence: OR 1, AND 2, comparisons 4, + - | ^ 5, * / % & 6.
    pub fn precedence(self) -> u8 {
        match self {
            Self::Or => 1,
            Self::And => 2,
            Self::Eq
            | Self::NotEq
            | Self::Lt
            | Self::LtEq
            | Self::Gt
            | Self::GtEq
            | Self::EqRegex
            | Self::NotEqRegex => 4,
            Self::Add | Self::Sub | Self::BitOr | Self::BitXor => 5,
            Self::Mul | Self::Div | Self::Mod | Self::BitAnd => 6,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Mod => "%",
            Self::BitAnd => "&",
            Self::BitOr => "|",
            Self::BitXor => "^",
            Self::And => "AND",
            Self::Or => "OR",
            Self::Eq => "=",
            Self::NotEq => "!=",
            Self::Lt => "<",
            Self::LtEq => "<=",
            Self::Gt => ">",
            Self::GtEq => ">=",
            Self::EqRegex => "=~",
            Self::NotEqRegex => "!~",
        }
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 4
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    VarRef {
        name: String,
        typ: Option<VarType>,
    },
    Call {
        name: String,
        args: Vec<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Paren(Box<Expr>),
    Integer(i64),
    Number(f64),
    String(String),
    Boolean(bool),
    /// Nanoseconds.
    Duration(i64),
    Regex(String),
    /// `*`, optionally `*::field` / `*::tag`.
    Wildcard(Option<VarType>),
    BoundParam(String),
}

impl Expr {
    /// Walks every sub-expression.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Call { args, .. } => args.iter().for_each(|a| a.walk(f)),
            Expr::Binary { lhs, rhs, .. } => {
                lhs.walk(f);
                rhs.walk(f);
            }
            Expr::Paren(e) => e.walk(f),
            _ => {}
        }
    }

    /// Whether a function is called anywhere in it (1.x's test for a raw query).
    pub fn has_call(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| found |= matches!(e, Expr::Call { .. }));
        found
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub expr: Expr,
    pub alias: Option<String>,
}

/// `db.rp.name`, any part may be absent; the name may be a regex.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Measurement {
    pub database: Option<String>,
    pub retention_policy: Option<String>,
    pub name: Option<String>,
    pub regex: Option<String>,
    /// `:MEASUREMENT` in an `INTO` target: every source measurement writes into its own name.
    pub back_reference: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Measurement(Measurement),
    Subquery(Box<SelectStatement>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Dimension {
    Time { interval: i64, offset: Option<i64> },
    Tag(String),
    Regex(String),
    Wildcard,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Fill {
    #[default]
    Null,
    None,
    Previous,
    Linear,
    Number(f64),
    Integer(i64),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SelectStatement {
    pub fields: Vec<Field>,
    pub into: Option<Measurement>,
    pub sources: Vec<Source>,
    pub condition: Option<Expr>,
    pub dimensions: Vec<Dimension>,
    pub fill: Option<Fill>,
    pub order_desc: bool,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    pub slimit: Option<u64>,
    pub soffset: Option<u64>,
    pub timezone: Option<String>,
}

pub(crate) fn quote_string(s: &str) -> String {
    format!(
        "'{}'",
        s.replace('\\', "\\\\")
            .replace('\'', "\\'")
            .replace('\n', "\\n")
    )
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::VarRef { name, typ } => {
                f.write_str(&quote_ident(name))?;
                if let Some(t) = typ {
                    write!(f, "::{}", t.name())?;
                }
                Ok(())
            }
            Expr::Call { name, args } => {
                write!(f, "{name}(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            Expr::Binary { op, lhs, rhs } => write!(f, "{lhs} {} {rhs}", op.symbol()),
            Expr::Paren(e) => write!(f, "({e})"),
            Expr::Integer(n) => write!(f, "{n}"),
            Expr::Number(n) => {
                // InfluxQL has no exponent notation: print every digit, keep a decimal point.
                let s = format!("{n}");
                if s.contains('.') {
                    f.write_str(&s)
                } else {
                    write!(f, "{s}.0")
                }
            }
            Expr::String(s) => f.write_str(&quote_string(s)),
            Expr::Boolean(b) => write!(f, "{b}"),
            Expr::Duration(d) => f.write_str(&format_duration_literal(*d)),
            Expr::Regex(r) => write!(f, "/{}/", r.replace('/', "\\/")),
            Expr::Wildcard(t) => match t {
                Some(t) => write!(f, "*::{}", t.name()),
                None => f.write_str("*"),
            },
            Expr::BoundParam(p) => write!(f, "${p}"),
        }
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db) = &self.database {
            write!(f, "{}.", quote_ident(db))?;
        }
        if let Some(rp) = &self.retention_policy {
            write!(f, "{}.", quote_ident(rp))?;
        } else if self.database.is_some() {
            f.write_str(".")?;
        }
        if self.back_reference {
            return f.write_str(":MEASUREMENT");
        }
        match (&self.name, &self.regex) {
            (_, Some(r)) => write!(f, "/{}/", r.replace('/', "\\/")),
            (Some(n), None) => f.write_str(&quote_ident(n)),
            (None, None) => Ok(()),
        }
    }
}

impl fmt::Display for SelectStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        for (i, fld) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", fld.expr)?;
            if let Some(a) = &fld.alias {
                write!(f, " AS {}", quote_ident(a))?;
            }
        }
        if let Some(into) = &self.into {
            write!(f, " INTO {into}")?;
        }
        f.write_str(" FROM ")?;
        for (i, s) in self.sources.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match s {
                Source::Measurement(m) => write!(f, "{m}")?,
                Source::Subquery(q) => write!(f, "({q})")?,
            }
        }
        if let Some(c) = &self.condition {
            write!(f, " WHERE {c}")?;
        }
        if !self.dimensions.is_empty() {
            f.write_str(" GROUP BY ")?;
            for (i, d) in self.dimensions.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                match d {
                    Dimension::Time { interval, offset } => {
                        write!(f, "time({}", format_duration_literal(*interval))?;
                        if let Some(o) = offset {
                            write!(f, ", {}", format_duration_literal(*o))?;
                        }
                        f.write_str(")")?;
                    }
                    Dimension::Tag(t) => f.write_str(&quote_ident(t))?,
                    Dimension::Regex(r) => write!(f, "/{r}/")?,
                    Dimension::Wildcard => f.write_str("*")?,
                }
            }
        }
        match &self.fill {
            None => {}
            Some(Fill::Null) => f.write_str(" fill(null)")?,
            Some(Fill::None) => f.write_str(" fill(none)")?,
            Some(Fill::Previous) => f.write_str(" fill(previous)")?,
            Some(Fill::Linear) => f.write_str(" fill(linear)")?,
            Some(Fill::Number(n)) => write!(f, " fill({n})")?,
            Some(Fill::Integer(n)) => write!(f, " fill({n})")?,
        }
        if self.order_desc {
            f.write_str(" ORDER BY time DESC")?;
        }
        for (kw, v) in [
            ("LIMIT", self.limit),
            ("OFFSET", self.offset),
            ("SLIMIT", self.slimit),
            ("SOFFSET", self.soffset),
        ] {
            if let Some(v) = v {
                write!(f, " {kw} {v}")?;
            }
        }
        if let Some(tz) = &self.timezone {
            write!(f, " TZ({})", quote_string(tz))?;
        }
        Ok(())
    }
}
