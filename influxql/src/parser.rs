//! The InfluxQL parser: recursive descent over [`lexer`](super::lexer) tokens, with 1.x's
//! error texts (`found X, expected Y at line L, char C`).

use super::ast::{
    MeasurementMatch, RetentionPolicyClause, RetentionPolicyOptions, ShowFilter, Statement,
    TagKeyMatch,
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
            Some(kw @ ("GRANT" | "REVOKE" | "SET" | "KILL")) => {
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
            Some(kw @ ("CONTINUOUS" | "USER" | "SUBSCRIPTION")) => {
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
        let t = self.peek().clone();
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
            Some(kw @ ("CONTINUOUS" | "SHARD" | "SUBSCRIPTION" | "USER")) => {
                Err(self.not_supported(&t, &format!("DROP {kw}")))
            }
            _ => Err(self.expected(DROP_NEXT)),
        }
    }

    fn on_database(&mut self) -> Result<Option<String>, ParseError> {
        if self.accept("ON") {
            Ok(Some(self.ident()?))
        } else {
            Ok(None)
        }
    }

    fn show(&mut self) -> Result<Statement, ParseError> {
        let t = self.peek().clone();
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
                self.expect("VALUES")?;
                let (filter, key) = self.show_filter(true)?;
                let key = key.ok_or_else(|| self.expected("WITH"))?;
                Ok(Statement::ShowTagValues { filter, key })
            }
            Some("FIELD") => {
                self.pos += 1;
                self.expect("KEYS")?;
                Ok(Statement::ShowFieldKeys(self.show_filter(false)?.0))
            }
            Some("SERIES") => {
                self.pos += 1;
                Ok(Statement::ShowSeries(self.show_filter(false)?.0))
            }
            Some("SHARDS") => {
                self.pos += 1;
                Ok(Statement::ShowShards)
            }
            Some("SERVERS") => {
                self.pos += 1;
                Ok(Statement::ShowServers)
            }
            Some("SHARD") => {
                self.pos += 1;
                self.expect("GROUPS")?;
                Ok(Statement::ShowShardGroups)
            }
            Some(
                kw @ ("CONTINUOUS" | "DIAGNOSTICS" | "GRANTS" | "MEASUREMENT" | "QUERIES" | "STATS"
                | "SUBSCRIPTIONS" | "USERS"),
            ) => Err(self.not_supported(&t, &format!("SHOW {kw}"))),
            _ => Err(self.expected(SHOW_NEXT)),
        }
    }
}

impl Parser {
    /// `[ON db] [FROM sources] [WITH KEY ...] [WHERE cond] [LIMIT n] [OFFSET n]`.
    fn show_filter(
        &mut self,
        with_key: bool,
    ) -> Result<(ShowFilter, Option<TagKeyMatch>), ParseError> {
        let mut flt = ShowFilter {
            database: self.on_database()?,
            ..Default::default()
        };
        if self.accept("FROM") {
            loop {
                flt.sources.push(self.measurement()?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.pos += 1;
            }
        }
        let mut key = None;
        if with_key {
            self.expect("WITH")?;
            self.expect("KEY")?;
            key = Some(if self.is_op("=") {
                self.pos += 1;
                TagKeyMatch::Eq(self.ident()?)
            } else if self.is_op("!=") || self.is_op("<>") {
                self.pos += 1;
                TagKeyMatch::NotEq(self.ident()?)
            } else if self.is_op("=~") || self.is_op("!~") {
                let negate = self.is_op("!~");
                self.pos += 1;
                let re = self.try_regex()?.ok_or_else(|| self.expected("regex"))?;
                if negate {
                    TagKeyMatch::NotRegex(re)
                } else {
                    TagKeyMatch::Regex(re)
                }
            } else if self.accept("IN") {
                self.expect_tok(Tok::LParen, "(")?;
                let mut keys = vec![self.ident()?];
                while self.peek().tok == Tok::Comma {
                    self.pos += 1;
                    keys.push(self.ident()?);
                }
                self.expect_tok(Tok::RParen, ")")?;
                TagKeyMatch::In(keys)
            } else {
                return Err(self.expected("=, !=, =~, !~, IN"));
            });
        }
        if self.accept("WHERE") {
            flt.condition = Some(self.expr(0)?);
        }
        if self.accept("LIMIT") {
            flt.limit = Some(self.unsigned()?);
        }
        if self.accept("OFFSET") {
            flt.offset = Some(self.unsigned()?);
        }
        Ok((flt, key))
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(&self.peek().tok, Tok::Op(o) if *o == op)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(x) if x.eq_ignore_ascii_case(w))
    }

