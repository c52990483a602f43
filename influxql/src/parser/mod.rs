//! The InfluxQL parser: recursive descent over [`lexer`](super::lexer) tokens, with 1.x's
//! error texts (`found X, expected Y at line L, char C`).

use super::ast::{
    ContinuousQuery, MeasurementMatch, Privilege, RetentionPolicyClause, RetentionPolicyOptions,
    ShowFilter, Statement, SubscriptionMode, TagKeyMatch,
};
use super::lexer::{Tok, Token, scan_regex, tokenize, tokenize_from};
use super::select::{
    BinaryOp, Dimension, Expr, Field, Fill, Measurement, SelectStatement, Source, VarType,
};

/// A parse error; `Display` is 1.x's text after `error parsing query: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// 0 when 1.x gives no position for this error.
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(
                f,
                "{} at line {}, char {}",
                self.message, self.line, self.col
            )
        }
    }
}

impl std::error::Error for ParseError {}

/// 1.x's reserved words: they are not identifiers unless double-quoted.
const KEYWORDS: &[&str] = &[
    "ALL",
    "ALTER",
    "ANALYZE",
    "ANY",
    "AS",
    "ASC",
    "BEGIN",
    "BY",
    "CARDINALITY",
    "CREATE",
    "CONTINUOUS",
    "DATABASE",
    "DATABASES",
    "DEFAULT",
    "DELETE",
    "DESC",
    "DESTINATIONS",
    "DIAGNOSTICS",
    "DISTINCT",
    "DROP",
    "DURATION",
    "END",
    "EVERY",
    "EXACT",
    "EXPLAIN",
    "FIELD",
    "FOR",
    "FROM",
    "GRANT",
    "GRANTS",
    "GROUP",
    "GROUPS",
    "IN",
    "INF",
    "INSERT",
    "INTO",
    "KEY",
    "KEYS",
    "KILL",
    "LIMIT",
    "MEASUREMENT",
    "MEASUREMENTS",
    "NAME",
    "OFFSET",
    "ON",
    "ORDER",
    "PASSWORD",
    "POLICY",
    "POLICIES",
    "PRIVILEGES",
    "QUERIES",
    "QUERY",
    "READ",
    "REPLICATION",
    "RESAMPLE",
    "RETENTION",
    "REVOKE",
    "SELECT",
    "SERIES",
    "SERVERS",
    "SET",
    "SHARD",
    "SHARDS",
    "SHOW",
    "SLIMIT",
    "SOFFSET",
    "STATS",
    "SUBSCRIPTION",
    "SUBSCRIPTIONS",
    "TAG",
    "TO",
    "USER",
    "USERS",
    "VALUES",
    "WHERE",
    "WITH",
    "WRITE",
    "AND",
    "OR",
    "TRUE",
    "FALSE",
];

pub fn is_keyword(s: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(s))
}

const STATEMENT_START: &str =
    "SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL";
const CREATE_NEXT: &str = "CONTINUOUS, DATABASE, USER, RETENTION, SUBSCRIPTION";
const DROP_NEXT: &str =
    "CONTINUOUS, DATABASE, MEASUREMENT, RETENTION, SERIES, SHARD, SUBSCRIPTION, USER";
const SHOW_NEXT: &str = "CONTINUOUS, DATABASES, DIAGNOSTICS, FIELD, GRANTS, MEASUREMENT, MEASUREMENTS, QUERIES, RETENTION, SERIES, SHARD, SHARDS, STATS, SUBSCRIPTIONS, TAG, USERS";

/// Parses one or more statements separated by semicolons.
pub fn parse_query(src: &str) -> Result<Vec<Statement>, ParseError> {
    let mut p = Parser {
        toks: tokenize(src),
        pos: 0,
        src: src.to_string(),
    };
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
    src: String,
}

