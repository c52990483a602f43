//! The InfluxQL parser: recursive descent over [`lexer`](super::lexer) tokens, with 1.x's
//! error texts (`found X, expected Y at line L, char C`).

use super::ast::{RetentionPolicyClause, Statement};
use super::lexer::{Tok, Token, tokenize};

/// A parse error; `Display` is 1.x's text after `error parsing query: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at line {line}, char {col}")]
pub struct ParseError {
    pub message: String,
    pub line: usize,
    pub col: usize,
}

/// 1.x's reserved words: they are not identifiers unless double-quoted.
const KEYWORDS: &[&str] = &[
    "ALL", "ALTER", "ANALYZE", "ANY", "AS", "ASC", "BEGIN", "BY", "CARDINALITY", "CREATE", "CONTINUOUS", "DATABASE",
    "DATABASES", "DEFAULT", "DELETE", "DESC", "DESTINATIONS", "DIAGNOSTICS", "DISTINCT", "DROP", "DURATION", "END",
    "EVERY", "EXACT", "EXPLAIN", "FIELD", "FOR", "FROM", "GRANT", "GRANTS", "GROUP", "GROUPS", "IN", "INF", "INSERT",
    "INTO", "KEY", "KEYS", "KILL", "LIMIT", "MEASUREMENT", "MEASUREMENTS", "NAME", "OFFSET", "ON", "ORDER", "PASSWORD",
    "POLICY", "POLICIES", "PRIVILEGES", "QUERIES", "QUERY", "READ", "REPLICATION", "RESAMPLE", "RETENTION", "REVOKE",
    "SELECT", "SERIES", "SET", "SHARD", "SHARDS", "SHOW", "SLIMIT", "SOFFSET", "STATS", "SUBSCRIPTION", "SUBSCRIPTIONS",
    "TAG", "TO", "USER", "USERS", "VALUES", "WHERE", "WITH", "WRITE", "AND", "OR", "TRUE", "FALSE",
];

pub fn is_keyword(s: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(s))
}

const STATEMENT_START: &str = "SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL";
const CREATE_NEXT: &str = "CONTINUOUS, DATABASE, USER, RETENTION, SUBSCRIPTION";
const DROP_NEXT: &str = "CONTINUOUS, DATABASE, MEASUREMENT, RETENTION, SERIES, SHARD, SUBSCRIPTION, USER";
const SHOW_NEXT: &str = "CONTINUOUS, DATABASES, DIAGNOSTICS, FIELD, GRANTS, MEASUREMENT, MEASUREMENTS, QUERIES, RETENTION, SERIES, SHARD, SHARDS, STATS, SUBSCRIPTIONS, TAG, USERS";