    fn expect_tok(&mut self, tok: Tok, what: &str) -> Result<(), ParseError> {
        if self.peek().tok == tok {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    /// A regex literal at the current `/` token, rescanned from the source.
    fn try_regex(&mut self) -> Result<Option<String>, ParseError> {
        if !self.is_op("/") {
            return Ok(None);
        }
        let t = self.peek().clone();
        let Some((re, end)) = scan_regex(&self.src, t.offset) else {
            return Err(Self::error_at(&t, "unterminated regex".into()));
        };
        // The tokens read ahead ignored the regex (a quote inside it may have opened a string):
        // scan again from its end.
        let chars: Vec<char> = self.src.chars().collect();
        let line_start = t.offset + 1 - t.col;
        self.toks.truncate(self.pos);
        self.toks
            .extend(tokenize_from(&chars, end, t.line, line_start));
        Ok(Some(re))
    }

    fn select(&mut self) -> Result<SelectStatement, ParseError> {
        let mut s = SelectStatement {
            fields: self.fields()?,
            ..Default::default()
        };
        if self.accept("INTO") {
            s.into = Some(self.target_measurement()?);
        }
        self.expect("FROM")?;
        s.sources = self.sources()?;
        if self.accept("WHERE") {
            s.condition = Some(self.expr(0)?);
        }
        if self.accept("GROUP") {
            self.expect("BY")?;
            s.dimensions = self.dimensions()?;
        }
        if self.is_word("fill") {
            self.pos += 1;
            s.fill = Some(self.fill()?);
        }
        if self.accept("ORDER") {
            self.expect("BY")?;
            s.order_desc = self.order_by()?;
        }
        if self.accept("LIMIT") {
            s.limit = Some(self.unsigned()?);
        }
        if self.accept("OFFSET") {
            s.offset = Some(self.unsigned()?);
        }
        if self.accept("SLIMIT") {
            s.slimit = Some(self.unsigned()?);
        }
        if self.accept("SOFFSET") {
            s.soffset = Some(self.unsigned()?);
        }
        if self.is_word("tz") {
            self.pos += 1;
            self.expect_tok(Tok::LParen, "(")?;
            match self.peek().tok.clone() {
                Tok::Str(tz) => {
                    if tz.parse::<chrono_tz::Tz>().is_err() {
                        return Err(ParseError {
                            message: format!("unable to find time zone {tz}"),
                            line: 0,
                            col: 0,
                        });
                    }
                    self.pos += 1;
                    s.timezone = Some(tz);
                }
                _ => return Err(self.expected("string")),
            }
            self.expect_tok(Tok::RParen, ")")?;
        }
        Ok(s)
    }

    fn fields(&mut self) -> Result<Vec<Field>, ParseError> {
        let mut out = Vec::new();
        loop {
            let expr = self.expr(0)?;
            let alias = if self.accept("AS") {
                Some(self.ident()?)
            } else {
                None
            };
            out.push(Field { expr, alias });
            if self.peek().tok != Tok::Comma {
                return Ok(out);
            }
            self.pos += 1;
        }
    }

    /// `[db.][rp.]name`, `db..name`, any of them ending in a regex instead of a name.
    /// An `INTO` target: a measurement, or `db.rp.:MEASUREMENT` (`rp.:MEASUREMENT`,
    /// `db..:MEASUREMENT`) naming each source measurement.
    fn target_measurement(&mut self) -> Result<Measurement, ParseError> {
        self.measurement_or_back_reference(true)
    }

    fn measurement(&mut self) -> Result<Measurement, ParseError> {
        self.measurement_or_back_reference(false)
    }

    fn measurement_or_back_reference(&mut self, target: bool) -> Result<Measurement, ParseError> {
        let mut parts: Vec<Option<String>> = Vec::new();
        loop {
            if target
                && !parts.is_empty()
                && matches!(&self.peek().tok, Tok::Illegal(c) if c == ":")
                && matches!(
                    self.toks.get(self.pos + 1).map(|t| &t.tok),
                    Some(Tok::Word(w)) if w.eq_ignore_ascii_case("MEASUREMENT")
                )
            {
                self.pos += 2;
                // The part before the dot that led here is the rp (or db..).
                let mut m = Measurement {
                    back_reference: true,
                    ..Default::default()
                };
                assign_prefix(&mut m, parts);
                return Ok(m);
            }
            if let Some(re) = self.try_regex()? {
                let mut m = Measurement {
                    regex: Some(re),
                    ..Default::default()
                };
                assign_prefix(&mut m, parts);
                return Ok(m);
            }
            if self.peek().tok == Tok::Dot {
                // an empty part: `db..m`
                parts.push(None);
                self.pos += 1;
                continue;
            }
            let name = self.ident()?;
            parts.push(Some(name));
            if self.peek().tok == Tok::Dot && parts.len() < 3 {
                self.pos += 1;
                if self.peek().tok == Tok::Dot {
                    parts.push(None);
                    self.pos += 1;
                }
                continue;
            }
            break;
        }
        let name = parts.pop().flatten();
        let mut m = Measurement {
            name,
            ..Default::default()
        };
        assign_prefix(&mut m, parts);
        Ok(m)
    }

    fn sources(&mut self) -> Result<Vec<Source>, ParseError> {
        let mut out = Vec::new();
        loop {
            if self.peek().tok == Tok::LParen {
                self.pos += 1;
                self.expect("SELECT")?;
                let q = self.select()?;
                self.expect_tok(Tok::RParen, ")")?;
                out.push(Source::Subquery(Box::new(q)));
            } else {
                out.push(Source::Measurement(self.measurement()?));
            }
            if self.peek().tok != Tok::Comma {
                return Ok(out);
            }
            self.pos += 1;
        }
    }

    fn dimensions(&mut self) -> Result<Vec<Dimension>, ParseError> {
        let mut out = Vec::new();
        loop {
            if self.is_op("*") {
                self.pos += 1;
                out.push(Dimension::Wildcard);
            } else if let Some(re) = self.try_regex()? {
                out.push(Dimension::Regex(re));
            } else if self.is_word("time")
                && self
                    .toks
                    .get(self.pos + 1)
                    .is_some_and(|t| t.tok == Tok::LParen)
            {
                self.pos += 2;
                let interval = self.duration()?;
                let offset = if self.peek().tok == Tok::Comma {
                    self.pos += 1;
                    Some(self.signed_duration()?)
                } else {
                    None
                };
                self.expect_tok(Tok::RParen, ")")?;
                out.push(Dimension::Time { interval, offset });
            } else {
                match &self.peek().tok {
                    Tok::Ident(s) => {
                        out.push(Dimension::Tag(s.clone()));
                        self.pos += 1;
                    }
                    Tok::Word(w) if !is_keyword(w) => {
                        out.push(Dimension::Tag(w.clone()));
                        self.pos += 1;
                    }
                    _ => return Err(self.expected(OPERAND)),
                }
            }
            if self.peek().tok != Tok::Comma {
                return Ok(out);
            }
            self.pos += 1;
        }
    }

    fn signed_duration(&mut self) -> Result<i64, ParseError> {
        if self.is_op("-") {
            self.pos += 1;
            return Ok(-self.duration()?);
        }
        if matches!(self.peek().tok, Tok::Word(ref w) if w.eq_ignore_ascii_case("now")) {
            // `time(1h, now())`: 1.x computes the offset from the current time.
            self.pos += 1;
            self.expect_tok(Tok::LParen, "(")?;
            self.expect_tok(Tok::RParen, ")")?;
            return Ok(i64::MIN);
        }
        self.duration()
    }

    fn fill(&mut self) -> Result<Fill, ParseError> {
        self.expect_tok(Tok::LParen, "(")?;
        let t = self.peek().clone();
        let fill = match &t.tok {
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => Fill::Null,
            Tok::Word(w) if w.eq_ignore_ascii_case("none") => Fill::None,
            Tok::Word(w) if w.eq_ignore_ascii_case("previous") => Fill::Previous,
            Tok::Word(w) if w.eq_ignore_ascii_case("linear") => Fill::Linear,
            Tok::Integer(n) => Fill::Integer(*n),
            Tok::Number(n) => Fill::Number(*n),
            Tok::Op("-") => {
                self.pos += 1;
                match self.peek().tok {
                    Tok::Integer(n) => Fill::Integer(-n),
                    Tok::Number(n) => Fill::Number(-n),
                    _ => return Err(self.expected("number")),
                }
            }
            _ => return Err(Self::error_at(&t, "fill must be a function call".into())),
        };
        self.pos += 1;
        self.expect_tok(Tok::RParen, ")")?;
        Ok(fill)
    }

    /// `ORDER BY time [ASC|DESC]`; returns whether it is descending.
    fn order_by(&mut self) -> Result<bool, ParseError> {
        let unsupported = || ParseError {
            message: "only ORDER BY time supported at this time".into(),
            line: 0,
            col: 0,
        };
        if !self.is_word("time") {
            return Err(unsupported());
        }
        self.pos += 1;
        let desc = if self.accept("DESC") {
            true
        } else {
            self.accept("ASC");
            false
        };
        if self.peek().tok == Tok::Comma {
            return Err(unsupported());
        }
        Ok(desc)
    }

    /// Precedence climbing over 1.x's binary operators.
    fn expr(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        loop {
            let op = match &self.peek().tok {
                Tok::Op(o) => BinaryOp::from_token(o),
                Tok::Word(w) if w.eq_ignore_ascii_case("AND") => Some(BinaryOp::And),
                Tok::Word(w) if w.eq_ignore_ascii_case("OR") => Some(BinaryOp::Or),
                _ => None,
            };
            let Some(op) = op else { return Ok(lhs) };
            let prec = op.precedence();
            if prec <= min_prec {
                return Ok(lhs);
            }
            self.pos += 1;
            let rhs = if matches!(op, BinaryOp::EqRegex | BinaryOp::NotEqRegex) {
                match self.try_regex()? {
                    Some(re) => Expr::Regex(re),
                    None => match &self.peek().tok {
                        Tok::Param(_) => self.unary()?,
                        _ => return Err(self.expected("regex")),
                    },
                }
            } else {
                self.expr(prec)?
            };
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.is_op("-") || self.is_op("+") {
            let neg = self.is_op("-");
            self.pos += 1;
            let e = self.unary()?;
            if !neg {
                return Ok(e);
            }
            return Ok(match e {
                Expr::Integer(n) => Expr::Integer(-n),
                Expr::Number(n) => Expr::Number(-n),
                Expr::Duration(d) => Expr::Duration(-d),
                other => Expr::Binary {
                    op: BinaryOp::Mul,
                    lhs: Box::new(Expr::Integer(-1)),
                    rhs: Box::new(other),
                },
            });
        }
        self.operand()
    }

    fn var_type(&mut self) -> Result<Option<VarType>, ParseError> {
        if !self.is_op("::") {
            return Ok(None);
        }
        self.pos += 1;
        let t = self.peek().clone();
        match &t.tok {
            Tok::Word(w) => match VarType::parse(w) {
                Some(v) => {
                    self.pos += 1;
                    Ok(Some(v))
                }
                None => Err(Self::error_at(
                    &t,
                    format!(
                        "found {w}, expected float, integer, unsigned, string, boolean, field, tag"
                    ),
                )),
            },
            _ => Err(self.expected("float, integer, unsigned, string, boolean, field, tag")),
        }
    }

    fn operand(&mut self) -> Result<Expr, ParseError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Op("*") => {
                self.pos += 1;
                Ok(Expr::Wildcard(self.var_type()?))
            }
            Tok::Op("/") => match self.try_regex()? {
                Some(re) => Ok(Expr::Regex(re)),
                None => Err(self.expected(OPERAND)),
            },
            Tok::LParen => {
                self.pos += 1;
                let e = self.expr(0)?;
                self.expect_tok(Tok::RParen, ")")?;
                Ok(Expr::Paren(Box::new(e)))
            }
            Tok::Str(s) => {
                self.pos += 1;
                Ok(Expr::String(s))
            }
            Tok::Integer(n) => {
                self.pos += 1;
                Ok(Expr::Integer(n))
            }
            Tok::Number(n) => {
                self.pos += 1;
                Ok(Expr::Number(n))
            }
            Tok::Duration(d, _) => {
                self.pos += 1;
                Ok(Expr::Duration(d))
            }
            Tok::BadDuration(_) => Err(Self::error_at(&t, "invalid duration".into())),
            Tok::Param(p) => {
                self.pos += 1;
                Ok(Expr::BoundParam(p))
            }
            // `distinct` is a keyword and a function: `distinct(x)`, `count(distinct(x))` and
            // the shorthand `DISTINCT x`.
            Tok::Word(ref w) if w.eq_ignore_ascii_case("distinct") => {
                self.pos += 1;
                let arg = if self.peek().tok == Tok::LParen {
                    self.pos += 1;
                    let e = self.expr(0)?;
                    self.expect_tok(Tok::RParen, ")")?;
                    e
                } else {
                    let name = self.ident()?;
                    Expr::VarRef { name, typ: None }
                };
                Ok(Expr::Call {
                    name: "distinct".into(),
                    args: vec![arg],
                })
            }
            Tok::Word(ref w) if w.eq_ignore_ascii_case("true") => {
                self.pos += 1;
                Ok(Expr::Boolean(true))
            }
            Tok::Word(ref w) if w.eq_ignore_ascii_case("false") => {
                self.pos += 1;
                Ok(Expr::Boolean(false))
            }
            Tok::Ident(name) => {
                self.pos += 1;
                Ok(Expr::VarRef {
                    name,
                    typ: self.var_type()?,
                })
            }
            Tok::Word(ref w) if !is_keyword(w) => {
                let name = w.clone();
                self.pos += 1;
                if self.peek().tok == Tok::LParen {
                    self.pos += 1;
                    let mut args = Vec::new();
                    if self.peek().tok != Tok::RParen {
                        loop {
                            args.push(self.expr(0)?);
                            if self.peek().tok != Tok::Comma {
                                break;
                            }
                            self.pos += 1;
                        }
                    }
                    self.expect_tok(Tok::RParen, ")")?;
                    return Ok(Expr::Call {
                        name: name.to_ascii_lowercase(),
                        args,
                    });
                }
                Ok(Expr::VarRef {
                    name,
                    typ: self.var_type()?,
                })
            }
            _ => Err(self.expected(OPERAND)),
        }
    }
}

/// `a.b.m` → db a, rp b; `a.m` → rp a; `a..m` → db a.
fn assign_prefix(m: &mut Measurement, parts: Vec<Option<String>>) {
    match parts.len() {
        0 => {}
        1 => m.retention_policy = parts.into_iter().next().flatten(),
        _ => {
            let mut it = parts.into_iter();
            m.database = it.next().flatten();
            m.retention_policy = it.next().flatten();
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
        assert_eq!(
            err("CREATE"),
            "found EOF, expected CONTINUOUS, DATABASE, USER, RETENTION, SUBSCRIPTION at line 1, char 8"
        );
        assert_eq!(
            err("SHOW FOO"),
            format!("found FOO, expected {SHOW_NEXT} at line 1, char 6")
        );
        assert_eq!(
            err("DROP DATABASE"),
            "found EOF, expected identifier at line 1, char 15"
        );
        assert_eq!(
            err("SHOW RETENTION"),
            "found EOF, expected POLICIES at line 1, char 16"
        );
        assert_eq!(
            err("SHOW DATABASES extra"),
            "found extra, expected ; at line 1, char 16"
        );
        assert_eq!(
            err("CREATE DATABASE x WITH"),
            "found EOF, expected DURATION, NAME, REPLICATION, SHARD at line 1, char 24"
        );
        assert_eq!(
            err("CREATE DATABASE x WITH DURATION"),
            "found EOF, expected duration at line 1, char 33"
        );
        assert_eq!(
            err("CREATE DATABASE x WITH DURATION 1x"),
            "invalid duration at line 1, char 33"
        );
        assert_eq!(
            err("CREATE DATABASE x WITH REPLICATION 0"),
            "invalid value 0: must be 1 <= n <= 2147483647 at line 1, char 36"
        );
        assert_eq!(
            err("CREATE DATABASE x WITH REPLICATION abc"),
            "found abc, expected integer at line 1, char 36"
        );
        assert_eq!(
            err("CREATE DATABASE 'x'"),
            "found x, expected identifier at line 1, char 16"
        );
        assert_eq!(
            err("CREATE DATABASE select"),
            "found SELECT, expected identifier at line 1, char 17"
        );
        assert_eq!(
            err("SHOW DATABASES; SHOW FOO"),
            format!("found FOO, expected {SHOW_NEXT} at line 1, char 22")
        );
        assert_eq!(
            err("SHOW DATABASES\nSHOW FOO"),
            "found SHOW, expected ; at line 2, char 1"
        );
        assert_eq!(
            err("CREATE DATABASE q WITH NAME r DURATION 1d"),
            "found DURATION, expected ; at line 1, char 31"
        );
        assert_eq!(
            err("SELEC 1"),
            format!("found SELEC, expected {STATEMENT_START} at line 1, char 1")
        );
    }

    #[test]
    fn select_errors_read_like_1x() {
        assert_eq!(
            err("SELECT"),
            "found EOF, expected identifier, string, number, bool at line 1, char 8"
        );
        assert_eq!(
            err("SELECT value"),
            "found EOF, expected FROM at line 1, char 14"
        );
        assert_eq!(
            err("SELECT value FROM"),
            "found EOF, expected identifier at line 1, char 19"
        );
        assert_eq!(
            err("SELECT value FROM m WHERE"),
            "found EOF, expected identifier, string, number, bool at line 1, char 27"
        );
        assert_eq!(
            err("SELECT value FROM m GROUP BY"),
            "found EOF, expected identifier, string, number, bool at line 1, char 30"
        );
        assert_eq!(
            err("SELECT value FROM m LIMIT x"),
            "found x, expected integer at line 1, char 27"
        );
        assert_eq!(
            err("SELECT (value FROM m"),
            "found FROM, expected ) at line 1, char 15"
        );
        assert_eq!(
            err("SELECT value FROM m GROUP BY time(1m"),
            "found EOF, expected ) at line 1, char 37"
        );
        assert_eq!(
            err("SELECT 1"),
            "found EOF, expected FROM at line 1, char 9"
        );
        assert_eq!(
            err("SELECT usage + FROM cpu"),
            "found FROM, expected identifier, string, number, bool at line 1, char 16"
        );
        assert_eq!(
            err("SELECT value FROM m LIMIT 1 OFFSET"),
            "found EOF, expected integer at line 1, char 36"
        );
        assert_eq!(
            err("SELECT value FROM m WHERE a ="),
            "found EOF, expected identifier, string, number, bool at line 1, char 30"
        );
        // A quote inside a regex does not start a string.
        let s = select("SELECT v FROM m WHERE host =~ /it's/ AND region = 'x'");
        assert_eq!(
            s.condition.unwrap().to_string(),
            "host =~ /it's/ AND region = 'x'"
        );
    }

    fn select(q: &str) -> SelectStatement {
        match parse_query(q).unwrap().pop().unwrap() {
            Statement::Select(s) => *s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn select_clauses_round_trip() {
        for q in [
            "SELECT mean(usage) AS m, max(idle) FROM db.rp.cpu WHERE time > now() - 1h AND host =~ /a\\/b/ GROUP BY time(10m, 1m), host fill(0) ORDER BY time DESC LIMIT 10 OFFSET 2 SLIMIT 3 SOFFSET 1 tz('Europe/Oslo')",
            "SELECT * FROM /cp.*/",
            "SELECT usage::field, host::tag FROM db..cpu",
            "SELECT usage * 2 + 1 FROM cpu WHERE (host = 'a' OR host = 'b') AND usage > -1.5",
            "SELECT count(*) INTO other FROM cpu GROUP BY *",
            "SELECT max(v) FROM (SELECT mean(usage) AS v FROM cpu GROUP BY time(1m)), cpu",
        ] {
            let s = select(q);
            let again = select(&s.to_string());
            assert_eq!(s, again, "{q} -> {s}");
        }
        let s = select("SELECT a + b * c - d FROM m");
        assert_eq!(s.fields[0].expr.to_string(), "a + b * c - d");
        let Expr::Binary { op, .. } = &s.fields[0].expr else {
            panic!()
        };
        assert_eq!(*op, BinaryOp::Sub, "left-associative, * binds tighter");
        let s = select("SELECT v FROM m WHERE a = 1 OR b = 2 AND c = 3");
        let Some(Expr::Binary {
            op: BinaryOp::Or, ..
        }) = &s.condition
        else {
            panic!("{:?}", s.condition)
        };
        let s = select("SELECT v FROM db.rp.m");
        let Source::Measurement(m) = &s.sources[0] else {
            panic!()
        };
        assert_eq!(
            (
                m.database.as_deref(),
                m.retention_policy.as_deref(),
                m.name.as_deref()
            ),
            (Some("db"), Some("rp"), Some("m"))
        );
        let s = select("SELECT v FROM rp.m");
        let Source::Measurement(m) = &s.sources[0] else {
            panic!()
        };
        assert_eq!(
            (m.database.as_deref(), m.retention_policy.as_deref()),
            (None, Some("rp"))
        );
        let s = select("SELECT v FROM m WHERE host = $h");
        assert_eq!(s.condition.unwrap().to_string(), "host = $h");
    }

    #[test]
    fn show_statements_round_trip() {
        for q in [
            "SHOW TAG KEYS ON db FROM cpu, mem WHERE host = 'a' LIMIT 1 OFFSET 2",
            "SHOW TAG VALUES FROM cpu WITH KEY IN (host, region) WHERE host =~ /a/",
            "SHOW TAG VALUES WITH KEY = host",
            "SHOW TAG VALUES WITH KEY !~ /h/",
            "SHOW FIELD KEYS FROM cpu",
            "SHOW SERIES FROM cpu WHERE host = 'a' LIMIT 2",
            "SHOW MEASUREMENTS WITH MEASUREMENT =~ /c.*/ WHERE host = 'b'",
            "SHOW SHARDS",
            "SHOW SHARD GROUPS",
            "SHOW SERVERS",
            "SHOW META STATUS",
            "DROP META SERVER 3",
            "DROP DATA SERVER 4",
            "DROP DATA SERVER 4 FORCE",
            "SELECT mean(v) INTO db.rp.:MEASUREMENT FROM /c.*/ GROUP BY time(1m), *",
            "SELECT v INTO rp.:MEASUREMENT FROM c",
            "CREATE RETENTION POLICY r ON db DURATION 1d REPLICATION 1 SHARD DURATION 1h DEFAULT",
            "ALTER RETENTION POLICY r ON db DURATION 3h DEFAULT",
            "DROP RETENTION POLICY r ON db",
            "DROP MEASUREMENT cpu",
            "DROP SERIES FROM cpu WHERE host = 'a'",
            "DELETE FROM cpu, /m.*/ WHERE time < 60000000000",
        ] {
            let s = parse_query(q).unwrap().pop().unwrap();
            assert_eq!(s.to_string(), q);
        }
        assert_eq!(
            err("DROP META SERVER x"),
            "found x, expected integer at line 1, char 18"
        );
        assert_eq!(
            err("DROP DATA nodes"),
            "found nodes, expected SERVER at line 1, char 11"
        );
        assert_eq!(
            err("SHOW TAG VALUES"),
            "found EOF, expected WITH at line 1, char 17"
        );
        assert_eq!(
            err("DELETE"),
            "found EOF, expected FROM, WHERE at line 1, char 8"
        );
        assert_eq!(
            err("CREATE RETENTION POLICY r4 ON sel DURATION 1h"),
            "found EOF, expected REPLICATION at line 1, char 46"
        );
        assert_eq!(
            err("ALTER RETENTION POLICY autogen ON sel"),
            "found EOF, expected DURATION, REPLICATION, SHARD, DEFAULT at line 1, char 39"
        );
    }

    #[test]
    fn statements() {
        assert_eq!(
            parse_query("show databases;;").unwrap(),
            vec![Statement::ShowDatabases]
        );
        assert_eq!(parse_query(";").unwrap(), vec![]);
        assert_eq!(
            parse_query(
                "CREATE DATABASE \"my db\" WITH DURATION 1d REPLICATION 1 SHARD DURATION 1h NAME r1"
            )
            .unwrap(),
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
            vec![Statement::ShowMeasurements {
                database: Some("d".into()),
                with: None,
                condition: None,
                limit: Some(2),
                offset: Some(1)
            }]
        );
        let s = parse_query("create database x with duration INF").unwrap();
        assert_eq!(s[0].to_string(), "CREATE DATABASE x WITH DURATION 0s");
        assert_eq!(
            parse_query("DROP DATABASE \"select\"").unwrap()[0].to_string(),
            "DROP DATABASE \"select\""
        );
    }
}
