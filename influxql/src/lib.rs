//! # influxql: the InfluxQL language of InfluxDB 1.x
//!
//! This crate owns the text of the query language: the scanner ([`lexer`]), the statements
//! ([`ast`], [`select`]) and the recursive-descent parser ([`parser`]), with 1.x's error texts
//! and positions (`found X, expected Y at line L, char C`).
//!
//! ```text
//!   q text ──tokenize──▶ [Token] ──parse_query──▶ [Statement] ──Display──▶ canonical text
//! ```
//!
//! What it must not touch: catalogs, data, planning. The querier turns statements into work.

pub mod ast;
pub mod lexer;
pub mod parser;
pub mod select;

pub use ast::{
    ContinuousQuery, MeasurementMatch, Privilege, RetentionPolicyClause, RetentionPolicyOptions,
    ShowFilter, Statement, SubscriptionMode, TagKeyMatch,
};
pub use parser::{ParseError, parse_query};
pub use select::{
    BinaryOp, Dimension, Expr, Field, Fill, Measurement, SelectStatement, Source, VarType,
};

/// Formats nanoseconds as Go's `time.Duration.String()` does (`168h0m0s`, `1m30s`, `500ms`),
/// which is how 1.x prints durations in `SHOW RETENTION POLICIES`.
pub fn go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let frac = |v: u64, div: u64| -> String {
        let whole = v / div;
        let rem = v % div;
        if rem == 0 {
            return whole.to_string();
        }
        let width = div.to_string().len() - 1;
        let digits = format!("{rem:0width$}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    };
    let body = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", frac(u, 1_000))
    } else if u < 1_000_000_000 {
        format!("{}ms", frac(u, 1_000_000))
    } else {
        let h = u / 3_600_000_000_000;
        let m = (u / 60_000_000_000) % 60;
        let s = frac(u % 60_000_000_000, 1_000_000_000);
        if h > 0 {
            format!("{h}h{m}m{s}s")
        } else if m > 0 {
            format!("{m}m{s}s")
        } else {
            format!("{s}s")
        }
    };
    if neg { format!("-{body}") } else { body }
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_durations() {
        let h = 3_600_000_000_000;
        assert_eq!(super::go_duration(168 * h), "168h0m0s");
        assert_eq!(super::go_duration(h), "1h0m0s");
        assert_eq!(super::go_duration(90_000_000_000), "1m30s");
        assert_eq!(super::go_duration(1_500_000_000), "1.5s");
        assert_eq!(super::go_duration(500_000_000), "500ms");
        assert_eq!(super::go_duration(0), "0s");
    }
}