const OPERAND: &str = "identifier, string, number, bool";

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn error_at(t: &Token, message: String) -> ParseError {
        ParseError {
            message,
            line: t.line,
            col: t.col,
        }
    }

    /// The end of the statement where a call's argument belongs, right after its `(` or `,`:
    /// 1.x reads past the end once more there and names the character after it.
    fn eof_in_call(&self) -> Option<ParseError> {
        let t = self.peek();
        if t.tok != Tok::Eof || self.pos == 0 {
            return None;
        }
        let prev = self.toks.get(self.pos - 1)?;
        let adjacent = matches!(prev.tok, Tok::LParen | Tok::Comma)
            && prev.line == t.line
            && prev.col + 1 == t.col;
        Some(ParseError {
            message: format!("found EOF, expected {OPERAND}"),
            line: t.line,
            col: if adjacent { t.col + 1 } else { t.col },
        })
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
        if self.accept(kw) {
            Ok(())
        } else {
            Err(self.expected(kw))
        }
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

    fn statement(&mut self) -> Result<Statement, ParseError> {
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
            Some("SELECT") => {
                self.pos += 1;
                Ok(Statement::Select(Box::new(self.select()?)))
            }
            Some("DELETE") => {
                self.pos += 1;
                let (sources, condition) = self.from_where()?;
                Ok(Statement::Delete { sources, condition })
            }
            Some("ALTER") => {
                self.pos += 1;
                self.expect("RETENTION")?;
                self.expect("POLICY")?;
                let name = self.ident()?;
                self.expect("ON")?;
                let database = self.ident()?;
                let mut options = RetentionPolicyOptions::default();
                loop {
                    if self.accept("DURATION") {
                        options.duration = Some(self.duration()?);
                    } else if self.accept("REPLICATION") {
                        options.replication = Some(self.replication()?);
                    } else if self.accept("SHARD") {
                        self.expect("DURATION")?;
                        options.shard_duration = Some(self.duration()?);
                    } else if self.accept("DEFAULT") {
                        options.default = true;
                    } else {
                        break;
                    }
                }
                if options == RetentionPolicyOptions::default() {
                    return Err(self.expected("DURATION, REPLICATION, SHARD, DEFAULT"));
                }
                Ok(Statement::AlterRetentionPolicy {
                    name,
                    database,
                    options,
                })
            }
            Some("EXPLAIN") => {
                self.pos += 1;
                let analyze = self.accept("ANALYZE");
                self.expect("SELECT")?;
                Ok(Statement::Explain {
                    analyze,
                    select: Box::new(self.select()?),
                })
            }
            Some("KILL") => {
                self.pos += 1;
                self.expect("QUERY")?;
                let id = self.node_id()?;
                let host = if self.accept("ON") {
                    match self.peek().tok.clone() {
                        Tok::Str(h) => {
                            self.pos += 1;
                            Some(h)
                        }
                        _ => Some(self.ident()?),
                    }
                } else {
                    None
                };
                Ok(Statement::KillQuery { id, host })
            }
            Some(kw @ ("GRANT" | "REVOKE")) => {
                self.pos += 1;
                self.grant_or_revoke(kw == "GRANT")
            }
            Some("SET") => {
                self.pos += 1;
                self.expect("PASSWORD")?;
                self.expect("FOR")?;
                let name = self.ident()?;
                if !self.is_op("=") {
                    return Err(self.expected("="));
                }
                self.pos += 1;
                let password = self.string()?;
                Ok(Statement::SetPassword { name, password })
            }
            _ => Err(self.expected(STATEMENT_START)),
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        match self.peek().tok.clone() {
            Tok::Str(s) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.expected("string")),
        }
    }

    /// `READ | WRITE | ALL [PRIVILEGES]`.
    fn privilege(&mut self) -> Result<Privilege, ParseError> {
        if self.accept("READ") {
            Ok(Privilege::Read)
        } else if self.accept("WRITE") {
            Ok(Privilege::Write)
        } else if self.accept("ALL") {
            self.accept("PRIVILEGES");
            Ok(Privilege::All)
        } else {
            Err(self.expected("READ, WRITE, ALL [PRIVILEGES]"))
        }
    }

    /// After `GRANT`/`REVOKE`: `<privilege> ON <db> TO|FROM <user>`, or `ALL [PRIVILEGES]
    /// TO|FROM <user>` (admin).
    fn grant_or_revoke(&mut self, grant: bool) -> Result<Statement, ParseError> {
        let privilege = self.privilege()?;
        let to = if grant { "TO" } else { "FROM" };
        let database = if self.accept("ON") {
            let db = self.ident()?;
            self.expect(to)?;
            Some(db)
        } else if privilege == Privilege::All && self.accept(to) {
            None
        } else if privilege == Privilege::All {
            return Err(self.expected(&format!("ON, {to}")));
        } else {
            return Err(self.expected("ON"));
        };
        let user = self.ident()?;
        Ok(if grant {
            Statement::Grant {
                privilege,
                database,
                user,
            }
        } else {
            Statement::Revoke {
                privilege,
                database,
                user,
            }
        })
    }

    fn create(&mut self) -> Result<Statement, ParseError> {
        match self.peek_keyword().as_deref() {
            Some("DATABASE") => {
                self.pos += 1;
                let name = self.ident()?;
                let rp = if self.accept("WITH") {
                    Some(self.rp_clause()?)
                } else {
                    None
                };
                Ok(Statement::CreateDatabase { name, rp })
            }
            Some("RETENTION") => {
                self.pos += 1;
                self.expect("POLICY")?;
                let name = self.ident()?;
                self.expect("ON")?;
                let database = self.ident()?;
                self.expect("DURATION")?;
                let duration = Some(self.duration()?);
                self.expect("REPLICATION")?;
                let replication = Some(self.replication()?);
                let shard_duration = if self.accept("SHARD") {
                    self.expect("DURATION")?;
                    Some(self.duration()?)
                } else {
                    None
                };
                let options = RetentionPolicyOptions {
                    duration,
                    replication,
                    shard_duration,
                    default: self.accept("DEFAULT"),
                };
                Ok(Statement::CreateRetentionPolicy {
                    name,
                    database,
                    options,
                })
            }
            Some("USER") => {
                self.pos += 1;
                let name = self.ident()?;
                self.expect("WITH")?;
                self.expect("PASSWORD")?;
                let password = self.string()?;
                let admin = if self.accept("WITH") {
                    self.expect("ALL")?;
                    self.expect("PRIVILEGES")?;
                    true
                } else {
                    false
                };
                Ok(Statement::CreateUser {
                    name,
                    password,
                    admin,
                })
            }
            Some("CONTINUOUS") => {
                self.pos += 1;
                self.expect("QUERY")?;
                self.continuous_query()
            }
            Some("SUBSCRIPTION") => {
                self.pos += 1;
                let name = self.ident()?;
                self.expect("ON")?;
                let (database, retention_policy) = self.database_dot_rp()?;
                self.expect("DESTINATIONS")?;
                let mode = if self.accept("ALL") {
                    SubscriptionMode::All
                } else if self.accept("ANY") {
                    SubscriptionMode::Any
                } else {
                    return Err(self.expected("ALL, ANY"));
                };
                let mut destinations = vec![self.string()?];
                while self.peek().tok == Tok::Comma {
                    self.pos += 1;
                    destinations.push(self.string()?);
                }
                Ok(Statement::CreateSubscription {
                    name,
                    database,
                    retention_policy,
                    mode,
                    destinations,
                })
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
            rp.replication = Some(self.replication()?);
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

    fn replication(&mut self) -> Result<u32, ParseError> {
        let t = self.peek().clone();
        let n = match t.tok {
            Tok::Integer(n) => {
                self.pos += 1;
                n
            }
            _ => return Err(self.expected("integer")),
        };
        if !(1..=i32::MAX as i64).contains(&n) {
            return Err(Self::error_at(
                &t,
                format!("invalid value {n}: must be 1 <= n <= 2147483647"),
            ));
        }
        Ok(n as u32)
    }

    /// `[FROM sources] [WHERE cond]`, at least one of them (DELETE, DROP SERIES).
    fn from_where(&mut self) -> Result<(Vec<Measurement>, Option<Expr>), ParseError> {
        let mut sources = Vec::new();
        let has_from = self.accept("FROM");
        if has_from {
            loop {
                sources.push(self.measurement()?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.pos += 1;
            }
        }
        let condition = if self.accept("WHERE") {
            Some(self.expr(0)?)
        } else {
            None
        };
        if !has_from && condition.is_none() {
            return Err(self.expected("FROM, WHERE"));
        }
        Ok((sources, condition))
    }

    /// A node id (`DROP META SERVER 3`).
    fn node_id(&mut self) -> Result<u64, ParseError> {
        match self.peek().tok {
            Tok::Integer(n) if n >= 0 => {
                self.pos += 1;
                Ok(n as u64)
            }
            _ => Err(self.expected("integer")),
        }
    }

    fn drop_stmt(&mut self) -> Result<Statement, ParseError> {
        // Cluster statements of the 0.10 guide; META, DATA and SERVER stay usable as names.
        if self.accept("META") {
            self.expect("SERVER")?;
            return Ok(Statement::DropMetaServer {
                id: self.node_id()?,
            });
        }
        if self.accept("DATA") {
            self.expect("SERVER")?;
            let id = self.node_id()?;
            let force = self.accept("FORCE");
            return Ok(Statement::DropDataServer { id, force });
        }
        match self.peek_keyword().as_deref() {
            Some("DATABASE") => {
                self.pos += 1;
                Ok(Statement::DropDatabase {
                    name: self.ident()?,
                })
            }
            Some("RETENTION") => {
                self.pos += 1;
                self.expect("POLICY")?;
                let name = self.ident()?;
                self.expect("ON")?;
                Ok(Statement::DropRetentionPolicy {
                    name,
                    database: self.ident()?,
                })
            }
            Some("MEASUREMENT") => {
                self.pos += 1;
                Ok(Statement::DropMeasurement {
                    name: self.ident()?,
                })
            }
            Some("SERIES") => {
                self.pos += 1;
                let (sources, condition) = self.from_where()?;
                Ok(Statement::DropSeries { sources, condition })
            }
            Some("USER") => {
                self.pos += 1;
                Ok(Statement::DropUser {
                    name: self.ident()?,
                })
            }
            Some("CONTINUOUS") => {
                self.pos += 1;
                self.expect("QUERY")?;
                let name = self.ident()?;
                self.expect("ON")?;
                Ok(Statement::DropContinuousQuery {
                    name,
                    database: self.ident()?,
                })
            }
            Some("SUBSCRIPTION") => {
                self.pos += 1;
                let name = self.ident()?;
                self.expect("ON")?;
                let (database, retention_policy) = self.database_dot_rp()?;
                Ok(Statement::DropSubscription {
                    name,
                    database,
                    retention_policy,
                })
            }
            Some("SHARD") => {
                self.pos += 1;
                // 1.x reads the id as an unsigned integer: a minus sign is what it finds.
                if let Tok::Integer(n) = self.peek().tok
                    && n < 0
                {
                    return Err(Self::error_at(
                        self.peek(),
                        "found -, expected integer".into(),
                    ));
                }
                Ok(Statement::DropShard {
                    id: self.unsigned()?,
                })
            }
            _ => Err(self.expected(DROP_NEXT)),
        }
    }

    /// `[EXACT] CARDINALITY`: whether it said `EXACT`.
    fn cardinality(&mut self) -> Result<bool, ParseError> {
        let exact = self.accept("EXACT");
        self.expect("CARDINALITY")?;
        Ok(exact)
    }

    fn count_of(exact: bool, inner: Statement) -> Statement {
        Statement::ShowCardinality {
            exact,
            inner: Box::new(inner),
        }
    }

    /// `<db>.<rp>` of the subscription statements. 1.x reads the `.` without skipping
    /// whitespace, so a space after the database is what it finds there (`found  , expected .`).
    fn database_dot_rp(&mut self) -> Result<(String, String), ParseError> {
        let database = self.ident()?;
        let t = self.peek().clone();
        let chars: Vec<char> = self.src.chars().collect();
        let mut ws_start = t.offset.min(chars.len());
        while ws_start > 0 && chars.get(ws_start - 1).is_some_and(|c| c.is_whitespace()) {
            ws_start -= 1;
        }
        if ws_start < t.offset {
            let ws: String = chars[ws_start..t.offset.min(chars.len())].iter().collect();
            let before = &chars[..ws_start];
            let line = 1 + before.iter().filter(|c| **c == '\n').count();
            let col = 1 + before.iter().rev().take_while(|c| **c != '\n').count();
            return Err(ParseError {
                message: format!("found {ws}, expected ."),
                line,
                col,
            });
        }
        if t.tok != Tok::Dot {
            return Err(self.expected("."));
        }
        self.pos += 1;
        Ok((database, self.ident()?))
    }

    fn on_database(&mut self) -> Result<Option<String>, ParseError> {
        if self.accept("ON") {
            Ok(Some(self.ident()?))
        } else {
            Ok(None)
        }
    }

    fn show(&mut self) -> Result<Statement, ParseError> {
        if self.accept("META") {
            self.expect("STATUS")?;
            return Ok(Statement::ShowMetaStatus);
        }
        match self.peek_keyword().as_deref() {
            Some("DATABASES") => {
                self.pos += 1;
                Ok(Statement::ShowDatabases)
            }
            Some("RETENTION") => {
                self.pos += 1;
                self.expect("POLICIES")?;
                Ok(Statement::ShowRetentionPolicies {
                    database: self.on_database()?,
                })
            }
            Some("MEASUREMENTS") => {
                self.pos += 1;
                let database = self.on_database()?;
                let with = if self.accept("WITH") {
                    self.expect("MEASUREMENT")?;
                    if self.is_op("=~") {
                        self.pos += 1;
                        match self.try_regex()? {
                            Some(re) => Some(MeasurementMatch::Regex(re)),
                            None => return Err(self.expected("regex")),
                        }
                    } else if self.is_op("=") {
                        self.pos += 1;
                        Some(MeasurementMatch::Eq(self.ident()?))
                    } else {
                        return Err(self.expected("=, =~"));
                    }
                } else {
                    None
                };
                let condition = if self.accept("WHERE") {
                    Some(self.expr(0)?)
                } else {
                    None
                };
                let limit = if self.accept("LIMIT") {
                    Some(self.unsigned()?)
                } else {
                    None
                };
                let offset = if self.accept("OFFSET") {
                    Some(self.unsigned()?)
                } else {
                    None
                };
                Ok(Statement::ShowMeasurements {
                    database,
                    with,
                    condition,
                    limit,
                    offset,
                })
            }
            Some("TAG") => {
                self.pos += 1;
                if self.accept("KEYS") {
                    return Ok(Statement::ShowTagKeys(self.show_filter(false)?.0));
                }
                if self.accept("KEY") {
                    let exact = self.cardinality()?;
                    let inner = Statement::ShowTagKeys(self.show_filter(false)?.0);
                    return Ok(Self::count_of(exact, inner));
                }
                self.expect("VALUES")?;
                let exact = match self.peek_keyword().as_deref() {
                    Some("EXACT" | "CARDINALITY") => Some(self.cardinality()?),
                    _ => None,
                };
                let (filter, key) = self.show_filter(true)?;
                let key = key.ok_or_else(|| self.expected("WITH"))?;
                let inner = Statement::ShowTagValues { filter, key };
                Ok(match exact {
                    Some(exact) => Self::count_of(exact, inner),
                    None => inner,
                })
            }
            Some("FIELD") => {
                self.pos += 1;
                if self.accept("KEY") {
                    let exact = self.cardinality()?;
                    let inner = Statement::ShowFieldKeys(self.show_filter(false)?.0);
                    return Ok(Self::count_of(exact, inner));
                }
                self.expect("KEYS")?;
                Ok(Statement::ShowFieldKeys(self.show_filter(false)?.0))
            }
            Some("SERIES") => {
                self.pos += 1;
                let exact = match self.peek_keyword().as_deref() {
                    Some("EXACT" | "CARDINALITY") => Some(self.cardinality()?),
                    _ => None,
                };
                let inner = Statement::ShowSeries(self.show_filter(false)?.0);
                Ok(match exact {
                    Some(exact) => Self::count_of(exact, inner),
                    None => inner,
                })
            }
            Some("MEASUREMENT") => {
                self.pos += 1;
                let exact = self.cardinality()?;
                let filter = self.show_filter(false)?.0;
                let with = match filter.sources.as_slice() {
                    [] => None,
                    [m, ..] => match (&m.regex, &m.name) {
                        (Some(re), _) => Some(MeasurementMatch::Regex(re.clone())),
                        (None, Some(name)) => Some(MeasurementMatch::Eq(name.clone())),
                        (None, None) => None,
                    },
                };
                let inner = Statement::ShowMeasurements {
                    database: filter.database,
                    with,
                    condition: filter.condition,
                    limit: None,
                    offset: None,
                };
                Ok(Self::count_of(exact, inner))
            }
            Some("SHARDS") => {
                self.pos += 1;
                Ok(Statement::ShowShards)
            }
            Some("SERVERS") => {
                self.pos += 1;
                Ok(Statement::ShowServers)
            }
            Some("STATS") => {
                self.pos += 1;
                Ok(Statement::ShowStats {
                    module: self.for_module()?,
                })
            }
            Some("DIAGNOSTICS") => {
                self.pos += 1;
                Ok(Statement::ShowDiagnostics {
                    module: self.for_module()?,
                })
            }
            Some("QUERIES") => {
                self.pos += 1;
                Ok(Statement::ShowQueries)
            }
            Some("SHARD") => {
                self.pos += 1;
                self.expect("GROUPS")?;
                Ok(Statement::ShowShardGroups)
            }
            Some("USERS") => {
                self.pos += 1;
                Ok(Statement::ShowUsers)
            }
            Some("GRANTS") => {
                self.pos += 1;
                self.expect("FOR")?;
                Ok(Statement::ShowGrants {
                    user: self.ident()?,
                })
            }
            Some("CONTINUOUS") => {
                self.pos += 1;
                self.expect("QUERIES")?;
                Ok(Statement::ShowContinuousQueries)
            }
            Some("SUBSCRIPTIONS") => {
                self.pos += 1;
                Ok(Statement::ShowSubscriptions)
            }
            _ => Err(self.expected(SHOW_NEXT)),
        }
    }
}

impl Parser {
    /// The rest of `CREATE CONTINUOUS QUERY`, checked as 1.x checks it: an `INTO`, a
    /// `GROUP BY time(...)` when it aggregates, a `FOR` no shorter than the interval.
    fn continuous_query(&mut self) -> Result<Statement, ParseError> {
        let name = self.ident()?;
        self.expect("ON")?;
        let database = self.ident()?;
        let (mut resample_every, mut resample_for) = (None, None);
        if self.accept("RESAMPLE") {
            if self.accept("EVERY") {
                resample_every = Some(self.duration()?).filter(|d| *d != 0);
            }
            if self.accept("FOR") {
                resample_for = Some(self.duration()?).filter(|d| *d != 0);
            }
            if resample_every.is_none() && resample_for.is_none() {
                return Err(self.expected("EVERY, FOR"));
            }
        }
        self.expect("BEGIN")?;
        if self.peek_keyword().as_deref() != Some("SELECT") {
            return Err(self.expected("SELECT"));
        }
        self.pos += 1;
        if !self.starts_into_after_fields()? {
            return Err(self.expected("INTO"));
        }
        let select = self.select()?;
        let interval = select.dimensions.iter().find_map(|d| match d {
            Dimension::Time { interval, .. } => Some(*interval),
            _ => None,
        });
        let aggregates = select.fields.iter().any(|f| f.expr.has_call());
        if aggregates && interval.is_none_or(|i| i == 0) {
            // 1.x points at the statement's last token.
            let last = &self.toks[self.pos.saturating_sub(1)];
            let found = match &last.tok {
                Tok::Word(w) if is_keyword(w) => w.to_uppercase(),
                other => other.to_string(),
            };
            return Err(Self::error_at(
                last,
                format!("found {found}, expected GROUP BY time(...)"),
            ));
        }
        self.expect("END")?;
        if let Some(f) = resample_for {
            let mut least = interval.unwrap_or(0);
            if let Some(e) = resample_every {
                least = least.max(e);
            }
            if least > f {
                return Err(ParseError {
                    message: format!(
                        "FOR duration must be >= GROUP BY time duration: must be a minimum of {}, got {}",
                        crate::ast::format_duration_literal(least),
                        crate::ast::format_duration_literal(f)
                    ),
                    line: 0,
                    col: 0,
                });
            }
        }
        Ok(Statement::CreateContinuousQuery(Box::new(
            ContinuousQuery {
                name,
                database,
                resample_every,
                resample_for,
                select,
            },
        )))
    }

    /// After `SELECT`: whether the fields are followed by `INTO` (the position is left as it
    /// was); a field list that does not parse answers its own error.
    fn starts_into_after_fields(&mut self) -> Result<bool, ParseError> {
        let at = self.pos;
        self.fields()?;
        let into = matches!(self.peek_keyword().as_deref(), Some("INTO"));
        if !into {
            return Ok(false);
        }
        self.pos = at;
        Ok(true)
    }

    /// `SHOW STATS` and `SHOW DIAGNOSTICS`'s optional `FOR '<module>'`.
    fn for_module(&mut self) -> Result<Option<String>, ParseError> {
        if !self.accept("FOR") {
            return Ok(None);
        }
        match self.peek().tok.clone() {
            Tok::Str(m) => {
                self.pos += 1;
                Ok(Some(m))
            }
            _ => Err(self.expected("string")),
        }
    }
}

mod select;
#[cfg(test)]
mod tests;