/// Parses one or more statements separated by semicolons.
pub fn parse_query(src: &str) -> Result<Vec<Statement>, ParseError> {
    let mut p = Parser { toks: tokenize(src), pos: 0 };
    let mut out = Vec::new();
    loop {
        while p.peek().tok == Tok::Semicolon {
            p.pos += 1;
        }
        if p.peek().tok == Tok::Eof {
            return Ok(out);
        }
        out.push(p.statement()?);
        match p.peek().tok {
            Tok::Semicolon | Tok::Eof => {}
            _ => return Err(p.expected(";")),
        }
    }
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn error_at(t: &Token, message: String) -> ParseError {
        ParseError { message, line: t.line, col: t.col }
    }

    fn expected(&self, what: &str) -> ParseError {
        let t = self.peek();
        let found = match &t.tok {
            Tok::Word(w) if is_keyword(w) => w.to_uppercase(),
            other => other.to_string(),
        };
        Self::error_at(t, format!("found {found}, expected {what}"))
    }

    /// Consumes the keyword `kw` if it is next.
    fn accept(&mut self, kw: &str) -> bool {
        if matches!(&self.peek().tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.accept(kw) { Ok(()) } else { Err(self.expected(kw)) }
    }

    fn peek_keyword(&self) -> Option<String> {
        match &self.peek().tok {
            Tok::Word(w) if is_keyword(w) => Some(w.to_uppercase()),
            _ => None,
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match &self.peek().tok {
            Tok::Ident(s) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            Tok::Word(w) if !is_keyword(w) => {
                let s = w.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.expected("identifier")),
        }
    }

    fn duration(&mut self) -> Result<i64, ParseError> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Duration(d, _) => {
                self.pos += 1;
                Ok(*d)
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("INF") => {
                self.pos += 1;
                Ok(0)
            }
            Tok::BadDuration(_) => Err(Self::error_at(&t, "invalid duration".into())),
            _ => Err(self.expected("duration")),
        }
    }

    fn unsigned(&mut self) -> Result<u64, ParseError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Integer(n) if n >= 0 => {
                self.pos += 1;
                Ok(n as u64)
            }
            _ => Err(self.expected("integer")),
        }
    }

    fn not_supported(&self, t: &Token, what: &str) -> ParseError {
        Self::error_at(t, format!("{what} is not supported by Fletch yet"))
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        let first = self.peek().clone();
        match self.peek_keyword().as_deref() {
            Some("CREATE") => {
                self.pos += 1;
                self.create()
            }
            Some("DROP") => {
                self.pos += 1;
                self.drop_stmt()
            }
            Some("SHOW") => {
                self.pos += 1;
                self.show()
            }
            Some(kw @ ("SELECT" | "DELETE" | "EXPLAIN" | "GRANT" | "REVOKE" | "ALTER" | "SET" | "KILL")) => {
                Err(self.not_supported(&first, &format!("the {kw} statement")))
            }
            _ => Err(self.expected(STATEMENT_START)),
        }
    }

    fn create(&mut self) -> Result<Statement, ParseError> {
        let t = self.peek().clone();
        match self.peek_keyword().as_deref() {
            Some("DATABASE") => {
                self.pos += 1;
                let name = self.ident()?;
                let rp = if self.accept("WITH") { Some(self.rp_clause()?) } else { None };
                Ok(Statement::CreateDatabase { name, rp })
            }
            Some(kw @ ("CONTINUOUS" | "USER" | "RETENTION" | "SUBSCRIPTION")) => {
                Err(self.not_supported(&t, &format!("CREATE {kw}")))
            }
            _ => Err(self.expected(CREATE_NEXT)),
        }
    }

    fn rp_clause(&mut self) -> Result<RetentionPolicyClause, ParseError> {
        let mut rp = RetentionPolicyClause::default();
        let mut any = false;
        if self.accept("DURATION") {
            rp.duration = Some(self.duration()?);
            any = true;
        }
        if self.accept("REPLICATION") {
            let t = self.peek().clone();
            let n = match t.tok {
                Tok::Integer(n) => {
                    self.pos += 1;
                    n
                }
                _ => return Err(self.expected("integer")),
            };
            if !(1..=i32::MAX as i64).contains(&n) {
                return Err(Self::error_at(&t, format!("invalid value {n}: must be 1 <= n <= 2147483647")));
            }
            rp.replication = Some(n as u32);
            any = true;
        }
        if self.accept("SHARD") {
            self.expect("DURATION")?;
            rp.shard_duration = Some(self.duration()?);
            any = true;
        }
        if self.accept("NAME") {
            rp.name = Some(self.ident()?);
            any = true;
        }
        if !any {
            return Err(self.expected("DURATION, NAME, REPLICATION, SHARD"));
        }
        Ok(rp)
    }

    fn drop_stmt(&mut self) -> Result<Statement, ParseError> {
        let t = self.peek().clone();
        match self.peek_keyword().as_deref() {
            Some("DATABASE") => {
                self.pos += 1;
                Ok(Statement::DropDatabase { name: self.ident()? })
            }
            Some(kw @ ("CONTINUOUS" | "MEASUREMENT" | "RETENTION" | "SERIES" | "SHARD" | "SUBSCRIPTION" | "USER")) => {
                Err(self.not_supported(&t, &format!("DROP {kw}")))
            }
            _ => Err(self.expected(DROP_NEXT)),
        }
    }

    fn on_database(&mut self) -> Result<Option<String>, ParseError> {
        if self.accept("ON") { Ok(Some(self.ident()?)) } else { Ok(None) }
    }

    fn show(&mut self) -> Result<Statement, ParseError> {
        let t = self.peek().clone();
        match self.peek_keyword().as_deref() {
            Some("DATABASES") => {
                self.pos += 1;
                Ok(Statement::ShowDatabases)
            }
            Some("RETENTION") => {
                self.pos += 1;
                self.expect("POLICIES")?;
                Ok(Statement::ShowRetentionPolicies { database: self.on_database()? })
            }
            Some("MEASUREMENTS") => {
                self.pos += 1;
                let database = self.on_database()?;
                let limit = if self.accept("LIMIT") { Some(self.unsigned()?) } else { None };
                let offset = if self.accept("OFFSET") { Some(self.unsigned()?) } else { None };
                Ok(Statement::ShowMeasurements { database, limit, offset })
            }
            Some(
                kw @ ("CONTINUOUS" | "DIAGNOSTICS" | "FIELD" | "GRANTS" | "MEASUREMENT" | "QUERIES" | "SERIES" | "SHARD"
                | "SHARDS" | "STATS" | "SUBSCRIPTIONS" | "TAG" | "USERS"),
            ) => Err(self.not_supported(&t, &format!("SHOW {kw}"))),
            _ => Err(self.expected(SHOW_NEXT)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> String {
        parse_query(q).unwrap_err().to_string()
    }

    /// Texts checked against InfluxDB 1.6.7.
    #[test]
    fn errors_read_like_1x() {
        assert_eq!(err("CREATE"), "found EOF, expected CONTINUOUS, DATABASE, USER, RETENTION, SUBSCRIPTION at line 1, char 8");
        assert_eq!(err("SHOW FOO"), format!("found FOO, expected {SHOW_NEXT} at line 1, char 6"));
        assert_eq!(err("DROP DATABASE"), "found EOF, expected identifier at line 1, char 15");
        assert_eq!(err("SHOW RETENTION"), "found EOF, expected POLICIES at line 1, char 16");
        assert_eq!(err("SHOW DATABASES extra"), "found extra, expected ; at line 1, char 16");
        assert_eq!(err("CREATE DATABASE x WITH"), "found EOF, expected DURATION, NAME, REPLICATION, SHARD at line 1, char 24");
        assert_eq!(err("CREATE DATABASE x WITH DURATION"), "found EOF, expected duration at line 1, char 33");
        assert_eq!(err("CREATE DATABASE x WITH DURATION 1x"), "invalid duration at line 1, char 33");
        assert_eq!(err("CREATE DATABASE x WITH REPLICATION 0"), "invalid value 0: must be 1 <= n <= 2147483647 at line 1, char 36");
        assert_eq!(err("CREATE DATABASE x WITH REPLICATION abc"), "found abc, expected integer at line 1, char 36");
        assert_eq!(err("CREATE DATABASE 'x'"), "found x, expected identifier at line 1, char 16");
        assert_eq!(err("CREATE DATABASE select"), "found SELECT, expected identifier at line 1, char 17");
        assert_eq!(err("SHOW DATABASES; SHOW FOO"), format!("found FOO, expected {SHOW_NEXT} at line 1, char 22"));
        assert_eq!(err("SHOW DATABASES\nSHOW FOO"), "found SHOW, expected ; at line 2, char 1");
        assert_eq!(err("CREATE DATABASE q WITH NAME r DURATION 1d"), "found DURATION, expected ; at line 1, char 31");
        assert_eq!(err("SELEC 1"), format!("found SELEC, expected {STATEMENT_START} at line 1, char 1"));
    }

    #[test]
    fn statements() {
        assert_eq!(parse_query("show databases;;").unwrap(), vec![Statement::ShowDatabases]);
        assert_eq!(parse_query(";").unwrap(), vec![]);
        assert_eq!(
            parse_query("CREATE DATABASE \"my db\" WITH DURATION 1d REPLICATION 1 SHARD DURATION 1h NAME r1").unwrap(),
            vec![Statement::CreateDatabase {
                name: "my db".into(),
                rp: Some(RetentionPolicyClause {
                    duration: Some(86_400_000_000_000),
                    replication: Some(1),
                    shard_duration: Some(3_600_000_000_000),
                    name: Some("r1".into()),
                }),
            }]
        );
        assert_eq!(
            parse_query("SHOW MEASUREMENTS ON d LIMIT 2 OFFSET 1").unwrap(),
            vec![Statement::ShowMeasurements { database: Some("d".into()), limit: Some(2), offset: Some(1) }]
        );
        let s = parse_query("create database x with duration INF").unwrap();
        assert_eq!(s[0].to_string(), "CREATE DATABASE x WITH DURATION 0s");
        assert_eq!(parse_query("DROP DATABASE \"select\"").unwrap()[0].to_string(), "DROP DATABASE \"select\"");
    }
}
