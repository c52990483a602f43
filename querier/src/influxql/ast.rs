//! InfluxQL statements. `Display` gives the canonical text 1.x prints (for example in the
//! warning for a write statement sent with GET).

use std::fmt;

/// `WITH DURATION .. REPLICATION .. SHARD DURATION .. NAME ..` of `CREATE DATABASE`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicyClause {
    pub duration: Option<i64>,
    pub replication: Option<u32>,
    pub shard_duration: Option<i64>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateDatabase { name: String, rp: Option<RetentionPolicyClause> },
    DropDatabase { name: String },
    ShowDatabases,
    ShowRetentionPolicies { database: Option<String> },
    ShowMeasurements { database: Option<String>, limit: Option<u64>, offset: Option<u64> },
    Select(Box<super::select::SelectStatement>),
}

impl Statement {
    /// Statements that change something; 1.x warns when they arrive with GET.
    pub fn is_write(&self) -> bool {
        match self {
            Self::CreateDatabase { .. } | Self::DropDatabase { .. } => true,
            Self::Select(s) => s.into.is_some(),
            _ => false,
        }
    }
}

/// Quotes an identifier when 1.x would.
pub fn quote_ident(s: &str) -> String {
    let bare = s.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !super::parser::is_keyword(s);
    if bare { s.to_string() } else { format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")) }
}

/// Formats nanoseconds as an InfluxQL duration literal in the largest unit that divides it.
pub fn format_duration_literal(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    for (unit, n) in [("w", 604_800_000_000_000i64), ("d", 86_400_000_000_000), ("h", 3_600_000_000_000), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000), ("u", 1_000)] {
        if d % n == 0 {
            return format!("{}{unit}", d / n);
        }
    }
    format!("{d}ns")
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateDatabase { name, rp } => {
                write!(f, "CREATE DATABASE {}", quote_ident(name))?;
                if let Some(rp) = rp {
                    f.write_str(" WITH")?;
                    if let Some(d) = rp.duration {
                        write!(f, " DURATION {}", format_duration_literal(d))?;
                    }
                    if let Some(r) = rp.replication {
                        write!(f, " REPLICATION {r}")?;
                    }
                    if let Some(d) = rp.shard_duration {
                        write!(f, " SHARD DURATION {}", format_duration_literal(d))?;
                    }
                    if let Some(n) = &rp.name {
                        write!(f, " NAME {}", quote_ident(n))?;
                    }
                }
                Ok(())
            }
            Self::DropDatabase { name } => write!(f, "DROP DATABASE {}", quote_ident(name)),
            Self::Select(s) => write!(f, "{s}"),
            Self::ShowDatabases => f.write_str("SHOW DATABASES"),
            Self::ShowRetentionPolicies { database } => {
                f.write_str("SHOW RETENTION POLICIES")?;
                if let Some(db) = database {
                    write!(f, " ON {}", quote_ident(db))?;
                }
                Ok(())
            }
            Self::ShowMeasurements { database, limit, offset } => {
                f.write_str("SHOW MEASUREMENTS")?;
                if let Some(db) = database {
                    write!(f, " ON {}", quote_ident(db))?;
                }
                if let Some(l) = limit {
                    write!(f, " LIMIT {l}")?;
                }
                if let Some(o) = offset {
                    write!(f, " OFFSET {o}")?;
                }
                Ok(())
            }
        }
    }
}
